"""nx.slice / nx.updated_slice against jax.lax.dynamic_slice / dynamic_update_slice, axes in several orders."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

A = np.arange(4 * 5 * 6).reshape(4, 5, 6).astype(np.float32)
NAMES = ("a", "b", "c")


@pytest.mark.parametrize("order", list(itertools.permutations(NAMES))[:4])
@pytest.mark.parametrize("start", [(1, 2), (-1, 0), (3, 5), (-9, 9)])
def test_slice_matches_lax(order, start):
    x = nx.rearrange(nx.named(jnp.asarray(A), NAMES), order)
    got = nx.slice(x, {"c": start[1], "a": start[0]}, {"a": 2, "c": 3})
    ref = jax.lax.dynamic_slice(A, (start[0], 0, start[1]), (2, 5, 3))
    assert got.shape == {n: {"a": 2, "b": 5, "c": 3}[n] for n in order}
    assert_named_close(got, ref, NAMES)


def test_slice_traced_starts():
    x = nx.named(jnp.asarray(A), NAMES)
    f = jax.jit(lambda x, i, j: nx.slice(x, {"b": i, "c": nx.named(j, ())}, {"b": 1, "c": 2}))
    for i, j in [(0, 0), (4, 4), (2, 7)]:
        assert_named_close(f(x, i, jnp.int32(j)), jax.lax.dynamic_slice(A, (0, i, j), (4, 1, 2)), NAMES)


@pytest.mark.parametrize("order", [("a", "b", "c"), ("c", "a", "b")])
def test_updated_slice_matches_lax(order):
    x = nx.rearrange(nx.named(jnp.asarray(A), NAMES), order)
    u = np.arange(2 * 5 * 3).reshape(2, 5, 3).astype(np.float32) + 1000
    upd = nx.rearrange(nx.named(jnp.asarray(u), NAMES), ("b", "c", "a"))
    f = jax.jit(lambda x, i: nx.updated_slice(x, {"a": i, "c": 2}, upd))
    for i in [0, 1, 3, -1]:
        got = f(x, i)
        assert got.axes == x.axes
        assert_named_close(got, jax.lax.dynamic_update_slice(A, u, (i, 0, 2)), NAMES)


def test_updated_slice_broadcasts_missing_axes_and_casts():
    x = nx.named(jnp.asarray(A), NAMES)
    upd = nx.named(jnp.array([7, 8]), "c")  # int, no a or b: broadcast over them
    got = nx.updated_slice(x, {"c": 1}, upd)
    ref = A.copy()
    ref[:, :, 1:3] = [7, 8]
    assert got.dtype == np.float32
    assert_named_close(got, ref, NAMES)


def test_errors_name_the_op_and_axes():
    x = nx.named(jnp.asarray(A), NAMES)
    with pytest.raises(KeyError, match="slice: no axis 'z'"):
        nx.slice(x, {"z": 0}, {"z": 1})
    with pytest.raises(ValueError, match="slice: `start` and `length` must name the same axes"):
        nx.slice(x, {"a": 0}, {"b": 1})
    with pytest.raises(ValueError, match="slice: length 7 for Axis\\('a', 4\\)"):
        nx.slice(x, {"a": 0}, {"a": 7})
    with pytest.raises(TypeError, match="slice: the start for axis 'a'"):
        nx.slice(x, {"a": 0.5}, {"a": 1})
    with pytest.raises(ValueError, match="slice: the start for axis 'a' must be a scalar"):
        nx.slice(x, {"a": nx.named(jnp.array([0, 1]), "q")}, {"a": 1})
    with pytest.raises(ValueError, match="updated_slice: .*Axis\\('z', 1\\).*lacks"):
        nx.updated_slice(x, {"a": 0}, nx.zeros({"a": 1, "z": 1}))
    with pytest.raises(ValueError, match="updated_slice: the update's axis Axis\\('b', 2\\) is shorter"):
        nx.updated_slice(x, {"a": 0}, nx.zeros({"a": 1, "b": 2}))
    with pytest.raises(ValueError, match="updated_slice: the update's axis Axis\\('a', 9\\) is longer"):
        nx.updated_slice(x, {"a": 0}, nx.zeros({"a": 9}))
    with pytest.raises(TypeError, match="updated_slice: `update` must be a NamedArray"):
        nx.updated_slice(x, {"a": 0}, jnp.zeros((1, 5, 6)))
