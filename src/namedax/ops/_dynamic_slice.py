"""Dynamic slicing by name: `slice` and `updated_slice` (`jax.lax.dynamic_slice` underneath).

The starts may be traced (a `jax.jit` argument, a `jax.lax.while_loop` counter), the lengths are
static, as XLA needs static shapes. This is what a decoding cache is built on: read or write a few
positions of a long buffer at a position known only at run time.

Out of range starts follow `jax.lax`: a negative start counts from the end of the axis, then every
start is clamped so that the slice fits (``0 <= start <= size - length``). A slice therefore never
fails at run time, and never reads or writes past the end: ``slice(x, {"t": 8}, {"t": 3})`` of a
10-long axis reads positions 7, 8, 9.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.arange(10), "t")
    >>> nx.slice(x, {"t": 2}, {"t": 3}).array
    Array([2, 3, 4], dtype=int32)
    >>> nx.updated_slice(x, {"t": 8}, nx.named(jnp.array([-1, -2]), "t")).array
    Array([ 0,  1,  2,  3,  4,  5,  6,  7, -1, -2], dtype=int32)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core import _kernels
from ..core._axis import Axis, AxisSelector
from ..core._named_array import NamedArray, _is_named, _new, axis_index_in


def _starts(x: NamedArray, start: Any, op: str) -> dict[int, Any]:
    """``{dimension: start}``: each start an int or an integer scalar (traced allowed)."""
    if not isinstance(start, Mapping):
        raise TypeError(f"{op}: `start` must be a {{axis: start}} mapping, got {type(start).__name__}: {start!r}")
    out: dict[int, Any] = {}
    for ax, s in start.items():
        i = axis_index_in(x.axes, ax, op)
        if i in out:
            raise ValueError(f"{op}: axis {x.axes[i].name!r} is given twice in `start` {dict(start)!r}")
        if _is_named(s):
            if s.axes:
                raise ValueError(
                    f"{op}: the start for axis {x.axes[i].name!r} must be a scalar, got a NamedArray over {s.axes}; "
                    "map over those axes with nx.vmap to slice each at its own start"
                )
            s = s.array
        if isinstance(s, bool | np.bool_) or not (
            isinstance(s, int | np.integer)
            or (hasattr(s, "dtype") and getattr(s, "shape", None) == () and jnp.issubdtype(s.dtype, jnp.integer))
        ):
            raise TypeError(
                f"{op}: the start for axis {x.axes[i].name!r} must be an int or an integer scalar array, got {s!r}"
            )
        out[i] = s
    return out


def _kernel(op: str, fn, x: NamedArray, dims: tuple[int, ...], static: Any):
    def make():
        def f(a, *args):
            return fn(a, dims, static, *args)

        return f

    return _kernels.kernel((op, x.axes, dims, static), make)


def _slice(a, dims, sizes, *starts):
    full = [0] * a.ndim
    for d, s in zip(dims, starts, strict=True):
        full[d] = s
    return jax.lax.dynamic_slice(a, full, sizes)


def slice(x: NamedArray, start: Mapping[AxisSelector, Any], length: Mapping[AxisSelector, int]) -> NamedArray:
    """Read a window of ``x`` whose starts may be traced (`jax.lax.dynamic_slice` by name).

    Args:
        x: the array.
        start: ``{axis: start}``; each start an int or an integer scalar (a traced one is fine, a
            0-d NamedArray too). A negative start counts from the end; starts are then clamped so
            that the window fits (see the module docstring): no out-of-range error at run time.
        length: ``{axis: length}`` for exactly the axes in ``start``; static ints in ``[0, size]``.

    Returns:
        ``x`` with each sliced axis keeping its name and taking its new length; other axes whole.

    Raises:
        AxisNotFoundError: an axis of ``start`` or ``length`` is not in ``x``.
        ValueError: ``start`` and ``length`` name different axes, or a length is out of ``[0, size]``.
        TypeError: a start is not an integer scalar, or a length not an int.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(12).reshape(3, 4), ("batch", "t"))
        >>> f = jax.jit(lambda x, i: nx.slice(x, {"t": i}, {"t": 2}))
        >>> f(x, 1).array
        Array([[ 1,  2],
               [ 5,  6],
               [ 9, 10]], dtype=int32)
        >>> f(x, 3).array[0]  # clamped to start 2, so the window fits
        Array([2, 3], dtype=int32)
    """
    op = "slice"
    if not _is_named(x):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    starts = _starts(x, start, op)
    if not isinstance(length, Mapping):
        raise TypeError(f"{op}: `length` must be a {{axis: length}} mapping, got {type(length).__name__}: {length!r}")
    lengths = {axis_index_in(x.axes, ax, op): n for ax, n in length.items()}
    if set(lengths) != set(starts) or len(lengths) != len(length):
        raise ValueError(
            f"{op}: `start` and `length` must name the same axes, got start={dict(start)!r} and "
            f"length={dict(length)!r} for an array over {x.axes}"
        )
    sizes = list(a.size for a in x.axes)
    axes = list(x.axes)
    for i, n in lengths.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise TypeError(f"{op}: the length of axis {x.axes[i].name!r} must be a static int, got {n!r}")
        if not 0 <= n <= x.axes[i].size:
            raise ValueError(f"{op}: length {n} for {x.axes[i]} is not in [0, {x.axes[i].size}]")
        sizes[i] = int(n)
        axes[i] = Axis(x.axes[i].name, int(n))
    dims = tuple(sorted(starts))
    k = _kernel("slice", _slice, x, dims, tuple(sizes))
    return _new(k(x.array, *(starts[d] for d in dims)), tuple(axes))


def _update(a, dims, perm_shape, u, *starts):
    perm, shape, expand = perm_shape
    if perm != tuple(range(len(perm))):
        u = jax.lax.transpose(u, perm)
    if expand:
        u = jax.lax.expand_dims(u, expand)
    u = jnp.broadcast_to(u, shape).astype(a.dtype)
    full = [0] * a.ndim
    for d, s in zip(dims, starts, strict=True):
        full[d] = s
    return jax.lax.dynamic_update_slice(a, u, full)


def updated_slice(x: NamedArray, start: Mapping[AxisSelector, Any], update: NamedArray) -> NamedArray:
    """``x`` with a window, starting at traced or static positions, replaced by ``update``
    (`jax.lax.dynamic_update_slice` by name).

    Args:
        x: the array.
        start: ``{axis: start}``, as in `slice` (negative starts count from the end, then starts are
            clamped so that the window fits: the update is never cut, it moves back).
        update: a NamedArray over axes of ``x`` in any order. On a started axis its size is the
            window's length (at most the axis's size); on another axis of ``x`` it has the full size,
            or lacks the axis and is broadcast along it. It is cast to ``x``'s dtype.

    Returns:
        A NamedArray with the axes of ``x``.

    Raises:
        AxisNotFoundError: an axis of ``start`` is not in ``x``.
        ValueError: ``update`` has an axis ``x`` lacks, is longer than ``x`` on an axis, or is shorter
            on an axis without a start.
        TypeError: ``update`` is not a NamedArray, or a start is not an integer scalar.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> cache = nx.zeros({"batch": 2, "t": 4})
        >>> new = nx.named(jnp.array([[1.0], [2.0]]), ("batch", "t"))
        >>> jax.jit(lambda c, i: nx.updated_slice(c, {"t": i}, new))(cache, 1).array
        Array([[0., 1., 0., 0.],
               [0., 2., 0., 0.]], dtype=float32)
    """
    op = "updated_slice"
    if not _is_named(x):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    if not _is_named(update):
        raise TypeError(f"{op}: `update` must be a NamedArray, got {type(update).__name__}")
    starts = _starts(x, start, op)
    have = {a.name: i for i, a in enumerate(x.axes)}
    extra = [a for a in update.axes if a.name not in have]
    if extra:
        raise ValueError(f"{op}: the update over {update.axes} has axes {extra} that the array over {x.axes} lacks")
    shape = []
    for i, a in enumerate(x.axes):
        u = next((b for b in update.axes if b.name == a.name), None)
        if u is None:
            shape.append(a.size)
        elif u.size > a.size or (u.size != a.size and i not in starts):
            what = "longer than" if u.size > a.size else "shorter than (and no start is given for)"
            raise ValueError(
                f"{op}: the update's axis {u} is {what} the array's {a} (array {x.axes}, update {update.axes})"
            )
        else:
            shape.append(u.size)
    order = [have[b.name] for b in update.axes]
    perm = tuple(sorted(range(len(order)), key=lambda j: order[j]))
    expand = tuple(i for i, a in enumerate(x.axes) if all(b.name != a.name for b in update.axes))
    dims = tuple(sorted(starts))
    k = _kernel("updated_slice", _update, x, dims, (perm, tuple(shape), expand))
    return _new(k(x.array, update.array, *(starts[d] for d in dims)), x.axes)
