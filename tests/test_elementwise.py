"""Elementwise ops: every function against raw jax.numpy on the positional equivalent."""

import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import to_numpy

# Sizes are fixed per name so that random axis orders reuse a small set of compiled signatures.
SIZES = {"a": 2, "b": 3, "c": 1}
NAMES = tuple(SIZES)


def make(kind, shape, rng):
    """Random test data of a kind suited to a function's domain."""
    if kind == "real":
        return rng.normal(size=shape).astype(np.float32)
    if kind == "pos":
        return rng.uniform(0.1, 3.0, size=shape).astype(np.float32)
    if kind == "unit":
        return rng.uniform(-0.9, 0.9, size=shape).astype(np.float32)
    if kind == "ge1":
        return rng.uniform(1.0, 3.0, size=shape).astype(np.float32)
    if kind == "special":
        x = rng.normal(size=shape).astype(np.float32)
        mask = rng.integers(0, 4, size=shape)
        return np.where(mask == 1, np.nan, np.where(mask == 2, np.inf, np.where(mask == 3, -np.inf, x)))
    if kind == "int":
        return rng.integers(-8, 9, size=shape).astype(np.int32)
    if kind == "shift":
        return rng.integers(0, 5, size=shape).astype(np.int32)
    if kind == "bool":
        return rng.random(size=shape) > 0.5
    if kind == "complex":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    raise AssertionError(kind)


SCALAR = {"real": 1.5, "pos": 2.0, "unit": 0.5, "special": 1.5, "int": 3, "shift": 2, "bool": True}

# name -> (positional reference, input kind). Written out here, independently of the module.
UNARY = {
    "abs": (jnp.abs, "real"), "absolute": (jnp.absolute, "real"), "fabs": (jnp.fabs, "real"),
    "negative": (jnp.negative, "real"), "positive": (jnp.positive, "real"), "sign": (jnp.sign, "real"),
    "signbit": (jnp.signbit, "real"), "floor": (jnp.floor, "real"), "ceil": (jnp.ceil, "real"),
    "rint": (jnp.rint, "real"), "trunc": (jnp.trunc, "real"), "exp": (jnp.exp, "real"),
    "exp2": (jnp.exp2, "real"), "expm1": (jnp.expm1, "real"), "log": (jnp.log, "pos"),
    "log1p": (jnp.log1p, "pos"), "log2": (jnp.log2, "pos"), "log10": (jnp.log10, "pos"),
    "sqrt": (jnp.sqrt, "pos"), "rsqrt": (jax.lax.rsqrt, "pos"), "cbrt": (jnp.cbrt, "real"),
    "square": (jnp.square, "real"), "reciprocal": (jnp.reciprocal, "pos"), "sin": (jnp.sin, "real"),
    "cos": (jnp.cos, "real"), "tan": (jnp.tan, "unit"), "arcsin": (jnp.arcsin, "unit"),
    "arccos": (jnp.arccos, "unit"), "arctan": (jnp.arctan, "real"), "sinh": (jnp.sinh, "real"),
    "cosh": (jnp.cosh, "real"), "tanh": (jnp.tanh, "real"), "arcsinh": (jnp.arcsinh, "real"),
    "arccosh": (jnp.arccosh, "ge1"), "arctanh": (jnp.arctanh, "unit"), "deg2rad": (jnp.deg2rad, "real"),
    "radians": (jnp.radians, "real"), "rad2deg": (jnp.rad2deg, "real"), "degrees": (jnp.degrees, "real"),
    "isnan": (jnp.isnan, "special"), "isinf": (jnp.isinf, "special"), "isfinite": (jnp.isfinite, "special"),
    "isneginf": (jnp.isneginf, "special"), "isposinf": (jnp.isposinf, "special"),
    "logical_not": (jnp.logical_not, "bool"), "bitwise_not": (jnp.bitwise_not, "int"),
    "invert": (jnp.invert, "int"), "real": (jnp.real, "complex"), "imag": (jnp.imag, "complex"),
    "conj": (jnp.conj, "complex"), "conjugate": (jnp.conjugate, "complex"), "angle": (jnp.angle, "complex"),
    "isreal": (jnp.isreal, "complex"), "iscomplex": (jnp.iscomplex, "complex"), "sinc": (jnp.sinc, "real"),
    "i0": (jnp.i0, "real"), "erf": (jss.erf, "real"), "erfc": (jss.erfc, "real"),
}  # fmt: skip

