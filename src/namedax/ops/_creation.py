"""Creation: named arrays from axes (sizes come from the axes), and joining named arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from ..core._axis import Axis, AxisSelector, AxisSpec, axis_name, check_unique, to_axes
from ..core._named_array import NamedArray, _is_named, _new, axis_index_in, broadcast_to, union_of


def _shape(axes: tuple[Axis, ...]) -> tuple[int, ...]:
    return tuple(a.size for a in axes)


def _one_axis(axis: Axis, op: str) -> Axis:
    axes = to_axes(axis)
    if len(axes) != 1:
        raise ValueError(f"{op}: expected one axis, got {axes}")
    return axes[0]


def _check_named(x: Any, op: str) -> None:
    if not _is_named(x):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}; name its axes with nx.named")


def _check_all_named(arrays: list, op: str) -> None:
    for i, a in enumerate(arrays):
        if not _is_named(a):
            raise TypeError(f"{op}: array {i} is a {type(a).__name__}, not a NamedArray; name its axes with nx.named")


def zeros(shape: AxisSpec | Axis, dtype=None) -> NamedArray:
    """An array of zeros over ``shape`` (an `Axis`, a sequence of them or a ``{name: size}`` mapping).

    Examples:
        >>> import namedax as nx
        >>> nx.zeros({"batch": 2, "embed": 3}).shape
        {'batch': 2, 'embed': 3}
    """
    axes = to_axes(shape, "zeros")
    check_unique(axes, "zeros")
    return _new(jnp.zeros(_shape(axes), dtype), axes)


def ones(shape: AxisSpec | Axis, dtype=None) -> NamedArray:
    """An array of ones over ``shape``.

    Examples:
        >>> import namedax as nx
        >>> float(nx.ones({"batch": 2}).sum())
        2.0
    """
    axes = to_axes(shape, "ones")
    check_unique(axes, "ones")
    return _new(jnp.ones(_shape(axes), dtype), axes)


def full(shape: AxisSpec | Axis, fill_value: Any, dtype=None) -> NamedArray:
    """An array over ``shape`` filled with ``fill_value``.

    Examples:
        >>> import namedax as nx
        >>> nx.full({"batch": 2}, 7).array.tolist()
        [7, 7]
    """
    axes = to_axes(shape, "full")
    check_unique(axes, "full")
    return _new(jnp.full(_shape(axes), fill_value, dtype), axes)


def zeros_like(x: NamedArray, dtype=None) -> NamedArray:
    """Zeros with the axes (and by default the dtype) of ``x``.

    Examples:
        >>> import namedax as nx
        >>> nx.zeros_like(nx.ones({"a": 2})).array
        Array([0., 0.], dtype=float32)
    """
    _check_named(x, "zeros_like")
    return _new(jnp.zeros_like(x.array, dtype), x.axes)


def ones_like(x: NamedArray, dtype=None) -> NamedArray:
    """Ones with the axes (and by default the dtype) of ``x``.

    Examples:
        >>> import namedax as nx
        >>> nx.ones_like(nx.zeros({"a": 2}), dtype=int).array
        Array([1, 1], dtype=int32)
    """
    _check_named(x, "ones_like")
    return _new(jnp.ones_like(x.array, dtype), x.axes)


def full_like(x: NamedArray, fill_value: Any, dtype=None) -> NamedArray:
    """``fill_value`` with the axes (and by default the dtype) of ``x``.

    Examples:
        >>> import namedax as nx
        >>> nx.full_like(nx.zeros({"a": 2}), 3).array
        Array([3., 3.], dtype=float32)
    """
    _check_named(x, "full_like")
    return _new(jnp.full_like(x.array, fill_value, dtype), x.axes)


def arange(axis: Axis, *, start: Any = 0, step: Any = 1, dtype=None) -> NamedArray:
    """``start, start + step, ...`` along ``axis`` (``axis.size`` elements).

    Examples:
        >>> import namedax as nx
        >>> nx.arange(nx.Axis("t", 4), start=1, step=2).array
        Array([1, 3, 5, 7], dtype=int32)
    """
    ax = _one_axis(axis, "arange")
    a = jnp.arange(ax.size, dtype=dtype)
    if (start, step) != (0, 1):
        a = a * step + start
        if dtype is not None:  # a float start or step must not change the dtype asked for
            a = a.astype(dtype)
    return _new(a, (ax,))


def linspace(axis: Axis, *, start: Any, stop: Any, endpoint: bool = True, dtype=None) -> NamedArray:
    """``axis.size`` evenly spaced values from ``start`` to ``stop``.

    Examples:
        >>> import namedax as nx
        >>> nx.linspace(nx.Axis("x", 3), start=0.0, stop=1.0).array
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    ax = _one_axis(axis, "linspace")
    return _new(jnp.linspace(start, stop, ax.size, endpoint=endpoint, dtype=dtype), (ax,))


