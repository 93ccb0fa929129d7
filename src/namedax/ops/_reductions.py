"""Reductions and scans over named axes.

A reduction names the axes it removes: ``nx.sum(x, axis="embed")`` sums over ``embed`` wherever it
sits in ``x``, and the result keeps every other axis in its order. ``axis=None`` reduces everything
and gives a 0-d `NamedArray` (``float(nx.sum(x))`` works). Scans and sorts (`cumsum`, `sort`, ...)
work along one named axis and keep all axes.

Each call resolves to a plan, cached per signature: the axes of ``x``, the selection, the static
options (``dtype``, ``ddof``, ...) and the axes of a ``where`` mask. The plan holds the result's axes
and a kernel from `_kernels`: eagerly one jitted dispatch (cheaper than the raw jax.numpy call, which
dispatches several primitives), under tracing the plain positional function, so the jaxpr is exactly
that of ``jnp.sum(a, axis=positions)``. Errors are raised while planning, before any computation.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    >>> nx.sum(x, "embed").axes
    (Axis('batch', 2),)
    >>> nx.mean(x, ("embed", "batch")).item()
    2.5
    >>> x.max("batch").array.tolist()
    [3.0, 4.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from ..core import _kernels
from ..core._axis import Axis, AxisSelection, AxisSelector, to_selectors
from ..core._named_array import NamedArray, _new, aligner, as_named, axis_index_in

# How a function uses its axes: removes several | removes one (None: all, flat index) | works along one.
_MANY, _ONE, _ALONG = "many", "one", "along"


def _reduce(name: str, fn: Callable, mode: str, x: Any, axis: Any, where: Any, static: tuple) -> NamedArray:
    """Run ``fn(x.array, axis=positions, [where=mask,] **dict(static))`` through the cached plan."""
    if type(x) is not NamedArray:
        x = as_named(x, name)
    t = type(axis)
    if axis is not None and t is not str and t is not tuple and t is not Axis:
        axis = to_selectors(axis, name)  # lists and mappings: a hashable form for the plan key
    if where is None:
        key = (fn, x.axes, axis, static, None)
        args = (x.array,)
    else:
        if type(where) is not NamedArray:
            where = as_named(where, f"{name} (where)")
        if where.dtype != jnp.bool_:
            raise TypeError(f"{name}: `where` must be a boolean NamedArray, got dtype {where.dtype}")
        key = (fn, x.axes, axis, static, where.axes)
        args = (x.array, where.array)
    try:
        w_axes = None if where is None else where.axes
        k, out_axes = _kernels.cached(key, _plan, name, fn, mode, x.axes, axis, static, w_axes)
    except TypeError:  # an unhashable option (a jax array as `initial`) or selection
        if _kernels.hashable(key):
            raise  # raised while planning
        if axis is not None:
            to_selectors(axis, name)  # a bad selection raises its own TypeError
        raise TypeError(f"{name}: options must be static, hashable Python values, got {dict(static)}") from None
    return _new(k(*args), out_axes)


# reductions with no identity: over a zero-size axis they need `initial` (arg* cannot have one)
_NO_IDENTITY = frozenset({jnp.max, jnp.min, jnp.nanmax, jnp.nanmin, jnp.argmax, jnp.argmin, jnp.nanargmax,
                          jnp.nanargmin, jnp.ptp})  # fmt: skip


def _plan(name, fn, mode, x_axes, axis, static, w_axes):
    """Validate a signature and build its kernel and result axes."""
    if axis is None:
        if mode == _ALONG:
            raise TypeError(f"{name}: `axis` must name one axis of {x_axes}")
        positions, out_axes = None, ()
    else:
        sels = to_selectors(axis, name)
        if mode != _MANY and len(sels) != 1:
            raise ValueError(
                f"{name} works along one axis, got {len(sels)}: {sels}. Reduce the others first, "
                "or merge them into one axis"
            )
        idx = [axis_index_in(x_axes, s, name) for s in sels]
        if len(set(idx)) != len(idx):
            raise ValueError(f"{name}: an axis is selected twice in {sels}")
        positions = idx[0] if mode != _MANY else tuple(idx)
        out_axes = x_axes if mode == _ALONG else tuple(a for i, a in enumerate(x_axes) if i not in idx)
    if fn in _NO_IDENTITY and dict(static).get("initial") is None:
        empty = [a for i, a in enumerate(x_axes) if a.size == 0 and (axis is None or i in idx)]
        if empty:
            hint = "; pass initial=, the result for an empty slice" if "arg" not in name else ""
            raise ValueError(f"{name}: cannot reduce over the zero-size axes {tuple(empty)}: no identity{hint}")
    align = None
    if w_axes is not None:
        sizes = {a.name: a.size for a in x_axes}
        for a in w_axes:
            if a.name not in sizes:
                raise ValueError(
                    f"{name}: the `where` mask has axis {a.name!r}, which the array (axes {x_axes}) lacks; "
                    f"a mask's axes must be among the array's (mask axes: {w_axes})"
                )
            if sizes[a.name] != a.size:
                raise ValueError(
                    f"{name}: axis {a.name!r} has size {sizes[a.name]} in the array and {a.size} in the `where` mask"
                )
        align = aligner(w_axes, x_axes)
    kw = dict(static)

    def make():
        if w_axes is None:

            def f(a):
                return fn(a, axis=positions, **kw)

            return f
        if align is None:

            def masked(a, w):
                return fn(a, axis=positions, where=w, **kw)

        else:
            al = align  # not None here

            def masked(a, w):
                return fn(a, axis=positions, where=al(w), **kw)

        return masked

    k = _kernels.kernel(("reduce", fn, x_axes, positions, static, w_axes), make)
    return k, out_axes

# ---------------------------------------------------------------------------------------------
# Docstrings: one template, filled per family and per function
# ---------------------------------------------------------------------------------------------

_DATA = "[[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]]"
_NANDATA = "[[1.0, jnp.nan, 3.0], [4.0, 2.0, 6.0]]"

_AXIS_MANY = """axis: the axes to reduce: one selector, several, or None (the default) for all.
        They are removed from the result."""
_AXIS_ONE = """axis: one axis, or None (the default) for an index into ``x`` flattened in the
        order of ``x.axes`` (row-major), as jax.numpy does."""
_AXIS_ALONG = "axis: the one axis to work along."
_WHERE = """where: a boolean `NamedArray` over some of ``x``'s axes (broadcast to ``x`` by name);
        only the elements where it is true take part."""
_DTYPE = "dtype: the dtype to accumulate in and return (default: as jax.numpy chooses)."
_INITIAL = """initial: the starting value of the reduction (a Python number); required with ``where``, as the
        result for a slice with every element masked out."""
_DDOF = "ddof: delta degrees of freedom: the divisor is ``N - ddof``."

_RET_MANY = "A `NamedArray` with the axes of ``x`` except the reduced ones (0-d when all are reduced)."
_RET_ONE = "An integer `NamedArray` with the axes of ``x`` except ``axis`` (0-d for ``axis=None``)."
_RET_ALONG = "A `NamedArray` with the axes of ``x``, in the same order."

_VALUE_MANY = "an axis is selected twice, or ``where`` has an axis that ``x`` lacks or with another size"
_TYPE_WHERE = ", or ``where`` is not boolean"

_TEMPLATE = """{summary}

