"""haliax on namedax's workloads, against raw JAX in haliax's own environment.

    benchmarks/peers/.venvs/haliax-dev/bin/python benchmarks/peers/peer_haliax.py [--quick]

The workloads copy benchmarks/bench_eager.py (eager ops), bench_vmap.py (vmap trace time against
nested ``equinox.filter_vmap``) and bench_stacked.py (a residual MLP block stacked 4..64 times:
compile, step and gradient-step time against a hand-written equinox + ``lax.scan`` stack), with the same
shapes and case names, so ``benchmarks/run.py`` can put the ratios side by side. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import math
import time
from importlib.metadata import version

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
from _timing import emit, emit_error, emit_meta, pair, stats

HIDDEN, MLP, BATCH = 256, 256, 64


def eager(rounds: int, number: int) -> None:
    Batch, Embed, Out = hax.Axis("batch", 4), hax.Axis("embed", 8), hax.Axis("out", 16)
    a = jax.random.normal(jax.random.key(0), (4, 8))
    b = jax.random.normal(jax.random.key(1), (4, 8))
    w = jax.random.normal(jax.random.key(2), (8, 16))
    x, y = hax.named(a, (Batch, Embed)), hax.named(b, (Batch, Embed))
    bt = jnp.asarray(b.T)
    xt = hax.named(bt, (Embed, Batch))
    wn = hax.named(w, (Embed, Out))
    cases = {
        "x + y": (lambda: x + y, lambda: a + b),
        "x + y (transposed)": (lambda: x + xt, lambda: a + jnp.transpose(bt)),
        "x * 2.0": (lambda: x * 2.0, lambda: a * 2.0),
        "exp(x)": (lambda: hax.exp(x), lambda: jnp.exp(a)),
        "sum(x, embed)": (lambda: hax.sum(x, axis=Embed), lambda: jnp.sum(a, axis=1)),
        "sum(x)": (lambda: hax.sum(x), lambda: jnp.sum(a)),
        "dot(x, w, embed) vs jnp.dot": (lambda: hax.dot(x, wn, axis=Embed), lambda: jnp.dot(a, w)),
        "dot(x, w, embed) vs jnp.einsum": (lambda: hax.dot(x, wn, axis=Embed),
                                           lambda: jnp.einsum("be,eo->bo", a, w)),
        "x[batch, 1]": (lambda: x["batch", 1], lambda: a[1]),
        "x[embed, 2:6]": (lambda: x["embed", 2:6], lambda: a[:, 2:6]),
    }
    for name, (lib_fn, raw_fn) in cases.items():
        try:
            emit("eager", name, pair(lib_fn, raw_fn, rounds=rounds, number=number), unit="us", baseline="jax.numpy")
        except Exception as e:  # noqa: BLE001 - a peer version that lacks an op is recorded, not fatal
            emit_error("eager", name, e)


def vmap_trace(rounds: int, number: int) -> None:
    axes = (hax.Axis("a", 8), hax.Axis("b", 16), hax.Axis("c", 32))
    xa = jnp.zeros(tuple(ax.size for ax in axes))
    xn = hax.named(xa, axes)
    for n in (1, 2, 3):
        mapped = axes[:n]

        def run_lib(mapped=mapped):
            def body(v):
                return v * 2 + 1

            return jax.make_jaxpr(hax.vmap(body, mapped if len(mapped) > 1 else mapped[0]))(xn)

        def run_lib_nested(mapped=mapped):
            def body(v):
                return v * 2 + 1

            g = body
            for ax in reversed(mapped):
                g = hax.vmap(g, ax)
            return jax.make_jaxpr(g)(xn)

        def run_eqx(n=n):
            def body(v):
                return v * 2 + 1

            g = body
            for _ in range(n):
                g = eqx.filter_vmap(g)
            return jax.make_jaxpr(g)(xa)

        note = ""
        try:
            run_lib()
            lib = run_lib
        except Exception:  # noqa: BLE001 - older haliax maps one axis per call: nest it
            lib, note = run_lib_nested, "nested hax.vmap (this version maps one axis per call)"
        try:
            emit("vmap", f"trace, {n} axes", pair(lib, run_eqx, rounds=rounds, number=number), unit="us",
                 baseline="nested eqx.filter_vmap", note=note)
        except Exception as e:  # noqa: BLE001
            emit_error("vmap", f"trace, {n} axes", e)


Hid, Mlp, Batch = hax.Axis("hidden", HIDDEN), hax.Axis("mlp", MLP), hax.Axis("batch", BATCH)


class NamedBlock(eqx.Module):
    up: hax.nn.Linear
    down: hax.nn.Linear

    @staticmethod
    def init(*, key):
        k1, k2 = jax.random.split(key)
        return NamedBlock(hax.nn.Linear.init(Hid, Mlp, key=k1), hax.nn.Linear.init(Mlp, Hid, key=k2))

    def __call__(self, x):
        return x + self.down(hax.nn.relu(self.up(x)))


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


def _compile(fn, *args) -> float:
    t = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t


def _steps(fn, args, number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / number


def stacked(depths, rounds: int) -> None:
    compiles = {}
    for n in depths:
        try:
            keys = jax.random.split(jax.random.key(0), n)
            named = hax.nn.Stacked.init(hax.Axis("layers", n), NamedBlock)(key=keys)
            params, static = eqx.partition(eqx.filter_vmap(RawBlock)(keys), eqx.is_array)
            x = jax.random.normal(jax.random.key(1), (BATCH, HIDDEN))
            xn = hax.named(x, (Batch, Hid))

            def raw_fold(p, v):
                return jax.lax.scan(lambda h, q: (eqx.combine(q, static)(h), None), v, p)[0]

            cl, cr = [], []
            for _ in range(max(3, rounds // 2)):  # fresh lambdas: nothing cached
                cl.append(_compile(lambda s, v: s.fold(v), named, xn))
                cr.append(_compile(lambda p, v: raw_fold(p, v), params, x))
            compiles[n] = cl
            emit("stacked", f"compile, {n} layers", stats(cl, cr), unit="s", baseline="eqx + lax.scan")
            fl, fr = jax.jit(lambda s, v: s.fold(v)), jax.jit(raw_fold)
            number = max(2, 256 // n)
            jax.block_until_ready(fl(named, xn))
            jax.block_until_ready(fr(params, x))
            tl, tr = [], []
            for _ in range(rounds):
                tl.append(_steps(fl, (named, xn), number))
                tr.append(_steps(fr, (params, x), number))
            emit("stacked", f"step, {n} layers", stats(tl, tr, 1e3), unit="ms", baseline="eqx + lax.scan")
            gl = jax.jit(jax.value_and_grad(lambda s, v: jnp.sum(s.fold(v).array ** 2)))
            gr = jax.jit(jax.value_and_grad(lambda p, v: jnp.sum(raw_fold(p, v) ** 2)))
            jax.block_until_ready(gl(named, xn))
            jax.block_until_ready(gr(params, x))
            tl, tr = [], []
            for _ in range(max(3, rounds // 2)):
                tl.append(_steps(gl, (named, xn), max(1, number // 2)))
                tr.append(_steps(gr, (params, x), max(1, number // 2)))
            emit("stacked", f"gradient step, {n} layers", stats(tl, tr, 1e3), unit="ms", baseline="eqx + lax.scan")
        except Exception as e:  # noqa: BLE001
            emit_error("stacked", f"{n} layers", e)
    lo, hi = min(compiles, default=None), max(compiles, default=None)
    if lo is not None and hi != lo:
        emit("stacked", f"compile growth, {hi} / {lo} layers", stats(compiles[hi], compiles[lo]), unit="s",
             baseline=f"itself at {lo} layers")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    emit_meta("haliax", version("haliax"), equinox=eqx.__version__)
    eager(rounds=5 if q else 21, number=100 if q else 500)
    vmap_trace(rounds=5 if q else 21, number=5 if q else 20)
    stacked((4, 64) if q else (4, 16, 64), rounds=3 if q else 11)


if __name__ == "__main__":
    main()
