"""`SequentialExecution`: one point at a time, for debugging (re-exported by `namedax.execution`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ..spaces._base import AbstractSpace
from . import _engine as _e
from . import _store
from ._checkpoint import Checkpoint
from ._engine import ModelError
from ._executors import _check_checkpoint, _check_common, _check_store, _extras, _open_checkpoint, _store_manifest
from ._failures import OnError, check_rerun, check_same_outputs, fill_value, nonfinite, runs, start_arrays
from ._keys import point_key
from ._results import Layout, OutputError, Results


class _Blocks:
    """SequentialExecution's checkpoint writes: the points stored since the last block, written as a
    block about every `_e._CALL_SECONDS` and at the end of each range."""

    def __init__(self, ckpt: Checkpoint | None, arrays: list):
        self.ckpt, self.arrays, self.lo, self.t = ckpt, arrays, 0, time.perf_counter()

    def start(self, lo: int) -> None:
        self.lo, self.t = lo, time.perf_counter()

    def flush(self, upto: int, force: bool = False) -> None:
        """Points [lo, upto) are stored: write them if due (or ``force``)."""
        if self.ckpt is None or upto <= self.lo or not (force or time.perf_counter() - self.t >= _e._CALL_SECONDS):
            return
        self.ckpt.write(self.lo, upto - self.lo, [a[self.lo : upto] for a in self.arrays])
        self.start(upto)


class SequentialExecution:
    """Run a model over every point of a space one point at a time, for debugging.

    The model is compiled once (``jax.jit``) and called point after point, so ``jax.debug.print``
    and ``equinox.error_if`` report per point, and an error names its point. A model that cannot be
    traced (Python control flow on parameter values) is called directly, without jit, on each point
    (``space[i]``); then its outputs are checked to have the same structure at every point (Python
    numbers it returns are outputs, stored as numpy values). Returns the same `Results` as
    `ParallelExecution`.

    Args:
        model: the function, ``model(state, *args, **kwargs)``.
        statespace: a space from `namedax.spaces`.
        *args: extra positional arguments of the model.
        checkpoint_dir: a directory where finished points are written, in blocks of about a second
            of compute; a run that finds blocks of the same sweep there resumes from them, as
            `ParallelExecution` does (the same format, manifest and checks; a failing point leaves
            the points before it saved).
        checkpoint_key: a string that identifies the model's arguments instead of their content
            (see `ParallelExecution`).
        store: a Zarr store to stream the outputs to, and resume from, as for `ParallelExecution`.
        progress: show a progress bar (needs tqdm) on a terminal or in a notebook.
        key: a random key: the model gets ``key=point_key(key, i)`` at point ``i``, the same keys
            as under `ParallelExecution` (see there).
        on_error: ``"raise"`` (default), ``"nan"`` or ``"mark"``, as for `ParallelExecution`;
            here every point is run on its own, so an exception of any kind (also from a model run
            without jit) fails just its point.
        **kwargs: extra keyword arguments of the model. ``checkpoint_dir``, ``checkpoint_key``,
            ``store``, ``progress``, ``key`` and ``on_error`` are always the executor's own: a model keyword
            argument of one of these names cannot be passed here (it would silently set the
            option); bind it first, e.g. with ``functools.partial(model, progress=p)``.

    Raises:
        TypeError: ``model`` is not callable, ``statespace`` is not a space, ``progress`` is not a
            bool, ``checkpoint_dir`` is not a path, ``checkpoint_key`` is not a string, ``key`` is
            not a key or the model takes no keyword argument ``key``.
        ValueError: ``checkpoint_key`` without ``checkpoint_dir``; ``on_error`` is not one of
            ``"raise"``, ``"nan"``, ``"mark"``.

    Examples:
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import SequentialExecution
        >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=3)
        >>> def model(state, scale):
        ...     if float(state["a"]) > 0.6:       # Python control flow: runs without jit
        ...         return state["a"] * scale
        ...     return -state["a"]
        >>> list(SequentialExecution(model, space, 10.0).run())
        [np.float32(-0.0), np.float32(-0.5), np.float32(10.0)]
    """

    def __init__(self, model: Callable, statespace: AbstractSpace, *args: Any,
                 checkpoint_dir: str | os.PathLike | None = None, checkpoint_key: str | None = None,
                 progress: bool = True, key: Any = None, on_error: OnError = "raise",
                 store: str | os.PathLike | None = None, **kwargs: Any):
        op = "SequentialExecution"
        self.key, self.on_error = _check_common(op, model, statespace, progress, key, on_error)
        _check_checkpoint(op, checkpoint_dir, checkpoint_key)
        self.store = _check_store(op, store, checkpoint_dir)
        self.model = model
        self.statespace = statespace
        self.args = args
        self.kwargs = kwargs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_key = checkpoint_key
        self.progress = bool(progress)

    def run(self) -> Results:
        """Evaluate the model at every point, in order.

        Returns:
            `Results` over the space (with ``failed`` under ``on_error="mark"``).

        Raises:
            ModelError: the model raised on a point (under ``on_error="raise"``, or on every point),
                or (when run without jit) returned a different structure, shape or dtype at some
                point than at the first; the message names the point.
            TypeError: the model returns no array (``None``, ``{}``) or a typed PRNG key; with
                ``checkpoint_dir``, an argument's content cannot be read (see ``checkpoint_key``).
            ValueError: ``checkpoint_dir`` holds another sweep, is in use by another running
                sweep, or cannot be written.
        """
        return self._run("SequentialExecution", None, self.args, self.kwargs, None, self.on_error)

    def rerun(self, results: Results, *args: Any, failed_only: bool = True, **kwargs: Any) -> Results:
        """Recompute only the failed points of ``results`` with ``model(state, *args, **kwargs)``
        (the arguments replace the executor's), under ``on_error="mark"``; as
        `ParallelExecution.rerun` (``failed_only=False``: every point).

        Returns:
            New `Results`: the recomputed rows replaced, ``failed`` updated.

        Raises:
            TypeError / ValueError: as `ParallelExecution.rerun`.

        Examples:
            >>> import equinox as eqx
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import SequentialExecution
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=3.0, free=True)}, n=4)
            >>> def model(state, limit):
            ...     return eqx.error_if(state["a"], state["a"] > limit, "too large")
            >>> ex = SequentialExecution(model, space, 1.5, on_error="mark", progress=False)
            >>> results = ex.run()
            >>> results.failed, results[:]
            (array([False, False,  True,  True]), array([ 0.,  1., nan, nan], dtype=float32))
            >>> ex.rerun(results, 10.0)[:]
            array([0., 1., 2., 3.], dtype=float32)
        """
        op = "SequentialExecution.rerun"
        was = check_rerun(op, self, results, failed_only)
        if not was.any():
            return results
        return self._run(op, runs(was), args, kwargs, results, "mark")

    def _run(self, op: str, ranges: list | None, args: tuple, kwargs: dict, base: Results | None,
             on_error: str) -> Results:
        """The points of ``ranges`` (None: the sweep, less what the checkpoint holds) into a copy of
        ``base`` (or new arrays): compiled once, else eagerly."""
        space, model, key = self.statespace, self.model, self.key
        dyn, static = _e.split(model, args, kwargs)
        try:
            layout, _ = _e.output_layout(static, space, dyn, key)
        except OutputError as e:
            raise TypeError(f"{op}: {e}") from None
        except Exception as e:
            err = _e.diagnose_trace_error(op, model, space, args, kwargs, e, key)
            if err.point is not None and on_error == "raise":  # the model itself raised
                raise err  # its __cause__: the model's own error
            return self._run_eager(op, ranges, args, kwargs, base, on_error, err)
        if base is not None:
            check_same_outputs(op, layout, base)
        rec, ranges = self._record(op, layout, base, on_error, ranges)  # too large: refused before compiling
        try:
            compiled = _e.compile_point(static, space, dyn, key)
            with _e.quiet_callbacks():  # a failing point's error goes into the ModelError, not the log
                for a, b in ranges:
                    rec.start(a)
                    prev = None  # the previous point's outputs, stored once this point is dispatched
                    for i in range(a, b):
                        try:
                            out, err = compiled(space, space.block_start(i), dyn, key, _e.first_arg(key, i)), None
                        except Exception as e:
                            out, err = None, e
                        if prev is not None:
                            rec.put(*prev)
                        prev = None
                        if err is not None:
                            rec.fail(i, err)
                        else:
                            prev = (i, jax.tree.leaves(out))
                    if prev is not None:
                        rec.put(*prev)
                    rec.end(b)
        finally:
            rec.close()
        return rec.results()

    def _record(self, op: str, layout: Layout, base: Results | None, on_error: str, ranges: list | None):
        """Where the points go (memory, with the checkpoint of a whole run; or the store) and the
        ranges left. ``ranges`` None: the whole run; else a rerun of those, in memory."""
        space = self.statespace
        if ranges is None and self.store is not None:
            # point by point, a chunk of 4096 points is seconds of work (timing a point would run the
            # model, and its prints, once more)
            target = min(_store.chunk_target(layout.bytes_per_point, None, 1, _e._CALL_SECONDS), 4096)
            st, ranges = _store.Store.open(op, self.store, _store_manifest(self, layout, op), layout, space, target,
                                           extras=_extras(on_error))
            return _PointRecord(op, space, layout, [], None, None, on_error, self.progress, ranges, st), ranges
        arrays, failed = start_arrays(layout, space.N, base, on_error, op)
        ckpt = None
        if ranges is None:
            ckpt, ranges = _open_checkpoint(op, self, layout, arrays if failed is None else arrays + [failed])
        return _PointRecord(op, space, layout, arrays, failed, ckpt, on_error, self.progress, ranges), ranges

    def _run_eager(self, op: str, ranges: list | None, args: tuple, kwargs: dict, base: Results | None,
                   on_error: str, first_error: ModelError) -> Results:
        """A model that cannot be traced, called on each point; the output structure is the first
        point's that does not raise, and every point must give the same."""
        space, model, key = self.statespace, self.model, self.key

        def call(i: int) -> Any:
            kw = kwargs if key is None else {**kwargs, "key": point_key(key, int(i))}
            try:
                out = model(space[i], *args, **kw)
            except Exception as e:
                return e
            return jax.tree.map(_number_as_array, out)  # Python numbers are outputs here, not structure

        # the output structure, from the first point (in order) that does not raise
        seen: dict[int, Any] = {}
        for i in _points(ranges if ranges is not None else [(0, space.N)]):
            seen[i] = call(i)
            if not isinstance(seen[i], Exception):
                break
            if on_error == "raise":
                raise ModelError(f"{op}: the model raised on {_e.describe_point(space, i)}: "
                                 f"{_e.short_error(seen[i])}", int(i)) from seen[i]
        else:  # every point raised: there is no output structure to fill
            raise ModelError(f"{op}: the model raised on every point; the first: {first_error}",
                             first_error.point) from first_error.__cause__
        first_i = next(reversed(seen))
        try:
            layout = Layout(seen[first_i])
        except OutputError as e:
            raise TypeError(f"{op}: on {_e.describe_point(space, first_i)}, {e}") from None
        first = layout.describe()
        if base is not None:
            check_same_outputs(op, layout, base)
        rec, ranges = self._record(op, layout, base, on_error, ranges)
        try:
            for a, b in ranges:
                rec.start(a)
                for i in range(a, b):
                    out = seen.pop(i) if i in seen else call(i)
                    if isinstance(out, Exception):
                        rec.fail(i, out, verb="raised")
                        continue
                    here = Layout(out)
                    if here.describe() != first:
                        rec.fail(i, ModelError(
                            f"{op}: the model returned a different structure on {_e.describe_point(space, i)} than "
                            f"on {_e.describe_point(space, first_i)}: {here.describe()} instead of {first}; every "
                            "point must give the same PyTree of the same shapes and dtypes", int(i)), always=True)
                    rec.put(i, [x for x in jax.tree.leaves(out) if _is_array(x)])
                rec.end(b)
        finally:
            rec.close()
        return rec.results()

    def __repr__(self) -> str:
        name = getattr(self.model, "__qualname__", type(self.model).__name__)
        return f"SequentialExecution({name}, {self.statespace!r})"


