"""dot_product_attention against a positional numpy/jax reference, with axes in several orders."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

B, T, S, N, D = 2, 4, 5, 3, 8


def reference(q, k, v, mask=None, bias=None, scale=None):
    """Positional attention: q (b,t,n,d), k/v (b,s,n,d|e); mask/bias broadcastable to (b,n,t,s).
    Masked scores are -inf; a fully masked row gives zeros."""
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = jnp.einsum("btnd,bsnd->bnts", q, k) * scale
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = jnp.where(mask, s, -jnp.inf)
        any_row = jnp.any(jnp.broadcast_to(mask, s.shape), axis=-1, keepdims=True)
        s = jnp.where(any_row, s, 0.0)
    p = jax.nn.softmax(s, axis=-1)
    if mask is not None:
        p = jnp.where(any_row, p, 0.0)
    return jnp.einsum("bnts,bsne->btne", p, v)


def qkv(seed=0, e=D):
    r = np.random.default_rng(seed)
    q = r.normal(size=(B, T, N, D)).astype(np.float32)
    k = r.normal(size=(B, S, N, D)).astype(np.float32)
    v = r.normal(size=(B, S, N, e)).astype(np.float32)
    return q, k, v


def name(a, names, order):
    return nx.rearrange(nx.named(jnp.asarray(a), tuple(names)), tuple(order))


def attend(q, k, v, q_order, **kw):
    """Attention of the canonical (b, t, n, d) arrays, the query's axes put in ``q_order``."""
    kv = [name(a, "bsnd", "bsnd") for a in (k, v)]
    return nx.nn.dot_product_attention(name(q, "btnd", q_order), *kv, q_axis="t", kv_axis="s", head_axis="d", **kw)


ORDERS_Q = [("b", "t", "n", "d"), ("n", "b", "d", "t"), ("d", "t", "b", "n")]
ORDERS_K = [("b", "s", "n", "d"), ("s", "d", "n", "b")]


@pytest.mark.parametrize("oq,ok", list(itertools.product(ORDERS_Q, ORDERS_K)))
def test_matches_reference_in_any_order(oq, ok):
    q, k, v = qkv()
    out = nx.nn.dot_product_attention(
        name(q, "btnd", oq), name(k, "bsnd", ok), name(v, "bsnd", ok[::-1]), q_axis="t", kv_axis="s", head_axis="d"
    )
    assert [a.name for a in out.axes] == list(oq)
    assert_named_close(out, reference(q, k, v), "btnd", rtol=1e-5, atol=1e-5)


def test_causal_mask_and_bias_by_name():
    q, k, v = qkv(1)
    r = np.random.default_rng(5)
    bias = r.normal(size=(N, T, S)).astype(np.float32)
    mask = nx.nn.causal_mask(nx.Axis("t", T), nx.Axis("s", S), q_offset=1)
    out = attend(q, k, v, ("n", "t", "b", "d"), mask=mask, bias=name(bias, "nts", ("s", "n", "t")))
    ref_mask = (np.arange(S)[None, :] <= np.arange(T)[:, None] + 1)[None, None]
    assert_named_close(out, reference(q, k, v, ref_mask, bias[None]), "btnd", atol=1e-5)


def test_scale_and_jit_match_eager():
    q, k, v = qkv(2)
    args = [name(q, "btnd", "btnd"), name(k, "bsnd", "bsnd"), name(v, "bsnd", "bsnd")]

    def f(q, k, v, sc):
        return nx.nn.dot_product_attention(q, k, v, q_axis="t", kv_axis="s", head_axis="d", scale=sc)

    eager = f(*args, 0.5)
    jitted = jax.jit(f)(*args, 0.5)
    assert_named_close(eager, reference(q, k, v, scale=0.5), "btnd", atol=1e-5)
    np.testing.assert_allclose(jitted.array, eager.array, rtol=1e-6, atol=1e-6)


