"""Indexing by name: ``x["batch", 3]``, ``x[{"batch": 3, "embed": slice(0, 8)}]``, gathers with
integer NamedArrays, and the functional updates of ``x.at[...]``.

Every form translates to a positional index (`_positional_index`) plus the result's axes: an integer
removes its axis, a slice keeps it resized, and integer NamedArrays gather, their axes (broadcast
together by name) taking the place numpy's advanced indexing gives them.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    >>> x["batch", 1].array
    Array([3., 4., 5.], dtype=float32)
    >>> x.at["embed", 0].set(9.0).array.tolist()
    [[9.0, 1.0, 2.0], [9.0, 4.0, 5.0]]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _kernels
from ._axis import Axis, AxisSelector, check_unique
from ._named_array import NamedArray, _broadcast_to, _is_named, _new, aligner, axis_index_in, check_operand, union_of


def _index_pairs(idx, op: str) -> list[tuple[AxisSelector, Any]]:
    if isinstance(idx, Mapping):
        return list(idx.items())
    if type(idx) is tuple and len(idx) % 2 == 0 and len(idx) > 0:
        pairs = list(zip(idx[0::2], idx[1::2], strict=True))
        if all(type(k) is str or type(k) is Axis for k, _ in pairs):
            return pairs
    raise TypeError(
        f"{op}: index by name, as x['batch', 3], x['batch', 1:3, 'embed', 0] or x[{{'batch': 3}}]; "
        f"got {idx!r}"
    )


def getitem(x: NamedArray, idx) -> NamedArray:
    """``x[idx]``: see `NamedArray.__getitem__`."""
    pos, out_axes = _positional_index(x.axes, idx, "indexing")
    if not _kernels.is_eager():
        return _new(x.array[pos], out_axes)  # traced: exactly the positional jaxpr
    # eager: one jitted kernel per index structure; integers and index arrays are arguments,
    # so a loop over x[axis, i] compiles once (and beats eager jnp indexing several times over)
    static = tuple((p.start, p.stop, p.step) if type(p) is slice else None for p in pos)
    k = _kernels.kernel(("getitem", static), _getitem_fn, static)
    return _new(k(x.array, *[p for p in pos if type(p) is not slice]), out_axes)


def _getitem_fn(static: tuple) -> Callable:
    def f(a, *dyn):
        it = iter(dyn)
        return a[tuple(slice(*p) if p is not None else next(it) for p in static)]

    return f


_BOUND = (int, type(None))


def _static_slice(ix: slice, ax: Axis, op: str) -> slice:
    try:
        return slice(*(None if v is None else operator.index(v) for v in (ix.start, ix.stop, ix.step)))
    except TypeError:  # a float, or a traced value (a slice's size must be known when tracing)
        raise TypeError(
            f"{op}: the slice {ix} for axis {ax.name!r} needs static int bounds (a traced start goes in "
            "jax.lax.dynamic_slice_in_dim, or index with an integer array)"
        ) from None


def _checked_int(n: int, ax: Axis, op: str) -> int:
    """A concrete integer index, negative ones counted from the end; out of range is an IndexError."""
    if not -ax.size <= n < ax.size:
        raise IndexError(f"{op}: index {n} is out of range for axis {ax.name!r} of size {ax.size}")
    return n + ax.size if n < 0 else n


def _positional_index(axes: tuple[Axis, ...], idx, op: str) -> tuple[tuple, tuple[Axis, ...]]:
    """Translate a by-name index to a positional one, and the axes of the result.

    Integers remove their axis, slices keep it resized, a 1-D plain integer array keeps the axis name
    with its new length, and integer NamedArrays gather: their axes (broadcast together by name) take
    the place numpy's advanced indexing gives them.
    """
    pairs = _index_pairs(idx, op)
    pos: list[Any] = [slice(None)] * len(axes)
    kinds: list[str] = ["keep"] * len(axes)  # keep | int | adv
    adv: dict[int, tuple[Any, tuple[Axis, ...]]] = {}
    for sel, ix in pairs:
        i = axis_index_in(axes, sel, op)
        if kinds[i] != "keep" or pos[i] != slice(None):
            raise ValueError(f"{op}: axis {axes[i].name!r} is indexed twice")
        ax = axes[i]
        if isinstance(ix, slice):
            if not (type(ix.start) in _BOUND and type(ix.stop) in _BOUND and type(ix.step) in _BOUND):
                ix = _static_slice(ix, ax, op)  # numpy ints, concrete 0-d arrays: hashable ints
            if ix.step == 0:
                raise ValueError(f"{op}: the slice {ix} for axis {ax.name!r} has step 0")
            pos[i] = ix
            axes_i = Axis(ax.name, len(range(*ix.indices(ax.size))))
            kinds[i] = "slice"
            adv[i] = (None, (axes_i,))
        elif isinstance(ix, int | np.integer) and not isinstance(ix, bool):
            pos[i] = _checked_int(int(ix), ax, op)
            kinds[i] = "int"
        elif _is_named(ix):
            ix = cast(NamedArray, ix)
            if not jnp.issubdtype(ix.dtype, jnp.integer):
                raise TypeError(
                    f"{op}: a NamedArray index must be of integer dtype, got {ix.dtype} for axis {ax.name!r}"
                )
            adv[i] = (ix.array, ix.axes)
            kinds[i] = "adv"
        else:
            arr: Any = ix if hasattr(ix, "shape") else np.asarray(ix)
            if arr.dtype == bool or not jnp.issubdtype(arr.dtype, jnp.integer):
                raise TypeError(f"{op}: index for axis {ax.name!r} must be an int, slice or integer array, got {ix!r}")
            if arr.ndim == 0:
                # a concrete 0-d array is an int (checked); only a traced one is clamped, as in jax
                pos[i] = arr if isinstance(arr, jax.core.Tracer) else _checked_int(int(arr), ax, op)
                kinds[i] = "int"
            elif arr.ndim == 1:
                adv[i] = (arr, (Axis(ax.name, arr.shape[0]),))
                kinds[i] = "adv"
            else:
                raise TypeError(
                    f"{op}: a plain index array for axis {ax.name!r} must be 1-D, got shape {arr.shape}; "
                    "name its axes with nx.named(index, axes)"
                )
    adv_pos = [i for i, k in enumerate(kinds) if k == "adv"]
    if not adv_pos:
        out = tuple(adv[i][1][0] if kinds[i] == "slice" else a for i, a in enumerate(axes) if kinds[i] != "int")
        return tuple(pos), out
    idx_axes = union_of(op, [adv[i][1] for i in adv_pos])
    kept = [adv[i][1][0] if kinds[i] == "slice" else a for i, a in enumerate(axes) if kinds[i] in ("keep", "slice")]
    clash = {a.name for a in kept} & {a.name for a in idx_axes}
    if clash:
        raise ValueError(
            f"{op}: index axes {sorted(clash)} are also axes of the indexed array; "
            "rename the index's axes, or map over them with nx.vmap"
        )
    for i in adv_pos:
        arr, a_axes = adv[i]
        al = aligner(a_axes, idx_axes)
        arr = jnp.asarray(arr)
        pos[i] = al(arr) if al is not None else arr
    # numpy: advanced (and, among them, integer) indices that are adjacent put the index axes in place
    special = [i for i, k in enumerate(kinds) if k in ("adv", "int")]
    adjacent = special == list(range(special[0], special[-1] + 1))
    before = [adv[i][1][0] if kinds[i] == "slice" else axes[i] for i in range(special[0]) if kinds[i] != "int"]
    if adjacent:
        after = [adv[i][1][0] if kinds[i] == "slice" else axes[i] for i in range(special[-1] + 1, len(axes))]
        out = tuple(before) + idx_axes + tuple(after)
    else:
        out = idx_axes + tuple(kept)
    check_unique(out, op)
    return tuple(pos), out


class _AtIndexer:
    __slots__ = ("_x",)

    def __init__(self, x: NamedArray):
        self._x = x

    def __getitem__(self, idx) -> _AtUpdate:
        return _AtUpdate(self._x, idx)


class _AtUpdate:
    __slots__ = ("_x", "_pos", "_axes")

    def __init__(self, x: NamedArray, idx):
        self._x = x
        self._pos, self._axes = _positional_index(x.axes, idx, ".at[]")

    def _value(self, v, op: str):
        if _is_named(v):  # the value's axes must be among the indexed selection's
            return _broadcast_to(v, self._axes, f".at[].{op}").array
        check_operand(v, f".at[].{op}")
        return v

    def get(self, **kwargs) -> NamedArray:
        return _new(self._x.array.at[self._pos].get(**kwargs), self._axes)

    def _update(self, op: str, v, kwargs) -> NamedArray:
        ref = self._x.array.at[self._pos]
        return _new(getattr(ref, op)(self._value(v, op), **kwargs), self._x.axes)

    def set(self, v, **kwargs) -> NamedArray:
        return self._update("set", v, kwargs)

    def add(self, v, **kwargs) -> NamedArray:
        return self._update("add", v, kwargs)

    def multiply(self, v, **kwargs) -> NamedArray:
        return self._update("multiply", v, kwargs)

    def min(self, v, **kwargs) -> NamedArray:
        return self._update("min", v, kwargs)

    def max(self, v, **kwargs) -> NamedArray:
        return self._update("max", v, kwargs)
