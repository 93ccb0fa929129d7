"""Sweep results streamed to a Zarr v3 store: the store is the results, and the checkpoint.

``ParallelExecution(..., store="sweep.zarr")`` (and `SequentialExecution`) writes every finished
block to disk as it is computed, so a sweep's outputs never need to fit in memory, and returns
`Results` that read the store lazily. Layout of the store (a Zarr v3 group)::

    <leaf path>        one array per output leaf: the space's axes, then the leaf's own (a NamedArray's
                       axes, or dim_0, ...), as ``dimension_names``; NaN (0, False) where not written yet
    <axis name>        the axis's values (a grid parameter's values), when the axes are small
    <parameter name>   for a one-axis space (UniformSpace, DataSpace): each free scalar Parameter's value
                       per point, a coordinate of every output (the ``coordinates`` attribute)
    _namedax/done      one uint8 per chunk, 1 once the chunk's data is written (its own Zarr chunk)
    _namedax (attrs)   the manifest (as for ``checkpoint_dir``), the output structure, the axes
    .namedax-lock      flock'ed by the writing run

Consolidated metadata is written once, when the store is created, so ``xarray.open_zarr(path)``
gives the labelled Dataset with no namedax import (xarray reads zarr v3's ``dimension_names``).

Chunks and blocks. The flat point order is row-major over the space's axes. A chunk holds whole
trailing rows: for axes of sizes ``(n_0, ..., n_k)`` it is ``(1, ..., 1, c, n_{i+1}, ..., n_k)``
for the first ``i`` whose trailing rows fit the target chunk (16 MB of outputs, and at most about
16 s of single-point calls for a slow model: `chunk_target`), so every chunk is one contiguous run
of flat indices and ``xarray.open_zarr`` sees the grid as it is. (Storing flat and reshaping on
read would make the store unreadable as a grid without namedax.) Chunks are the unit of work on
disk: the host gathers a call's rows into whole chunks (carrying at most one unfinished chunk to
the next call), writes each chunk once, then sets its ``done`` flag. A chunk is written by exactly
one writer, so no two writers touch one chunk and no locks are needed; Zarr's local store writes
every file atomically (temp file and rename), so a SIGKILL leaves whole chunks, and a chunk whose
flag is not set is simply computed again. Resuming reads the flags and computes the missing
chunks: the result is bit-identical to an uninterrupted run.

Under ``jax.distributed`` every process writes the chunks of the points its own devices computed;
the engine then hands each process only its own rows (no gather) and aligns the processes' shares
with chunk boundaries, which needs chunks of equal size: there, ``c`` divides ``n_i`` for ``i > 0``.

Another per-point array (a failure mask, say) is one more array of the store: ``Store.open(...,
extras=(("failed", np.bool_),))`` creates it over the space's axes with the outputs' chunks and
coordinates, `Store.write` then takes its rows after the output leaves', and ``Store.view("failed")``
reads it lazily; it is not part of the output PyTree.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import warnings
from typing import Any

import jax
import numpy as np

from ..core._axis import Axis
from ..core._named_array import _new
from ..spaces._base import AbstractSpace
from ._checkpoint import _compare, _missing, own
from ._results import _STATIC, Layout, Results, parameter_coords, static_attrs, variable_dims

STORE_FORMAT = "namedax-store/1"
CHUNK_BYTES = 16 << 20  # outputs of one chunk: a few per call, small enough to carry one on the host
_META = "_namedax"
_COORD_LIMIT = 10**7  # axes' values are stored when the axes together have at most this many


def _zarr(op: str):
    try:
        import zarr
    except ImportError:
        raise ModuleNotFoundError(f"{op}: `store=` needs zarr (version 3), which is not installed: "
                                  "pip install 'namedax[zarr]' (or pip install 'zarr>=3')") from None
    return zarr


# ---------------------------------------------------------------------------------------------
# Chunk geometry: chunks of whole trailing rows, each a contiguous run of flat indices
# ---------------------------------------------------------------------------------------------


class Chunks:
    """Chunks ``(1, ..., 1, c, n_{i+1}, ..., n_k)`` of a row-major grid of ``shape``; all index
    arithmetic in Python ints (64-bit safe)."""

    def __init__(self, shape: tuple[int, ...], i: int, c: int):
        self.shape, self.i, self.c = tuple(shape), i, c
        self.row = math.prod(shape[i + 1:])  # points per index along axis i
        self.per = -(-shape[i] // c)  # chunks per prefix (indices of the axes before i)
        self.n = math.prod(shape[:i]) * self.per
        self.chunk_shape = (1,) * i + (c,) + tuple(shape[i + 1:])
        self.uniform = i == 0 or shape[i] % c == 0

    @classmethod
    def plan(cls, shape: tuple[int, ...], target: int, uniform: bool = False, multiple: int = 1) -> Chunks:
        """The chunks closest to ``target`` points from below (at least one row of the last axis);
        with ``uniform``, ``c`` divides ``n_i`` (all chunks but the last have the same size), and a
        chunk along the first axis is a multiple of ``multiple`` points where it can be (a process's
        share of a call, so shares split into whole chunks without growing)."""
        target = max(1, target)
        for i in range(len(shape)):
            row = math.prod(shape[i + 1:])
            if row <= target or i == len(shape) - 1:
                c = max(1, min(shape[i], target // row))
                if uniform and i > 0:
                    c = _divisor_at_most(shape[i], c)
                elif uniform:
                    q = multiple // math.gcd(multiple, row)
                    c = min(shape[i], max(q, c // q * q))
                return cls(shape, i, c)
        raise ValueError("a space has at least one axis")

    @property
    def points(self) -> int:
        """Points of a full chunk (all chunks but the last, when `uniform`)."""
        return self.c * self.row

    def span(self, k: int) -> tuple[int, int]:
        """The flat range ``[start, stop)`` of chunk ``k``."""
        prefix, j = divmod(k, self.per)
        a, b = j * self.c, min((j + 1) * self.c, self.shape[self.i])
        base = prefix * self.shape[self.i]
        return (base + a) * self.row, (base + b) * self.row

    def index(self, flat: int) -> int:
        """The chunk holding flat index ``flat``."""
        prefix, rest = divmod(flat, self.shape[self.i] * self.row)
        return prefix * self.per + rest // self.row // self.c

    def region(self, k: int) -> tuple:
        """Chunk ``k`` as a selection of the grid."""
        prefix, j = divmod(k, self.per)
        pre = tuple(slice(int(x), int(x) + 1) for x in np.unravel_index(prefix, self.shape[: self.i])) if self.i else ()
        return pre + (slice(j * self.c, min((j + 1) * self.c, self.shape[self.i])),)

    def ranges(self, done: np.ndarray) -> list[tuple[int, int]]:
        """The flat ranges of the chunks not done, merged."""
        spans = [self.span(int(k)) for k in np.flatnonzero(done)]
        return _missing(spans, math.prod(self.shape))


def _divisor_at_most(n: int, c: int) -> int:
    """The largest divisor of ``n`` that is at most ``c``."""
    best = 1
    for d in range(1, min(c, math.isqrt(n)) + 1):  # d and n // d: every divisor, once
        if n % d == 0:
            best = max([best, d] + [n // d] * (n // d <= c))
    return best


# ---------------------------------------------------------------------------------------------
# The output structure as JSON (open_results rebuilds Results from it, no pickle)
# ---------------------------------------------------------------------------------------------


class _Entry:
    """An entry of the output PyTree while it is encoded (a leaf no user value can be mistaken for)."""

    def __init__(self, spec: dict):
        self.spec = spec


def _encode(layout: Layout) -> dict | None:
    """The output PyTree with its entries as ``{"leaf": k, "axes": ...}`` / ``{"static": v}``, or None
    when a node is not a dict, list, tuple or None (open_results then gives a dict by path)."""
    parts = []
    for kind in layout.kinds:
        if kind[0] == _STATIC:
            parts.append(_Entry({"static": kind[1]}))
        else:
            axes = None if kind[2] is None else [[a.name, a.size] for a in kind[2]]
            parts.append(_Entry({"leaf": kind[1], "axes": axes}))
    tree = layout.treedef.unflatten(parts)

    def enc(x):
        if isinstance(x, _Entry):
            return {"entry": x.spec}
        if type(x) is dict:
            return {"dict": [[k, enc(v)] for k, v in x.items()]}
        if type(x) in (list, tuple):
            return {type(x).__name__: [enc(v) for v in x]}
        if x is None:
            return {"none": None}
        raise TypeError(type(x).__name__)

    try:
        out = enc(tree)
        json.dumps(out)  # static values must be JSON too
        return out
    except (TypeError, ValueError):
        return None


def _decode(spec: dict | None, leaves: list[dict]) -> Layout:
    """A Layout from `_encode`'s JSON (``leaves``: shape and dtype of every leaf)."""
    structs = [jax.ShapeDtypeStruct(tuple(v["shape"]), np.dtype(v["dtype"])) for v in leaves]
    if spec is None:
        return Layout({v["name"]: s for v, s in zip(leaves, structs, strict=True)})

    def dec(x):
        (kind, v), = x.items()
        if kind == "entry":
            if "static" in v:
                return v["static"]
            s = structs[v["leaf"]]
            return s if v["axes"] is None else _new(s, tuple(Axis(n, z) for n, z in v["axes"]))
        if kind == "dict":
            return {k: dec(e) for k, e in v}
        if kind == "list":
            return [dec(e) for e in v]
        if kind == "tuple":
            return tuple(dec(e) for e in v)
        return None

    return Layout(dec(spec))


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class Var:
    """One per-point array of the store: its name, per-point shape, dtype and dims."""

    def __init__(self, name: str, shape: tuple[int, ...], dtype: Any, dims: list[str]):
        self.name, self.shape, self.dtype, self.dims = name, tuple(shape), np.dtype(dtype), dims


