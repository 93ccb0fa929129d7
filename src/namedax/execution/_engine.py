"""The device side of the executors: one compiled program per sweep, called block after block.

Design (see `namedax.execution` for the user's view):

- One program, compiled once (and cached per model, arguments' structure, space structure, chunk
  size and devices), sweeps ``n_map`` chunks of ``n_vmap`` points on each device:
  ``fori_loop(0, n_map, chunk)`` writes ``vmap(model)`` of each chunk into an output buffer. The
  chunk's points come from ``space.block(token, n_vmap, offset)``, computed on device from the
  block's first index: no grid exists anywhere. Devices are used through ``jax.shard_map`` over a
  one-axis mesh (``AxisType.Auto``, ``check_vma=False``); device ``d`` takes the contiguous run of
  points after the ``d * n_map * n_vmap`` first ones.
- ``n_map`` is a run-time argument, so the host can size every call without recompiling: a first
  call of one chunk per device measures the speed, later calls aim at `_CALL_SECONDS` each (capped
  by the buffer, `_CALL_BYTES`). Two calls are in flight, so the devices never wait for the host
  copying and checkpointing the previous one.
- Padding: a call covers whole chunks; past the end of the sweep the space repeats its last point
  (a real point, never NaN), and the host keeps only the rows of real points.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..core._digest import ValueKey
from ..spaces._base import AbstractSpace
from ..spaces._parameter import Parameter
from . import _failures, _keys
from ._results import Layout

_CALL_BYTES = 64 << 20  # outputs of one call (all devices): bounds device memory beyond the model's own
_CALL_SECONDS = 1.0  # target duration of one call: progress and checkpoints at least this often
_CHUNK_CPU = 1024  # automatic n_vmap on CPU (chunks of 10^3 beat one vmap over everything several-fold)
_CHUNK_ACCEL = 1 << 14  # automatic n_vmap on GPU / TPU
_MAX = 2**31 - 1  # points per call: device offsets stay 32-bit
_AXIS = "sweep"


class ModelError(RuntimeError):
    """The model failed on a point of the space (raised, or cannot be traced); the message names the
    point, and the original exception is the ``__cause__``.

    Attributes:
        point: the flat index of the point, or None when no single point could be blamed.
    """

    def __init__(self, message: str, point: int | None = None):
        super().__init__(message)
        self.point = point


# ---------------------------------------------------------------------------------------------
# The model, its arguments, and one point
# ---------------------------------------------------------------------------------------------


class Static:
    """The non-array leaves of ``(model, args, kwargs)`` and where the arrays go; hashable (each leaf
    a `ValueKey`: by value, else by identity), so it identifies the compiled program."""

    def __init__(self, treedef: Any, leaves: list, array_pos: tuple[int, ...]):
        self.treedef, self.leaves, self.array_pos = treedef, leaves, array_pos
        self._key = (treedef, tuple(ValueKey(x) for x in leaves), array_pos)
        self._hash = hash(self._key)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        if not isinstance(other, Static):
            return NotImplemented
        try:  # a treedef's aux data may compare badly (arrays)
            return bool(self._key == other._key)
        except Exception:
            return False


def split(model: Callable, args: tuple, kwargs: dict) -> tuple[list, Static]:
    """The arrays of ``(model, args, kwargs)`` (traced arguments) and the rest (compiled in)."""
    leaves, treedef = jax.tree.flatten((model, args, kwargs))
    pos = tuple(i for i, x in enumerate(leaves) if eqx.is_array(x))
    dyn = [leaves[i] for i in pos]
    for i in pos:
        leaves[i] = None
    return dyn, Static(treedef, leaves, pos)


def call_model(static: Static, dyn: list, state: Any, key: Any = None) -> Any:
    leaves = list(static.leaves)
    for i, a in zip(static.array_pos, dyn, strict=True):
        leaves[i] = a
    model, args, kwargs = static.treedef.unflatten(leaves)
    if key is not None:
        return model(state, *args, key=key, **kwargs)
    return model(state, *args, **kwargs)


def unstack(space: AbstractSpace, block: Any) -> Any:
    """Point 0 of a block: the free leaves without their leading dimension."""
    return jax.tree.map(lambda ax, sub: sub if ax is None else jax.tree.map(lambda x: x[0], sub),
                        space.in_axes, block, is_leaf=lambda x: x is None)


def short_error(e: BaseException) -> str:
    """``Type: message``, cut to the line that says what went wrong (runtime errors raised through
    callbacks carry whole tracebacks in their message; the full error stays the ``__cause__``)."""
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "RuntimeError: " in ln and "JaxRuntimeError" not in ln:
            return ln.split("RuntimeError: ", 1)[1] if ln.startswith("_") else ln
    first = lines[0] if lines else ""
    return f"{type(e).__name__}: {first[:500]}"


class _DropCallbackFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).endswith("callback failed")


_CALLBACK_LOGGER = "jax._src.callback"  # logs every failed pure_callback / io_callback with its traceback


@contextlib.contextmanager
def quiet_callbacks():
    """Drop jax's log of failed callbacks while a sweep runs: a model's run-time error (``equinox.error_if``)
    reaches the user as the ModelError (its cause kept), while jax would log a traceback of tens of
    lines for every failed call, the bisection's included."""
    logger, drop = logging.getLogger(_CALLBACK_LOGGER), _DropCallbackFailures()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def describe_point(space: AbstractSpace, i: int) -> str:
    """``point 7 (a=0.5, b=-1.0)``: the index and the free scalar Parameters' values."""
    try:
        state = space[i]
        vals = [f"{p.name}={np.asarray(p.value).item():.6g}"
                for p in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, Parameter))
                if isinstance(p, Parameter) and p.free and np.size(p.value) == 1]
    except Exception:  # describing must never hide the real error
        vals = []
    return f"point {i}" + (f" ({', '.join(vals)})" if vals else "")


