"""namedax.spaces.Parameter (spaces/_parameter.py): a named value that behaves like its value."""

import copy
import operator
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.spaces import Parameter

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
          operator.pow, operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


INT_BINARY = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
def test_parameter_binary_operators_both_sides(op):
    a, b = np.float32(2.5), np.float32(1.5)
    p, q = Parameter("p", a), Parameter("q", b)
    ref = op(a, b)
    for got in (op(p, b), op(p, jnp.asarray(b)), op(p, q), op(a, q), op(jnp.asarray(a), q), op(float(a), q)):
        assert not isinstance(got, Parameter)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6)


@pytest.mark.parametrize("op", INT_BINARY, ids=lambda f: f.__name__)
def test_parameter_integer_operators(op):
    p, q = Parameter("p", 12), Parameter("q", 2)
    for got in (op(p, 2), op(12, q), op(p, q)):
        assert int(got) == op(12, 2)


def test_parameter_matmul_divmod_unary_and_conversions():
    m = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    v = np.array([1.0, -2.0, 3.0], np.float32)
    p = Parameter("m", m)
    np.testing.assert_allclose(np.asarray(p @ v), m @ v)
    np.testing.assert_allclose(np.asarray(v[:2] @ p), v[:2] @ m)
    s = Parameter("s", -7.5)
    assert float(-s) == 7.5 and float(+s) == -7.5 and float(abs(s)) == 7.5
    assert int(~Parameter("i", 5)) == ~5
    q, r = divmod(Parameter("x", 7.0), 2.0)
    assert (float(q), float(r)) == divmod(7.0, 2.0)
    q, r = divmod(7.0, Parameter("y", 2.0))
    assert (float(q), float(r)) == divmod(7.0, 2.0)
    assert float(s) == -7.5 and int(Parameter("i", 3)) == 3 and complex(Parameter("c", 2.0)) == 2 + 0j
    assert bool(Parameter("t", 1.0)) and not bool(Parameter("f", 0.0))
    assert [1, 2, 3, 4][Parameter("k", 2)] == 3  # __index__
    assert f"{Parameter('f', 0.125):.2f}" == "0.12"
    assert round(Parameter("r", 2.6)) == 3


def test_parameter_behaves_like_its_value_in_jax_numpy():
    x = np.array([0.1, 0.7, 2.0], np.float32)
    p = Parameter("x", x)
    for f, ref in [(jnp.sin, np.sin), (jnp.exp, np.exp), (jnp.sum, np.sum), (jnp.tanh, np.tanh)]:
        np.testing.assert_allclose(np.asarray(f(p)), ref(x), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.where(p > 0.5, p, 0.0)), np.where(x > 0.5, x, 0.0))
    np.testing.assert_allclose(np.asarray(jnp.dot(p, p)), x @ x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.maximum(p, Parameter("y", 1.0))), np.maximum(x, 1.0))
    np.testing.assert_allclose(np.asarray(p), x)
    assert p.shape == (3,) and p.dtype == jnp.float32 and p.ndim == 1 and p.size == 3 and len(p) == 3
    np.testing.assert_allclose([float(v) for v in p], x)
    assert float(p[1]) == np.float32(0.7) and float(p[Parameter("i", 2)]) == 2.0
    np.testing.assert_allclose(np.asarray(p.sum()), x.sum())  # methods of the value
    np.testing.assert_allclose(np.asarray(p.reshape(3, 1)), x.reshape(3, 1))
    # numpy scalars on the left defer to the Parameter
    np.testing.assert_allclose(np.asarray(np.float32(2.0) * p), 2 * x)


def test_parameter_is_a_pytree_with_a_static_face():
    p = Parameter("a", 1.5, low=0.0, high=2.0, free=True)
    leaves, treedef = jax.tree.flatten(p)
    assert len(leaves) == 1 and float(leaves[0]) == 1.5
    doubled = jax.tree.map(lambda v: v * 2, p)
    assert isinstance(doubled, Parameter) and float(doubled.value) == 3.0
    assert (doubled.name, doubled.low, doubled.high, doubled.free) == ("a", 0.0, 2.0, True)
    ((path, _),) = jax.tree_util.tree_flatten_with_path(p)[0]
    assert jax.tree_util.keystr(path) == ".value"
    # JAX rebuilds it with tracers, batched values, None and ShapeDtypeStructs: no validation
    assert float(jax.jit(lambda q: q * 2)(p)) == 3.0
    out = jax.vmap(lambda q: q.value + 1)(Parameter("v", jnp.arange(3.0)))
    np.testing.assert_allclose(np.asarray(out), [1.0, 2.0, 3.0])
    shape = jax.eval_shape(lambda q: q, p)
    assert isinstance(shape, Parameter) and shape.value.shape == ()
    assert jax.tree.unflatten(treedef, [None]).value is None
    g = jax.grad(lambda q: jnp.sin(q) * q)(p)
    np.testing.assert_allclose(float(g.value), np.cos(1.5) * 1.5 + np.sin(1.5), rtol=1e-6)


def test_parameter_copy_pickle_replace_and_immutability():
    p = Parameter("a", [1.0, 2.0], low=-1, high=3, free=True)
    for q in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert isinstance(q, Parameter) and (q.name, q.low, q.high, q.free) == ("a", -1.0, 3.0, True)
        np.testing.assert_allclose(np.asarray(q.value), [1.0, 2.0])
    r = p.replace(value=2.5, free=False)
    assert float(r) == 2.5 and r.free is False and r.low == -1.0
    with pytest.raises(ValueError, match="the value 5.0 lies outside its bounds"):  # fixed: checked (issue 18)
        p.replace(value=5.0, free=False)
    with pytest.raises(AttributeError, match="immutable"):
        p.value = 3.0
    with pytest.raises(TypeError, match="unknown fields"):
        p.replace(bogus=1)
    with pytest.raises(ValueError, match="low"):
        p.replace(low=5.0)
    expected = "Parameter('a', 0.5, low=0.0, high=1.0, free=True)"
    assert repr(Parameter("a", 0.5, low=0.0, high=1.0, free=True)) == expected
    assert repr(Parameter("b", 2)) == "Parameter('b', 2)"


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(low=2.0, high=1.0), ValueError, r"'a'.*`low` must be <= `high`.*low=2.0, high=1.0"),
        (dict(low=float("nan")), ValueError, r"`low` must be finite, got nan"),
        (dict(high=float("inf")), ValueError, r"`high` must be finite, got inf"),
        (dict(low=-np.inf, high=0.0), ValueError, r"`low` must be finite"),
        (dict(low="zero"), TypeError, r"`low` must be a real number or None, got 'zero'"),
        (dict(high=np.array([1.0, 2.0])), TypeError, r"`high` must be a real number"),
        (dict(low=True), TypeError, r"`low` must be a real number"),
        (dict(free="yes"), TypeError, r"`free` must be a bool, got str"),
    ],
)
def test_parameter_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Parameter("a", 0.0, **kwargs)


def test_parameter_bad_name_and_value():
    with pytest.raises(TypeError, match="`name` must be a str, got int"):
        Parameter(3, 0.0)
    with pytest.raises(TypeError, match=r"'a'.*`value` must be array-like"):
        Parameter("a", "text")
    assert Parameter("ok", 1.0, low=np.float32(0), high=np.int64(3)).high == 3.0  # numpy scalars are fine

