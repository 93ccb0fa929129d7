"""haliax's array-level call forms, translated to namedax calls.

Each function here accepts the arguments haliax accepts and calls the namedax function that does
the job; none computes anything itself. What they translate: the axes-first ``dot(axis, *arrays)``,
partial orders with several ``...`` (`rearrange_for_partial_order`, haliax's rule), haliax's
einops-style ``rearrange`` strings (`namedax.unflatten_axis`, `namedax.rearrange`,
`namedax.flatten_axes` underneath), ``slice``'s two signatures, ``ds`` dynamic slices, ``tile``
with new axes, and ``tril``/``triu``'s axis order.

    >>> import namedax.compat.haliax as hax
    >>> x = hax.ones({"b": 2, "e": 3})
    >>> hax.rearrange(x, "b e -> e b").axes
    (Axis('e', 3), Axis('b', 2))
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from ... import ops as _ops
from ...core._axis import Axis, AxisSelector, axis_name
from ...core._axis import eliminate_axes as _eliminate_axes
from ...core._named_array import NamedArray, _is_named
from ...core._named_array import broadcast_axis as _broadcast_axis
from ...core._named_array import rearrange as _rearrange
from ...core._named_array import rename as _rename
from ...ops import _shape

# ---- partial orders -------------------------------------------------------------------------


def rearrange_for_partial_order(partial_order: Sequence[Any], axes: Sequence[Any]) -> tuple[Any, ...]:
    """Order ``axes`` to fit ``partial_order``, which may hold several ``...`` (haliax's rule).

    The listed axes keep their listed order; an unlisted axis goes into the ``...`` slot that was
    current when it was met in ``axes``: at first the first ``...``, and after each listed axis the
    first still empty ``...`` behind it (haliax's greedy rule). Without ``...`` the order must list
    every axis.

    Args:
        partial_order: axes or names, and ``...`` any number of times.
        axes: the axes (or names) to order.

    Returns:
        ``axes`` reordered (the elements of ``axes`` themselves).

    Raises:
        ValueError: a name is listed twice, is not in ``axes``, or (without ``...``) an axis is left out.

    Examples:
        >>> from namedax.compat.haliax.axis import rearrange_for_partial_order
        >>> rearrange_for_partial_order(("a", ..., "b", ...), ("b", "a", "c"))
        ('a', 'b', 'c')
    """
    axes = tuple(axes)
    names = [axis_name(a) for a in axes]
    if len(set(names)) != len(names):
        raise ValueError(f"rearrange_for_partial_order: {axes} holds an axis twice")
    listed = [axis_name(a) for a in partial_order if a is not Ellipsis]
    if len(set(listed)) != len(listed):
        raise ValueError(f"rearrange_for_partial_order: {tuple(partial_order)} lists an axis twice")
    missing = [n for n in listed if n not in names]
    if missing:
        raise ValueError(f"rearrange_for_partial_order: {missing} are not in {axes}")
    if Ellipsis not in partial_order:
        if len(listed) != len(names):
            raise ValueError(
                f"rearrange_for_partial_order: {tuple(partial_order)} leaves out axes of {axes}; use `...`"
            )
        return tuple(axes[names.index(n)] for n in listed)
    slots: list[list[str]] = [[] if a is Ellipsis else [axis_name(a)] for a in partial_order]

    def next_empty(start: int) -> int | None:
        return next((i for i in range(start, len(slots)) if not slots[i]), None)

    target = next_empty(0)
    for n in names:
        if n in listed:  # later unlisted axes go to the first still empty `...` after this one
            pos = next(i for i, s in enumerate(slots) if partial_order[i] is not Ellipsis and s == [n])
            after = next_empty(builtins.max(pos + 1, target or 0))
            target = target if after is None else after
        else:
            assert target is not None  # there is a `...`, and the first one was empty
            slots[target].append(n)
    return tuple(axes[names.index(n)] for n in sum(slots, []))


def eliminate_axes(axis_spec: Sequence[Any], axes: Any) -> tuple[Any, ...]:
    """haliax's ``eliminate_axes``: ``axis_spec`` without ``axes``; both may hold names as well as Axes
    (`namedax.eliminate_axes` wants sizes in ``axis_spec``).

    Raises:
        ValueError: an axis of ``axes`` is not in ``axis_spec``.

    Examples:
        >>> import namedax.compat.haliax as hax
        >>> hax.eliminate_axes(("a", hax.Axis("b", 2)), "a")
        (Axis('b', 2),)
    """
    spec = tuple(axis_spec) if isinstance(axis_spec, Sequence) and not isinstance(axis_spec, str) else (axis_spec,)
    if all(type(a) is Axis for a in spec):
        return _eliminate_axes(spec, axes)
    remove = [axis_name(a) for a in (axes if isinstance(axes, Sequence) and not isinstance(axes, str) else (axes,))]
    missing = [n for n in remove if n not in {axis_name(a) for a in spec}]
    if missing:
        raise ValueError(f"eliminate_axes: axes {missing} are not in {spec}")
    return tuple(a for a in spec if axis_name(a) not in remove)


def _full_order(x: NamedArray, order: Sequence[Any]) -> tuple[Any, ...]:
    """``order`` as namedax takes it: one ``...`` at most (several are resolved by haliax's rule)."""
    order = tuple(order)
    if order.count(Ellipsis) <= 1:
        return order
    return rearrange_for_partial_order(order, x.axes)


# ---- rearrange ------------------------------------------------------------------------------


def rearrange(x: NamedArray, *args: Any, **bindings: Any) -> NamedArray:
    """haliax's ``rearrange``: an order of axes (``...`` any number of times), or an einops-style string.

    The string form: ``"b e -> e b"`` (ordered: names bind the axes by position), ``"{e b} -> ... e"``
    (unordered: names are axis names), ``(name: a b)`` on the left splits axis ``name`` into ``a`` and
    ``b`` (sizes from ``bindings``, one may be inferred), on the right flattens ``a`` and ``b`` into a
    new axis ``name``. ``bindings`` give sizes (int), or the axis (`Axis`) or name (str) a group becomes.

    Args:
        x: the array.
        *args: one order (a sequence of selectors and ``...``) or one string.
        **bindings: sizes or names for the string form.

    Returns:
        The rearranged NamedArray (`namedax.rearrange`, `namedax.unflatten_axis`,
        `namedax.flatten_axes` underneath).

    Raises:
        ValueError: a malformed string, unknown or twice-used names, sizes that do not divide.

    Examples:
        >>> import namedax.compat.haliax as hax
        >>> x = hax.zeros({"b": 2, "h": 3, "w": 4})
        >>> hax.rearrange(x, "{h w} -> ... (e: w h)").axes
        (Axis('b', 2), Axis('e', 12))
        >>> hax.rearrange(x, "b (h: h1 h2) w -> b h1 h2 w", h1=3).axes
        (Axis('b', 2), Axis('h1', 3), Axis('h2', 1), Axis('w', 4))
    """
    if "expression" in bindings:
        args = (*args, bindings.pop("expression"))
    if "axes" in bindings:
        args = (*args, bindings.pop("axes"))
    if len(args) != 1:
        raise TypeError(f"rearrange: give one order or one string, got {len(args)} arguments")
    (spec,) = args
    if isinstance(spec, str):
        from ._rearrange_str import rearrange_string

        return rearrange_string(x, spec, bindings)
    if bindings:
        raise TypeError(f"rearrange: keyword bindings {sorted(bindings)} need the string form")
    return _rearrange(x, _full_order(x, spec))


# ---- dot ------------------------------------------------------------------------------------

_UNSET: Any = object()


def dot(*args: Any, axis: Any = _UNSET, out_axes: Sequence[Any] | None = None, **kwargs: Any) -> NamedArray:
    """haliax's ``dot``: ``dot(*arrays, axis=...)``, or the older axes-first ``dot(axis, *arrays)``.

    ``out_axes`` may hold several ``...`` (haliax's partial order); other keywords go to `namedax.dot`.

    Examples:
        >>> import namedax.compat.haliax as hax
        >>> x, w = hax.ones({"b": 2, "e": 3}), hax.ones({"e": 3, "o": 4})
        >>> hax.dot("e", x, w).axes == hax.dot(x, w, axis="e").axes
        True
    """
    if args and not _is_named(args[0]):
        if axis is not _UNSET:
            raise TypeError("dot: the axes are given both first (the axes-first form) and as `axis=`")
        axis, args = args[0], args[1:]
    if axis is not _UNSET:  # left out, namedax's dot raises its own error
        kwargs["axis"] = axis
    if out_axes is not None and tuple(out_axes).count(Ellipsis) > 1:
        out = _ops.dot(*args, **kwargs)
        return _rearrange(out, _full_order(out, out_axes))
    return _ops.dot(*args, out_axes=out_axes, **kwargs)


# ---- dynamic slices and indexing ------------------------------------------------------------


def _is_concrete_int(v: Any) -> bool:
    return not isinstance(v, jax.core.Tracer) and not _is_named(v)


class dslice:
    """haliax's dynamic slice ``ds(start, size)``: ``size`` elements from ``start``.

    With a concrete start, ``ds(start, size)`` *is* ``slice(start, start + size)``, so it works
    wherever a slice does (``x["t", ds(2, 3)]``). With a traced start it is a `dslice`, which
    `index`, `slice` and `updated_slice` read through `namedax.slice` (a `jax.lax.dynamic_slice`);
    plain ``x[...]`` indexing needs static slices.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> x = hax.named(jnp.arange(6), "t")
        >>> x["t", hax.ds(2, 3)].array
        Array([2, 3, 4], dtype=int32)
    """

    __slots__ = ("start", "size")
    start: Any
    size: int

    def __new__(cls, start: Any, size: int | Axis) -> Any:
        size = size.size if type(size) is Axis else size
        if _is_concrete_int(start):
            return builtins.slice(int(start), int(start) + int(size))
        self = object.__new__(cls)
        self.start, self.size = start, int(size)
        return self

    def to_slice(self) -> builtins.slice:
        return builtins.slice(self.start, self.start + self.size)

    @staticmethod
    def block(idx: Any, size: int) -> Any:
        """``ds(idx * size, size)``: block ``idx`` of blocks of ``size``."""
        return dslice(idx * size, size)

    def __repr__(self) -> str:
        return f"ds({self.start!r}, {self.size})"


ds = dslice


def index(x: NamedArray, selectors: Mapping[AxisSelector, Any]) -> NamedArray:
    """haliax's ``index(array, {axis: index})``: ``x[selectors]``, with traced `ds` starts read by
    `namedax.slice`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> x = hax.named(jnp.arange(6).reshape(2, 3), ("a", "b"))
        >>> hax.index(x, {"a": 1, "b": hax.ds(0, 2)}).array
        Array([3, 4], dtype=int32)
    """
    dyn = {k: v for k, v in selectors.items() if isinstance(v, dslice)}
    if dyn:
        x = _ops.slice(x, {k: v.start for k, v in dyn.items()}, {k: v.size for k, v in dyn.items()})
        selectors = {k: v for k, v in selectors.items() if k not in dyn}
    return x[dict(selectors)] if selectors else x


def slice(x: NamedArray, *args: Any, **kwargs: Any) -> NamedArray:
    """haliax's ``slice`` in both signatures, through `namedax.slice`.

    - ``slice(x, axis, new_axis=None, start=0, length=None)``: one axis; ``new_axis`` (an `Axis`,
      or a name with ``length``) names and sizes the result's axis.
    - ``slice(x, start={axis: start}, length={axis: int or Axis})``: several axes; an `Axis` length
      also renames the axis.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> x = hax.named(jnp.arange(10), "t")
        >>> hax.slice(x, "t", start=2, length=3).array
        Array([2, 3, 4], dtype=int32)
        >>> hax.slice(x, {"t": 4}, length={"t": hax.Axis("u", 2)}).axes
        (Axis('u', 2),)
    """
    first = args[0] if args else kwargs.get("start")
    if isinstance(first, Mapping):
        if args:
            kwargs = {"start": args[0], **kwargs} if "start" not in kwargs else kwargs
            if len(args) > 1:
                kwargs["length"] = args[1]
        start, length = kwargs.pop("start"), kwargs.pop("length", None)
        if kwargs or length is None:
            raise TypeError(f"slice: the mapping form is slice(x, start, length), got extra {sorted(kwargs)}")
    else:
        names = ("axis", "new_axis", "start", "length")
        bound = dict(zip(names, args, strict=False)) | kwargs
        ax, new_axis = bound["axis"], bound.get("new_axis")
        n = bound.get("length")
        if n is None:
            if new_axis is None or type(new_axis) is not Axis:
                raise ValueError("slice: give `length`, or `new_axis` as an Axis (its size is the length)")
            n = new_axis
        elif new_axis is not None:
            n = Axis(axis_name(new_axis), n.size if type(n) is Axis else n)
        start, length = {ax: bound.get("start", 0)}, {ax: n}
    dyn = {k: (v.start if isinstance(v, dslice) else v) for k, v in start.items()}
    out = _ops.slice(x, dyn, {k: (v.size if type(v) is Axis else v) for k, v in length.items()})
    renames = {k: v.name for k, v in length.items() if type(v) is Axis and v.name != axis_name(k)}
    return _rename(out, renames) if renames else out


# ---- shape ops whose haliax form differs ----------------------------------------------------


def tile(x: NamedArray, reps: Mapping[AxisSelector, int]) -> NamedArray:
    """haliax's ``tile``: axes of ``reps`` that ``x`` lacks are added first (size 1, then tiled).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> hax.tile(hax.named(jnp.arange(2), "h"), {"h": 2, "w": 3}).axes
        (Axis('w', 3), Axis('h', 4))
    """
    have = {a.name for a in x.axes}
    new = [Axis(axis_name(k), 1) for k in reps if axis_name(k) not in have]
    return _ops.tile(_broadcast_axis(x, new) if new else x, reps)


def _moved_last(fn: Any, name: str) -> Any:
    def op(x: NamedArray, axis1: AxisSelector, axis2: AxisSelector, k: int = 0) -> NamedArray:
        return fn(_rearrange(x, (..., axis1, axis2)), axis1, axis2, k)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (
        f"haliax's ``{name}``: `namedax.{name}` with ``axis1`` and ``axis2`` moved last, where haliax puts them.\n\n"
        "    Examples:\n"
        "        >>> import namedax.compat.haliax as hax\n"
        f"        >>> hax.{name}(hax.ones({{'a': 2, 'b': 3, 'c': 2}}), 'a', 'c').axes\n"
        "        (Axis('b', 3), Axis('a', 2), Axis('c', 2))\n"
    )
    return op


tril = _moved_last(_shape.tril, "tril")
triu = _moved_last(_shape.triu, "triu")


# ---- small names ----

amax = _ops.max  # haliax's other names for namedax functions
product = _ops.prod
flatten = _ops.ravel

# ----------------------------------------------------------------------------


def is_named_array(x: Any) -> bool:
    """Whether ``x`` is a `namedax.NamedArray` (haliax's ``is_named_array``).

    Examples:
        >>> import namedax.compat.haliax as hax
        >>> hax.is_named_array(hax.zeros({"a": 2})), hax.is_named_array(1.0)
        (True, False)
    """
    return _is_named(x)


def scalar(x: NamedArray) -> jax.Array:
    """The 0-d array of a NamedArray without axes (`NamedArray.scalar`); an error naming the axes otherwise.

    Examples:
        >>> import namedax.compat.haliax as hax
        >>> hax.scalar(hax.sum(hax.ones({"a": 3})))
        Array(3., dtype=float32)
    """
    return x.scalar()
