"""More of the jax.numpy surface, by axis name: tile, repeat, trace, ravel, around, unique,
searchsorted, bincount, nonzero.

Each resolves its axis names to positions and calls the jax.numpy function once (one dispatch; these
are not on the hot path of a model, so they plan nothing). Where haliax has the function, the
signature is haliax's: a result whose size jax needs statically (`unique`, `nonzero`, `bincount`)
takes it from an `Axis` that also names the result's axis.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.array([[3, 1], [1, 2]]), ("a", "b"))
    >>> nx.unique(x, nx.Axis("u", 3)).array
    Array([1, 2, 3], dtype=int32)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from ..core._axis import Axis, AxisSelector, axis_name
from ..core._named_array import NamedArray, _new, as_named, axis_index_in, union_of
from ._elementwise import round as _round
from ._shape import flatten_axes


def _named(x: Any, op: str) -> NamedArray:
    if not isinstance(x, NamedArray):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    return x


def _static_int(n: Any, op: str, what: str) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{op}: `{what}` must be a static int, got {n!r}")
    return int(n.__index__())


def tile(x: NamedArray, reps: Mapping[AxisSelector, int]) -> NamedArray:
    """`jax.numpy.tile` by name: each axis in ``reps`` is repeated whole ``reps[axis]`` times
    (its size multiplied, its name kept); other axes are unchanged.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1, 2], [3, 4]]), ("a", "b"))
        >>> nx.tile(x, {"b": 2}).array
        Array([[1, 2, 1, 2],
               [3, 4, 3, 4]], dtype=int32)
    """
    x = _named(x, "tile")
    if not isinstance(reps, Mapping):
        raise TypeError(f"tile: `reps` must be a {{axis: count}} mapping (by name), got {reps!r}")
    counts = [1] * x.ndim
    for ax, n in reps.items():
        i = axis_index_in(x.axes, ax, "tile")
        counts[i] = _static_int(n, "tile", f"reps[{axis_name(ax)!r}]")
        if counts[i] < 0:
            raise ValueError(f"tile: reps[{axis_name(ax)!r}] must be >= 0, got {counts[i]}")
    axes = tuple(a.resize(a.size * c) for a, c in zip(x.axes, counts, strict=True))
    return _new(jnp.tile(x.array, counts), axes)


def repeat(x: NamedArray, repeats: int, axis: AxisSelector) -> NamedArray:
    """`jax.numpy.repeat` along a named axis: each element repeated ``repeats`` times in place (the
    axis keeps its name, its size multiplied).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1, 2], [3, 4]]), ("a", "b"))
        >>> nx.repeat(x, 2, "b").array
        Array([[1, 1, 2, 2],
               [3, 3, 4, 4]], dtype=int32)
    """
    x = _named(x, "repeat")
    i = axis_index_in(x.axes, axis, "repeat")
    n = _static_int(repeats, "repeat", "repeats")
    if n < 0:
        raise ValueError(f"repeat: `repeats` must be >= 0, got {n}")
    axes = x.axes[:i] + (x.axes[i].resize(x.axes[i].size * n),) + x.axes[i + 1 :]
    return _new(jnp.repeat(x.array, n, axis=i, total_repeat_length=x.axes[i].size * n), axes)


def trace(x: NamedArray, axis1: AxisSelector, axis2: AxisSelector, offset: int = 0, dtype: Any = None) -> NamedArray:
    """`jax.numpy.trace` over two named axes (haliax's signature): the sum of their (``offset``)
    diagonal; both axes are removed.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(8).reshape(2, 2, 2), ("batch", "i", "j"))
        >>> nx.trace(x, "i", "j").array
        Array([ 3, 11], dtype=int32)
    """
    x = _named(x, "trace")
    i, j = axis_index_in(x.axes, axis1, "trace"), axis_index_in(x.axes, axis2, "trace")
    if i == j:
        raise ValueError(f"trace: axis1 and axis2 are the same axis {x.axes[i]}")
    axes = tuple(a for k, a in enumerate(x.axes) if k not in (i, j))
    return _new(jnp.trace(x.array, offset=offset, axis1=i, axis2=j, dtype=dtype), axes)


def ravel(x: NamedArray, new_axis: AxisSelector) -> NamedArray:
    """All axes flattened, in their order (row-major), into one axis ``new_axis``
    (`flatten_axes` over every axis; a 0-d array gives one element).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1, 2], [3, 4]]), ("a", "b"))
        >>> nx.ravel(x, "flat").axes
        (Axis('flat', 4),)
        >>> nx.ravel(x.rearrange(("b", "a")), "flat").array  # the axes' order, not the memory's
        Array([1, 3, 2, 4], dtype=int32)
    """
    return flatten_axes(_named(x, "ravel"), x.axes, new_axis)


around = _round
"""`jax.numpy.around`: `namedax.round` under numpy's other name."""


