"""tvboptim's ParallelExecution on namedax's sweep workload, against raw JAX in tvboptim's own venv.

    benchmarks/peers/.venvs/tvboptim/bin/python benchmarks/peers/peer_tvboptim.py [--quick]

The workload copies benchmarks/bench_sweep.py: 100 explicit Euler steps of a FitzHugh-Nagumo
oscillator over a grid of its two parameters (a in [0, 1], b in [0.5, 1.5]), one scalar per point,
10^6 points (about 10^5 with --quick). tvboptim runs ``ParallelExecution(model, Space({...GridAxis},
mode="product"), n_vmap=V, n_pmap=1)`` for each V and keeps the best; the raw baseline is
``jit(lax.map(model, grid, batch_size=B))`` on a host-built grid, best B. As in bench_sweep, every
variant runs once in a fresh subprocess for its peak RSS and first run (compile included), then all
run in this process in interleaved rounds for the throughput; results are fetched to the host. The
tvboptim executor is built once and ``run()`` repeated (its best case: a new executor recompiles).
Memory per point beyond the outputs comes from the growth of peak RSS between 10^7 and 4x10^7
points (full mode only). Reading a finished sweep's results (``results[i]``, ``list(results)``) is
timed as in bench_sweep.
Prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from importlib.metadata import version

from _timing import emit, emit_error, emit_meta, peak_rss_mb, stats

SIZES = (256, 1024, 4096, 16384)


def model(state):
    import jax
    import jax.numpy as jnp

    a, b = state["a"], state["b"]

    def step(_, s):
        v, w = s
        return v + 0.01 * (v - v**3 / 3 - w + a), w + 0.01 * 0.08 * (v + 0.7 - b * w)

    return jax.lax.fori_loop(0, 100, step, (jnp.float32(-1.0), jnp.float32(1.0)))[0]


def make_runner(variant: str, side: int):
    """A function running one whole sweep of ``variant`` and returning the host results."""
    import jax
    import numpy as np
    from tvboptim.execution import ParallelExecution
    from tvboptim.types import GridAxis, Space

    kind, size = variant.split("-")
    if kind == "tvb":  # built once, run() repeated: tvboptim's best case (a new executor recompiles)
        n = side * side
        space = Space({"a": GridAxis(0.0, 1.0, side), "b": GridAxis(0.5, 1.5, side)}, mode="product")
        ex = ParallelExecution(model, space, n_vmap=int(size), n_pmap=1)
        return lambda: np.asarray(ex.run().results).reshape(-1)[:n]
    a, b = np.meshgrid(np.linspace(0, 1, side, dtype=np.float32), np.linspace(0.5, 1.5, side, dtype=np.float32),
                       indexing="ij")
    grid = {"a": jax.numpy.asarray(a.reshape(-1)), "b": jax.numpy.asarray(b.reshape(-1))}
    f = jax.jit(lambda p: jax.lax.map(model, p, batch_size=int(size)))
    return lambda: np.asarray(f(grid))


def memory_worker(variant: str, side: int) -> dict:
    """Peak RSS of one process that runs the sweep once; first-run time including compilation (and,
    for tvboptim, building its space and executor; the hand-written grid is built untimed)."""
    import jax
    import tvboptim.execution  # noqa: F401 - every variant imports the same, so RSS compares

    out = {}
    if variant == "baseline":
        jax.numpy.zeros(1).block_until_ready()
    else:
        t = time.perf_counter()
        run = make_runner(variant, side)
        if variant.startswith("hand"):
            t = time.perf_counter()
        run()
        out["first_s"] = time.perf_counter() - t
    out["rss_mb"] = peak_rss_mb()
    return out


def spawn(variant: str, side: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--side", str(side)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"{variant}: {lines[-1] if lines else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sweep(quick: bool) -> str:
    """The sweep rows; returns the best n_vmap."""
    import numpy as np

    side = 316 if quick else 1000
    n = side * side
    sizes = (1024, 4096) if quick else SIZES
    rounds = 40 if quick else 20
    variants = [f"tvb-{s}" for s in sizes] + [f"hand-{s}" for s in sizes]
    base = spawn("baseline", side)["rss_mb"]
    mem = {v: spawn(v, side) for v in variants}
    runners = {v: make_runner(v, side) for v in variants}
    outs = {v: r() for v, r in runners.items()}  # compile
    for v in variants[1:]:
        np.testing.assert_allclose(outs[v], outs[variants[0]], rtol=1e-4, atol=1e-5)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):  # interleaved, in this process
        for v, r in runners.items():
            t = time.perf_counter()
            r()
            times[v].append(time.perf_counter() - t)

    def med(v):
        return statistics.median(times[v])

    tvb = min((v for v in variants if v.startswith("tvb")), key=med)
    hand = min((v for v in variants if v.startswith("hand")), key=med)
    pts, base_name = f"{n:,} points", "best jit(lax.map(model))"
    note = f"tvboptim best n_vmap {tvb.split('-')[1]}, hand-written best B {hand.split('-')[1]}"
    emit("sweep", f"throughput, {pts}", stats([n / x / 1e6 for x in times[tvb]], [n / x / 1e6 for x in times[hand]]),
         unit="Mpt/s", baseline=base_name, note=note)
    emit("sweep", f"first run incl. compile, {pts}", stats([mem[tvb]["first_s"]], [mem[hand]["first_s"]]),
         unit="s", baseline=base_name, note="tvboptim: space and executor built in the timed run")
    emit("sweep", f"peak RSS above imports, {pts}", stats([mem[tvb]["rss_mb"] - base], [mem[hand]["rss_mb"] - base]),
         unit="MB", baseline=base_name)
    for v in variants:  # the whole n_vmap curve, for the record
        if v.startswith("tvb") and v != tvb:
            emit("sweep", f"throughput with n_vmap={v.split('-')[1]}, {pts}",
                 stats([n / x / 1e6 for x in times[v]], [n / x / 1e6 for x in times[hand]]), unit="Mpt/s",
                 baseline=base_name)
    if quick:  # the memory growth needs two big sweeps: full mode only
        return tvb.split("-")[1]
    # bytes per point beyond the outputs (4 B/pt), from the growth of peak RSS between two sizes: bench_sweep's
    # sizes first; tvboptim computes its batch shape in float32 (ceil(N / n_pmap)), which fails for an odd N
    # above 2**24, so that failure is recorded and the growth measured again on even grids just below
    for s1, s2 in ((3163, 6325), (3162, 6324)):
        n1, n2 = s1 * s1, s2 * s2
        case = f"memory per point beyond outputs, {n1:,} -> {n2:,} points"
        try:
            r1, r2 = ({v: spawn(v, s)["rss_mb"] for v in (tvb, hand)} for s in (s1, s2))
        except RuntimeError as e:
            emit_error("sweep", case, e)
            continue
        per_pt = {v: ((r2[v] - r1[v]) * 2**20 - 4 * (n2 - n1)) / (n2 - n1) for v in r1}
        emit("sweep", case, stats([per_pt[tvb]], [per_pt[hand]]), unit="B/pt", baseline=base_name + " (prebuilt grid)")
        break
    return tvb.split("-")[1]


def results_access(rounds: int, n_vmap: int) -> None:
    """Reading a finished sweep (10^4 points): ``results[i]`` and ``list(results)`` vs numpy indexing."""
    import jax.numpy as jnp
    import numpy as np
    from tvboptim.execution import ParallelExecution
    from tvboptim.types import GridAxis, Space

    space = Space({"a": GridAxis(0.0, 1.0, 100), "b": GridAxis(0.5, 1.5, 100)}, mode="product")
    single = ParallelExecution(lambda s: s["a"] * s["b"], space, n_vmap=n_vmap).run()
    tree = ParallelExecution(lambda s: {"x": s["a"], "v": jnp.stack([s["a"], s["b"]])}, space, n_vmap=n_vmap).run()
    n = len(single)
    x = np.asarray(single.results).reshape(-1)[:n]
    xs, vs = np.asarray(tree.results["x"]).reshape(-1)[:n], np.asarray(tree.results["v"]).reshape(-1, 2)[:n]
    cases = {
        "results[i], scalar output": (lambda: [single[i] for i in range(n)], lambda: [x[i] for i in range(n)]),
        "results[i], dict output": (lambda: [tree[i] for i in range(n)],
                                    lambda: [{"v": vs[i], "x": xs[i]} for i in range(n)]),
        "list(results), dict output": (lambda: list(tree), lambda: [{"v": a, "x": b} for a, b in zip(vs, xs)]),
    }
    for case, (lib, raw) in cases.items():
        tl, tr = [], []
        for _ in range(rounds):
            for f, acc in ((lib, tl), (raw, tr)):
                t = time.perf_counter()
                f()
                acc.append((time.perf_counter() - t) / n * 1e6)
        emit("results", case + ", 10^4 points", stats(tl, tr), unit="us", baseline="numpy indexing")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(memory_worker(args.worker, args.side)))
        return
    emit_meta("tvboptim", version("tvboptim"))
    n_vmap = "1024"
    try:
        n_vmap = sweep(args.quick)
    except Exception as e:  # noqa: BLE001 - recorded, not fatal
        emit_error("sweep", "ParallelExecution sweep", e)
    try:
        results_access(2 if args.quick else 11, int(n_vmap))
    except Exception as e:  # noqa: BLE001
        emit_error("results", "ParallelResult access", e)


if __name__ == "__main__":
    main()