def test_fully_masked_rows_are_zeros_not_nan():
    q, k, v = qkv(3)
    m = np.ones((T, S), bool)
    m[1] = False  # query 1 may attend to nothing
    mask = nx.named(jnp.asarray(m), ("t", "s"))
    args = [name(q, "btnd", "btnd"), name(k, "bsnd", "bsnd"), name(v, "bsnd", "bsnd")]
    out = nx.nn.dot_product_attention(*args, q_axis="t", kv_axis="s", head_axis="d", mask=mask)
    assert np.all(np.asarray(out.array)[:, 1] == 0)
    assert_named_close(out, reference(q, k, v, m[None, None]), "btnd", atol=1e-5)
    # why namedax fixes it up: jax itself averages the values on such a row
    raw = jax.nn.dot_product_attention(q, k, v, mask=m[None, None])
    np.testing.assert_allclose(raw[:, 1], v.mean(axis=1), rtol=1e-5, atol=1e-5)

    def loss(q):
        o = nx.nn.dot_product_attention(
            nx.named(q, tuple("btnd")), *args[1:], q_axis="t", kv_axis="s", head_axis="d", mask=mask
        )
        return jnp.sum(o.array**2)

    g = jax.grad(loss)(jnp.asarray(q))
    assert np.isfinite(np.asarray(g)).all() and np.all(np.asarray(g)[:, 1] == 0)


def test_grouped_query_attention():
    r = np.random.default_rng(4)
    KV, G = 2, 3
    q = r.normal(size=(B, T, KV, G, D)).astype(np.float32)
    k = r.normal(size=(B, S, KV, D)).astype(np.float32)
    v = r.normal(size=(B, S, KV, D)).astype(np.float32)
    mask = nx.nn.causal_mask(nx.Axis("t", T), nx.Axis("s", S))
    for oq in [("b", "t", "kv", "g", "d"), ("g", "b", "d", "kv", "t")]:
        out = nx.nn.dot_product_attention(
            name(q, ("b", "t", "kv", "g", "d"), oq),
            name(k, ("b", "s", "kv", "d"), ("kv", "s", "b", "d")),
            name(v, ("b", "s", "kv", "d"), ("b", "s", "kv", "d")),
            q_axis="t",
            kv_axis="s",
            head_axis="d",
            mask=mask,
        )
        ref_mask = (np.arange(S)[None, :] <= np.arange(T)[:, None])[None, None]

        def rep(a):
            return np.repeat(a, G, axis=2)  # kv head k serves query heads k*G ... k*G+G-1

        ref = reference(q.reshape(B, T, KV * G, D), rep(k), rep(v), ref_mask).reshape(B, T, KV, G, D)
        assert_named_close(out, ref, ("b", "t", "kv", "g", "d"), atol=1e-5)


def test_multi_query_attention_key_without_heads():
    q, k, v = qkv(6)
    k1, v1 = k[:, :, 0], v[:, :, 0]
    out = nx.nn.dot_product_attention(
        name(q, "btnd", "btnd"), name(k1, "bsd", "sdb"), name(v1, "bsd", "bsd"), q_axis="t", kv_axis="s", head_axis="d"
    )

    def rep(a):
        return np.repeat(a[:, :, None], N, axis=2)

    assert_named_close(out, reference(q, rep(k1), rep(v1)), "btnd", atol=1e-5)


@pytest.mark.parametrize("vname", ["d", "e"])
def test_value_with_another_head_size(vname):
    q, k, v = qkv(7, e=5)
    out = nx.nn.dot_product_attention(
        name(q, "btnd", ("b", "d", "t", "n")),
        name(k, "bsnd", "bsnd"),
        name(v, ("b", "s", "n", vname), ("s", vname, "b", "n")),
        q_axis="t",
        kv_axis="s",
        head_axis="d",
        mask=nx.nn.causal_mask(nx.Axis("t", T), nx.Axis("s", S)),
    )
    assert [a.name for a in out.axes] == ["b", vname, "t", "n"]
    ref_mask = (np.arange(S)[None, :] <= np.arange(T)[:, None])[None, None]
    assert_named_close(out, reference(q, k, v, ref_mask), ("b", "t", "n", vname), atol=1e-5)


def test_mixed_dtypes_fall_back_to_named_math():
    q, k, v = qkv(8)
    out = nx.nn.dot_product_attention(
        name(q, "btnd", "btnd"),
        name(k, "bsnd", "bsnd"),
        name(v.astype(np.float16), "bsnd", "bsnd"),
        q_axis="t",
        kv_axis="s",
        head_axis="d",
    )
    assert out.dtype == np.float16
    assert_named_close(out, reference(q, k, v), "btnd", rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("path", ["fused", "named"])
def test_gradients_match_reference(path):
    q, k, v = qkv(9, e=D if path == "fused" else 6)
    m = np.tril(np.ones((T, S), bool))
    m[0] = False
    mask = nx.named(jnp.asarray(m), ("t", "s"))
    bias = np.random.default_rng(1).normal(size=(N, T, S)).astype(np.float32)

    def named_loss(q, k, v, bias):
        o = nx.nn.dot_product_attention(
            nx.named(q, tuple("btnd")),
            nx.rearrange(nx.named(k, tuple("bsnd")), tuple("nsbd")),
            nx.named(v, tuple("bsne")),
            q_axis="t",
            kv_axis="s",
            head_axis="d",
            mask=mask,
            bias=nx.named(bias, tuple("nts")),
        )
        return jnp.sum(nx.rearrange(o, ("b", "t", "n", "e")).array * w)

    w = jnp.asarray(np.random.default_rng(2).normal(size=(B, T, N, v.shape[-1])).astype(np.float32))

    def ref_loss(q, k, v, bias):
        return jnp.sum(reference(q, k, v, m[None, None], bias[None]) * w)

    args = tuple(jnp.asarray(a) for a in (q, k, v, bias))
    got = jax.jit(jax.grad(named_loss, argnums=(0, 1, 2, 3)))(*args)
    want = jax.grad(ref_loss, argnums=(0, 1, 2, 3))(*args)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-5)


