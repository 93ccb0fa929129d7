"""nn.BatchNorm against a numpy reference on the positional equivalent, and against equinox's
BatchNorm under jax.vmap (training output)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

B, H, E, C = nx.Axis("batch", 6), nx.Axis("height", 3), nx.Axis("embed", 4), nx.Axis("chan", 2)


def reference(x, reduce, w, b, mean, var, momentum, eps):
    """Positional batch norm: x (numpy) reduced over the positions ``reduce``."""
    mu = x.mean(axis=reduce, keepdims=True)
    v = ((x - mu) ** 2).mean(axis=reduce, keepdims=True)
    y = (x - mu) / np.sqrt(v + eps) * w + b
    new_mean = momentum * mean + (1 - momentum) * mu.squeeze(reduce)
    new_var = momentum * var + (1 - momentum) * v.squeeze(reduce)
    return y, new_mean, new_var


def clone(state):
    """A copy of an eqx.nn.State (a call invalidates the state it was given)."""
    return jax.tree.map(lambda a: a, state)


def randomised(bn, key, features):
    """The layer with a random weight and bias, and a state with random running statistics."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    bn = eqx.tree_at(
        lambda m: (m.weight, m.bias), bn, (nx.random.normal(k1, features) + 1, nx.random.normal(k2, features))
    )
    mean, var = nx.random.normal(k3, features), nx.exp(nx.random.normal(k4, features))
    bn, state = eqx.nn.make_with_state(lambda: bn)()
    return bn, state.set(bn.index, (mean, var))


@pytest.mark.parametrize("momentum", [0.0, 0.9, 1.0])
@pytest.mark.parametrize(
    "axes, features",
    [((B, E), (E,)), ((E, B), (E,)), ((B, H, E), (E,)), ((H, E, B, C), (E, C)), ((C, B, E), (C, E))],
)
def test_training_matches_numpy(axes, features, momentum, key):
    bn, state = randomised(nx.nn.BatchNorm.init(features, momentum=momentum, eps=1e-3), key, features)
    x = nx.random.normal(jax.random.fold_in(key, 1), axes) * 3 + 1
    mean, var = (np.asarray(s.array) for s in state.get(bn.index))
    y, new = bn(x, state)
    assert y.axes == x.axes
    names = [a.name for a in axes]
    f = [a.name for a in features]
    order = [n for n in names if n not in f] + f  # reduced axes first, features last (the layout of w)
    xs = np.asarray(nx.rearrange(x, order).array)
    reduce = tuple(range(len(order) - len(f)))
    w, b = np.asarray(bn.weight.array), np.asarray(bn.bias.array)
    ref_y, ref_mean, ref_var = reference(xs, reduce, w, b, mean, var, momentum, 1e-3)
    assert_named_close(y, ref_y, order, rtol=1e-4, atol=1e-5)
    new_mean, new_var = new.get(bn.index)
    assert_named_close(new_mean, ref_mean, f, rtol=1e-5, atol=1e-6)
    assert_named_close(new_var, ref_var, f, rtol=1e-5, atol=1e-6)


def test_inference_uses_running_statistics_and_keeps_state(key):
    bn, state = randomised(nx.nn.BatchNorm.init(E), key, (E,))
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))
    mean, var = (np.asarray(s.array) for s in state.get(bn.index))
    ref = (np.asarray(x.array) - mean) / np.sqrt(var + 1e-5) * np.asarray(bn.weight.array) + np.asarray(bn.bias.array)
    for layer, kw in [(bn, {"inference": True}), (eqx.nn.inference_mode(bn), {})]:
        y, new = layer(x, clone(state), **kw)
        assert_named_close(y, ref, ("batch", "embed"), rtol=1e-5)
        np.testing.assert_array_equal(new.get(bn.index)[0].array, mean)
        np.testing.assert_array_equal(new.get(bn.index)[1].array, var)
    # the call's flag wins over the field: training on an inference-mode layer updates the state
    _, new = eqx.nn.inference_mode(bn)(x, clone(state), inference=False)
    assert not np.allclose(new.get(bn.index)[0].array, mean)


def test_mapped_batch_axis_equals_whole_batch(key):
    """Per-example code under nx.vmap over `batch` (statistics by pmean) gives the batched result."""
    bn, state = randomised(nx.nn.BatchNorm.init(E, axis_name="batch", momentum=0.8), key, (E,))
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, H, E))
    y_whole, s_whole = bn(x, clone(state))
    y_mapped, s_mapped = nx.vmap(bn, B)(x, clone(state))
    y_jit, s_jit = jax.jit(nx.vmap(bn, B))(x, clone(state))
    for y, s in [(y_mapped, s_mapped), (y_jit, s_jit)]:
        assert_named_close(y, np.asarray(nx.rearrange(y_whole, y.axes).array), [a.name for a in y.axes], rtol=1e-5)
        for a, b in zip(s.get(bn.index), s_whole.get(bn.index), strict=True):
            assert a.axes == (E,)
            np.testing.assert_allclose(a.array, b.array, rtol=1e-5, atol=1e-6)


def test_training_output_matches_equinox_batchnorm(key):
    x = jax.random.normal(key, (8, 3)) * 2 + 1
    ref_bn, ref_state = eqx.nn.make_with_state(eqx.nn.BatchNorm)(3, axis_name="batch", mode="batch", eps=1e-5)
    ref, _ = jax.vmap(ref_bn, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, ref_state)
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(nx.Axis("f", 3))
    y, _ = bn(nx.named(x, ("batch", "f")), state)
    np.testing.assert_allclose(y.array, ref, rtol=1e-5, atol=1e-5)


