"""Stacked benchmark: nn.Stacked against a hand-written equinox + lax.scan stack, in one run.

    python benchmarks/bench_stacked.py [--rounds N] [--quick]

The model is a residual MLP block, ``x + down(relu(up(x)))`` with hidden size 256 (and an MLP axis
of 256), stacked 4, 16 and 64 times and folded over a batch of 64.

- namedax: ``nx.nn.Stacked.init(Layers, Block)(key=jax.random.split(key, n))`` of a Block of two
  `nx.nn.Linear`, run with ``stack.fold(x)``;
- hand-written: a positional equinox Block built with ``eqx.filter_vmap(Block)(keys)`` and run with
  ``jax.lax.scan`` over ``eqx.partition``-ed parameters.

Compile time is ``jax.jit(f).lower(...).compile()`` of a freshly defined function (so nothing is
cached), median over rounds, the depths interleaved within each round after a discarded warm-up
round (see `compile_rounds`). Budget (docs/architecture.md): namedax at 64 layers at most 1.3x namedax at 4
("compile growth"). Step time is the compiled fold, rounds interleaved between the two, medians.
Budget: at most 1.05x the hand-written stack. The gradient step (value_and_grad of a squared loss)
is reported for information. ``run(quick)`` is the entry point of ``benchmarks/run.py``; its case
names match ``benchmarks/peers/peer_haliax.py`` so that haliax's figures line up.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp

import namedax as nx

HIDDEN, MLP, BATCH = 256, 256, 64
DEPTHS = (4, 16, 64)
Hid, Mlp, Batch = nx.Axis("hidden", HIDDEN), nx.Axis("mlp", MLP), nx.Axis("batch", BATCH)


class NamedBlock(eqx.Module):
    up: nx.nn.Linear
    down: nx.nn.Linear

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(nx.nn.Linear.init(Hid, Mlp, key=k1), nx.nn.Linear.init(Mlp, Hid, key=k2))

    def __call__(self, x):
        return x + self.down(nx.nn.relu(self.up(x)))


class RawBlock(eqx.Module):
    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.w1 = jax.random.truncated_normal(k1, -3.0, 3.0, (MLP, HIDDEN)) / math.sqrt(HIDDEN)
        self.b1 = jnp.zeros(MLP)
        self.w2 = jax.random.truncated_normal(k2, -3.0, 3.0, (HIDDEN, MLP)) / math.sqrt(MLP)
        self.b2 = jnp.zeros(HIDDEN)

    def __call__(self, x):
        return x + (jax.nn.relu(x @ self.w1.T + self.b1) @ self.w2.T + self.b2)


def build(n: int):
    keys = jax.random.split(jax.random.key(0), n)
    named = nx.nn.Stacked.init(nx.Axis("layers", n), NamedBlock)(key=keys)
    raw = eqx.filter_vmap(RawBlock)(keys)
    params, static = eqx.partition(raw, eqx.is_array)
    x = jax.random.normal(jax.random.key(1), (BATCH, HIDDEN))
    return named, nx.named(x, (Batch, Hid)), params, static, x


def named_fold(stack, x):
    return stack.fold(x)


def raw_fold_for(static):
    def raw_fold(params, x):
        def body(h, p):
            return eqx.combine(p, static)(h), None

        return jax.lax.scan(body, x, params)[0]

    return raw_fold


def compile_time(fn, *args) -> float:
    t = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t


def run_time(fn, args, number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / number


def interleaved(f_a, args_a, f_b, args_b, rounds: int, number: int) -> tuple[list[float], list[float]]:
    jax.block_until_ready(f_a(*args_a))
    jax.block_until_ready(f_b(*args_b))
    a, b = [], []
    for _ in range(rounds):
        a.append(run_time(f_a, args_a, number))
        b.append(run_time(f_b, args_b, number))
    return a, b


def compile_rounds(depths, rounds: int, functions) -> dict:
    """Per depth, per-round compile times ``(namedax, hand-written)``. ``functions(n)`` gives
    ``(named_fn, named_args, raw_fn, raw_args)``; each round compiles a freshly wrapped function (so
    neither tracing nor lowering is cached), the depths interleaved within a round, after one discarded
    warm-up round: a process's first compiles are slower (~0.38 s against ~0.30 s here), and measured
    depth after depth that warm-up would land on the smallest depth and flatter the growth ratio."""
    fns = {n: functions(n) for n in depths}
    times = {n: ([], []) for n in depths}
    for r in range(1 + rounds):
        for n in depths:
            fn, args, fr, raw_args = fns[n]
            cn = compile_time(lambda *a: fn(*a), *args)
            cr = compile_time(lambda *a: fr(*a), *raw_args)
            if r:
                times[n][0].append(cn)
                times[n][1].append(cr)
    return times


def measure(depths, rounds: int) -> dict:
    """Per depth: per-round compile times, fold step times and gradient step times (namedax, hand-written)."""
    built = {n: build(n) for n in depths}

    def functions(n):
        named, xn, params, static, x = built[n]
        return named_fold, (named, xn), raw_fold_for(static), (params, x)

    compiles = compile_rounds(depths, max(3, rounds // 2), functions)
    out = {}
    for n in depths:
        named, xn, params, static, x = built.pop(n)
        raw_fold = raw_fold_for(static)
        fn, fr = jax.jit(named_fold), jax.jit(raw_fold)
        same = bool(jnp.allclose(fn(named, xn).array, fr(params, x), rtol=1e-4, atol=1e-4))
        number = max(2, 256 // n)
        step = interleaved(fn, (named, xn), fr, (params, x), rounds, number)

        def loss_named(s, v):
            return jnp.sum(named_fold(s, v).array ** 2)

        def loss_raw(p, v):
            return jnp.sum(raw_fold(p, v) ** 2)

        gn, gr = jax.jit(jax.value_and_grad(loss_named)), jax.jit(jax.value_and_grad(loss_raw))
        grad = interleaved(gn, (named, xn), gr, (params, x), max(3, rounds // 2), max(1, number // 2))
        out[n] = dict(compile=compiles[n], step=step, grad=grad, same=same)
    return out


def _stats(lib, raw, scale: float) -> dict:
    ratios = [a / b for a, b in zip(lib, raw, strict=True)]
    return dict(
        lib=statistics.median(lib) * scale,
        raw=statistics.median(raw) * scale,
        ratio=statistics.median(ratios),
        lo=min(ratios),
        hi=max(ratios),
    )


def rows_of(m: dict, area: str = "stacked", base: str = "eqx + lax.scan") -> list[dict]:
    """Report rows (the case names of benchmarks/peers/peer_haliax.py, so peers line up)."""
    rows = []
    for n, r in m.items():
        rows.append(dict(area=area, case=f"compile, {n} layers", unit="s", baseline=base, **_stats(*r["compile"], 1)))
        note = "" if r["same"] else "OUTPUTS DIFFER"
        step = _stats(*r["step"], 1e3)
        rows.append(
            dict(area=area, case=f"step, {n} layers", unit="ms", baseline=base, budget="<= 1.05", note=note, **step)
        )
        rows.append(
            dict(area=area, case=f"gradient step, {n} layers", unit="ms", baseline=base, **_stats(*r["grad"], 1e3))
        )
    lo, hi = min(m), max(m)
    raw_growth = _stats(m[hi]["compile"][1], m[lo]["compile"][1], 1)["ratio"]
    rows.append(
        dict(
            area=area,
            case=f"compile growth, {hi} / {lo} layers",
            unit="s",
            budget="<= 1.3",
            baseline=f"itself at {lo} layers",
            note=f"hand-written: {raw_growth:.2f}",  # XLA's own growth, or machine load, shows in both
            **_stats(m[hi]["compile"][0], m[lo]["compile"][0], 1),
        )
    )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Entry point for benchmarks/run.py: rows with medians and per-round ratio spreads."""
    return rows_of(measure((4, 64) if quick else DEPTHS, rounds=3 if quick else 11))


def print_rows(rows: list[dict]) -> None:
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, hidden {HIDDEN}, mlp {MLP}, batch {BATCH}")
    print("ratios: median of the per-round ratios namedax / baseline, [min, max] over rounds\n")
    for r in rows:
        budget = r.get("budget", "")
        verdict = ""
        if budget:
            verdict = "ok" if r["ratio"] <= float(budget.split()[1]) else "OVER BUDGET"
        print(
            f"{r['case']:34s} {r['lib']:9.3f} {r['unit']:2s} vs {r['raw']:9.3f} {r['unit']:2s} ({r['baseline']}): "
            f"ratio {r['ratio']:.3f} [{r['lo']:.2f}, {r['hi']:.2f}] {budget} {verdict} {r.get('note', '')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="depths 4 and 64, 3 rounds")
    args = parser.parse_args()
    print_rows(run(quick=True) if args.quick else rows_of(measure(DEPTHS, args.rounds)))


if __name__ == "__main__":
    main()