Named version of `{src}`.

Args:
    x: a `NamedArray` (a scalar counts as 0-d).
    {args}

Returns:
    {returns}

Raises:
    AxisNotFoundError: ``axis`` names an axis that ``x`` lacks (the message lists those it has).
    ValueError: {value_error}.
    TypeError: ``x`` is a plain array of nonzero rank{type_error}.

Examples:
    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.array({data}), ("batch", "embed"))
    >>> nx.{name}({arg}, "embed").array.tolist()
    {out_axis}{more}
"""


def _document(op, name, summary, src, args, returns, value_error, type_error, data, arg, out_axis, out_all, extra):
    more = f"\n    >>> nx.{name}({arg}).item()\n    {out_all}" if out_all is not None else ""
    op.__name__ = op.__qualname__ = name
    op.__doc__ = _TEMPLATE.format(
        summary=summary, src=src or f"jax.numpy.{name}", args="\n    ".join(args), returns=returns,
        value_error=value_error, type_error=type_error, data=data, name=name, arg=arg, out_axis=out_axis,
        more=more + extra,
    )  # fmt: skip
    return op


# ---------------------------------------------------------------------------------------------
# Families: one factory per signature. Each takes the name, the jax function, a one-line summary
# and the example's results (from jax.numpy: over "embed", then over everything).
# ---------------------------------------------------------------------------------------------


def _with_dtype(name, fn, summary, out_axis, out_all, *, data=_DATA, src=None, extra=""):
    def op(
        x: NamedArray, axis: AxisSelection | None = None, *, where: NamedArray | None = None,
        dtype: DTypeLike | None = None,
    ) -> NamedArray:
        return _reduce(name, fn, _MANY, x, axis, where, (("dtype", dtype),))

    args = (_AXIS_MANY, _WHERE, _DTYPE)
    return _document(op, name, summary, src, args, _RET_MANY, _VALUE_MANY, _TYPE_WHERE, data, "x", out_axis,
                     out_all, extra)  # fmt: skip


def _extremum(name, fn, summary, out_axis, out_all, *, data=_DATA, src=None):
    def op(
        x: NamedArray, axis: AxisSelection | None = None, *, where: NamedArray | None = None,
        initial: float | None = None,
    ) -> NamedArray:
        if where is not None and initial is None:
            raise ValueError(
                f"{name}: a `where` mask needs `initial=`, the result for a slice with every element masked out "
                "(jax.numpy has the same rule)"
            )
        return _reduce(name, fn, _MANY, x, axis, where, (("initial", initial),))

    args = (_AXIS_MANY, _WHERE, _INITIAL)
    value_error = _VALUE_MANY + "; or ``where`` is given without ``initial``"
    return _document(op, name, summary, src, args, _RET_MANY, value_error, _TYPE_WHERE, data, "x", out_axis,
                     out_all, "")  # fmt: skip


def _moment(name, fn, summary, out_axis, out_all, *, data=_DATA, src=None):
    def op(
        x: NamedArray, axis: AxisSelection | None = None, *, where: NamedArray | None = None, ddof: int = 0,
        dtype: DTypeLike | None = None,
    ) -> NamedArray:
        return _reduce(name, fn, _MANY, x, axis, where, (("ddof", ddof), ("dtype", dtype)))

    args = (_AXIS_MANY, _WHERE, _DDOF, _DTYPE)
    return _document(op, name, summary, src, args, _RET_MANY, _VALUE_MANY, _TYPE_WHERE, data, "x", out_axis,
                     out_all, "")  # fmt: skip


def _masked(name, fn, summary, out_axis, out_all, *, arg="x", src=None):
    def op(x: NamedArray, axis: AxisSelection | None = None, *, where: NamedArray | None = None) -> NamedArray:
        return _reduce(name, fn, _MANY, x, axis, where, ())

    args = (_AXIS_MANY, _WHERE)
    return _document(op, name, summary, src, args, _RET_MANY, _VALUE_MANY, _TYPE_WHERE, _DATA, arg, out_axis,
                     out_all, "")  # fmt: skip


def _arg(name, fn, summary, out_axis, out_all, *, data=_DATA, src=None):
    def op(x: NamedArray, axis: AxisSelector | None = None) -> NamedArray:
        return _reduce(name, fn, _ONE, x, axis, None, ())

    return _document(op, name, summary, src, (_AXIS_ONE,), _RET_ONE, "several axes are given", "", data, "x",
                     out_axis, out_all, "")  # fmt: skip


def _cumulative(name, fn, summary, out_axis, *, src=None):
    def op(x: NamedArray, axis: AxisSelector, *, dtype: DTypeLike | None = None) -> NamedArray:
        return _reduce(name, fn, _ALONG, x, axis, None, (("dtype", dtype),))

    return _document(op, name, summary, src, (_AXIS_ALONG, _DTYPE), _RET_ALONG, "several axes are given",
                     ", or ``axis`` is None", _DATA, "x", out_axis, None, "")  # fmt: skip


def _cumextremum(name, fn, summary, out_axis, *, src=None):
    def op(x: NamedArray, axis: AxisSelector, *, reverse: bool = False) -> NamedArray:
        return _reduce(name, fn, _ALONG, x, axis, None, (("reverse", reverse),))

    args = (_AXIS_ALONG, "reverse: scan from the end of the axis instead.")
    return _document(op, name, summary, src, args, _RET_ALONG, "several axes are given", ", or ``axis`` is None",
                     _DATA, "x", out_axis, None, "")  # fmt: skip


def _sorting(name, fn, summary, out_axis, *, src=None):
    def op(x: NamedArray, axis: AxisSelector, *, descending: bool = False, stable: bool = True) -> NamedArray:
        return _reduce(name, fn, _ALONG, x, axis, None, (("stable", stable), ("descending", descending)))

    args = (_AXIS_ALONG, "descending: sort from largest to smallest.", "stable: keep the order of equal elements.")
    return _document(op, name, summary, src, args, _RET_ALONG, "several axes are given", ", or ``axis`` is None",
                     _DATA, "x", out_axis, None, "")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

_SUM_WHERE = """
    >>> nx.sum(x, "embed", where=x < 5).array.tolist()
    [4.0, 6.0]"""
_NOTNAN = ", NaNs skipped."
_CUM = "[[1.0, 6.0, 9.0], [4.0, 6.0, 12.0]]", "[[1.0, 5.0, 15.0], [4.0, 8.0, 48.0]]"

# fmt: off
sum = _with_dtype("sum", jnp.sum, "Sum over the named axes.", "[9.0, 12.0]", "21.0", extra=_SUM_WHERE)
mean = _with_dtype("mean", jnp.mean, "Mean over the named axes.", "[3.0, 4.0]", "3.5")
prod = _with_dtype("prod", jnp.prod, "Product over the named axes.", "[15.0, 48.0]", "720.0")
nansum = _with_dtype("nansum", jnp.nansum, "Sum over the named axes" + _NOTNAN, "[4.0, 12.0]", "16.0",
                     data=_NANDATA)
nanmean = _with_dtype("nanmean", jnp.nanmean, "Mean over the named axes" + _NOTNAN, "[2.0, 4.0]", "3.2",
                      data=_NANDATA)
nanprod = _with_dtype("nanprod", jnp.nanprod, "Product over the named axes" + _NOTNAN, "[3.0, 48.0]", "144.0",
                      data=_NANDATA)
max = _extremum("max", jnp.max, "Maximum over the named axes.", "[5.0, 6.0]", "6.0")
min = _extremum("min", jnp.min, "Minimum over the named axes.", "[1.0, 2.0]", "1.0")
nanmax = _extremum("nanmax", jnp.nanmax, "Maximum over the named axes" + _NOTNAN, "[3.0, 6.0]", "6.0",
                   data=_NANDATA)
nanmin = _extremum("nanmin", jnp.nanmin, "Minimum over the named axes" + _NOTNAN, "[1.0, 2.0]", "1.0",
                   data=_NANDATA)
std = _moment("std", jnp.std, "Standard deviation over the named axes.", "[1.633, 1.633]", "1.7078")
var = _moment("var", jnp.var, "Variance over the named axes.", "[2.6667, 2.6667]", "2.9167")
nanstd = _moment("nanstd", jnp.nanstd, "Standard deviation over the named axes" + _NOTNAN, "[1.0, 1.633]",
                 "1.7205", data=_NANDATA)
nanvar = _moment("nanvar", jnp.nanvar, "Variance over the named axes" + _NOTNAN, "[1.0, 2.6667]", "2.96",
                 data=_NANDATA)
any = _masked("any", jnp.any, "Whether any element is true, over the named axes.", "[True, True]", "True",
              arg="x > 1")
all = _masked("all", jnp.all, "Whether every element is true, over the named axes.", "[False, True]", "False",
              arg="x > 1")
logsumexp = _masked("logsumexp", jax.nn.logsumexp, "``log(sum(exp(x)))`` over the named axes, computed stably.",
                    "[5.1429, 6.1429]", "6.4562", src="jax.nn.logsumexp")
argmax = _arg("argmax", jnp.argmax, "Index of the maximum along one named axis.", "[1, 2]", "5")
argmin = _arg("argmin", jnp.argmin, "Index of the minimum along one named axis.", "[0, 1]", "0")
nanargmax = _arg("nanargmax", jnp.nanargmax, "Index of the maximum along one named axis" + _NOTNAN, "[2, 2]", "5",
                 data=_NANDATA)
nanargmin = _arg("nanargmin", jnp.nanargmin, "Index of the minimum along one named axis" + _NOTNAN, "[0, 1]", "0",
                 data=_NANDATA)
cumsum = _cumulative("cumsum", jnp.cumsum, "Cumulative sum along one named axis.", _CUM[0])
cumprod = _cumulative("cumprod", jnp.cumprod, "Cumulative product along one named axis.", _CUM[1])
cummax = _cumextremum("cummax", jax.lax.cummax, "Running maximum along one named axis.",
                      "[[1.0, 5.0, 5.0], [4.0, 4.0, 6.0]]", src="jax.lax.cummax")
cummin = _cumextremum("cummin", jax.lax.cummin, "Running minimum along one named axis.",
                      "[[1.0, 1.0, 1.0], [4.0, 2.0, 2.0]]", src="jax.lax.cummin")
sort = _sorting("sort", jnp.sort, "Sort along one named axis.", "[[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]")
argsort = _sorting("argsort", jnp.argsort, "Indices that sort along one named axis.", "[[0, 2, 1], [1, 0, 2]]")
# fmt: on
