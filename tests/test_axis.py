import copy
import pickle

import jax
import numpy as np
import pytest

import namedax as nx
from namedax import Axis
from namedax.typing import f32


def test_axis_is_frozen_hashable_and_equal_by_value():
    a = Axis("batch", 3)
    assert a == Axis("batch", 3)
    assert a != Axis("batch", 4) and a != Axis("other", 3)
    assert hash(a) == hash(Axis("batch", 3))
    assert len({a, Axis("batch", 3), Axis("batch", 4)}) == 2
    with pytest.raises(AttributeError):
        a.size = 5  # type: ignore[misc]
    assert a != ("batch", 3)
    assert pickle.loads(pickle.dumps(a)) == a


def test_axis_hashes_in_c_and_behaves_as_an_axis_not_a_tuple():
    # axes tuples key every eager plan: their hash must not call Python code (issue: eager dot 1.34x)
    assert Axis.__hash__ is tuple.__hash__
    a = Axis("batch", 3)
    assert a != ("batch", 3) and ("batch", 3) != a and not (("batch", 3) == a)
    assert {a: 1}.get(("batch", 3)) is None
    for bad in (lambda: a < Axis("c", 1), lambda: sorted([a, a]), lambda: a + a, lambda: (a,) + a, lambda: a * 2):
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(AttributeError, match="immutable"):
        a.name = "x"  # type: ignore[misc]
    assert copy.deepcopy(a) == a and type(copy.copy(a)) is Axis and repr(a) == "Axis('batch', 3)"
    assert jax.tree.leaves({"k": a}) == [a]  # a PyTree leaf, as before (not a namedtuple node)
    x = nx.zeros((a,))
    with pytest.raises(TypeError, match="index by name"):
        x[a]  # not read as the pair ("batch", 3)
    assert x[a, 1].axes == ()
    assert isinstance(x, f32[a]) and not isinstance(nx.zeros({"batch": 4}), f32[a])  # an Axis, not 2 names


def test_axis_accepts_numpy_ints_and_rejects_bad_sizes():
    assert Axis("a", np.int64(4)).size == 4
    assert type(Axis("a", np.int64(4)).size) is int
    with pytest.raises(TypeError, match="size must be an int"):
        Axis("a", 2.0)
    with pytest.raises(ValueError, match=">= 0"):
        Axis("a", -1)
    with pytest.raises(TypeError, match="name must be a str"):
        Axis(3, 2)  # type: ignore[arg-type]


def test_alias_and_resize():
    a = Axis("batch", 3)
    assert a.alias("rows") == Axis("rows", 3)
    assert a.resize(7) == Axis("batch", 7)


def test_name_and_size_helpers():
    assert nx.axis_name(Axis("a", 2)) == "a" and nx.axis_name("a") == "a"
    with pytest.raises(TypeError, match="axis selector"):
        nx.axis_name(3)  # type: ignore[arg-type]
    assert nx.axis_size(Axis("a", 2)) == 2
    assert nx.axis_size({"a": 2, "b": 5}) == 10
    assert nx.axis_size([Axis("a", 2), Axis("b", 3)]) == 6


def test_selects_axis():
    assert nx.selects_axis("a", "a")
    assert nx.selects_axis(("a", "b"), Axis("b", 9))
    assert nx.selects_axis([Axis("b", 2)], "b")
    assert not nx.selects_axis([Axis("b", 2)], Axis("b", 3))
    assert not nx.selects_axis({"a": 1}, "b")


def test_make_and_combine_axes():
    A, B, C = nx.make_axes(a=2, b=3, c=4)
    assert (A, B, C) == (Axis("a", 2), Axis("b", 3), Axis("c", 4))
    assert nx.concat_axes((A,), {"b": 3}) == (A, B)
    with pytest.raises(ValueError, match="duplicate axis names \\['a'\\]"):
        nx.concat_axes((A, B), (A,))
    assert nx.union_axes((A, B), (B, C)) == (A, B, C)
    with pytest.raises(ValueError, match="axis 'b' has size 3 in the first spec and 5"):
        nx.union_axes((A, B), {"b": 5})
    assert nx.eliminate_axes((A, B, C), "b") == (A, C)
    assert nx.eliminate_axes((A, B, C), (B, "a")) == (C,)
    with pytest.raises(ValueError, match="axes \\['z'\\] not in"):
        nx.eliminate_axes((A, B), "z")
    assert nx.replace_axis((A, B, C), "b", {"x": 1, "y": 3}) == (A, Axis("x", 1), Axis("y", 3), C)
    assert nx.replace_axis((A, B), B, Axis("z", 3)) == (A, Axis("z", 3))
    with pytest.raises(ValueError, match="duplicate"):
        nx.replace_axis((A, B), "b", A)
    with pytest.raises(ValueError, match="axis 'q' not in"):
        nx.replace_axis((A, B), "q", A)


def test_spec_needs_sizes():
    with pytest.raises(TypeError, match="a size is needed for axis 'batch'"):
        nx.zeros("batch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a size is needed"):
        nx.zeros(["batch"])  # type: ignore[list-item]