def diagnose_trace_error(op: str, model: Callable, space: AbstractSpace, args: tuple, kwargs: dict,
                         err: Exception, key: Any = None) -> ModelError:
    """The error for a model that failed while traced: it raises on point 0, or cannot be traced."""
    where = describe_point(space, 0)
    if key is not None:
        kwargs = {**kwargs, "key": _keys.point_key(key, 0)}
    try:
        model(space[0], *args, **kwargs)
    except Exception as e2:
        out = ModelError(f"{op}: the model raised on {where}: {short_error(e2)}", 0)
        out.__cause__ = e2
        return out
    out = ModelError(
        f"{op}: the model runs on {where} when called directly, but fails when traced by jax.vmap / jax.jit: "
        f"{short_error(err)}\nPython control flow on parameter values (if, float(), int(), bool()) must "
        "become jnp.where / jax.lax.cond; SequentialExecution runs such models point by point, for debugging.",
    )
    out.__cause__ = err
    return out


def output_layout(static: Static, space: AbstractSpace, dyn: Any, key: Any = None) -> tuple[Layout, Any]:
    """The layout of one point's output, and the array part as ShapeDtypeStructs (one trace, cached)."""
    return _cached(("layout", static, _avals(space), _avals(dyn), _avals(key)),
                   lambda: _output_layout(static, space, dyn, key))


def _output_layout(static: Static, space: AbstractSpace, dyn: Any, key: Any) -> tuple[Layout, Any]:
    box = []

    def one(space, tok, dyn, key):  # the base key stands for a point's key: same type and shape
        out = call_model(static, dyn, unstack(space, space.block(tok, 1)), key)
        arrays, rest = eqx.partition(out, eqx.is_array)
        box.append(rest)
        return arrays

    shapes = jax.eval_shape(one, space, space.block_start(0), dyn, key)
    return Layout(eqx.combine(shapes, box[0])), shapes


# ---------------------------------------------------------------------------------------------
# The compiled sweep
# ---------------------------------------------------------------------------------------------