def unique(
    x: NamedArray,
    Unique: Axis,  # noqa: N803 - haliax's name: an Axis argument
    *,
    return_index: bool = False,
    return_inverse: bool = False,
    return_counts: bool = False,
    axis: AxisSelector | None = None,
    fill_value: Any = None,
) -> NamedArray | tuple[NamedArray, ...]:
    """`jax.numpy.unique` with a static size (haliax's signature): the sorted unique values on a new
    axis ``Unique``, whose size is the static ``size`` (padded with ``fill_value``, by default the
    smallest value, when there are fewer).

    Args:
        x: the array; all its elements (``axis=None``) or its slices along ``axis`` are compared.
        Unique: the result's axis; its size is jnp.unique's ``size``.
        return_index: also return each unique value's first index (over ``Unique``).
        return_inverse: also return the index of each element's value (over ``x``'s axes, or ``axis``).
        return_counts: also return how often each value occurs (over ``Unique``).
        axis: find unique slices along this axis (it is replaced by ``Unique``).
        fill_value: the padding value.

    Returns:
        The unique values, or a tuple with the requested extra arrays, in jax.numpy's order.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([4, 1, 4, 2]), "t")
        >>> values, counts = nx.unique(x, nx.Axis("u", 4), return_counts=True, fill_value=0)
        >>> values.array, counts.array
        (Array([1, 2, 4, 0], dtype=int32), Array([1, 1, 2, 0], dtype=int32))
    """
    x = _named(x, "unique")
    if type(Unique) is not Axis:
        raise TypeError(f"unique: `Unique` must be an Axis (its size is the static number of values), got {Unique!r}")
    kw = dict(size=Unique.size, fill_value=fill_value, return_index=return_index, return_inverse=return_inverse,
              return_counts=return_counts)  # fmt: skip
    if axis is None:
        out = jnp.unique(x.array, **kw)
        values_axes, inv_axes = (Unique,), x.axes
    else:
        i = axis_index_in(x.axes, axis, "unique")
        out = jnp.unique(x.array, axis=i, **kw)
        values_axes, inv_axes = x.axes[:i] + (Unique,) + x.axes[i + 1 :], (x.axes[i],)
    if not (return_index or return_inverse or return_counts):
        return _new(out, values_axes)
    out = list(out)
    res = [_new(out.pop(0), values_axes)]
    if return_index:
        res.append(_new(out.pop(0), (Unique,)))
    if return_inverse:
        inv = out.pop(0)
        res.append(_new(inv.reshape(tuple(a.size for a in inv_axes)), inv_axes))
    if return_counts:
        res.append(_new(out.pop(0), (Unique,)))
    return tuple(res)


def searchsorted(
    a: NamedArray, v: NamedArray | Any, *, side: str = "left", sorter: NamedArray | None = None, method: str = "scan"
) -> NamedArray:
    """`jax.numpy.searchsorted` (haliax's signature): where the values ``v`` would go in the sorted
    one-axis array ``a``. The result has ``v``'s axes.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> a = nx.named(jnp.array([1.0, 2.0, 3.0]), "edges")
        >>> v = nx.named(jnp.array([[0.5, 2.5], [3.0, 9.0]]), ("p", "q"))
        >>> nx.searchsorted(a, v).array
        Array([[0, 2],
               [2, 3]], dtype=int32)
    """
    a = _named(a, "searchsorted")
    if a.ndim != 1:
        raise ValueError(f"searchsorted: `a` must have exactly one axis, got {a.axes}")
    v = as_named(v, "searchsorted")
    s = None
    if sorter is not None:
        s = _named(sorter, "searchsorted")
        if s.axes != a.axes:
            raise ValueError(f"searchsorted: `sorter` must have the axes of `a` {a.axes}, got {s.axes}")
        s = s.array
    return _new(jnp.searchsorted(a.array, v.array, side=side, sorter=s, method=method), v.axes)


def bincount(
    x: NamedArray, Counts: Axis, *, weights: NamedArray | None = None, minlength: int = 0  # noqa: N803
) -> NamedArray:
    """`jax.numpy.bincount` (haliax's signature): how often each value ``0 .. Counts.size - 1``
    occurs among all of ``x``'s elements (summing ``weights``, broadcast to ``x`` by name, if given);
    values out of that range are dropped. The result is over the one axis ``Counts``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[0, 1], [1, 3]]), ("a", "b"))
        >>> nx.bincount(x, nx.Axis("value", 4)).array
        Array([1, 2, 0, 1], dtype=int32)
    """
    x = _named(x, "bincount")
    if type(Counts) is not Axis:
        raise TypeError(f"bincount: `Counts` must be an Axis (its size is the static length), got {Counts!r}")
    w = None
    if weights is not None:
        weights = _named(weights, "bincount")
        if union_of("bincount", (x.axes, weights.axes)) != x.axes:
            raise ValueError(f"bincount: `weights` {weights.axes} has axes that `x` {x.axes} lacks")
        w = weights.broadcast_to(x.axes).array.ravel()
    return _new(jnp.bincount(x.array.ravel(), w, minlength=minlength, length=Counts.size), (Counts,))


def nonzero(x: NamedArray, *, size: Axis, fill_value: Any = 0) -> tuple[NamedArray, ...]:
    """`jax.numpy.nonzero` with a static size (haliax's signature): for each axis of ``x``, in
    order, the indices of the nonzero elements along it, over the new axis ``size`` (padded with
    ``fill_value`` when there are fewer).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[0, 5], [7, 0]]), ("a", "b"))
        >>> rows, cols = nx.nonzero(x, size=nx.Axis("hit", 2))
        >>> rows.array, cols.array
        (Array([0, 1], dtype=int32), Array([1, 0], dtype=int32))
    """
    x = _named(x, "nonzero")
    if type(size) is not Axis:
        raise TypeError(f"nonzero: `size` must be an Axis (its size is the static count), got {size!r}")
    return tuple(_new(ix, (size,)) for ix in jnp.nonzero(x.array, size=size.size, fill_value=fill_value))
