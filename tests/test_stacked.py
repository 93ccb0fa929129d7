"""nn.Stacked: construction, fold / scan / vmap against Python loops over single layers, checkpointing."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import tree_allclose

L, E, M, B = nx.Axis("layers", 4), nx.Axis("embed", 4), nx.Axis("mlp", 6), nx.Axis("batch", 3)
TRACES = {"n": 0}


class Block(eqx.Module):
    norm: nx.nn.LayerNorm
    up: nx.nn.Linear
    down: nx.nn.Linear
    drop: nx.nn.Dropout

    @classmethod
    def init(cls, Embed, Mlp, *, key, pdrop=0.0):
        k1, k2 = jax.random.split(key)
        return cls(
            nx.nn.LayerNorm.init(Embed),
            nx.nn.Linear.init(Embed, Mlp, key=k1),
            nx.nn.Linear.init(Mlp, Embed, key=k2),
            nx.nn.Dropout(pdrop),
        )

    def __call__(self, x, scale=None, *, key=None):
        TRACES["n"] += 1
        h = self.drop(self.down(nx.nn.gelu(self.up(self.norm(x)))), key=key)
        if scale is not None:
            h = h * scale
        return x + h

    def with_summary(self, x):
        y = Block.__call__(self, x)
        return y, nx.mean(y, axis="embed")


class PairBlock(Block):
    def __call__(self, x, scale=None, *, key=None):
        return self.with_summary(x)


class LayersOut(Block):
    def __call__(self, x, scale=None, *, key=None):
        return x, nx.ones(L)  # an output holding the Layers axis


def perturbed(tree):
    """Different values in every array leaf, so that no parameter is trivial (LayerNorm's ones, zero
    biases). Deterministic and without RNG: new random shapes cost a compile each."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten(
        [a + 0.3 * jnp.sin(1.7 * jnp.arange(a.size).reshape(a.shape) + i) for i, a in enumerate(leaves)]
    )


@pytest.fixture(scope="module")
def stack():
    s = nx.nn.Stacked.init(L, Block)(E, M, key=jax.random.split(jax.random.key(0), L.size))
    return perturbed(s)


@pytest.fixture(scope="module")
def x():
    return nx.named(jnp.asarray(np.random.default_rng(1).standard_normal((3, 4)), jnp.float32), (B, E))


def loop(layers, x, **kw):
    for layer in layers:
        x = layer(x, **kw)
    return x


# ---------------------------------------------------------------------------------------------
# Construction and single layers
# ---------------------------------------------------------------------------------------------


def test_init_equals_per_layer_init(key):
    keys = jax.random.split(key, L.size)
    stack = nx.nn.Stacked.init(L, Block)(E, M, key=keys)
    assert stack.Layers == L and stack.gradient_checkpointing is False and stack.unroll == 1
    assert stack.stacked.up.weight.axes == (L, M, E)
    assert stack.stacked.norm.bias.axes == (L, E)
    assert stack.stacked.up.In == E and stack.stacked.drop.pdrop == 0.0  # static fields are shared
    for i in range(L.size):
        ref = Block.init(E, M, key=keys[i])
        tree_allclose(stack.get_layer(i), ref)
        np.testing.assert_array_equal(stack.stacked.up.weight.array[i], ref.up.weight.array)
    # named keys (nx.random.split over Layers) are the same keys
    named = nx.nn.Stacked.init(L, Block)(E, M, key=nx.random.split(key, L))
    tree_allclose(named, stack)


def test_init_shares_named_arrays_without_layers_and_maps_those_with():
    class Scaled(eqx.Module):  # no init: the constructor is vmapped
        w: nx.NamedArray
        c: nx.NamedArray

        def __call__(self, x):
            return x * self.w + self.c

    w = nx.named(jnp.arange(8.0).reshape(2, 4), ("x", "layers"))
    c = nx.named(jnp.array([1.0, 2.0]), "x")
    stack = nx.nn.Stacked.init(L, Scaled)(w, c)
    assert stack.stacked.w.axes == (L, nx.Axis("x", 2)) and stack.stacked.c.axes == (L, nx.Axis("x", 2))
    np.testing.assert_array_equal(stack.stacked.w.array, np.arange(8.0).reshape(2, 4).T)
    np.testing.assert_array_equal(stack.stacked.c.array, np.tile([1.0, 2.0], (4, 1)))


