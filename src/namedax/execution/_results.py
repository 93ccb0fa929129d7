"""`Results`: a sweep's outputs as host numpy arrays, one row per point, read back by index or by name.

The executors hand their outputs over as one numpy array per output leaf, of shape ``(N, ...)``.
`Results` only indexes into them: ``results[i]`` is a few microseconds (rebuilding the model's
output PyTree around ``leaf[i]`` views), ``list(results)`` over 10^4 points takes milliseconds.
The output layout (`Layout`) is read once from the model's output structure: every entry of the
PyTree is a plain array, a `NamedArray` (its axes are kept, its array is a leaf) or a static
non-array value (returned as is for every point). A `Parameter` in the output stands for its value
(as it does in the model's arithmetic), so ``return state["a"]`` and ``return -state["a"]`` have the
same structure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from ..core._axis import Axis, as_int
from ..core._digest import stable_repr
from ..core._named_array import _is_named, _new
from ..core._optional import require
from ..spaces._base import AbstractSpace
from ..spaces._parameter import Parameter

_ARRAY, _STATIC = 0, 1  # kinds: (_ARRAY, leaf index, own axes or None), (_STATIC, value)


def _is_entry(x) -> bool:
    return _is_named(x) or isinstance(x, Parameter)


def _is_arraylike(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | jax.ShapeDtypeStruct | np.generic)


def _wrap(value, kind) -> Any:
    """An array leaf put back in its NamedArray, if it came in one."""
    if kind[2] is not None:
        value = _new(value, kind[2])
    return value


_LIMIT_ENV = "NAMEDAX_RESULTS_MAX_BYTES"


def memory_limit() -> int:
    """The most bytes a sweep's in-memory results may take: ``$NAMEDAX_RESULTS_MAX_BYTES`` if set, else
    the memory available now (``MemAvailable`` of /proc/meminfo, or free pages), else 2**40."""
    env = os.environ.get(_LIMIT_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ValueError(f"{_LIMIT_ENV}={env!r} is not a number of bytes") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 1 << 40


def _size(b: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1024 or unit == "PiB":
            return f"{b:,} {unit}" if unit == "bytes" else f"{b:.2f} {unit}"
        b /= 1024
    return ""


class OutputError(TypeError):
    """A model output the sweep cannot store (no array at all, a typed PRNG key); the executors
    prefix the message with their name."""


class Layout:
    """The structure of one point's output: entries (plain arrays, NamedArrays, static values) of a
    PyTree, and the shape and dtype of every array leaf (without the leading point dimension)."""

    def __init__(self, example: Any):
        entries, self.treedef = jax.tree.flatten(example, is_leaf=_is_entry)
        self.kinds: list[tuple] = []
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[np.dtype] = []
        self.paths: list[str] = []
        paths = [jax.tree_util.keystr(p, simple=True, separator=".")
                 for p, _ in jax.tree_util.tree_flatten_with_path(example, is_leaf=_is_entry)[0]]
        self.entry_paths = [p or "output" for p in paths]
        for path, e in zip(paths, entries, strict=True):
            if isinstance(e, Parameter):  # a Parameter stands for its value, in outputs too
                e = e.value
            arr = e.array if _is_named(e) else e
            if _is_arraylike(arr) and jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
                raise OutputError(f"the model returns a typed PRNG key at {path or 'output'} ({arr.dtype}"
                                  f"{list(arr.shape)}); outputs are stored as numbers: return "
                                  "jax.random.key_data(key) instead (jax.random.wrap_key_data rebuilds the key)")
            if _is_arraylike(arr):
                k = len(self.shapes)
                self.shapes.append(tuple(arr.shape))
                self.dtypes.append(np.dtype(arr.dtype))
                self.paths.append(path or "output")
                self.kinds.append((_ARRAY, k, e.axes if _is_named(e) else None))
            else:
                self.kinds.append((_STATIC, e))
        if not self.shapes:
            text = stable_repr(example)
            raise OutputError(f"the model returned {text[:200]}{'...' if len(text) > 200 else ''}, which holds no "
                              "array; a model must return an array, a NamedArray or a PyTree (dict, tuple, ...) "
                              "holding at least one (other leaves pass through as static values)")

    @property
    def bytes_per_point(self) -> int:
        return sum(int(np.prod(s, dtype=np.int64)) * d.itemsize for s, d in zip(self.shapes, self.dtypes, strict=True))

    def describe(self) -> list[str]:
        """A stable description (for checkpoint manifests): the tree and every leaf's shape and dtype."""
        out = [str(self.treedef)]
        for kind in self.kinds:
            if kind[0] == _STATIC:
                out.append(f"static {stable_repr(kind[1])}")
            else:
                k = kind[1]
                axes = f" axes {[(a.name, a.size) for a in kind[2]]}" if kind[2] is not None else ""
                out.append(f"{self.paths[k]}: {self.dtypes[k].str}{list(self.shapes[k])}{axes}")
        return out

    def allocate(self, n: int, op: str = "Results") -> list[np.ndarray]:
        """Uninitialised host arrays for ``n`` points (numpy maps the pages lazily: unused, they cost
        nothing); refused up front when they would not fit in memory (`memory_limit`)."""
        need, limit = n * self.bytes_per_point, memory_limit()
        if need > limit:
            which = f"allowed by {_LIMIT_ENV}" if os.environ.get(_LIMIT_ENV) else "available"
            raise ValueError(
                f"{op}: the outputs of the {n:,} points take {_size(need)} ({self.bytes_per_point:,} bytes per point), "
                f"more than the {_size(limit)} of memory {which}; "
                "stream them to disk with store=\"results.zarr\", or sweep a smaller space (fewer points, or a part of "
                f"it at a time); {_LIMIT_ENV}=<bytes> sets the limit")
        return [np.empty((n,) + s, d) for s, d in zip(self.shapes, self.dtypes, strict=True)]