def _fill(dtype: np.dtype):
    return np.nan if dtype.kind in "fc" else False if dtype.kind == "b" else 0


class Store:
    """An open store: `write` feeds finished rows (any split, in order within a range); whole chunks
    are written, then flagged done. ``views()`` gives the lazy flat arrays `Results` indexes."""

    def __init__(self, op: str, path: str, group: Any, chunks: Chunks, outputs: list[Var], params: list[Var],
                 space: AbstractSpace | None, lock: int | None = None):
        self.op, self.path, self.group, self.chunks = op, path, group, chunks
        self.outputs, self.params, self.space, self._lock = outputs, params, space, lock
        self.done = group[_META]["done"]
        self._arrays = [group[v.name] for v in outputs]
        self._param_arrays = [group[v.name] for v in params]
        self.axes: tuple[Axis, ...] = ()  # set from the store's metadata (`_from_meta`)
        self.extras: list[str] = []
        self._carry: list[np.ndarray] | None = None
        self._carry_chunk, self._carry_fill = -1, 0

    # ---- creating and opening ----
    @classmethod
    def open(cls, op: str, path: Any, man: dict, layout: Layout, space: AbstractSpace, target: int,
             writer: bool = True, uniform: bool = False, multiple: int = 1, extras: tuple = ()
             ) -> tuple[Store, list[tuple[int, int]]]:
        """Create the store (or check and reopen the one of this sweep); the flat ranges to compute."""
        zarr = _zarr(op)
        p, lock = own(op, path, writer, "store")
        try:
            if writer and _read_meta(p) is None:
                if any(f != ".namedax-lock" for f in os.listdir(p)):
                    raise ValueError(f"{op}: store {str(p)!r} is not empty and holds no namedax sweep (or its "
                                     "creation was interrupted); pass another path or delete it")
                shape = tuple(a.size for a in space.axes)
                _create(op, zarr, p, man, layout, space, Chunks.plan(shape, target, uniform, multiple), extras)
            if uniform:  # a multi-process run: process 0 created the store; the others open it now
                _wait_for_meta(op, p)
            meta = _read_meta(p)
            if meta.get("format") != STORE_FORMAT:
                raise ValueError(f"{op}: store {str(p)!r} has the format {meta.get('format')!r}, not "
                                 f"{STORE_FORMAT!r}: another version of namedax wrote it; pass another path or "
                                 "delete it")
            _compare(op, p, meta["manifest"], man, "store")
            st = cls._from_meta(op, zarr, p, meta, space, lock, "r+")
            if uniform and not st.chunks.uniform:
                raise ValueError(f"{op}: store {str(p)!r} has chunks of unequal size, which a multi-process run "
                                 "cannot split among processes; finish it in one process, or pass another path")
            return st, st.chunks.ranges(st.done[:])
        except BaseException:
            if lock is not None:
                os.close(lock)
            raise

    @classmethod
    def _from_meta(cls, op, zarr, p, meta, space, lock, mode) -> Store:
        group = zarr.open_group(str(p), mode=mode, zarr_format=3, use_consolidated=False)
        shape = tuple(s for _, s in meta["axes"])
        chunks = Chunks(shape, meta["chunks"][0], meta["chunks"][1])
        outputs = [Var(v["name"], v["shape"], v["dtype"], v["dims"]) for v in meta["leaves"]]
        params = [Var(v["name"], (), v["dtype"], v["dims"]) for v in meta["params"]]
        st = cls(op, str(p), group, chunks, outputs, params, space, lock)
        st.axes = tuple(Axis(n, s) for n, s in meta["axes"])
        st.extras = list(meta.get("extras", []))
        return st

    def quantum(self, n_vmap: int, devices: tuple) -> int:
        """Chunks per device of a call must be a multiple of this, so that every process's share of a
        call is whole chunks (1 in one process, where the host carries a partial chunk over)."""
        if jax.process_count() == 1:
            return 1
        share = n_vmap * len(devices) // jax.process_count()  # points per process per chunk of every device
        return self.chunks.points // math.gcd(self.chunks.points, share)

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # ---- writing ----
    def write(self, start: int, count: int, leaves: list[np.ndarray]) -> None:
        """Rows ``[start, start + count)`` of every output leaf. Rows arrive in order within a range of
        missing chunks; a chunk is written once all its rows are here."""
        ch, pos, stop = self.chunks, start, start + count
        while pos < stop:
            k = ch.index(pos)
            a, b = ch.span(k)
            take = min(b, stop) - pos
            rows = [x[pos - start : pos - start + take] for x in leaves]
            if pos == a and take == b - a:  # a whole chunk: straight to disk
                self._put(k, rows)
            else:
                if self._carry_chunk != k:
                    self._carry = [np.empty((b - a,) + v.shape, v.dtype) for v in self.outputs]
                    self._carry_chunk, self._carry_fill = k, 0
                for dst, src in zip(self._carry, rows, strict=True):
                    dst[pos - a : pos - a + take] = src
                self._carry_fill += take
                if self._carry_fill == b - a:
                    self._put(k, self._carry)
                    self._carry, self._carry_chunk = None, -1
            pos += take

    def _put(self, k: int, rows: list[np.ndarray]) -> None:
        ch = self.chunks
        region = ch.region(k)
        lead = tuple(r.stop - r.start for r in region) + ch.chunk_shape[ch.i + 1:]
        for arr, v, x in zip(self._arrays, self.outputs, rows, strict=True):
            arr[region] = np.asarray(x).reshape(lead + v.shape)
        if self.params:
            a, b = ch.span(k)
            values = parameter_coords(self.space, range(a, b), "_")
            for arr, v in zip(self._param_arrays, self.params, strict=True):
                arr[region] = values[v.name][1].reshape(lead)
        self.done[k] = 1  # after the data: a chunk flagged done is on disk

    # ---- reading ----
    def views(self, missing: list[tuple[int, int]] | None = None) -> list[FlatView]:
        """The output leaves (not the extras), as lazy flat arrays."""
        return [FlatView(a, self.chunks, v, missing) for a, v in zip(self._arrays, self.outputs, strict=True)
                if v.name not in self.extras]

    def view(self, name: str, missing: list[tuple[int, int]] | None = None) -> FlatView:
        """One array of the store by name (an extra per-point array, say), as a lazy flat array."""
        (k,) = [k for k, v in enumerate(self.outputs) if v.name == name]
        return FlatView(self._arrays[k], self.chunks, self.outputs[k], missing)

    def to_xarray(self, single: bool) -> Any:
        """The store as xarray reads it, lazily (a DataArray for a single array output)."""
        import xarray as xr

        ds = xr.open_zarr(self.path, chunks=None)  # (its metadata never changes after creation)
        if single:
            (name,) = ds.data_vars
            return ds[name].assign_attrs(ds.attrs)
        return ds