def test_get_layer_and_unstacked(stack):
    layers = stack.unstacked()
    assert len(layers) == L.size
    for i, layer in enumerate(layers):
        assert layer.up.weight.axes == (M, E)
        np.testing.assert_array_equal(layer.up.weight.array, stack.stacked.up.weight.array[i])
        np.testing.assert_array_equal(layer.norm.weight.array, stack.stacked.norm.weight.array[i])
    tree_allclose(stack.get_layer(-1), layers[-1])
    tree_allclose(stack.get_layer(np.int64(2)), layers[2])
    traced = jax.jit(lambda s, i: s.get_layer(i))(stack, jnp.int32(1))
    tree_allclose(traced, layers[1])
    with pytest.raises(IndexError, match="index 4 is out of range for Axis\\('layers', 4\\)"):
        stack.get_layer(4)
    with pytest.raises(TypeError, match="the index must be an int"):
        stack.get_layer(1.0)


class Affine(eqx.Module):  # plain-array parameters and no init: Stacked.init vmaps the constructor
    w: jax.Array
    b: jax.Array

    def __call__(self, v):
        return jnp.tanh(self.w @ v + self.b)


def test_plain_array_modules():
    w = jnp.sin(jnp.arange(36.0)).reshape(4, 3, 3)
    b = jnp.cos(jnp.arange(12.0)).reshape(4, 3)
    stack = nx.nn.Stacked.init(L, Affine)(w, b)  # plain arrays are split along their first dimension
    assert stack.stacked.w.shape == (4, 3, 3) and stack.stacked.b.shape == (4, 3)
    refs = [Affine(w[i], b[i]) for i in range(4)]
    v = jnp.array([1.0, -2.0, 0.5])
    tree_allclose(stack.fold(v), loop(refs, v))
    tree_allclose(stack.vmap(v), jnp.stack([r(v) for r in refs]))
    tree_allclose(stack.get_layer(2), refs[2])
    bad = nx.nn.Stacked(Affine(w[0], b[0]), L)  # not stacked: w (3, 3) does not lead with 4
    with pytest.raises(ValueError, match="parameter '.w' has shape \\(3, 3\\), but every plain array"):
        bad.fold(v)


class ScaledAffine(Affine):
    alpha: float = 0.5  # a Python scalar field: shared by the layers, a 0-d array under jax.jit / jax.grad

    def __call__(self, v):
        return self.alpha * Affine.__call__(self, v)


