"""Eager op overhead: namedax vs the same raw jax.numpy call, measured in the same run.

Run: ``python benchmarks/bench_eager.py`` (``--rounds N`` for more rounds). Prints, per op, the median
time per call of each and the ratio namedax / raw with its spread over rounds. Budget (docs/architecture.md): at
most 1.25x for every op.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import jax
import jax.numpy as jnp

import namedax as nx


def _per_call_us(fn, number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6


def cases():
    Batch, Embed, Out = nx.Axis("batch", 4), nx.Axis("embed", 8), nx.Axis("out", 16)
    a = jax.random.normal(jax.random.key(0), (4, 8))
    b = jax.random.normal(jax.random.key(1), (4, 8))
    w = jax.random.normal(jax.random.key(2), (8, 16))
    x, y = nx.named(a, (Batch, Embed)), nx.named(b, (Batch, Embed))
    bt = jnp.asarray(b.T)
    xt = nx.named(bt, (Embed, Batch))  # same data, other axis order: needs a transpose
    wn = nx.named(w, (Embed, Out))
    return {
        "x + y": (lambda: x + y, lambda: a + b),
        "x + y (transposed)": (lambda: x + xt, lambda: a + jnp.transpose(bt)),
        "x * 2.0": (lambda: x * 2.0, lambda: a * 2.0),
        "exp(x)": (lambda: nx.exp(x), lambda: jnp.exp(a)),
        "sum(x, embed)": (lambda: nx.sum(x, axis=Embed), lambda: jnp.sum(a, axis=1)),
        "sum(x)": (lambda: nx.sum(x), lambda: jnp.sum(a)),
        "dot(x, w, embed) vs jnp.dot": (lambda: nx.dot(x, wn, axis=Embed), lambda: jnp.dot(a, w)),
        "dot(x, w, embed) vs jnp.einsum": (lambda: nx.dot(x, wn, axis=Embed), lambda: jnp.einsum("be,eo->bo", a, w)),
        "x[batch, 1]": (lambda: x[Batch, 1], lambda: a[1]),
        "x[embed, 2:6]": (lambda: x["embed", 2:6], lambda: a[:, 2:6]),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--number", type=int, default=300)
    args = p.parse_args(argv)
    rows = []
    print(f"{'op':34s} {'namedax us':>11s} {'raw us':>9s} {'ratio':>7s} {'spread':>13s}")
    for name, (named_fn, raw_fn) in cases().items():
        jax.block_until_ready(named_fn())
        jax.block_until_ready(raw_fn())  # warm both (compiles, caches)
        ratios, tn, tr = [], [], []
        for _ in range(args.rounds):  # interleave so both see the same machine state
            n = _per_call_us(named_fn, args.number)
            r = _per_call_us(raw_fn, args.number)
            tn.append(n)
            tr.append(r)
            ratios.append(n / r)
        med = statistics.median(ratios)
        row = dict(op=name, named_us=statistics.median(tn), raw_us=statistics.median(tr), ratio=med,
                   lo=min(ratios), hi=max(ratios))
        rows.append(row)
        print(f"{name:34s} {row['named_us']:11.1f} {row['raw_us']:9.1f} {med:7.2f} "
              f"  [{row['lo']:.2f}, {row['hi']:.2f}]")
    return rows


def run(quick: bool = False) -> list[dict]:
    """Uniform entry point for benchmarks/run.py: the report's rows (times in microseconds)."""
    rows = main(["--rounds", "5" if quick else "21", "--number", "200" if quick else "500"])
    return [dict(area="eager", case=r["op"], lib=r["named_us"], raw=r["raw_us"], unit="us", ratio=r["ratio"],
                 lo=r["lo"], hi=r["hi"], baseline="jax.numpy", budget="<= 1.25") for r in rows]


if __name__ == "__main__":
    main()
