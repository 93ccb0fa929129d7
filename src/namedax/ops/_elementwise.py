"""Elementwise operations: jax.numpy's ufuncs on NamedArrays, operands matched by axis name.

Two factories generate the surface from the tables below, docstrings included:

- `_unary` functions keep the axes of their operand and call the jax function directly on
  ``x.array`` (`namedax.core._named_array.unary`, shared with the operators and the activations):
  one op is one dispatch already, so there is nothing to cache, and under tracing the jaxpr is
  that of the positional call.
- `_binary` functions go through `broadcast_apply`, which plans the alignment once per signature
  (the axes of both operands) and runs it as one jitted kernel eagerly, or as the plain positional
  code under tracing. The result's axes are the first operand's, then the new ones of the second;
  an axis in both with two sizes is an error, and so is a plain array of nonzero rank (namedax
  never matches dimensions by position). Scalars broadcast, with jax.numpy's dtype promotion.

`where`, `clip`, `isclose`, `allclose`, `round` and `nan_to_num` take extra arguments and are
written out.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> t = nx.named(jnp.array([0.0, 1.0]), "time")
    >>> f = nx.named(jnp.array([1.0, 2.0, 3.0]), "freq")
    >>> nx.multiply(f, t).axes
    (Axis('freq', 3), Axis('time', 2))
    >>> nx.sin(f * t).axes
    (Axis('freq', 3), Axis('time', 2))
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from ..core._named_array import NamedArray, _new, as_named, broadcast_apply, power_apply, unary

# ---------------------------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------------------------

_UNARY_DOC = """`{src}.{name}` elementwise; the axes of ``x`` are kept.

Args:
    x: a `NamedArray`, or a scalar (which gives a 0-d `NamedArray`).

Returns:
    A `NamedArray` with the axes of ``x``: ``{src}.{name}(x.array)``.

Raises:
    TypeError: ``x`` is a plain array of nonzero rank (name its axes with `named`).

Examples:
    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.array({example_in}), "x")
    >>> nx.{name}(x).array.tolist()
    {example_out}
"""

_BINARY_DOC = """`{src}.{name}` elementwise, broadcasting by axis name.

The result's axes are those of ``x1``, then those of ``x2`` that ``x1`` lacks (operands over
disjoint axes give the outer result). Either operand may be a scalar; dtypes promote as in
jax.numpy.

Args:
    x1: a `NamedArray` or a scalar.
    x2: a `NamedArray` or a scalar.

Returns:
    A `NamedArray` over the union of the operands' axes.

Raises:
    ValueError: an axis has different sizes in ``x1`` and ``x2``.
    TypeError: an operand is a plain array of nonzero rank (name its axes with `named`).

Examples:
    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x1 = nx.named(jnp.array({in1}), "a")
    >>> x2 = nx.named(jnp.array({in2}), "b")
    >>> y = nx.{name}(x1, x2)
    >>> y.axes
    (Axis('a', 2), Axis('b', 2))
    >>> y.array.tolist()
    {example_out}