def test_python_scalar_field_under_jit_and_grad():
    w = jnp.sin(jnp.arange(36.0)).reshape(4, 3, 3)
    b = jnp.cos(jnp.arange(12.0)).reshape(4, 3)
    stack = nx.nn.Stacked.init(L, ScaledAffine)(w, b)
    refs = [ScaledAffine(w[i], b[i]) for i in range(4)]
    v = jnp.array([1.0, -2.0, 0.5])
    # a Python loop over single layers works under jax.jit and jax.grad, and so must the stack
    tree_allclose(jax.jit(lambda s, u: s.fold(u))(stack, v), jax.jit(loop)(refs, v))
    tree_allclose(jax.jit(lambda s, u: s.vmap(u))(stack, v), jnp.stack([r(v) for r in refs]))
    tree_allclose(jax.jit(lambda s: s.get_layer(1))(stack), refs[1])
    g = jax.grad(lambda s: jnp.sum(s.fold(v) ** 2))(stack)
    g_loop = jax.grad(lambda rs: jnp.sum(loop(rs, v) ** 2))(refs)
    np.testing.assert_allclose(g.stacked.alpha, sum(r.alpha for r in g_loop), rtol=1e-5)  # shared: summed
    tree_allclose(g.stacked.w, jnp.stack([r.w for r in g_loop]), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# fold, scan, vmap
# ---------------------------------------------------------------------------------------------


def test_fold_equals_python_loop(stack, x):
    ref = loop(stack.unstacked(), x)
    out = stack.fold(x)
    assert out.axes == x.axes
    tree_allclose(out, ref, atol=1e-5)
    tree_allclose(jax.jit(lambda s, v: s.fold(v))(stack, x), ref, atol=1e-5)


def test_fold_per_layer_and_shared_arguments(stack, x):
    per_layer = nx.named(jnp.arange(16.0).reshape(4, 4) / 10, (E, L))  # Layers not first: sliced by name
    out = stack.fold(x, per_layer)
    ref = x
    for i, layer in enumerate(stack.unstacked()):
        ref = layer(ref, per_layer["layers", i])
    tree_allclose(out, ref, atol=1e-5)
    shared = nx.named(jnp.array([1.0, 0.5, -1.0, 2.0]), E)  # no Layers: every layer gets it whole
    tree_allclose(stack.fold(x, scale=shared), loop(stack.unstacked(), x, scale=shared), atol=1e-5)


def test_plain_array_arguments_are_never_sliced(stack, x):
    plain = jnp.arange(float(L.size * E.size)).reshape(L.size, E.size)  # leading dim == Layers.size

    def step(layer, h, p):
        assert p.shape == (L.size, E.size)  # whole, in every layer
        return layer(h) + nx.sum(nx.named(p, ("r", "embed")), axis="r") / 100

    out = stack.fold_via(step)(x, plain)
    ref = x
    for layer in stack.unstacked():
        ref = layer(ref) + nx.named(plain.sum(0) / 100, E)
    tree_allclose(out, ref, atol=1e-5)


def test_scan_outputs_equal_the_loop(stack, x, key):
    pair = nx.nn.Stacked.init(L, PairBlock)(E, M, key=jax.random.split(key, L.size))  # inherits the classmethod
    assert type(pair.stacked) is PairBlock
    pair = jax.tree.unflatten(jax.tree.structure(pair), jax.tree.leaves(stack))  # the same parameters
    carry, outs = pair.scan(x)
    carry2, outs2 = stack.scan_via(Block.with_summary)(x)
    ref, ref_outs = x, []
    for layer in stack.unstacked():
        ref, o = layer.with_summary(ref)
        ref_outs.append(o.array)
    for c, o in ((carry, outs), (carry2, outs2)):
        tree_allclose(c, ref, atol=1e-5)
        assert o.axes == (L, B)
        np.testing.assert_allclose(o.array, np.stack(ref_outs), rtol=1e-5, atol=1e-5)


def test_vmap_equals_per_layer_calls(stack, x):
    out = stack.vmap(x)
    assert out.axes == (L, B, E)
    for i, layer in enumerate(stack.unstacked()):
        tree_allclose(out["layers", i], layer(x), atol=1e-5)
    inputs = nx.named(jnp.ones((4, 3, 4)), (L, B, E))  # an input holding Layers is per layer
    out2 = stack.vmap_via(lambda layer, v, s: layer(v, s))(inputs, nx.named(jnp.arange(4.0), L))
    for i, layer in enumerate(stack.unstacked()):
        tree_allclose(out2["layers", i], layer(inputs["layers", i], float(i)), atol=1e-5)


def test_per_layer_dropout_keys(key, x):
    stack = nx.nn.Stacked.init(L, Block)(E, M, key=jax.random.split(key, L.size), pdrop=0.5)
    keys = nx.random.split(jax.random.key(3), L)
    out = jax.jit(lambda s, v, k: s.fold(v, key=k))(stack, x, keys)
    ref = x
    for i, layer in enumerate(stack.unstacked()):
        ref = layer(ref, key=keys.array[i])
    tree_allclose(out, ref, atol=1e-5)
    # each layer drew its own mask: the same key for every layer gives another result
    shared = stack.fold(x, key=jax.random.key(3))
    assert not np.allclose(shared.array, out.array)
    tree_allclose(shared, loop(stack.unstacked(), x, key=jax.random.key(3)), atol=1e-5)
    # and the masks differ between layers
    masks = stack.vmap_via(lambda layer, k: layer.drop(nx.ones(E), key=k))(keys)
    assert len({tuple(np.asarray(masks.array[i]).tolist()) for i in range(L.size)}) > 1


def test_inference_mode_of_a_stack_with_dropout(key, x):
    """eqx.nn.inference_mode reaches the Dropout of every layer of a stack (it used to fail: "False
    is not a leaf"); the stack then equals a loop with dropout off per call, and back in training
    it equals the loop with per-layer keys, under jax.jit and jax.grad as before."""
    stack = perturbed(nx.nn.Stacked.init(L, Block)(E, M, key=jax.random.split(key, L.size), pdrop=0.5))
    evaluation = eqx.nn.inference_mode(stack)
    assert evaluation.stacked.drop.inference and all(layer.drop.inference for layer in evaluation.unstacked())
    off = [eqx.tree_at(lambda b: b.drop, layer, nx.nn.Dropout(0.5, inference=True)) for layer in stack.unstacked()]
    tree_allclose(jax.jit(lambda s, v: s.fold(v))(evaluation, x), loop(off, x), atol=1e-5)
    tree_allclose(evaluation.fold(x), loop(off, x), atol=1e-5)
    training = eqx.nn.inference_mode(evaluation, False)
    keys = nx.random.split(jax.random.key(3), L)
    ref = x
    for i, layer in enumerate(stack.unstacked()):
        ref = layer(ref, key=keys.array[i])
    tree_allclose(jax.jit(lambda s, v, k: s.fold(v, key=k))(training, x, keys), ref, atol=1e-5)

    def loss(s):
        return nx.sum(s.fold(x, key=keys) ** 2, axis=None).array

    tree_allclose(jax.jit(jax.grad(loss))(training).stacked, jax.jit(jax.grad(loss))(stack).stacked, atol=1e-6)
    g = eqx.filter_grad(loss)(training)
    tree_allclose(g.stacked, jax.grad(loss)(stack).stacked, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Gradients, checkpointing, unroll, tracing once
# ---------------------------------------------------------------------------------------------


def loss_of_fold(s, x):
    return nx.sum(s.fold(x) ** 2, axis=None).array


def test_gradients_equal_the_loop(stack, x):
    g = jax.jit(jax.grad(loss_of_fold))(stack, x)
    g_loop = jax.jit(jax.grad(lambda layers: nx.sum(loop(layers, x) ** 2, axis=None).array))(stack.unstacked())
    for i in range(L.size):
        tree_allclose(g.get_layer(i), g_loop[i], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def plain_grads(stack, x):
    return jax.jit(jax.grad(loss_of_fold))(stack, x).stacked


@pytest.mark.parametrize("policy", [True, jax.checkpoint_policies.dots_saveable])
def test_checkpointing_gives_the_same_results_and_gradients(stack, x, plain_grads, policy):
    ck = nx.nn.Stacked(stack.stacked, L, gradient_checkpointing=policy)
    tree_allclose(ck.fold(x), stack.fold(x), rtol=1e-6, atol=1e-6)
    tree_allclose(jax.jit(jax.grad(loss_of_fold))(ck, x).stacked, plain_grads, rtol=1e-5, atol=1e-6)
    jaxpr = str(jax.make_jaxpr(jax.grad(loss_of_fold))(ck, x))
    assert "remat" in jaxpr or "checkpoint" in jaxpr
    assert "remat" not in str(jax.make_jaxpr(jax.grad(loss_of_fold))(stack, x))


def test_checkpointed_scan_gradients(stack, x):
    ck = nx.nn.Stacked(stack.stacked, L, gradient_checkpointing=True)
    pair = jax.jit(jax.grad(lambda s: nx.sum(s.scan_via(Block.with_summary)(x)[1], axis=None).array))
    tree_allclose(pair(ck).stacked, pair(stack).stacked, rtol=1e-5, atol=1e-6)


def test_unroll_option(stack, x):
    unrolled = nx.nn.Stacked.init(L, Block, unroll=2)(E, M, key=jax.random.split(jax.random.key(0), 4))
    unrolled = eqx.tree_at(lambda s: s.stacked, unrolled, stack.stacked)
    assert unrolled.unroll == 2
    tree_allclose(unrolled.fold(x), stack.fold(x), atol=1e-6)
    assert "unroll=2" in str(jax.make_jaxpr(lambda s: s.fold(x))(unrolled))


def test_layer_traced_once_whatever_the_depth(x):
    sizes = []
    for n in (2, 64):
        build = nx.nn.Stacked.init(L.resize(n), Block)
        s = eqx.filter_eval_shape(build, E, M, key=jax.random.split(jax.random.key(0), n))  # shapes only
        TRACES["n"] = 0
        jaxpr = jax.make_jaxpr(lambda s: s.fold(x))(s)
        assert TRACES["n"] == 1
        sizes.append(len(jaxpr.eqns))
        assert "scan" in {e.primitive.name for e in jaxpr.eqns}
    assert sizes[0] == sizes[1]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_init_errors(key):
    with pytest.raises(ValueError, match="argument 'key' of Block.init is a plain array of shape \\(3,\\); plain"):
        nx.nn.Stacked.init(L, Block)(E, M, key=jax.random.split(key, 3))
    with pytest.raises(ValueError, match="plain array of shape \\(\\);.*jax.random.split\\(key, 4\\)"):
        nx.nn.Stacked.init(L, Block)(E, M, key=key)
    with pytest.raises(ValueError, match=r"argument 'key' has Axis\('layers', 2\).*the stack has Axis\('layers', 4\)"):
        nx.nn.Stacked.init(L, Block)(E, M, key=nx.random.split(key, L.resize(2)))
    with pytest.raises(TypeError, match="`Layers` must be an Axis"):
        nx.nn.Stacked.init("layers", Block)
    with pytest.raises(TypeError, match="`Module` must be a module class"):
        nx.nn.Stacked.init(L, Block.init)
    with pytest.raises(TypeError, match="`gradient_checkpointing` must be False, True or a jax.checkpoint policy"):
        nx.nn.Stacked.init(L, Block, gradient_checkpointing="full")
    with pytest.raises(ValueError, match="`unroll` must be an int >= 1"):
        nx.nn.Stacked.init(L, Block, unroll=0)
    with pytest.raises(TypeError, match="`Layers` must be an Axis"):
        nx.nn.Stacked(None, 4)


def test_subclass_inheriting_a_staticmethod_init_is_an_error():
    class Parent(eqx.Module):
        w: nx.NamedArray

        @staticmethod
        def init(Embed):
            return Parent(nx.ones(Embed))

    class Child(Parent):
        pass

    with pytest.raises(TypeError, match="Child.init returned an instance of Parent, not of Child.*staticmethod"):
        nx.nn.Stacked.init(L, Child)(E)
    assert type(nx.nn.Stacked.init(L, Parent)(E).stacked) is Parent


def test_call_errors(stack, x):
    bad = nx.named(jnp.ones(3), L.resize(3))
    with pytest.raises(ValueError, match="Stacked.fold: argument 'args\\[0\\]' has Axis\\('layers', 3\\)"):
        stack.fold(x, bad)
    with pytest.raises(ValueError, match="Stacked.scan: argument 'key' has Axis\\('layers', 3\\)"):
        stack.scan(x, key=nx.random.split(jax.random.key(0), L.resize(3)))
    with pytest.raises(ValueError, match="Stacked.vmap: argument 'args\\[1\\]' has Axis\\('layers', 3\\)"):
        stack.vmap(x, bad)
    with pytest.raises(TypeError, match="each layer must return a pair \\(carry, output\\)"):
        stack.scan(x)
    # an output holding Layers cannot be stacked on it: the error names the method called
    with pytest.raises(ValueError, match="^Stacked.scan: the function returned a NamedArray with axes .*'layers'"):
        nx.nn.Stacked(LayersOut(*(getattr(stack.stacked, f) for f in ("norm", "up", "down", "drop"))), L).scan(x)
    with pytest.raises(ValueError, match="^Stacked.scan_via: the function returned a NamedArray with axes"):
        stack.scan_via(lambda layer, h: (layer(h), nx.ones(L)))(x)
    with pytest.raises(ValueError, match="Stacked.fold_via: a layer must return a carry like its input"):
        stack.fold_via(lambda layer, h: nx.rename(layer(h), {"embed": "e"}))(x)
    with pytest.raises(ValueError, match="a layer must return a carry like its input"):
        stack.fold_via(lambda layer, h: layer(h).astype(jnp.float16))(x)
    with pytest.raises(TypeError, match="split the key by name"):
        nx.nn.Stacked.init(L, Block)(E, M, key=jax.random.split(jax.random.key(0), 4), pdrop=0.5).fold(
            x, key=jax.random.split(jax.random.key(1), 4)
        )


def test_get_layer_index_known_at_run_time_is_range_checked():
    # issue 14 item 8: a traced index out of range is an error when the program runs (eqx.error_if);
    # a concrete one (int or concrete jax scalar) raises IndexError at once
    Layers = nx.Axis("layers", 3)
    stack = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(nx.Axis("embed", 2))
    w = np.arange(3.0)[:, None] * np.ones((3, 2))
    stack = eqx.tree_at(lambda s: s.stacked.weight, stack, nx.named(jnp.asarray(w), stack.stacked.weight.axes))
    pick = eqx.filter_jit(lambda s, i: s.get_layer(i).weight.array)
    np.testing.assert_array_equal(pick(stack, jnp.int32(2)), w[2])
    np.testing.assert_array_equal(pick(stack, jnp.int32(-1)), w[2])  # negative counts from the end
    for bad in (3, -4):
        with pytest.raises(eqx.EquinoxRuntimeError, match="Stacked.get_layer: index out of range"):
            jax.block_until_ready(pick(stack, jnp.int32(bad)))
    with pytest.raises(IndexError, match="index 3 is out of range"):
        stack.get_layer(jnp.int32(3))
    with pytest.raises(IndexError, match="index -4 is out of range"):
        stack.get_layer(-4)