class Results:
    """The outputs of a sweep, one per point of the space, as host numpy arrays.

    Returned by `ParallelExecution.run` and `SequentialExecution.run`; not built by hand.

    - ``len(results)`` is the number of points N.
    - ``results[i]`` (an int, negative counts from the end, numpy ints too) is the model's output
      PyTree for point ``i``, with numpy leaves (views, no copy): microseconds per call.
    - ``results[a:b]`` (any slice) is the outputs of those points stacked along a new leading
      dimension (a `NamedArray` output gets a leading axis named after the space's axis, or
      ``point`` for a grid).
    - iterating gives ``results[0], results[1], ...``.
    - `named` gives the outputs over the space's axes (a grid sweep comes back as a grid), and
      `to_xarray` an ``xarray`` object with the space's coordinates.
    - `failed` (a sweep run with ``on_error="mark"``) says which points failed, in flat order, and
      `failed_named` over the space's axes.

    Attributes:
        space: the swept space.

    Examples:
        >>> import numpy as np
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import ParallelExecution
        >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
        >>> results = ParallelExecution(lambda s: {"sq": s["a"] ** 2, "neg": -s["a"]}, space).run()
        >>> len(results), results[-1]
        (5, {'neg': np.float32(-1.0), 'sq': np.float32(1.0)})
        >>> results[1:3]["sq"]
        array([0.0625, 0.25  ], dtype=float32)
    """

    __slots__ = ("_arrays", "_layout", "_space", "_N", "_single", "_axes", "_store", "_failed")

    def __init__(self, arrays: list, layout: Layout, space: AbstractSpace | None, failed: Any = None, *,
                 store: Any = None, axes: tuple[Axis, ...] | None = None):
        # arrays (and failed): numpy arrays of shape (N, ...), or (with ``store``) the store's lazy flat views
        for a in arrays if failed is None else [*arrays, failed]:  # results are values: read-only
            if isinstance(a, np.ndarray):
                a.flags.writeable = False  # (some are views of device buffers anyway)
        self._failed = failed
        self._arrays = arrays
        self._layout = layout
        self._space = space
        self._store = store
        self._axes = tuple(space.axes) if axes is None else tuple(axes)
        self._N = space.N if space is not None else int(np.prod([a.size for a in self._axes], dtype=object))
        k0 = layout.kinds[0]
        single = layout.treedef.num_nodes == 1 and k0[0] == _ARRAY and k0[2] is None
        self._single = arrays[0] if single else None

    @property
    def space(self) -> AbstractSpace | None:
        """The swept space (None for `open_results` given no ``space``)."""
        return self._space

    @property
    def failed(self) -> np.ndarray | None:
        """Which points failed (a numpy bool array of N entries, in flat order), for a sweep run with
        ``on_error="mark"``: the model raised there (its outputs hold NaN, 0 or False) or returned a
        non-finite value in a floating or complex output. None for a sweep run otherwise.

        Examples:
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import ParallelExecution
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=-1.0, high=1.0, free=True)}, n=5)
            >>> results = ParallelExecution(lambda s: jnp.sqrt(s["a"]), space, on_error="mark").run()
            >>> results.failed, results.failed.nonzero()[0]
            (array([ True,  True, False, False, False]), array([0, 1]))
        """
        if self._failed is not None and not isinstance(self._failed, np.ndarray):  # a store's: read once
            self._failed = np.asarray(self._failed[:])
            self._failed.flags.writeable = False
        return self._failed

    def failed_named(self) -> Any:
        """`failed` as a bool `NamedArray` over the space's axes (a grid for a `GridSpace` sweep).

        Raises:
            ValueError: the sweep was not run with ``on_error="mark"``.

        Examples:
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import ParallelExecution
            >>> state = {"a": Parameter("a", 0.0, low=-1.0, high=1.0, free=True),
            ...          "b": Parameter("b", 0.0, low=0.0, high=1.0, free=True)}
            >>> results = ParallelExecution(lambda s: jnp.sqrt(s["a"] + s["b"]), GridSpace(state, n=2),
            ...                             on_error="mark").run()
            >>> mask = results.failed_named()
            >>> mask.axes, mask.array.tolist()
            ((Axis('a', 2), Axis('b', 2)), [[True, False], [False, False]])
        """
        import jax.numpy as jnp

        if self.failed is None:
            raise ValueError("Results.failed_named: these results hold no record of failed points; run the sweep "
                             "with on_error=\"mark\"")
        axes, shape = self._space_shape()
        return _new(jnp.asarray(self.failed.reshape(shape)), axes)

    @property
    def store(self) -> str | None:
        """The path of the Zarr store holding the outputs (``store=`` of the executor, or
        `open_results`), or None for results held in memory."""
        return None if self._store is None else self._store.path

    def __len__(self) -> int:
        return self._N

    def _build(self, pick) -> Any:
        """The output PyTree with every array leaf replaced by ``pick(array)``, rewrapped."""
        arrays, parts = self._arrays, []
        for kind in self._layout.kinds:
            parts.append(kind[1] if kind[0] == _STATIC else _wrap(pick(arrays[kind[1]]), kind))
        return self._layout.treedef.unflatten(parts)

    def __getitem__(self, i) -> Any:
        """The output of point ``i``, or the stacked outputs of the points of a slice."""
        if type(i) is not int:
            if isinstance(i, slice):
                return self._slice(i)
            i = as_int(i, "Results: a point index must be an int or a slice")
        n = self._N
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"Results: index {i if i >= 0 else i - n} is out of range for {n} points")
        if self._single is not None:
            return self._single[i]
        return self._build(lambda a: a[i])

    def _slice(self, sl: slice) -> Any:
        if self._single is not None:
            return self._single[sl]
        size = len(range(self._N)[sl])
        space_axes = self._axes
        lead = Axis(space_axes[0].name if len(space_axes) == 1 else "point", size)
        arrays, parts = self._arrays, []
        for kind in self._layout.kinds:
            if kind[0] == _STATIC:
                parts.append(kind[1])
                continue
            axes = kind[2]
            if axes is not None:
                if any(ax.name == lead.name for ax in axes):
                    raise ValueError(f"Results slicing: the output NamedArray with axes {axes} already has an axis "
                                     f"{lead.name!r}, so the stacked points cannot take that name; index points one "
                                     "at a time or use Results.named()")
                axes = (lead,) + tuple(axes)
            parts.append(_wrap(arrays[kind[1]][sl], (_ARRAY, kind[1], axes)))
        return self._layout.treedef.unflatten(parts)

    def __iter__(self) -> Iterator:
        """The outputs of the points in order; each call starts a new iterator."""
        if self._single is not None:
            return iter(self._single)
        return (self[i] for i in range(self._N))

    def points(self, indices: slice | range | Sequence[int] | np.ndarray | None = None) -> Any:
        """The states of the swept points at ``indices`` (all by default), free leaves stacked: the
        same as ``results.space.points(indices)``.

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import SequentialExecution
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=3)
            >>> results = SequentialExecution(lambda s: s["a"] * 2, space).run()
            >>> results.points()["a"].value, results[:]
            (Array([0. , 0.5, 1. ], dtype=float32), array([0., 1., 2.], dtype=float32))
        """
        if self._space is None:
            raise ValueError("Results.points: these results were reopened from a store without their space; pass "
                             "it as open_results(path, space=space)")
        return self._space.points(indices)

    # ---- by name ----
    def _space_shape(self) -> tuple[tuple[Axis, ...], tuple[int, ...]]:
        axes = self._axes
        return axes, tuple(a.size for a in axes)

    def _entry_axes(self, kind, op: str) -> tuple[Axis, ...]:
        return entry_axes(self._layout, kind, self._axes, f"Results.{op}")

    def named(self) -> Any:
        """The outputs as `NamedArray`\\ s over the space's axes first.

        A `GridSpace` sweep comes back as a grid with one axis per free Parameter (flat point order
        is row-major, so this is a reshape, no copy on the host); `DataSpace` and `UniformSpace`
        sweeps have their one axis (``data``, ``sample``). A NamedArray output keeps its own axes
        after the space's; a plain array output's trailing dimensions become axes ``dim_0``,
        ``dim_1``, ... Static (non-array) outputs are returned unchanged.

        Returns:
            The model's output PyTree with every array replaced by a NamedArray (jax arrays).

        Raises:
            ValueError: an output's own axis has the name of an axis of the space.

        Examples:
            >>> import jax.numpy as jnp
            >>> import namedax as nx
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import ParallelExecution
            >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            ...          "b": Parameter("b", 0.0, low=0.0, high=2.0, free=True)}
            >>> space = GridSpace(state, n={"a": 2, "b": 3})
            >>> Time = nx.Axis("time", 4)
            >>> def model(s):
            ...     return {"sum": s["a"] + s["b"], "trace": nx.arange(Time) * s["a"]}
            >>> out = ParallelExecution(model, space).run().named()
            >>> out["sum"].axes
            (Axis('a', 2), Axis('b', 3))
            >>> out["sum"].array
            Array([[0., 1., 2.],
                   [1., 2., 3.]], dtype=float32)
            >>> out["trace"].axes
            (Axis('a', 2), Axis('b', 3), Axis('time', 4))
        """
        import jax.numpy as jnp

        _, shape = self._space_shape()

        parts = []
        for kind in self._layout.kinds:
            if kind[0] == _STATIC:
                parts.append(kind[1])
                continue
            a = self._arrays[kind[1]]
            v = _new(jnp.asarray(a.reshape(shape + a.shape[1:])), self._entry_axes(kind, "named"))
            parts.append(v)
        return self._layout.treedef.unflatten(parts)

    def to_xarray(self) -> Any:
        """The outputs as an ``xarray.DataArray`` (one array output) or ``xarray.Dataset`` (several, e.g.
        a dict: one variable per entry, named by its key path), over the space's axes.

        Dimensions are named as in `named`; the space's axes get ``space.coords()`` as coordinates
        (the parameter values of a grid). For a `UniformSpace` or `DataSpace`, every free scalar
        Parameter is added as a coordinate along the space's axis (a parameter value per point),
        unless another free Parameter has its name. Static outputs go to ``attrs``. Needs the
        optional ``xarray`` package.

        Returns:
            ``xarray.DataArray`` or ``xarray.Dataset``.

        Raises:
            ModuleNotFoundError: xarray is not installed (``pip install 'namedax[xarray]'``).
            ValueError: the output has no arrays, or an output's axis has the name of a space axis.

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import ParallelExecution
            >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            ...          "b": Parameter("b", 0.0, low=0.0, high=2.0, free=True)}
            >>> da = ParallelExecution(lambda s: s["a"] * s["b"], GridSpace(state, n=3)).run().to_xarray()
            >>> da.dims, da.sel(a=0.5, b=2.0).item()
            (('a', 'b'), 1.0)
        """
        xr = require("xarray", "Results.to_xarray", "xarray")
        if self._store is not None:  # lazy: xarray reads the store's chunks as they are indexed
            return self._store.to_xarray(len(self._layout.shapes) == 1 and self._layout.treedef.num_nodes == 1)
        _, shape = self._space_shape()
        space_axes = self._axes
        coords: dict[str, Any] = dict(self._space.coords())
        if len(space_axes) == 1 and type(self._space).__name__ != "GridSpace" and self._N <= 10**8:
            coords.update(parameter_coords(self._space, None, space_axes[0].name))
        dims = variable_dims(self._layout, space_axes, "Results.to_xarray")
        variables = {}
        for kind in self._layout.kinds:
            if kind[0] == _STATIC:
                continue
            k = kind[1]
            a = self._arrays[k]
            variables[self._layout.paths[k]] = (dims[k], a.reshape(shape + a.shape[1:]))
        attrs = static_attrs(self._layout)
        if not variables:
            raise ValueError("Results.to_xarray: the model's output holds no arrays")
        if len(variables) == 1 and self._layout.treedef.num_nodes == 1:
            (name, (dims, data)), = variables.items()
            return xr.DataArray(data, dims=dims, coords=coords, name=name, attrs=attrs)
        return xr.Dataset(variables, coords=coords, attrs=attrs)

    def __repr__(self) -> str:
        axes = ", ".join(f"{a.name}: {a.size}" for a in self._axes)
        outs = ", ".join(f"{p}: {d.name}{list(s)}" for p, s, d in
                         zip(self._layout.paths, self._layout.shapes, self._layout.dtypes, strict=True))
        kind = type(self._space).__name__ if self._space is not None else "a space"
        where = f" in {self._store.path!r}" if self._store is not None else ""
        return f"Results({self._N} points of {kind}({axes}); outputs {outs}{where})"