def _sweep(static: Static, arr_struct: Any, n_vmap: int, max_map: int, mesh: Mesh | None, last: int,
           space: AbstractSpace, tok, n_map, dyn, key, first):
    def one(state, dyn, key):
        return eqx.filter(call_model(static, dyn, state, key), eqx.is_array)

    def per_device(space, tok, n_map, dyn, key, first):
        base = 0 if mesh is None else lax.axis_index(_AXIS) * (n_map * n_vmap)
        chunk = jax.vmap(one, in_axes=(space.in_axes, None, None if key is None else 0))

        def body(j, buf):
            off = base + j * n_vmap
            keys = None if key is None else _keys.keys_at(key, first, off, n_vmap, last, last >= _keys._WORD)
            out = chunk(space.block(tok, n_vmap, off), dyn, keys)
            return jax.tree.map(lambda b, o: lax.dynamic_update_slice_in_dim(b, o.astype(b.dtype), j * n_vmap, 0),
                                buf, out)

        buf = jax.tree.map(lambda s: jnp.zeros((max_map * n_vmap,) + s.shape, s.dtype), arr_struct)
        return lax.fori_loop(0, n_map, body, buf)

    if mesh is None:
        return per_device(space, tok, n_map, dyn, key, first)
    p = PartitionSpec()
    return jax.shard_map(per_device, mesh=mesh, in_specs=(p,) * 6, out_specs=PartitionSpec(_AXIS),
                         check_vma=False)(space, tok, n_map, dyn, key, first)


def _point(static: Static, last: int, space: AbstractSpace, tok, dyn, key, first):
    key = None if key is None else _keys.keys_at(key, first, 0, 1, last, last >= _keys._WORD)[0]
    return eqx.filter(call_model(static, dyn, unstack(space, space.block(tok, 1)), key), eqx.is_array)


def _avals(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), x.dtype, getattr(x, "weak_type", False)) for x in leaves)


_CACHE: collections.OrderedDict = collections.OrderedDict()
_RATES: dict = {}  # points per second of each compiled sweep (keys of _CACHE), to size calls
_CACHE_SIZE = 16


def _cached(key: tuple, make: Callable) -> Any:
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = make()
        while len(_CACHE) > _CACHE_SIZE:
            _RATES.pop(_CACHE.popitem(last=False)[0], None)
    else:
        _CACHE.move_to_end(key)
    return hit


@functools.cache
def mesh_of(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (_AXIS,), axis_types=(AxisType.Auto,))


def compile_sweep(static: Static, arr_struct: Any, n_vmap: int, max_map: int, devices: tuple, space, dyn,
                  key: Any = None):
    """The sweep program; with a random ``key``, it is called with the encoded first index of each call."""
    mesh = None if len(devices) == 1 else mesh_of(devices)
    last = space.N - 1
    cache_key = ("sweep", static, n_vmap, max_map, devices, _avals(space), _avals(dyn), _avals(key), last)

    def make():
        fn = jax.jit(functools.partial(_sweep, static, arr_struct, n_vmap, max_map, mesh, last))
        return fn.lower(space, space.block_start(0), np.int32(1), dyn, key, first_arg(key, 0)).compile()

    return _cached(cache_key, make), cache_key


def compile_point(static: Static, space, dyn, key: Any = None):
    """The one-point program, called as ``(space, block_start(i), dyn, key, first_arg(key, i))``."""
    last = space.N - 1
    cache_key = ("point", static, _avals(space), _avals(dyn), _avals(key), last)
    return _cached(cache_key, lambda: jax.jit(functools.partial(_point, static, last)).lower(
        space, space.block_start(0), dyn, key, first_arg(key, 0)).compile())


def first_arg(key: Any, index: int) -> np.ndarray | None:
    """The encoded flat index the programs read the points' keys from (None without a key)."""
    return None if key is None else _keys.encode(index)



def place(tree: Any, devices: tuple) -> Any:
    """Arrays replicated over the devices once, so calls do not copy them again. (Across processes
    the devices are not all addressable: there every process passes its own identical copy.)"""
    if _multiprocess() or (len(devices) == 1 and devices[0] == jax.devices()[0]):
        return tree  # the default device: jit places the (small, or already there) inputs itself
    if len(devices) == 1:
        return jax.device_put(tree, devices[0])
    return jax.device_put(tree, NamedSharding(mesh_of(devices), PartitionSpec()))


# ---------------------------------------------------------------------------------------------
# The host loop
# ---------------------------------------------------------------------------------------------


def _multiprocess() -> bool:
    return jax.process_count() > 1


