"""Pooling over named spatial axes: `max_pool`, `min_pool`, `mean_pool` (flax's semantics).

The window is a ``{axis: size}`` mapping; every axis not in it is left alone (a window of 1), so
batch and channel axes need no declaring and may sit anywhere. Each pooled axis keeps its name with
its new size. Underneath is one `jax.lax.reduce_window` on the positional array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax

from ..core._axis import Axis, axis_name
from ..core._named_array import NamedArray, _new, axis_index_in

__all__ = ["max_pool", "min_pool", "mean_pool"]

Window = Mapping[str, int] | Sequence[Axis]
Padding = str | int | Mapping[str, int | tuple[int, int]] | Sequence[int | tuple[int, int]]


def _window(window: Any, op: str) -> dict[str, int]:
    if isinstance(window, Mapping):
        items = [(axis_name(k, op), v) for k, v in window.items()]
    elif isinstance(window, Axis):
        items = [(window.name, window.size)]
    elif isinstance(window, Sequence) and not isinstance(window, str) and all(isinstance(a, Axis) for a in window):
        items = [(a.name, a.size) for a in window]
    else:
        raise TypeError(f"{op}: `window` must be a {{axis: size}} mapping or Axes with window sizes, got {window!r}")
    if not items:
        raise ValueError(f"{op}: `window` names no axis")
    for name, size in items:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{op}: the window size of {name!r} must be a positive int, got {size!r}")
    return dict(items)


def _per_window_axis(value: Any, names: list[str], op: str, what: str, check) -> list:
    """One entry per window axis, from a scalar, a ``{axis: value}`` mapping or a sequence in window order."""
    if isinstance(value, Mapping):
        got = {axis_name(k, op): v for k, v in value.items()}
        unknown = sorted(set(got) - set(names))
        if unknown:
            raise ValueError(f"{op}: `{what}` names axes {unknown} that are not in the window {names}")
        return [check(got[n]) if n in got else None for n in names]
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(names):
            raise ValueError(f"{op}: `{what}` needs one entry per window axis {names}, got {value!r}")
        return [check(v) for v in value]
    return [check(value)] * len(names)


def _pool(x: NamedArray, window: Any, stride: Any, padding: Padding, init: Any, fn: Any, op: str):
    if not isinstance(x, NamedArray):
        raise TypeError(f"{op}: `x` must be a NamedArray, got {type(x).__name__}")
    win = _window(window, op)
    names = list(win)
    idx = [axis_index_in(x.axes, n, op) for n in names]

    def positive(v):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{op}: `stride` must be a positive int per axis, got {stride!r}")
        return v

    def pair(p):
        if isinstance(p, int) and not isinstance(p, bool):
            return (p, p)
        if isinstance(p, Sequence) and len(p) == 2 and all(isinstance(v, int) for v in p):
            return (int(p[0]), int(p[1]))
        raise ValueError(f'{op}: `padding` must be "SAME", "VALID", ints or (low, high) pairs, got {padding!r}')

    strides = [1] * len(names) if stride is None else _per_window_axis(stride, names, op, "stride", positive)
    dims, steps = [1] * x.ndim, [1] * x.ndim
    for i, n, s in zip(idx, names, strides, strict=True):
        dims[i], steps[i] = win[n], 1 if s is None else s
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f'{op}: `padding` must be "SAME", "VALID", ints or (low, high) pairs, got {padding!r}')
        pads: Any = padding.upper()
    else:
        pads = [(0, 0)] * x.ndim
        for i, p in zip(idx, _per_window_axis(padding, names, op, "padding", pair), strict=True):
            pads[i] = (0, 0) if p is None else p
        pads = tuple(pads)
    for i, n in zip(idx, names, strict=True):
        lo, hi = (0, 0) if isinstance(pads, str) else pads[i]
        if pads != "SAME" and x.axes[i].size + lo + hi < win[n]:
            raise ValueError(f"{op}: window {win[n]} is larger than axis {x.axes[i]} with padding ({lo}, {hi})")
    y = lax.reduce_window(x.array, init(x.dtype), fn, tuple(dims), tuple(steps), pads)
    axes = tuple(Axis(a.name, y.shape[i]) if i in idx else a for i, a in enumerate(x.axes))
    return _new(y, axes), idx, tuple(dims), tuple(steps), pads


def _lowest(dtype):
    return -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def _highest(dtype):
    return jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).max


def _zero(dtype):
    return jnp.zeros((), dtype)


def max_pool(x: NamedArray, window: Window, *, stride: Any = None, padding: Padding = "VALID") -> NamedArray:
    """The maximum over each window (flax's ``max_pool``), over named axes.

    Args:
        x: a NamedArray holding every window axis; other axes are left alone.
        window: ``{axis: size}`` (or a sequence of Axes whose sizes are the window).
        stride: None (1, as in flax), an int for every window axis, a ``{axis: stride}`` mapping
            (unlisted axes 1), or one per window axis in its order.
        padding: ``"VALID"``, ``"SAME"``, an int for both sides, or per window axis (mapping or
            sequence) an int or ``(low, high)`` pair. Padding never wins the maximum.

    Returns:
        A NamedArray over ``x``'s axes, the window axes resized:
        ``(size + low + high - window) // stride + 1``, or ``ceil(size / stride)`` for ``"SAME"``.

    Raises:
        AxisNotFoundError: a window axis is not in ``x``.
        ValueError: a bad size, stride or padding, or a window larger than its padded axis.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 5.0, 2.0, 0.0], [3.0, 1.0, 4.0, 8.0]]), ("c", "time"))
        >>> nx.nn.max_pool(x, {"time": 2}, stride=2).array.tolist()
        [[5.0, 2.0], [3.0, 8.0]]
    """
    return _pool(x, window, stride, padding, _lowest, lax.max, "max_pool")[0]


def min_pool(x: NamedArray, window: Window, *, stride: Any = None, padding: Padding = "VALID") -> NamedArray:
    """The minimum over each window (flax's ``min_pool``); arguments as in `max_pool`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 5.0, 2.0, 0.0], [3.0, 1.0, 4.0, 8.0]]), ("c", "time"))
        >>> nx.nn.min_pool(x, {"time": 2}, stride=2).array.tolist()
        [[1.0, 0.0], [1.0, 4.0]]
    """
    return _pool(x, window, stride, padding, _highest, lax.min, "min_pool")[0]


def mean_pool(
    x: NamedArray,
    window: Window,
    *,
    stride: Any = None,
    padding: Padding = "VALID",
    count_include_pad: bool = True,
) -> NamedArray:
    """The mean over each window (flax's ``avg_pool``); arguments as in `max_pool`.

    Args:
        count_include_pad: divide by the full window size, padded zeros included (flax's default,
            True), or by the number of real elements in each window (False).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 5.0, 2.0]), "time")
        >>> nx.nn.mean_pool(x, {"time": 2}, stride=2, padding="SAME").array.tolist()
        [3.0, 1.0]
        >>> nx.nn.mean_pool(x, {"time": 2}, stride=2, padding="SAME", count_include_pad=False).array.tolist()
        [3.0, 2.0]
    """
    total, idx, dims, steps, pads = _pool(x, window, stride, padding, _zero, lax.add, "mean_pool")
    if count_include_pad:
        return total / math.prod(dims)
    # the number of real elements per window: pool ones over the window axes only, then broadcast
    idx = sorted(idx)

    def sub(t):
        return tuple(t[i] for i in idx)

    ones = jnp.ones(tuple(x.axes[i].size for i in idx), total.dtype)
    counts = lax.reduce_window(ones, _zero(total.dtype), lax.add, sub(dims), sub(steps),
                               pads if isinstance(pads, str) else sub(pads))  # fmt: skip
    return total / _new(counts, sub(total.axes))
