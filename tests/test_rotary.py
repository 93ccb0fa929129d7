"""RoPE against a hand-written numpy reference (Hugging Face's rotate_half form), and ALiBi."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

X = np.random.default_rng(0).normal(size=(2, 5, 3, 8)).astype(np.float32)  # (b, t, n, d)


def rope_reference(x, positions, theta=10000.0):
    """x (..., t, n, d), positions (t,) or broadcastable (b, t): HF's cos/sin with rotate_half."""
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.asarray(positions, np.float64)[..., None] * inv  # (..., t, d/2)
    emb = np.concatenate([ang, ang], axis=-1)[..., None, :]  # (..., t, 1, d)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotate_half = np.concatenate([-x2, x1], axis=-1)
    return x * np.cos(emb) + rotate_half * np.sin(emb)


@pytest.mark.parametrize("order", list(itertools.permutations("btnd"))[::7])
def test_matches_reference_in_any_order(order):
    x = nx.rearrange(nx.named(jnp.asarray(X), tuple("btnd")), order)
    y = nx.nn.rotary_embedding(x, "t", "d")
    assert y.axes == x.axes
    assert_named_close(y, rope_reference(X, np.arange(5)), tuple("btnd"), atol=1e-5)


def test_offsets_positions_and_theta():
    x = nx.named(jnp.asarray(X), tuple("btnd"))
    got = jax.jit(lambda x, k: nx.nn.rotary_embedding(x, "t", "d", positions=k, theta=500.0))(x, 7)
    assert_named_close(got, rope_reference(X, np.arange(7, 12), 500.0), tuple("btnd"), atol=1e-4)
    pos = np.array([[0, 1, 2, 0, 1], [3, 4, 5, 6, 7]])  # packed sequences: one row of positions per batch
    got = nx.nn.rotary_embedding(x, "t", "d", positions=nx.named(jnp.asarray(pos), ("b", "t")))
    assert_named_close(got, rope_reference(X, pos), tuple("btnd"), atol=1e-4)


def test_scores_depend_on_distance_only():
    q = nx.named(jnp.ones((1, 8)), ("t", "d"))
    a = nx.nn.rotary_embedding(q, "t", "d", positions=3)
    b = nx.nn.rotary_embedding(q, "t", "d", positions=5)
    c = nx.nn.rotary_embedding(q, "t", "d", positions=10)
    d = nx.nn.rotary_embedding(q, "t", "d", positions=12)
    np.testing.assert_allclose(float(nx.sum(a * b).array), float(nx.sum(c * d).array), rtol=1e-5)


def test_bfloat16_keeps_dtype():
    x = nx.named(jnp.asarray(X, jnp.bfloat16), tuple("btnd"))
    y = nx.nn.rotary_embedding(x, "t", "d")
    assert y.dtype == jnp.bfloat16
    assert_named_close(y.astype(jnp.float32), rope_reference(X, np.arange(5)), tuple("btnd"), rtol=2e-2, atol=3e-2)


def test_rope_errors():
    with pytest.raises(ValueError, match="rotary_embedding.*even"):
        nx.nn.rotary_embedding(nx.ones({"t": 2, "d": 3}), "t", "d")
    with pytest.raises(KeyError, match="rotary_embedding: no axis 'p'"):
        nx.nn.rotary_embedding(nx.ones({"t": 2, "d": 4}), "p", "d")
    with pytest.raises(ValueError, match="rotary_embedding.*positions"):
        nx.nn.rotary_embedding(nx.ones({"t": 2, "d": 4}), "t", "d", positions=nx.arange(nx.Axis("t", 3)))


def alibi_reference_slopes(n):
    """The ALiBi paper's get_slopes, verbatim in spirit."""

    def pow2(n):
        start = 2 ** (-(2 ** -(np.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if np.log2(n).is_integer():
        return pow2(n)
    c = 2 ** int(np.floor(np.log2(n)))
    return pow2(c) + alibi_reference_slopes(2 * c)[0::2][: n - c]


@pytest.mark.parametrize("n", [1, 2, 3, 6, 8, 12])
def test_alibi(n):
    Hs, Q, K = nx.Axis("h", n), nx.Axis("q", 3), nx.Axis("k", 5)
    b = nx.nn.alibi_bias(Hs, Q, K, q_offset=2)
    m = np.asarray(alibi_reference_slopes(n))
    ref = -m[:, None, None] * np.abs(np.arange(3)[:, None] + 2 - np.arange(5)[None, :])
    assert_named_close(b, ref, ("h", "q", "k"), atol=1e-7)


def test_alibi_in_attention_matches_positional_bias():
    q, k, v = (np.random.default_rng(i).normal(size=(4, 2, 8)).astype(np.float32) for i in range(3))
    Hs, T, S = nx.Axis("h", 2), nx.Axis("t", 4), nx.Axis("s", 4)
    out = nx.nn.dot_product_attention(
        nx.named(q, ("t", "h", "d")),
        nx.named(k, ("s", "h", "d")),
        nx.named(v, ("s", "h", "d")),
        q_axis="t",
        kv_axis="s",
        head_axis="d",
        bias=nx.nn.alibi_bias(Hs, T, S),
        mask=nx.nn.causal_mask(T, S),
    )
    m = np.asarray(alibi_reference_slopes(2))
    bias = -m[:, None, None] * (np.arange(4)[:, None] - np.arange(4)[None, :])
    ref = jax.nn.dot_product_attention(q, k, v, bias=bias[None], is_causal=True)
    assert_named_close(out, ref, ("t", "h", "d"), atol=1e-5)