# name -> (positional reference, kind of x1, kind of x2)
BINARY = {
    "add": (jnp.add, "real", "real"), "subtract": (jnp.subtract, "real", "real"),
    "multiply": (jnp.multiply, "real", "real"), "divide": (jnp.divide, "real", "pos"),
    "true_divide": (jnp.true_divide, "real", "pos"), "floor_divide": (jnp.floor_divide, "real", "pos"),
    "power": (jnp.power, "pos", "real"), "float_power": (jnp.float_power, "pos", "real"),
    "mod": (jnp.mod, "real", "pos"), "remainder": (jnp.remainder, "real", "pos"),
    "fmod": (jnp.fmod, "real", "pos"), "maximum": (jnp.maximum, "real", "real"),
    "minimum": (jnp.minimum, "real", "real"), "fmax": (jnp.fmax, "special", "real"),
    "fmin": (jnp.fmin, "special", "real"), "arctan2": (jnp.arctan2, "real", "real"),
    "hypot": (jnp.hypot, "real", "real"), "copysign": (jnp.copysign, "real", "real"),
    "nextafter": (jnp.nextafter, "real", "real"), "logaddexp": (jnp.logaddexp, "real", "real"),
    "logaddexp2": (jnp.logaddexp2, "real", "real"), "logical_and": (jnp.logical_and, "bool", "bool"),
    "logical_or": (jnp.logical_or, "bool", "bool"), "logical_xor": (jnp.logical_xor, "bool", "bool"),
    "bitwise_and": (jnp.bitwise_and, "int", "int"), "bitwise_or": (jnp.bitwise_or, "int", "int"),
    "bitwise_xor": (jnp.bitwise_xor, "int", "int"), "left_shift": (jnp.left_shift, "int", "shift"),
    "right_shift": (jnp.right_shift, "int", "shift"), "equal": (jnp.equal, "int", "int"),
    "not_equal": (jnp.not_equal, "int", "int"), "less": (jnp.less, "real", "real"),
    "less_equal": (jnp.less_equal, "int", "int"), "greater": (jnp.greater, "real", "real"),
    "greater_equal": (jnp.greater_equal, "int", "int"), "heaviside": (jnp.heaviside, "real", "real"),
    "ldexp": (jnp.ldexp, "real", "shift"),
}  # fmt: skip


# numpy references for the property tests: values only (their dtypes follow numpy's rules; the
# expected dtype comes from jax.eval_shape of the jax reference), and no compile per shape.
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
NP_UNARY = {name: getattr(np, name) for name in UNARY if hasattr(np, name)}
NP_UNARY.update(rsqrt=lambda a: 1 / np.sqrt(a), erf=_erf, erfc=_erfc)
NP_BINARY = {name: getattr(np, name) for name in BINARY}


def reference(np_fn, jnp_fn, *args):
    """numpy values of ``np_fn(*args)`` with the dtype jax.numpy gives ``jnp_fn(*args)``."""
    dtype = jax.eval_shape(jnp_fn, *args).dtype
    with np.errstate(all="ignore"):
        return np.asarray(np_fn(*args)).astype(dtype)


def lay_out(arr, names, order):
    """A positional array over ``names`` transposed and reshaped (size 1 where missing) to ``order``."""
    present = [n for n in order if n in names]
    arr = np.transpose(arr, [list(names).index(n) for n in present])
    return arr.reshape([SIZES[n] if n in names else 1 for n in order])


