"""Combining spaces: products (``a * b``), zips (`zip`) and repeated trials (`TrialSpace`).

A combined space is a space like any other: its state is the **tuple of its parts' states**, its
free leaves are theirs, and its generator (`_gen.ProductGen`) holds the parts and turns a flat
index into theirs. So `AbstractSpace.block`, slicing, ``collect``, the executors, checkpoints and
`Results` need nothing new, and a product stays lazy and 64-bit safe: ``space[i]`` splits ``i``
exactly on the host, a block advances every part's token with carries in 32-bit words.

How states combine: point ``i`` of ``a * b`` is the tuple ``(point_a, point_b)``; products of
products are flat, as with ``itertools.product`` (``a * b * c`` gives ``(pa, pb, pc)``). A zip gives
the tuple of its spaces' points too. A `TrialSpace`'s point is its index, an int32 scalar. So the
model of ``GridSpace(state, n=5) * TrialSpace(8)`` receives the grid's state and the trial index:

    >>> import jax.numpy as jnp
    >>> from namedax.spaces import GridSpace, Parameter, TrialSpace
    >>> grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
    >>> space = grid * TrialSpace(8)
    >>> space.axes, space.N
    ((Axis('a', 5), Axis('trial', 8)), 40)
    >>> state, trial = space[13]          # a coordinate 1, trial 5
    >>> float(state["a"]), int(trial)
    (0.25, 5)
    >>> def model(point):
    ...     state, trial = point
    ...     return state["a"] + trial

The results of a product come back over all its axes (``Results.named()`` is a grid over ``a``
and ``trial``). With per-point keys (``ParallelExecution(..., key=...)``) each trial draws its own
randomness, since every point of the product has its own flat index.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis
from ..core._digest import digest
from . import _gen as _g
from ._base import _MAX_N, AbstractSpace, _count, _flatten_state

_zip = builtins.zip  # this module defines its own `zip`


def _part_path(k: int, path: str) -> str:
    """The path of a part's state leaf in the combined (tuple) state."""
    return f"[{k}]" + ("" if path == "state" else path)


def _describe(space: AbstractSpace) -> str:
    axes = ", ".join(f"{a.name!r}: {a.size}" for a in space.axes)
    return f"{type(space).__name__}(N={space.N}, axes {{{axes}}})"


def _spaces(op: str, spaces) -> list[AbstractSpace]:
    if not spaces:
        raise TypeError(f"{op}: give at least one space")
    for s in spaces:
        if not isinstance(s, AbstractSpace):
            raise TypeError(f"{op}: every argument must be a space (GridSpace, UniformSpace, DataSpace, TrialSpace, "
                            f"...), got {type(s).__name__}: {s!r}")
    return list(spaces)


class _Combined(AbstractSpace):
    """What products and zips share: the tuple state, the parts' entries, digests and host points."""

    def _combine(self, spaces: list[AbstractSpace], zipped: bool, axes, n: int) -> None:
        paths: list[str] = []
        free: list[int] = []
        free_params: list = []
        for k, s in enumerate(spaces):
            free += [len(paths) + i for i in s._free]
            free_params += list(s._free_params)
            paths += [_part_path(k, p) for p in s._paths]
        none = (None,) * len(paths)
        self._state = None
        self._orig = None
        self._treedef = jax.tree_util.treedef_tuple([s._treedef for s in spaces])
        self._paths, self._free, self._free_params = tuple(paths), tuple(free), tuple(free_params)
        self._static, self._dyn = none, none  # the fixed leaves live in the parts (the generator's leaves)
        self._N, self._axes = n, tuple(axes)
        self._info = tuple(type(s).__name__ for s in spaces)
        self._gen = _g.ProductGen(spaces, zipped)

    @property
    def spaces(self) -> tuple[AbstractSpace, ...]:
        """The combined spaces, in order."""
        return self._gen.spaces

    def _entries(self) -> list:
        return [e for s in self.spaces for e in s._entries()]

    def _host_point(self, i: int) -> tuple:
        return tuple(v for s, j in _zip(self.spaces, self._gen.split_index(i), strict=True) for v in s._host_point(j))

    # The parts' digests folded into the same named parts as any space's (structure, points, state
    # leaves by path), so a refused checkpoint names what changed in the same words.
    def _structure_digest(self) -> str:
        return digest(super()._structure_digest(), [s._structure_digest() for s in self.spaces])

    def _point_digests(self) -> dict[str, str]:
        parts = [s._digests() for s in self.spaces]
        out = {"points": digest([p.get("points") for p in parts])}
        for k, p in enumerate(parts):
            out.update({_part_path(k, key): d for key, d in p.items() if key not in ("structure", "points")})
        return out


