"""Stacked-with-state benchmark: nn.Stacked of a BatchNorm block against a hand-written lax.scan, in one run.

    python benchmarks/bench_stacked_state.py [--rounds N] [--quick]

The model is a residual block with batch normalisation, ``x + down(relu(bn(up(x))))``, hidden size
256, an MLP axis of 256, stacked 4, 16 and 64 times and folded over a batch of 64. The batch norm
runs in training mode: it normalises with the batch statistics (biased variance, eps 1e-5) and
updates its running mean and variance, ``running = m * running + (1 - m) * batch`` (m = 0.9), so
each layer reads and writes its own slice of the state.

- namedax: ``eqx.nn.make_with_state(nx.nn.Stacked.init(Layers, Block))(key=...)`` of a Block of two
  `nx.nn.Linear` and an `nx.nn.BatchNorm` over the MLP axis, run with ``stack.fold(x, state)``;
- hand-written: a positional equinox Block of plain arrays, its running statistics (one ``(n, MLP)``
  array each) threaded through ``jax.lax.scan`` as xs -> ys (per-layer state in, per-layer state out).

Before timing, the two are checked to compute the same output and the same new state (twice in a
row, so the second step starts from a non-trivial state) with the weights of the named stack copied
into the hand-written one: the comparison is of one computation.

Compile time is ``jax.jit(f).lower(...).compile()`` of a freshly defined function, median over
rounds, the depths interleaved within each round after a discarded warm-up round (as in
bench_stacked, whose timing and report code this reuses). Budget (docs/architecture.md): namedax at
64 layers at most 1.3x namedax at 4 ("compile growth"); the row notes the hand-written growth. Step
time is the compiled stateful fold, rounds interleaved between the two, medians; budget at most
1.05x the hand-written stack, as for the stateless fold. The gradient step (value_and_grad of a
squared loss, the new state as aux) is reported for information. It reads ~0.8, as in
bench_stacked: the forward jaxprs are the same op for op, except that the hand-written ``x @ w.T``
adds a transpose per matmul where namedax's dot_general contracts the weight's input axis in place;
XLA absorbs it in the forward pass but not in the backward one (a hand-written block calling
``lax.dot_general`` without ``.T`` takes namedax's time). ``run(quick)`` is the entry point of
``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import namedax as nx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared timing and report code
import bench_stacked  # noqa: E402
from bench_stacked import compile_rounds, interleaved, print_rows  # noqa: E402

HIDDEN, MLP, BATCH = 256, 256, 64
DEPTHS = (4, 16, 64)
MOMENTUM, EPS = 0.9, 1e-5
Hid, Mlp, Batch = nx.Axis("hidden", HIDDEN), nx.Axis("mlp", MLP), nx.Axis("batch", BATCH)
AREA, BASE = "stacked_state", "eqx + lax.scan, state as xs"


class NamedBlock(eqx.Module):
    up: nx.nn.Linear
    bn: nx.nn.BatchNorm
    down: nx.nn.Linear

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(
            nx.nn.Linear.init(Hid, Mlp, key=k1),
            nx.nn.BatchNorm.init(Mlp, momentum=MOMENTUM, eps=EPS),
            nx.nn.Linear.init(Mlp, Hid, key=k2),
        )

    def __call__(self, x, state):
        h, state = self.bn(self.up(x), state)
        return x + self.down(nx.nn.relu(h)), state


class RawBlock(eqx.Module):
    w1: jax.Array
    b1: jax.Array
    g: jax.Array
    beta: jax.Array
    w2: jax.Array
    b2: jax.Array

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.w1 = jax.random.truncated_normal(k1, -3.0, 3.0, (MLP, HIDDEN)) / math.sqrt(HIDDEN)
        self.b1 = jnp.zeros(MLP)
        self.g = jnp.ones(MLP)
        self.beta = jnp.zeros(MLP)
        self.w2 = jax.random.truncated_normal(k2, -3.0, 3.0, (HIDDEN, MLP)) / math.sqrt(MLP)
        self.b2 = jnp.zeros(HIDDEN)

    def __call__(self, x, running_mean, running_var):
        h = x @ self.w1.T + self.b1
        mu = jnp.mean(h, axis=0)
        var = jnp.mean((h - mu) * (h - mu), axis=0)
        h = (h - mu) * jax.lax.rsqrt(var + EPS) * self.g + self.beta
        new_mean = MOMENTUM * running_mean + (1 - MOMENTUM) * mu
        new_var = MOMENTUM * running_var + (1 - MOMENTUM) * var
        return x + (jax.nn.relu(h) @ self.w2.T + self.b2), new_mean, new_var


def _arr(a: nx.NamedArray, order) -> jax.Array:
    return nx.rearrange(a, order).array


def build(n: int):
    """(named params, named static, named state, named x, raw params, raw static, raw state, raw x).

    The raw parameters are the named stack's, copied (and laid out positionally), so both compute
    the same function."""
    Layers = nx.Axis("layers", n)
    keys = jax.random.split(jax.random.key(0), n)
    stack, state = eqx.nn.make_with_state(nx.nn.Stacked.init(Layers, NamedBlock))(key=keys)
    s = stack.stacked
    raw = eqx.filter_vmap(RawBlock)(keys)
    raw = eqx.tree_at(
        lambda r: (r.w1, r.b1, r.g, r.beta, r.w2, r.b2),
        raw,
        (
            _arr(s.up.weight, (Layers, Mlp, Hid)),
            _arr(s.up.bias, (Layers, Mlp)),
            _arr(s.bn.weight, (Layers, Mlp)),
            _arr(s.bn.bias, (Layers, Mlp)),
            _arr(s.down.weight, (Layers, Hid, Mlp)),
            _arr(s.down.bias, (Layers, Hid)),
        ),
    )
    rmean, rvar = state.get(s.bn.index)
    raw_state = (_arr(rmean, (Layers, Mlp)), _arr(rvar, (Layers, Mlp)))
    params, static = eqx.partition(raw, eqx.is_array)
    nparams, nstatic = eqx.partition(stack, eqx.is_array)  # BatchNorm's `inference` flag stays static
    x = jax.random.normal(jax.random.key(1), (BATCH, HIDDEN))
    return nparams, nstatic, state, nx.named(x, (Batch, Hid)), params, static, raw_state, x


def named_fold_for(nstatic):
    def named_fold(nparams, state, x):
        return eqx.combine(nparams, nstatic).fold(x, state)

    return named_fold


def raw_fold_for(static):
    def raw_fold(params, state, x):
        def body(h, ps):
            p, m, v = ps
            h, m, v = eqx.combine(p, static)(h, m, v)
            return h, (m, v)

        return jax.lax.scan(body, x, (params, *state))

    return raw_fold


def _named_out(nstatic, out, n):
    """(y, running mean, running var) of a named fold's output, as positional numpy arrays."""
    y, state = out
    Layers = nx.Axis("layers", n)
    m, v = state.get(nstatic.stacked.bn.index)
    return np.asarray(_arr(y, (Batch, Hid))), np.asarray(_arr(m, (Layers, Mlp))), np.asarray(_arr(v, (Layers, Mlp)))


