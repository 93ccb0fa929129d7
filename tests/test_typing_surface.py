"""NamedArray's typing surface: every operator and method is defined in the class body (or its
`ArrayMethods` base), so type checkers see it, has the signature of the op it stands for, and
behaves like jax.numpy. tests/typing_sample.py is the pyright check itself (run by hand:
``pyright tests/typing_sample.py``)."""

import inspect
import operator

import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.core._methods import ArrayMethods
from namedax.core._named_array import NamedArray

_BINARY = {
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "truediv": jnp.true_divide,
    "floordiv": jnp.floor_divide, "mod": jnp.mod, "pow": jnp.power, "and": jnp.bitwise_and,
    "or": jnp.bitwise_or, "xor": jnp.bitwise_xor, "lshift": jnp.left_shift, "rshift": jnp.right_shift,
}  # fmt: skip
_COMPARE = {"eq": jnp.equal, "ne": jnp.not_equal, "lt": jnp.less, "le": jnp.less_equal, "gt": jnp.greater,
            "ge": jnp.greater_equal}  # fmt: skip
_UNARY = {"neg": jnp.negative, "pos": jnp.positive, "abs": jnp.abs, "invert": jnp.invert}

_A = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
_B = np.array([3, 1, 2], dtype=np.int32)


def _x():
    return nx.named(jnp.asarray(_A), ("a", "b"))


def _y():
    return nx.named(jnp.asarray(_B), "b")


@pytest.mark.parametrize("name", sorted(_BINARY))
def test_binary_operators_are_in_the_class_body_and_match_jnp(name):
    for dunder in (f"__{name}__", f"__r{name}__"):
        assert dunder in vars(NamedArray), dunder
    fn = _BINARY[name]
    out = getattr(operator, f"{name}_" if name in ("and", "or") else name)(_x(), _y())
    np.testing.assert_array_equal(out.array, fn(_A, _B))
    assert out.axes == _x().axes
    r = getattr(_y(), f"__r{name}__")(2)  # 2 <op> y
    np.testing.assert_array_equal(r.array, fn(2, _B))


@pytest.mark.parametrize("name", sorted(_COMPARE))
def test_comparisons_are_in_the_class_body_and_match_jnp(name):
    assert f"__{name}__" in vars(NamedArray)
    out = getattr(_x(), f"__{name}__")(_y())
    np.testing.assert_array_equal(out.array, _COMPARE[name](_A, _B))


@pytest.mark.parametrize("name", sorted(_UNARY))
def test_unary_operators_are_in_the_class_body_and_match_jnp(name):
    assert f"__{name}__" in vars(NamedArray)
    out = getattr(_x(), f"__{name}__")()
    np.testing.assert_array_equal(out.array, _UNARY[name](_A))
    assert out.axes == _x().axes


_METHODS = sorted(n for n, v in vars(ArrayMethods).items() if inspect.isfunction(v))


def test_methods_cover_the_ops_jax_arrays_have():
    assert {"sum", "mean", "max", "argmax", "take", "dot", "round", "clip", "conj", "flatten_axes"} <= set(_METHODS)


@pytest.mark.parametrize("name", _METHODS)
def test_each_method_has_the_signature_of_its_op(name):
    method, op = getattr(NamedArray, name), getattr(nx, name)
    m = list(inspect.signature(method).parameters.values())[1:]  # self
    o = list(inspect.signature(op).parameters.values())
    if name != "dot":  # dot(*arrays, ...): self is the first of the arrays
        o = o[1:]
    assert [(p.name, p.kind) for p in m] == [(p.name, p.kind) for p in o]
    for pm, po in zip(m, o, strict=True):
        assert pm.default is po.default or pm.default == po.default, (name, pm, po)
        assert str(pm.annotation) == str(po.annotation), (name, pm, po)


_CALLS = {
    "sum": ("b",), "mean": ("b",), "prod": ("b",), "max": ("b",), "min": ("b",), "std": ("b",), "var": ("b",),
    "any": ("b",), "all": ("b",), "argmax": ("b",), "argmin": ("b",), "cumsum": ("b",), "cumprod": ("b",),
    "sort": ("b",), "argsort": ("b",), "flatten_axes": (("a", "b"), "ab"), "unflatten_axis": ("b", {"c": 3}),
    "split": ("b", [1, 2]), "unbind": ("a",), "take": ("b", 1), "roll": (1, "b"), "pad": ({"b": 1},),
    "round": (), "clip": (2, 5), "conj": (), "ravel": ("ab",), "slice": ({"b": 1}, {"b": 2}),
    "updated_slice": ({"b": 1}, nx.named(np.array([[7.0], [8.0]]), ("a", "b"))),
}  # fmt: skip


@pytest.mark.parametrize("name", _METHODS)
def test_each_method_gives_what_its_op_gives(name):
    x = _x().astype(jnp.float32)
    if name == "dot":
        got, want = x.dot(_y().astype(jnp.float32), axis="b"), nx.dot(x, _y().astype(jnp.float32), axis="b")
        np.testing.assert_allclose(got.array, _A.astype(np.float32) @ _B.astype(np.float32))
    else:
        args = _CALLS[name]
        got, want = getattr(x, name)(*args), getattr(nx, name)(x, *args)
    got, want = (got, want) if isinstance(got, list) else ([got], [want])
    for g, w in zip(got, want, strict=True):
        assert g.axes == w.axes
        np.testing.assert_array_equal(g.array, w.array)


_OPERANDS = [2, 2.0, True, np.float32(2.0), np.int32(2), np.array(2.0), jnp.float32(2.0), jnp.array(2.0)]


@pytest.mark.parametrize("other", _OPERANDS, ids=lambda v: type(v).__name__)
def test_declared_operand_kinds_work_both_ways(other):
    # the operand kinds the operators accept (NamedArray | jax.typing.ArrayLike, 0-d) give a NamedArray
    x = nx.named(jnp.arange(1.0, 4.0), "a")
    for out in (x + other, other + x, x * other, other - x, x < other, other == x):
        assert type(out) is NamedArray and out.axes == x.axes, (type(other), out)


def test_typing_sample_runs():
    # the sample pyright checks (tests/typing_sample.py) is correct code too
    import typing_sample

    out = typing_sample.main()
    assert type(out[0]) is NamedArray and out[0].axes == (nx.Axis("batch", 2), nx.Axis("embed", 3))