def check(result, ref, order):
    """``result`` has exactly the axes ``order`` (in that order), ``ref``'s dtype and its values."""
    ref = np.asarray(ref)
    assert isinstance(result, nx.NamedArray), type(result)
    assert tuple(a.name for a in result.axes) == tuple(order), (result.axes, order)
    assert result.dtype == ref.dtype, (result.dtype, ref.dtype)
    got = to_numpy(result)
    if np.issubdtype(ref.dtype, np.inexact):
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, ref)


def named(arr, names):
    return nx.named(jnp.asarray(arr), tuple(names))


def test_tables_cover_the_module():
    # Guards the reference tables above against drifting from the public surface.
    for name in list(UNARY) + list(BINARY):
        assert callable(getattr(nx, name)), name
        assert getattr(nx, name).__doc__, name
    assert set(NP_UNARY) == set(UNARY)


# ---------------------------------------------------------------------------------------------
# Unary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_jnp(name, rng):
    ref, kind = UNARY[name]
    arr = make(kind, (2, 3), rng)
    check(getattr(nx, name)(named(arr, ("a", "b"))), reference(NP_UNARY[name], ref, arr), ("a", "b"))


@pytest.mark.parametrize("name", ["exp", "sqrt", "negative", "isnan", "sign"])
def test_unary_scalar_gives_0d(name):
    ref, _ = UNARY[name]
    check(getattr(nx, name)(2.0), ref(2.0), ())
    check(getattr(nx, name)(jnp.float32(2.0)), ref(jnp.float32(2.0)), ())


@pytest.mark.parametrize("name", ["exp", "abs", "round", "nan_to_num", "isnan"])
def test_unary_refuses_plain_arrays(name):
    with pytest.raises(TypeError, match=rf"{name}: cannot combine a NamedArray with a plain array of shape \(3,\)"):
        getattr(nx, name)(jnp.ones(3))
    with pytest.raises(TypeError, match=f"{name}: unsupported operand of type str"):
        getattr(nx, name)("x")


