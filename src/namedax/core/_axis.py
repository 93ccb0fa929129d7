"""Axes: a name and a size.

An `Axis` is the unit every namedax function speaks in. A *selector* picks one axis of an array by
`Axis` or by name; a *spec* lists axes with their sizes, as a sequence of `Axis` or a
``{name: size}`` mapping. The helpers here resolve and combine them, and raise errors that name the
axes involved.

Axis is a tuple subclass rather than a dataclass: axes tuples are the keys of every per-signature cache
in namedax, so hashing them sits on the hot path of every eager op, and a tuple hashes in C.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TypeAlias, final

import numpy as np

try:  # namedtuple's C field accessor (a property over itemgetter where it is missing)
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from operator import itemgetter as _itemgetter

    def _tuplegetter(i, doc):
        return property(_itemgetter(i), doc=doc)


def _no_arithmetic(self, other):
    raise TypeError(f"unsupported operand for Axis: {self!r} and {other!r} (an Axis is not a tuple to concatenate)")


@final  # every check is `type(x) is Axis`; final lets type checkers narrow on it
class Axis(tuple):
    """A named dimension of a given size, ``Axis(name, size)``. Frozen and hashable.

    Attributes:
        name: the axis name, unique within one array.
        size: the number of elements along the axis (a non-negative int).

    Examples:
        >>> import namedax as nx
        >>> Batch = nx.Axis("batch", 4)
        >>> Batch.name, Batch.size
        ('batch', 4)
        >>> Batch.alias("rows")
        Axis('rows', 4)
        >>> Batch.resize(8) == nx.Axis("batch", 8)
        True
    """

    # A tuple underneath (as a NamedTuple, without `_fields`, so JAX keeps it a PyTree leaf) only so
    # that hashing runs in C: axes tuples key every plan, so every eager op hashes Axis objects.
    # Equality stays between Axis objects; tuple ordering and concatenation are refused.
    __slots__ = ()
    name: str = _tuplegetter(0, "The axis name.")  # type: ignore[assignment]
    size: int = _tuplegetter(1, "The number of elements along the axis.")  # type: ignore[assignment]

    def __new__(cls, name: str, size: int):
        if not isinstance(name, str):
            raise TypeError(f"Axis name must be a str, got {type(name).__name__}: {name!r}")
        if isinstance(size, bool | np.bool_):  # an int to Python, never meant as a size
            raise TypeError(f"Axis {name!r}: size must be an int, got the bool {size!r}")
        try:
            size = int(size.__index__())  # ints and numpy ints, never floats
        except (AttributeError, TypeError):
            raise TypeError(f"Axis {name!r}: size must be an int, got {size!r}") from None
        if size < 0:
            raise ValueError(f"Axis {name!r}: size must be >= 0, got {size}")
        return tuple.__new__(cls, (name, size))

    def __setattr__(self, key, value):
        raise AttributeError("Axis is immutable; use alias() or resize()")

    def __delattr__(self, key):
        raise AttributeError("Axis is immutable")

    __hash__ = tuple.__hash__  # C-level; consistent with __eq__ (equal axes are equal tuples)

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is Axis:
            return tuple.__eq__(self, other)
        # a plain tuple ("batch", 4) is not an Axis (False, not tuple equality); others decide themselves
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __lt__(self, other):
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__
    __add__ = __radd__ = __mul__ = __rmul__ = _no_arithmetic

    def __repr__(self):
        return f"Axis({self[0]!r}, {self[1]})"

    def __treescope_repr__(self, path, subtree_renderer):
        # treescope would draw the tuple underneath, ``Axis(('embed', 8))``; see namedax._treescope
        from .. import _treescope

        return _treescope.render_axis(self, path, subtree_renderer)

    def __reduce__(self):
        return (Axis, tuple(self))

    def alias(self, new_name: str) -> Axis:
        """The same size under another name."""
        return Axis(new_name, self[1])

    def resize(self, size: int) -> Axis:
        """The same name with another size."""
        return Axis(self[0], size)


AxisSelector: TypeAlias = Axis | str
"""One axis, by `Axis` or by name."""
AxisSpec: TypeAlias = Sequence[Axis] | Mapping[str, int]
"""Several axes with their sizes: a sequence of `Axis` or a ``{name: size}`` mapping."""
AxisSelection: TypeAlias = AxisSelector | Sequence[AxisSelector] | Mapping[str, int]
"""One or several axes, by `Axis` or by name, or a ``{name: size}`` mapping."""


def axis_name(ax: AxisSelector, op: str | None = None) -> str:
    """The name of an axis selector; ``op``, the caller's name, starts the error message.

    Examples:
        >>> import namedax as nx
        >>> nx.axis_name(nx.Axis("batch", 3)), nx.axis_name("batch")
        ('batch', 'batch')
    """
    if type(ax) is str:
        return ax
    if type(ax) is Axis:
        return ax.name
    raise TypeError(_selector_error(ax, op))


def _selector_error(ax, op: str | None) -> str:
    msg = f"{op + ': ' if op else ''}an axis selector is an Axis or a str, got {type(ax).__name__}: {ax!r}"
    if isinstance(ax, int):
        msg += " (namedax selects axes by name, not by position)"
    return msg


def axis_size(ax: AxisSpec | Axis) -> int:
    """The size of an `Axis`, or the number of elements of a spec (product of its sizes).

    Examples:
        >>> import namedax as nx
        >>> nx.axis_size(nx.Axis("batch", 3)), nx.axis_size({"a": 2, "b": 5})
        (3, 10)
    """
    if type(ax) is Axis:
        return ax.size
    size = 1
    for a in to_axes(ax):
        size *= a.size
    return size


def selects_axis(selection: AxisSelection, ax: AxisSelector) -> bool:
    """Whether ``ax`` is among the axes of ``selection`` (by name; sizes too where both have one).

    Examples:
        >>> import namedax as nx
        >>> nx.selects_axis(("a", "b"), nx.Axis("b", 2))
        True
        >>> nx.selects_axis([nx.Axis("b", 3)], nx.Axis("b", 2))
        False
    """
    name = axis_name(ax)
    for sel in to_selectors(selection):
        if axis_name(sel) == name:
            return not (type(sel) is Axis and type(ax) is Axis and sel.size != ax.size)
    return False


def to_selectors(selection: AxisSelection, op: str | None = None) -> tuple[AxisSelector, ...]:
    """Normalise one selector, a sequence of them, or a mapping to a tuple of selectors; ``op``, the
    caller's name, starts the error message."""
    if type(selection) is str or type(selection) is Axis:
        return (selection,)
    if isinstance(selection, Mapping):
        return tuple(Axis(k, v) for k, v in selection.items())
    if isinstance(selection, Sequence):
        out = tuple(selection)
        for s in out:
            axis_name(s, op)  # type check
        return out
    if isinstance(selection, int):
        raise TypeError(_selector_error(selection, op))
    raise TypeError(
        f"{op + ': ' if op else ''}expected an axis, an axis name, a sequence of them or a {{name: size}} mapping, "
        f"got {type(selection).__name__}: {selection!r}"
    )


