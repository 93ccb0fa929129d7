"""Stacked layers with per-layer state (issue 9): against a numpy reference and against a Python
loop over the unstacked layers, each with its own slice of the state."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close, tree_allclose

L, B, E = nx.Axis("layers", 3), nx.Axis("batch", 5), nx.Axis("embed", 4)


def clone(state):
    return jax.tree.map(lambda a: a, state)


def named_leaf(x):
    return isinstance(x, nx.NamedArray)


def layer_slice(state, i):
    """Layer ``i``'s state: every leaf's slice ``i`` along ``layers`` (plain arrays: leading dim)."""

    def take(a):
        return a["layers", i] if named_leaf(a) else a[i]

    return jax.tree.map(take, state, is_leaf=named_leaf)


def bn_stack(key, momentum=0.8, dtype=jnp.float32, **stack_options):
    """A stack of BatchNorms with distinct weights, biases and running statistics per layer."""
    make = eqx.nn.make_with_state(nx.nn.Stacked.init(L, nx.nn.BatchNorm, **stack_options))
    stack, state = make(E, momentum=momentum, dtype=dtype)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    stack = eqx.tree_at(
        lambda s: (s.stacked.weight, s.stacked.bias),
        stack,
        (nx.random.normal(k1, (L, E)) + 1, nx.random.normal(k2, (L, E))),
    )
    state = state.set(stack.stacked.index, (nx.random.normal(k3, (L, E)), nx.exp(nx.random.normal(k4, (L, E)))))
    return stack, state


def numpy_fold(stack, state, x, momentum=0.8, eps=1e-5):
    """Batch norm layer after layer, positionally: x (batch, embed)."""
    w, b = np.asarray(stack.stacked.weight.array), np.asarray(stack.stacked.bias.array)
    mean, var = (np.asarray(s.array) for s in state.get(stack.stacked.index))
    means, vars_ = [], []
    for i in range(L.size):
        mu, v = x.mean(0), x.var(0)
        x = (x - mu) / np.sqrt(v + eps) * w[i] + b[i]
        means.append(momentum * mean[i] + (1 - momentum) * mu)
        vars_.append(momentum * var[i] + (1 - momentum) * v)
    return x, np.stack(means), np.stack(vars_)


def python_loop(stack, state, x):
    """The same stack run as a Python loop over its layers, each with its own slice of the state."""
    states = []
    for i, layer in enumerate(stack.unstacked()):
        x, s = layer(x, layer_slice(clone(state), i))
        states.append(s)
    return x, states


@pytest.mark.parametrize("mode", ["eager", "jit", "checkpointed"])
def test_fold_matches_numpy_and_python_loop(mode, key):
    stack, state = bn_stack(key, gradient_checkpointing=mode == "checkpointed")
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E)) * 2 + 1
    ref_x, ref_mean, ref_var = numpy_fold(stack, clone(state), np.asarray(x.array))
    loop_x, loop_states = python_loop(stack, state, x)
    fold = eqx.filter_jit(lambda s, x, st: s.fold(x, st)) if mode == "jit" else (lambda s, x, st: s.fold(x, st))
    y, new = fold(stack, x, clone(state))
    assert_named_close(y, ref_x, ("batch", "embed"), rtol=1e-4, atol=1e-5)
    assert_named_close(y, np.asarray(loop_x.array), ("batch", "embed"), rtol=1e-5, atol=1e-6)
    mean, var = new.get(stack.stacked.index)
    assert mean.axes == var.axes == (L, E)
    np.testing.assert_allclose(mean.array, ref_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.array, ref_var, rtol=1e-5, atol=1e-6)
    for i, s in enumerate(loop_states):
        tree_allclose(layer_slice(clone(new), i), s)


def test_state_layout_is_kept(key):
    """A per-layer entry with `layers` second comes back with `layers` second."""
    stack, state = bn_stack(key)
    leaves, treedef = jax.tree.flatten(state, is_leaf=named_leaf)
    state = treedef.unflatten([leaves[0].rearrange((E, L)), leaves[1]])
    _, new = stack.fold(nx.random.normal(key, (B, E)), state)
    mean, var = new.get(stack.stacked.index)
    assert mean.axes == (E, L) and var.axes == (L, E)


def test_scan_with_state(key):
    stack, state = bn_stack(key)
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))

    def step(layer, x, s):
        y, s = layer(x, s)
        return (y, nx.sum(y * y, axis="batch")), s

    (y, sq), new = stack.scan_via(step)(x, clone(state))
    loop_x, loop_states = python_loop(stack, state, x)
    np.testing.assert_allclose(y.array, loop_x.array, rtol=1e-5, atol=1e-6)
    assert sq.axes == (L, E)
    # each layer's output: the sum of squares of that layer's result, from the Python loop
    h = x
    for i, layer in enumerate(stack.unstacked()):
        h, _ = layer(h, layer_slice(clone(state), i))
        np.testing.assert_allclose(sq["layers", i].array, (h.array**2).sum(0), rtol=1e-5)
    for i, s in enumerate(loop_states):
        tree_allclose(layer_slice(clone(new), i), s)


def test_vmap_with_state(key):
    """Every layer on the same input, each with its own state slice."""
    stack, state = bn_stack(key)
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))
    ys, new = stack.vmap(x, clone(state))
    assert ys.axes == (L, B, E)
    for i, layer in enumerate(stack.unstacked()):
        y, s = layer(x, layer_slice(clone(state), i))
        np.testing.assert_allclose(ys["layers", i].array, y.array, rtol=1e-5, atol=1e-6)
        tree_allclose(layer_slice(clone(new), i), s)


class Counter(eqx.Module):
    """A plain-equinox stateful layer: its state is a plain array."""

    index: eqx.nn.StateIndex
    step: jax.Array

    def __init__(self, step):
        self.index = eqx.nn.StateIndex(jnp.zeros(2))
        self.step = step

    def __call__(self, x, state):
        c = state.get(self.index) + self.step
        return x + c.sum(), state.set(self.index, c)


def test_plain_array_state_of_equinox_layers():
    stack, state = eqx.nn.make_with_state(nx.nn.Stacked.init(L, Counter))(jnp.array([1.0, 2.0, 3.0]))
    (entry,) = jax.tree.leaves(state)
    assert not named_leaf(entry) and entry.shape == (3, 2)
    x = jnp.zeros(())
    y, state = stack.fold(x, state)
    y, state = stack.fold(y, state)
    (entry,) = jax.tree.leaves(state)
    np.testing.assert_array_equal(entry, [[2, 2], [4, 4], [6, 6]])
    # first pass adds 2 * (1 + 2 + 3), the second 2 * (2 + 4 + 6)
    assert float(y) == 12.0 + 24.0


def test_equinox_batchnorm_stack_inside_vmap(key):
    """eqx.nn.BatchNorm (plain-array state, jax.lax.pmean over axis_name) stacked, run per example
    under nx.vmap over `batch`: the same as a Python loop of jax.vmap'd layers."""
    stack, state = eqx.nn.make_with_state(nx.nn.Stacked.init(L, eqx.nn.BatchNorm))(
        E.size, axis_name="batch", mode="batch"
    )
    x = nx.random.normal(key, (B, E))

    def step(layer, h, s):
        y, s = layer(h.array, s)
        return nx.named(y, h.axes), s

    y, new = nx.vmap(stack.fold_via(step), B)(x, clone(state))
    h = x.array
    for i, layer in enumerate(stack.unstacked()):
        h, s = jax.vmap(layer, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(
            h, layer_slice(clone(state), i)
        )
        tree_allclose(layer_slice(clone(new), i), s)
    np.testing.assert_allclose(y.array, h, rtol=1e-5, atol=1e-5)


class Scale(eqx.Module):
    w: nx.NamedArray
    tag: nx.NamedArray


def test_any_pytree_as_state_per_layer_and_threaded(key):
    """A dict as state: entries holding `layers` are per layer; the others are threaded in order."""
    stack = nx.nn.Stacked.init(L, Scale)(nx.random.normal(key, (L, E)), nx.named(jnp.array([1.0, 2.0, 3.0]), L))

    def fn(layer, x, cache):
        y = x * layer.w
        new = {
            "seen": cache["seen"] + y,  # per layer (holds `layers`, second)
            "trace": cache["trace"] * 10 + layer.tag,  # shared, threaded: 123 after three layers
            "calls": cache["calls"] + 1,  # shared plain array
        }
        return y, new

    cache = {"seen": nx.zeros((E, L)), "trace": nx.zeros(()), "calls": jnp.int32(0)}
    x = nx.random.normal(jax.random.fold_in(key, 1), E)
    for run in (stack.fold_via(fn, state="cache"), stack.fold_via(fn, state=2)):
        y, new = run(x, cache)
        assert new["seen"].axes == (E, L)
        assert float(new["trace"].array) == 123.0 and int(new["calls"]) == 3
        h = np.asarray(x.array)
        w = np.asarray(stack.stacked.w.array)
        for i in range(L.size):
            h = h * w[i]
            np.testing.assert_allclose(new["seen"]["layers", i].array, h, rtol=1e-6)
        np.testing.assert_allclose(y.array, h, rtol=1e-6)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients_through_stateful_stack(checkpointing, key):
    """Each layer is tanh(batchnorm(x)) (the nonlinearity keeps every layer's gradient away from 0).

    In float64, so the stack and the loop agree to rounding whatever order they sum in (float32
    through three normalisations differed by 2e-4 in one element).
    """
    with jax.enable_x64(True):
        _check_gradients_through_stateful_stack(checkpointing, key)


def _check_gradients_through_stateful_stack(checkpointing, key):
    stack, state = bn_stack(key, dtype=jnp.float64, gradient_checkpointing=checkpointing)
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))
    c = nx.arange(E) + 1.0  # every feature matters

    def block(layer, h, s):
        y, s = layer(h, s)
        return nx.tanh(y), s

    def loss(stack, x):
        y, new = stack.fold_via(block)(x, clone(state))
        return nx.sum(y * c).array, new

    def loop_loss(stack, x):
        states = []
        for i, layer in enumerate(stack.unstacked()):
            x, s = block(layer, x, layer_slice(clone(state), i))
            states.append(s)
        return nx.sum(x * c).array, states

    (v, new), g = eqx.filter_value_and_grad(loss, has_aux=True)(stack, x)
    (rv, states), rg = eqx.filter_value_and_grad(loop_loss, has_aux=True)(stack, x)
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg), strict=True):
        assert a.dtype == np.float64
        assert np.abs(np.asarray(b)).min() > 1e-4  # no gradient is (nearly) zero: the comparison means something
        np.testing.assert_allclose(a, b, rtol=1e-9)
    gx = jax.grad(lambda x: loss(stack, x)[0])(x)
    rgx = jax.grad(lambda x: loop_loss(stack, x)[0])(x)
    np.testing.assert_allclose(gx.array, rgx.array, rtol=1e-9, atol=1e-12)
    for i, s in enumerate(states):
        tree_allclose(layer_slice(clone(new), i), s, rtol=1e-12, atol=0)