def _points(ranges: list):
    for a, b in ranges:
        yield from range(a, b)


class _PointRecord:
    """SequentialExecution's host side: each point's outputs stored (or the fill value of a failed
    point) in memory or in the store, failures marked under ``"mark"``, blocks written to the
    checkpoint about every `_e._CALL_SECONDS` and at the end of each range, and the progress bar."""

    def __init__(self, op: str, space, layout: Layout, arrays: list, failed, ckpt: Checkpoint | None,
                 on_error: str, progress: bool, ranges: list, st: Any = None):
        self.op, self.space, self.layout, self.arrays, self.failed = op, space, layout, arrays, failed
        self.on_error, self.ckpt, self.st = on_error, ckpt, st
        self.blocks = _Blocks(ckpt, arrays if failed is None else arrays + [failed])
        total = sum(b - a for a, b in ranges)
        n = space.N if ckpt is not None or st is not None else total
        self.bar = _e.progress_bar(progress, n, n - total, "sweep")

    def start(self, a: int) -> None:
        self.blocks.start(a)

    def put(self, i: int, leaves: list) -> None:
        try:
            rows = [np.asarray(leaf) for leaf in leaves]
        except Exception as e:  # a run-time error surfaces when the result is read
            self.fail(i, e)
            return
        self._write(i, rows, self.on_error == "mark" and bool(nonfinite([r[None] for r in rows], 1)[0]))

    def fail(self, i: int, e: Exception, always: bool = False, verb: str = "failed") -> None:
        """Point ``i`` raised: stop (``"raise"``, or ``always``), keeping what is done, or fill it."""
        if self.on_error == "raise" or always:
            self.blocks.flush(i, force=True)  # what is done is kept: a resume starts at the failing point
            if isinstance(e, ModelError):
                raise e
            raise ModelError(f"{self.op}: the model {verb} on {_e.describe_point(self.space, i)}: "
                             f"{_e.short_error(e)}", int(i)) from e
        lay = self.layout
        self._write(i, [np.full(sh, fill_value(dt), dt) for sh, dt in zip(lay.shapes, lay.dtypes, strict=True)], True)

    def _write(self, i: int, rows: list, bad: bool) -> None:
        if self.st is not None:
            extra = [np.array([bad])] if self.on_error == "mark" else []
            self.st.write(i, 1, [r[None] for r in rows] + extra)
        else:
            for dst, r in zip(self.arrays, rows, strict=True):
                dst[i] = r
            if self.failed is not None:
                self.failed[i] = bad
        if self.bar is not None:
            self.bar.update(1)
        self.blocks.flush(i + 1)

    def end(self, b: int) -> None:
        self.blocks.flush(b, force=True)

    def results(self) -> Results:
        if self.st is not None:
            return _store.results(self.st, self.layout, self.space)
        return Results(self.arrays, self.layout, self.space, failed=self.failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for held in (self.ckpt, self.st):
            if held is not None:
                held.close()


def _number_as_array(x) -> Any:
    return np.asarray(x) if isinstance(x, bool | int | float | complex) else x


def _is_array(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)
