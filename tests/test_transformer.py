"""A small decoder-only transformer written with namedax: it learns a copy task with optax, its forward
equals a hand-written positional jax.numpy forward on the same parameters, and greedy decoding with
per-layer KV caches (through `Stacked.scan_via`) equals greedy decoding by recomputing the forward."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import namedax as nx

VOCAB, EMBED, HEADS, LAYERS, SEQ, BATCH, HALF = 16, 32, 4, 2, 16, 16, 8
SEP = 0  # the separator; the copied tokens are 1 .. VOCAB - 1
Vocab, Embed, Heads = nx.Axis("vocab", VOCAB), nx.Axis("embed", EMBED), nx.Axis("heads", HEADS)
Head, Mlp, Layers = nx.Axis("head", 8), nx.Axis("mlp", 64), nx.Axis("layers", LAYERS)
THETA = 10000.0


class Block(eqx.Module):
    attn_norm: nx.nn.RMSNorm
    attn: nx.nn.MultiHeadAttention
    mlp_norm: nx.nn.RMSNorm
    mlp: nx.nn.MLP

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(
            nx.nn.RMSNorm.init(Embed),
            nx.nn.MultiHeadAttention.init(Embed, Heads, Head, rope_theta=THETA, key=k1),
            nx.nn.RMSNorm.init(Embed),
            nx.nn.MLP.init(Embed, Embed, Mlp, depth=1, key=k2),
        )

    def __call__(self, x, mask):
        x = x + self.attn(self.attn_norm(x), mask=mask)
        return x + self.mlp(self.mlp_norm(x))

    def decode(self, x, cache):
        h, cache = self.attn(self.attn_norm(x), cache=cache)
        x = x + h
        return x + self.mlp(self.mlp_norm(x)), cache


class Decoder(eqx.Module):
    embed: nx.nn.Embedding
    blocks: nx.nn.Stacked
    norm: nx.nn.RMSNorm

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        blocks = nx.nn.Stacked.init(Layers, Block)(key=jax.random.split(k2, LAYERS))
        return cls(nx.nn.Embedding.init(Vocab, Embed, key=k1, init_scale=0.1), blocks, nx.nn.RMSNorm.init(Embed))

    def __call__(self, tokens):
        T = tokens.axes[[a.name for a in tokens.axes].index("position")]
        mask = nx.nn.causal_mask(T, T.alias("key_position"))
        h = self.blocks.fold(self.embed(tokens), mask)
        return self.embed.unembed(self.norm(h))

    def decode(self, tokens, caches):
        h, caches = self.blocks.scan_via(Block.decode)(self.embed(tokens), caches)
        return self.embed.unembed(self.norm(h)), caches

    def empty_caches(self, batch, max_len):
        """One KVCache per layer, stacked on ``Layers`` (sliced per layer by `scan_via`)."""
        return self.blocks.vmap_via(lambda layer: nx.nn.KVCache.init(layer.attn, batch, max_len))()


@functools.cache
def base_model():
    return Decoder.init(key=jax.random.key(0))  # built once: initialisation compiles ~20 random draws


@jax.jit
def perturbed(model, key, noise=0.1):
    """``model`` plus ``noise * normal`` on every parameter (nonzero biases and norm weights, so that
    every parameter shows in a comparison)."""
    leaves, tree = jax.tree.flatten(model)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [x + noise * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def copy_batch(key):
    """Inputs ``[t, SEP, t[:-1]]`` and targets ``[t[1:], SEP, t]`` over (batch, position); the loss is
    taken on the copy half only (targets from position HALF on)."""
    t = jax.random.randint(key, (BATCH, HALF), 1, VOCAB)
    seq = jnp.concatenate([t, jnp.full((BATCH, 1), SEP), t], axis=1)
    names = ("batch", "position")
    return nx.named(seq[:, :SEQ], names), nx.named(seq[:, 1:], names)


COPY_HALF = nx.arange(nx.Axis("position", SEQ)) >= HALF


def loss_fn(model, tokens, targets):
    return nx.nn.cross_entropy(model(tokens), targets, Vocab, where=COPY_HALF).array


def test_decoder_learns_the_copy_task():
    model = base_model()
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state, key):
        tokens, targets = copy_batch(key)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, tokens, targets)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, loss

    losses = []
    for key in jax.random.split(jax.random.key(1), 80):
        model, state, loss = step(model, state, key)
        losses.append(float(loss))
    assert abs(losses[0] - np.log(VOCAB)) < 0.3, losses[0]  # starts near chance
    assert np.mean(losses[-5:]) < 0.3 * losses[0], losses


# ---- the same forward, hand-written positionally --------------------------------------------------


def params_of(model):
    """The model's parameters as plain arrays, each in a stated axis order (extracted by name)."""
    b = model.blocks.stacked
    a = lambda x, order: nx.rearrange(x, order).array  # noqa: E731
    return dict(
        embed=a(model.embed.weight, ("vocab", "embed")),
        norm=a(model.norm.weight, ("embed",)),
        attn_norm=a(b.attn_norm.weight, ("layers", "embed")),
        mlp_norm=a(b.mlp_norm.weight, ("layers", "embed")),
        wq=a(b.attn.q_proj.weight, ("layers", "embed", "heads", "head")),
        wk=a(b.attn.k_proj.weight, ("layers", "embed", "heads", "head")),
        wv=a(b.attn.v_proj.weight, ("layers", "embed", "heads", "head")),
        wo=a(b.attn.o_proj.weight, ("layers", "heads", "head", "embed")),
        w1=a(b.mlp.layers[0].weight, ("layers", "embed", "mlp")),
        b1=a(b.mlp.layers[0].bias, ("layers", "mlp")),
        w2=a(b.mlp.layers[1].weight, ("layers", "mlp", "embed")),
        b2=a(b.mlp.layers[1].bias, ("layers", "embed")),
    )