def test_vmap_shared_entry_policies(key):
    stack = nx.nn.Stacked.init(L, Scale)(nx.random.normal(key, (L, E)), nx.named(jnp.array([1.0, 2.0, 3.0]), L))

    def fn(layer, cache):
        return layer.w, {"last": layer.tag}

    cache = {"last": nx.zeros(())}
    with pytest.raises(ValueError, match="state entry \"cache\\['last'\\]\" came in without axis 'layers'"):
        stack.vmap_via(fn, state="cache")(cache)
    _, new = stack.vmap_via(fn, state="cache", unexpected_state="batch")(cache)
    assert new["last"].axes == (L,) and new["last"].array.tolist() == [1.0, 2.0, 3.0]
    with pytest.warns(UserWarning, match="came in without axis 'layers'"):
        stack.vmap_via(fn, state="cache", unexpected_state="warn")(cache)
    with pytest.raises(ValueError, match="`unexpected_state` must be one of"):
        stack.vmap_via(fn, state="cache", unexpected_state="ignore")


def test_errors(key):
    stack, state = bn_stack(key)
    x = nx.random.normal(key, (B, E))
    with pytest.raises(TypeError, match="the carry holds an eqx.nn.State"):
        stack.fold_via(lambda layer, carry: carry)((x, clone(state)))
    with pytest.raises(ValueError, match="names the carry"):
        stack.fold_via(lambda layer, carry, s: (carry, s), state=1)(x, clone(state))
    with pytest.raises(ValueError, match="names the layer"):
        stack.fold_via(lambda layer, carry, s: (carry, s), state=0)(x, clone(state))
    with pytest.raises(TypeError, match="`state` must name the state argument"):
        stack.fold_via(lambda layer, carry, s: (carry, s), state=1.5)
    with pytest.raises(TypeError, match="must return a pair \\(out, new_state\\)"):
        stack.fold_via(lambda layer, carry, s: carry)(x, clone(state))

    def recast(layer, carry, c):
        return carry, {"v": c["v"].astype(jnp.float16)}

    with pytest.raises(
        ValueError, match="state entry \"c\\['v'\\]\" went in as NamedArray \\(Axis\\('embed', 4\\),\\) float32"
    ):
        stack.fold_via(recast, state="c")(x, {"v": nx.zeros((L, E))})
    # the state of one layer handed to the whole stack: its entries lack `layers`
    with pytest.raises(ValueError, match="belongs to a layer of the stack but has .* without Axis\\('layers', 3\\)"):
        stack.fold(x, layer_slice(clone(state), 0))
    # a per-layer entry with another number of layers
    short = {"c": nx.zeros((nx.Axis("layers", 2), E))}
    with pytest.raises(ValueError, match="has Axis\\('layers', 2\\).*needs size 3"):
        stack.fold_via(lambda layer, carry, c: (carry, c), state="c")(x, short)