def logspace(axis: Axis, *, start: Any, stop: Any, endpoint: bool = True, base: Any = 10.0, dtype=None) -> NamedArray:
    """``axis.size`` values evenly spaced on a log scale, ``base**start`` to ``base**stop``.

    Examples:
        >>> import namedax as nx
        >>> nx.logspace(nx.Axis("x", 3), start=0.0, stop=2.0).array
        Array([  1.,  10., 100.], dtype=float32)
    """
    ax = _one_axis(axis, "logspace")
    return _new(jnp.logspace(start, stop, ax.size, endpoint=endpoint, base=base, dtype=dtype), (ax,))


def stack(axis: AxisSelector, arrays: Sequence[NamedArray]) -> NamedArray:
    """Stack arrays along a new leading axis named ``axis`` (its size is ``len(arrays)``).

    The arrays are aligned by name first, so they may hold their axes in different orders; they must
    hold the same axes.

    Examples:
        >>> import namedax as nx
        >>> a, b = nx.zeros({"x": 2, "y": 3}), nx.ones({"y": 3, "x": 2})
        >>> nx.stack("layer", [a, b]).shape
        {'layer': 2, 'x': 2, 'y': 3}
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("stack: no arrays given")
    _check_all_named(arrays, "stack")
    name = axis_name(axis, "stack")
    new = Axis(name, len(arrays))
    if type(axis) is Axis and axis.size != len(arrays):
        raise ValueError(f"stack: {axis} given, but {len(arrays)} arrays to stack")
    ref = arrays[0].axes
    for i, a in enumerate(arrays[1:], 1):
        if {x.name for x in a.axes} != {x.name for x in ref}:
            raise ValueError(f"stack: array 0 has axes {ref}, array {i} has {a.axes}")
    union_of("stack", [a.axes for a in arrays])
    out_axes = (new,) + ref
    check_unique(out_axes, "stack")
    return _new(jnp.stack([broadcast_to(a, ref).array for a in arrays]), out_axes)


def concatenate(axis: AxisSelector, arrays: Sequence[NamedArray]) -> NamedArray:
    """Join arrays along an existing axis; the result's axis has the summed size. Other axes must
    agree by name and size (their order may differ; the first array's order is kept).

    Examples:
        >>> import namedax as nx
        >>> a, b = nx.zeros({"t": 2, "x": 3}), nx.ones({"x": 3, "t": 4})
        >>> nx.concatenate("t", [a, b]).shape
        {'t': 6, 'x': 3}
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concatenate: no arrays given")
    _check_all_named(arrays, "concatenate")
    name = axis_name(axis, "concatenate")
    ref = arrays[0].axes
    i0 = axis_index_in(ref, name, "concatenate")
    others = ref[:i0] + ref[i0 + 1 :]
    parts = []
    for i, a in enumerate(arrays):
        j = axis_index_in(a.axes, name, f"concatenate (array {i})")
        rest = a.axes[:j] + a.axes[j + 1 :]
        if sorted((x.name, x.size) for x in rest) != sorted((x.name, x.size) for x in others):
            raise ValueError(f"concatenate: along {name!r}, array 0 has axes {ref}, array {i} has {a.axes}")
        parts.append(broadcast_to(a, ref[:i0] + (a.axes[j],) + ref[i0 + 1 :]).array)
    total = sum(p.shape[i0] for p in parts)
    out_axes = ref[:i0] + (Axis(name, total),) + ref[i0 + 1 :]
    return _new(jnp.concatenate(parts, axis=i0), out_axes)