"""


def _unary(name: str, fn: Callable, example_in: str, example_out: str, src: str = "jax.numpy") -> Callable:
    op = unary(name, fn)
    op.__doc__ = _UNARY_DOC.format(src=src, name=name, example_in=example_in, example_out=example_out)
    return op


def _binary(name: str, fn: Callable, example_in: tuple[str, str], example_out: str) -> Callable:
    apply = power_apply if fn is jnp.power else broadcast_apply  # integer exponents, as jnp.power

    def op(x1: NamedArray | Any, x2: NamedArray | Any, /) -> NamedArray:
        return apply(name, fn, (x1, x2))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = _BINARY_DOC.format(
        src="jax.numpy", name=name, in1=example_in[0], in2=example_in[1], example_out=example_out
    )
    return op


# ---------------------------------------------------------------------------------------------
# Unary: name, jax function, example input, its output (from jax.numpy, rounded)
# ---------------------------------------------------------------------------------------------

_POS = "[0.5, 1.0, 2.0]"
_SGN = "[-1.5, 0.4, 2.5]"
_UNIT = "[-0.5, 0.0, 0.5]"
_DEG = "[0.0, 90.0, 180.0]"
_NAN = "[1.0, jnp.nan, -jnp.inf]"
_CPLX = "[1 + 2j, 3 - 1j]"
_INT = "[0, 1, 2]"

abs = _unary("abs", jnp.abs, _SGN, "[1.5, 0.4, 2.5]")
absolute = _unary("absolute", jnp.absolute, _SGN, "[1.5, 0.4, 2.5]")
fabs = _unary("fabs", jnp.fabs, _SGN, "[1.5, 0.4, 2.5]")
negative = _unary("negative", jnp.negative, _SGN, "[1.5, -0.4, -2.5]")
positive = _unary("positive", jnp.positive, _SGN, "[-1.5, 0.4, 2.5]")
sign = _unary("sign", jnp.sign, _SGN, "[-1.0, 1.0, 1.0]")
signbit = _unary("signbit", jnp.signbit, _SGN, "[True, False, False]")
floor = _unary("floor", jnp.floor, _SGN, "[-2.0, 0.0, 2.0]")
ceil = _unary("ceil", jnp.ceil, _SGN, "[-1.0, 1.0, 3.0]")
rint = _unary("rint", jnp.rint, _SGN, "[-2.0, 0.0, 2.0]")
trunc = _unary("trunc", jnp.trunc, _SGN, "[-1.0, 0.0, 2.0]")
exp = _unary("exp", jnp.exp, _POS, "[1.6487, 2.7183, 7.3891]")
exp2 = _unary("exp2", jnp.exp2, _POS, "[1.4142, 2.0, 4.0]")
expm1 = _unary("expm1", jnp.expm1, _POS, "[0.6487, 1.7183, 6.3891]")
log = _unary("log", jnp.log, _POS, "[-0.6931, 0.0, 0.6931]")
log1p = _unary("log1p", jnp.log1p, _POS, "[0.4055, 0.6931, 1.0986]")
log2 = _unary("log2", jnp.log2, _POS, "[-1.0, 0.0, 1.0]")
log10 = _unary("log10", jnp.log10, _POS, "[-0.301, 0.0, 0.301]")
sqrt = _unary("sqrt", jnp.sqrt, _POS, "[0.7071, 1.0, 1.4142]")
rsqrt = _unary("rsqrt", jax.lax.rsqrt, _POS, "[1.4142, 1.0, 0.7071]", src="jax.lax")
cbrt = _unary("cbrt", jnp.cbrt, _POS, "[0.7937, 1.0, 1.2599]")
square = _unary("square", jnp.square, _POS, "[0.25, 1.0, 4.0]")
reciprocal = _unary("reciprocal", jnp.reciprocal, _POS, "[2.0, 1.0, 0.5]")
sin = _unary("sin", jnp.sin, _POS, "[0.4794, 0.8415, 0.9093]")
cos = _unary("cos", jnp.cos, _POS, "[0.8776, 0.5403, -0.4161]")
tan = _unary("tan", jnp.tan, _POS, "[0.5463, 1.5574, -2.185]")
arcsin = _unary("arcsin", jnp.arcsin, _UNIT, "[-0.5236, 0.0, 0.5236]")
arccos = _unary("arccos", jnp.arccos, _UNIT, "[2.0944, 1.5708, 1.0472]")
arctan = _unary("arctan", jnp.arctan, _POS, "[0.4636, 0.7854, 1.1071]")
sinh = _unary("sinh", jnp.sinh, _POS, "[0.5211, 1.1752, 3.6269]")
cosh = _unary("cosh", jnp.cosh, _POS, "[1.1276, 1.5431, 3.7622]")
tanh = _unary("tanh", jnp.tanh, _POS, "[0.4621, 0.7616, 0.964]")
arcsinh = _unary("arcsinh", jnp.arcsinh, _POS, "[0.4812, 0.8814, 1.4436]")
arccosh = _unary("arccosh", jnp.arccosh, "[1.0, 1.5, 2.0]", "[0.0, 0.9624, 1.317]")
arctanh = _unary("arctanh", jnp.arctanh, _UNIT, "[-0.5493, 0.0, 0.5493]")
deg2rad = _unary("deg2rad", jnp.deg2rad, _DEG, "[0.0, 1.5708, 3.1416]")
radians = _unary("radians", jnp.radians, _DEG, "[0.0, 1.5708, 3.1416]")
rad2deg = _unary("rad2deg", jnp.rad2deg, _POS, "[28.6479, 57.2958, 114.5916]")
degrees = _unary("degrees", jnp.degrees, _POS, "[28.6479, 57.2958, 114.5916]")
isnan = _unary("isnan", jnp.isnan, _NAN, "[False, True, False]")
isinf = _unary("isinf", jnp.isinf, _NAN, "[False, False, True]")
isfinite = _unary("isfinite", jnp.isfinite, _NAN, "[True, False, False]")
isneginf = _unary("isneginf", jnp.isneginf, _NAN, "[False, False, True]")
isposinf = _unary("isposinf", jnp.isposinf, _NAN, "[False, False, False]")
logical_not = _unary("logical_not", jnp.logical_not, "[True, False, True]", "[False, True, False]")
bitwise_not = _unary("bitwise_not", jnp.bitwise_not, _INT, "[-1, -2, -3]")
invert = _unary("invert", jnp.invert, _INT, "[-1, -2, -3]")
real = _unary("real", jnp.real, _CPLX, "[1.0, 3.0]")
imag = _unary("imag", jnp.imag, _CPLX, "[2.0, -1.0]")
conj = _unary("conj", jnp.conj, _CPLX, "[(1-2j), (3+1j)]")
conjugate = _unary("conjugate", jnp.conjugate, _CPLX, "[(1-2j), (3+1j)]")
angle = _unary("angle", jnp.angle, _CPLX, "[1.1071, -0.3218]")
isreal = _unary("isreal", jnp.isreal, "[1 + 2j, 3 + 0j]", "[False, True]")
iscomplex = _unary("iscomplex", jnp.iscomplex, "[1 + 2j, 3 + 0j]", "[True, False]")
sinc = _unary("sinc", jnp.sinc, "[0.25, 0.5, 1.5]", "[0.9003, 0.6366, -0.2122]")
i0 = _unary("i0", jnp.i0, _POS, "[1.0635, 1.2661, 2.2796]")
erf = _unary("erf", jss.erf, _UNIT, "[-0.5205, 0.0, 0.5205]", src="jax.scipy.special")
erfc = _unary("erfc", jss.erfc, _UNIT, "[1.5205, 1.0, 0.4795]", src="jax.scipy.special")

# ---------------------------------------------------------------------------------------------
# Binary: name, jax function, example inputs (over axes "a" and "b"), the outer result
# ---------------------------------------------------------------------------------------------

_F = ("[1.0, 2.0]", "[0.5, 3.0]")
_MOD = ("[5.0, -5.0]", "[3.0, -3.0]")
_CMP = ("[1.0, 3.0]", "[2.0, 3.0]")
_BITS = ("[6, 12]", "[1, 3]")
_BOOL = ("[True, False]", "[True, False]")

add = _binary("add", jnp.add, _F, "[[1.5, 4.0], [2.5, 5.0]]")
subtract = _binary("subtract", jnp.subtract, _F, "[[0.5, -2.0], [1.5, -1.0]]")
multiply = _binary("multiply", jnp.multiply, _F, "[[0.5, 3.0], [1.0, 6.0]]")
divide = _binary("divide", jnp.divide, _F, "[[2.0, 0.3333], [4.0, 0.6667]]")
true_divide = _binary("true_divide", jnp.true_divide, _F, "[[2.0, 0.3333], [4.0, 0.6667]]")
floor_divide = _binary("floor_divide", jnp.floor_divide, _F, "[[2.0, 0.0], [4.0, 0.0]]")
power = _binary("power", jnp.power, _F, "[[1.0, 1.0], [1.4142, 8.0]]")
float_power = _binary("float_power", jnp.float_power, _F, "[[1.0, 1.0], [1.4142, 8.0]]")
mod = _binary("mod", jnp.mod, _MOD, "[[2.0, -1.0], [1.0, -2.0]]")
remainder = _binary("remainder", jnp.remainder, _MOD, "[[2.0, -1.0], [1.0, -2.0]]")
fmod = _binary("fmod", jnp.fmod, _MOD, "[[2.0, 2.0], [-2.0, -2.0]]")
maximum = _binary("maximum", jnp.maximum, _F, "[[1.0, 3.0], [2.0, 3.0]]")
minimum = _binary("minimum", jnp.minimum, _F, "[[0.5, 1.0], [0.5, 2.0]]")
fmax = _binary("fmax", jnp.fmax, ("[1.0, jnp.nan]", "[0.5, 3.0]"), "[[1.0, 3.0], [0.5, 3.0]]")
fmin = _binary("fmin", jnp.fmin, ("[1.0, jnp.nan]", "[0.5, 3.0]"), "[[0.5, 1.0], [0.5, 3.0]]")
arctan2 = _binary("arctan2", jnp.arctan2, _F, "[[1.1071, 0.3218], [1.3258, 0.588]]")
hypot = _binary("hypot", jnp.hypot, ("[3.0, 5.0]", "[4.0, 12.0]"), "[[5.0, 12.3693], [6.4031, 13.0]]")
copysign = _binary("copysign", jnp.copysign, ("[1.0, 2.0]", "[-1.0, 3.0]"), "[[-1.0, 1.0], [-2.0, 2.0]]")
nextafter = _binary(
    "nextafter", jnp.nextafter, ("[1.0, 2.0]", "[0.0, 3.0]"), "[[0.99999994, 1.00000012], [1.99999988, 2.00000024]]"
)
logaddexp = _binary("logaddexp", jnp.logaddexp, _F, "[[1.4741, 3.1269], [2.2014, 3.3133]]")
logaddexp2 = _binary("logaddexp2", jnp.logaddexp2, _F, "[[1.7716, 3.3219], [2.4368, 3.585]]")
logical_and = _binary("logical_and", jnp.logical_and, _BOOL, "[[True, False], [False, False]]")
logical_or = _binary("logical_or", jnp.logical_or, _BOOL, "[[True, True], [True, False]]")
logical_xor = _binary("logical_xor", jnp.logical_xor, _BOOL, "[[False, True], [True, False]]")
bitwise_and = _binary("bitwise_and", jnp.bitwise_and, _BITS, "[[0, 2], [0, 0]]")
bitwise_or = _binary("bitwise_or", jnp.bitwise_or, _BITS, "[[7, 7], [13, 15]]")
bitwise_xor = _binary("bitwise_xor", jnp.bitwise_xor, _BITS, "[[7, 5], [13, 15]]")
left_shift = _binary("left_shift", jnp.left_shift, _BITS, "[[12, 48], [24, 96]]")
right_shift = _binary("right_shift", jnp.right_shift, _BITS, "[[3, 0], [6, 1]]")
equal = _binary("equal", jnp.equal, _CMP, "[[False, False], [False, True]]")
not_equal = _binary("not_equal", jnp.not_equal, _CMP, "[[True, True], [True, False]]")
less = _binary("less", jnp.less, _CMP, "[[True, True], [False, False]]")
less_equal = _binary("less_equal", jnp.less_equal, _CMP, "[[True, True], [False, True]]")
greater = _binary("greater", jnp.greater, _CMP, "[[False, False], [True, False]]")
greater_equal = _binary("greater_equal", jnp.greater_equal, _CMP, "[[False, False], [True, True]]")
heaviside = _binary("heaviside", jnp.heaviside, ("[-1.0, 0.0]", "[0.5, 1.0]"), "[[0.0, 0.0], [0.5, 1.0]]")
ldexp = _binary("ldexp", jnp.ldexp, ("[1.0, 1.5]", "[1, 3]"), "[[2.0, 8.0], [3.0, 12.0]]")

# ---------------------------------------------------------------------------------------------
# With extra arguments
# ---------------------------------------------------------------------------------------------


def round(x: NamedArray, decimals: int = 0) -> NamedArray:
    """`jax.numpy.round` elementwise (to ``decimals`` places, halves to even); axes are kept.

    Args:
        x: a `NamedArray`, or a scalar (which gives a 0-d `NamedArray`).
        decimals: the number of decimal places; negative rounds to tens, hundreds, ...

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.234, 5.678]), "x")
        >>> nx.round(x, 1).array.tolist()
        [1.2, 5.7]
        >>> x.round().array.tolist()
        [1.0, 6.0]
    """
    if type(x) is not NamedArray:
        x = as_named(x, "round")
    return _new(jnp.round(x.array, decimals), x.axes)


def nan_to_num(x: NamedArray, *, nan: Any = 0.0, posinf: Any = None, neginf: Any = None) -> NamedArray:
    """`jax.numpy.nan_to_num` elementwise: NaN and infinities replaced by finite numbers.

    Args:
        x: a `NamedArray`, or a scalar (which gives a 0-d `NamedArray`).
        nan: the value for NaN.
        posinf: the value for +inf (default: the largest finite value of the dtype).
        neginf: the value for -inf (default: the most negative finite value of the dtype).

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, jnp.nan, -jnp.inf]), "x")
        >>> nx.nan_to_num(x, nan=-1.0, neginf=-9.0).array.tolist()
        [1.0, -1.0, -9.0]
    """
    if type(x) is not NamedArray:
        x = as_named(x, "nan_to_num")
    return _new(jnp.nan_to_num(x.array, nan=nan, posinf=posinf, neginf=neginf), x.axes)


def where(condition: NamedArray | Any, x: NamedArray | Any = None, y: NamedArray | Any = None) -> NamedArray:
    """Elements of ``x`` where ``condition`` holds, of ``y`` elsewhere, broadcasting all three by name.

    The result's axes are those of ``condition``, then the new ones of ``x``, then of ``y``. Any of
    the three may be a scalar.

    The one-argument form ``where(condition)`` (the indices where ``condition`` holds, as
    `jax.numpy.where` gives) is not offered: its size depends on the data, which no named axis can
    describe. Use ``jnp.nonzero(condition.array, size=n)`` with a static ``n`` and name the result.

    Args:
        condition: a boolean `NamedArray` or scalar.
        x: the values where ``condition`` is true.
        y: the values where ``condition`` is false.

    Returns:
        A `NamedArray` over the union of the three operands' axes.

    Raises:
        TypeError: ``x`` or ``y`` is missing, or an operand is a plain array of nonzero rank.
        ValueError: an axis has different sizes in two operands.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> c = nx.named(jnp.array([True, False]), "row")
        >>> x = nx.named(jnp.array([1.0, 2.0]), "col")
        >>> y = nx.where(c, x, 0.0)
        >>> y.axes
        (Axis('row', 2), Axis('col', 2))
        >>> y.array.tolist()
        [[1.0, 2.0], [0.0, 0.0]]
    """
    if x is None and y is None:
        raise TypeError(
            "where: the one-argument form where(condition) is not supported: the number of indices "
            "depends on the data, so no named axis can hold them. Pass both x and y, or use "
            "jnp.nonzero(condition.array, size=n) with a static n and name the result"
        )
    if x is None or y is None:
        raise TypeError("where: pass both x and y (the values where condition is true and where it is false)")
    return broadcast_apply("where", jnp.where, (condition, x, y))


_PY_NUMBERS = (int, float)


def _clip_both(a, lo, hi):
    return jnp.clip(a, lo, hi)


def _clip_lo(a, lo):
    return jnp.clip(a, lo)


def _clip_hi(a, hi):
    return jnp.clip(a, max=hi)


def clip(x: NamedArray, a_min: NamedArray | Any = None, a_max: NamedArray | Any = None) -> NamedArray:
    """`jax.numpy.clip`: limit ``x`` to ``[a_min, a_max]``, the bounds broadcast by name.

    A bound of None leaves that side open. The result's axes are those of ``x``, then any new ones of
    ``a_min``, then of ``a_max`` (bounds may vary along axes ``x`` lacks, as jax.numpy broadcasts).

    Args:
        x: a `NamedArray` or a scalar.
        a_min: the lower bound: a scalar, a `NamedArray`, or None.
        a_max: the upper bound: a scalar, a `NamedArray`, or None.

    Returns:
        A `NamedArray`; ``x`` itself when both bounds are None.

    Raises:
        ValueError: an axis has different sizes in ``x`` and a bound.
        TypeError: an operand is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([-1.0, 0.5, 2.0]), "x")
        >>> nx.clip(x, 0.0, 1.0).array.tolist()
        [0.0, 0.5, 1.0]
        >>> hi = nx.named(jnp.array([1.0, 3.0]), "h")
        >>> x.clip(a_max=hi).axes
        (Axis('x', 3), Axis('h', 2))
    """
    if a_min is None and a_max is None:
        return as_named(x, "clip")
    if a_max is None:
        return broadcast_apply("clip", _clip_lo, (x, a_min), static="min")  # static: which fn, for the plan key
    if a_min is None:
        return broadcast_apply("clip", _clip_hi, (x, a_max), static="max")
    return broadcast_apply("clip", _clip_both, (x, a_min, a_max), static="both")


def _lift(*xs):
    # jnp.isclose broadcasts a and b but not the tolerances: give every array the same rank.
    nd = max(jnp.ndim(x) for x in xs)
    return [x if jnp.ndim(x) in (0, nd) else jax.lax.expand_dims(x, range(nd - jnp.ndim(x))) for x in xs]


def _isclose(a, b, rtol, atol):
    a, b, rtol, atol = _lift(a, b, rtol, atol)
    return jnp.isclose(a, b, rtol, atol)


def _isclose_nan(a, b, rtol, atol):
    return jnp.isclose(*_lift(a, b, rtol, atol), equal_nan=True)


@functools.lru_cache(maxsize=256)
def _isclose_const(rtol: float, atol: float, equal_nan: bool) -> Callable:
    # Python-number tolerances are baked in: a jitted call with two fewer scalar arguments is
    # several microseconds faster, and tolerances are nearly always constants.
    def isclose(a, b):
        return jnp.isclose(a, b, rtol, atol, equal_nan=equal_nan)

    return isclose


def isclose(
    a: NamedArray | Any, b: NamedArray | Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False
) -> NamedArray:
    """`jax.numpy.isclose` elementwise: ``|a - b| <= atol + rtol * |b|``, broadcasting by name.

    Args:
        a: a `NamedArray` or a scalar.
        b: a `NamedArray` or a scalar.
        rtol: relative tolerance (a scalar, or a `NamedArray` broadcast by name).
        atol: absolute tolerance (a scalar, or a `NamedArray` broadcast by name).
        equal_nan: whether NaN counts as equal to NaN.

    Returns:
        A boolean `NamedArray` over the union of the axes of ``a``, ``b`` (and the tolerances).

    Raises:
        ValueError: an axis has different sizes in two operands.
        TypeError: an operand is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> a = nx.named(jnp.array([1.0, 1.1]), "x")
        >>> nx.isclose(a, 1.0).array.tolist()
        [True, False]
        >>> nx.isclose(a, 1.0, atol=0.2).array.tolist()
        [True, True]
    """
    equal_nan = bool(equal_nan)
    if type(rtol) in _PY_NUMBERS and type(atol) in _PY_NUMBERS:
        static = (rtol, atol, equal_nan)
        return broadcast_apply("isclose", _isclose_const(*static), (a, b), static=static)
    fn = _isclose_nan if equal_nan else _isclose
    return broadcast_apply("isclose", fn, (a, b, rtol, atol), static=equal_nan)


def allclose(
    a: NamedArray | Any, b: NamedArray | Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False
) -> jax.Array:
    """Whether `isclose` holds everywhere: a boolean jax scalar, as `jax.numpy.allclose` returns.

    The operands are broadcast by name, so the same values laid out in another axis order compare
    equal.

    Args:
        a: a `NamedArray` or a scalar.
        b: a `NamedArray` or a scalar.
        rtol: relative tolerance.
        atol: absolute tolerance.
        equal_nan: whether NaN counts as equal to NaN.

    Returns:
        A 0-d boolean jax array (``bool()`` of it is a Python bool).

    Raises:
        ValueError: an axis has different sizes in two operands.
        TypeError: an operand is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> a = nx.named(jnp.array([[1.0, 2.0, 3.0]]), ("x", "y"))
        >>> bool(nx.allclose(a, a.rearrange(("y", "x")) + 1e-9))
        True
    """
    return jnp.all(isclose(a, b, rtol, atol, equal_nan).array)