def rms_norm(x, w, eps=1e-5):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x):  # (b, t, n, d), split-half convention
    t, d = x.shape[1], x.shape[-1]
    ang = jnp.arange(t, dtype=jnp.float32)[:, None] * THETA ** (-jnp.arange(d // 2, dtype=jnp.float32) * 2 / d)
    cos, sin = jnp.cos(ang)[None, :, None, :], jnp.sin(ang)[None, :, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def positional_forward(p, tokens):  # tokens (b, t) -> logits (b, t, vocab)
    x = p["embed"][tokens]
    t = tokens.shape[1]
    causal = jnp.tril(jnp.ones((t, t), bool))
    for i in range(LAYERS):
        h = rms_norm(x, p["attn_norm"][i])
        q = rope(jnp.einsum("bte,end->btnd", h, p["wq"][i]))
        k = rope(jnp.einsum("bte,end->btnd", h, p["wk"][i]))
        v = jnp.einsum("bte,end->btnd", h, p["wv"][i])
        s = jnp.einsum("btnd,bsnd->bnts", q, k) / jnp.sqrt(q.shape[-1])
        attn = jax.nn.softmax(jnp.where(causal, s, -jnp.inf), axis=-1)
        x = x + jnp.einsum("bnts,bsnd,nde->bte", attn, v, p["wo"][i])
        h = rms_norm(x, p["mlp_norm"][i])
        x = x + jax.nn.relu(h @ p["w1"][i] + p["b1"][i]) @ p["w2"][i] + p["b2"][i]
    return rms_norm(x, p["norm"]) @ p["embed"].T


def test_forward_and_loss_equal_positional_reference():
    model = perturbed(base_model(), jax.random.key(2))
    tokens, targets = copy_batch(jax.random.key(4))
    got = jax.jit(lambda m, t: m(t))(model, tokens)
    assert [a.name for a in got.axes] == ["batch", "position", "vocab"]
    p = params_of(model)
    want = jax.jit(positional_forward)(p, tokens.array)
    np.testing.assert_allclose(got.array, want, rtol=1e-5, atol=1e-5)
    loss = jax.jit(loss_fn)(model, tokens, targets)
    per_pos = optax.softmax_cross_entropy_with_integer_labels(want, targets.array)
    np.testing.assert_allclose(loss, per_pos[:, HALF:].mean(), rtol=1e-5, atol=1e-6)


# ---- greedy decoding: with the caches, and by recomputing the forward ------------------------------


def greedy_recompute(model, prompt, n_new):
    """Greedy decoding by running the full forward on the whole (padded) sequence at every step:
    with a causal mask, the logits at position i see positions <= i only."""
    fwd = jax.jit(lambda m, t: m(t))
    seq = np.zeros((prompt.shape[0], SEQ), np.int32)
    n = prompt.shape[1]
    seq[:, :n] = prompt
    logits = []
    for i in range(n, n + n_new):
        out = fwd(model, nx.named(jnp.asarray(seq), ("batch", "position")))
        last = nx.rearrange(out["position", i - 1], ("batch", "vocab")).array
        logits.append(np.asarray(last))
        seq[:, i] = np.argmax(last, axis=-1)
    return seq[:, n : n + n_new], np.stack(logits, 1)


def greedy_cached(model, prompt, n_new):
    """The prompt in one call, then one token per call, through the stacked per-layer caches."""
    decode = jax.jit(lambda m, t, c: m.decode(t, c))
    caches = model.empty_caches({"batch": prompt.shape[0]}, SEQ)
    assert caches.key.axes[0] == Layers and caches.index.axes == (Layers,)
    tokens = nx.named(jnp.asarray(prompt), ("batch", "position"))
    out, logits = [], []
    for _ in range(n_new):
        step_logits, caches = decode(model, tokens, caches)
        last = nx.rearrange(step_logits["position", -1], ("batch", "vocab")).array
        logits.append(np.asarray(last))
        nxt = jnp.argmax(last, axis=-1).astype(jnp.int32)
        out.append(np.asarray(nxt))
        tokens = nx.named(nxt[:, None], ("batch", "position"))
    assert np.asarray(caches.index.array).tolist() == [prompt.shape[1] + n_new - 1] * LAYERS
    return np.stack(out, 1), np.stack(logits, 1)


def test_greedy_decoding_with_caches_equals_recomputing():
    model = perturbed(base_model(), jax.random.key(5))
    prompt = np.asarray(copy_batch(jax.random.key(6))[0].array[:4, : HALF + 1])
    want_tokens, want_logits = greedy_recompute(model, prompt, SEQ - HALF - 1)
    got_tokens, got_logits = greedy_cached(model, prompt, SEQ - HALF - 1)
    np.testing.assert_allclose(got_logits, want_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got_tokens, want_tokens)
    assert len(np.unique(want_tokens)) > 1  # a real sequence, not one repeated token
