"""tile, repeat, trace, ravel, around, unique, searchsorted, bincount, nonzero and the FFTs by name,
against jax.numpy / numpy on the positional layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close
from namedax import Axis

A, B, C = Axis("a", 2), Axis("b", 3), Axis("c", 4)


def arr(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def ints(*shape, high=5, seed=0):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(np.int32)


def test_tile_and_repeat():
    a = arr(2, 3)
    x = nx.named(a, (A, B))
    assert_named_close(nx.tile(x, {"b": 2, "a": 3}), np.tile(a, (3, 2)), ("a", "b"))
    assert nx.tile(x, {"b": 2}).axes == (A, Axis("b", 6))
    assert_named_close(nx.repeat(x, 2, "a"), np.repeat(a, 2, axis=0), ("a", "b"))
    xt = x.rearrange(("b", "a"))  # by name, wherever the axis sits
    assert_named_close(nx.repeat(xt, 3, "b"), np.repeat(a, 3, axis=1), ("a", "b"))
    assert jax.jit(lambda x: nx.repeat(x, 2, "b"))(x).axes == (A, Axis("b", 6))
    with pytest.raises(KeyError, match="repeat: no axis 'z'"):
        nx.repeat(x, 2, "z")
    with pytest.raises(TypeError, match="tile: `reps` must be"):
        nx.tile(x, (2, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="static int"):
        nx.repeat(x, 1.5, "a")  # type: ignore[arg-type]


def test_trace_and_ravel_and_around():
    a = arr(2, 3, 3)
    x = nx.named(a, (A, B, Axis("d", 3)))
    assert_named_close(nx.trace(x, "b", "d"), np.trace(a, axis1=1, axis2=2), ("a",))
    assert_named_close(nx.trace(x, "d", "b", offset=1), np.trace(a, offset=1, axis1=2, axis2=1), ("a",))
    with pytest.raises(ValueError, match="trace: axis1 and axis2 are the same"):
        nx.trace(x, "b", "b")
    y = nx.named(a, (A, B, Axis("d", 3))).rearrange(("d", "a", "b"))
    r = nx.ravel(y, "flat")
    assert r.axes == (Axis("flat", 18),)
    np.testing.assert_array_equal(np.asarray(r.array), np.transpose(a, (2, 0, 1)).ravel())
    np.testing.assert_array_equal(np.asarray(nx.around(x * 10, 1).array), np.asarray(jnp.around(a * 10, 1)))


def test_unique_with_static_size():
    a = ints(3, 4, high=4)
    x = nx.named(a, (B, C))
    U = Axis("u", 6)
    vals, idx, inv, counts = nx.unique(x, U, return_index=True, return_inverse=True, return_counts=True, fill_value=-1)
    rv, ri, rinv, rc = jnp.unique(a, size=6, fill_value=-1, return_index=True, return_inverse=True, return_counts=True)
    for got, want in ((vals, rv), (idx, ri), (counts, rc)):
        assert got.axes == (U,)
        np.testing.assert_array_equal(np.asarray(got.array), np.asarray(want))
    assert inv.axes == (B, C)
    np.testing.assert_array_equal(np.asarray(inv.array), np.asarray(rinv).reshape(3, 4))
    rows = nx.named(np.array([[1, 2], [1, 2], [0, 5]], np.int32), (B, Axis("k", 2)))
    ur = nx.unique(rows, Axis("r", 2), axis="b")
    assert ur.axes == (Axis("r", 2), Axis("k", 2))
    np.testing.assert_array_equal(np.asarray(ur.array), np.unique(np.asarray(rows.array), axis=0))
    with pytest.raises(TypeError, match="unique: `Unique` must be an Axis"):
        nx.unique(x, 6)  # type: ignore[arg-type]


def test_searchsorted_bincount_nonzero():
    edges = np.array([0.0, 1.0, 2.5, 4.0], np.float32)
    v = arr(2, 3) * 3
    got = nx.searchsorted(nx.named(edges, "e"), nx.named(v, (A, B)), side="right")
    assert_named_close(got, np.searchsorted(edges, v, side="right"), ("a", "b"))
    assert int(nx.searchsorted(nx.named(edges, "e"), 1.5).array) == 2
    with pytest.raises(ValueError, match="searchsorted: `a` must have exactly one axis"):
        nx.searchsorted(nx.named(arr(2, 3), (A, B)), 1.0)

    a = ints(3, 4, high=6)
    w = arr(4, seed=1)
    x = nx.named(a, (B, C))
    V = Axis("value", 7)
    assert_named_close(nx.bincount(x, V), np.bincount(a.ravel(), minlength=7), ("value",))
    wb = np.broadcast_to(w, (3, 4))  # weights over "c" only, broadcast by name
    assert_named_close(nx.bincount(x, V, weights=nx.named(w, (C,))), np.bincount(a.ravel(), wb.ravel(), minlength=7),
                       ("value",), rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="bincount: `weights`"):
        nx.bincount(x, V, weights=nx.named(arr(2), (A,)))

    m = ints(3, 4, high=2)
    hits = nx.nonzero(nx.named(m, (B, C)), size=Axis("hit", 12), fill_value=-1)
    ref = jnp.nonzero(m, size=12, fill_value=-1)
    assert len(hits) == 2
    for h, r in zip(hits, ref, strict=True):
        assert h.axes == (Axis("hit", 12),)
        np.testing.assert_array_equal(np.asarray(h.array), np.asarray(r))


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft"])
def test_fft_family_by_name(name):
    a = arr(3, 8)
    x = nx.named(a, (B, Axis("t", 8))).rearrange(("t", "b"))  # transformed axis not last
    f, jf = getattr(nx, name), getattr(jnp.fft, name)
    y = f(x, "t")
    want = jf(a, axis=1)
    assert y.axes[0].name == "t" and y.axes[1] == B and y.axes[0].size == want.shape[1]
    np.testing.assert_allclose(np.asarray(y.rearrange(("b", "t")).array), np.asarray(want), rtol=1e-4, atol=1e-4)
    padded = f(x, Axis("t", 16))
    np.testing.assert_allclose(np.asarray(padded.rearrange(("b", "t")).array), np.asarray(jf(a, n=16, axis=1)),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    many = f(x, {"b": None, "t": None})
    want_n = getattr(jnp.fft, name + "n")(a, axes=(0, 1))
    np.testing.assert_allclose(np.asarray(many.rearrange(("b", "t")).array), np.asarray(want_n), rtol=1e-4, atol=1e-4)
    last = f(x)  # None: the last axis (here "b")
    np.testing.assert_allclose(np.asarray(last.rearrange(("b", "t")).array), np.asarray(jf(a, axis=0)),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_irfft_restores_the_length():
    a = arr(3, 8)
    x = nx.named(a, (B, Axis("t", 8)))
    spec = nx.rfft(x, "t")
    assert spec.axes == (B, Axis("t", 5))
    back = nx.irfft(spec, "t")
    assert back.axes == x.axes
    np.testing.assert_allclose(np.asarray(back.array), a, rtol=1e-4, atol=1e-5)
    odd = nx.irfft(nx.rfft(nx.named(a[:, :7], (B, Axis("t", 7))), "t"), Axis("t", 7))
    np.testing.assert_allclose(np.asarray(odd.array), a[:, :7], rtol=1e-4, atol=1e-5)
    with pytest.raises(KeyError, match="irfft: no axis 'f'"):
        nx.irfft(spec, "f")
    with pytest.raises(ValueError, match="listed twice"):
        nx.fft(x, ("t", "t"))