# ---- shared with the Zarr store (`_store`): the same names and dims in memory and on disk ----


def entry_axes(layout: Layout, kind, space_axes: tuple[Axis, ...], op: str) -> tuple[Axis, ...]:
    """The axes of an array entry over the space: the space's axes, then its own (or ``dim_j``)."""
    k = kind[1]
    own = tuple(kind[2]) if kind[2] is not None else tuple(Axis(f"dim_{j}", s)
                                                            for j, s in enumerate(layout.shapes[k]))
    clash = sorted({a.name for a in own} & {a.name for a in space_axes})
    if clash:
        raise ValueError(
            f"{op}: output {layout.paths[k]!r} has axes {own}, and {clash} also name axes of the "
            f"space {space_axes}; rename the output's axes (nx.rename) in the model"
        )
    return tuple(space_axes) + own


def variable_dims(layout: Layout, space_axes: tuple[Axis, ...], op: str) -> list[list[str]]:
    """The xarray dimension names of every array leaf (in leaf order). A ``dim_j`` whose size differs
    between leaves is renamed ``<path>.dim_j`` there, so the leaves fit in one Dataset."""
    dims: list[list[str]] = [[] for _ in layout.shapes]
    sizes: dict[str, set] = {}
    for kind in layout.kinds:
        if kind[0] != _STATIC:
            axes = entry_axes(layout, kind, space_axes, op)
            dims[kind[1]] = [a.name for a in axes]
            for a in axes:
                sizes.setdefault(a.name, set()).add(a.size)
    if len(dims) > 1 or layout.treedef.num_nodes > 1:
        dims = [[f"{layout.paths[k]}.{d}" if len(sizes[d]) > 1 else d for d in ds] for k, ds in enumerate(dims)]
    return dims


def static_attrs(layout: Layout) -> dict[str, Any]:
    """The static (non-array) outputs that xarray can hold as attributes, by entry path."""
    return {p: kind[1] for p, kind in zip(layout.entry_paths, layout.kinds, strict=True)
            if kind[0] == _STATIC and isinstance(kind[1], str | int | float | bool | np.generic)}


def parameter_coords(space: AbstractSpace, indices: Any, axis: str) -> dict[str, Any]:
    """The free scalar Parameters' values at ``indices`` (all when None), as coordinates along
    ``axis``: ``{name: (axis, values)}``, leaving out a name two free Parameters share (it would
    label one's values with both) and one equal to the axis."""
    pts = space.points(indices)
    n = space.N if indices is None else len(range(space.N)[indices]) if isinstance(indices, slice) else len(indices)
    params = [p for p in jax.tree.leaves(pts, is_leaf=lambda x: isinstance(x, Parameter))
              if isinstance(p, Parameter) and p.free]
    names = [p.name for p in params]
    return {p.name: (axis, np.asarray(p.value)) for p in params
            if np.shape(p.value) == (n,) and p.name != axis and names.count(p.name) == 1}