def test_gradients_match_positional(key):
    bn, state = randomised(nx.nn.BatchNorm.init(E), key, (E,))
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))

    def loss(layer, x):
        y, _ = layer(x, clone(state))
        return nx.sum(y * y * nx.arange(E)).array

    def ref_loss(w, b, x):
        mu = x.mean(0)
        v = ((x - mu) ** 2).mean(0)
        y = (x - mu) / jnp.sqrt(v + 1e-5) * w + b
        return jnp.sum(y * y * jnp.arange(4.0))

    g_layer, g_x = eqx.filter_grad(loss)(bn, x), jax.grad(loss, argnums=1)(bn, x)
    rw, rb, rx = jax.grad(ref_loss, argnums=(0, 1, 2))(bn.weight.array, bn.bias.array, x.array)
    np.testing.assert_allclose(g_layer.weight.array, rw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_layer.bias.array, rb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_x.array, rx, rtol=1e-4, atol=1e-4)


def test_low_precision_input_keeps_state_dtype(key):
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(E)
    x = nx.random.normal(key, (B, E)).astype(jnp.bfloat16)
    y, new = bn(x, state)
    assert [s.dtype for s in new.get(bn.index)] == [jnp.float32, jnp.float32]
    assert y.axes == x.axes


def test_no_affine():
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(E, use_weight=False, use_bias=False)
    assert bn.weight is None and bn.bias is None
    x = nx.named(jnp.arange(24.0).reshape(6, 4), (B, E))
    y, _ = bn(x, state)
    np.testing.assert_allclose(nx.mean(y, axis="batch").array, 0.0, atol=1e-5)
    np.testing.assert_allclose(nx.var(y, axis="batch").array, 1.0, rtol=1e-3)


def test_errors():
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(E)
    with pytest.raises(nx.AxisNotFoundError, match="no axis 'embed'"):
        bn(nx.ones((B, H)), state)
    with pytest.raises(ValueError, match="axis 'embed' has size 5, the layer expects Axis\\('embed', 4\\)"):
        bn(nx.ones({"batch": 2, "embed": 5}), state)
    with pytest.raises(ValueError, match="nothing to average"):
        bn(nx.ones(E), state)
    # inference needs no batch axis
    y, _ = bn(nx.ones(E), state, inference=True)
    assert y.axes == (E,)
    with pytest.raises(ValueError, match="`momentum` must be in \\[0, 1\\]"):
        nx.nn.BatchNorm.init(E, momentum=1.5)
    with pytest.raises(ValueError, match="`eps` must be >= 0"):
        nx.nn.BatchNorm.init(E, eps=-1.0)
    with pytest.raises(ValueError, match="names a feature axis"):
        nx.nn.BatchNorm.init(E, axis_name="embed")
    with pytest.raises(TypeError, match="needs sizes"):
        nx.nn.BatchNorm.init("embed")
    # a mapped axis_name used outside any mapping: BatchNorm says which axis, and what axis_name means
    bn2, state2 = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(E, axis_name="batch")
    for x in (nx.ones(E), nx.ones((H, E))):
        with pytest.raises(ValueError, match="^BatchNorm: `axis_name` 'batch' is neither an axis of the input") as e:
            bn2(x, state2)
        assert "enclosing nx.vmap / nx.pmap" in str(e.value) and "pmean" not in str(e.value)
    y, _ = nx.vmap(bn2, B)(nx.ones((B, H, E)), state2)  # mapped: fine
    assert y.axes == (B, H, E)


def test_plain_jit_and_grad_in_both_modes(key):
    """The `inference` flag is static structure: plain jax.jit and jax.grad work on the layer in
    either mode (it used to be a bool leaf: a tracer under jit, refused by grad), and the results are
    the eager ones."""
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(E, momentum=0.5)
    x = nx.named(jax.random.normal(key, (6, 4)), (B, E))
    assert jax.tree.leaves(bn) == [bn.weight.array, bn.bias.array]  # no bool leaf
    call = jax.jit(lambda m, v, s: m(v, s))
    for layer in (bn, eqx.nn.inference_mode(bn), eqx.nn.inference_mode(eqx.nn.inference_mode(bn), False)):
        y, new = call(layer, x, clone(state))
        y_eager, new_eager = layer(x, clone(state))
        assert y.axes == y_eager.axes
        np.testing.assert_allclose(y.array, y_eager.array, atol=1e-6)
        np.testing.assert_allclose(new.get(bn.index)[0].array, new_eager.get(bn.index)[0].array, atol=1e-6)
        g = jax.grad(lambda m: nx.sum(m(x, clone(state))[0] * x, axis=None).array)(layer)
        assert g.weight.axes == (E,)
    # the running statistics normalise in inference mode (numpy reference: mean 0, var 1 at the start)
    y, _ = call(eqx.nn.inference_mode(bn), x, clone(state))
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(x.array) / np.sqrt(1 + 1e-5), rtol=1e-6)
    # a traced flag per call cannot choose the mode: a namedax error that says what to do
    with pytest.raises(TypeError, match="^BatchNorm: `inference` is a traced value.*eqx.nn.inference_mode"):
        jax.jit(lambda m, v, s, f: m(v, s, inference=f))(bn, x, clone(state), True)
    with pytest.raises(TypeError, match="^BatchNorm: the `inference` field must be a concrete bool"):
        jax.jit(lambda m, f: eqx.nn.inference_mode(m, f))(bn, jnp.bool_(True))