class ProductSpace(_Combined):
    """The Cartesian product of spaces: ``a * b``, or ``ProductSpace(a, b, ...)``.

    Its axes are those of the spaces, in order (``a``'s, then ``b``'s); N is the product of their
    sizes; flat index ``i`` runs row-major over all the axes (the last fastest), as a grid does:
    the same order as ``itertools.product(a, b)``. Point ``i`` is the tuple of the spaces' points;
    a product of products is flat (``a * b * c`` has points ``(pa, pb, pc)``).

    Args:
        *spaces: the spaces (any kind, also zips; products are flattened into their parts).

    Attributes:
        spaces: the combined spaces.

    Raises:
        TypeError: an argument is not a space.
        ValueError: two spaces have an axis of the same name (rename one: `TrialSpace` takes a
            ``name``, and ``nx.spaces.zip(space, name=...)`` renames a one-axis space), or N would
            reach ``2**63``.

    Examples:
        >>> import itertools
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import DataSpace, GridSpace, Parameter
        >>> grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=3)
        >>> data = DataSpace({"x": jnp.array([10.0, 20.0])})
        >>> space = grid * data
        >>> space.axes
        (Axis('a', 3), Axis('data', 2))
        >>> [(float(s["a"]), float(d["x"])) for s, d in space][:3]
        [(0.0, 10.0), (0.0, 20.0), (0.5, 10.0)]
        >>> space.coords()["a"]
        array([0. , 0.5, 1. ], dtype=float32)
    """

    def __init__(self, *spaces: AbstractSpace):
        op = "ProductSpace"
        parts: list[AbstractSpace] = []
        for s in _spaces(op, spaces):
            parts += list(s.spaces) if isinstance(s, ProductSpace) else [s]
        owner: dict[str, AbstractSpace] = {}
        for s in parts:
            for ax in s.axes:
                if ax.name in owner:
                    raise ValueError(
                        f"{op}: axis names must be unique across the spaces, but {ax.name!r} is an axis of both "
                        f"{_describe(owner[ax.name])} and {_describe(s)}; rename one (TrialSpace(n, name=...), or "
                        "nx.spaces.zip(space, name=...) for a one-axis space)")
                owner[ax.name] = s
        n = math.prod(s.N for s in parts)
        if n > _MAX_N:
            raise ValueError(f"{op}: {n} points ({' * '.join(str(s.N) for s in parts)}) exceed 2**63 - 1")
        self._combine(parts, False, [ax for s in parts for ax in s.axes], n)

    def coords(self) -> dict[str, np.ndarray]:
        """The coordinates of every part's axes, in order."""
        return {k: v for s in self.spaces for k, v in s.coords().items()}

    def named(self) -> Any:
        """The tuple of the parts' `named` states: each over its own axes only, so broadcasting by
        name spans the product (the parts' sizes summed, not multiplied).

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter, TrialSpace
            >>> grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=3)
            >>> state, trial = (grid * TrialSpace(2)).named()
            >>> (state["a"] * 10 + trial).axes
            (Axis('a', 3), Axis('trial', 2))
        """
        return tuple(s.named() for s in self.spaces)

    def __repr__(self):
        return " * ".join(repr(s) for s in self.spaces)


