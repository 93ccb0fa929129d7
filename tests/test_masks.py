"""Attention masks against numpy references; offsets static and traced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

Q, K = nx.Axis("q", 4), nx.Axis("k", 6)
Iq, J = np.arange(4)[:, None], np.arange(6)[None, :]


@pytest.mark.parametrize("off", [0, 2])
def test_causal(off):
    assert_named_close(nx.nn.causal_mask(Q, K, q_offset=off), J <= Iq + off, ("q", "k"))


@pytest.mark.parametrize("window", [1, 3])
def test_sliding_window(window):
    ref = (J <= Iq + 1) & (J > Iq + 1 - window)
    assert_named_close(nx.nn.sliding_window_mask(Q, K, window, q_offset=1), ref, ("q", "k"))


def test_prefix_lm_with_per_batch_prefix():
    prefix = np.array([0, 3])
    m = nx.nn.prefix_lm_mask(Q, K, nx.named(jnp.asarray(prefix), "b"))
    ref = (J <= Iq)[None] | (J[None] < prefix[:, None, None])
    assert_named_close(m, ref, ("b", "q", "k"))


def test_segment_and_padding():
    sq, sk = np.array([[0, 0, 1, 1], [0, 1, 1, 2]]), np.array([[0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2]])
    m = nx.nn.segment_mask(nx.named(jnp.asarray(sq), ("b", "q")), nx.named(jnp.asarray(sk.T), ("k", "b")))
    assert_named_close(m, sq[:, :, None] == sk[:, None, :], ("b", "q", "k"))
    lengths = np.array([2, 6])
    p = nx.nn.padding_mask(nx.named(jnp.asarray(lengths), "b"), K)
    assert_named_close(p, np.arange(6)[None] < lengths[:, None], ("b", "k"))
    assert_named_close(nx.nn.padding_mask(3, K), np.arange(6) < 3, ("k",))


def test_combined_with_and_or():
    m = nx.nn.causal_mask(Q, K) & nx.nn.padding_mask(3, K) | nx.nn.sliding_window_mask(Q, K, 1)
    assert_named_close(m, ((J <= Iq) & (J < 3)) | (J == Iq), ("q", "k"))


def test_traced_offsets_under_jit():
    @jax.jit
    def f(off, lengths):
        return (
            nx.nn.causal_mask(nx.Axis("q", 1), K, q_offset=off),
            nx.nn.sliding_window_mask(nx.Axis("q", 1), K, 2, q_offset=off),
            nx.nn.prefix_lm_mask(nx.Axis("q", 1), K, 2, q_offset=off),
            nx.nn.causal_mask(nx.Axis("q", 1), K, q_offset=lengths),
        )

    for off in range(6):
        c, s, p, per_b = f(jnp.int32(off), nx.named(jnp.array([off, 1]), "b"))
        j = np.arange(6)[None]
        assert_named_close(c, j <= off, ("q", "k"))
        assert_named_close(s, (j <= off) & (j > off - 2), ("q", "k"))
        assert_named_close(p, (j <= off) | (j < 2), ("q", "k"))
        assert_named_close(per_b, np.arange(6)[None, None, :] <= np.array([off, 1])[:, None, None], ("b", "q", "k"))


def test_errors():
    with pytest.raises(TypeError, match="causal_mask.*Axis"):
        nx.nn.causal_mask("q", K)
    with pytest.raises(ValueError, match="causal_mask.*same name"):
        nx.nn.causal_mask(Q, nx.Axis("q", 4))
    with pytest.raises(TypeError, match="causal_mask.*q_offset.*integer"):
        nx.nn.causal_mask(Q, K, q_offset=0.5)
    with pytest.raises(ValueError, match="sliding_window_mask.*at least 1"):
        nx.nn.sliding_window_mask(Q, K, 0)
    ids = nx.named(jnp.array([0, 1]), "q")
    with pytest.raises(ValueError, match="segment_mask.*own name"):
        nx.nn.segment_mask(ids, ids)
    with pytest.raises(TypeError, match="segment_mask.*integer"):
        nx.nn.segment_mask(ids.astype(float), ids)
    with pytest.raises(TypeError, match="padding_mask.*plain array"):
        nx.nn.padding_mask(jnp.array([1, 2]), K)
