"""namedax.nn modules and functions against positional jax.numpy / numpy references."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close, to_numpy, tree_allclose

B, E, H, V = nx.Axis("batch", 3), nx.Axis("embed", 4), nx.Axis("hidden", 5), nx.Axis("vocab", 7)


def randn(rng, *shape):
    return jnp.asarray(rng.standard_normal(shape), dtype=jnp.float32)


def with_random_bias(rng, layer):
    return eqx.tree_at(lambda m: m.bias.array, layer, randn(rng, *layer.bias.array.shape))


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------


def test_linear_init_is_truncated_normal_over_sqrt_fan_in(key):
    layer = nx.nn.Linear.init(E, H, key=key)
    ref = jax.random.truncated_normal(key, -3.0, 3.0, (H.size, E.size)) / np.sqrt(E.size)
    assert layer.weight.axes == (H, E)
    np.testing.assert_allclose(layer.weight.array, ref, rtol=1e-6)
    np.testing.assert_array_equal(layer.bias.array, np.zeros(H.size))
    assert layer.bias.axes == (H,)


def test_linear_init_scale_statistics(key):
    In, Out = nx.Axis("i", 256), nx.Axis("o", 64)
    w = np.asarray(nx.nn.Linear.init(In, Out, key=key, init_scale=2.0).weight.array)
    assert abs(w.std() * np.sqrt(256) / 2.0 - 0.986) < 0.03  # std of N(0,1) truncated to [-3, 3]
    assert np.abs(w).max() <= 3.0 * 2.0 / np.sqrt(256) + 1e-6


def test_linear_equals_x_at_w_plus_b(key, rng):
    layer = with_random_bias(rng, nx.nn.Linear.init(E, H, key=key))
    x = randn(rng, B.size, E.size)
    y = layer(nx.named(x, (B, E)))
    assert y.axes == (B, H)
    W, b = layer.weight.array, layer.bias.array  # (hidden, embed), (hidden,)
    assert_named_close(y, x @ W.T + b, ("batch", "hidden"))
    # the same layer on another layout of the input
    y2 = layer(nx.named(x.T, (E, B)))
    assert_named_close(y2, x @ W.T + b, ("batch", "hidden"))


def test_linear_several_axes_and_in_first(key, rng):
    A, C, D = nx.Axis("a", 2), nx.Axis("c", 3), nx.Axis("d", 2)
    layer = nx.nn.Linear.init((A, E), {"c": 3, "d": 2}, key=key, out_first=False, use_bias=False)
    assert layer.weight.axes == (A, E, C, D) and layer.bias is None
    np.testing.assert_allclose(
        layer.weight.array,
        jax.random.truncated_normal(key, -3.0, 3.0, (2, 4, 3, 2)) / np.sqrt(8),
        rtol=1e-6,
    )
    x = randn(rng, E.size, B.size, A.size)
    y = layer(nx.named(x, (E, B, A)))
    assert y.axes == (B, C, D)
    ref = np.einsum("eba,aecd->bcd", x, layer.weight.array)
    assert_named_close(y, ref, ("batch", "c", "d"), rtol=1e-5, atol=1e-5)


def test_linear_errors(key):
    layer = nx.nn.Linear.init(E, H, key=key)
    with pytest.raises(nx.AxisNotFoundError, match=r"Linear: the input .* has no input axis 'embed'"):
        layer(nx.ones((B, H.alias("x"))))
    with pytest.raises(ValueError, match="input axis 'embed' has size 5, the layer expects Axis\\('embed', 4\\)"):
        layer(nx.ones({"embed": 5}))
    with pytest.raises(ValueError, match="already has the output axes \\['hidden'\\]"):
        layer(nx.ones((E, H)))
    with pytest.raises(ValueError, match="share the axis names \\['embed'\\]"):
        nx.nn.Linear.init(E, E, key=key)
    with pytest.raises(TypeError, match="needs sizes"):
        nx.nn.Linear.init("embed", H, key=key)
    with pytest.raises(TypeError, match="Linear.init: `key` must be a jax.random.key or jax.random.PRNGKey"):
        nx.nn.Linear.init(E, H, key=jnp.zeros(3))
    with pytest.raises(TypeError, match="a PRNG `key` is required"):
        nx.nn.Linear.init(E, H, key=None)
    with pytest.raises(ValueError, match="duplicate axis names"):
        nx.nn.Linear.init((E, E), H, key=key)


def test_linear_legacy_key_and_named_key(key):
    legacy = nx.nn.Linear.init(E, H, key=jax.random.PRNGKey(0))
    ref = jax.random.truncated_normal(jax.random.PRNGKey(0), -3.0, 3.0, (5, 4)) / 2.0
    np.testing.assert_allclose(legacy.weight.array, ref, rtol=1e-6)
    named_key = nx.named(key, ())  # one layer's key as Stacked hands it over
    np.testing.assert_array_equal(
        nx.nn.Linear.init(E, H, key=named_key).weight.array, nx.nn.Linear.init(E, H, key=key).weight.array
    )
    with pytest.raises(ValueError, match="NamedArray of keys over"):
        nx.nn.Linear.init(E, H, key=nx.random.split(key, B))
    with pytest.raises(TypeError, match="split the key by name"):
        nx.nn.Linear.init(E, H, key=jax.random.split(key, 3))


def test_linear_jit_grad_vmap(key, rng):
    layer = with_random_bias(rng, nx.nn.Linear.init(E, H, key=key))
    x = randn(rng, B.size, E.size)
    xn = nx.named(x, (B, E))
    tree_allclose(jax.jit(lambda m, v: m(v))(layer, xn).array, layer(xn).array)

    def loss_named(m):
        return nx.sum(nx.tanh(m(xn)), axis=None).array

    def loss_ref(W, b):
        return jnp.sum(jnp.tanh(x @ W.T + b))

    g = jax.grad(loss_named)(layer)
    gW, gb = jax.grad(loss_ref, argnums=(0, 1))(layer.weight.array, layer.bias.array)
    np.testing.assert_allclose(g.weight.array, gW, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.bias.array, gb, rtol=1e-5, atol=1e-6)
    assert g.weight.axes == layer.weight.axes
    # an ensemble of layers built and applied with nx.vmap
    Ens = nx.Axis("ensemble", 2)
    keys = nx.random.split(key, Ens)
    ens = nx.vmap(lambda k: nx.nn.Linear.init(E, H, key=k), Ens)(keys)
    assert ens.weight.axes == (Ens, H, E)
    out = nx.vmap(lambda m, v: m(v), Ens)(ens, xn)
    for i in range(2):
        member = nx.nn.Linear.init(E, H, key=keys.array[i])
        assert_named_close(out["ensemble", i], to_numpy(member(xn), ("batch", "hidden")), ("batch", "hidden"))


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------


def test_embedding_init_lookup_unembed(key, rng):
    emb = nx.nn.Embedding.init(V, E, key=key)
    np.testing.assert_allclose(emb.weight.array, jax.random.normal(key, (7, 4)) * 0.02, rtol=1e-6)
    assert nx.nn.Embedding.init(V, E, 0.5, key=key).weight.array.std() > 0.1
    ids = jnp.asarray(rng.integers(0, 7, size=(2, 3)), dtype=jnp.int32)
    out = emb(nx.named(ids, ("b", "pos")))
    assert out.axes == (nx.Axis("b", 2), nx.Axis("pos", 3), E)
    np.testing.assert_array_equal(out.array, jnp.take(emb.weight.array, ids, axis=0))
    np.testing.assert_array_equal(emb.embed(5).array, emb.weight.array[5])
    x = randn(rng, B.size, E.size)
    assert_named_close(emb.unembed(nx.named(x, (B, E))), x @ emb.weight.array.T, ("batch", "vocab"))
    # under jit and grad (the gradient of a lookup scatters into the rows looked up)
    g = jax.grad(lambda m: nx.sum(m(nx.named(ids, ("b", "pos"))), axis=None).array)(emb)
    counts = np.bincount(np.asarray(ids).ravel(), minlength=7)
    np.testing.assert_allclose(g.weight.array, np.repeat(counts[:, None], 4, axis=1).astype(np.float32))


def test_embedding_errors(key):
    emb = nx.nn.Embedding.init(V, E, key=key)
    with pytest.raises(TypeError, match="ids must be integers"):
        emb(nx.ones({"pos": 2}))
    with pytest.raises(TypeError, match="name its axes"):
        emb(jnp.array([1, 2]))
    with pytest.raises(ValueError, match="have axes \\['embed'\\]"):
        emb(nx.named(jnp.array([1, 2, 3, 4]), "embed"))
    with pytest.raises(TypeError, match="`Vocab` must be one Axis"):
        nx.nn.Embedding.init("vocab", E, key=key)
    with pytest.raises(ValueError, match="reuses the name"):
        nx.nn.Embedding.init(V, V.resize(3), key=key)


def test_embedding_unembed_checks_its_input(key):
    # unembed contracts Embed like Linear contracts In: an input without Embed would be a silent
    # outer product with the summed table, one holding Vocab a silent elementwise product
    emb = nx.nn.Embedding.init(V, E, key=key)
    with pytest.raises(nx.AxisNotFoundError, match="Embedding.unembed: the input .* has no axis 'embed'"):
        emb.unembed(nx.ones(B))
    with pytest.raises(ValueError, match="Embedding.unembed: axis 'embed' has size 5"):
        emb.unembed(nx.ones((B, E.resize(5))))
    with pytest.raises(ValueError, match="Embedding.unembed: the input .* already has the vocabulary axis 'vocab'"):
        emb.unembed(nx.ones((V, E)))


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


def layer_norm_ref(x, axes, w, b, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def test_layer_norm_against_numpy(rng):
    norm = nx.nn.LayerNorm.init(E, eps=1e-3)
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    norm = eqx.tree_at(lambda m: (m.weight.array, m.bias.array), norm, (jnp.asarray(w), jnp.asarray(b)))
    x = rng.standard_normal((4, 3)).astype(np.float32)  # (embed, batch): embed not last
    y = norm(nx.named(x, (E, B)))
    assert y.axes == (E, B)
    assert_named_close(y, layer_norm_ref(x.T, -1, w, b, 1e-3), ("batch", "embed"), atol=1e-5)


def test_layer_norm_several_axes_and_options(rng):
    A = nx.Axis("a", 2)
    norm = nx.nn.LayerNorm.init((A, E), use_weight=False, use_bias=False)
    assert norm.weight is None and norm.bias is None
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    y = norm(nx.named(x, (B, E, A)))
    ref = layer_norm_ref(x, (1, 2), 1.0, 0.0, 1e-5)
    assert_named_close(y, ref, ("batch", "embed", "a"), atol=1e-5)


def test_rms_norm_against_numpy(rng):
    norm = nx.nn.RMSNorm.init(E, eps=1e-4)
    assert norm.bias is None and norm.weight.axes == (E,)
    w = rng.standard_normal(4).astype(np.float32)
    norm = eqx.tree_at(lambda m: m.weight.array, norm, jnp.asarray(w))
    x = rng.standard_normal((3, 4)).astype(np.float32)
    ref = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-4) * w
    assert_named_close(norm(nx.named(x, (B, E))), ref, ("batch", "embed"), atol=1e-5)
    with_bias = nx.nn.RMSNorm.init(E, use_bias=True)
    assert with_bias.bias.axes == (E,)


def test_norm_errors():
    norm = nx.nn.LayerNorm.init(E)
    with pytest.raises(nx.AxisNotFoundError, match="LayerNorm: the input .* has no axis 'embed'"):
        norm(nx.ones(B))
    with pytest.raises(ValueError, match="RMSNorm: axis 'embed' has size 5"):
        nx.nn.RMSNorm.init(E)(nx.ones({"embed": 5}))
    with pytest.raises(ValueError, match="`eps` must be >= 0"):
        nx.nn.LayerNorm.init(E, eps=-1.0)
    with pytest.raises(TypeError, match="needs sizes"):
        nx.nn.LayerNorm.init("embed")


def test_norm_jit_grad(rng):
    norm = nx.nn.LayerNorm.init(E)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    xn = nx.named(jnp.asarray(x), (B, E))
    tree_allclose(jax.jit(lambda m, v: m(v))(norm, xn).array, norm(xn).array)
    target = rng.standard_normal((3, 4)).astype(np.float32)

    def loss_ref(w, b):
        m = x.mean(1, keepdims=True)
        v = ((x - m) ** 2).mean(1, keepdims=True)
        return jnp.sum(((x - m) / jnp.sqrt(v + 1e-5) * w + b) * target)

    g = jax.grad(lambda m: nx.sum(m(xn) * nx.named(target, (B, E)), axis=None).array)(norm)
    gw, gb = jax.grad(loss_ref, argnums=(0, 1))(jnp.ones(4), jnp.zeros(4))
    np.testing.assert_allclose(g.weight.array, gw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.bias.array, gb, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------


def test_dropout_equals_bernoulli_mask(key, rng):
    x = rng.standard_normal((3, 50)).astype(np.float32)
    xn = nx.named(jnp.asarray(x), (B, nx.Axis("f", 50)))
    y = nx.nn.Dropout(0.3)(xn, key=key)
    keep = np.asarray(jax.random.bernoulli(key, 0.7, (3, 50)))
    assert y.axes == xn.axes
    np.testing.assert_allclose(y.array, np.where(keep, x / 0.7, 0.0), rtol=1e-6)
    assert 0.15 < 1 - keep.mean() < 0.45


def test_dropout_broadcast_axes_keep_order(key, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = nx.nn.Dropout(0.5, broadcast_axes="batch")(nx.named(jnp.asarray(x), (B, E)), key=key)
    assert y.axes == (B, E)
    keep = np.asarray(jax.random.bernoulli(key, 0.5, (4,)))  # one mask over embed, shared by the batch
    np.testing.assert_allclose(y.array, np.where(keep[None, :], x / 0.5, 0.0), rtol=1e-6)


def test_dropout_off_and_extremes(key):
    x = nx.ones((B, E))
    assert nx.nn.Dropout(0.5)(x, inference=True) is x
    assert nx.nn.Dropout(0.5, inference=True)(x) is x
    assert nx.nn.Dropout(0.0)(x) is x  # nothing to drop: no key needed
    np.testing.assert_array_equal(nx.nn.Dropout(1.0)(x, key=key).array, np.zeros((3, 4)))
    out = nx.nn.Dropout(0.5, inference=True)(x, key=key, inference=False)
    assert set(np.unique(out.array).tolist()) <= {0.0, 2.0}


def test_dropout_errors(key):
    with pytest.raises(ValueError, match="a PRNG `key` is required while dropout is active"):
        nx.nn.Dropout(0.5)(nx.ones(E))
    with pytest.raises(ValueError, match="`pdrop` must be a float in \\[0, 1\\], got 1.5"):
        nx.nn.Dropout(1.5)
    with pytest.raises(ValueError, match="`pdrop` must be a float"):
        nx.nn.dropout(nx.ones(E), -0.1, key=key)
    with pytest.raises(ValueError, match="`pdrop` must be a float"):
        nx.nn.Dropout(np.float32(1.5))


def test_dropout_accepts_numpy_scalars(key):
    # a probability computed with numpy is a float in [0, 1] too (np.float32 is no Python float)
    x = nx.ones((B, E))
    keep = np.asarray(jax.random.bernoulli(key, 0.75, (3, 4)))
    for p in (np.float32(0.25), np.float16(0.25), np.float64(0.25)):
        np.testing.assert_allclose(nx.nn.Dropout(p)(x, key=key).array, np.where(keep, 1 / 0.75, 0.0), rtol=1e-6)
    assert nx.nn.dropout(x, np.int64(0), key=key) is x


def test_dropout_jit_grad_vmap(key):
    x = nx.ones((B, E))
    drop = nx.nn.Dropout(0.5)
    eager = drop(x, key=key)
    np.testing.assert_array_equal(jax.jit(lambda m, v, k: m(v, key=k))(drop, x, key).array, eager.array)
    g = jax.grad(lambda v: nx.sum(drop(v, key=key), axis=None).array)(x)
    np.testing.assert_array_equal(g.array, eager.array)  # d(mask * x / q) / dx = mask / q
    keys = nx.random.split(key, B)
    per_row = nx.vmap(lambda v, k: drop(v, key=k), B)(x, keys)
    for i in range(3):
        np.testing.assert_array_equal(per_row.array[i], drop(x["batch", i], key=keys.array[i]).array)


def test_dropout_inference_mode(key):
    """eqx.nn.inference_mode flips Dropout's flag (it used to fail: "False is not a leaf"), in a
    model that mixes it with other layers, and the model still goes through jax.jit and jax.grad
    (the flag is static structure, not a bool leaf)."""

    class Net(eqx.Module):
        lin: nx.nn.Linear
        drop: nx.nn.Dropout

        def __call__(self, v, *, key=None):
            return self.drop(self.lin(v), key=key)

    net = Net(nx.nn.Linear.init(E, nx.Axis("out", 5), key=key), nx.nn.Dropout(0.5))
    x = nx.ones((B, E))
    evaluation = eqx.nn.inference_mode(net)
    assert evaluation.drop.inference and not net.drop.inference
    assert jax.tree.leaves(evaluation) == jax.tree.leaves(net)  # only the arrays are leaves
    tree_allclose(evaluation(x), net.lin(x))  # off: no key needed, the identity
    tree_allclose(jax.jit(lambda m, v: m(v))(evaluation, x), net.lin(x))
    training = eqx.nn.inference_mode(evaluation, False)
    assert not training.drop.inference
    k = jax.random.key(7)
    ref = net.drop(net.lin(x), key=k)  # the eager layer is the reference
    tree_allclose(jax.jit(lambda m, v, kk: m(v, key=kk))(training, x, k), ref)
    for model in (net, training):  # jax.grad over the whole model, before and after the round trip
        g = jax.grad(lambda m: nx.sum(m(x, key=k), axis=None).array)(model)
        mask = (ref.array != 0) / 0.5  # d(mask * lin(x) / q) / d bias = mask / q, summed over batch
        np.testing.assert_allclose(g.lin.bias.array, mask.sum(0), rtol=1e-6)
    # tree_at on the flag works too, and a flag that is not a bool is refused
    assert eqx.tree_at(lambda m: m.drop.inference, net, True).drop.inference
    with pytest.raises(TypeError, match="^Dropout: `inference` must be a bool"):
        eqx.tree_at(lambda m: m.drop.inference, net, "yes")
    with pytest.raises(TypeError, match="^Dropout: the `inference` field must be a concrete bool"):
        jax.jit(lambda m, f: eqx.nn.inference_mode(m, f))(net, jnp.bool_(True))


def test_dropout_traced_inference_selects_at_run_time(key):
    """A traced per-call `inference` (a jax.jit argument) selects between the two results, as a
    Python bool would; it needs a key, since dropout may be active."""
    x = nx.named(jnp.arange(12.0).reshape(3, 4), (B, E))
    drop = nx.nn.Dropout(0.5)
    f = jax.jit(lambda v, off, k: drop(v, key=k, inference=off))
    tree_allclose(f(x, jnp.bool_(True), key), x)
    tree_allclose(f(x, jnp.bool_(False), key), drop(x, key=key))
    with pytest.raises(ValueError, match="`inference` is traced"):
        jax.jit(lambda v, off: drop(v, inference=off))(x, jnp.bool_(True))
    with pytest.raises(TypeError, match="`inference` must be a bool"):
        drop(x, inference="no")


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


def test_mlp_against_positional(key, rng):
    X, Y = nx.Axis("x", 3), nx.Axis("y", 2)
    mlp = nx.nn.MLP.init(X, Y, nx.Axis("h", 6), depth=2, activation=nx.nn.tanh, key=key)
    mlp = eqx.tree_at(
        lambda m: [layer.bias.array for layer in m.layers],
        mlp,
        [randn(rng, *layer.bias.array.shape) for layer in mlp.layers],
    )
    assert [layer.Out for layer in mlp.layers] == [nx.Axis("h", 6), nx.Axis("h2", 6), Y]
    x = randn(rng, 5, 3)
    h = x
    for i, layer in enumerate(mlp.layers):
        h = h @ layer.weight.array.T + layer.bias.array
        if i < 2:
            h = jnp.tanh(h)
    assert_named_close(mlp(nx.named(x, ("batch", "x"))), h, ("batch", "y"), atol=1e-5)
    keys = jax.random.split(key, 3)
    for layer, k in zip(mlp.layers, keys, strict=True):  # each layer initialised with its own key
        w = jax.random.truncated_normal(k, -3.0, 3.0, layer.weight.array.shape) / np.sqrt(layer.weight.array.shape[1])
        np.testing.assert_allclose(layer.weight.array, w, rtol=1e-6)


def test_mlp_depth_zero_no_bias_and_errors(key):
    X, Y = nx.Axis("x", 3), nx.Axis("y", 2)
    mlp = nx.nn.MLP.init(X, Y, 4, depth=0, key=key, use_final_bias=False)
    assert len(mlp.layers) == 1 and mlp.layers[0].bias is None
    assert nx.nn.MLP.init(X, Y, 4, depth=1, key=key).layers[0].Out == nx.Axis("mlp", 4)
    with pytest.raises(ValueError, match="`depth` must be an int >= 0"):
        nx.nn.MLP.init(X, Y, 4, depth=-1, key=key)
    with pytest.raises(TypeError, match="`Hidden` must be an Axis or an int"):
        nx.nn.MLP.init(X, Y, "mlp", depth=1, key=key)
    with pytest.raises(ValueError, match="clash with In"):
        nx.nn.MLP.init(X, Y, X, depth=1, key=key)
    # depth 1 uses Hidden only: an outer axis named like the unused alias "mlp2" is no clash
    mlp2 = nx.Axis("mlp2", 3)
    one = nx.nn.MLP.init(mlp2, Y, 4, depth=1, key=key)
    x = nx.ones({"batch": 2, "mlp2": 3})
    h = jnp.ones((2, 3)) @ one.layers[0].weight.array.T + one.layers[0].bias.array
    ref = jax.nn.relu(h) @ one.layers[1].weight.array.T + one.layers[1].bias.array
    assert_named_close(one(x), ref, ("batch", "y"))
    with pytest.raises(ValueError, match="clash with In"):
        nx.nn.MLP.init(mlp2, Y, 4, depth=2, key=key)  # depth 2 uses mlp and mlp2
    with pytest.raises(TypeError, match="`activation` must be callable"):
        nx.nn.MLP.init(X, Y, 4, depth=1, activation="relu", key=key)


def test_mlp_trains_with_optax(key):
    import optax  # a test dependency

    X, Y, N = nx.Axis("x", 2), nx.Axis("y", 1), nx.Axis("sample", 64)
    kx, km = jax.random.split(key)
    xs = nx.random.uniform(kx, (N, X), minval=-1.0, maxval=1.0)
    ys = nx.sum(nx.sin(3.0 * xs), axis="x").broadcast_axis(Y).rearrange(("sample", "y"))
    model = nx.nn.MLP.init(X, Y, 32, depth=1, activation=nx.nn.gelu, key=km)  # two Linear layers
    opt = optax.adam(1e-2)
    state = opt.init(model)

    def loss_fn(m):
        return nx.mean((m(xs) - ys) ** 2, axis=None).array

    @jax.jit
    def step(m, s):
        loss, g = jax.value_and_grad(loss_fn)(m)
        updates, s = opt.update(g, s, m)
        return optax.apply_updates(m, updates), s, loss

    losses = []
    for _ in range(30):
        model, state, loss = step(model, state)
        losses.append(float(loss))
    assert isinstance(model.layers[0].weight, nx.NamedArray) and model.layers[0].weight.axes == (nx.Axis("mlp", 32), X)
    assert losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------------------------------------
# Activations, softmax, one_hot
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", jax.nn.relu), ("relu6", jax.nn.relu6), ("silu", jax.nn.silu), ("swish", jax.nn.silu),
    ("sigmoid", jax.nn.sigmoid), ("log_sigmoid", jax.nn.log_sigmoid), ("tanh", jnp.tanh),
    ("softplus", jax.nn.softplus), ("soft_sign", jax.nn.soft_sign), ("selu", jax.nn.selu),
    ("hard_tanh", jax.nn.hard_tanh), ("hard_sigmoid", jax.nn.hard_sigmoid), ("hard_silu", jax.nn.hard_silu),
    ("hard_swish", jax.nn.hard_silu), ("mish", jax.nn.mish), ("gelu", jax.nn.gelu), ("elu", jax.nn.elu),
    ("celu", jax.nn.celu), ("leaky_relu", jax.nn.leaky_relu),
    ("quick_gelu", lambda a: a / (1 + np.exp(-1.702 * a))),
]  # fmt: skip


@pytest.mark.parametrize("name,ref", ACTIVATIONS)
def test_activation_against_jax_nn(name, ref, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32) * 3
    f = getattr(nx.nn, name)
    y = f(nx.named(jnp.asarray(x), (B, E)))
    assert y.axes == (B, E)
    np.testing.assert_allclose(y.array, ref(x), rtol=1e-5, atol=1e-6)
    assert f(0.5).axes == ()
    with pytest.raises(TypeError, match="name its axes first"):
        f(jnp.ones(3))


def test_parametrised_activations(rng):
    x = rng.standard_normal(5).astype(np.float32)
    xn = nx.named(jnp.asarray(x), "e")
    np.testing.assert_allclose(nx.nn.gelu(xn, approximate=False).array, jax.nn.gelu(x, approximate=False), rtol=1e-6)
    np.testing.assert_allclose(nx.nn.leaky_relu(xn, 0.2).array, np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(nx.nn.elu(xn, 0.5).array, np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-5)
    np.testing.assert_allclose(nx.nn.celu(xn, 2.0).array, np.where(x > 0, x, 2.0 * np.expm1(x / 2)), rtol=1e-5)
    # differentiable and jittable like the jax.nn function
    g = jax.grad(lambda v: nx.sum(nx.nn.gelu(v), axis=None).array)(xn)
    np.testing.assert_allclose(g.array, jax.grad(lambda v: jax.nn.gelu(v).sum())(x), rtol=1e-5)


def softmax_ref(x, axes):
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    return e / e.sum(axis=axes, keepdims=True)


@pytest.mark.parametrize(
    "names,pick",
    [(("a", "b", "c"), ("b",)), (("c", "a", "b"), ("c",)), (("b", "c", "a"), ("a", "c")), (("a", "c", "b"), None)],
)
def test_softmax_and_log_softmax_by_name(names, pick):
    sizes = {"a": 2, "b": 3, "c": 2}
    x = np.random.default_rng(0).standard_normal([sizes[n] for n in names]).astype(np.float32)
    xn = nx.named(jnp.asarray(x), names)
    axes = tuple(range(3)) if pick is None else tuple(names.index(n) for n in pick)
    y = nx.nn.softmax(xn, pick)
    assert y.axes == xn.axes
    np.testing.assert_allclose(y.array, softmax_ref(x, axes), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nx.nn.log_softmax(xn, pick).array, np.log(softmax_ref(x, axes)), rtol=1e-4, atol=1e-5)


def test_softmax_errors_and_grad():
    x = nx.ones((B, E))
    with pytest.raises(nx.AxisNotFoundError, match="softmax: no axis 'label'"):
        nx.nn.softmax(x, "label")
    with pytest.raises(ValueError, match="listed twice"):
        nx.nn.log_softmax(x, ("embed", "embed"))
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'axis'"):
        nx.nn.softmax(x)  # no default: namedax has no "last axis"
    g = jax.grad(lambda v: nx.nn.log_softmax(v, "embed")["batch", 0, "embed", 1].array)(x)
    np.testing.assert_allclose(g.array[0], np.array([-0.25, 0.75, -0.25, -0.25]), rtol=1e-6)


def test_glu_against_jax_nn(rng):
    x = rng.standard_normal((6, 3)).astype(np.float32)
    y = nx.nn.glu(nx.named(jnp.asarray(x), (nx.Axis("e", 6), B)), "e")
    assert y.axes == (nx.Axis("e", 3), B)
    np.testing.assert_allclose(y.array, jax.nn.glu(x, axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="odd size 3"):
        nx.nn.glu(nx.ones(B), "batch")


def test_one_hot_against_jax_nn():
    ids = jnp.array([[0, 2], [1, 5]])
    L = nx.Axis("label", 3)
    y = nx.nn.one_hot(nx.named(ids, ("a", "b")), L)
    assert y.axes == (nx.Axis("a", 2), nx.Axis("b", 2), L)
    np.testing.assert_array_equal(y.array, jax.nn.one_hot(ids, 3))  # id 5 is out of range: zeros
    np.testing.assert_array_equal(nx.nn.one_hot(1, L).array, [0.0, 1.0, 0.0])
    assert nx.nn.one_hot(1, L, dtype=jnp.int32).dtype == jnp.int32
    with pytest.raises(TypeError, match="`class_axis` must be an Axis"):
        nx.nn.one_hot(nx.named(ids, ("a", "b")), "label")
    with pytest.raises(TypeError, match="ids must be integers"):
        nx.nn.one_hot(nx.ones(B), L)
    with pytest.raises(ValueError, match="already have an axis named 'a'"):
        nx.nn.one_hot(nx.named(ids, ("a", "b")), nx.Axis("a", 3))
    with pytest.raises(TypeError, match="must be an integer NamedArray or an int"):
        nx.nn.one_hot(jnp.array([1]), L)


# ---------------------------------------------------------------------------------------------
# One convention across modules: names, .init, dtype, named scopes, plain-array inputs
# ---------------------------------------------------------------------------------------------


def _every_module(key):
    """(name, module, call) for each module: call(module, x) applies it to a NamedArray or array."""
    bn = nx.nn.BatchNorm.init(E)
    return [
        ("Linear", nx.nn.Linear.init(E, H, key=key), lambda m, x: m(x)),
        ("MLP", nx.nn.MLP.init(E, H, 6, depth=1, key=key), lambda m, x: m(x)),
        ("LayerNorm", nx.nn.LayerNorm.init(E), lambda m, x: m(x)),
        ("RMSNorm", nx.nn.RMSNorm.init(E), lambda m, x: m(x)),
        ("Dropout", nx.nn.Dropout.init(0.5), lambda m, x: m(x, key=key)),
        ("BatchNorm", bn, lambda m, x: m(x, eqx.nn.State(m))[0]),
        ("Embedding", nx.nn.Embedding.init(V, E, key=key), lambda m, x: m.unembed(x)),
        ("Conv", nx.nn.Conv.init(B, E, H, 2, key=key), lambda m, x: m(x)),
        ("ConvTranspose", nx.nn.ConvTranspose.init(B, E, H, 2, key=key), lambda m, x: m(x)),
        ("MultiHeadAttention", nx.nn.MultiHeadAttention.init(E, nx.Axis("heads", 2), nx.Axis("head", 2), key=key,
                                                             Pos="batch", KPos="kpos"), lambda m, x: m(x)),
    ]


def test_every_module_refuses_a_plain_array_naming_itself(key):
    x = jnp.ones((B.size, E.size))
    for name, module, call in _every_module(key):
        with pytest.raises(TypeError, match=rf"^{name}: the input must be a NamedArray, got a plain array of shape "
                           r"\(3, 4\); name its axes first, e.g. nx.named\(x, "):
            call(module, x)
    emb = nx.nn.Embedding.init(V, E, key=key)
    with pytest.raises(TypeError, match=r"Embedding: `ids` .* must be a NamedArray, got a plain array of shape \(2,\)"):
        emb(jnp.array([1, 2]))


def test_every_module_call_runs_under_its_named_scope(key):
    """The module's name is on the name stack of every equation it emits (profiles, HLO op names)."""
    x = nx.ones((B, E))
    for name, module, call in _every_module(key):
        eqns = jax.make_jaxpr(lambda v: call(module, v))(x).eqns
        assert eqns and all(str(e.source_info.name_stack).startswith(name) for e in eqns), name
        hlo = jax.jit(lambda v: call(module, v)).lower(x).as_text(debug_info=True)
        assert f'/{name}/' in hlo, name  # op locations read jit(<lambda>)/Linear/dot_general
    emb = nx.nn.Embedding.init(V, E, key=key)
    eqns = jax.make_jaxpr(lambda i: emb(i))(nx.named(jnp.array([1, 2]), "pos")).eqns
    assert any(str(e.source_info.name_stack).startswith("Embedding") for e in eqns)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_dtype_sets_every_parameter_dtype(key, dtype):
    bn = nx.nn.BatchNorm.init(E, dtype=dtype)
    modules = [
        nx.nn.Linear.init(E, H, key=key, dtype=dtype),
        nx.nn.MLP.init(E, H, 6, depth=2, key=key, dtype=dtype),
        nx.nn.LayerNorm.init(E, dtype=dtype),
        nx.nn.RMSNorm.init(E, use_bias=True, dtype=dtype),
        nx.nn.Embedding.init(V, E, key=key, dtype=dtype),
        bn,
    ]
    for m in modules:
        leaves = jax.tree.leaves(m)
        assert leaves and {leaf.dtype for leaf in leaves} == {jnp.dtype(dtype)}, type(m).__name__
    # the draw is jax.random's in that dtype, scaled as in float32
    ref = jax.random.truncated_normal(key, -3.0, 3.0, (H.size, E.size), dtype) / np.sqrt(E.size)
    np.testing.assert_array_equal(np.asarray(modules[0].weight.array, np.float32), np.asarray(ref, np.float32))
    ref = jax.random.normal(key, (V.size, E.size), dtype) * 0.02
    np.testing.assert_array_equal(np.asarray(modules[4].weight.array, np.float32), np.asarray(ref, np.float32))
    # a float32 input through a bfloat16 layer promotes as jax.numpy does
    assert modules[0](nx.ones((B, E))).dtype == jnp.promote_types(jnp.float32, dtype)


