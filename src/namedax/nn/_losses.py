"""Losses by name: softmax cross-entropy, binary cross-entropy, and a fused blockwise cross-entropy.

Every loss takes the class (vocabulary) axis by name; the other axes of the logits are *positions*
(batch, sequence, ...), whatever their order. Labels and masks are matched to the positions by name,
so ``labels`` may hold them in another order. A loss is computed per position, then reduced:

- ``reduction="mean"``: the mean over the positions where ``where`` is True (all by default), a 0-d
  NamedArray; a fully masked batch gives 0, not NaN;
- ``reduction="sum"``: the sum over those positions;
- ``reduction=None``: the per-position NamedArray, 0 where ``where`` is False.

For `jax.grad` take ``.array`` of the 0-d result, the plain 0-d jax array:
``jax.grad(lambda m: nx.nn.cross_entropy(m(x), y, Vocab).array)(model)``.

`fused_cross_entropy` never builds the ``positions x vocab`` logits: it walks the vocabulary in
blocks, keeping a running maximum and sum of exponentials (an online logsumexp) and the label's
logit, and its `jax.custom_vjp` backward pass walks the blocks again, recomputing each block's
logits. Peak memory is one ``positions x block`` slab instead of the full logits.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from ..core._axis import Axis, AxisSelector, axis_name
from ..core._named_array import NamedArray, _broadcast_to, _new, axis_index_in

Reduction = Literal["mean", "sum"] | None

__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "fused_cross_entropy"]


# ---- shared: matching labels and masks to positions, reducing --------------------------------------


def _check_named(x: Any, op: str, what: str) -> NamedArray:
    if not isinstance(x, NamedArray):
        raise TypeError(f"{op}: `{what}` must be a NamedArray (name its axes with nx.named), got {type(x).__name__}")
    return x


def _positions_like(x: NamedArray, positions: tuple[Axis, ...], op: str, what: str, exact: bool) -> jax.Array:
    """``x``'s array over exactly ``positions`` in that order. ``exact``: ``x`` must hold every
    position axis (labels); otherwise it may hold a subset and is broadcast (masks)."""
    names = {a.name for a in positions}
    extra = [a for a in x.axes if a.name not in names]
    missing = [a for a in positions if a.name not in {b.name for b in x.axes}]
    if extra or (exact and missing):
        raise ValueError(
            f"{op}: `{what}` has axes {x.axes}, the positions of the logits are {positions}"
            + (f"; extra axes {extra}" if extra else "")
            + (f"; missing axes {missing}" if exact and missing else "")
        )
    return _broadcast_to(x, positions, op).array


def _reduce(loss: jax.Array, positions: tuple[Axis, ...], where: Any, reduction: Reduction, op: str) -> NamedArray:
    if reduction not in ("mean", "sum", None):
        raise ValueError(f'{op}: `reduction` must be "mean", "sum" or None, got {reduction!r}')
    if where is not None:
        mask = _positions_like(_check_named(where, op, "where"), positions, op, "where", exact=False)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{op}: `where` must be a boolean NamedArray, got dtype {mask.dtype}")
        loss = jnp.where(mask, loss, 0)
    if reduction is None:
        return _new(loss, positions)
    total = jnp.sum(loss)
    if reduction == "sum":
        return _new(total, ())
    count = loss.size if where is None else jnp.sum(mask)
    return _new(total / jnp.maximum(count, 1), ())


def _class_axis(logits: NamedArray, axis: AxisSelector, op: str) -> tuple[int, tuple[Axis, ...]]:
    i = axis_index_in(logits.axes, axis, op)
    return i, logits.axes[:i] + logits.axes[i + 1 :]


# ---- cross-entropy ----------------------------------------------------------------------------------


def cross_entropy(
    logits: NamedArray,
    labels: NamedArray,
    axis: AxisSelector,
    *,
    where: NamedArray | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
) -> NamedArray:
    """Softmax cross-entropy over the class axis ``axis``, with integer or probability labels.

    Per position, ``logsumexp(logits) - sum(targets * logits)`` where ``targets`` is the one-hot of
    an integer label or the given distribution (optax's `softmax_cross_entropy_with_integer_labels`
    and `softmax_cross_entropy`), computed stably through the logsumexp.

    Args:
        logits: a NamedArray holding ``axis``; its other axes are the positions.
        labels: integer class ids over the positions (no ``axis``; any order), or probabilities
            over the positions and ``axis`` (each summing to one).
        axis: the class axis (by name or `Axis`).
        where: an optional boolean NamedArray over some or all of the positions (broadcast over
            the rest): False positions count neither in the loss nor in the mean's denominator.
        reduction: ``"mean"`` (over the unmasked positions), ``"sum"``, or None for the
            per-position losses.
        label_smoothing: ``alpha``: the targets become ``(1 - alpha) * targets + alpha / classes``
            (`optax.smooth_labels`).
        z_loss: a coefficient ``c``: ``c * logsumexp(logits) ** 2`` is added per position, the
            auxiliary loss of PaLM (and levanter) that keeps the normaliser near zero.

    Returns:
        A 0-d NamedArray (``.array`` is the plain scalar for `jax.grad`), or for ``reduction=None``
        a NamedArray over the positions, in the logits' order.

    Raises:
        AxisNotFoundError: ``axis`` is not an axis of ``logits``.
        ValueError: ``labels`` or ``where`` do not match the positions, or a bad ``reduction``.
        TypeError: an argument is not a NamedArray, or labels without ``axis`` are not integers.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), ("batch", "label"))
        >>> labels = nx.named(jnp.array([0, 2]), "batch")
        >>> nx.nn.cross_entropy(logits, labels, "label", reduction=None).array.tolist()
        [0.2395, 1.0986]
        >>> loss = nx.nn.cross_entropy(logits, labels, "label")
        >>> loss.axes, float(loss.array)
        ((), 0.6691)
    """
    op = "cross_entropy"
    logits = _check_named(logits, op, "logits")
    labels = _check_named(labels, op, "labels")
    i, positions = _class_axis(logits, axis, op)
    x = logits.array
    lse = jax.nn.logsumexp(x, axis=i)
    k = logits.axes[i].size
    if any(a.name == logits.axes[i].name for a in labels.axes):
        p = _broadcast_to(labels, logits.axes, op).array if labels.axes != logits.axes else labels.array
        if label_smoothing:
            p = (1.0 - label_smoothing) * p + label_smoothing / k
        # optax's form, -sum(p * log_softmax): 0 * -inf stays 0 where p is 0
        loss = -jnp.sum(p * (x - jnp.expand_dims(lse, i)), axis=i)
    else:
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise TypeError(
                f"{op}: `labels` over {labels.axes} lack the class axis {logits.axes[i]}, so they must be "
                f"integer class ids, got dtype {labels.dtype} (probabilities need the class axis)"
            )
        ids = _positions_like(labels, positions, op, "labels", exact=True)
        picked = jnp.take_along_axis(x, jnp.expand_dims(ids, i), axis=i).squeeze(i)
        target = picked
        if label_smoothing:
            target = (1.0 - label_smoothing) * picked + label_smoothing / k * jnp.sum(x, axis=i)
        loss = lse - target
    if z_loss:
        loss = loss + z_loss * lse**2
    return _reduce(loss, positions, where, reduction, op)


def binary_cross_entropy_with_logits(
    logits: NamedArray, labels: NamedArray, *, where: NamedArray | None = None, reduction: Reduction = "mean"
) -> NamedArray:
    """Sigmoid binary cross-entropy, elementwise (`optax.sigmoid_binary_cross_entropy`).

    ``-labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)``: every element of the
    logits is one position (one independent binary prediction).

    Args:
        logits: a NamedArray of logits.
        labels: targets in ``[0, 1]`` over the same axes (any order).
        where: an optional boolean NamedArray over some or all of the logits' axes.
        reduction: ``"mean"`` (over the unmasked elements), ``"sum"``, or None.

    Returns:
        A 0-d NamedArray, or for ``reduction=None`` a NamedArray over the logits' axes.

    Raises:
        ValueError: ``labels`` or ``where`` have other axes, or a bad ``reduction``.
        TypeError: an argument is not a NamedArray.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([0.0, 2.0]), "batch")
        >>> labels = nx.named(jnp.array([1.0, 0.0]), "batch")
        >>> nx.nn.binary_cross_entropy_with_logits(logits, labels, reduction=None).array.tolist()
        [0.6931, 2.1269]
    """
    op = "binary_cross_entropy_with_logits"
    logits = _check_named(logits, op, "logits")
    labels = _check_named(labels, op, "labels")
    y = _positions_like(labels, logits.axes, op, "labels", exact=True)
    x = logits.array
    loss = -y * jax.nn.log_sigmoid(x) - (1.0 - y) * jax.nn.log_sigmoid(-x)
    return _reduce(loss, logits.axes, where, reduction, op)


# ---- fused projection + cross-entropy ----------------------------------------------------------------


def fused_cross_entropy(
    hidden: NamedArray,
    unembedding: NamedArray,
    labels: NamedArray,
    *,
    embed_axis: AxisSelector,
    vocab_axis: AxisSelector,
    block_size: int,
    where: NamedArray | None = None,
    reduction: Reduction = "mean",
    z_loss: float = 0.0,
) -> NamedArray:
    """`cross_entropy` of ``dot(hidden, unembedding, axis=embed_axis)`` without building those logits.

    The vocabulary is walked in blocks of ``block_size`` (a `jax.lax.fori_loop`): each block's logits
    ``positions x block`` are computed, folded into a running maximum, sum of exponentials and label
    logit, and dropped. The backward pass (a `jax.custom_vjp`) walks the blocks again, recomputing
    each block's logits to form its share of the gradients. Loss and gradients (for ``hidden`` and
    ``unembedding``) equal the unfused
    ``cross_entropy(nx.dot(hidden, unembedding, axis=embed_axis), labels, vocab_axis, ...)``;
    logits are accumulated in float32. A vocabulary that is not a multiple of ``block_size`` is
    handled by one smaller last block (nothing is padded or copied).

    Args:
        hidden: a NamedArray over the positions and ``embed_axis``.
        unembedding: a NamedArray over exactly ``embed_axis`` and ``vocab_axis`` (either order;
            an `Embedding`'s weight works as is).
        labels: integer ids over the positions (any order).
        embed_axis: the contracted axis.
        vocab_axis: the class axis of ``unembedding``.
        block_size: the vocabulary block; peak memory grows with ``positions x block_size``.
        where: an optional boolean NamedArray over some or all of the positions.
        reduction: ``"mean"``, ``"sum"`` or None, as in `cross_entropy`.
        z_loss: the coefficient of ``logsumexp ** 2``, as in `cross_entropy`.

    Returns:
        As `cross_entropy`: a 0-d NamedArray, or the per-position losses.

    Raises:
        AxisNotFoundError: an axis is missing from ``hidden`` or ``unembedding``.
        ValueError: sizes of ``embed_axis`` disagree, ``unembedding`` has other axes, ``labels``
            do not match the positions, or ``block_size`` is not a positive int.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> Pos, Embed, Vocab = nx.Axis("position", 4), nx.Axis("embed", 8), nx.Axis("vocab", 10)
        >>> h = nx.random.normal(jax.random.key(0), (Pos, Embed))
        >>> w = nx.random.normal(jax.random.key(1), (Embed, Vocab))
        >>> ids = nx.named(jax.numpy.array([1, 9, 0, 3]), Pos)
        >>> fused = nx.nn.fused_cross_entropy(h, w, ids, embed_axis=Embed, vocab_axis=Vocab, block_size=4)
        >>> plain = nx.nn.cross_entropy(nx.dot(h, w, axis=Embed), ids, Vocab)
        >>> bool(jax.numpy.allclose(fused.array, plain.array, rtol=1e-5))
        True
    """
    op = "fused_cross_entropy"
    hidden = _check_named(hidden, op, "hidden")
    unembedding = _check_named(unembedding, op, "unembedding")
    labels = _check_named(labels, op, "labels")
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"{op}: `block_size` must be a positive int, got {block_size!r}")
    e = axis_index_in(hidden.axes, embed_axis, op)
    Embed = hidden.axes[e]
    we = axis_index_in(unembedding.axes, embed_axis, op)
    wv = axis_index_in(unembedding.axes, vocab_axis, op)
    if unembedding.ndim != 2:
        raise ValueError(
            f"{op}: `unembedding` must hold exactly {axis_name(embed_axis)!r} and {axis_name(vocab_axis)!r}, "
            f"got {unembedding.axes}"
        )
    if unembedding.axes[we].size != Embed.size:
        raise ValueError(f"{op}: {Embed} of `hidden` and {unembedding.axes[we]} of `unembedding` differ in size")
    if any(a.name == unembedding.axes[wv].name for a in hidden.axes):
        raise ValueError(f"{op}: `hidden` {hidden.axes} already has the vocabulary axis {unembedding.axes[wv]}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{op}: `labels` must be integer ids, got dtype {labels.dtype} over {labels.axes}")
    positions = hidden.axes[:e] + hidden.axes[e + 1 :]
    ids = _positions_like(labels, positions, op, "labels", exact=True).reshape(-1)
    h = jnp.moveaxis(hidden.array, e, -1).reshape(-1, Embed.size)
    w = unembedding.array if wv == 1 else unembedding.array.T  # (embed, vocab): a transpose, fused by XLA
    lse, picked = _fused_lse(h, w, ids, block_size)
    shape = tuple(a.size for a in positions)
    lse, picked = lse.reshape(shape), picked.reshape(shape)
    loss = lse - picked
    if z_loss:
        loss = loss + z_loss * lse**2
    return _reduce(loss, positions, where, reduction, op)


def _blocks(v: int, block: int) -> tuple[int, int, int]:
    """(number of full blocks, their size, size of the last partial block or 0)."""
    block = min(block, v)
    return v // block, block, v % block


def _block_logits(h, w, start, size):
    wb = lax.dynamic_slice_in_dim(w, start, size, axis=1)
    return jnp.dot(h, wb, preferred_element_type=jnp.float32), wb


def _forward(h, w, ids, block):
    n, v = h.shape[0], w.shape[1]
    full, size, rest = _blocks(v, block)

    def step(carry, start, sz):
        m, s, picked = carry
        z, _ = _block_logits(h, w, start, sz)
        m_new = jnp.maximum(m, jnp.max(z, axis=1))
        s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(z - m_new[:, None]), axis=1)
        local = ids - start
        inside = (local >= 0) & (local < sz)
        hit = jnp.take_along_axis(z, jnp.clip(local, 0, sz - 1)[:, None], axis=1)[:, 0]
        return m_new, s, jnp.where(inside, hit, picked)

    carry = (jnp.full((n,), -jnp.inf, jnp.float32), jnp.zeros((n,), jnp.float32), jnp.zeros((n,), jnp.float32))
    carry = lax.fori_loop(0, full, lambda b, c: step(c, b * size, size), carry)
    if rest:
        carry = step(carry, full * size, rest)
    m, s, picked = carry
    return m + jnp.log(s), picked


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _fused_lse(h, w, ids, block):
    return _forward(h, w, ids, block)


def _fwd(h, w, ids, block):
    lse, picked = _forward(h, w, ids, block)
    return (lse, picked), (h, w, ids, lse)


def _bwd(block, res, g):
    h, w, ids, lse = res
    g_lse, g_picked = g
    full, size, rest = _blocks(w.shape[1], block)

    def step(carry, start, sz):
        dh, dw = carry
        z, wb = _block_logits(h, w, start, sz)
        # d lse / d z = softmax(z); d picked / d z = one_hot(label) within this block
        dz = g_lse[:, None] * jnp.exp(z - lse[:, None])
        dz = dz + g_picked[:, None] * (ids[:, None] == start + jnp.arange(sz)[None, :])
        dh = dh + jnp.dot(dz, wb.T, preferred_element_type=jnp.float32)
        dwb = jnp.dot(h.T, dz, preferred_element_type=jnp.float32).astype(w.dtype)
        return dh, lax.dynamic_update_slice_in_dim(dw, dwb, start, axis=1)

    carry = (jnp.zeros(h.shape, jnp.float32), jnp.zeros_like(w))
    carry = lax.fori_loop(0, full, lambda b, c: step(c, b * size, size), carry)
    if rest:
        carry = step(carry, full * size, rest)
    dh, dw = carry
    return dh.astype(h.dtype), dw, None


_fused_lse.defvjp(_fwd, _bwd)
