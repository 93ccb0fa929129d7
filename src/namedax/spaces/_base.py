"""The common interface of the spaces (`AbstractSpace`) and the state handling they share.

A space splits its state PyTree once, at construction, into entries (the leaves, with Parameters
and NamedArrays kept whole) and remembers which are free. It is itself a registered PyTree: its
children are the point generator (see `_gen`) and the array-valued fixed entries, its static
data everything else, so a space passed into `jax.jit` costs one compile per structure and never
bakes data into the program.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis, as_int
from ..core._digest import ValueKey, digest
from ..core._named_array import NamedArray, _is_named, _new
from . import _gen as _g
from ._parameter import Parameter
from ._parameter import _aux as _param_aux
from ._parameter import _rebuild as _param_rebuild

if TYPE_CHECKING:
    from ._spaces import DataSpace

_MAX_N = 2**63 - 1  # flat indices are encoded from int64 on the host


# ---------------------------------------------------------------------------------------------
# State handling
# ---------------------------------------------------------------------------------------------


def _is_entry(x) -> bool:
    return isinstance(x, Parameter | NamedArray)


def _is_dynamic(x) -> bool:
    """Leaves that travel through jit as arrays; Python and numpy scalars, strings, callables stay static
    (so ``int(T / dt)`` keeps working inside a model)."""
    return isinstance(x, Parameter | NamedArray | jax.Array | np.ndarray)


def _on_device(x):
    """numpy arrays inside an entry as jax arrays (once, not at every block)."""
    return jax.tree.map(lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, x)


def _flatten_state(state) -> tuple[Any, tuple[str, ...], list]:
    pairs, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_entry)
    paths = tuple(jax.tree_util.keystr(p) or "state" for p, _ in pairs)
    return treedef, paths, [e for _, e in pairs]


def _free_parameters(op: str, paths, entries, need_bounds: bool) -> list[int]:
    """Positions of the free Parameters; errors for none, NamedArray values, missing bounds."""
    free = [i for i, e in enumerate(entries) if isinstance(e, Parameter) and e.free]
    if not free:
        raise ValueError(
            f"{op}: the state has no free Parameters, so there is nothing to sweep; mark the swept "
            "leaves with Parameter(name, value, low=..., high=..., free=True)"
        )
    for i in free:
        if _is_named(entries[i].value):
            raise TypeError(f"{op}: free Parameter {entries[i].name!r} at {paths[i]} holds a NamedArray; "
                            "free Parameters hold plain arrays")
    if need_bounds:
        bad = [f"{entries[i].name!r} at {paths[i]} (low={entries[i].low}, high={entries[i].high})"
               for i in free if entries[i].low is None or entries[i].high is None]
        if bad:
            raise ValueError(f"{op}: every free Parameter needs both bounds `low` and `high`; missing for "
                             + ", ".join(bad))
    return free


def _default_float():
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _out_dtype(value) -> np.dtype:
    """Swept values keep a floating value's dtype; other values become the default float dtype."""
    dt = np.dtype(getattr(value, "dtype", None) or np.result_type(value))
    return dt if jnp.issubdtype(dt, jnp.floating) else _default_float()


def _compute_dtype(dt: np.dtype) -> np.dtype:
    return dt if dt.itemsize >= 4 else np.dtype(np.float32)


def _check_bounds(op: str, params: list, out_dts: list, cdt: np.dtype, ns=None, logs=None) -> None:
    """Refuse bounds whose points the dtypes cannot hold: beyond the range of the value's dtype (inf
    or NaN points), a span that overflows the compute dtype, or (for a grid of ``ns`` points) steps
    below the dtype's resolution, where neighbouring points would collapse into one."""
    x64 = "enable float64 (jax.config.update('jax_enable_x64', True), before building the space)"
    for k, (p, dt) in enumerate(zip(params, out_dts, strict=True)):
        lo, hi = np.asarray(p.low, np.float64), np.asarray(p.high, np.float64)
        big = float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
        top = float(jnp.finfo(dt).max)
        where = f"Parameter {p.name!r} with bounds [{p.low}, {p.high}]"
        if big > top or float(np.max(np.abs(hi - lo))) > float(jnp.finfo(cdt).max):
            raise ValueError(f"{op}: {where} reaches beyond the {np.dtype(dt).name} range (+-{top:.4g}) its points are "
                             f"computed in, so they would be inf or NaN; narrow the bounds, or {x64}")
        n = 1 if ns is None else ns[k]
        if n < 2 or np.all(lo == hi):
            continue
        log = logs is not None and bool(logs[k])
        if log:
            step = float(np.min(np.abs(hi / lo))) ** (1.0 / (n - 1)) - 1.0
            small = step < float(jnp.finfo(dt).eps)
        else:
            step = float(np.min(np.abs(hi - lo))) / (n - 1)
            small = step < float(np.spacing(np.asarray(big, dt).astype(dt)))
        if small:
            raise ValueError(f"{op}: {where} over {n} points steps by {step:.3g}{' (relative)' * log}, below the "
                             f"resolution of {np.dtype(dt).name} at {big:.6g}, so neighbouring points would be equal; "
                             f"use fewer points, a wider range, or {x64}")


