"""Losses against optax and jax.numpy on the positional arrays, with axes in several orders."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close as _assert_named_close

B, P, V = nx.Axis("batch", 3), nx.Axis("position", 5), nx.Axis("vocab", 7)
NAMES = ("batch", "position", "vocab")


def assert_named_close(y, ref, order, rtol=1e-5, atol=1e-6):
    assert tuple(a.size for a in y.axes) == y.array.shape, (y.axes, y.array.shape)  # axes tell the truth
    _assert_named_close(y, ref, order, rtol, atol)


def _data(seed=0, order=NAMES, scale=2.0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(3, 5, 7)) * scale).astype(np.float32)  # batch, position, vocab
    ids = rng.integers(0, 7, size=(3, 5))
    perm = [NAMES.index(n) for n in order]
    logits = nx.named(jnp.asarray(x.transpose(perm)), order)
    return x, ids, logits


def _labels(ids, order=("batch", "position")):
    return nx.named(jnp.asarray(ids if order == ("batch", "position") else ids.T), order)


@pytest.mark.parametrize("order", list(itertools.permutations(NAMES)))
def test_cross_entropy_integer_labels_matches_optax(order):
    x, ids, logits = _data(order=order)
    ref = optax.softmax_cross_entropy_with_integer_labels(x, ids)
    for lorder in [("batch", "position"), ("position", "batch")]:
        per = nx.nn.cross_entropy(logits, _labels(ids, lorder), "vocab", reduction=None)
        assert per.axes == tuple(a for a in logits.axes if a.name != "vocab")
        assert_named_close(per, ref, ("batch", "position"))
    mean = nx.nn.cross_entropy(logits, _labels(ids), V)
    assert mean.axes == ()
    np.testing.assert_allclose(mean.array, ref.mean(), rtol=1e-6)
    total = nx.nn.cross_entropy(logits, _labels(ids), V, reduction="sum")
    np.testing.assert_allclose(total.array, ref.sum(), rtol=1e-6)


@pytest.mark.parametrize("order", [NAMES, ("vocab", "position", "batch"), ("position", "vocab", "batch")])
def test_cross_entropy_probability_labels_matches_optax(order):
    x, _, logits = _data(order=order)
    p = np.asarray(jax.nn.softmax(np.random.default_rng(1).normal(size=(3, 5, 7)), axis=-1), np.float32)
    ref = optax.softmax_cross_entropy(x, p)
    labels = nx.named(jnp.asarray(p.transpose(2, 0, 1)), ("vocab", "batch", "position"))
    per = nx.nn.cross_entropy(logits, labels, "vocab", reduction=None)
    assert_named_close(per, ref, ("batch", "position"))
    sm = optax.softmax_cross_entropy(x, optax.smooth_labels(jnp.asarray(p), 0.2))
    np.testing.assert_allclose(nx.nn.cross_entropy(logits, labels, "vocab", label_smoothing=0.2).array, sm.mean(), 1e-6)


@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_label_smoothing_integer_labels(alpha):
    x, ids, logits = _data()
    ref = optax.softmax_cross_entropy(x, optax.smooth_labels(jax.nn.one_hot(ids, 7), alpha))
    per = nx.nn.cross_entropy(logits, _labels(ids), "vocab", reduction=None, label_smoothing=alpha)
    assert_named_close(per, ref, ("batch", "position"), rtol=1e-5)


def test_z_loss_adds_squared_logsumexp():
    x, ids, logits = _data(order=("vocab", "batch", "position"))
    ref = optax.softmax_cross_entropy_with_integer_labels(x, ids) + 1e-2 * jax.scipy.special.logsumexp(x, -1) ** 2
    per = nx.nn.cross_entropy(logits, _labels(ids, ("position", "batch")), "vocab", reduction=None, z_loss=1e-2)
    assert_named_close(per, ref, ("batch", "position"))


def test_where_masks_positions():
    x, ids, logits = _data(order=("position", "vocab", "batch"))
    mask = np.random.default_rng(3).random((3, 5)) > 0.4
    ref = np.asarray(optax.softmax_cross_entropy_with_integer_labels(x, ids))
    where = nx.named(jnp.asarray(mask.T), ("position", "batch"))
    mean = nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=where)
    np.testing.assert_allclose(mean.array, ref[mask].mean(), rtol=1e-6)
    per = nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=where, reduction=None)
    assert_named_close(per, np.where(mask, ref, 0.0), ("batch", "position"))
    # a mask over one position axis broadcasts over the other
    pmask = np.array([True, False, True, True, False])
    mean = nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=nx.named(jnp.asarray(pmask), "position"))
    np.testing.assert_allclose(mean.array, ref[:, pmask].mean(), rtol=1e-6)
    nothing = nx.named(jnp.zeros((3, 5), bool), ("batch", "position"))
    assert float(nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=nothing).array) == 0.0


def test_cross_entropy_is_stable_and_differentiable():
    x, ids, _ = _data(scale=1e4)
    logits = nx.named(jnp.asarray(x), NAMES)
    per = nx.nn.cross_entropy(logits, _labels(ids), "vocab", reduction=None)
    assert np.isfinite(per.array).all()
    assert_named_close(per, optax.softmax_cross_entropy_with_integer_labels(x, ids), ("batch", "position"), rtol=1e-5)

    def loss(a):
        return nx.nn.cross_entropy(nx.named(a, NAMES), _labels(ids), "vocab", z_loss=1e-4).array

    def ref(a):
        lse = jax.scipy.special.logsumexp(a, -1)
        return (optax.softmax_cross_entropy_with_integer_labels(a, ids) + 1e-4 * lse**2).mean()

    small = jnp.asarray(_data()[0])
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(small), jax.grad(ref)(small), rtol=1e-5, atol=1e-7)


@settings(max_examples=25)
@given(st.permutations(NAMES), st.integers(0, 1000), st.sampled_from([None, "mean", "sum"]))
def test_cross_entropy_property(order, seed, reduction):
    x, ids, logits = _data(seed, tuple(order))
    mask = np.random.default_rng(seed).random((3, 5)) > 0.3
    ref = np.where(mask, optax.softmax_cross_entropy_with_integer_labels(x, ids), 0.0)
    out = nx.nn.cross_entropy(
        logits, _labels(ids), "vocab", where=nx.named(jnp.asarray(mask), ("batch", "position")), reduction=reduction
    )
    if reduction is None:
        assert_named_close(out, ref, ("batch", "position"), rtol=1e-5)
    else:
        want = ref.sum() if reduction == "sum" else ref.sum() / max(mask.sum(), 1)
        np.testing.assert_allclose(out.array, want, rtol=1e-5)


def test_cross_entropy_errors():
    x, ids, logits = _data()
    with pytest.raises(nx.AxisNotFoundError, match="cross_entropy"):
        nx.nn.cross_entropy(logits, _labels(ids), "label")
    with pytest.raises(ValueError, match="cross_entropy.*missing axes"):
        nx.nn.cross_entropy(logits, nx.named(jnp.asarray(ids[:, 0]), "batch"), "vocab")
    with pytest.raises(ValueError, match="cross_entropy.*extra axes"):
        nx.nn.cross_entropy(logits, nx.named(jnp.zeros((3, 5, 2), int), ("batch", "position", "x")), "vocab")
    with pytest.raises(TypeError, match="integer class ids"):
        nx.nn.cross_entropy(logits, nx.named(jnp.zeros((3, 5)), ("batch", "position")), "vocab")
    with pytest.raises(ValueError, match="reduction"):
        nx.nn.cross_entropy(logits, _labels(ids), "vocab", reduction="max")
    with pytest.raises(TypeError, match="boolean"):
        nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=nx.ones(P))
    with pytest.raises(TypeError, match="NamedArray"):
        nx.nn.cross_entropy(x, ids, "vocab")


@pytest.mark.parametrize("order", [("batch", "position"), ("position", "batch")])
def test_binary_cross_entropy_matches_optax(order):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 5)).astype(np.float32) * 3
    y = (rng.random((3, 5)) > 0.5).astype(np.float32)
    y[0, 0] = 0.3  # soft labels too
    ref = np.asarray(optax.sigmoid_binary_cross_entropy(x, y))
    t = (lambda a: a) if order == ("batch", "position") else (lambda a: a.T)
    logits = nx.named(jnp.asarray(t(x)), order)
    labels = nx.named(jnp.asarray(y), ("batch", "position"))
    assert_named_close(
        nx.nn.binary_cross_entropy_with_logits(logits, labels, reduction=None), ref, ("batch", "position")
    )
    np.testing.assert_allclose(nx.nn.binary_cross_entropy_with_logits(logits, labels).array, ref.mean(), 1e-6)
    mask = rng.random((3, 5)) > 0.5
    where = nx.named(jnp.asarray(mask), ("batch", "position"))
    got = nx.nn.binary_cross_entropy_with_logits(logits, labels, where=where, reduction="sum")
    np.testing.assert_allclose(got.array, ref[mask].sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits"):
        nx.nn.binary_cross_entropy_with_logits(logits, nx.named(jnp.asarray(y[0]), "position"))


# ---- fused ----------------------------------------------------------------------------------------

E = nx.Axis("embed", 6)


def _fused_data(v, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(3, 5, 6)).astype(np.float32)  # batch, position, embed
    w = rng.normal(size=(6, v)).astype(np.float32)
    ids = rng.integers(0, v, size=(3, 5))
    return h, w, ids


def _ref_loss(h, w, ids, mask=None, z=0.0):
    logits = jnp.einsum("bpe,ev->bpv", h, w)
    per = optax.softmax_cross_entropy_with_integer_labels(logits, ids)
    per = per + z * jax.scipy.special.logsumexp(logits, -1) ** 2
    if mask is None:
        return per.mean()
    return jnp.where(mask, per, 0.0).sum() / mask.sum()


@pytest.mark.parametrize("v,block", [(12, 4), (13, 4), (7, 16), (16, 16), (10, 1)])
@pytest.mark.parametrize("horder", [("batch", "position", "embed"), ("embed", "position", "batch")])
def test_fused_cross_entropy_equals_unfused(v, block, horder):
    h, w, ids = _fused_data(v)
    perm = [("batch", "position", "embed").index(n) for n in horder]
    hidden = nx.named(jnp.asarray(h.transpose(perm)), horder)
    for unemb in (nx.named(jnp.asarray(w), ("embed", "vocab")), nx.named(jnp.asarray(w.T), ("vocab", "embed"))):
        got = nx.nn.fused_cross_entropy(
            hidden,
            unemb,
            _labels(ids, ("position", "batch")),
            embed_axis="embed",
            vocab_axis="vocab",
            block_size=block,
            reduction=None,
        )
        ref = optax.softmax_cross_entropy_with_integer_labels(jnp.einsum("bpe,ev->bpv", h, w), ids)
        assert_named_close(got, ref, ("batch", "position"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("v,block,z", [(12, 4, 0.0), (13, 5, 1e-2), (9, 9, 0.0)])
def test_fused_cross_entropy_gradients_equal_unfused(v, block, z):
    h, w, ids = _fused_data(v, seed=2)
    mask = np.random.default_rng(5).random((3, 5)) > 0.3
    where = nx.named(jnp.asarray(mask), ("batch", "position"))

    def fused(hh, ww):
        return nx.nn.fused_cross_entropy(
            nx.named(hh, ("batch", "position", "embed")),
            nx.named(ww.T, ("vocab", "embed")),
            _labels(ids),
            embed_axis="embed",
            vocab_axis="vocab",
            block_size=block,
            where=where,
            z_loss=z,
        ).array

    def unfused(hh, ww):
        logits = nx.dot(nx.named(hh, ("batch", "position", "embed")), nx.named(ww, ("embed", "vocab")), axis="embed")
        return nx.nn.cross_entropy(logits, _labels(ids), "vocab", where=where, z_loss=z).array

    args = (jnp.asarray(h), jnp.asarray(w))
    lf, gf = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(*args)
    lr, gr = jax.value_and_grad(lambda a, b: _ref_loss(a, b, ids, mask, z), argnums=(0, 1))(*args)
    lu, gu = jax.value_and_grad(unfused, argnums=(0, 1))(*args)
    np.testing.assert_allclose(lf, lr, rtol=1e-5)
    np.testing.assert_allclose(lu, lr, rtol=1e-5)
    for a, b, c in zip(gf, gr, gu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(c, b, rtol=1e-4, atol=1e-6)


def test_fused_cross_entropy_peak_memory_is_a_fraction_of_unfused():
    n_pos, emb, vocab = 256, 64, 8192
    Pos, Emb, Voc = nx.Axis("position", n_pos), nx.Axis("embed", emb), nx.Axis("vocab", vocab)
    h = nx.zeros((Pos, Emb))
    w = nx.zeros((Emb, Voc))
    ids = nx.named(jnp.zeros(n_pos, jnp.int32), Pos)

    def fused(h, w):
        return nx.nn.fused_cross_entropy(h, w, ids, embed_axis=Emb, vocab_axis=Voc, block_size=512).array

    def unfused(h, w):
        return nx.nn.cross_entropy(nx.dot(h, w, axis=Emb), ids, Voc).array

    def temp(f):
        c = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(h, w).compile()
        return c.memory_analysis().temp_size_in_bytes

    logits_bytes = n_pos * vocab * 4
    assert temp(unfused) >= logits_bytes
    assert temp(fused) <= temp(unfused) / 4


def test_fused_cross_entropy_errors():
    h, w, ids = _fused_data(8)
    hidden = nx.named(jnp.asarray(h), ("batch", "position", "embed"))
    unemb = nx.named(jnp.asarray(w), ("embed", "vocab"))
    kw = dict(embed_axis="embed", vocab_axis="vocab")
    with pytest.raises(ValueError, match="block_size"):
        nx.nn.fused_cross_entropy(hidden, unemb, _labels(ids), block_size=0, **kw)
    with pytest.raises(nx.AxisNotFoundError, match="fused_cross_entropy"):
        nx.nn.fused_cross_entropy(hidden, unemb, _labels(ids), block_size=4, embed_axis="embed", vocab_axis="v")
    with pytest.raises(ValueError, match="differ in size"):
        nx.nn.fused_cross_entropy(
            hidden, nx.named(jnp.zeros((4, 8)), ("embed", "vocab")), _labels(ids), block_size=4, **kw
        )
    with pytest.raises(ValueError, match="missing axes"):
        nx.nn.fused_cross_entropy(hidden, unemb, nx.named(jnp.asarray(ids[0]), "position"), block_size=4, **kw)
