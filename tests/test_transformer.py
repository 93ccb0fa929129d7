"""A small decoder-only transformer written with namedax: it learns a copy task with optax, its forward
equals a hand-written positional jax.numpy forward on the same parameters, and greedy decoding with
per-layer KV caches (through `Stacked.scan_via`) equals greedy decoding by recomputing the forward.

The model (``Decoder``) and its positional twin (``raw_forward`` on ``raw_params``, parameters
extracted by name) are those of benchmarks/bench_decoder.py, so these tests also hold the benchmark's
two sides to the same math."""

import functools
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import namedax as nx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_decoder import Decoder, raw_forward, raw_params  # noqa: E402

VOCAB, EMBED, HEADS, LAYERS, SEQ, BATCH, HALF = 16, 32, 4, 2, 16, 16, 8
SEP = 0  # the separator; the copied tokens are 1 .. VOCAB - 1
Vocab, Embed, Heads = nx.Axis("vocab", VOCAB), nx.Axis("embed", EMBED), nx.Axis("heads", HEADS)
Head, Mlp, Layers = nx.Axis("head", 8), nx.Axis("mlp", 64), nx.Axis("layers", LAYERS)


@functools.cache
def base_model():
    # built once: initialisation compiles ~20 random draws
    return Decoder.init(Vocab, Embed, Heads, Head, Mlp, Layers, key=jax.random.key(0), init_scale=0.1)


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


# ---- the same forward, hand-written positionally -------------------------------------------------


def test_forward_and_loss_equal_positional_reference():
    model = perturbed(base_model(), jax.random.key(2))
    tokens, targets = copy_batch(jax.random.key(4))
    got = jax.jit(lambda m, t: m(t))(model, tokens)
    assert [a.name for a in got.axes] == ["batch", "position", "vocab"]
    want = jax.jit(raw_forward)(raw_params(model), tokens.array)
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
