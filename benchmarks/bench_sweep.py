"""Sweep benchmark: ParallelExecution against a hand-written ``jit(lax.map(model, grid, batch_size=B))``.

    python benchmarks/bench_sweep.py            # 10^6 points (a 1000 x 1000 grid)
    python benchmarks/bench_sweep.py --quick    # about 10^5 points (316 x 316)
    python benchmarks/bench_sweep.py --points 1e8 --rounds 0        # memory only, at 10^8 points
    python benchmarks/bench_sweep.py --points 1e9 --only nx         # a 10^9-point sweep runs through

The model is 100 explicit Euler steps of a FitzHugh-Nagumo oscillator, two swept parameters, one
scalar output per point. The baseline builds the whole grid on the host first (numpy meshgrid, not
timed) and runs ``jax.jit(lambda p: jax.lax.map(model, p, batch_size=B))`` on it, for B in
{256, 1024, 4096, 16384}; the best B is the reference. namedax runs
``ParallelExecution(model, GridSpace(...)).run()`` with its automatic chunk size: the points are
generated on device, the results come back as host numpy arrays (the baseline's are fetched to the
host as well).

``run(quick)`` is the entry point of ``python -m benchmarks`` (rows for the report, including the
cost of reading a finished sweep's `Results` and the memory per point beyond the outputs, from the
growth of peak RSS between two sweep sizes); running this file prints a table.

Throughput: all variants run in this process, in interleaved rounds (so machine load hits them
alike), after a first compiling run; medians are reported, and the ratio namedax / best B
(budget: at least 0.9). Memory: every variant also runs once in a fresh subprocess, which reports
its peak RSS (``VmHWM``, compared with a process that only imports jax and namedax) and its
first-run time including compilation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HAND_B = (256, 1024, 4096, 16384)


def model(state):
    import jax
    import jax.numpy as jnp

    a, b = state["a"], state["b"]

    def step(_, s):
        v, w = s
        return v + 0.01 * (v - v**3 / 3 - w + a), w + 0.01 * 0.08 * (v + 0.7 - b * w)

    return jax.lax.fori_loop(0, 100, step, (jnp.float32(-1.0), jnp.float32(1.0)))[0]


def _state():
    from namedax.spaces import Parameter

    return {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            "b": Parameter("b", 0.0, low=0.5, high=1.5, free=True)}


def make_runner(variant: str, side: int):
    """A function running one whole sweep of ``variant`` and returning the host results."""
    import jax
    import numpy as np

    from namedax.execution import ParallelExecution
    from namedax.spaces import GridSpace

    if variant == "nx":
        space = GridSpace(_state(), n=side)
        return lambda: ParallelExecution(model, space, progress=False).run()[:]
    B = int(variant.split("-")[1])
    a, b = np.meshgrid(np.linspace(0, 1, side, dtype=np.float32), np.linspace(0.5, 1.5, side, dtype=np.float32),
                       indexing="ij")
    grid = {"a": jax.numpy.asarray(a.reshape(-1)), "b": jax.numpy.asarray(b.reshape(-1))}
    f = jax.jit(lambda p: jax.lax.map(model, p, batch_size=B))
    return lambda: np.asarray(f(grid))


def memory_worker(variant: str, side: int) -> dict:
    """Peak RSS of one process that runs the sweep once (compile included)."""
    import jax

    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    from _timing import peak_rss_mb  # VmHWM: ru_maxrss would report a parent's peak

    if variant == "baseline":
        jax.numpy.zeros(1).block_until_ready()
        import namedax.execution  # noqa: F401
    else:
        run = make_runner(variant, side)
        t = time.perf_counter()
        run()
        first = time.perf_counter() - t
    out = {"rss_mb": peak_rss_mb()}
    if variant != "baseline":
        out["first_s"] = first
    return out


def spawn(variant: str, side: int, script: str = __file__) -> dict:
    """Run ``script --worker variant --side side`` in a fresh process; its last line, as JSON."""
    proc = subprocess.run([sys.executable, script, "--worker", variant, "--side", str(side)],
                          capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(side: int, rounds: int, variants: list[str]) -> dict:
    """Memory and first run of every variant (fresh subprocesses), then interleaved timing rounds."""
    import numpy as np

    base = spawn("baseline", side)["rss_mb"]
    mem = {v: spawn(v, side) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    if rounds:
        runners = {v: make_runner(v, side) for v in variants}
        outs = {v: r() for v, r in runners.items()}  # compile
        for v in variants[1:]:
            np.testing.assert_allclose(outs[v], outs[variants[0]], rtol=1e-4, atol=1e-5)
        for _ in range(rounds):
            for v, r in runners.items():
                t = time.perf_counter()
                r()
                times[v].append(time.perf_counter() - t)
    return {"n": side * side, "base": base, "mem": mem, "times": times}


def _summary(lib: list[float], raw: list[float]) -> dict:
    ratios = [a / b for a, b in zip(lib, raw, strict=True)]
    return dict(lib=statistics.median(lib), raw=statistics.median(raw), ratio=statistics.median(ratios),
                lo=min(ratios), hi=max(ratios))


def results_access_rows(rounds: int) -> list[dict]:
    """Reading a finished sweep: ``results[i]`` and ``list(results)`` against indexing the raw arrays."""
    import jax.numpy as jnp

    from namedax.execution import ParallelExecution
    from namedax.spaces import GridSpace

    space = GridSpace(_state(), n=100)  # 10^4 points
    single = ParallelExecution(lambda s: s["a"] * s["b"], space, progress=False).run()
    tree = ParallelExecution(lambda s: {"x": s["a"], "v": jnp.stack([s["a"], s["b"]])}, space, progress=False).run()
    x, xs, vs = single[:], tree[:]["x"], tree[:]["v"]
    n = len(single)
    cases = {
        "results[i], scalar output": (lambda: [single[i] for i in range(n)], lambda: [x[i] for i in range(n)]),
        "results[i], dict output": (lambda: [tree[i] for i in range(n)],
                                    lambda: [{"v": vs[i], "x": xs[i]} for i in range(n)]),
        "list(results), dict output": (lambda: list(tree), lambda: [{"v": a, "x": b} for a, b in zip(vs, xs)]),
    }
    rows = []
    for case, (lib, raw) in cases.items():
        tl, tr = [], []
        for _ in range(rounds):
            for f, acc in ((lib, tl), (raw, tr)):
                t = time.perf_counter()
                f()
                acc.append((time.perf_counter() - t) / n * 1e6)
        rows.append(dict(area="results", case=case + ", 10^4 points", unit="us", baseline="numpy indexing",
                         budget="time <= 10 us", **_summary(tl, tr)))
    return rows


def run(quick: bool = False) -> list[dict]:
    """Uniform entry point for benchmarks/run.py: the report's rows."""
    side = 316 if quick else 1000
    rounds = 40 if quick else 20
    variants = ["nx"] + [f"hand-{b}" for b in ((1024, 4096) if quick else HAND_B)]
    m = measure(side, rounds, variants)
    n, t, mem, base = m["n"], m["times"], m["mem"], m["base"]
    best = min(variants[1:], key=lambda v: statistics.median(t[v]))
    pts = f"{n:,} points"
    hand = "best jit(lax.map(model))"
    note = f"hand-written best B {best.split('-')[1]}"
    rows = [
        dict(area="sweep", case=f"throughput, {pts}", unit="Mpt/s", baseline=hand, budget=">= 0.9", note=note,
             **_summary([n / x / 1e6 for x in t["nx"]], [n / x / 1e6 for x in t[best]])),
        dict(area="sweep", case=f"first run incl. compile, {pts}", unit="s", baseline=hand,
             **_summary([mem["nx"]["first_s"]], [mem[best]["first_s"]])),
        dict(area="sweep", case=f"peak RSS above imports, {pts}", unit="MB", baseline=hand,
             **_summary([mem["nx"]["rss_mb"] - base], [mem[best]["rss_mb"] - base])),
    ]
    # bytes per point beyond the outputs (4 B/pt): the growth of peak RSS between two sizes past the
    # point where namedax's call buffers stop growing (64 MB, 1.6e7 scalar outputs)
    s1, s2 = (1000, 4472) if quick else (3163, 6325)
    r1, r2 = ({v: spawn(v, side)["rss_mb"] for v in ("nx", best)} for side in (s1, s2))
    n1, n2 = s1 * s1, s2 * s2
    per_pt = {v: ((r2[v] - r1[v]) * 2**20 - 4 * (n2 - n1)) / (n2 - n1) for v in r1}
    rows.append(dict(area="sweep", case=f"memory per point beyond outputs, {n1:,} -> {n2:,} points", unit="B/pt",
                     baseline=hand + " (prebuilt grid)", budget="memory <= 16 B/pt",
                     **_summary([per_pt["nx"]], [per_pt[best]])))
    return rows + results_access_rows(5 if quick else 21)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 1e5 points instead of 1e6")
    ap.add_argument("--points", type=float, default=None, help="number of points (rounded to a square grid)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (0: memory only)")
    ap.add_argument("--only", choices=["nx", "hand"], help="run only namedax or only the hand-written variants")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(memory_worker(args.worker, args.side)))
        return
    points = args.points or (1e5 if args.quick else 1e6)
    side = round(points**0.5)
    rounds = args.rounds if args.rounds is not None else (100 if args.quick else 20)
    variants = ["nx"] + [f"hand-{b}" for b in HAND_B]
    if args.only:
        variants = [v for v in variants if v.startswith(args.only)]
        rounds = 0
    print(f"sweep: {side * side:,} points ({side} x {side} grid), 100 Euler steps per point")
    m = measure(side, rounds, variants)
    n, times, mem, base = m["n"], m["times"], m["mem"], m["base"]
    head = ("variant", "median s", "Mpoints/s", "first run s", "peak RSS MB", "above base")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (12, 9, 10, 12, 12, 11), strict=True)))
    for v in variants:
        rss = mem[v]["rss_mb"]
        if times[v]:
            s = statistics.median(times[v])
            timing = f"{s:9.4f} {n / s / 1e6:10.2f}"
        else:
            timing = f"{'-':>9} {'-':>10}"
        print(f"{v:>12} {timing} {mem[v]['first_s']:12.3f} {rss:12.0f} {rss - base:11.0f}")
    if not rounds:
        for v in variants:
            print(f"{v:>12}: {n / mem[v]['first_s'] / 1e6:.2f} Mpoints/s over the first run, compile included")
    print(f"baseline process (imports only): {base:.0f} MB")
    if rounds:
        best = min(variants[1:], key=lambda v: statistics.median(times[v]))
        ratio = statistics.median(times[best]) / statistics.median(times["nx"])
        per_round = [min(times[v][k] for v in variants[1:]) / times["nx"][k] for k in range(rounds)]
        print(f"throughput namedax / best hand-written ({best}): {ratio:.3f}  (budget >= 0.9); "
              f"per round vs that round's best: median {statistics.median(per_round):.3f}, "
              f"range {min(per_round):.3f}-{max(per_round):.3f}")
    if args.only:
        return
    best_mem = min(variants[1:], key=lambda v: mem[v]["first_s"])
    print(f"first run incl. compilation (fresh process), namedax / {best_mem}: "
          f"{mem[best_mem]['first_s'] / mem['nx']['first_s']:.3f}")
    hand_mem = [mem[v]["rss_mb"] - base for v in variants[1:]]
    print(f"peak memory above baseline: namedax {mem['nx']['rss_mb'] - base:.0f} MB, hand-written "
          f"{min(hand_mem):.0f}-{max(hand_mem):.0f} MB")


if __name__ == "__main__":
    main()