class ZipSpace(_Combined):
    """Spaces of equal N side by side along one axis: point ``i`` is the tuple of their points ``i``.

    Built by `zip`. A zip of one space renames its axis (the space's points over one axis).

    Attributes:
        spaces: the zipped spaces.

    Examples:
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import DataSpace, ZipSpace
        >>> pairs = ZipSpace(DataSpace({"x": jnp.array([1.0, 2.0])}), DataSpace({"y": jnp.array([10.0, 20.0])}))
        >>> pairs.axes, [float(p[0]["x"] + p[1]["y"]) for p in pairs]
        ((Axis('data', 2),), [11.0, 22.0])
    """

    def __init__(self, *spaces: AbstractSpace, name: str | None = None):
        op = "zip"
        spaces_ = _spaces(op, spaces)
        ns = {s.N for s in spaces_}
        if len(ns) > 1:
            raise ValueError(f"{op}: the spaces must have the same number of points, got "
                             + ", ".join(_describe(s) for s in spaces_))
        if name is None:
            if len(spaces_[0].axes) != 1:
                raise ValueError(f"{op}: the first space, {_describe(spaces_[0])}, has several axes, so the zipped "
                                 "axis needs a name: pass name=...")
            name = spaces_[0].axes[0].name
        if not isinstance(name, str) or not name:
            raise TypeError(f"{op}: `name` must be a non-empty str, got {name!r}")
        n = spaces_[0].N
        self._combine(spaces_, True, (Axis(name, n),), n)

    def coords(self) -> dict[str, np.ndarray]:
        """``{name: arange(N)}``."""
        return {self._axes[0].name: np.arange(self._N)}

    def named(self) -> Any:
        """The tuple of the spaces' states, every free leaf a `NamedArray` over the zipped axis (plus
        ``dim_0``, ... for array values). Builds all N points: for small spaces."""
        return self._named_points()

    def __repr__(self):
        return f"zip({', '.join(repr(s) for s in self.spaces)}, name={self._axes[0].name!r})"


def zip(*spaces: AbstractSpace, name: str | None = None) -> ZipSpace:
    """Pair the points of spaces of equal length along one axis: point ``i`` is ``(a[i], b[i], ...)``.

    Where a product (``a * b``) takes every combination, a zip takes the points in step, like
    Python's ``zip``: grouped parameters that vary together. Zipping one space renames its axis.

    Args:
        *spaces: the spaces, all with the same N (any kind; a multi-axis space is taken in its flat
            order).
        name: the zipped axis's name; by default the first space's axis (which must then be its
            only one).

    Returns:
        A `ZipSpace` with one axis ``name`` of size N.

    Raises:
        TypeError: an argument is not a space, or ``name`` is not a non-empty str.
        ValueError: the spaces' N differ (the message lists each), or ``name`` is needed and missing.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> from namedax.spaces import DataSpace, GridSpace, Parameter
        >>> grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=3)
        >>> data = DataSpace({"x": jnp.array([1.0, 2.0, 3.0])})
        >>> space = nx.spaces.zip(grid, data, name="pair")
        >>> space.axes
        (Axis('pair', 3),)
        >>> s, d = space[2]
        >>> float(s["a"]), float(d["x"])
        (1.0, 3.0)
    """
    return ZipSpace(*spaces, name=name)


class TrialSpace(AbstractSpace):
    """``n`` repeats: point ``i`` is the trial index ``i`` itself (an int32 scalar), one axis ``name``.

    Multiply a space by it to run every point ``n`` times: ``GridSpace(state, n=10) * TrialSpace(8)``
    gives the model ``(state, trial)`` (see `ProductSpace`). With per-point keys from the executor
    each trial draws its own randomness; without them, the model can fold the trial index into a
    key of its own (``jax.random.fold_in(key, trial)``).

    Args:
        n: the number of trials (``1 <= n < 2**31``).
        name: the axis's name.

    Raises:
        TypeError: ``n`` is not an int or ``name`` not a non-empty str.
        ValueError: ``n`` out of range.

    Examples:
        >>> from namedax.spaces import TrialSpace
        >>> trials = TrialSpace(4, name="seed")
        >>> trials.axes, trials[3], trials.block(1, 3)
        ((Axis('seed', 4),), Array(3, dtype=int32), Array([1, 2, 3], dtype=int32))
    """

    def __init__(self, n: int, name: str = "trial"):
        op = "TrialSpace"
        n = _count(n, op, "n", _g.MAX_BLOCK)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{op}: `name` must be a non-empty str, got {name!r}")
        state = jnp.zeros((), jnp.int32)
        treedef, paths, entries = _flatten_state(state)
        self._setup(state, treedef, paths, entries, [0], _g.TrialGen(n), n, (Axis(name, n),), (), keep_free=True)

    def _host_point(self, i: int) -> tuple:
        return (jnp.asarray(np.int32(i)),)

    def coords(self) -> dict[str, np.ndarray]:
        """``{name: arange(n)}``."""
        return {self._axes[0].name: np.arange(self._N)}

    def named(self) -> Any:
        """The trial indices as a `NamedArray` over the trial axis.

        Examples:
            >>> from namedax.spaces import TrialSpace
            >>> TrialSpace(3).named().array
            Array([0, 1, 2], dtype=int32)
        """
        return self._named_points()

    def __repr__(self):
        return f"TrialSpace({self._N}, name={self._axes[0].name!r})"
