"""namedax.compat.haliax: haliax's call forms, checked against jax.numpy / numpy on the positional arrays."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
import namedax.compat.haliax as hax
from namedax.compat.haliax.axis import rearrange_for_partial_order

H, W, D = hax.Axis("H", 2), hax.Axis("W", 3), hax.Axis("D", 4)
_RNG = np.random.default_rng(0)


def _arr(*shape):
    return jnp.asarray(_RNG.standard_normal(shape), dtype=jnp.float32)


# ---- dot ----------------------------------------------------------------------------------------


def test_dot_both_forms_match_einsum():
    a, b = _arr(2, 3, 4), _arr(4, 3, 2)
    x, y = hax.named(a, (H, W, D)), hax.named(b, (D, W, H))
    want = jnp.einsum("hwd,dwh->d", a, b)
    new = hax.dot(x, y, axis=(H, W))
    old = hax.dot((H, W), x, y)  # haliax's older axes-first form
    assert new.axes == old.axes == (D,)
    np.testing.assert_allclose(new.array, want, rtol=1e-5)
    np.testing.assert_allclose(old.array, want, rtol=1e-5)
    np.testing.assert_allclose(hax.dot("W", x, y).array, jnp.einsum("hwd,dwh->hd", a, b), rtol=1e-5)


def test_dot_out_axes_with_several_ellipses_follows_haliax_order():
    a, b = _arr(2, 3, 4), _arr(4, 3, 2)
    x, y = hax.named(a, (H, W, D)), hax.named(b, (D, W, H))
    out = hax.dot(x, y, axis=(), out_axes=(..., D, H, ...))
    assert out.axes == (D, H, W)  # haliax's test_dot_with_output_axes expects "ijk,kji->kij"
    np.testing.assert_allclose(out.array, jnp.einsum("hwd,dwh->dhw", a, b), rtol=1e-5)


def test_dot_refuses_axes_given_twice():
    x = hax.ones((H, W))
    with pytest.raises(TypeError, match="both first"):
        hax.dot("W", x, x.rename({"H": "K"}), axis="W")


# ---- rearrange ----------------------------------------------------------------------------------


def test_rearrange_string_permutes_by_position():
    a = _arr(2, 3, 4)
    x = hax.named(a, (H, W, D))
    out = hax.rearrange(x, "h w d -> d h w")  # ordered: names bind by position, axes keep their names
    assert out.axes == (D, H, W)
    np.testing.assert_array_equal(out.array, jnp.transpose(a, (2, 0, 1)))


def test_rearrange_string_merges_and_splits():
    a = _arr(2, 3, 4)
    x = hax.named(a, (H, W, D))
    merged = hax.rearrange(x, "{W D} -> ... (E: D W)")
    assert merged.axes == (H, hax.Axis("E", 12))
    np.testing.assert_array_equal(merged.array, jnp.transpose(a, (0, 2, 1)).reshape(2, 12))
    split = hax.rearrange(x, "h w (d: d1 d2) -> d2 h w d1", d1=2)
    assert split.axes == (hax.Axis("d2", 2), H, W, hax.Axis("d1", 2))
    np.testing.assert_array_equal(split.array, jnp.transpose(a.reshape(2, 3, 2, 2), (3, 0, 1, 2)))
    renamed = hax.rearrange(x, "h w d -> h w (depth: d)")
    assert renamed.axes == (H, W, hax.Axis("depth", 4))


def test_rearrange_string_two_splits_and_several_ellipses():
    a = _arr(6, 4, 5)
    x = hax.named(a, ("Q", "W", "B"))
    out = hax.rearrange(x, "{(Q: b h) (W: e f)} -> ... b e h f", b=2, e=2)  # sizes h=3, f=2 inferred
    assert [(ax.name, ax.size) for ax in out.axes] == [("B", 5), ("b", 2), ("e", 2), ("h", 3), ("f", 2)]
    np.testing.assert_array_equal(out.array, jnp.transpose(a.reshape(2, 3, 2, 2, 5), (4, 0, 2, 1, 3)))
    y = hax.named(_arr(2, 3, 4, 5, 6), ("b", "d", "h", "w", "c"))
    # haliax's greedy rule: b goes to the first `...`, w to the next empty one
    assert [ax.name for ax in hax.rearrange(y, "b d h w c -> d ... c ... h").axes] == ["d", "b", "c", "w", "h"]


def test_rearrange_string_errors_name_the_problem():
    x = hax.ones((H, W, D))
    with pytest.raises(ValueError, match="not bound"):
        hax.rearrange(x, "h w d -> h w q")
    with pytest.raises(ValueError, match="not on the right side"):
        hax.rearrange(x, "h w d -> h w")
    with pytest.raises(ValueError, match="cannot split"):
        hax.rearrange(x, "h w (d: d1 d2) -> h w d1 d2", d1=3)
    with pytest.raises(ValueError, match="one `->`"):
        hax.rearrange(x, "h w d")


def test_rearrange_partial_orders():
    # expected orders from haliax's own tests (core_test.py::test_rearrange)
    C = hax.Axis("C", 5)
    x = hax.zeros((H, W, D, C))
    assert hax.rearrange(x, (C, ..., ...)).axes == (C, H, W, D)
    assert hax.rearrange(x, (..., C, ..., W)).axes == (H, D, C, W)
    assert hax.rearrange(x, (D, ..., H, ...)).axes == (D, H, W, C)
    assert rearrange_for_partial_order(("a", ..., "b", ..., "c", ...), ("b", "o", "c", "a", "g")) == (
        "a", "b", "o", "c", "g",
    )  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        rearrange_for_partial_order(("a", "a", ...), ("a", "b"))
    with pytest.raises(ValueError, match="leaves out"):
        rearrange_for_partial_order(("a",), ("a", "b"))


# ---- index, slice, updated_slice, ds ---------------------------------------------------------


def test_index_slice_and_ds_match_numpy():
    a = _arr(2, 3, 4)
    x = hax.named(a, (H, W, D))
    np.testing.assert_array_equal(hax.index(x, {"W": 1, "D": hax.ds(1, 2)}).array, a[:, 1, 1:3])
    np.testing.assert_array_equal(x["D", hax.ds(2, 2)].array, a[:, :, 2:4])
    old = hax.slice(x, "D", start=1, length=3)
    assert old.axes == (H, W, hax.Axis("D", 3))
    np.testing.assert_array_equal(old.array, a[:, :, 1:4])
    renamed = hax.slice(x, "D", hax.Axis("E", 2), start=2)
    assert renamed.axes == (H, W, hax.Axis("E", 2))
    np.testing.assert_array_equal(renamed.array, a[:, :, 2:4])
    new = hax.slice(x, {"W": 1, "D": 0}, length={"W": 2, "D": hax.Axis("E", 3)})
    assert new.axes == (H, hax.Axis("W", 2), hax.Axis("E", 3))
    np.testing.assert_array_equal(new.array, a[:, 1:3, 0:3])


def test_traced_ds_is_a_dynamic_slice():
    a = _arr(2, 6)
    x = hax.named(a, (H, "T"))
    f = jax.jit(lambda x, i: hax.index(x, {"T": hax.ds(i, 3)}))
    for i in range(4):
        np.testing.assert_array_equal(f(x, i).array, a[:, i : i + 3])
    g = jax.jit(lambda x, i: hax.slice(x, {"T": hax.ds(i, 2)}, {"T": 2}))
    np.testing.assert_array_equal(g(x, 3).array, a[:, 3:5])
    assert hax.ds.block(2, 3) == slice(6, 9)


def test_updated_slice_matches_numpy_assignment():
    a, u = _arr(2, 3, 4), _arr(3, 2)
    x, upd = hax.named(a, (H, W, D)), hax.named(u, (W, hax.Axis("D", 2)))
    want = np.array(a)
    want[:, :, 1:3] = np.asarray(u)[None]
    np.testing.assert_array_equal(hax.updated_slice(x, {"D": 1}, upd).array, want)
    np.testing.assert_array_equal(x.updated_slice({"D": 1}, upd).array, want)


# ---- shape ops whose haliax form differs ------------------------------------------------------


def test_tile_adds_missing_axes_first():
    a = jnp.arange(3)
    out = hax.tile(hax.named(a, "h"), {"h": 2, "w": 1, "d": 2})
    assert out.axes == (hax.Axis("w", 1), hax.Axis("d", 2), hax.Axis("h", 6))
    np.testing.assert_array_equal(out.array, jnp.tile(a, (1, 2, 2)))


@pytest.mark.parametrize(("hax_fn", "jnp_fn"), [(hax.tril, jnp.tril), (hax.triu, jnp.triu)])
def test_tril_triu_move_the_two_axes_last(hax_fn, jnp_fn):
    a = _arr(2, 3, 4)
    out = hax_fn(hax.named(a, (H, W, D)), H, D, k=1)
    assert out.axes == (W, H, D)
    np.testing.assert_array_equal(out.array, jnp_fn(jnp.transpose(a, (1, 0, 2)), k=1))


def test_eliminate_axes_takes_names():
    assert hax.eliminate_axes(("H", W), (H,)) == (W,)
    assert hax.eliminate_axes((H, W), "W") == (H,)
    with pytest.raises(ValueError, match="not in"):
        hax.eliminate_axes(("H", W), ("D",))


def test_small_names():
    x = hax.ones((H, W))
    assert hax.is_named_array(x) and not hax.is_named_array(x.array)
    assert float(hax.scalar(hax.sum(x))) == 6.0
    with pytest.raises(ValueError, match="scalar"):
        hax.scalar(x)
    np.testing.assert_array_equal(hax.flatten(x, "z").array, jnp.ones(6))
    np.testing.assert_array_equal(x.ravel("z").array, jnp.ones(6))


# ---- nn -----------------------------------------------------------------------------------------


def test_mlp_init_with_haliax_signature_computes_the_layers():
    In, Out, M = hax.Axis("x", 3), hax.Axis("y", 2), hax.Axis("m", 5)
    mlp = hax.nn.MLP.init(In, Out, width=M, depth=2, activation=hax.nn.relu, key=jax.random.key(0))
    assert [(lay.In, lay.Out) for lay in mlp.layers] == [(In, M), (M, M.alias("m2")), (M.alias("m2"), Out)]
    assert isinstance(mlp, nx.nn.MLP)
    v = _arr(3)
    h = v
    for i, lay in enumerate(mlp.layers):  # weights are (Out, In): y = W @ h + b
        h = lay.weight.array @ h + lay.bias.array
        h = jax.nn.relu(h) if i < 2 else h
    np.testing.assert_allclose(mlp(hax.named(v, In)).array, h, rtol=1e-5, atol=1e-6)
    assert hax.nn.MLP.init(In, Out, 4, 0, key=jax.random.key(0)).layers[0].Out == Out
    with pytest.raises(TypeError, match="dot_general"):
        hax.nn.MLP.init(In, Out, 4, 1, key=jax.random.key(0), dot_general=object())


def test_linear_init_takes_haliax_dot_general_none():
    In, Out = hax.Axis("x", 3), hax.Axis("y", 2)
    lin = hax.nn.Linear.init(In, Out, key=jax.random.key(0), dot_general=None, use_bias=False)
    v = _arr(3)
    np.testing.assert_allclose(lin(hax.named(v, In)).array, lin.weight.array @ v, rtol=1e-5)
    with pytest.raises(TypeError, match="dot_general"):
        hax.nn.Linear.init(In, Out, key=jax.random.key(0), dot_general=jax.lax.dot_general)


class _Noisy(eqx.Module):
    weight: nx.NamedArray

    @classmethod
    def init(cls, E, *, key):
        return cls(nx.random.normal(key, E))

    def __call__(self, x, *, key):
        return x * self.weight + jax.random.normal(key, (x.array.shape[0],))[0]


def test_stacked_haliax_keywords_and_plain_per_layer_keys():
    Block, E = hax.Axis("block", 3), hax.Axis("e", 2)
    init_keys = jax.random.split(jax.random.PRNGKey(0), 3)
    stack = hax.nn.Stacked.init(Block, _Noisy, gradient_checkpointing=False, prevent_cse=True)(E, key=init_keys)
    assert stack.Block == stack.Layers == Block
    call_keys = jax.random.split(jax.random.PRNGKey(1), 3)  # plain (3, 2) uint32: sliced per layer, as in haliax
    x0 = _arr(2)
    got = stack.fold(hax.named(x0, E), key=call_keys)
    want = x0
    for i in range(3):  # the reference loop on raw arrays
        want = want * jax.random.normal(init_keys[i], (2,)) + jax.random.normal(call_keys[i], (2,))[0]
    np.testing.assert_allclose(got.array, want, rtol=1e-5)
    seq = hax.nn.BlockSeq.init(Block, _Noisy)(E, key=init_keys)
    np.testing.assert_allclose(seq.fold(hax.named(x0, E), key=call_keys).array, want, rtol=1e-5)


class _Scaled(eqx.Module):
    weight: nx.NamedArray

    @classmethod
    def init(cls, E, *, key):
        return cls(nx.random.normal(key, E))

    def __call__(self, x, scale, *, key):
        y = x * self.weight * scale + jax.random.normal(key, ())
        return y, hax.sum(y)


def test_stacked_and_blockseq_scan_slice_plain_arrays_like_haliax():
    Block, E = hax.Axis("block", 3), hax.Axis("e", 2)
    init_keys, call_keys = jax.random.split(jax.random.PRNGKey(0), 3), jax.random.split(jax.random.PRNGKey(1), 3)
    scale = jnp.array([1.0, 2.0, 3.0])  # a plain per-layer array: layer i gets scale[i]
    want_x, want_ys = jnp.ones(2), []
    for i in range(3):
        want_x = want_x * jax.random.normal(init_keys[i], (2,)) * scale[i] + jax.random.normal(call_keys[i], ())
        want_ys.append(want_x.sum())
    for cls in (hax.nn.Stacked, hax.nn.BlockSeq):
        stack = cls.init(Block, _Scaled)(E, key=init_keys)
        x, ys = stack.scan(hax.ones(E), scale, key=call_keys)
        np.testing.assert_allclose(x.array, want_x, rtol=1e-5)
        assert ys.axes == (Block,)
        np.testing.assert_allclose(ys.array, jnp.stack(want_ys), rtol=1e-5)


def test_standardize_and_losses_match_jax():
    a = _arr(2, 3)
    x = hax.named(a, ("b", "c"))
    np.testing.assert_allclose(hax.nn.standardize(x, "c").array, jax.nn.standardize(a, axis=1), rtol=1e-5, atol=1e-6)
    labels = jnp.array([0, 2])
    targets = hax.nn.one_hot(hax.named(labels, "b"), hax.Axis("c", 3))
    per = -jax.nn.log_softmax(a, axis=1)[jnp.arange(2), labels]
    np.testing.assert_allclose(hax.nn.cross_entropy_loss(x, "c", targets).array, per.mean(), rtol=1e-5)
    np.testing.assert_allclose(hax.nn.cross_entropy_loss(x, "c", targets, reduction=None).array, per, rtol=1e-5)
    np.testing.assert_allclose(
        hax.nn.cross_entropy_loss(x, "c", targets, reduction=hax.sum, reduction_axis="b").array, per.sum(), rtol=1e-5
    )
    t = (a > 0).astype(jnp.float32)
    bce = jnp.maximum(a, 0) - a * t + jnp.log1p(jnp.exp(-jnp.abs(a)))
    np.testing.assert_allclose(
        hax.nn.binary_cross_entropy_loss(x, hax.named(t, ("b", "c"))).array, bce.mean(), rtol=1e-5
    )


def test_shard_forms():
    mesh = jax.make_mesh((1,), ("data",))
    x = hax.named(jnp.zeros((4, 2)), ("batch", "embed"))
    assert hax.shard(x, {"batch": "data"}, mesh).array.sharding.spec == jax.sharding.PartitionSpec("data", None)
    with hax.axis_mapping({"batch": "data"}):
        assert hax.auto_sharded(x, mesh).array.sharding.spec == jax.sharding.PartitionSpec("data", None)
