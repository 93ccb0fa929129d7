"""Sweeps past memory: peak resident memory of a sweep streamed to a Zarr store (``store=``).

    python benchmarks/bench_store.py                 # 10^9 points (a 31623 x 31623 grid), one float32 each
    python benchmarks/bench_store.py --points 1e7    # smaller

The model is trivial (``a * b + 1``), so the sweep is bound by moving and writing results: the worst
case for memory, since blocks arrive fastest. Each run is a fresh subprocess that reports its peak RSS
(``VmHWM``), compared with a process that only imports jax, namedax and zarr; then it reopens the
store with `open_results` and reads a few points (one chunk each), and reports the store's size on
disk. Budget (docs/DESIGN: "Sweeps on disk"): a 10^9-point sweep peaks under 1 GB of resident memory.
The in-memory run of the same sweep needs the 4 GB of outputs on top (see bench_sweep).

``run(quick)`` is the entry point of ``python -m benchmarks``: 10^7 points quick, 10^9 full.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def model(state):
    return state["a"] * state["b"] + 1.0


def worker(variant: str, side: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    import jax
    import numpy as np
    import zarr  # noqa: F401
    from _timing import peak_rss_mb  # VmHWM: ru_maxrss would report a parent's peak

    from namedax.execution import ParallelExecution, open_results
    from namedax.spaces import GridSpace, Parameter

    if variant == "baseline":
        jax.numpy.zeros(1).block_until_ready()
        return {"rss_mb": peak_rss_mb()}
    state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
             "b": Parameter("b", 0.0, low=0.5, high=1.5, free=True)}
    space = GridSpace(state, n=side)
    tmp = tempfile.mkdtemp(prefix="namedax-bench-store-")
    path = os.path.join(tmp, "sweep.zarr")
    try:
        t = time.perf_counter()
        ParallelExecution(model, space, store=path, progress=False).run()
        took = time.perf_counter() - t
        r = open_results(path)
        a, b = space.coords()["a"], space.coords()["b"]
        for i in (0, side * side // 2 + 7, side * side - 1):  # spot checks, one chunk each
            assert abs(float(r[i]) - (float(a[i // side]) * float(b[i % side]) + 1.0)) < 1e-5, i
        size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
        return {"rss_mb": peak_rss_mb(), "seconds": took, "store_mb": size / 2**20,
                "chunks": int(np.prod(r._arrays[0].arr.cdata_shape))}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def spawn(variant: str, side: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sweep import spawn as spawn_script

    return spawn_script(variant, side, __file__)


def measure(points: float) -> dict:
    side = round(points**0.5)
    base = spawn("baseline", side)["rss_mb"]
    out = spawn("store", side)
    return {"n": side * side, "base": base, **out}


def run(quick: bool = False) -> list[dict]:
    """Uniform entry point for benchmarks/run.py: the report's rows."""
    m = measure(1e7 if quick else 1e9)
    n = m["n"]
    return [dict(area="store", case=f"peak RSS, {n:,} float32 points streamed to Zarr", unit="MB",
                 baseline="process with imports only", budget="peak <= 1024 MB",
                 note=f"{m['seconds']:.0f} s, store {m['store_mb']:.0f} MB in {m['chunks']} chunks",
                 lib=m["rss_mb"], raw=m["base"], ratio=m["rss_mb"] / m["base"], lo=m["rss_mb"] / m["base"],
                 hi=m["rss_mb"] / m["base"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=float, default=1e9, help="number of points (rounded to a square grid)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.side)))
        return
    m = measure(args.points)
    print(f"{m['n']:,} points to Zarr: peak RSS {m['rss_mb']:.0f} MB (imports only: {m['base']:.0f} MB), "
          f"{m['seconds']:.1f} s ({m['n'] / m['seconds'] / 1e6:.1f} Mpoints/s), store {m['store_mb']:.0f} MB "
          f"in {m['chunks']} chunks")


if __name__ == "__main__":
    main()
