"""Shape ops by name: merge and split axes, take, roll, pad, triangles, top-k.

Each op resolves its axes once per signature (the array's axes and the static arguments) into a
positional plan, validated when it is built, and runs it as a `_kernels.kernel`: one jitted dispatch
when eager, the plain jax.numpy code when traced.

    >>> import namedax as nx
    >>> x = nx.zeros({"batch": 2, "h": 3, "w": 4})
    >>> y = nx.flatten_axes(x, ("h", "w"), "pixel")
    >>> y.shape
    {'batch': 2, 'pixel': 12}
    >>> nx.unflatten_axis(y, "pixel", {"h": 3, "w": 4}).shape
    {'batch': 2, 'h': 3, 'w': 4}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, SupportsInt, cast

import jax
import jax.numpy as jnp
import numpy as np

from ..core import _kernels
from ..core._axis import Axis, AxisSelection, AxisSelector, AxisSpec, axis_name, check_unique, to_axes, to_selectors
from ..core._named_array import NamedArray, _is_named, _new, axis_index_in


def _plan(op: str, build: Callable[..., Any], x: Any, *args: Any) -> Any:
    """The plan of an op for ``x`` and its static ``args``, cached under ``(op, x.axes, *args)``:
    ``build(x, *args)`` validates the arguments when it builds, so a cached plan is a valid one."""
    try:
        return _kernels.cached((op, x.axes, *args), build, x, *args)
    except (TypeError, AttributeError):  # not a NamedArray, a list or mapping argument, or a bad one
        if not _is_named(x):
            raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}") from None
        key = (op, x.axes, *[tuple(v) if type(v) is list else v for v in args])
        if _kernels.hashable(key):
            return _kernels.cached(key, build, x, *args)
        return build(x, *args)  # a mapping argument: planned every time


def _shape(axes: Sequence[Axis]) -> tuple[int, ...]:
    return tuple(a.size for a in axes)


def _reshaper(perm: tuple[int, ...], shape: tuple[int, ...]):
    def make():
        def f(a):
            if perm != tuple(range(len(perm))):
                a = jax.lax.transpose(a, perm)
            return jnp.reshape(a, shape)

        return f

    return _kernels.kernel(("shape.reshape", perm, shape), make)


def _int(v, what: str, op: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise TypeError(f"{op}: {what} must be an int, got {v!r}")
    return int(v)


# ---------------------------------------------------------------------------------------------
# Merging and splitting axes
# ---------------------------------------------------------------------------------------------


def flatten_axes(x: NamedArray, old_axes: AxisSelection, new_axis: AxisSelector) -> NamedArray:
    """Merge several axes into one (row-major: the last listed varies fastest).

    The old axes are first brought together, in the given order, at the position of the first of
    them in ``x``; the merged axis takes their place.

    Args:
        x: the array.
        old_axes: the axes to merge (one selector or several; no axes adds a size-1 axis in front).
        new_axis: the merged axis: a name, or an `Axis` whose size is the product of the old sizes.

    Returns:
        ``x`` with ``old_axes`` replaced by ``new_axis``.

    Raises:
        AxisNotFoundError: an old axis is not in ``x``.
        ValueError: an axis is listed twice, ``new_axis``'s size is not the product, or its name is
            already taken by another axis of ``x``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(6).reshape(2, 3), ("a", "b"))
        >>> nx.flatten_axes(x, ("b", "a"), "ba").array
        Array([0, 3, 1, 4, 2, 5], dtype=int32)
    """
    k, out = _plan("flatten_axes", _flatten_plan, x, old_axes, new_axis)
    return _new(k(x.array), out)


def _flatten_plan(x, old_axes, new_axis):
    idx = [axis_index_in(x.axes, s, "flatten_axes") for s in to_selectors(old_axes, "flatten_axes")]
    if len(set(idx)) != len(idx):
        raise ValueError(f"flatten_axes: an axis is listed twice in {old_axes!r}")
    size = math.prod(x.axes[i].size for i in idx)
    new = Axis(axis_name(new_axis, "flatten_axes"), size)
    if type(new_axis) is Axis and new_axis.size != size:
        old = tuple(x.axes[i] for i in idx)
        raise ValueError(f"flatten_axes: {old} have {size} elements in all, but {new_axis} was given")
    first = min(idx, default=0)
    rest = [i for i in range(first, x.ndim) if i not in idx]
    perm = tuple(range(first)) + tuple(idx) + tuple(rest)
    out = x.axes[:first] + (new,) + tuple(x.axes[i] for i in rest)
    check_unique(out, "flatten_axes")
    return _reshaper(perm, _shape(out)), out


def unflatten_axis(x: NamedArray, axis: AxisSelector, new_axes: AxisSpec | Axis) -> NamedArray:
    """Split one axis into several, in place (row-major: the last new axis varies fastest).

    Args:
        x: the array.
        axis: the axis to split.
        new_axes: the new axes with their sizes (an `Axis`, a sequence of them or a ``{name: size}``
            mapping); their sizes multiply to the axis's size. No axes removes a size-1 axis.

    Returns:
        ``x`` with ``axis`` replaced by ``new_axes``.

    Raises:
        AxisNotFoundError: ``axis`` is not in ``x``.
        ValueError: the sizes do not multiply to the axis's size, or a new name is already taken.
        TypeError: a new axis is given without its size.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(6), "t")
        >>> nx.unflatten_axis(x, "t", {"a": 2, "b": 3}).array
        Array([[0, 1, 2],
               [3, 4, 5]], dtype=int32)
    """
    k, out = _plan("unflatten_axis", _unflatten_plan, x, axis, new_axes)
    return _new(k(x.array), out)


def _unflatten_plan(x, axis, new_axes):
    i = axis_index_in(x.axes, axis, "unflatten_axis")
    new = to_axes(new_axes)
    size = math.prod(a.size for a in new)
    if size != x.axes[i].size:
        raise ValueError(
            f"unflatten_axis: cannot split {x.axes[i]} into {new}: their sizes multiply to {size}, not {x.axes[i].size}"
        )
    out = x.axes[:i] + new + x.axes[i + 1 :]
    check_unique(out, "unflatten_axis")
    return _reshaper(tuple(range(x.ndim)), _shape(out)), out


def split(x: NamedArray, axis: AxisSelector, new_axes: Sequence[Axis | int]) -> list[NamedArray]:
    """Cut an array along an axis into consecutive pieces.

    Args:
        x: the array.
        axis: the axis to cut.
        new_axes: one entry per piece, the axis that replaces ``axis`` in it: an `Axis` (any name, as
            in haliax) or an int (the piece's size; the name is kept). The sizes sum to the axis's size.

    Returns:
        A list of NamedArrays, one per piece.

    Raises:
        AxisNotFoundError: ``axis`` is not in ``x``.
        ValueError: the sizes do not sum to the axis's size, or a new name is already taken.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(5), "t")
        >>> a, b = nx.split(x, "t", [nx.Axis("head", 2), 3])
        >>> a.array, b.axes
        (Array([0, 1], dtype=int32), (Axis('t', 3),))
    """
    k, outs = _plan("split", _split_plan, x, axis, new_axes)
    return [_new(r, o) for r, o in zip(k(x.array), outs, strict=True)]


def _split_plan(x, axis, new_axes):
    i = axis_index_in(x.axes, axis, "split")
    old = x.axes[i]
    sizes = [p.size if type(p) is Axis else _int(p, "a piece size", "split") for p in new_axes]
    what = f"split: cannot cut axis {old.name!r} of size {old.size} into pieces of sizes {sizes}"
    if not sizes:
        raise ValueError(f"{what}: give at least one piece")
    if any(n < 0 for n in sizes):
        raise ValueError(f"{what}: a piece size must be >= 0")
    if sum(sizes) != old.size:
        raise ValueError(f"{what}: they sum to {sum(sizes)}, not {old.size}")
    pieces = [p if type(p) is Axis else Axis(old.name, n) for p, n in zip(new_axes, sizes, strict=True)]
    outs = tuple(x.axes[:i] + (p,) + x.axes[i + 1 :] for p in pieces)
    for o in outs:
        check_unique(o, "split")
    offsets = tuple(np.cumsum([p.size for p in pieces])[:-1].tolist())
    return _kernels.kernel(("shape.split", i, offsets), lambda: lambda a: tuple(jnp.split(a, offsets, axis=i))), outs


def unbind(x: NamedArray, axis: AxisSelector) -> list[NamedArray]:
    """The slices of an array along an axis, one per element (haliax's ``unbind``).

    Args:
        x: the array.
        axis: the axis to unbind.

    Returns:
        A list of ``axis``'s size NamedArrays, each with the axes of ``x`` but ``axis``.

    Raises:
        AxisNotFoundError: ``axis`` is not in ``x``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(6).reshape(2, 3), ("a", "b"))
        >>> [r.array.tolist() for r in nx.unbind(x, "a")]
        [[0, 1, 2], [3, 4, 5]]
    """
    k, out = _plan("unbind", _unbind_plan, x, axis)
    return [_new(r, out) for r in k(x.array)]


def _unbind_plan(x, axis):
    i = axis_index_in(x.axes, axis, "unbind")
    k = _kernels.kernel(("shape.unbind", i), lambda: lambda a: tuple(jnp.unstack(a, axis=i)))
    return k, x.axes[:i] + x.axes[i + 1 :]


# ---------------------------------------------------------------------------------------------
# Moving elements along an axis
# ---------------------------------------------------------------------------------------------


def roll(x: NamedArray, shift: Any, axis: AxisSelection) -> NamedArray:
    """Roll elements along one or several axes (`jax.numpy.roll` by name).

    Args:
        x: the array.
        shift: an int, or one per axis when several axes are given; traced or array shifts are
            fine (a Python int compiles one kernel per value, as `jax.numpy.roll` does).
        axis: the axis or axes to roll along.

    Returns:
        ``x`` rolled, with the same axes.

    Raises:
        AxisNotFoundError: an axis is not in ``x``.
        ValueError: an axis is listed twice, or the number of shifts differs from the number of axes.
        TypeError: a shift is not an integer.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> nx.roll(nx.named(jnp.arange(4), "t"), 1, "t").array
        Array([3, 0, 1, 2], dtype=int32)
    """
    several = isinstance(shift, tuple | list)
    shifts = shift if several else (shift,)
    if all(isinstance(s, int | np.integer) for s in shifts):  # static: the shift is part of the plan
        k = _plan("roll", _roll_plan, x, axis, shift)
        return _new(k(x.array), x.axes)
    if not all(jnp.issubdtype(jnp.result_type(s), jnp.integer) for s in shifts):
        raise TypeError(f"roll: shift must be an int, ints or an integer array, got {shift!r}")
    k = _plan("roll", _roll_plan, x, axis, ("dynamic", several, len(shifts) if several else int(np.size(shift))))
    return _new(k(x.array, shift), x.axes)


def _roll_plan(x, axis, shift):
    idx = tuple(axis_index_in(x.axes, s, "roll") for s in to_selectors(axis, "roll"))
    if len(set(idx)) != len(idx):
        raise ValueError(f"roll: an axis is listed twice in {axis!r}")
    dynamic = type(shift) is tuple and shift[:1] == ("dynamic",)
    several, n = shift[1:] if dynamic else (isinstance(shift, tuple | list), np.size(shift))
    if (several or n != 1) and n != len(idx):
        raise ValueError(f"roll: {n} shifts for {len(idx)} axes {tuple(x.axes[i] for i in idx)}")
    ax = idx[0] if type(axis) is str or type(axis) is Axis else idx
    if dynamic:
        return _kernels.kernel(("shape.roll_dynamic", ax), lambda: lambda a, s: jnp.roll(a, s, axis=ax))
    s = tuple(map(int, shift)) if several else int(cast(SupportsInt, shift))  # one shift: a number
    return _kernels.kernel(("shape.roll", s, ax), lambda: lambda a: jnp.roll(a, s, axis=ax))


def take(
    x: NamedArray, axis: AxisSelector, index: Any, *, mode: str | None = None, fill_value: Any = None
) -> NamedArray:
    """Pick elements along an axis by integer index (`jax.numpy.take` by name).

    - an int (or a 0-d integer array) removes the axis;
    - a plain 1-D integer array keeps the axis's name, with the index's length;
    - an integer NamedArray puts its axes in place of the taken axis. An index axis that ``x``
      also has (other than ``axis``) is batched, as in haliax: element ``i`` of it picks from
      element ``i`` of ``x``.

    Args:
        x: the array.
        axis: the axis to take from.
        index: the indices, as above.
        mode: for out-of-bound indices, as in `jax.numpy.take`.
        fill_value: for out-of-bound indices with ``mode="fill"``: a scalar, or a concrete 0-d
            array (taken as its Python value). Like `jax.numpy.take`, which makes it a static
            argument, it cannot be traced.

    Returns:
        The picked elements, with the axes described above.

    Raises:
        AxisNotFoundError: ``axis`` is not in ``x``.
        IndexError: an int index is out of range (unless ``mode`` is ``"clip"`` or ``"fill"``).
        ValueError: a batched axis has another size in the index than in ``x``.
        TypeError: the index is not of integer dtype, or is a plain array of rank 2 or more; or
            ``fill_value`` is not a scalar, or is traced.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([[0.1, 0.9], [0.7, 0.3]]), ("batch", "vocab"))
        >>> label = nx.named(jnp.array([1, 0]), "batch")
        >>> nx.take(logits, "vocab", label).array  # one pick per batch element
        Array([0.9, 0.7], dtype=float32)
        >>> nx.take(logits, "vocab", jnp.array([1, 1, 0])).shape
        {'batch': 2, 'vocab': 3}
    """
    if fill_value is not None and type(fill_value) not in (int, float, bool, complex):
        fill_value = _static_fill_value(fill_value)
    if type(index) is int:
        k, out, size = _plan("take", _take_plan, x, axis, int, mode, fill_value)
        if not -size <= index < size and mode not in _OUT_OF_BOUNDS_MODES:
            raise IndexError(f"take: index {index} is out of range for axis {axis_name(axis)!r} of size {size}")
        return _new(k(x.array, index), out)
    if isinstance(index, jax.Array):
        ix, sig = index, (index.dtype, index.shape)
    elif _is_named(index):
        ix, sig = index.array, (index.axes, index.dtype)
    else:
        ix = index if hasattr(index, "dtype") else np.asarray(index)
        sig = int if isinstance(ix, np.integer) else (ix.dtype, np.shape(ix))
    k, out, size = _plan("take", _take_plan, x, axis, sig, mode, fill_value)
    if sig is int and not -size <= index < size and mode not in _OUT_OF_BOUNDS_MODES:
        raise IndexError(f"take: index {index} is out of range for axis {axis_name(axis)!r} of size {size}")
    return _new(k(x.array, ix), out)


_OUT_OF_BOUNDS_MODES = ("clip", "fill")  # jnp.take's modes that define out-of-range indices


def _static_fill_value(v: Any) -> Any:
    """``take``'s ``fill_value`` as a hashable Python scalar: `jax.numpy.take` makes it static, so a
    concrete 0-d array is read (a jnp/np array is unhashable), a traced or non-scalar one refused."""
    shape = np.shape(v)
    if shape != ():
        raise TypeError(f"take: `fill_value` must be a scalar, got an array of shape {shape}")
    try:
        return v.item() if hasattr(v, "item") else v
    except jax.errors.ConcretizationTypeError:
        raise TypeError(
            "take: `fill_value` must be a concrete scalar, got a traced value; jax.numpy.take takes it "
            "as a static argument, so use nx.where(index_in_range, nx.take(..., mode='clip'), fill) instead"
        ) from None


def _take_plan(x, axis, sig, mode, fill_value):
    """sig: ``int``; ``(dtype, shape)`` of a plain array; ``(axes, dtype)`` of a NamedArray index."""
    i = axis_index_in(x.axes, axis, "take")
    ax = x.axes[i]
    kw = dict(mode=mode, fill_value=fill_value)
    plain = _kernels.kernel(("shape.take", i, mode, fill_value), lambda: lambda a, ix: jnp.take(a, ix, axis=i, **kw))
    if sig is int:
        return plain, x.axes[:i] + x.axes[i + 1 :], ax.size
    if type(sig[0]) is tuple:  # a NamedArray index
        idx_axes, dtype = sig
        if not jnp.issubdtype(dtype, jnp.integer):
            raise TypeError(f"take: a NamedArray index must be of integer dtype, got {dtype}")
        return (*_take_named(x.axes, i, idx_axes, kw), ax.size)
    dtype, shape = sig
    if not jnp.issubdtype(dtype, jnp.integer):  # bool is not an integer dtype here
        raise TypeError(f"take: the index for {ax} must be an int or an integer array, got dtype {dtype}")
    if len(shape) > 1:
        raise TypeError(f"take: a plain index array must be 0-D or 1-D, got shape {shape}; name its axes with nx.named")
    return plain, x.axes[:i] + tuple(Axis(ax.name, n) for n in shape) + x.axes[i + 1 :], ax.size


def _take_named(axes, i, idx_axes, kw):
    others = {a.name: a for j, a in enumerate(axes) if j != i}
    for a in idx_axes:
        if a.name in others and others[a.name].size != a.size:
            raise ValueError(f"take: index axis {a} is batched against {others[a.name]} of the array: sizes differ")
    new = tuple(a for a in idx_axes if a.name not in others)
    out = axes[:i] + new + axes[i + 1 :]
    if len(new) == len(idx_axes):  # nothing batched: a plain take
        key = ("shape.take", i, kw["mode"], kw["fill_value"])
        return _kernels.kernel(key, lambda: lambda a, ix: jnp.take(a, ix, axis=i, **kw)), out
    # batched: take_along_axis on a layout where x has size-1 dims for the new axes and the index
    # has them for x's own axes, the taken position p in between
    p = i + len(new)
    names = [a.name for a in out]
    pos = [names.index(a.name) for a in idx_axes]
    perm = tuple(sorted(range(len(idx_axes)), key=lambda j: pos[j]))
    have = {a.name for a in idx_axes}
    ishape = [a.size if a.name in have else 1 for a in out]
    ishape.insert(p, 1)
    xshape = _shape(axes[:i]) + (1,) * len(new) + _shape(axes[i:])

    def make():
        def f(a, ix):
            if perm != tuple(range(len(perm))):
                ix = jax.lax.transpose(ix, perm)
            r = jnp.take_along_axis(jnp.reshape(a, xshape), jnp.reshape(ix, ishape), axis=p, **kw)
            return jnp.squeeze(r, p)

        return f

    return _kernels.kernel(("shape.take_batched", axes, i, idx_axes, kw["mode"], kw["fill_value"]), make), out


def pad(
    x: NamedArray,
    pad_width: Mapping[AxisSelector, int | tuple[int, int]],
    mode: str = "constant",
    *,
    constant_values: Any = 0,
    **kwargs: Any,
) -> NamedArray:
    """Pad axes by name (`jax.numpy.pad`); every padded axis keeps its name with its new size.

    Args:
        x: the array.
        pad_width: ``{axis: (before, after)}``, or ``{axis: n}`` for ``n`` on both sides; axes not
            listed are not padded.
        mode: one of jax.numpy.pad's modes (``"constant"``, ``"edge"``, ``"reflect"``, ...).
        constant_values: the fill value for ``mode="constant"`` (a scalar, traced or not).
        **kwargs: jax.numpy.pad's other options for the mode (``end_values``, ``reflect_type``,
            ``stat_length``), as scalars.

    Returns:
        ``x`` padded.

    Raises:
        AxisNotFoundError: an axis is not in ``x``.
        ValueError: a negative width, an unknown mode, or ``constant_values`` with another mode.
        TypeError: ``pad_width`` is not a mapping, or a width is not an int or a pair of ints.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1, 2]), "t")
        >>> nx.pad(x, {"t": (1, 2)}, constant_values=9).array
        Array([9, 1, 2, 9, 9], dtype=int32)
        >>> nx.pad(x, {"t": 1}, mode="edge").array
        Array([1, 1, 2, 2], dtype=int32)
    """
    if not isinstance(pad_width, Mapping):
        raise TypeError(f"pad: pad_width must be a {{axis: (before, after)}} mapping, got {pad_width!r}")
    opts = tuple(sorted(kwargs.items())) if kwargs else ()
    k, out = _plan("pad", _pad_plan, x, tuple(pad_width.items()), mode, opts)
    if mode == "constant":
        return _new(k(x.array, constant_values), out)
    if not (isinstance(constant_values, int | float) and constant_values == 0):
        raise ValueError(f"pad: constant_values is for mode='constant', not {mode!r}")
    return _new(k(x.array), out)


_PAD_MODES = frozenset(
    {"constant", "edge", "linear_ramp", "maximum", "mean", "median", "minimum", "reflect", "symmetric", "wrap", "empty"}
)


def _pad_plan(x, items, mode, opts):
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; use one of {sorted(_PAD_MODES)}")
    widths = [(0, 0)] * x.ndim
    for sel, w in items:
        j = axis_index_in(x.axes, sel, "pad")
        pair = (w, w) if isinstance(w, int | np.integer) else tuple(w) if isinstance(w, tuple | list) else ()
        if len(pair) != 2:
            raise TypeError(f"pad: the width for {x.axes[j]} must be an int or a (before, after) pair, got {w!r}")
        pair = tuple(_int(v, "a pad width", "pad") for v in pair)
        if min(pair) < 0:
            raise ValueError(f"pad: negative pad width {pair} for {x.axes[j]}")
        widths[j] = pair
    widths = tuple(widths)
    out = tuple(Axis(a.name, a.size + b + e) for a, (b, e) in zip(x.axes, widths, strict=True))
    kw = dict(opts)
    if mode == "constant":  # the fill value is an argument: it may be traced

        def make() -> Callable:
            return lambda a, c: jnp.pad(a, widths, mode="constant", constant_values=c, **kw)
    else:

        def make() -> Callable:
            return lambda a: jnp.pad(a, widths, mode=mode, **kw)

    return _kernels.kernel(("shape.pad", widths, mode, opts), make), out


# ---------------------------------------------------------------------------------------------
# Triangles and top-k
# ---------------------------------------------------------------------------------------------


def _tri_plan(x, axis1, axis2, k, lower):
    op = "tril" if lower else "triu"
    k = _int(k, "k", op)
    i1, i2 = axis_index_in(x.axes, axis1, op), axis_index_in(x.axes, axis2, op)
    if i1 == i2:
        raise ValueError(f"{op}: axis1 and axis2 are both {x.axes[i1]}; give two different axes")
    n1, n2 = x.axes[i1].size, x.axes[i2].size

    def make():
        def f(a):
            # as jnp.tril / jnp.triu: a (rows, cols) mask, broadcast onto the two axes
            mask = jax.lax.broadcast_in_dim(jnp.tri(n1, n2, k if lower else k - 1, dtype=bool), a.shape, (i1, i2))
            zero = jnp.zeros_like(a)
            return jax.lax.select(mask, a, zero) if lower else jax.lax.select(mask, zero, a)

        return f

    return _kernels.kernel(("shape.tri", lower, i1, i2, n1, n2, k), make)


def tril(x: NamedArray, axis1: AxisSelector, axis2: AxisSelector, k: int = 0) -> NamedArray:
    """Zero the elements above the ``k``-th diagonal of the (``axis1``: rows, ``axis2``: columns)
    planes (`jax.numpy.tril` by name). Unlike haliax's, the axes keep their order.

    Args:
        x: the array.
        axis1: the rows axis.
        axis2: the columns axis.
        k: the diagonal: 0 the main one, positive above it, negative below.

    Returns:
        ``x`` with the elements above the diagonal zeroed, with the same axes.

    Raises:
        AxisNotFoundError: an axis is not in ``x``.
        ValueError: ``axis1`` and ``axis2`` are the same axis.

    Examples:
        >>> import namedax as nx
        >>> nx.tril(nx.ones({"i": 3, "j": 3}), "i", "j").array
        Array([[1., 0., 0.],
               [1., 1., 0.],
               [1., 1., 1.]], dtype=float32)
    """
    kern = _plan("tril", _tri_plan, x, axis1, axis2, k, True)
    return _new(kern(x.array), x.axes)


def triu(x: NamedArray, axis1: AxisSelector, axis2: AxisSelector, k: int = 0) -> NamedArray:
    """Zero the elements below the ``k``-th diagonal of the (``axis1``: rows, ``axis2``: columns)
    planes (`jax.numpy.triu` by name). Unlike haliax's, the axes keep their order.

    Args:
        x: the array.
        axis1: the rows axis.
        axis2: the columns axis.
        k: the diagonal: 0 the main one, positive above it, negative below.

    Returns:
        ``x`` with the elements below the diagonal zeroed, with the same axes.

    Raises:
        AxisNotFoundError: an axis is not in ``x``.
        ValueError: ``axis1`` and ``axis2`` are the same axis.

    Examples:
        >>> import namedax as nx
        >>> nx.triu(nx.ones({"i": 2, "j": 3}), "i", "j", k=1).array
        Array([[0., 1., 1.],
               [0., 0., 1.]], dtype=float32)
    """
    kern = _plan("triu", _tri_plan, x, axis1, axis2, k, False)
    return _new(kern(x.array), x.axes)


def top_k(
    x: NamedArray, axis: AxisSelector, k: int, new_axis: AxisSelector | None = None
) -> tuple[NamedArray, NamedArray]:
    """The ``k`` largest elements along an axis, in descending order, and their indices.

    Args:
        x: the array.
        axis: the axis to search.
        k: how many to keep, ``0 <= k <= `` the axis's size.
        new_axis: the name (or `Axis` of size ``k``) of the result's axis; by default ``axis``'s
            name, resized to ``k``.

    Returns:
        ``(values, indices)``: the axis replaced, in place, by the new one; indices are int32.

    Raises:
        AxisNotFoundError: ``axis`` is not in ``x``.
        ValueError: ``k`` is out of range, ``new_axis``'s size is not ``k`` or its name is taken.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([3, 1, 4, 1, 5]), "t")
        >>> values, indices = nx.top_k(x, "t", 2, new_axis="best")
        >>> values.array, indices.array, values.axes
        (Array([5, 4], dtype=int32), Array([4, 2], dtype=int32), (Axis('best', 2),))
    """
    kern, out = _plan("top_k", _top_k_plan, x, axis, k, new_axis)
    v, ix = kern(x.array)
    return _new(v, out), _new(ix, out)


def _top_k_plan(x, axis, k, new_axis):
    k = _int(k, "k", "top_k")
    i = axis_index_in(x.axes, axis, "top_k")
    if not 0 <= k <= x.axes[i].size:
        raise ValueError(f"top_k: k={k} is out of range for {x.axes[i]}")
    if type(new_axis) is Axis and new_axis.size != k:
        raise ValueError(f"top_k: new_axis {new_axis} must have size k={k}")
    new = Axis(x.axes[i].name if new_axis is None else axis_name(new_axis), k)
    out = x.axes[:i] + (new,) + x.axes[i + 1 :]
    check_unique(out, "top_k")

    def make():
        def f(a):
            v, ix = jax.lax.top_k(jnp.moveaxis(a, i, -1), k)
            return jnp.moveaxis(v, -1, i), jnp.moveaxis(ix, -1, i)

        return f

    return _kernels.kernel(("shape.top_k", i, k), make), out
