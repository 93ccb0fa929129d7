"""The public execution (re-exported by `namedax.execution`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np

from ..core._axis import as_int
from ..core._digest import digest
from ..spaces._base import AbstractSpace
from . import _engine as _e
from . import _store
from ._checkpoint import Checkpoint, manifest
from ._engine import ModelError
from ._results import Layout, Results

ModelError.__module__ = "namedax.execution"  # its public home, in tracebacks


def _available() -> str:
    devs = jax.devices()
    procs = f" over {jax.process_count()} processes" if jax.process_count() > 1 else ""
    return f"{len(devs)} available device{'s' * (len(devs) != 1)}{procs}: {devs}"


def _check_common(op: str, model, statespace, progress) -> None:
    if not callable(model):
        raise TypeError(f"{op}: `model` must be callable as model(state, *args, **kwargs), got "
                        f"{type(model).__name__}: {model!r}")
    if not isinstance(statespace, AbstractSpace):
        raise TypeError(f"{op}: `statespace` must be a space from namedax.spaces (GridSpace, UniformSpace, "
                        f"DataSpace), got {type(statespace).__name__}")
    if not isinstance(progress, bool | np.bool_):
        raise TypeError(f"{op}: `progress` must be a bool, got {progress!r}")


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
        progress: show a progress bar (points, points/s, ETA; needs tqdm) when the output is a
            terminal or a notebook.
        **kwargs: extra keyword arguments of the model. ``n_vmap``, ``n_pmap``, ``checkpoint_dir``,
            ``store`` and ``progress`` are always the executor's own: a model keyword argument of one of
            these names cannot be passed here (it would silently set the executor's option); bind
            it first, e.g. ``ParallelExecution(functools.partial(model, progress=p), space)``.

    Raises:
        TypeError: ``model`` is not callable, ``statespace`` is not a space, a count is not an int,
            ``checkpoint_dir`` is not a path, ``progress`` is not a bool.
        ValueError: ``n_vmap < 1``, ``n_pmap < 1`` or more than the available devices (the message
            lists them); in a multi-process run, ``n_pmap`` not a multiple of the processes.

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
                 n_pmap: int | None = 1, checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                 store: str | os.PathLike | None = None, **kwargs: Any):
        op = "ParallelExecution"
        _check_common(op, model, statespace, progress)
        n_vmap = _count(op, n_vmap, "n_vmap")
        n_pmap = _count(op, n_pmap, "n_pmap")
        if n_vmap is not None and not 1 <= n_vmap <= _e._MAX:
            raise ValueError(f"{op}: `n_vmap` (points vectorised per device) must be in [1, 2**31 - 1], got {n_vmap}; "
                             f"{_available()}")
        if n_pmap is not None and not 1 <= n_pmap <= jax.device_count():
            raise ValueError(f"{op}: `n_pmap` (devices to use) must be in [1, {jax.device_count()}], got {n_pmap}; "
                             f"{_available()} (n_pmap=None uses all; on CPU, force more with XLA_FLAGS="
                             "--xla_force_host_platform_device_count=N set before importing jax)")
        if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
            raise TypeError(f"{op}: `checkpoint_dir` must be a path (str or os.PathLike) or None, got "
                            f"{type(checkpoint_dir).__name__}: {checkpoint_dir!r}")
        if checkpoint_dir is not None and os.fspath(checkpoint_dir) == "":
            raise ValueError(f"{op}: `checkpoint_dir` is the empty string; pass a directory (\".\" for the current "
                             "one) or None for no checkpoint")
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

        With ``store``, every finished block goes to the Zarr store instead (see
        `namedax.execution.open_results` and the "Results on disk" guide): the store is the
        checkpoint in the same way (same manifest, same refusals), chunks are flagged done only
        after their data is written, and under ``jax.distributed`` each process writes the chunks
        its own devices computed (nothing is gathered).

        Returns:
            `Results` over the space (on every process, in a multi-process run); with ``store``,
            backed by the store and read lazily.

        Raises:
            ModelError: the model raised, or could not be traced, on a point (the message names it;
                a model that raises at run time, e.g. through ``equinox.error_if``, is bisected
                down to the failing point).
            ValueError: ``checkpoint_dir`` (or ``store``) holds another sweep (another space, output
                structure, model or arguments), is in use by another running sweep, or cannot be
                written; ``store`` is a non-empty directory that is not a sweep store.
        """
        op = "ParallelExecution"
        space, model, devices = self.statespace, self.model, self._devices
        dyn, static = _e.split(model, self.args, self.kwargs)
        try:
            layout, arr_struct = _e.output_layout(static, space, dyn)
        except Exception as e:
            raise _e.diagnose_trace_error(op, model, space, self.args, self.kwargs, e)  # cause: the model's error
        n, n_dev, bpp = space.N, len(devices), layout.bytes_per_point
        arrays = layout.allocate(n) if self.store is None else []
        ranges, ckpt, st = [(0, n)], None, None
        if self.checkpoint_dir is not None:  # before any compute: an unusable directory fails now
            man = manifest(space, layout, model, self.args, self.kwargs)
            ckpt, ranges = Checkpoint.open(op, self.checkpoint_dir, man, arrays, writer=jax.process_index() == 0)
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
                per_point = _e.point_seconds(static, space, dyn, devices) if timed else None
                n_vmap = _e.auto_n_vmap(n, n_dev, bpp, devices[0].platform, per_point)
            max_map = _e.max_chunks(n, n_dev * n_vmap, bpp)
            quantum = 1 if st is None else st.quantum(n_vmap, devices)  # process shares in whole chunks
            max_map = max(quantum, max_map // quantum * quantum)
            todo = sum(b - a for a, b in ranges)
            saved = 0
            bar = _e.progress_bar(self.progress, n, n - todo, "sweep") if todo else None
            try:
                if todo:
                    sweep = _e.Sweep(op, static, space, dyn, arr_struct, n_vmap, max_map, devices,
                                     local=st is not None, quantum=quantum)

                    def on_block(start: int, count: int, host: list[np.ndarray]) -> None:
                        nonlocal saved
                        if st is not None:  # (this process's rows only)
                            st.write(start, count, host)
                            if bar is not None:
                                bar.update(min(count * jax.process_count(), n - bar.n))
                            return
                        if count == n:  # the whole sweep in one call: keep its arrays, no copy
                            arrays[:] = host
                        else:
                            for dst, src in zip(arrays, host, strict=True):
                                dst[start : start + count] = src
                        if ckpt is not None:
                            ckpt.write(start, count, [a[start : start + count] for a in arrays])
                            saved += 1
                        if bar is not None:
                            if ckpt is not None:
                                bar.set_postfix_str(f"saved {saved} block{'s' * (saved != 1)}", refresh=False)
                            bar.update(count)

                    sweep.run(ranges, on_block)
            finally:
                if bar is not None:
                    bar.close()
            if todo and (ckpt is not None or st is not None):  # every block on disk before any process reads
                _e.barrier("namedax checkpoint written")
            if st is not None:
                return _store.results(st, layout, space)
            return Results(arrays, layout, space)
        finally:
            for held in (ckpt, st):  # the directory is free again for another run
                if held is not None:
                    held.close()

    def _open_store(self, op, static, space, dyn, layout, n_vmap):
        """Open (create, or check and resume) the store: it, the flat ranges to compute, and n_vmap
        (chosen first, since the chunks are sized from it and from the time of a point)."""
        devices = self._devices
        per_point = _e.point_seconds(static, space, dyn, devices)
        if n_vmap is None:
            n_vmap = _e.auto_n_vmap(space.N, len(devices), layout.bytes_per_point, devices[0].platform, per_point)
        target = _store.chunk_target(layout.bytes_per_point, per_point, n_vmap, _e._CALL_SECONDS, devices[0])
        man = manifest(space, layout, self.model, self.args, self.kwargs)
        multiple = n_vmap * len(devices) // jax.process_count() if jax.process_count() > 1 else 1
        st, ranges = _store.Store.open(op, self.store, man, layout, space, target, jax.process_index() == 0,
                                       uniform=jax.process_count() > 1, multiple=multiple)
        return st, ranges, n_vmap

    def __repr__(self) -> str:
        name = getattr(self.model, "__qualname__", type(self.model).__name__)
        return (f"ParallelExecution({name}, {self.statespace!r}, n_vmap={self.n_vmap}, "
                f"devices={len(self._devices)})")


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
        progress: show a progress bar (needs tqdm) on a terminal or in a notebook.
        store: a Zarr store to stream the outputs to, and resume from, as for `ParallelExecution`.
        **kwargs: extra keyword arguments of the model. ``progress`` and ``store`` are always the
            executor's own: a model keyword argument of that name cannot be passed here (it would
            silently set the option); bind it first, e.g. with ``functools.partial(model, progress=p)``.

    Raises:
        TypeError: ``model`` is not callable, ``statespace`` is not a space, ``progress`` is not a bool.

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

    def __init__(self, model: Callable, statespace: AbstractSpace, *args: Any, progress: bool = True,
                 store: str | os.PathLike | None = None, **kwargs: Any):
        _check_common("SequentialExecution", model, statespace, progress)
        self.store = _check_store("SequentialExecution", store)
        self.model = model
        self.statespace = statespace
        self.args = args
        self.kwargs = kwargs
        self.progress = bool(progress)

    def run(self) -> Results:
        """Evaluate the model at every point, in order.

        Returns:
            `Results` over the space.

        Raises:
            ModelError: the model raised on a point, or (when run without jit) returned a different
                structure, shape or dtype at some point than at point 0; the message names the point.
        """
        op = "SequentialExecution"
        space, model = self.statespace, self.model
        dyn, static = _e.split(model, self.args, self.kwargs)
        try:
            layout, _ = _e.output_layout(static, space, dyn)
        except Exception as e:
            err = _e.diagnose_trace_error(op, model, space, self.args, self.kwargs, e)
            if err.point is not None:  # the model itself raised
                raise err  # its __cause__: the model's own error
            return self._run_eager()
        compiled = _e.compile_point(static, space, dyn)
        st, ranges = self._open_store(layout)
        arrays = layout.allocate(space.N) if st is None else []
        bar = _e.progress_bar(self.progress, space.N, space.N - sum(b - a for a, b in ranges), "sweep")

        def fail(i: int, e: Exception) -> ModelError:
            return ModelError(f"{op}: the model failed on {_e.describe_point(space, i)}: {_e.short_error(e)}", i)

        def store(i: int, out) -> None:
            try:
                if st is not None:
                    st.write(i, 1, [np.asarray(leaf)[None] for leaf in jax.tree.leaves(out)])
                else:
                    for dst, leaf in zip(arrays, jax.tree.leaves(out), strict=True):
                        dst[i] = np.asarray(leaf)
            except Exception as e:
                raise fail(i, e) from e
            if bar is not None:
                bar.update(1)

        try:
            prev = None
            for i in _points(ranges):
                try:
                    out = compiled(space, space.block_start(i), dyn)
                except Exception as e:
                    raise fail(i, e) from e
                if prev is not None:
                    store(*prev)
                prev = (i, out)
            if prev is not None:
                store(*prev)
        finally:
            if bar is not None:
                bar.close()
            if st is not None:
                st.close()
        return Results(arrays, layout, space) if st is None else _store.results(st, layout, space)

    def _open_store(self, layout: Layout) -> tuple[Any, list[tuple[int, int]]]:
        """The open store (or None) and the flat ranges still to compute."""
        space = self.statespace
        if self.store is None:
            return None, [(0, space.N)]
        man = manifest(space, layout, self.model, self.args, self.kwargs)
        # point by point, a chunk of 4096 points is seconds of work (timing a point would run the
        # model, and its prints, once more)
        target = min(_store.chunk_target(layout.bytes_per_point, None, 1, _e._CALL_SECONDS), 4096)
        return _store.Store.open("SequentialExecution", self.store, man, layout, space, target)

    def _run_eager(self) -> Results:
        op = "SequentialExecution"
        space, model, args, kwargs = self.statespace, self.model, self.args, self.kwargs
        layout = arrays = first = st = None
        bar = _e.progress_bar(self.progress, space.N, 0, "sweep")
        todo = iter(range(space.N))
        try:
            while (i := next(todo, None)) is not None:
                try:
                    out = model(space[i], *args, **kwargs)
                except Exception as e:
                    raise ModelError(f"{op}: the model raised on {_e.describe_point(space, i)}: "
                                     f"{_e.short_error(e)}", i) from e
                out = jax.tree.map(_number_as_array, out)  # Python numbers are outputs here, not structure
                here = Layout(out)
                if layout is None:
                    layout, first = here, here.describe()
                    st, ranges = self._open_store(layout)  # the store needs the layout of point 0
                    arrays = layout.allocate(space.N) if st is None else []
                    if st is not None:  # go on with the points the store lacks (point 0 is done now)
                        todo = (j for j in _points(ranges) if j)
                        if not ranges or ranges[0][0] != 0:
                            continue
                elif here.describe() != first:
                    raise ModelError(
                        f"{op}: the model returned a different structure on {_e.describe_point(space, i)} than on "
                        f"{_e.describe_point(space, 0)}: {here.describe()} instead of {first}; every point must give "
                        "the same PyTree of the same shapes and dtypes", i)
                leaves = [x for x in jax.tree.leaves(out) if _is_array(x)]
                if st is not None:
                    st.write(i, 1, [np.asarray(leaf)[None] for leaf in leaves])
                else:
                    for dst, leaf in zip(cast(list, arrays), leaves, strict=True):
                        dst[i] = np.asarray(leaf)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            if st is not None:
                st.close()
        if st is not None:
            return _store.results(st, cast(Layout, layout), space)
        return Results(cast(list, arrays), cast(Layout, layout), space)  # set at the first point (N >= 1)

    def __repr__(self) -> str:
        name = getattr(self.model, "__qualname__", type(self.model).__name__)
        return f"SequentialExecution({name}, {self.statespace!r})"


def _points(ranges: list[tuple[int, int]]):
    return (i for a, b in ranges for i in range(a, b))


def _number_as_array(x) -> Any:
    return np.asarray(x) if isinstance(x, bool | int | float | complex) else x


def _is_array(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)
