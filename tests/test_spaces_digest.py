"""Spaces as PyTrees, their fingerprints, and the digest module (core/_digest.py) they share with checkpoints."""

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



def test_digest_one_encoding_of_arrays():
    # numpy and jax arrays of the same dtype, shape and bytes digest alike; any of the three differing
    # gives another digest (hashlib over the raw bytes is the reference)
    import hashlib

    from namedax.core._digest import Digest, digest

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert digest(a) == digest(jnp.asarray(a)) == digest(np.asarray(a, order="F"))
    assert digest(a) != digest(a.astype(np.int32)) and digest(a) != digest(a.reshape(3, 2))
    assert digest(a) != digest(a + 1)
    want = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()
    assert Digest().array(a).hexdigest() == want
    key = jax.random.key(3)
    assert digest(key) == digest(jax.random.key(3)) != digest(jax.random.key(4))
    assert digest({"x": a, "k": 1.0}) != digest({"x": a, "k": 2.0})


def test_stable_repr_and_value_keys():
    from namedax.core._digest import ValueKey, stable_repr

    class Thing:
        pass

    assert " at 0x" in repr(Thing()) and " at 0x" not in stable_repr(Thing())
    assert stable_repr(np.sin) == "numpy.sin" and stable_repr(_data_state).endswith("test_spaces_data._data_state")
    assert stable_repr({"b", "a", "c"}) == "set([\"'a'\", \"'b'\", \"'c'\"])"
    assert stable_repr((1,)) == repr((1,)) and stable_repr((1, 2.5)) == repr((1, 2.5))
    # by value when hashable: same type and equal (floats by repr), else by identity
    assert ValueKey(2) == ValueKey(2) and hash(ValueKey("x")) == hash(ValueKey("x"))
    assert ValueKey(0.0) != ValueKey(-0.0) and ValueKey(1) != ValueKey(True) and ValueKey(1) != ValueKey(1.0)
    nan = float("nan")
    assert ValueKey(nan) == ValueKey(float("nan"))
    lst = [1, 2]
    assert ValueKey(lst) == ValueKey(lst) and ValueKey(lst) != ValueKey([1, 2])
    arr = np.zeros(2)
    assert ValueKey(arr) == ValueKey(arr) and ValueKey(arr) != ValueKey(np.zeros(2))