def _read_meta(p: pathlib.Path) -> dict | None:
    f = p / _META / "zarr.json"
    try:
        attrs = json.loads(f.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs.get("namedax")


def _wait_for_meta(op: str, p: pathlib.Path) -> None:
    """A non-writing process of a multi-process run: process 0 creates the store first (a barrier)."""
    from ._engine import barrier

    barrier("namedax store created")
    if _read_meta(p) is None:
        raise ValueError(f"{op}: store {str(p)!r} was not created by process 0; in a multi-process run the store "
                         "must be one path every process shares")


def _create(op: str, zarr, p: pathlib.Path, man: dict, layout: Layout, space: AbstractSpace, chunks: Chunks,
            extras: tuple = ()) -> None:
    axes = tuple(space.axes)
    dims = variable_dims(layout, axes, op)
    grid, cshape = chunks.shape, chunks.chunk_shape
    names = {a.name for a in axes}
    outputs = [Var(layout.paths[k], layout.shapes[k], layout.dtypes[k], dims[k]) for k in range(len(layout.shapes))]
    outputs += [Var(name, (), dtype, [a.name for a in axes]) for name, dtype in extras]
    coords: dict[str, np.ndarray] = {}
    if sum(a.size for a in axes) <= _COORD_LIMIT:
        coords = {k: np.asarray(v) for k, v in space.coords().items()}
    params: list[Var] = []
    if len(axes) == 1 and type(space).__name__ != "GridSpace":  # values per point, as Results.to_xarray
        example = parameter_coords(space, [0], axes[0].name)
        params = [Var(n, (), np.asarray(v).dtype, [axes[0].name]) for n, (_, v) in example.items()]
    taken = names | set(coords)
    for v in outputs + params:
        if "/" in v.name or v.name.startswith("__"):
            raise ValueError(f"{op}: output {v.name!r} cannot name a Zarr array (no '/', no leading '__'); "
                             "rename the output")
        if v.name in taken or v.name == _META:
            raise ValueError(f"{op}: the store cannot hold an array named {v.name!r} twice (an output path, an axis "
                             f"or a parameter coordinate: {sorted(taken)}); rename the output")
        taken.add(v.name)
    group = zarr.open_group(str(p), mode="w", zarr_format=3)
    group.attrs.update(_json_attrs(static_attrs(layout)))
    link = " ".join(v.name for v in params)
    for v in outputs:
        try:
            arr = group.create_array(v.name, shape=grid + v.shape, chunks=cshape + v.shape, dtype=v.dtype,
                                     dimension_names=v.dims, fill_value=_fill(v.dtype))
        except Exception as e:
            raise ValueError(f"{op}: Zarr cannot store output {v.name!r} of dtype {v.dtype} ({type(e).__name__}: "
                             f"{e})") from None
        if link:
            arr.attrs["coordinates"] = link
    for v in params:
        group.create_array(v.name, shape=grid, chunks=cshape, dtype=v.dtype, dimension_names=v.dims,
                           fill_value=_fill(v.dtype))
    for name, values in coords.items():
        c = group.create_array(name, shape=values.shape, chunks=values.shape or None, dtype=values.dtype,
                               dimension_names=[name])
        c[...] = values
    meta = group.create_group(_META)
    meta.create_array("done", shape=(chunks.n,), chunks=(1,), dtype="uint8", fill_value=0, compressors=None)
    meta.attrs["namedax"] = {
        "format": STORE_FORMAT, "manifest": man, "axes": [[a.name, a.size] for a in axes],
        "chunks": [chunks.i, chunks.c], "structure": _encode(layout), "space": type(space).__name__,
        "leaves": [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype.str, "dims": v.dims} for v in outputs],
        "params": [{"name": v.name, "dtype": v.dtype.str, "dims": v.dims} for v in params],
        "extras": [name for name, _ in extras],
    }
    with warnings.catch_warnings():  # "not part of the Zarr v3 spec": xarray reads it, and it saves a listing
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(p))