def to_axes(spec: AxisSpec | Axis, op: str = "") -> tuple[Axis, ...]:
    """Normalise an axis spec (one Axis, a sequence of Axis, or a mapping) to a tuple of Axis; errors
    name ``op`` where given."""
    if type(spec) is Axis:
        return (spec,)
    if isinstance(spec, Mapping):
        return tuple(Axis(k, v) for k, v in spec.items())
    if isinstance(spec, str):
        raise TypeError(f"a size is needed for axis {spec!r}: pass Axis({spec!r}, size) or {{{spec!r}: size}}")
    if not hasattr(spec, "__iter__"):  # a plain int shape, as jax.numpy takes
        raise TypeError(
            f"{op + ': ' if op else ''}axes must be given with names: an Axis, a sequence of Axis or a "
            f"{{name: size}} mapping, got {spec!r}"
        )
    out = tuple(spec)
    for a in out:
        if type(a) is not Axis:
            raise TypeError(
                f"a size is needed for axis {a!r}: pass Axis(name, size) or a {{name: size}} mapping"
            )
    return out


def make_axes(**sizes: int) -> tuple[Axis, ...]:
    """Axes from keyword sizes, in the given order.

    Examples:
        >>> import namedax as nx
        >>> nx.make_axes(batch=2, embed=3)
        (Axis('batch', 2), Axis('embed', 3))
    """
    return tuple(Axis(k, v) for k, v in sizes.items())