def test_dtype_float64_with_x64(key):
    with jax.enable_x64(True):
        for m in (
            nx.nn.Linear.init(E, H, key=key, dtype=jnp.float64),
            nx.nn.Embedding.init(V, E, key=key, dtype=jnp.float64),
            nx.nn.LayerNorm.init(E, dtype=jnp.float64),
            nx.nn.MLP.init(E, H, 6, depth=1, key=key, dtype=jnp.float64),
        ):
            assert {leaf.dtype for leaf in jax.tree.leaves(m)} == {jnp.dtype(jnp.float64)}
        ref = jax.random.truncated_normal(key, -3.0, 3.0, (H.size, E.size), jnp.float64) / np.sqrt(E.size)
        np.testing.assert_allclose(nx.nn.Linear.init(E, H, key=key, dtype=jnp.float64).weight.array, ref, rtol=1e-15)


def test_embedding_init_scale_is_the_standard_deviation_and_initializer_range_its_alias(key):
    ref = np.asarray(jax.random.normal(key, (V.size, E.size)))
    np.testing.assert_allclose(nx.nn.Embedding.init(V, E, key=key).weight.array, ref * 0.02, rtol=1e-6)
    for emb in (
        nx.nn.Embedding.init(V, E, key=key, init_scale=0.5),
        nx.nn.Embedding.init(V, E, 0.5, key=key),  # the old positional form
        nx.nn.Embedding.init(V, E, initializer_range=0.5, key=key),
    ):
        np.testing.assert_allclose(emb.weight.array, ref * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(nx.nn.Embedding.init(V, E, key=key, init_scale=0.0).weight.array, 0.0)
    with pytest.raises(TypeError, match="give `init_scale` only"):
        nx.nn.Embedding.init(V, E, 0.5, key=key, init_scale=0.5)


def test_mlp_init_passes_init_scale_and_out_first_to_every_linear(key):
    mlp = nx.nn.MLP.init(E, H, 6, depth=2, key=key, init_scale=3.0, out_first=False)
    keys = jax.random.split(key, 3)
    for layer, k in zip(mlp.layers, keys):
        ref = nx.nn.Linear.init(layer.In, layer.Out, key=k, init_scale=3.0, out_first=False)
        assert layer.weight.axes == ref.weight.axes == nx.concat_axes(layer.weight.axes[:1], layer.weight.axes[1:])
        assert layer.weight.axes[0].name == nx.axis_name(layer.In if isinstance(layer.In, nx.Axis) else layer.In[0])
        fan_in = layer.weight.axes[0].size
        raw = jax.random.truncated_normal(k, -3.0, 3.0, tuple(a.size for a in layer.weight.axes)) * 3.0
        np.testing.assert_allclose(layer.weight.array, raw / np.sqrt(fan_in), rtol=1e-6)


def test_every_module_has_an_init_taking_key(key):
    """Each module is built by ``Module.init(..., key=...)``; modules without randomness ignore the key."""
    drop = nx.nn.Dropout.init(0.25, broadcast_axes="batch", inference=True, key=key)
    assert drop == nx.nn.Dropout(0.25, "batch", True) and isinstance(drop, nx.nn.Dropout)
    assert drop.pdrop == 0.25 and drop.broadcast_axes == ("batch",) and bool(drop.inference)
    for cls in (nx.nn.LayerNorm, nx.nn.RMSNorm, nx.nn.BatchNorm):
        a, b = cls.init(E, key=key), cls.init(E)
        assert type(a) is cls and a.axis == b.axis == E
        tree_allclose((a.weight, a.bias), (b.weight, b.bias))
    # through Stacked, which hands every init its layer's key
    Layers = nx.Axis("layers", 3)
    stack = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(E, key=nx.random.split(key, Layers))
    assert stack.stacked.weight.axes == (Layers, E)


def test_rmsnorm_has_haliaxs_name_too():
    assert nx.nn.RmsNorm is nx.nn.RMSNorm
