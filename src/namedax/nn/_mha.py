"""`MultiHeadAttention` (multi-head, grouped-query, multi-query) and its decoding `KVCache`.

The module is four `Linear` projections around `dot_product_attention`. Its input is over a
sequence axis named ``Pos`` and ``Embed`` (and any batch axes); keys and values are renamed to the
sequence axis ``KPos`` so that scores and masks are over ``(Pos, KPos)``: build masks with
``causal_mask(Axis(Pos, T), Axis(KPos, T))``.

Grouped-query attention: with ``KVHeads`` (fewer heads than ``Heads``, dividing it), keys and values
have a ``KVHeads`` axis, and the queries' ``Heads`` axis is split into ``(KVHeads, group)`` for the
attention (query head ``h`` uses kv head ``h // group``, as in Hugging Face and jax), so no key is
repeated in memory. ``KVHeads`` of size 1 is multi-query attention.

Decoding: a `KVCache` holds the keys and values of the positions seen so far in buffers over
``KPos`` of a fixed maximum length, and the position ``index`` of the next one (a 0-d NamedArray,
traced under `jax.jit`). ``mha(x, cache=cache)`` writes the new positions at ``index`` with
`namedax.updated_slice`, attends causally over the buffer (positions past ``index + T`` are masked)
and returns ``(out, new_cache)``: one or several positions at a time, inside `jax.lax.while_loop`.

    >>> import jax
    >>> import namedax as nx
    >>> Embed, Heads, Head = nx.Axis("embed", 8), nx.Axis("heads", 2), nx.Axis("head", 4)
    >>> mha = nx.nn.MultiHeadAttention.init(Embed, Heads, Head, key=jax.random.key(0))
    >>> x = nx.ones({"batch": 2, "position": 3, "embed": 8})
    >>> mask = nx.nn.causal_mask(nx.Axis("position", 3), nx.Axis("key_position", 3))
    >>> mha(x, mask=mask).axes
    (Axis('batch', 2), Axis('position', 3), Axis('embed', 8))
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..core._axis import Axis, AxisSpec, to_axes
from ..core._named_array import AxisNotFoundError, NamedArray, _new, rearrange, rename
from ..ops import flatten_axes, unflatten_axis, updated_slice, zeros
from ..random import _check_key
from ._attention import dot_product_attention
from ._dropout import Dropout
from ._linear import Linear
from ._masks import causal_mask
from ._rotary import rotary_embedding
from ._util import module_call


class KVCache(eqx.Module):
    """The keys and values seen so far, for decoding with `MultiHeadAttention`.

    Attributes:
        key: the keys, over the batch axes, ``KPos`` (the maximum length), the kv heads and the head size.
        value: the values, over the same axes.
        index: a 0-d int32 NamedArray, the position the next token is written at.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> mha = nx.nn.MultiHeadAttention.init(nx.Axis("embed", 8), nx.Axis("heads", 2), nx.Axis("head", 4),
        ...                                     key=jax.random.key(0))
        >>> cache = nx.nn.KVCache.init(mha, {"batch": 2}, 16)
        >>> cache.key.shape, int(cache.index.array)
        ({'batch': 2, 'key_position': 16, 'heads': 2, 'head': 4}, 0)
    """

    key: NamedArray
    value: NamedArray
    index: NamedArray

    @classmethod
    def init(cls, mha: MultiHeadAttention, batch: AxisSpec, max_len: int, dtype: Any = jnp.float32) -> KVCache:
        """An empty cache for ``mha``: zeros over ``batch + (KPos=max_len, kv heads, head size)``, index 0.

        Args:
            mha: the `MultiHeadAttention` it serves (its axes give the buffers' axes).
            batch: the batch axes (an Axis, several, a ``{name: size}`` mapping, or ``()``).
            max_len: the maximum number of positions.
            dtype: the buffers' dtype.
        """
        axes = (*to_axes(batch), Axis(mha.KPos, int(max_len)), mha.KVHeads or mha.Heads, mha.HeadSize)
        return cls(zeros(axes, dtype), zeros(axes, dtype), _new(jnp.zeros((), jnp.int32), ()))


class MultiHeadAttention(eqx.Module):
    """Multi-head attention with named weights: query, key, value and output `Linear` projections.

    See the module docstring for the axes, grouped-query attention and the `KVCache`. Dropout is on
    the output (fused attention kernels take no dropout on the probabilities).

    Attributes:
        q_proj: ``Embed -> (Heads, HeadSize)``.
        k_proj: ``Embed -> (KVHeads or Heads, HeadSize)``.
        v_proj: ``Embed -> (KVHeads or Heads, HeadSize)``.
        o_proj: ``(Heads, HeadSize) -> Embed``.
        dropout: a `Dropout` on the output.
        Embed, Heads, KVHeads, HeadSize: the axes (static); ``KVHeads`` None for plain multi-head.
        Pos, KPos: the names of the query's and the keys' sequence axes (static).
        rope_theta: the RoPE base, or None for no rotary embedding (static).
    """

    q_proj: Linear
    k_proj: Linear
    v_proj: Linear
    o_proj: Linear
    dropout: Dropout
    Embed: Axis = eqx.field(static=True)
    Heads: Axis = eqx.field(static=True)
    KVHeads: Axis | None = eqx.field(static=True)
    HeadSize: Axis = eqx.field(static=True)
    Pos: str = eqx.field(static=True)
    KPos: str = eqx.field(static=True)
    rope_theta: float | None = eqx.field(static=True)

    @classmethod
    def init(
        cls,
        Embed: Axis,
        Heads: Axis,
        HeadSize: Axis,
        *,
        key: Any,
        KVHeads: Axis | None = None,
        Pos: str = "position",
        KPos: str = "key_position",
        rope_theta: float | None = None,
        dropout: float = 0.0,
        use_bias: bool = False,
    ) -> MultiHeadAttention:
        """A new layer with random projections.

        Args:
            Embed: the model axis of the input and output.
            Heads: the query heads.
            HeadSize: the per-head feature axis.
            key: a PRNG key.
            KVHeads: the key/value heads for grouped-query attention (its size divides ``Heads``'s;
                size 1 is multi-query), or None for one kv head per query head.
            Pos: the name of the input's sequence axis.
            KPos: the name given to the keys' sequence axis (masks are over ``(Pos, KPos)``).
            rope_theta: apply `rotary_embedding` to queries and keys with this base, or None.
            dropout: the output dropout probability.
            use_bias: biases on the projections.

        Raises:
            ValueError: ``KVHeads`` does not divide ``Heads``, or ``Pos`` equals ``KPos``.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> mha = nx.nn.MultiHeadAttention.init(nx.Axis("embed", 8), nx.Axis("heads", 4), nx.Axis("head", 2),
            ...                                     KVHeads=nx.Axis("kv_heads", 2), key=jax.random.key(0))
            >>> mha.k_proj.weight.axes
            (Axis('kv_heads', 2), Axis('head', 2), Axis('embed', 8))
        """
        op = "MultiHeadAttention.init"
        if KVHeads is not None and (Heads.size % KVHeads.size or KVHeads.name == Heads.name):
            raise ValueError(f"{op}: KVHeads={KVHeads} must divide Heads={Heads} and have another name")
        if Pos == KPos:
            raise ValueError(f"{op}: Pos and KPos are both {Pos!r}; the keys' sequence axis needs its own name")
        kq, kk, kv, ko = jax.random.split(_check_key(op, key), 4)
        kvh = KVHeads or Heads
        return cls(
            q_proj=Linear.init(Embed, (Heads, HeadSize), key=kq, use_bias=use_bias),
            k_proj=Linear.init(Embed, (kvh, HeadSize), key=kk, use_bias=use_bias),
            v_proj=Linear.init(Embed, (kvh, HeadSize), key=kv, use_bias=use_bias),
            o_proj=Linear.init((Heads, HeadSize), Embed, key=ko, use_bias=use_bias),
            dropout=Dropout(dropout),
            Embed=Embed,
            Heads=Heads,
            KVHeads=KVHeads,
            HeadSize=HeadSize,
            Pos=Pos,
            KPos=KPos,
            rope_theta=rope_theta,
        )

    @module_call
    def __call__(
        self,
        x: NamedArray,
        *,
        mask: NamedArray | None = None,
        cache: KVCache | None = None,
        key: Any = None,
        inference: Any = None,
    ) -> NamedArray | tuple[NamedArray, KVCache]:
        """Self-attention over ``x``'s ``Pos`` axis.

        Args:
            x: over ``Pos``, ``Embed`` and any batch axes.
            mask: a boolean mask over ``(Pos, KPos)`` and e.g. batch axes (see `dot_product_attention`).
                With a cache, ``KPos`` is the cache's length, and the causal mask from the cache's
                index is applied as well.
            cache: a `KVCache`: decode ``x``'s positions after those already in the cache.
            key: a PRNG key for dropout.
            inference: turn dropout off (see `Dropout`).

        Returns:
            A NamedArray with the axes of ``x``; with a ``cache``, ``(out, new_cache)``.

        Raises:
            AxisNotFoundError: ``x`` lacks ``Pos``.
        """
        if not any(a.name == self.Pos for a in x.axes):
            raise AxisNotFoundError(f"MultiHeadAttention: the input {x.axes} has no sequence axis {self.Pos!r} (Pos)")
        T = next(a for a in x.axes if a.name == self.Pos)
        offset = 0 if cache is None else cache.index
        q = self.q_proj(x)
        k = rename(self.k_proj(x), {self.Pos: self.KPos})
        v = rename(self.v_proj(x), {self.Pos: self.KPos})
        if self.rope_theta is not None:
            pos = None if cache is None else offset.array
            q = rotary_embedding(q, self.Pos, self.HeadSize, theta=self.rope_theta, positions=pos)
            k = rotary_embedding(k, self.KPos, self.HeadSize, theta=self.rope_theta, positions=pos)
        if cache is not None:
            k = updated_slice(cache.key, {self.KPos: offset}, k)
            v = updated_slice(cache.value, {self.KPos: offset}, v)
            S = next(a for a in k.axes if a.name == self.KPos)
            causal = causal_mask(T, S, q_offset=offset)
            mask = causal if mask is None else mask & causal
            cache = KVCache(k, v, offset + T.size)
        if self.KVHeads is not None:
            group = Axis(self.Heads.name + "_group", self.Heads.size // self.KVHeads.size)
            q = unflatten_axis(q, self.Heads, (self.KVHeads, group))
        out = dot_product_attention(q, k, v, q_axis=self.Pos, kv_axis=self.KPos, head_axis=self.HeadSize, mask=mask)
        if self.KVHeads is not None:
            out = flatten_axes(out, (self.KVHeads.name, group.name), self.Heads.name)
        out = self.dropout(self.o_proj(out), key=key, inference=inference)
        out = rearrange(out, tuple(a.name for a in x.axes))  # Linear puts Embed last; keep x's order
        return out if cache is None else (out, cache)