def test_every_mask_kind():
    q, k, v = qkv(10)
    Tq, Sk = nx.Axis("t", T), nx.Axis("s", S)
    seg_q = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    seg_k = np.array([[0, 0, 1, 1, 1], [0, 0, 1, 1, 2]])
    lengths = np.array([3, 5])
    i, j = np.arange(T)[:, None], np.arange(S)[None, :]
    cases = {
        "causal": (nx.nn.causal_mask(Tq, Sk), (j <= i)[None, None]),
        "sliding": (nx.nn.sliding_window_mask(Tq, Sk, 2, q_offset=1), ((j <= i + 1) & (j > i - 1))[None, None]),
        "prefix": (nx.nn.prefix_lm_mask(Tq, Sk, 3), ((j <= i) | (j < 3))[None, None]),
        "segment": (
            nx.nn.segment_mask(nx.named(jnp.asarray(seg_q), ("b", "t")), nx.named(jnp.asarray(seg_k), ("b", "s"))),
            (seg_q[:, :, None] == seg_k[:, None, :])[:, None],
        ),
        "padding": (
            nx.nn.padding_mask(nx.named(jnp.asarray(lengths), "b"), Sk),
            (np.arange(S)[None, :] < lengths[:, None])[:, None, None, :],
        ),
        "causal&padding|diagonal": (
            nx.nn.causal_mask(Tq, Sk) & nx.nn.padding_mask(nx.named(jnp.asarray(lengths), "b"), Sk)
            | nx.nn.sliding_window_mask(Tq, Sk, 1),
            ((j <= i)[None] & (np.arange(S)[None, None, :] < lengths[:, None, None]) | (j == i)[None])[:, None],
        ),
    }
    for label, (mask, ref_mask) in cases.items():
        out = attend(q, k, v, ("n", "b", "t", "d"), mask=mask)
        try:
            assert_named_close(out, reference(q, k, v, ref_mask), "btnd", atol=1e-5)
        except AssertionError as e:
            raise AssertionError(f"mask {label}") from e


def test_errors_name_the_operation():
    q, k, v = (nx.named(jnp.asarray(a), tuple(n)) for a, n in zip(qkv(), ["btnd", "bsnd", "bsnd"], strict=True))

    def call(*a, **kw):
        return nx.nn.dot_product_attention(*a, **{"q_axis": "t", "kv_axis": "s", "head_axis": "d", **kw})

    with pytest.raises(ValueError, match="dot_product_attention.*q_axis and kv_axis"):
        nx.nn.dot_product_attention(q, q, q, q_axis="t", kv_axis="t", head_axis="d")
    with pytest.raises(KeyError, match="dot_product_attention.*'s'"):
        call(q, nx.rename(k, {"s": "x"}), v)
    with pytest.raises(ValueError, match="dot_product_attention.*key.*Axis\\('extra', 1\\)"):
        call(q, nx.broadcast_axis(k, nx.Axis("extra", 1)), v)
    with pytest.raises(ValueError, match="dot_product_attention.*mask.*Axis\\('d', 8\\)"):
        call(q, k, v, mask=nx.ones({"t": T, "d": D}, dtype=bool))
    with pytest.raises(TypeError, match="dot_product_attention.*boolean"):
        call(q, k, v, mask=nx.ones({"t": T, "s": S}))
    with pytest.raises(ValueError, match="dot_product_attention.*size 8.*but 4"):
        call(q, k[{"d": slice(0, 4)}], v)
    with pytest.raises(TypeError, match="dot_product_attention.*NamedArray"):
        call(q.array, k, v)