def _fetch(out: list, n_dev: int, per_dev: int, count: int) -> list[np.ndarray]:
    """The ``count`` real rows of a call's output leaves, as host arrays."""
    host = []
    for leaf in out:
        if n_dev == 1:
            host.append(np.asarray(leaf)[:count])
            continue
        if _multiprocess():
            from jax.experimental import multihost_utils

            full = np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
            parts = full.reshape((n_dev, -1) + full.shape[1:])[:, :per_dev]
        else:
            shards = sorted(leaf.addressable_shards, key=lambda s: s.index[0].start or 0)
            parts = [np.asarray(s.data)[:per_dev] for s in shards]
        host.append(np.concatenate(parts)[:count])
    return host


def _agree(value: int) -> int:
    """Process 0's value on every process (decisions that shape the programs must agree)."""
    if not _multiprocess():
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _agree_float(value: float) -> float:
    """Process 0's float on every process."""
    if not _multiprocess():
        return value
    from jax.experimental import multihost_utils

    return float(multihost_utils.broadcast_one_to_all(np.float32(value)))


def barrier(name: str) -> None:
    """Wait for every process (no-op in one process)."""
    if _multiprocess():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


class Sweep:
    """One sweep on the devices: ``run(ranges, on_block)`` computes the points of ``ranges`` and hands
    every finished call to ``on_block(start, count, host_leaves)``, plus ``failed`` unless
    ``on_error="raise"``: a bool per point of the call, the points whose
    model raised (found by bisection, see `_search`; their leaves hold `_failures.fill_value`) and,
    under ``"mark"``, those with a non-finite output.

    With ``local`` (a Zarr store), each process gets only the rows its own devices computed (no
    gather): ``on_block`` sees that process's ``start, count``. ``quantum``: every call runs a
    multiple of this many chunks per device (so processes' shares can be whole store chunks)."""

    def __init__(self, op: str, static: Static, space: AbstractSpace, dyn: Any, arr_struct: Any, n_vmap: int,
                 max_map: int, devices: tuple, key: Any = None, on_error: str = "raise", local: bool = False,
                 quantum: int = 1):
        self.op, self.static, self.n_vmap, self.max_map, self.devices = op, static, n_vmap, max_map, devices
        self.on_error = on_error
        self.local, self.quantum = local and _multiprocess(), quantum
        self.space = place(space, devices)
        self.dyn = place(dyn, devices)
        self.rng = place(key, devices)
        self.user_space = space
        self.structs = jax.tree.leaves(arr_struct)
        self.G = len(devices) * n_vmap
        self.compiled, self.key = compile_sweep(static, arr_struct, n_vmap, max_map, devices, self.space, self.dyn,
                                                self.rng)

    def _call(self, start: int, n_map: int):
        out = self.compiled(self.space, self.user_space.block_start(start), np.int32(n_map), self.dyn, self.rng,
                            first_arg(self.rng, start))
        return jax.tree.leaves(out)

    def _get(self, out, n_map: int, count: int) -> list[np.ndarray]:
        return _fetch(out, len(self.devices), n_map * self.n_vmap, count)

    def _get_local(self, out, start: int, n_map: int, count: int) -> tuple[int, int, list[np.ndarray]]:
        """This process's rows of a call: its devices are contiguous in the mesh (`_select_devices`)."""
        per_dev, buf = n_map * self.n_vmap, self.max_map * self.n_vmap
        host, first = [], 0
        for leaf in out:
            shards = sorted(leaf.addressable_shards, key=lambda s: s.index[0].start or 0)
            first = (shards[0].index[0].start or 0) // buf * per_dev
            host.append(np.concatenate([np.asarray(s.data)[:per_dev] for s in shards]))
        n = max(0, min(count - first, len(host[0]) if host else 0))
        return start + first, n, [h[:n] for h in host]

    @quiet_callbacks()
    def run(self, ranges: list[tuple[int, int]], on_block: Callable[..., None]) -> None:
        G, pending, last_ready, q = self.G, collections.deque(), 0.0, self.quantum

        def size_for(rate: float) -> int:  # chunks per device for a call of about _CALL_SECONDS
            return _agree(max(q, min(self.max_map, int(_CALL_SECONDS * rate / G)) // q * q))

        # A program that ran before knows its speed; otherwise a first call of one chunk per device
        # measures it (and is waited for before the next call is sized).
        known = _RATES.get(self.key)
        probe = bool(_agree(known is None))
        n_map_cur = q if probe else size_for(known or 1.0)  # (only process 0's value counts)

        def finish() -> float:
            nonlocal last_ready
            start, count, n_map, out, t0 = pending.popleft()
            failed = None
            try:
                if isinstance(out, Exception):  # the call failed when dispatched
                    raise out
                if self.local:
                    s0, c0, host = self._get_local(out, start, n_map, count)
                else:
                    s0, c0, host = start, count, self._get(out, n_map, count)
            except Exception as e:
                if self.on_error == "raise":
                    pending.clear()
                    raise self._locate(start, count, e) from e
                (s0, c0), (host, failed) = (start, count), self._salvage(start, count, e)
            t1 = time.perf_counter()
            took = t1 - max(t0, last_ready)
            last_ready = t1
            rate = count / max(took, 1e-6)
            if failed is None and (took > 0.01 or self.key not in _RATES):  # short calls measure dispatch
                _RATES[self.key] = rate
            if self.on_error != "raise":
                failed = np.zeros(c0, bool) if failed is None else failed
                if self.on_error == "mark":
                    failed |= _failures.nonfinite(host, c0)
            on_block(s0, c0, host, *(() if failed is None else (failed,)))
            return rate

        for a, b in ranges:
            p = a
            while p < b:
                count = min(b - p, n_map_cur * G)
                n_map = -(-count // (G * q)) * q
                try:
                    out = self._call(p, n_map)
                except Exception as e:
                    if self.on_error == "raise":
                        raise self._locate(p, count, e) from e
                    out = e
                pending.append((p, count, n_map, out, time.perf_counter()))
                p += count
                if probe or len(pending) > 1:
                    n_map_cur = size_for(finish())
                    probe = False
        while pending:
            finish()

    def _search(self, lo: int, hi: int, on_rows: Callable, on_error: Callable, first_only: bool) -> bool:
        """Points ``[lo, hi)`` failed as one call: retry them in halves (whole chunks per device), handing
        the rows of halves that pass to ``on_rows(start, leaves)`` and bisecting those that fail, down
        to one chunk per device, whose points are then run one at a time (``on_error(i, exc)`` for each
        that raises). With ``first_only``, stop at the first failing point. Whether a point failed.

        Cost: about two calls per level for each failing point (log2 of the calls' chunks per device
        levels) and, per failing chunk, one single-point call per point of the chunk."""
        G = self.G
        n_map = -(-(hi - lo) // G)
        if n_map == 1:
            return self._points(lo, hi, on_rows, on_error, first_only)
        mid, found = lo + (n_map // 2) * G, False
        for a, b in ((lo, mid), (mid, hi)):
            m = -(-(b - a) // G)
            try:
                host = self._get(self._call(a, m), m, b - a)
            except Exception:
                found = self._search(a, b, on_rows, on_error, first_only) or found
                if found and first_only:
                    return True
                continue
            on_rows(a, host)
        return found

    def _points(self, lo: int, hi: int, on_rows: Callable, on_error: Callable, first_only: bool) -> bool:
        # one device: a replicated program would broadcast the failing callback's result to the
        # other devices, which then wait forever for it
        space, one = self.user_space, self.devices[:1]
        sp, dyn, rng = place(space, one), place(self.dyn, one), place(self.rng, one)
        point = compile_point(self.static, sp, dyn, rng)
        found = False
        for i in range(lo, min(hi, space.N)):
            try:
                out = jax.block_until_ready(point(sp, space.block_start(i), dyn, rng, first_arg(rng, i)))
            except Exception as e:
                on_error(i, e)
                found = True
                if first_only:
                    return True
                continue
            on_rows(i, [np.asarray(x)[None] for x in jax.tree.leaves(out)])
        return found

    def _salvage(self, start: int, count: int, err: Exception) -> tuple[list[np.ndarray], np.ndarray]:
        """The rows of a failed call and which of its points raised (their rows hold the fill value)."""
        if _multiprocess():
            raise ModelError(f"{self.op}: the model raised on a point in [{start}, {start + count}) "
                             f"({short_error(err)}); on_error={self.on_error!r} cannot find the failing points in a "
                             "multi-process run: run the sweep in one process, or make the model return NaN "
                             "instead of raising") from err
        host = [np.empty((count,) + tuple(s.shape), s.dtype) for s in self.structs]
        failed = np.zeros(count, bool)

        def rows(a: int, leaves: list[np.ndarray]) -> None:
            for dst, src in zip(host, leaves, strict=True):
                dst[a - start : a - start + len(src)] = src

        def bad(i: int, e: Exception) -> None:
            failed[i - start] = True
            for dst in host:
                dst[i - start] = _failures.fill_value(dst.dtype)

        self._search(start, start + count, rows, bad, first_only=False)
        return host, failed

    def _locate(self, start: int, count: int, err: Exception) -> ModelError:
        """The error naming the first failing point of a failed call (bisected, then one by one)."""
        op, space = self.op, self.user_space
        what = short_error(err)
        if _multiprocess():
            return ModelError(f"{op}: the model failed on a point in [{start}, {start + count}): {what}")
        box: list[ModelError] = []

        def bad(i: int, e: Exception) -> None:
            box.append(ModelError(f"{op}: the model failed on {describe_point(space, i)}: {short_error(e)}", i))

        self._search(start, start + count, lambda a, leaves: None, bad, first_only=True)
        return box[0] if box else ModelError(f"{op}: the model failed on a point in [{start}, {start + count}): {what}")


def auto_n_vmap(n_points: int, n_dev: int, bytes_per_point: int, platform: str,
                point_seconds: float | None = None) -> int:
    """The automatic chunk: 1024 points on CPU (2**14 on accelerators), fewer when a chunk's outputs
    would pass a quarter of the call buffer or (given the time of one point) a chunk would take more
    than `_CALL_SECONDS` (a call, so a checkpoint block, is at least a chunk per device), then evened
    out so the devices' shares split into equal chunks (least padding)."""
    cap = _CHUNK_CPU if platform == "cpu" else _CHUNK_ACCEL
    cap = max(1, min(cap, _CALL_BYTES // (4 * max(bytes_per_point, 1))))
    if point_seconds is not None and point_seconds > 0:
        cap = max(1, min(cap, int(_CALL_SECONDS / point_seconds)))
    per_dev = -(-n_points // n_dev)
    return -(-per_dev // -(-per_dev // cap))


def point_seconds(static: Static, space: AbstractSpace, dyn: Any, devices: tuple, key: Any = None) -> float | None:
    """The time of one point of the model (point 0, compiled alone, on the first device), or None if
    it fails there (the sweep then finds and reports the failure itself). Costs one compile of the
    model, so the executors ask only when the size of a call matters (checkpoints, a progress bar)."""
    sp, dn, rng = place(space, devices[:1]), place(dyn, devices[:1]), place(key, devices[:1])
    try:
        point = compile_point(static, sp, dn, rng)
        args = (sp, space.block_start(0), dn, rng, first_arg(rng, 0))
        t0 = time.perf_counter()
        jax.block_until_ready(point(*args))  # the first run also moves the inputs
        took = time.perf_counter() - t0
        if took < _CALL_SECONDS / 4:
            t0 = time.perf_counter()
            jax.block_until_ready(point(*args))
            took = time.perf_counter() - t0
    except Exception:
        return None
    return float(_agree_float(took))


def max_chunks(n_points: int, G: int, bytes_per_point: int) -> int:
    """Chunks per device in the largest call: within `_CALL_BYTES`, the sweep, and 32-bit offsets."""
    return max(1, min(_CALL_BYTES // (G * max(bytes_per_point, 1)), -(-n_points // G), _MAX // G))


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


def _interactive() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        try:
            shell = ipython.get_ipython()
            if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
                return True
        except Exception:
            pass
    try:
        return sys.stderr.isatty()
    except Exception:
        return False


def shows_progress(enabled: bool) -> bool:
    """Whether `progress_bar` would show a bar (on a terminal or in a notebook, on process 0, with tqdm)."""
    if not enabled or jax.process_index() != 0 or not _interactive():
        return False
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    """A tqdm bar (points, points/s, ETA) when `shows_progress`; else None."""
    if not shows_progress(enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="pt", unit_scale=True, dynamic_ncols=True)
