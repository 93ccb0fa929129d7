"""Fused cross-entropy benchmark: `nx.nn.fused_cross_entropy` against the unfused positional form.

    python benchmarks/bench_losses.py [--rounds N] [--quick]

The workload is a language-model head: hidden states over batch 8 x position 128 (1024 positions)
and embed 256, an unembedding 256 x 32768, integer labels; the step is ``value_and_grad`` of the mean
loss with respect to the hidden states and the unembedding.

- namedax: ``fused_cross_entropy(h, w, ids, embed_axis=Embed, vocab_axis=Vocab, block_size=4096)``;
- baseline: the unfused positional form, ``optax.softmax_cross_entropy_with_integer_labels(h @ w, ids)``,
  which builds the full 1024 x 32768 logits (128 MiB in float32) and their gradient.

Peak memory is the compiled step's ``memory_analysis().temp_size_in_bytes`` (exact, one value, so
``lo`` and ``hi`` equal the ratio). Budget (docs/architecture.md): at most a quarter of the
unfused peak. Step time: the two compiled steps, rounds interleaved, medians; budget at most 1.2x
(the fused backward recomputes each block's logits: four matmuls against three).
"""

from __future__ import annotations

import argparse
import statistics

import jax
import jax.numpy as jnp
import optax
from bench_stacked import run_time  # benchmarks/ is on the path, as for bench_stacked_state

import namedax as nx

BATCH, POS, EMBED, VOCAB, BLOCK = 8, 128, 256, 32768, 4096
Batch, Pos, Embed, Vocab = (
    nx.Axis("batch", BATCH),
    nx.Axis("position", POS),
    nx.Axis("embed", EMBED),
    nx.Axis("vocab", VOCAB),
)


def build():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    h = jax.random.normal(k1, (BATCH, POS, EMBED))
    w = jax.random.normal(k2, (EMBED, VOCAB)) / EMBED**0.5
    ids = jax.random.randint(k3, (BATCH, POS), 0, VOCAB)
    return h, w, ids


def fused_step(ids):
    labels = nx.named(ids, (Batch, Pos))

    def loss(h, w):
        hn, wn = nx.named(h, (Batch, Pos, Embed)), nx.named(w, (Embed, Vocab))
        return nx.nn.fused_cross_entropy(hn, wn, labels, embed_axis=Embed, vocab_axis=Vocab, block_size=BLOCK).array

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def unfused_step(ids):
    def loss(h, w):
        return optax.softmax_cross_entropy_with_integer_labels(jnp.einsum("bpe,ev->bpv", h, w), ids).mean()

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def temp_bytes(step, *args) -> int:
    return step.lower(*args).compile().memory_analysis().temp_size_in_bytes


def measure(rounds: int, number: int) -> dict:
    h, w, ids = build()
    fused, unfused = fused_step(ids), unfused_step(ids)
    (lf, gf), (lu, gu) = fused(h, w), unfused(h, w)
    same = bool(jnp.allclose(lf, lu, rtol=1e-4)) and all(
        bool(jnp.allclose(a, b, rtol=1e-3, atol=1e-6)) for a, b in zip(gf, gu, strict=True)
    )
    memory = (temp_bytes(fused, h, w), temp_bytes(unfused, h, w))
    a, b = [], []
    for _ in range(rounds):
        a.append(run_time(fused, (h, w), number))
        b.append(run_time(unfused, (h, w), number))
    return dict(memory=memory, step=(a, b), same=same)


def rows_of(m: dict, area: str = "losses", base: str = "unfused optax (positional)") -> list[dict]:
    note = "" if m["same"] else "OUTPUTS DIFFER"
    mf, mu = m["memory"]
    rows = [
        dict(
            area=area, case=f"fused cross-entropy peak memory, vocab {VOCAB}", unit="MiB", baseline=base,
            budget="<= 0.25", note=note + f" block {BLOCK}, {BATCH * POS} positions, embed {EMBED}",
            lib=mf / 2**20, raw=mu / 2**20, ratio=mf / mu, lo=mf / mu, hi=mf / mu,
        )
    ]  # fmt: skip
    a, b = m["step"]
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    rows.append(
        dict(
            area=area, case=f"fused cross-entropy step (value and grad), vocab {VOCAB}", unit="ms", baseline=base,
            budget="<= 1.2", note=note, lib=statistics.median(a) * 1e3, raw=statistics.median(b) * 1e3,
            ratio=statistics.median(ratios), lo=min(ratios), hi=max(ratios),
        )
    )  # fmt: skip
    return rows


def run(quick: bool = False) -> list[dict]:
    """Entry point for benchmarks/run.py: rows with medians and per-round ratio spreads."""
    return rows_of(measure(rounds=3 if quick else 11, number=1 if quick else 3))


def print_rows(rows: list[dict]) -> None:
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}")
    for r in rows:
        verdict = "ok" if r["ratio"] <= float(r["budget"].split()[1]) else "OVER BUDGET"
        print(
            f"{r['case']:58s} {r['lib']:9.2f} {r['unit']:3s} vs {r['raw']:9.2f} {r['unit']:3s} ({r['baseline']}): "
            f"ratio {r['ratio']:.3f} [{r['lo']:.2f}, {r['hi']:.2f}] {r['budget']} {verdict} {r.get('note', '')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="3 rounds of one step")
    args = parser.parse_args()
    print_rows(run(quick=True) if args.quick else rows_of(measure(args.rounds, 3)))


if __name__ == "__main__":
    main()
