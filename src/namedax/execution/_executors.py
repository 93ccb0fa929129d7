"""The public execution (re-exported by `namedax.execution`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ..core._axis import as_int
from ..core._digest import digest
from ..spaces._base import AbstractSpace
from . import _engine as _e
from . import _store
from ._checkpoint import Checkpoint, manifest
from ._engine import ModelError
from ._failures import (
    OnError,
    check_on_error,
    check_rerun,
    check_same_outputs,
    runs,
    start_arrays,
)
from ._keys import check_accepts_key, check_key
from ._results import Layout, OutputError, Results

ModelError.__module__ = "namedax.execution"  # its public home, in tracebacks


def _available() -> str:
    devs = jax.devices()
    procs = f" over {jax.process_count()} processes" if jax.process_count() > 1 else ""
    return f"{len(devs)} available device{'s' * (len(devs) != 1)}{procs}: {devs}"


def _check_common(op: str, model, statespace, progress, key, on_error) -> tuple[Any, str]:
    """Check the options both executors share; the key (checked) and the failure policy."""
    if not callable(model):
        raise TypeError(f"{op}: `model` must be callable as model(state, *args, **kwargs), got "
                        f"{type(model).__name__}: {model!r}")
    if not isinstance(statespace, AbstractSpace):
        raise TypeError(f"{op}: `statespace` must be a space from namedax.spaces (GridSpace, UniformSpace, "
                        f"DataSpace), got {type(statespace).__name__}")
    if not isinstance(progress, bool | np.bool_):
        raise TypeError(f"{op}: `progress` must be a bool, got {progress!r}")
    key = check_key(op, key)
    if key is not None:
        check_accepts_key(op, model)
    return key, check_on_error(op, on_error)


def _check_checkpoint(op: str, checkpoint_dir, checkpoint_key) -> None:
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
        raise TypeError(f"{op}: `checkpoint_dir` must be a path (str or os.PathLike) or None, got "
                        f"{type(checkpoint_dir).__name__}: {checkpoint_dir!r}")
    if checkpoint_dir is not None and os.fspath(checkpoint_dir) == "":
        raise ValueError(f"{op}: `checkpoint_dir` is the empty string; pass a directory (\".\" for the current "
                         "one) or None for no checkpoint")
    if checkpoint_key is not None and not isinstance(checkpoint_key, str):
        raise TypeError(f"{op}: `checkpoint_key` must be a string or None, got {type(checkpoint_key).__name__}: "
                        f"{checkpoint_key!r}")
    if checkpoint_key is not None and checkpoint_dir is None:
        raise ValueError(f"{op}: `checkpoint_key` is given without `checkpoint_dir`; it only names a checkpointed "
                         "sweep's arguments: pass checkpoint_dir too, or drop it")


def _open_checkpoint(op: str, ex, layout: Layout, arrays: list, writer: bool = True):
    """The executor's checkpoint (finished blocks loaded into ``arrays``) and the ranges left; or
    ``(None, [(0, N)])`` without ``checkpoint_dir``."""
    if ex.checkpoint_dir is None:
        return None, [(0, ex.statespace.N)]
    return Checkpoint.open(op, ex.checkpoint_dir, _store_manifest(ex, layout, op), arrays, writer=writer)


def _count(op: str, value, what: str) -> int | None:
    if value is None:
        return None
    return as_int(value, f"{op}: `{what}` must be an int or None")


def _check_store(op: str, store, checkpoint_dir=None):
    """``store=``: a path or None, not with ``checkpoint_dir`` (the store is its own checkpoint)."""
    if store is None:
        return None
    if not isinstance(store, str | os.PathLike):
        raise TypeError(f"{op}: `store` must be a path (str or os.PathLike) or None, got {type(store).__name__}: "
                        f"{store!r}")
    if os.fspath(store) == "":
        raise ValueError(f"{op}: `store` is the empty string; pass a path such as \"sweep.zarr\", or None")
    if checkpoint_dir is not None:
        raise ValueError(f"{op}: pass `store` or `checkpoint_dir`, not both: the store {os.fspath(store)!r} is "
                         "itself the checkpoint (an interrupted run resumes from it)")
    _store._zarr(op)  # a missing zarr fails here, not after compiling
    return store


def _store_manifest(ex, layout: Layout, op: str) -> dict:
    return manifest(ex.statespace, layout, ex.model, ex.args, ex.kwargs, key=ex.key, on_error=ex.on_error, op=op,
                    checkpoint_key=ex.checkpoint_key)


def _extras(on_error: str) -> tuple:
    """The store's per-point arrays besides the outputs: the failure record under "mark"."""
    return (("failed", np.bool_),) if on_error == "mark" else ()