def check_unique(axes: Sequence[Axis], what: str) -> None:
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{what}: duplicate axis names {dups} in {tuple(axes)}")


def concat_axes(a1: AxisSpec, a2: AxisSpec) -> tuple[Axis, ...]:
    """Join two specs; a name in both is an error.

    Examples:
        >>> import namedax as nx
        >>> nx.concat_axes([nx.Axis("a", 2)], {"b": 3})
        (Axis('a', 2), Axis('b', 3))
    """
    out = to_axes(a1) + to_axes(a2)
    check_unique(out, "concat_axes")
    return out


def union_axes(a1: AxisSpec, a2: AxisSpec) -> tuple[Axis, ...]:
    """The axes of ``a1``, then those of ``a2`` not in ``a1``. A shared name with two sizes is an error.

    Examples:
        >>> import namedax as nx
        >>> nx.union_axes({"a": 2, "b": 3}, {"b": 3, "c": 4})
        (Axis('a', 2), Axis('b', 3), Axis('c', 4))
    """
    first = to_axes(a1)
    sizes = {a.name: a.size for a in first}
    extra = []
    for a in to_axes(a2):
        if a.name in sizes:
            if sizes[a.name] != a.size:
                raise ValueError(
                    f"union_axes: axis {a.name!r} has size {sizes[a.name]} in the first spec "
                    f"and {a.size} in the second"
                )
        else:
            extra.append(a)
    return first + tuple(extra)


def eliminate_axes(axes: AxisSpec, to_remove: AxisSelection) -> tuple[Axis, ...]:
    """``axes`` without the selected ones; selecting an absent axis is an error.

    Examples:
        >>> import namedax as nx
        >>> nx.eliminate_axes({"a": 2, "b": 3, "c": 4}, ("a", "c"))
        (Axis('b', 3),)
    """
    axes = to_axes(axes)
    names = {axis_name(s) for s in to_selectors(to_remove)}
    missing = names - {a.name for a in axes}
    if missing:
        raise ValueError(f"eliminate_axes: axes {sorted(missing)} not in {axes}")
    return tuple(a for a in axes if a.name not in names)


def replace_axis(axes: AxisSpec, old: AxisSelector, new: AxisSpec | Axis) -> tuple[Axis, ...]:
    """``axes`` with ``old`` replaced, in place, by the axis or axes ``new``.

    Examples:
        >>> import namedax as nx
        >>> nx.replace_axis({"a": 2, "b": 3}, "a", {"x": 1, "y": 2})
        (Axis('x', 1), Axis('y', 2), Axis('b', 3))
    """
    axes = to_axes(axes)
    name = axis_name(old)
    for i, a in enumerate(axes):
        if a.name == name:
            out = axes[:i] + to_axes(new) + axes[i + 1 :]
            check_unique(out, "replace_axis")
            return out
    raise ValueError(f"replace_axis: axis {name!r} not in {axes}")


def as_int(x, what: str) -> int:
    """``x`` as a Python int (numpy and concrete jax integers included, bools refused), else a
    TypeError reading ``"{what}, got ..."``: ``what`` names the operation and the argument."""
    if isinstance(x, bool | np.bool_):
        raise TypeError(f"{what}, got {x!r}")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{what}, got {type(x).__name__}: {x!r}") from None
