"""Decoder benchmark: a transformer training step written with namedax against the same math positionally.

    python benchmarks/bench_decoder.py [--rounds N] [--quick]

The model is a decoder-only transformer: 4 blocks of ``x + attn(rms_norm(x))``, ``x + mlp(rms_norm(x))``
(causal multi-head attention with rotary embeddings, 4 heads of 64, no projection biases; a ReLU MLP
of width 1024 with biases), embed 256, a final RMS norm and a tied unembedding over a vocabulary of
1024; batch 8, sequence 128. The step is ``value_and_grad`` of the mean cross-entropy of next-token
prediction and an `optax.adam` update, under `jax.jit`.

- namedax: `nx.nn.Embedding`, `nx.nn.Stacked` of blocks of `nx.nn.RMSNorm`, `nx.nn.MultiHeadAttention`
  (``rope_theta``, a `nx.nn.causal_mask`) and `nx.nn.MLP`, then `nx.nn.cross_entropy`;
- hand-written: the same parameters as plain arrays (extracted from the namedax model by name, so
  both start from the same values; weights out-first as in `equinox.nn.Linear`), ``jax.lax.scan``
  over the stacked layer parameters,
  ``jax.nn.dot_product_attention(..., is_causal=True)``, and
  ``optax.softmax_cross_entropy_with_integer_labels``.

Both losses and gradients are checked equal on the same parameters first. Step time: the compiled
steps, rounds interleaved, medians; budget (docs/architecture.md) at most 1.05x. Compile time:
``jax.jit(f).lower(...).compile()`` of freshly wrapped functions each round (`bench_stacked.compile_rounds`),
budget at most 1.15x.
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench_losses import print_rows  # benchmarks/ is on the path, as for bench_stacked_state
from bench_stacked import _stats, compile_rounds, interleaved

import namedax as nx

LAYERS, EMBED, HEADS, HEAD, MLP, SEQ, BATCH, VOCAB = 4, 256, 4, 64, 1024, 128, 8, 1024
THETA, LR = 10000.0, 1e-3
Vocab, Embed, Heads = nx.Axis("vocab", VOCAB), nx.Axis("embed", EMBED), nx.Axis("heads", HEADS)
Head, Mlp, Layers = nx.Axis("head", HEAD), nx.Axis("mlp", MLP), nx.Axis("layers", LAYERS)
OPT = optax.adam(LR)


# ---- namedax ---------------------------------------------------------------------------------------


class Block(eqx.Module):
    """``x + attn(rms_norm(x))``, then ``x + mlp(rms_norm(x))``; `decode` runs it through a `KVCache`."""

    attn_norm: nx.nn.RMSNorm
    attn: nx.nn.MultiHeadAttention
    mlp_norm: nx.nn.RMSNorm
    mlp: nx.nn.MLP

    @classmethod
    def init(cls, Embed, Heads, Head, Mlp, *, key, theta=THETA):
        k1, k2 = jax.random.split(key)
        attn = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, rope_theta=theta, key=k1)
        mlp = nx.nn.MLP.init(Embed, Embed, Mlp, depth=1, key=k2)
        return cls(nx.nn.RMSNorm.init(Embed), attn, nx.nn.RMSNorm.init(Embed), mlp)

    def __call__(self, x, mask):
        x = x + self.attn(self.attn_norm(x), mask=mask)
        return x + self.mlp(self.mlp_norm(x))

    def decode(self, x, cache):
        h, cache = self.attn(self.attn_norm(x), cache=cache)
        x = x + h
        return x + self.mlp(self.mlp_norm(x)), cache


class Decoder(eqx.Module):
    """Embedding, `Stacked` blocks, a final norm and the tied unembedding (also used by
    tests/test_transformer.py, which checks it against `raw_forward` and trains it)."""

    embed: nx.nn.Embedding
    blocks: nx.nn.Stacked
    norm: nx.nn.RMSNorm

    @classmethod
    def init(cls, Vocab, Embed, Heads, Head, Mlp, Layers, *, key, theta=THETA, init_scale=0.02):
        k1, k2 = jax.random.split(key)
        blocks = nx.nn.Stacked.init(Layers, Block)(Embed, Heads, Head, Mlp, key=jax.random.split(k2, Layers.size),
                                                   theta=theta)  # fmt: skip
        embed = nx.nn.Embedding.init(Vocab, Embed, key=k1, init_scale=init_scale)
        return cls(embed, blocks, nx.nn.RMSNorm.init(Embed))

    def __call__(self, tokens):
        """Logits over (batch..., position, vocab) for tokens over (batch..., position), causally."""
        T = tokens.axes[[a.name for a in tokens.axes].index("position")]
        h = self.blocks.fold(self.embed(tokens), nx.nn.causal_mask(T, T.alias("key_position")))
        return self.embed.unembed(self.norm(h))

    def decode(self, tokens, caches):
        """The logits of new positions after those in ``caches`` (one `KVCache` per layer, stacked on
        ``Layers``, each handed to its layer by `Stacked.scan_via`), and the updated caches."""
        h, caches = self.blocks.scan_via(Block.decode)(self.embed(tokens), caches)
        return self.embed.unembed(self.norm(h)), caches

    def empty_caches(self, batch, max_len):
        return self.blocks.vmap_via(lambda layer: nx.nn.KVCache.init(layer.attn, batch, max_len))()


def named_loss(params, static, tokens, targets):
    return nx.nn.cross_entropy(eqx.combine(params, static)(tokens), targets, Vocab).array


def named_step_for(static):
    def step(params, opt_state, tokens, targets):
        value, grads = jax.value_and_grad(named_loss)(params, static, tokens, targets)
        updates, opt_state = OPT.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


# ---- hand-written ----------------------------------------------------------------------------------


def raw_params(model: Decoder) -> dict:
    """The namedax model's parameters as plain arrays, in the layouts written here (checked by name).

    Weights are out-first, as in `equinox.nn.Linear` and PyTorch (and namedax's `Linear`): with
    in-first layouts (``x @ w``) the positional step ran about 7% slower on this CPU."""
    b = model.blocks.stacked
    a = lambda x, *order: nx.rearrange(x, order).array  # noqa: E731
    return dict(
        embed=a(model.embed.weight, "vocab", "embed"),
        norm=a(model.norm.weight, "embed"),
        layers=dict(
            attn_norm=a(b.attn_norm.weight, "layers", "embed"),
            wq=a(b.attn.q_proj.weight, "layers", "heads", "head", "embed"),
            wk=a(b.attn.k_proj.weight, "layers", "heads", "head", "embed"),
            wv=a(b.attn.v_proj.weight, "layers", "heads", "head", "embed"),
            wo=a(b.attn.o_proj.weight, "layers", "embed", "heads", "head"),
            mlp_norm=a(b.mlp_norm.weight, "layers", "embed"),
            w1=a(b.mlp.layers[0].weight, "layers", "mlp", "embed"),
            b1=a(b.mlp.layers[0].bias, "layers", "mlp"),
            w2=a(b.mlp.layers[1].weight, "layers", "embed", "mlp"),
            b2=a(b.mlp.layers[1].bias, "layers", "embed"),
        ),
    )


def rms_norm(x, w, eps=1e-5):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x):  # (b, t, n, d), split-half convention
    t, d = x.shape[1], x.shape[-1]
    ang = jnp.arange(t, dtype=jnp.float32)[:, None] * THETA ** (-jnp.arange(d // 2, dtype=jnp.float32) * 2 / d)
    cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def raw_forward(p, tokens):  # (b, t) -> (b, t, vocab)
    def layer(x, lp):
        h = rms_norm(x, lp["attn_norm"])
        q = rope(jnp.einsum("bte,nde->btnd", h, lp["wq"]))
        k = rope(jnp.einsum("bte,nde->btnd", h, lp["wk"]))
        v = jnp.einsum("bte,nde->btnd", h, lp["wv"])
        x = x + jnp.einsum("btnd,end->bte", jax.nn.dot_product_attention(q, k, v, is_causal=True), lp["wo"])
        h = rms_norm(x, lp["mlp_norm"])
        return x + jax.nn.relu(h @ lp["w1"].T + lp["b1"]) @ lp["w2"].T + lp["b2"], None

    x = jax.lax.scan(layer, p["embed"][tokens], p["layers"])[0]
    return rms_norm(x, p["norm"]) @ p["embed"].T


def raw_loss(p, tokens, targets):
    return optax.softmax_cross_entropy_with_integer_labels(raw_forward(p, tokens), targets).mean()


def raw_step(params, opt_state, tokens, targets):
    value, grads = jax.value_and_grad(raw_loss)(params, tokens, targets)
    updates, opt_state = OPT.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


# ---- measurement -----------------------------------------------------------------------------------


def build():
    """The namedax model's static part, the namedax step's args and the hand-written step's args, on the
    same parameters and batch."""
    model = Decoder.init(Vocab, Embed, Heads, Head, Mlp, Layers, key=jax.random.key(0))
    seq = jax.random.randint(jax.random.key(1), (BATCH, SEQ + 1), 0, VOCAB)
    params, static = eqx.partition(model, eqx.is_array)
    names = ("batch", "position")
    named_args = (params, OPT.init(params), nx.named(seq[:, :-1], names), nx.named(seq[:, 1:], names))
    p = raw_params(model)
    raw_args = (p, OPT.init(p), seq[:, :-1], seq[:, 1:])
    return static, named_args, raw_args


def check_same(static, named_args, raw_args) -> bool:
    """Same loss and same gradients (compared by name) on the same parameters."""
    params, _, tokens, targets = named_args
    ln, gn = jax.jit(jax.value_and_grad(lambda p: named_loss(p, static, tokens, targets)))(params)
    lr, gr = jax.jit(jax.value_and_grad(raw_loss))(*[raw_args[i] for i in (0, 2, 3)])
    grads_by_name = raw_params(eqx.combine(gn, static))
    same = np.allclose(ln, lr, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads_by_name), jax.tree.leaves(gr), strict=True):
        same &= np.allclose(a, b, rtol=1e-3, atol=1e-5 * float(np.abs(b).max()))
    return bool(same)


def measure(rounds: int, number: int) -> dict:
    static, named_args, raw_args = build()
    same = check_same(static, named_args, raw_args)
    named_step = named_step_for(static)
    compiles = compile_rounds((LAYERS,), max(3, rounds // 2), lambda n: (named_step, named_args, raw_step, raw_args))
    fn, fr = jax.jit(named_step), jax.jit(raw_step)
    step = interleaved(fn, named_args, fr, raw_args, rounds, number)
    return dict(compile=compiles[LAYERS], step=step, same=same)


def rows_of(m: dict, area: str = "decoder", base: str = "positional jax + lax.scan + optax") -> list[dict]:
    shape = f"{LAYERS} layers, embed {EMBED}, {HEADS} heads, seq {SEQ}, batch {BATCH}, vocab {VOCAB}"
    note = shape if m["same"] else "LOSS OR GRADIENTS DIFFER; " + shape
    return [
        dict(area=area, case="training step", unit="ms", baseline=base, budget="<= 1.05", note=note,
             **_stats(*m["step"], 1e3)),
        dict(area=area, case="training step compile", unit="s", baseline=base, budget="<= 1.15", note=note,
             **_stats(*m["compile"], 1)),
    ]  # fmt: skip


def run(quick: bool = False) -> list[dict]:
    """Entry point for benchmarks/run.py: rows with medians and per-round ratio spreads."""
    return rows_of(measure(rounds=3 if quick else 11, number=2 if quick else 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="3 rounds of two steps")
    args = parser.parse_args()
    print_rows(run(quick=True) if args.quick else rows_of(measure(args.rounds, 5)))


if __name__ == "__main__":
    main()