def _select_devices(op: str, n_pmap: int | None) -> tuple:
    """The devices of the mesh: the first ``n_pmap`` (every process contributes equally when
    several processes run), or all of them."""
    devs = jax.devices()
    n_proc = jax.process_count()
    if n_pmap is None:
        return tuple(devs)
    if n_proc == 1:
        return tuple(devs[:n_pmap])
    if n_pmap % n_proc:
        raise ValueError(f"{op}: `n_pmap`={n_pmap} is not a multiple of the {n_proc} processes; in a multi-process "
                         f"run every process takes the same number of devices (n_pmap=None uses all); {_available()}")
    per: dict[int, list] = {}
    for d in devs:
        per.setdefault(d.process_index, []).append(d)
    k = n_pmap // n_proc
    short = {p: len(v) for p, v in per.items() if len(v) < k}
    if short:
        raise ValueError(f"{op}: `n_pmap`={n_pmap} needs {k} devices on each process, but processes {short} have "
                         f"fewer; {_available()}")
    return tuple(d for p in sorted(per) for d in per[p][:k])


class ParallelExecution:
    """Run a model over every point of a space, vectorised on each device and spread over devices.

    ``model(state, *args, **kwargs)`` is called with the state of a point (the space's state PyTree
    with the free leaves set to the point's values) and returns any PyTree of arrays (plain arrays,
    NamedArrays, dicts of them; non-array leaves are passed through as static values).

    Args:
        model: the function to sweep; it must be traceable by ``jax.vmap`` (no Python ``if`` on
            parameter values: use ``jnp.where`` / ``jax.lax.cond``).
        statespace: a space from `namedax.spaces` (`GridSpace`, `UniformSpace`, `DataSpace`).
        *args: extra positional arguments of the model (arrays are traced, the rest compiled in).
        n_vmap: points vectorised per step on each device. None chooses automatically: 1024 on CPU
            (2**14 on GPU / TPU), fewer when a chunk's outputs would take more than 16 MB, then
            evened out so each device's share splits into equal chunks (least padding). An explicit
            value is honoured.
        n_pmap: devices to use, the first ``n_pmap`` of ``jax.devices()`` (default 1); None uses
            all, across every process when ``jax.distributed`` is initialised.
        checkpoint_dir: a directory where every finished block is written; a run that finds
            blocks of the same sweep there resumes from them (see `run`).
        store: a Zarr v3 store (a directory, e.g. ``"sweep.zarr"``; needs ``namedax[zarr]``) where
            every finished block is streamed, so the outputs never have to fit in memory; `run`
            returns `Results` read lazily from it, `open_results` reopens it, and
            ``xarray.open_zarr(store)`` reads it as a labelled Dataset. It is also the checkpoint:
            a run into the store of the same sweep resumes it. Not together with ``checkpoint_dir``.
        checkpoint_key: a string that identifies the model's arguments (``*args``, ``**kwargs``
            and the model's own fields) in the checkpoint instead of their content. Needed only when
            an argument's content cannot be read (a lock, a generator, an opaque C object: the run
            refuses and says which); change the key whenever those arguments change.
        progress: show a progress bar (points, points/s, ETA; needs tqdm) when the output is a
            terminal or a notebook.
        key: a random key (``jax.random.key(seed)``; a legacy ``jax.random.PRNGKey`` is accepted
            and the model then gets legacy keys). The model is then called with the keyword
            argument ``key`` set to `point_key` ``(key, i)``, i.e. ``jax.random.fold_in(key, i)``
            for the point's flat index ``i`` (below 2**32), so results do not depend on
            ``n_vmap``, ``n_pmap``, block sizes, resumption or processes. None (default): no key.
        on_error: what a point whose model raises at run time does: ``"raise"`` (default) stops
            with a `ModelError` naming it; ``"nan"`` fills its outputs (NaN; 0 for integers, False
            for bools) and goes on; ``"mark"`` also records it, and every point with a non-finite
            output, in ``results.failed`` (see `rerun`). A raising call is bisected to its failing
            points and the others are computed (about two calls per halving per failing point,
            plus one single-point call per point of each failing chunk).
        **kwargs: extra keyword arguments of the model. ``n_vmap``, ``n_pmap``, ``checkpoint_dir``,
            ``checkpoint_key``, ``store``, ``progress``, ``key`` and ``on_error`` are always the
            executor's own: a model keyword argument of one of these names cannot be passed here (it would
            silently set the executor's option); bind it first, e.g.
            ``ParallelExecution(functools.partial(model, progress=p), space)``.

    Raises:
        TypeError: ``model`` is not callable, ``statespace`` is not a space, a count is not an int,
            ``checkpoint_dir`` is not a path, ``checkpoint_key`` is not a string, ``progress`` is
            not a bool, ``key`` is not a key, or ``key`` is given and the model takes no keyword
            argument ``key``.
        ValueError: ``checkpoint_key`` without ``checkpoint_dir``; ``n_vmap < 1``, ``n_pmap < 1``
            or more than the available devices (the message lists them); in a multi-process run,
            ``n_pmap`` not a multiple of the processes; ``on_error`` not one of ``"raise"``,
            ``"nan"``, ``"mark"``.

    Examples:
        The example of the reference implementation (tvboptim), with namedax's modules:

        >>> import jax
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import ParallelExecution
        >>>
        >>> # Define a simple model
        >>> def simulate(state):
        ...     return state['param1'] * state['param2']
        >>>
        >>> # Create parameter space
        >>> state = {
        ...     'param1': Parameter("param1", 0.0, low=0.0, high=1.0, free=True),
        ...     'param2': Parameter("param2", 0.0, low=-1.0, high=1.0, free=True)
        ... }
        >>> space = GridSpace(state, n=10)  # 100 parameter combinations
        >>>
        >>> # Set up parallel execution
        >>> n_devices = jax.device_count()
        >>> executor = ParallelExecution(
        ...     model=simulate,
        ...     statespace=space,
        ...     n_vmap=5,           # Vectorize over 5 states per device
        ...     n_pmap=n_devices    # Use all available devices
        ... )
        >>>
        >>> # Execute across all parameter combinations
        >>> results = executor.run()
        >>>
        >>> # Access individual results
        >>> first_result = results[0]
        >>> all_results = list(results)  # Convert to list
        >>> subset_results = results[10:20]  # Slice notation
        >>> float(first_result), len(all_results), subset_results.shape
        (-0.0, 100, (10,))
        >>> results.named().axes
        (Axis('param1', 10), Axis('param2', 10))
    """

    def __init__(self, model: Callable, statespace: AbstractSpace, *args: Any, n_vmap: int | None = None,
                 n_pmap: int | None = 1, checkpoint_dir: str | os.PathLike | None = None,
                 checkpoint_key: str | None = None, progress: bool = True, key: Any = None,
                 on_error: OnError = "raise", store: str | os.PathLike | None = None, **kwargs: Any):
        op = "ParallelExecution"
        self.key, self.on_error = _check_common(op, model, statespace, progress, key, on_error)
        n_vmap = _count(op, n_vmap, "n_vmap")
        n_pmap = _count(op, n_pmap, "n_pmap")
        if n_vmap is not None and not 1 <= n_vmap <= _e._MAX:
            raise ValueError(f"{op}: `n_vmap` (points vectorised per device) must be in [1, 2**31 - 1], got {n_vmap}; "
                             f"{_available()}")
        if n_pmap is not None and not 1 <= n_pmap <= jax.device_count():
            raise ValueError(f"{op}: `n_pmap` (devices to use) must be in [1, {jax.device_count()}], got {n_pmap}; "
                             f"{_available()} (n_pmap=None uses all; on CPU, force more with XLA_FLAGS="
                             "--xla_force_host_platform_device_count=N set before importing jax)")
        _check_checkpoint(op, checkpoint_dir, checkpoint_key)
        self.store = _check_store(op, store, checkpoint_dir)
        self._devices = _select_devices(op, n_pmap)
        if n_vmap is not None and n_vmap * len(self._devices) > _e._MAX:
            raise ValueError(f"{op}: n_vmap * devices = {n_vmap} * {len(self._devices)} passes 2**31 - 1 points per "
                             "step; use a smaller n_vmap")
        self.model = model
        self.statespace = statespace
        self.args = args
        self.kwargs = kwargs
        self.n_vmap = n_vmap
        self.n_pmap = n_pmap
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_key = checkpoint_key
        self.progress = bool(progress)

    @property
    def devices(self) -> tuple:
        """The devices the sweep runs on."""
        return self._devices

    def run(self) -> Results:
        """Evaluate the model at every point of the space.

        With ``checkpoint_dir``, every finished block is written there (atomically: an interrupted
        run, even by SIGKILL, leaves only complete blocks) next to a manifest that fingerprints the
        space, the model's output structure, the model (its code, what its closures capture and the
        functions it calls) and its arguments. A later ``run()`` with the same directory loads the
        finished blocks and computes only the rest; the results equal an uninterrupted run's. A
        directory holding another sweep is refused, never mixed in; so is a directory another running
        sweep owns. A block file that is not this sweep's intact block of its range is logged by name,
        set aside as ``<name>.rejected`` and recomputed. In a multi-process run the directory must be
        shared; process 0 writes it.

        With ``on_error="mark"`` the blocks also hold their part of ``results.failed``; the key and
        the policy are part of the manifest (another key or policy is another sweep).

        With ``store``, every finished block goes to the Zarr store instead (see
        `namedax.execution.open_results` and the "Results on disk" guide): the store is the
        checkpoint in the same way (same manifest, same refusals), chunks are flagged done only
        after their data is written, and under ``jax.distributed`` each process writes the chunks
        its own devices computed (nothing is gathered).

        Returns:
            `Results` over the space (on every process, in a multi-process run), with ``failed``
            under ``on_error="mark"``; with ``store``, backed by the store and read lazily.

        Raises:
            ModelError: the model could not be traced, or (under ``on_error="raise"``) raised on a
                point (the message names it; a model that raises at run time, e.g. through
                ``equinox.error_if``, is bisected down to the failing point); under ``"nan"`` or
                ``"mark"``, a model raising at run time in a multi-process run.
            TypeError: the model returns no array (``None``, ``{}``) or a typed PRNG key; with
                ``checkpoint_dir``, an argument's content cannot be read (see ``checkpoint_key``).
            ValueError: ``checkpoint_dir`` (or ``store``) holds another sweep (another space, output
                structure, model or arguments), is in use by another running sweep, or cannot be
                written; ``store`` is a non-empty directory that is not a sweep store.
        """
        op = "ParallelExecution"
        space, model, devices = self.statespace, self.model, self._devices
        dyn, static = _e.split(model, self.args, self.kwargs)
        layout, arr_struct = self._layout(op, static, dyn, self.args, self.kwargs)
        n, n_dev, bpp = space.N, len(devices), layout.bytes_per_point
        in_memory = self.store is None
        arrays = layout.allocate(n, op) if in_memory else []
        failed = np.zeros(n, bool) if self.on_error == "mark" and in_memory else None
        # before any compute: an unusable checkpoint directory fails now; the failure record is a block leaf too
        ckpt, ranges = _open_checkpoint(op, self, layout, arrays if failed is None else arrays + [failed],
                                        writer=jax.process_index() == 0)
        st = None
        try:
            n_vmap = self.n_vmap
            if self.store is not None:  # before any compute: an unusable store fails now
                st, ranges, n_vmap = self._open_store(op, static, space, dyn, layout, n_vmap)
            if ckpt is not None or st is not None:
                seen = int(digest(ranges)[:7], 16)
                if _e._agree(seen) != seen:
                    what = "checkpoint_dir" if ckpt is not None else "store"
                    raise ValueError(f"{op}: processes see different blocks in {what} "
                                     f"{self.checkpoint_dir or self.store!r}; in a multi-process run it must be one "
                                     "directory that every process shares")
            if n_vmap is None:  # a slow model gets smaller chunks, so blocks (checkpoints, progress) stay short
                timed = _e._agree(int(self.checkpoint_dir is not None or _e.shows_progress(self.progress)))
                per_point = _e.point_seconds(static, space, dyn, devices, self.key) if timed else None
                n_vmap = _e.auto_n_vmap(n, n_dev, bpp, devices[0].platform, per_point)
            todo = self._compute(op, static, dyn, layout, arr_struct, ranges, n_vmap, arrays, failed, ckpt,
                                 self.on_error, st)
            if todo and (ckpt is not None or st is not None):  # every block on disk before any process reads
                _e.barrier("namedax checkpoint written")
            if st is not None:
                return _store.results(st, layout, space)
            return Results(arrays, layout, space, failed=failed)
        finally:
            for held in (ckpt, st):  # the directory is free again for another run
                if held is not None:
                    held.close()

    def _open_store(self, op, static, space, dyn, layout, n_vmap):
        """Open (create, or check and resume) the store: it, the flat ranges to compute, and n_vmap
        (chosen first, since the chunks are sized from it and from the time of a point)."""
        devices = self._devices
        per_point = _e.point_seconds(static, space, dyn, devices, self.key)
        if n_vmap is None:
            n_vmap = _e.auto_n_vmap(space.N, len(devices), layout.bytes_per_point, devices[0].platform, per_point)
        target = _store.chunk_target(layout.bytes_per_point, per_point, n_vmap, _e._CALL_SECONDS, devices[0])
        multiple = n_vmap * len(devices) // jax.process_count() if jax.process_count() > 1 else 1
        st, ranges = _store.Store.open(op, self.store, _store_manifest(self, layout, op), layout, space, target,
                                       jax.process_index() == 0, uniform=jax.process_count() > 1, multiple=multiple,
                                       extras=_extras(self.on_error))
        return st, ranges, n_vmap

    def rerun(self, results: Results, *args: Any, failed_only: bool = True, **kwargs: Any) -> Results:
        """Recompute only the failed points of ``results`` (``results.failed``, from a run with
        ``on_error="mark"``), calling ``model(state, *args, **kwargs)``: the arguments replace the
        executor's (pass them all again, e.g. with a smaller step size).

        The points keep their flat indices, so they get the same keys. They are computed under
        ``on_error="mark"``: a point that raises or returns non-finite values again stays marked.
        Nothing is written to ``checkpoint_dir``. Consecutive failed points are computed together,
        in chunks no longer than the average run of them.

        With ``failed_only=False`` every point is recomputed (``results`` then need no failure
        record). ``failed_only`` is the method's own keyword, not passed to the model.

        Returns:
            New `Results`: the rows of the recomputed points replaced, ``failed`` updated.

        Raises:
            TypeError: ``results`` is not a `Results`.
            ValueError: ``results`` have no failure record or are of another space, or the model
                returns another output structure with these arguments.

        Examples:
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import ParallelExecution
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=4.0, free=True)}, n=5)
            >>> def model(state, dt):
            ...     return jnp.where(state["a"] * dt > 1.0, jnp.inf, state["a"] * dt)   # "diverges" for large steps
            >>> ex = ParallelExecution(model, space, 0.5, on_error="mark")
            >>> results = ex.run()
            >>> results.failed
            array([False, False, False,  True,  True])
            >>> fixed = ex.rerun(results, 0.25)
            >>> fixed.failed, fixed[:]
            (array([False, False, False, False, False]), array([0.  , 0.5 , 1.  , 0.75, 1.  ], dtype=float32))
        """
        op = "ParallelExecution.rerun"
        was = check_rerun(op, self, results, failed_only)
        ranges = runs(was)
        if not ranges:
            return results
        dyn, static = _e.split(self.model, args, kwargs)
        layout, arr_struct = self._layout(op, static, dyn, args, kwargs)
        check_same_outputs(op, layout, results)
        n_dev, todo = len(self._devices), int(was.sum())
        n_vmap = self.n_vmap or _e.auto_n_vmap(todo, n_dev, layout.bytes_per_point, self._devices[0].platform)
        n_vmap = max(1, min(n_vmap, -(-todo // (len(ranges) * n_dev))))  # scattered points: small chunks
        arrays, failed = start_arrays(layout, self.statespace.N, results, "mark")
        self._compute(op, static, dyn, layout, arr_struct, ranges, n_vmap, arrays, failed, None, "mark")
        return Results(arrays, results._layout, results.space, failed=failed)

    def _layout(self, op: str, static, dyn, args: tuple, kwargs: dict):
        try:
            return _e.output_layout(static, self.statespace, dyn, self.key)
        except OutputError as e:
            raise TypeError(f"{op}: {e}") from None
        except Exception as e:  # its cause: the model's error
            raise _e.diagnose_trace_error(op, self.model, self.statespace, args, kwargs, e, self.key)

    def _compute(self, op: str, static, dyn, layout: Layout, arr_struct, ranges: list, n_vmap: int, arrays: list,
                 failed: np.ndarray | None, ckpt: Checkpoint | None, on_error: str, st: Any = None) -> int:
        """Compute ``ranges`` into ``arrays`` (and ``failed``), writing blocks to ``ckpt``, or into the
        store ``st``; the points done."""
        space, devices, n = self.statespace, self._devices, self.statespace.N
        max_map = _e.max_chunks(n, len(devices) * n_vmap, layout.bytes_per_point)
        quantum = 1 if st is None else st.quantum(n_vmap, devices)  # process shares in whole chunks
        max_map = max(quantum, max_map // quantum * quantum)
        todo = sum(b - a for a, b in ranges)
        saved = 0
        bar = _e.progress_bar(self.progress, n, n - todo, "sweep") if todo else None
        try:
            if todo:
                sweep = _e.Sweep(op, static, space, dyn, arr_struct, n_vmap, max_map, devices, self.key, on_error,
                                 local=st is not None, quantum=quantum)

                def on_block(start: int, count: int, host: list[np.ndarray], bad: np.ndarray | None = None) -> None:
                    nonlocal saved
                    if st is not None:  # (this process's rows only)
                        st.write(start, count, host + ([bad] if on_error == "mark" else []))
                        if bar is not None:
                            bar.update(min(count * jax.process_count(), n - bar.n))
                        return
                    if count == n:  # the whole sweep in one call: keep its arrays, no copy
                        arrays[:] = host
                    else:
                        for dst, src in zip(arrays, host, strict=True):
                            dst[start : start + count] = src
                    if failed is not None:
                        failed[start : start + count] = bad
                    if ckpt is not None:
                        kept = arrays if failed is None else arrays + [failed]
                        ckpt.write(start, count, [a[start : start + count] for a in kept])
                        saved += 1
                    if bar is not None:
                        if ckpt is not None:
                            bar.set_postfix_str(f"saved {saved} block{'s' * (saved != 1)}", refresh=False)
                        bar.update(count)

                sweep.run(ranges, on_block)
        finally:
            if bar is not None:
                bar.close()
        return todo

    def __repr__(self) -> str:
        name = getattr(self.model, "__qualname__", type(self.model).__name__)
        return (f"ParallelExecution({name}, {self.statespace!r}, n_vmap={self.n_vmap}, "
                f"devices={len(self._devices)})")