def _count(n, op: str, what: str, limit: int) -> int:
    n = as_int(n, f"{op}: `{what}` must be an int")
    if n < 1:
        raise ValueError(f"{op}: `{what}` must be >= 1, got {n}")
    if n > limit:
        raise ValueError(f"{op}: `{what}` must be <= {limit}, got {n}")
    return n


def _dims(shape) -> tuple[Axis, ...]:
    return tuple(Axis(f"dim_{k}", s) for k, s in enumerate(shape))


# ---------------------------------------------------------------------------------------------
# The common interface
# ---------------------------------------------------------------------------------------------

_AUX = ("_treedef", "_paths", "_free", "_free_params", "_static", "_N", "_axes", "_info")


class AbstractSpace:
    """The interface every space shares: a state PyTree and N points over named axes.

    Attributes:
        state: the state the space was built from.
        N: the number of points.
        axes: the space's named axes; their sizes multiply to N.

    Point ``i`` is the state with every free leaf replaced by its value at ``i`` (a free Parameter
    stays a Parameter carrying the new value); fixed leaves are unchanged. Points are computed on
    demand from their index; flat indices run row-major over `axes` (last axis fastest).
    """

    _treedef: Any
    _paths: tuple[str, ...]
    _free: tuple[int, ...]
    _free_params: tuple
    _static: tuple
    _N: int
    _axes: tuple[Axis, ...]
    _info: tuple
    _gen: Any
    _dyn: tuple
    _orig: list | None
    _state: Any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

        def flatten(s):
            return (s._gen, s._dyn), tuple(getattr(s, f) for f in _AUX)

        def unflatten(aux, children):  # JAX rebuilds with tracers etc.: never validate
            s = object.__new__(cls)
            for f, v in zip(_AUX, aux, strict=True):
                setattr(s, f, v)
            s._gen, s._dyn = children
            s._orig = None
            s._state = None
            return s

        jax.tree_util.register_pytree_node(cls, flatten, unflatten)

    def _setup(self, state, treedef, paths, entries, free, gen, n: int, axes, info, keep_free: bool) -> None:
        self._state = state
        self._treedef = treedef
        self._paths = paths
        self._free = tuple(free)
        self._free_params = tuple(
            _param_aux(e) if isinstance(e, Parameter) else None for e in (entries[i] for i in free)
        )
        free_set = set(free)
        self._static = tuple(None if _is_dynamic(e) else ValueKey(e) for e in entries)
        self._dyn = tuple(
            _on_device(e) if _is_dynamic(e) and (keep_free or i not in free_set) else None
            for i, e in enumerate(entries)
        )
        self._orig = list(entries)
        self._gen = gen
        self._N = n
        self._axes = tuple(axes)
        self._info = info

    # ---- size and axes ----
    @property
    def N(self) -> int:
        """The number of points."""
        return self._N

    def __len__(self) -> int:
        return self._N

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The space's axes, in flat-index order (row-major: the last varies fastest)."""
        return self._axes

    @property
    def state(self):
        """The state the space was built from (its free leaves as given)."""
        if self._state is None:
            self._state = self._treedef.unflatten(self._entries())
        return self._state

    # ---- points ----
    def _entries(self) -> list:
        if self._orig is not None:
            return list(self._orig)
        return [s.obj if s is not None else d for d, s in zip(self._dyn, self._static, strict=True)]

    def _assemble(self, values) -> Any:
        return self._treedef.unflatten(_put_free(self, self._entries(), values))

    def _index(self, i, op: str = "indexing") -> int:
        i = as_int(i, f"{type(self).__name__} {op}: a point index must be an int or a slice")
        j = i + self._N if i < 0 else i
        if not 0 <= j < self._N:
            raise IndexError(f"{type(self).__name__} {op}: index {i} is out of range for {self._N} points")
        return j

    def _host_point(self, i: int) -> tuple:
        return _g.value_at(self._gen, self._gen.encode(np.asarray([i])))

    def __getitem__(self, idx):
        """Point ``idx`` (an int, negative counts from the end) as a state PyTree, or the points of a
        slice as a `DataSpace`."""
        if isinstance(idx, slice):
            return self._slice(idx)
        return self._assemble(self._host_point(self._index(idx)))

    def __iter__(self) -> Iterator:
        """Every point in flat order; each call starts a new, independent iterator."""
        for i in range(self._N):
            yield self._assemble(self._host_point(i))

    def _indices(self, indices, op: str) -> np.ndarray:
        name = f"{type(self).__name__}.{op}"
        if indices is None:
            indices = slice(None)
        if isinstance(indices, slice):
            r = range(self._N)[indices]
            if len(r) > _g.MAX_BLOCK:
                raise ValueError(f"{name}: {len(r)} points requested at once; at most {_g.MAX_BLOCK} (sweep larger "
                                 "spaces block by block with block())")
            return np.arange(r.start, r.stop, r.step, dtype=np.int64)
        if isinstance(indices, range):
            indices = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise TypeError(f"{name}: indices must be a slice or a 1-D sequence of ints, got {indices!r}")
        idx = idx.astype(np.int64)
        bad = idx[(idx < -self._N) | (idx >= self._N)]
        if bad.size:
            raise IndexError(f"{name}: index {int(bad[0])} is out of range for {self._N} points")
        return np.where(idx < 0, idx + self._N, idx)

    def points(self, indices: slice | range | Sequence[int] | np.ndarray | None = None) -> Any:
        """The states at several flat indices, free leaves stacked along a new leading dimension.

        Args:
            indices: a slice, a range, or a 1-D sequence of ints (negative ones count from the end);
                None for all points.

        Returns:
            The state PyTree; each free leaf has a leading dimension of ``len(indices)``, fixed
            leaves are unchanged.

        Raises:
            IndexError: an index is out of range.
            TypeError: ``indices`` is not a slice or a 1-D sequence of ints.
            ValueError: more than ``2**31 - 1`` points at once.

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
            >>> space.points([0, -1, 2])["a"].value
            Array([0. , 1. , 0.5], dtype=float32)
        """
        idx = self._indices(indices, "points")
        return self._assemble(_g.values_at(self._gen, self._gen.encode(idx)))

    def _slice(self, sl: slice) -> DataSpace:
        idx = self._indices(sl, "slicing")
        if idx.size == 0:
            raise ValueError(f"{type(self).__name__}: slice {sl} selects no points out of {self._N}")
        values = _g.values_at(self._gen, self._gen.encode(idx))
        from ._spaces import DataSpace  # the concrete spaces build on this module

        return DataSpace._from_values(self, values, int(idx.size))

    # ---- blocks, for executors ----
    def _token_len(self) -> int:
        return self._gen.token_len()

    def block_start(self, start: int | np.integer) -> np.ndarray:
        """Encode flat index ``start`` for `block`: a small uint32 vector, exact for any index.

        Indices at or past N encode the last point (so a block starting there is all padding).

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
            >>> space.block_start(3)
            array([3], dtype=uint32)
        """
        start = as_int(start, "block_start: `start` must be an int")
        if start < 0:
            raise ValueError(f"block_start: `start` must be >= 0, got {start}")
        return self._gen.start(min(start, self._N - 1))

    def block(self, start: int | Any, size: int, offset: int | Any = 0) -> Any:
        """The points ``[start + offset, start + offset + size)``, computed on device.

        This is the function executors call: it is jit-compatible with a traced ``start`` and
        ``offset``, and builds nothing beyond the block. Indices past N repeat the last point, so
        padding is always a real point (never NaN).

        Args:
            start: the first flat index, as a Python int, or as ``block_start(i)`` (a uint32 vector
                that may be traced: pass it, and the space itself, as arguments of your jit).
            size: the number of points (a Python int, ``1 <= size <= 2**31 - 1``).
            offset: added to ``start`` on device (an int or a traced integer scalar), for example
                ``device_index * per_device``; ``offset + size`` must stay below ``2**31``.

        Returns:
            The state PyTree with every free leaf stacked along a leading dimension of ``size``;
            fixed leaves unchanged (not stacked). `in_axes` is the matching ``jax.vmap`` spec.

        Raises:
            TypeError / ValueError: a bad ``start``, ``size``, ``offset`` or token shape.

        Examples:
            >>> import jax
            >>> from namedax.spaces import GridSpace, Parameter
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
            >>> @jax.jit
            ... def run(space, token):
            ...     points = space.block(token, 4)
            ...     return jax.vmap(lambda s: s["a"] * 10, in_axes=(space.in_axes,))(points)
            >>> run(space, space.block_start(2))          # points 2, 3, 4 and the padding 4
            Array([ 5. ,  7.5, 10. , 10. ], dtype=float32)
        """
        if isinstance(size, bool | np.bool_) or not isinstance(size, int | np.integer):
            raise TypeError(f"block: `size` must be a Python int, got {size!r}")
        size = int(size)
        if not 1 <= size <= _g.MAX_BLOCK:
            raise ValueError(f"block: `size` must be in [1, {_g.MAX_BLOCK}], got {size}")
        if isinstance(start, int | np.integer) and not isinstance(start, bool | np.bool_):
            tok = self.block_start(start)
        else:
            tok = start
            if np.shape(tok) != (self._token_len(),):
                raise ValueError(f"block: `start` must be an int or a token from block_start() of shape "
                                 f"({self._token_len()},), got shape {np.shape(tok)}")
        if isinstance(offset, int | np.integer) and not isinstance(offset, bool | np.bool_):
            if not 0 <= offset <= _g.MAX_BLOCK - size + 1:
                raise ValueError(f"block: `offset` must be >= 0 and `offset + size` <= 2**31, got offset={offset}, "
                                 f"size={size}")
        elif np.ndim(offset) != 0:
            raise TypeError(f"block: `offset` must be an integer scalar, got {offset!r}")
        return self._assemble(_g.block_values(self._gen, tok, offset, size))

    @property
    def in_axes(self) -> Any:
        """A ``jax.vmap`` ``in_axes`` spec for the output of `block` / `points`: 0 for every free
        leaf, None for fixed leaves (a PyTree prefix of the state)."""
        marks: list[int | None] = [None] * len(self._paths)
        for pos in self._free:
            marks[pos] = 0
        return self._treedef.unflatten(marks)

    @property
    def free_mask(self) -> Any:
        """True for the free leaves, False for the fixed ones (a PyTree prefix of the state, usable as
        an ``equinox.partition`` filter)."""
        marks = [False] * len(self._paths)
        for pos in self._free:
            marks[pos] = True
        return self._treedef.unflatten(marks)

    # ---- everything at once ----
    def collect(self, n_vmap: int | None = None, n_pmap: int | None = None, fill_value: Any = jnp.nan) -> Any:
        """All points, laid out for ``pmap(vmap(map(model)))``: free leaves shaped ``(n_pmap, n_vmap, n_map, ...)``.

        ``n_map`` is the smallest size that holds all N points; the flat point sequence, padded to
        ``n_pmap * n_vmap * n_map``, is reshaped row-major, so point ``i`` sits at
        ``[i // (n_vmap * n_map), (i // n_map) % n_vmap, i % n_map]``. Fixed leaves are unchanged.

        Padding: floating leaves get ``fill_value``. Integer and boolean leaves get ``fill_value`` if
        their dtype holds it exactly (e.g. ``-1``); otherwise (NaN, the default) they repeat the last
        real point, never a made-up number such as a NaN cast to an int. ``fill_value=None`` repeats
        the last real point in every leaf (padding a model can run on).

        Args:
            n_vmap: states vectorised per step (None: 1).
            n_pmap: devices (None: 1).
            fill_value: a real number, or None (see above).

        Returns:
            The state PyTree with the free leaves reshaped.

        Raises:
            TypeError: a count is not an int, or ``fill_value`` is not a real number or None.
            ValueError: a count is < 1, or the padded size passes ``2**31 - 1``.

        Examples:
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import DataSpace
            >>> ds = DataSpace({"x": jnp.array([1.0, 2.0, 3.0]), "k": jnp.array([1, 2, 3])})
            >>> batched = ds.collect(n_vmap=2)
            >>> batched["x"].shape
            (1, 2, 2)
            >>> x, k = batched["x"], batched["k"]
            >>> x[0], k[0]
            (Array([[ 1.,  2.], [ 3., nan]], dtype=float32), Array([[1, 2], [3, 3]], dtype=int32))
        """
        n_vmap = 1 if n_vmap is None else _count(n_vmap, "collect", "n_vmap", _g.MAX_BLOCK)
        n_pmap = 1 if n_pmap is None else _count(n_pmap, "collect", "n_pmap", _g.MAX_BLOCK)
        if fill_value is not None:
            if isinstance(fill_value, complex | np.complexfloating) or np.ndim(fill_value) != 0:
                raise TypeError(f"collect: `fill_value` must be a real number or None, got {fill_value!r}")
            try:
                fill_value = float(fill_value)
            except (TypeError, ValueError):
                raise TypeError(f"collect: `fill_value` must be a real number or None, got {fill_value!r}") from None
        n_map = -(-self._N // (n_vmap * n_pmap))
        total = n_pmap * n_vmap * n_map
        if total > _g.MAX_BLOCK:
            raise ValueError(f"collect: {total} padded points exceed {_g.MAX_BLOCK}; a space this large is swept "
                             "block by block (block(), or an executor)")
        values = _g.block_values(self._gen, self._gen.start(0), 0, total)
        out = []
        for v in values:
            fill = _fill_for(v.dtype, fill_value)
            if total > self._N and fill is not None:
                v = v.at[self._N :].set(fill)
            out.append(v.reshape((n_pmap, n_vmap, n_map) + v.shape[1:]))
        return self._assemble(out)

    # ---- names ----
    def named(self) -> Any:
        """The state with each free leaf as a `NamedArray` over the space's axes it depends on.

        Dimensions of a point's value beyond the space's axes are named ``dim_0``, ``dim_1``, ...;
        free Parameters stay Parameters (carrying the NamedArray). Fixed leaves are unchanged.
        ``nx.vmap(model, space.axes)(space.named())`` evaluates the model on every point (pass
        ``default=None`` when fixed leaves include arrays, so they are broadcast, not mapped).
        """
        raise NotImplementedError

    def coords(self) -> dict[str, np.ndarray]:
        """The values along each axis, ``{axis name: 1-D numpy array}``, for plotting and export."""
        raise NotImplementedError

    def _named_points(self) -> Any:
        """`named` for a one-axis space: every point built at once, free leaves over the axis."""
        if self._N > _g.MAX_BLOCK:
            raise ValueError(f"{type(self).__name__}.named: {self._N} points is more than can be built at once; "
                             "sweep it block by block")
        values = _g.block_values(self._gen, self._gen.start(0), 0, self._N)
        return self._assemble([_new(v, self._axes + _dims(v.shape[1:])) for v in values])

    # ---- combining ----
    def __mul__(self, other: Any) -> Any:
        """``a * b``: the Cartesian product (`ProductSpace`)."""
        if not isinstance(other, AbstractSpace):
            return NotImplemented
        from ._compose import ProductSpace  # built on this module

        return ProductSpace(self, other)

    # ---- identity ----
    def fingerprint(self) -> str:
        """A hex digest identifying the space's points and fixed leaves (for checkpoint manifests).

        Equal for spaces built the same way, in any process, as long as non-array leaves have a
        stable ``repr`` (callables are identified by module and qualified name).

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True), "dt": 0.1}
            >>> GridSpace(state, n=5).fingerprint() == GridSpace(state, n=5).fingerprint()
            True
            >>> GridSpace(state, n=5).fingerprint() == GridSpace(state, n=6).fingerprint()
            False
        """
        return digest(sorted(self._digests().items()))

    def _digests(self) -> dict[str, str]:
        """The space's identity in named parts, so a refused checkpoint can say what changed:
        ``structure`` (kind, size, axes, free leaves, bounds), one part per state leaf that holds a
        value (by its path), and ``points`` (what the generator holds beyond those: bounds, key)."""
        out = {"structure": self._structure_digest()}
        for path, d, s in zip(self._paths, self._dyn, self._static, strict=True):
            if s is not None or d is not None:
                out[path] = digest(s.obj if s is not None else d)
        out.update(self._point_digests())
        return out

    def _structure_digest(self) -> str:
        return digest(type(self).__name__, self._N, self._axes, self._paths, self._free, self._free_params, self._info)

    def _point_digests(self) -> dict[str, str]:
        return {"points": digest(self._gen)}


def _put_free(space: AbstractSpace, entries: list, values) -> list:
    """``entries`` with the free positions of ``space`` set to ``values`` (free Parameters rebuilt
    around their value)."""
    for pos, fp, v in zip(space._free, space._free_params, values, strict=True):
        entries[pos] = v if fp is None else _param_rebuild(fp[0], v, *fp[1:])
    return entries


def _fill_for(dtype, fill: float | None):
    """The padding value for a leaf of ``dtype``, or None to repeat the last real point."""
    if fill is None:
        return None
    if jnp.issubdtype(dtype, jnp.inexact):
        return fill
    if not (math.isfinite(fill) and fill.is_integer()):
        return None
    if dtype == np.bool_:
        return bool(fill) if fill in (0.0, 1.0) else None
    info = jnp.iinfo(dtype)
    return int(fill) if info.min <= fill <= info.max else None
