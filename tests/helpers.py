"""Test helpers: compare named results with positional references."""

import jax
import numpy as np

import namedax as nx


def to_numpy(x, order=None):
    """A NamedArray as a numpy array, its axes put in ``order`` (names) first."""
    if order is not None:
        x = nx.rearrange(x, order)
    return np.asarray(x.array)


def assert_named_close(x, ref, order, rtol=1e-5, atol=1e-6):
    """``x`` (a NamedArray) has exactly the axes named in ``order`` and, rearranged to that order,
    equals the positional reference ``ref``."""
    assert isinstance(x, nx.NamedArray), type(x)
    assert {a.name for a in x.axes} == set(order), (x.axes, order)
    np.testing.assert_allclose(to_numpy(x, order), np.asarray(ref), rtol=rtol, atol=atol)


def tree_allclose(a, b, rtol=1e-5, atol=1e-6):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
