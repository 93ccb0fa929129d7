"""Spaces as PyTrees, their fingerprints, and the digest module (spaces/_digest.py) they share with checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.spaces import DataSpace, GridSpace, UniformSpace
from test_spaces_data import _data_state
from test_spaces_grid import _grid_state
from test_spaces_uniform import _uniform_state


def test_spaces_are_pytrees_and_fingerprints():
    space = GridSpace(_grid_state(), n=3)
    leaves, treedef = jax.tree.flatten(space)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.N == space.N and rebuilt.axes == space.axes
    np.testing.assert_array_equal(np.asarray(rebuilt.block(0, 27)["c"].value),
                                  np.asarray(space.block(0, 27)["c"].value))
    assert float(rebuilt[4]["model"]["b"]) == float(space[4]["model"]["b"])
    assert set(rebuilt.state) == set(space.state)
    assert GridSpace(_grid_state(), n=3).fingerprint() == space.fingerprint()
    assert GridSpace(_grid_state(), n=4).fingerprint() != space.fingerprint()
    other = _grid_state()
    other["w"] = jnp.full(3, 2.0)
    assert GridSpace(other, n=3).fingerprint() != space.fingerprint()
    ds = DataSpace(_data_state())
    leaves, treedef = jax.tree.flatten(ds)
    back = jax.tree.unflatten(treedef, leaves)
    np.testing.assert_array_equal(np.asarray(back.state["x"]), np.asarray(ds.state["x"]))
    assert back.state["p"].name == "p" and float(back[1]["p"]) == 20.0
    assert DataSpace(_data_state()).fingerprint() == ds.fingerprint()
    keyed = UniformSpace(_uniform_state(), 5, jax.random.key(1))
    assert UniformSpace(_uniform_state(), 5).fingerprint() != keyed.fingerprint()
    np.testing.assert_array_equal(np.asarray(ds.points(range(1, 3))["y"]), np.asarray(ds.state["y"])[1:3])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        ds.points(range(1, 4))