@settings(max_examples=200)
@given(
    name=st.sampled_from(sorted(UNARY)),
    names=st.lists(st.sampled_from(NAMES), unique=True, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_unary_property(name, names, seed):
    ref, kind = UNARY[name]
    arr = make(kind, tuple(SIZES[n] for n in names), np.random.default_rng(seed))
    check(getattr(nx, name)(named(arr, names)), reference(NP_UNARY[name], ref, arr), names)


def test_round_and_nan_to_num_options(rng):
    arr = rng.normal(size=(2, 3)).astype(np.float32) * 100
    x = named(arr, ("a", "b"))
    check(nx.round(x, -1), jnp.round(arr, -1), ("a", "b"))
    check(nx.round(x, decimals=2), jnp.round(arr, 2), ("a", "b"))
    check(x.round(1), jnp.round(arr, 1), ("a", "b"))
    sp = make("special", (3, 2), rng)
    y = named(sp, ("b", "a"))
    check(nx.nan_to_num(y), jnp.nan_to_num(sp), ("b", "a"))
    check(nx.nan_to_num(y, nan=-1.0, posinf=7.0, neginf=-7.0), jnp.nan_to_num(sp, nan=-1.0, posinf=7.0, neginf=-7.0),
          ("b", "a"))  # fmt: skip


def test_conj_method(rng):
    arr = make("complex", (2, 3), rng)
    check(named(arr, ("a", "b")).conj(), jnp.conj(arr), ("a", "b"))


# ---------------------------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_jnp(name, rng):
    ref, k1, k2 = BINARY[name]
    fn = getattr(nx, name)
    a1, a2 = make(k1, (2, 3), rng), make(k2, (4, 3), rng)
    x1, x2 = named(a1, ("a", "b")), named(a2, ("c", "b"))
    # x2 has an axis x1 lacks (outer result) and holds the shared axis in another order (so it is
    # transposed): the result is laid out (a, b, c).
    np_ref = NP_BINARY[name]
    expected = reference(np_ref, ref, a1[:, :, None], a2.T[None, :, :])
    check(fn(x1, x2), expected, ("a", "b", "c"))
    # Scalars on either side, with jax.numpy's (weak-type) promotion.
    s1, s2 = SCALAR[k1], SCALAR[k2]
    check(fn(x1, s2), reference(np_ref, ref, a1, s2), ("a", "b"))
    check(fn(s1, x2), reference(np_ref, ref, s1, a2), ("c", "b"))


@pytest.mark.parametrize("name", ["add", "power", "left_shift", "logical_xor", "less"])
def test_binary_scalars_only(name):
    ref, k1, k2 = BINARY[name]
    s1, s2 = SCALAR[k1], SCALAR[k2]
    check(getattr(nx, name)(s1, s2), reference(NP_BINARY[name], ref, s1, s2), ())


@pytest.mark.parametrize(
    "d1, d2", [(jnp.int32, jnp.float32), (jnp.bool_, jnp.int32), (jnp.float16, jnp.float32), (jnp.int8, jnp.int32)]
)
def test_binary_dtype_promotion(d1, d2):
    x = nx.named(jnp.ones((2, 3), d1), ("a", "b"))
    y = nx.named(jnp.ones((3,), d2), ("b",))
    check(nx.add(x, y), jnp.add(jnp.ones((2, 3), d1), jnp.ones((3,), d2)), ("a", "b"))
    check(nx.multiply(y, 2), jnp.multiply(jnp.ones((3,), d2), 2), ("b",))
    check(nx.multiply(y, 2.5), jnp.multiply(jnp.ones((3,), d2), 2.5), ("b",))


@st.composite
def binary_case(draw):
    name = draw(st.sampled_from(sorted(BINARY)))
    n1 = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    n2 = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    scalar = draw(st.sampled_from([None, None, None, "left", "right"]))
    return name, n1, n2, scalar, draw(st.integers(0, 2**16))


@settings(max_examples=200)
@given(binary_case())
def test_binary_property(case):
    name, n1, n2, scalar, seed = case
    ref, k1, k2 = BINARY[name]
    rng = np.random.default_rng(seed)
    a1 = make(k1, tuple(SIZES[n] for n in n1), rng)
    a2 = make(k2, tuple(SIZES[n] for n in n2), rng)
    fn = getattr(nx, name)
    np_ref = NP_BINARY[name]
    if scalar == "left":
        check(fn(SCALAR[k1], named(a2, n2)), reference(np_ref, ref, SCALAR[k1], a2), n2)
    elif scalar == "right":
        check(fn(named(a1, n1), SCALAR[k2]), reference(np_ref, ref, a1, SCALAR[k2]), n1)
    else:
        order = list(n1) + [n for n in n2 if n not in n1]
        expected = reference(np_ref, ref, lay_out(a1, n1, order), lay_out(a2, n2, order))
        check(fn(named(a1, n1), named(a2, n2)), expected, order)


def test_binary_operators_agree_with_functions(rng):
    x = named(rng.normal(size=(2, 3)).astype(np.float32), ("a", "b"))
    y = named(rng.uniform(0.5, 2, size=(3, 1)).astype(np.float32), ("b", "c"))
    for op, fn in [("__add__", nx.add), ("__sub__", nx.subtract), ("__mul__", nx.multiply),
                   ("__truediv__", nx.divide), ("__lt__", nx.less)]:  # fmt: skip
        got, want = getattr(x, op)(y), fn(x, y)
        assert got.axes == want.axes
        np.testing.assert_array_equal(np.asarray(got.array), np.asarray(want.array))


def test_binary_size_conflict_names_axis_and_sizes():
    x, y = nx.zeros({"a": 2, "b": 3}), nx.zeros({"b": 4})
    with pytest.raises(ValueError, match=r"add: axis 'b' has size 3 in one operand and 4 in another"):
        nx.add(x, y)
    with pytest.raises(ValueError, match=r"arctan2: axis 'b' has size 4 in one operand and 3"):
        nx.arctan2(y, x)


def test_binary_refuses_plain_arrays_and_other_types():
    x = nx.zeros({"a": 3})
    with pytest.raises(TypeError, match=r"multiply: cannot combine a NamedArray with a plain array of shape \(3,\)"):
        nx.multiply(x, jnp.ones(3))
    with pytest.raises(TypeError, match=r"subtract: cannot combine a NamedArray with a plain array of shape \(3,\)"):
        nx.subtract(np.ones(3), x)
    with pytest.raises(TypeError, match=r"add: unsupported operand of type str"):
        nx.add(x, "1")
    # 0-d arrays are scalars and broadcast.
    check(nx.add(x, jnp.float32(2.0)), jnp.zeros(3) + 2.0, ("a",))


# ---------------------------------------------------------------------------------------------
# where, clip, isclose, allclose
# ---------------------------------------------------------------------------------------------


def test_where_three_way_broadcast(rng):
    c = rng.random((3, 2)) > 0.5
    xa = rng.normal(size=(2,)).astype(np.float32)
    ya = rng.normal(size=(1, 3)).astype(np.float32)
    got = nx.where(named(c, ("b", "a")), named(xa, ("a",)), named(ya, ("c", "b")))
    order = ("b", "a", "c")
    expected = jnp.where(c[:, :, None], xa[None, :, None], ya.T[:, None, :])
    check(got, expected, order)
    check(nx.where(named(c, ("b", "a")), 1.0, named(xa, ("a",))), jnp.where(c, 1.0, xa[None, :]), ("b", "a"))
    check(nx.where(True, named(xa, ("a",)), 0), jnp.where(True, xa, 0), ("a",))


def test_where_errors():
    c = nx.named(jnp.array([True, False]), "a")
    with pytest.raises(TypeError, match="one-argument form where\\(condition\\) is not supported"):
        nx.where(c)
    with pytest.raises(TypeError, match="where: pass both x and y"):
        nx.where(c, 1.0)
    with pytest.raises(ValueError, match="where: axis 'a' has size 2 in one operand and 3"):
        nx.where(c, nx.zeros({"a": 3}), 0.0)
    with pytest.raises(TypeError, match="where: cannot combine a NamedArray with a plain array"):
        nx.where(c, jnp.ones(2), 0.0)


def test_clip(rng):
    arr = rng.normal(size=(2, 3)).astype(np.float32)
    lo = rng.uniform(-1, 0, size=(3,)).astype(np.float32)
    hi = rng.uniform(0, 1, size=(1, 3)).astype(np.float32)
    x = named(arr, ("a", "b"))
    check(nx.clip(x, -0.5, 0.5), jnp.clip(arr, -0.5, 0.5), ("a", "b"))
    check(nx.clip(x, a_min=-0.5), jnp.clip(arr, min=-0.5), ("a", "b"))
    check(nx.clip(x, a_max=0.5), jnp.clip(arr, max=0.5), ("a", "b"))
    check(x.clip(0.0, 0.1), jnp.clip(arr, 0.0, 0.1), ("a", "b"))
    check(
        nx.clip(x, named(lo, ("b",)), named(hi, ("c", "b"))),
        jnp.clip(arr[:, :, None], lo[None, :, None], hi.T[None]),
        ("a", "b", "c"),
    )
    assert nx.clip(x) is x
    with pytest.raises(ValueError, match="clip: axis 'b' has size 3 in one operand and 2"):
        nx.clip(x, nx.zeros({"b": 2}), 1.0)
    with pytest.raises(TypeError, match="clip: cannot combine"):
        nx.clip(x, jnp.zeros(3))


def test_isclose_and_allclose(rng):
    arr = rng.normal(size=(2, 3)).astype(np.float32)
    noise = rng.normal(size=(2, 3)).astype(np.float32) * 1e-3
    other = (arr + noise).T  # laid out (b, a)
    other[0, 0] = np.nan
    arr2 = arr.copy()
    arr2[0, 0] = np.nan
    x, y = named(arr2, ("a", "b")), named(other, ("b", "a"))
    for kw in [{}, {"atol": 2e-3}, {"rtol": 0.5, "atol": 0.0}, {"equal_nan": True, "atol": 1e-2}]:
        check(nx.isclose(x, y, **kw), jnp.isclose(arr2, other.T, **kw), ("a", "b"))
        got = nx.allclose(x, y, **kw)
        assert isinstance(got, jax.Array) and got.shape == () and got.dtype == jnp.bool_
        assert bool(got) == bool(jnp.allclose(arr2, other.T, **kw))
    # tolerances as NamedArrays, broadcast by name
    tol = rng.uniform(0, 2e-3, size=(3,)).astype(np.float32)
    check(nx.isclose(x, y, 0.0, named(tol, ("b",))), jnp.isclose(arr2, other.T, 0.0, tol[None, :]), ("a", "b"))
    assert bool(nx.allclose(x, y.rearrange(("a", "b")), atol=1e-2, equal_nan=True))
    with pytest.raises(ValueError, match="isclose: axis 'a' has size 2 in one operand and 5"):
        nx.isclose(x, nx.zeros({"a": 5}))


# ---------------------------------------------------------------------------------------------
# Transformations
# ---------------------------------------------------------------------------------------------


def test_jaxpr_equals_positional_same_order():
    a, b = jnp.ones((2, 3)), jnp.ones((2, 3))

    def named_fn(a, b):
        return nx.add(nx.named(a, ("x", "y")), nx.named(b, ("x", "y"))).array

    assert str(jax.make_jaxpr(named_fn)(a, b)) == str(jax.make_jaxpr(jnp.add)(a, b))

    def named_exp(a):
        return nx.exp(nx.named(a, ("x", "y"))).array

    assert str(jax.make_jaxpr(named_exp)(a)) == str(jax.make_jaxpr(jnp.exp)(a))


def test_jaxpr_equals_positional_transposed():
    a, b = jnp.ones((2, 3)), jnp.ones((3, 2))

    def named_fn(a, b):
        return nx.multiply(nx.named(a, ("x", "y")), nx.named(b, ("y", "x"))).array

    def positional(a, b):
        return jnp.multiply(a, jnp.transpose(b))

    assert str(jax.make_jaxpr(named_fn)(a, b)) == str(jax.make_jaxpr(positional)(a, b))

    def named_outer(a, c):
        return nx.add(nx.named(a, ("x", "y")), nx.named(c, ("z",))).array

    def positional_outer(a, c):
        return jnp.add(jnp.expand_dims(a, 2), c)

    c = jnp.ones(4)
    assert str(jax.make_jaxpr(named_outer)(a, c)) == str(jax.make_jaxpr(positional_outer)(a, c))


def test_jit_grad_vmap(rng):
    arr = rng.normal(size=(2, 3)).astype(np.float32)
    brr = rng.normal(size=(3,)).astype(np.float32)
    x, y = named(arr, ("a", "b")), named(brr, ("b",))

    out = jax.jit(lambda x, y: nx.maximum(y, nx.exp(x)))(x, y)
    check(out, jnp.maximum(brr[:, None], jnp.exp(arr).T), ("b", "a"))

    g = jax.grad(lambda x: nx.sum(nx.exp(x) * 2.0).array)(x)
    check(g, 2.0 * jnp.exp(arr), ("a", "b"))

    gy = jax.grad(lambda y: nx.sum(nx.multiply(x, y)).array)(y)
    check(gy, arr.sum(0), ("b",))

    batched = rng.normal(size=(4, 2, 3)).astype(np.float32)
    vm = jax.vmap(lambda a: nx.add(nx.named(a, ("a", "b")), y).array)(jnp.asarray(batched))
    np.testing.assert_allclose(np.asarray(vm), batched + brr, rtol=1e-6)
