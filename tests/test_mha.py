"""MultiHeadAttention against a positional reference; Stacked; KV-cache decoding equals full attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

Embed, Heads, Head = nx.Axis("embed", 16), nx.Axis("heads", 4), nx.Axis("head", 8)
B, T = 2, 6


def rope_np(x, pos, theta):  # x (b, t, n, d)
    d = x.shape[-1]
    ang = np.asarray(pos, np.float64)[:, None] * (1.0 / theta ** (np.arange(0, d, 2) / d))
    emb = np.concatenate([ang, ang], -1)[None, :, None, :]
    rot = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], -1)
    return x * np.cos(emb) + rot * np.sin(emb)


def reference(mha, x, causal=True):
    """The same layer positionally: x (b, t, e) -> (b, t, e)."""
    w = lambda lin, order: np.asarray(nx.rearrange(lin.weight, order).array, np.float64)  # noqa: E731
    kvh = (mha.KVHeads or mha.Heads).name
    q = np.einsum("bte,end->btnd", x, w(mha.q_proj, ("embed", "heads", "head")))
    k = np.einsum("bte,end->btnd", x, w(mha.k_proj, ("embed", kvh, "head")))
    v = np.einsum("bte,end->btnd", x, w(mha.v_proj, ("embed", kvh, "head")))
    if mha.rope_theta is not None:
        q, k = rope_np(q, np.arange(T), mha.rope_theta), rope_np(k, np.arange(T), mha.rope_theta)
    g = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, g, axis=2), np.repeat(v, g, axis=2)
    s = np.einsum("btnd,bsnd->bnts", q, k) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bnts,bsnd->btnd", p, v)
    return np.einsum("btnd,end->bte", o, w(mha.o_proj, ("embed", "heads", "head")))


X = np.random.default_rng(0).normal(size=(B, T, 16)).astype(np.float32)
MASK = nx.nn.causal_mask(nx.Axis("position", T), nx.Axis("key_position", T))


@pytest.mark.parametrize(
    "kv_heads,rope", [(None, None), (nx.Axis("kv_heads", 2), None), (nx.Axis("kv_heads", 1), 10000.0), (None, 100.0)]
)
def test_matches_positional_reference(kv_heads, rope):
    mha = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, KVHeads=kv_heads, rope_theta=rope, key=jax.random.key(1))
    for order in [("batch", "position", "embed"), ("embed", "position", "batch")]:
        x = nx.rearrange(nx.named(jnp.asarray(X), ("batch", "position", "embed")), order)
        out = mha(x, mask=MASK)
        assert out.axes == x.axes
        assert_named_close(out, reference(mha, X), ("batch", "position", "embed"), rtol=1e-4, atol=1e-4)


def test_stacked_fold_equals_layer_by_layer():
    Layers = nx.Axis("layers", 2)
    stack = nx.nn.Stacked.init(Layers, nx.nn.MultiHeadAttention)(
        Embed,
        Heads,
        Head,
        KVHeads=nx.Axis("kv_heads", 2),
        rope_theta=10000.0,
        key=jax.random.split(jax.random.key(2), 2),
    )
    assert stack.stacked.q_proj.weight.axes[0] == Layers
    x = nx.named(jnp.asarray(X), ("batch", "position", "embed"))
    got = jax.jit(lambda s, x: s.fold(x, mask=MASK))(stack, x)
    want = x
    for i in range(2):
        want = stack.get_layer(i)(want, mask=MASK)
    np.testing.assert_allclose(got.array, want.array, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kv_heads", [None, nx.Axis("kv_heads", 2)])
def test_kv_cache_decode_equals_full_attention(kv_heads):
    mha = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, KVHeads=kv_heads, rope_theta=10000.0, key=jax.random.key(3))
    x = nx.named(jnp.asarray(X), ("batch", "position", "embed"))
    full = mha(x, mask=MASK)
    step = jax.jit(lambda m, c, xs: m(xs, cache=c))
    cache = nx.nn.KVCache.init(mha, {"batch": B}, 10)
    outs = []
    # two positions, then one at a time (traced index: one compile per chunk length)
    for lo, hi in [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6)]:
        out, cache = step(mha, cache, x[{"position": slice(lo, hi)}])
        outs.append(out)
        assert int(cache.index.array) == hi
        want = mha(
            x[{"position": slice(0, hi)}], mask=nx.nn.causal_mask(nx.Axis("position", hi), nx.Axis("key_position", hi))
        )
        np.testing.assert_allclose(out.array, want[{"position": slice(lo, hi)}].array, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nx.concatenate("position", outs).array, full.array, rtol=1e-4, atol=1e-5)


def test_kv_cache_greedy_loop_under_while_loop():
    mha = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, rope_theta=10000.0, key=jax.random.key(4))
    x = nx.named(jnp.asarray(X), ("batch", "position", "embed"))

    @jax.jit
    def run(mha, x):
        def body(carry):
            i, cache, acc = carry
            xi = nx.slice(x, {"position": i}, {"position": 1})
            out, cache = mha(xi, cache=cache)
            return i + 1, cache, nx.updated_slice(acc, {"position": i}, out)

        init = (0, nx.nn.KVCache.init(mha, {"batch": B}, T), nx.zeros_like(x))
        return jax.lax.while_loop(lambda c: c[0] < T, body, init)[2]

    np.testing.assert_allclose(run(mha, x).array, mha(x, mask=MASK).array, rtol=1e-4, atol=1e-5)


def test_dropout_and_errors():
    mha = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, dropout=0.5, key=jax.random.key(5))
    x = nx.named(jnp.asarray(X), ("batch", "position", "embed"))
    with pytest.raises(ValueError, match="dropout.*key"):
        mha(x, mask=MASK)
    a = mha(x, mask=MASK, inference=True)
    b = mha(x, mask=MASK, key=jax.random.key(0))
    assert set(np.unique(np.isclose(b.array, 0) | np.isclose(b.array, 2 * a.array, rtol=1e-4, atol=1e-5))) == {True}
    with pytest.raises(KeyError, match="MultiHeadAttention.*'position'"):
        mha(nx.ones({"t": 2, "embed": 16}), inference=True)
    with pytest.raises(ValueError, match="MultiHeadAttention.init.*KVHeads"):
        nx.nn.MultiHeadAttention.init(Embed, Heads, Head, KVHeads=nx.Axis("kv", 3), key=jax.random.key(0))
