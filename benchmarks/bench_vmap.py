"""vmap benchmark: namedax.vmap against nested equinox.filter_vmap and raw jax.vmap, in one run.

    python benchmarks/bench_vmap.py

Trace time: `jax.make_jaxpr` of a freshly defined function (so no cache helps either side), mapped
over 1, 2 and 3 axes; ratio nx / nested `eqx.filter_vmap` (budget: at most 1.0). The body is the same
Python function for both (`v * 2 + 1`, run on a NamedArray or on a jax array).
Run time: the jitted mapped function, ratio nx / nested `jax.vmap` (budget: 1.00 within noise), on
arrays of 2**20 elements (compute-bound) and of 2**12 (dispatch-bound: there the difference is the
cost of passing a NamedArray PyTree through `jax.jit`, a few microseconds; the jaxprs are equal).
Rounds are interleaved and the medians reported, so machine load hits both sides alike.
"""

from __future__ import annotations

import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import namedax as nx

AXES = (nx.Axis("a", 8), nx.Axis("b", 16), nx.Axis("c", 32))
BIG = (nx.Axis("a", 32), nx.Axis("b", 128), nx.Axis("c", 256))
ROUNDS, NUMBER = 21, 20


def _time(fn, number):
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def _median_pair(f_nx, f_ref, number=NUMBER, rounds=ROUNDS):
    f_nx(), f_ref()  # warm up
    a, b = [], []
    for _ in range(rounds):
        a.append(_time(f_nx, number))
        b.append(_time(f_ref, number))
    return statistics.median(a), statistics.median(b)


def trace_case(n: int, pair=None):
    axes = AXES[:n]
    shape = tuple(a.size for a in AXES)
    xa = jnp.zeros(shape)
    xn = nx.named(xa, AXES)

    def run_nx():
        def body(v):
            return v * 2 + 1

        return jax.make_jaxpr(nx.vmap(body, axes))(xn)

    def run_eqx():
        def body(v):
            return v * 2 + 1

        g = body
        for _ in range(n):
            g = eqx.filter_vmap(g)
        return jax.make_jaxpr(g)(xa)

    return (pair or _median_pair)(run_nx, run_eqx)


def run_case(n: int, all_axes, pair=None):
    axes = all_axes[:n]
    shape = tuple(a.size for a in all_axes)
    xa = jnp.linspace(0.0, 1.0, int(np.prod(shape))).reshape(shape)
    xn = nx.named(xa, all_axes)

    def body(v):
        return v * v * 2 + 1

    f_nx = jax.jit(nx.vmap(body, axes))
    g = body
    for _ in range(n):
        g = jax.vmap(g)
    f_ref = jax.jit(g)
    assert str(jax.make_jaxpr(f_nx)(xn)) == str(jax.make_jaxpr(f_ref)(xa))
    return (pair or _median_pair)(
        lambda: f_nx(xn).array.block_until_ready(), lambda: f_ref(xa).block_until_ready(), number=50
    )


def main():
    print(f"jax {jax.__version__}, equinox {eqx.__version__}, {jax.devices()[0].platform}")
    print("trace time (make_jaxpr, fresh function): nx.vmap vs nested eqx.filter_vmap")
    for n in (1, 2, 3):
        t_nx, t_ref = trace_case(n)
        print(f"  {n} axes: nx {t_nx * 1e6:8.1f} us  eqx {t_ref * 1e6:8.1f} us  ratio {t_nx / t_ref:.3f}")
    for label, all_axes in (("2**20 elements", BIG), ("2**12 elements, dispatch-bound", AXES)):
        print(f"jitted run time, {label}: nx.vmap vs nested jax.vmap (same jaxpr)")
        for n in (1, 2, 3):
            t_nx, t_ref = run_case(n, all_axes)
            print(f"  {n} axes: nx {t_nx * 1e6:8.2f} us  jax {t_ref * 1e6:8.2f} us  ratio {t_nx / t_ref:.3f}")


def run(quick: bool = False) -> list[dict]:
    """Uniform entry point for benchmarks/run.py: the report's rows, with per-round ratio spreads."""
    rounds = 5 if quick else ROUNDS

    def pair(f_nx, f_ref, number=NUMBER):
        f_nx(), f_ref()
        a, b = [], []
        for _ in range(rounds):
            a.append(_time(f_nx, number))
            b.append(_time(f_ref, number))
        r = [x / y for x, y in zip(a, b)]
        return dict(lib=statistics.median(a) * 1e6, raw=statistics.median(b) * 1e6, unit="us",
                    ratio=statistics.median(r), lo=min(r), hi=max(r))

    rows = []
    for n in (1, 2, 3):
        rows.append(dict(area="vmap", case=f"trace, {n} axes", baseline="nested eqx.filter_vmap", budget="<= 1.0",
                         **trace_case(n, pair)))
    for label, all_axes in (("2**20 elements", BIG), ("2**12 elements", AXES)):
        for n in (1, 2, 3):  # run_case asserts the jaxprs are equal before timing
            rows.append(dict(area="vmap", case=f"jitted run, {n} axes, {label}", baseline="nested jax.vmap",
                             budget="<= 1.05", note="same jaxpr (budget 1.00 within noise)",
                             **run_case(n, all_axes, pair)))
    return rows


if __name__ == "__main__":
    main()