def _json_attrs(attrs: dict) -> dict:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()}


# ---------------------------------------------------------------------------------------------
# Lazy reading
# ---------------------------------------------------------------------------------------------


class FlatView:
    """A store array seen as ``(N, ...)`` in flat point order, read lazily: an index reads (and keeps)
    the one chunk holding it; a slice reads exactly its rows. Rows in ``missing`` (flat ranges of
    chunks not flagged done, of a partial store) read as the fill value, whatever is on disk."""

    def __init__(self, arr: Any, chunks: Chunks, var: Var, missing: list[tuple[int, int]] | None = None):
        self.arr, self.chunks, self.grid = arr, chunks, chunks.shape
        self.shape = (math.prod(self.grid),) + var.shape
        self.dtype = var.dtype
        self.missing = missing or []
        self._cached: tuple[int, np.ndarray] | None = None

    def _mask(self, out: np.ndarray, lo: int) -> np.ndarray:
        """Fill the rows of ``out`` (flat rows from ``lo``) that are missing."""
        hi = lo + len(out)
        for a, b in self.missing:
            if a < hi and b > lo:
                out[max(a, lo) - lo : min(b, hi) - lo] = _fill(self.dtype)
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def _chunk(self, k: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != k:
            a, b = self.chunks.span(k)
            rows = np.asarray(self.arr[self.chunks.region(k)]).reshape((b - a,) + self.shape[1:])
            self._cached = (k, self._mask(rows, a) if self.missing else rows)
        return self._cached[1]

    def __getitem__(self, i):
        if isinstance(i, slice):
            lo, hi, step = i.indices(self.shape[0])
            if step < 0:
                lo, hi = hi + 1, lo + 1
                return self._read(lo, hi)[::-1][:: -step] if hi > lo else self._read(0, 0)
            return self._read(lo, hi)[::step] if hi > lo else self._read(0, 0)
        k = self.chunks.index(i)
        return self._chunk(k)[i - self.chunks.span(k)[0]]

    def _read(self, lo: int, hi: int) -> np.ndarray:
        out = np.empty((hi - lo,) + self.shape[1:], self.dtype)
        _read_flat(self.arr, self.grid, (), lo, hi, out)
        return self._mask(out, lo)

    def __iter__(self):
        n, step = self.shape[0], max(1, self.chunks.points)
        for lo in range(0, n, step):
            yield from self._read(lo, min(n, lo + step))

    def reshape(self, shape: tuple) -> np.ndarray:
        """The whole array, read, in ``shape`` (`Results.named` asks for the grid)."""
        out = np.asarray(self.arr[...])
        if self.missing:
            out = self._mask(out.reshape(self.shape), 0)
        return out.reshape(shape)

    def __array__(self, dtype=None, copy=None):
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)


