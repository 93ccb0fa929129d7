"""Attention benchmark: `nn.dot_product_attention` by name against `jax.nn.dot_product_attention`.

    python benchmarks/bench_attention.py [--rounds N] [--quick]

Batch 8, sequence 128, 4 heads of size 64, a causal mask, float32, under `jax.jit`: the forward pass
and the forward + backward pass (``value_and_grad`` of the sum of squares with respect to query, key
and value), on the same arrays. Rounds are interleaved; the outputs are checked equal first. Budget
(docs/architecture.md): at most 1.05x. One more row, for information: the query laid out as
``(batch, heads, seq, head)``, so namedax has to transpose to JAX's (batch, seq, heads, head) layout.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import namedax as nx

B, T, N, H = 8, 128, 4, 64


def arrays():
    r = np.random.default_rng(0)
    return tuple(jnp.asarray(r.normal(size=(B, T, N, H)).astype(np.float32)) for _ in range(3))


def raw_attention(q, k, v):
    mask = jnp.tril(jnp.ones((T, T), bool))[None, None]
    return jax.nn.dot_product_attention(q, k, v, mask=mask)


def named_attention_for(order):
    """namedax attention on positional (B, T, N, H) arrays, named in ``order`` (a transpose of them)."""
    perm = [("batch", "seq", "heads", "head").index(n) for n in order]
    mask = nx.nn.causal_mask(nx.Axis("seq", T), nx.Axis("kv_seq", T))

    def fn(q, k, v):
        kv_order = tuple("kv_seq" if n == "seq" else n for n in order)
        out = nx.nn.dot_product_attention(
            nx.named(q.transpose(perm), order), nx.named(k.transpose(perm), kv_order),
            nx.named(v.transpose(perm), kv_order), q_axis="seq", kv_axis="kv_seq", head_axis="head", mask=mask,
        )  # fmt: skip
        return nx.rearrange(out, ("batch", "seq", "heads", "head")).array

    return fn


def sum_sq(f):
    return lambda q, k, v: jnp.sum(f(q, k, v) ** 2)


def timed(fn, args, number) -> float:
    t = time.perf_counter()
    for _ in range(number):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / number


def pair(case, f_named, f_raw, args, rounds, number, budget):
    np.testing.assert_allclose(
        np.asarray(jax.tree.leaves(f_named(*args))[0]), np.asarray(jax.tree.leaves(f_raw(*args))[0]),
        rtol=2e-4, atol=2e-4,
    )  # fmt: skip
    tn, tr = [], []
    for _ in range(rounds):
        tn.append(timed(f_named, args, number))
        tr.append(timed(f_raw, args, number))
    ratios = [a / b for a, b in zip(tn, tr, strict=True)]
    row = dict(area="attention", case=case, unit="ms", baseline="jax.nn.dot_product_attention",
               lib=statistics.median(tn) * 1e3, raw=statistics.median(tr) * 1e3, ratio=statistics.median(ratios),
               lo=min(ratios), hi=max(ratios))  # fmt: skip
    if budget:
        row["budget"] = budget
    return row


def run(quick: bool = False, rounds: int | None = None) -> list[dict]:
    """Entry point for benchmarks/run.py."""
    rounds = rounds or (3 if quick else 21)
    number = 3 if quick else 10
    args = arrays()
    btnh = named_attention_for(("batch", "seq", "heads", "head"))
    bnth = named_attention_for(("batch", "heads", "seq", "head"))
    grad = jax.value_and_grad  # noqa: E731 - shorter lines below
    return [
        pair("forward", jax.jit(btnh), jax.jit(raw_attention), args, rounds, number, "<= 1.05"),
        pair("forward + backward", jax.jit(grad(sum_sq(btnh), (0, 1, 2))),
             jax.jit(grad(sum_sq(raw_attention), (0, 1, 2))), args, rounds, number, "<= 1.05"),
        pair("forward + backward, heads before seq", jax.jit(grad(sum_sq(bnth), (0, 1, 2))),
             jax.jit(grad(sum_sq(raw_attention), (0, 1, 2))), args, rounds, number, ""),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for r in run(args.quick, None if args.quick else args.rounds):
        print(f"{r['case']:40s} {r['lib']:8.3f} vs {r['raw']:8.3f} ms ratio {r['ratio']:.3f} "
              f"[{r['lo']:.2f}, {r['hi']:.2f}] {r.get('budget', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
