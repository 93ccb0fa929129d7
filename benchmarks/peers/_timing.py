"""Timing helpers shared by the peer workloads (stdlib + jax only: they run in each peer's own venv).

Every measurement interleaves the library call and its raw-JAX baseline round by round, so machine
load hits both alike, and reports the median time of each, the median of the per-round ratios and
their spread (min, max). Rows are printed as JSON lines for ``benchmarks/run.py`` to merge.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time


def per_call(fn, number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def pair(lib_fn, raw_fn, *, rounds: int, number: int, scale: float = 1e6) -> dict:
    """Interleaved rounds of `lib_fn` and `raw_fn` (each warmed once); times in 1/scale seconds."""
    lib_fn()
    raw_fn()
    tl, tr, ratios = [], [], []
    for _ in range(rounds):
        a = per_call(lib_fn, number)
        b = per_call(raw_fn, number)
        tl.append(a * scale)
        tr.append(b * scale)
        ratios.append(a / b)
    return dict(lib=statistics.median(tl), raw=statistics.median(tr), ratio=statistics.median(ratios),
                lo=min(ratios), hi=max(ratios))


def stats(lib_times, raw_times, scale: float = 1.0) -> dict:
    """The same summary from already-paired per-round times."""
    ratios = [a / b if b else float("nan") for a, b in zip(lib_times, raw_times)]
    return dict(lib=statistics.median(lib_times) * scale, raw=statistics.median(raw_times) * scale,
                ratio=statistics.median(ratios), lo=min(ratios), hi=max(ratios))


def emit_meta(peer: str, version: str, **extra) -> None:
    import jax

    meta = dict(peer=peer, version=version, jax=jax.__version__, python=platform.python_version(), **extra)
    print(json.dumps({"meta": meta}), flush=True)


def emit(area: str, case: str, row: dict, *, unit: str, baseline: str, note: str = "") -> None:
    out = dict(area=area, case=case, unit=unit, baseline=baseline, note=note, **row)
    print(json.dumps(out), flush=True)
    print(f"  {area:8s} {case:34s} {row['lib']:10.2f} {row['raw']:10.2f} {unit:3s} ratio {row['ratio']:.3f} "
          f"[{row['lo']:.2f}, {row['hi']:.2f}]", file=sys.stderr, flush=True)


def emit_error(area: str, case: str, exc: BaseException) -> None:
    """A workload that fails in this peer's version: recorded with its error line, not fatal."""
    line = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    print(json.dumps(dict(area=area, case=case, error=line[:300])), flush=True)
    print(f"  {area:8s} {case:34s} FAILED {line[:200]}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries the parent's peak RSS over fork and
    exec into it, so a child of a big process would report the parent's size. ``VmHWM`` is the peak
    of this process's own address space."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