def test_shared_entry_must_keep_its_shape(key):
    stack = nx.nn.Stacked.init(L, Scale)(nx.random.normal(key, (L, E)), nx.named(jnp.array([1.0, 2.0, 3.0]), L))

    def fn(layer, x, cache):
        return x, {"n": nx.broadcast_axis(cache["n"], E)}

    with pytest.raises(
        ValueError, match="state entry \"cache\\['n'\\]\" went in as NamedArray \\(\\) .* came out as NamedArray"
    ):
        stack.fold_via(fn, state="cache")(nx.zeros(E), {"n": nx.zeros(())})


def test_no_state_unchanged_and_warning_free(key):
    """Without a state argument fold/scan/vmap behave as before (no pair expected)."""
    stack, _ = bn_stack(key)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = stack.fold_via(lambda layer, h: h * layer.weight)(nx.ones(E))
    np.testing.assert_allclose(y.array, np.prod(np.asarray(stack.stacked.weight.array), axis=0), rtol=1e-6)


def test_inference_mode_of_a_stack(key):
    """eqx.nn.inference_mode flips every layer: running statistics normalise, the state is unchanged."""
    stack, state = bn_stack(key)
    x = nx.random.normal(jax.random.fold_in(key, 1), (B, E))
    mean, var = (np.asarray(s.array) for s in state.get(stack.stacked.index))
    w, b = np.asarray(stack.stacked.weight.array), np.asarray(stack.stacked.bias.array)
    y, new = eqx.nn.inference_mode(stack).fold(x, clone(state))
    h = np.asarray(x.array)
    for i in range(L.size):
        h = (h - mean[i]) / np.sqrt(var[i] + 1e-5) * w[i] + b[i]
    np.testing.assert_allclose(y.array, h, rtol=1e-4, atol=1e-5)
    for got, ref in zip(new.get(stack.stacked.index), (mean, var), strict=True):
        np.testing.assert_array_equal(got.array, ref)