def check_same(n: int) -> None:
    """Assert that namedax and the hand-written stack compute the same output and new state (two steps)."""
    nparams, nstatic, state, xn, params, static, raw_state, x = build(n)
    fn, fr = jax.jit(named_fold_for(nstatic)), jax.jit(raw_fold_for(static))
    for step in range(2):
        out = fn(nparams, state, xn)
        y, (m, v) = fr(params, raw_state, x)
        got = _named_out(nstatic, out, n)
        for what, a, b in zip(("output", "running mean", "running var"), got, (y, m, v), strict=True):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-4, err_msg=f"{what}, step {step}")
        state, raw_state = out[1], (m, v)


def measure(depths, rounds: int) -> dict:
    """Per depth: per-round compile times, stateful fold step times and gradient step times (namedax, hand-written)."""
    check_same(min(depths))
    built = {n: build(n) for n in depths}

    def functions(n):
        nparams, nstatic, state, xn, params, static, raw_state, x = built[n]
        return named_fold_for(nstatic), (nparams, state, xn), raw_fold_for(static), (params, raw_state, x)

    compiles = compile_rounds(depths, max(3, rounds // 2), functions)
    out = {}
    for n in depths:
        nparams, nstatic, state, xn, params, static, raw_state, x = built.pop(n)
        named_fold, raw_fold = named_fold_for(nstatic), raw_fold_for(static)
        fn, fr = jax.jit(named_fold), jax.jit(raw_fold)
        y_named = _named_out(nstatic, fn(nparams, state, xn), n)[0]
        same = bool(np.allclose(y_named, fr(params, raw_state, x)[0], rtol=1e-4, atol=1e-4))
        number = max(2, 256 // n)
        step = interleaved(fn, (nparams, state, xn), fr, (params, raw_state, x), rounds, number)

        def loss_named(p, s, v):
            y, s = named_fold(p, s, v)
            return jnp.sum(y.array**2), s

        def loss_raw(p, s, v):
            y, s = raw_fold(p, s, v)
            return jnp.sum(y**2), s

        gn = jax.jit(jax.value_and_grad(loss_named, has_aux=True))
        gr = jax.jit(jax.value_and_grad(loss_raw, has_aux=True))
        grad = interleaved(
            gn, (nparams, state, xn), gr, (params, raw_state, x), max(3, rounds // 2), max(1, number // 2)
        )
        out[n] = dict(compile=compiles[n], step=step, grad=grad, same=same)
    return out


def rows_of(m: dict) -> list[dict]:
    """Report rows, as bench_stacked's, under this benchmark's area and baseline."""
    return bench_stacked.rows_of(m, AREA, BASE)


def run(quick: bool = False) -> list[dict]:
    """Entry point for benchmarks/run.py: rows with medians and per-round ratio spreads."""
    return rows_of(measure((4, 64) if quick else DEPTHS, rounds=3 if quick else 11))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="depths 4 and 64, 3 rounds")
    args = parser.parse_args()
    print_rows(run(quick=True) if args.quick else rows_of(measure(DEPTHS, args.rounds)))


if __name__ == "__main__":
    main()