def _read_flat(arr, shape: tuple[int, ...], pre: tuple, lo: int, hi: int, out: np.ndarray) -> None:
    """Flat rows ``[lo, hi)`` of ``arr[pre]`` (of grid ``shape``) into ``out``: whole rows of the
    first axis in one read, the partial rows at either end by recursion."""
    if hi <= lo:
        return
    if len(shape) == 1:
        out[:] = arr[pre + (slice(lo, hi),)]
        return
    row = math.prod(shape[1:])
    r0, r1 = lo // row, (hi - 1) // row
    if r0 == r1:
        _read_flat(arr, shape[1:], pre + (r0,), lo - r0 * row, hi - r0 * row, out)
        return
    first = (r0 + 1) * row - lo
    _read_flat(arr, shape[1:], pre + (r0,), lo - r0 * row, row, out[:first])
    last = hi - r1 * row
    if r1 > r0 + 1:
        block = np.asarray(arr[pre + (slice(r0 + 1, r1),)])
        out[first : len(out) - last] = block.reshape((-1,) + out.shape[1:])
    _read_flat(arr, shape[1:], pre + (r1,), 0, last, out[len(out) - last:])


# ---------------------------------------------------------------------------------------------
# Reopening
# ---------------------------------------------------------------------------------------------


def results(store: Store, layout: Layout, space: AbstractSpace | None,
            missing: list[tuple[int, int]] | None = None) -> Results:
    """Results backed by the store."""
    failed = store.view("failed", missing) if "failed" in store.extras else None
    return Results(store.views(missing), layout, space, failed, store=store, axes=store.axes)


def open_results(path: str | os.PathLike, *, space: AbstractSpace | None = None, partial: bool = False) -> Results:
    """Reopen the `Results` of a sweep run with ``store=path``, reading lazily from the store.

    ``results[i]`` reads the one chunk holding point ``i``, a slice reads its rows, `Results.named`
    reads everything, `Results.to_xarray` is lazy (xarray indexes the store). The output PyTree is
    rebuilt from the store when it is made of dicts, lists, tuples, arrays and NamedArrays; other
    PyTree nodes come back as a dict ``{leaf path: array}``.

    Args:
        path: the store's directory.
        space: the swept space, for `Results.points` and `Results.space` (checked against the store's
            fingerprint); without it, the axes and values come from the store alone.
        partial: accept a store whose sweep has not finished (it was interrupted, or is running): the
            points of chunks not flagged done read as NaN (0 for integers, False for booleans), as
            the chunks stood when the store was opened; `Results.to_xarray` (and xarray) show what
            is on disk, unmasked. Resuming the sweep with the same ``store=`` computes them.

    Returns:
        `Results` backed by the store.

    Raises:
        ValueError: ``path`` holds no namedax sweep store; ``space`` is not the store's; the sweep is
            not finished and ``partial`` is False (the message says how many chunks are missing).
        ModuleNotFoundError: zarr is not installed.

    Examples:
        >>> import tempfile, os
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import ParallelExecution, open_results
        >>> path = os.path.join(tempfile.mkdtemp(), "sweep.zarr")
        >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
        >>> _ = ParallelExecution(lambda s: s["a"] * 2, space, store=path).run()
        >>> results = open_results(path)
        >>> results[3], results.named().axes
        (np.float32(1.5), (Axis('a', 5),))
    """
    op = "open_results"
    zarr = _zarr(op)
    p = pathlib.Path(os.fspath(path))
    meta = _read_meta(p)
    if meta is None or meta.get("format") != STORE_FORMAT:
        raise ValueError(f"{op}: {str(p)!r} holds no namedax sweep store"
                         + ("" if meta is None else f" of format {STORE_FORMAT!r} (found {meta.get('format')!r})"))
    if space is not None and space.fingerprint() != meta["manifest"]["space"]:
        raise ValueError(f"{op}: `space` {space!r} is not the space of the sweep in {str(p)!r} "
                         f"({meta['manifest']['space_repr']})")
    st = Store._from_meta(op, zarr, p, meta, space, None, "r")
    done = st.done[:]
    if not partial and not done.all():
        raise ValueError(f"{op}: the sweep in {str(p)!r} is not finished: {int((done == 0).sum())} of {len(done)} "
                         "chunks are missing; resume it (run the executor again with the same store=), or pass "
                         "partial=True to read it with the missing points as NaN")
    layout = _decode(meta["structure"], [v for v in meta["leaves"] if v["name"] not in meta.get("extras", [])])
    return results(st, layout, space, st.chunks.ranges(done))


def chunk_target(bytes_per_point: int, point_seconds: float | None, n_vmap: int, call_seconds: float,
                 device: Any = None) -> int:
    """Points per chunk: `CHUNK_BYTES` of outputs, and (given one point's time) at most about 16 calls'
    worth of points computed one by one (far less under vmap): an interruption costs seconds.

    One point's time, called alone, is mostly dispatch for a cheap model (tens of microseconds,
    which vmap does not multiply): the model's own part is what is left after the time of a trivial
    call, and a model that is mostly dispatch gets the full 16 MB chunks."""
    target = CHUNK_BYTES // max(bytes_per_point, 1)
    if point_seconds:
        own = point_seconds - _dispatch_seconds(device)
        if own > point_seconds / 4:
            target = min(target, max(n_vmap, int(16 * call_seconds / own)))
    return max(1, target)


def _dispatch_seconds(device: Any) -> float:
    """The time of a trivial compiled call on ``device`` (the best of a few)."""
    import time

    f = jax.jit(lambda x: x + 1)
    x = jax.device_put(np.float32(0), device)
    jax.block_until_ready(f(x))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(f(x))
        best = min(best, time.perf_counter() - t)
    return best
