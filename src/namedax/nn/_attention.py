"""`dot_product_attention` by name, on `jax.nn.dot_product_attention` where the shapes allow.

Attention is ``softmax(scale * q.k + bias, over the keys) . v`` where masked scores are ``-inf``.
By name, its arguments say which axis is which: ``q_axis`` is the query's sequence axis, ``kv_axis``
the key's and value's (another name, so that scores can hold both), ``head_axis`` the size that query
and key contract. Every other axis (batch, heads, ...) is matched by name and kept, so one function
covers batched, multi-head, grouped-query (the query has a group axis the key lacks) and
multi-query attention (the key has no heads axis at all) without reshaping by hand.

Under the hood, when the value's head axis has the query's head size and query, key and value share
one dtype, the axes are rearranged into `jax.nn.dot_product_attention`'s ``BTNH`` layout (batch axes
before the query's sequence axis -> B; the shared axes after it -> kv heads K; the query's own axes ->
groups G, so N = K * G) and fused implementations apply on GPU. An input already laid out as
``(batch..., seq, heads..., head)`` needs no transpose, only free reshapes. Otherwise (a value head
of another size, mixed dtypes) the same math runs as named contractions.

A fully masked row (a query that may attend to no key, e.g. a padding query) gives zeros.
`jax.nn.dot_product_attention` itself would give the mean of the values there (it masks with a large
finite number), and a plain ``-inf`` reference gives NaN; namedax zeroes those rows, so padding never
leaks NaN into a loss or its gradient. A ``-inf`` in ``bias`` is not a mask: a row of ``-inf`` bias
gives NaN, as in positional JAX; pass masks as ``mask``.

    >>> import jax
    >>> import namedax as nx
    >>> B, T, S, H, D = (nx.Axis(n, s) for n, s in [("batch", 2), ("q", 3), ("k", 3), ("heads", 4), ("head", 8)])
    >>> kq, kk, kv = jax.random.split(jax.random.key(0), 3)
    >>> q = nx.random.normal(kq, (B, T, H, D))
    >>> k, v = nx.random.normal(kk, (B, S, H, D)), nx.random.normal(kv, (B, S, H, D))
    >>> out = nx.nn.dot_product_attention(q, k, v, q_axis="q", kv_axis="k", head_axis="head",
    ...                                   mask=nx.nn.causal_mask(T, S))
    >>> out.axes == q.axes
    True
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core import _kernels
from ..core._axis import AxisSelector, axis_name
from ..core._named_array import NamedArray, _is_named, _new, axis_index_in, broadcast_to, rearrange
from ..ops import any as nx_any
from ..ops import dot, where
from ._activations import softmax

_OP = "dot_product_attention"
_PLANS: dict = {}


def dot_product_attention(
    query: NamedArray,
    key: NamedArray,
    value: NamedArray,
    *,
    q_axis: AxisSelector,
    kv_axis: AxisSelector,
    head_axis: AxisSelector,
    mask: NamedArray | None = None,
    bias: NamedArray | None = None,
    scale: Any = None,
) -> NamedArray:
    """Scaled dot-product attention by name (see the module docstring for the design).

    ``out = softmax(scale * dot(query, key, head_axis) + bias, where mask else -inf, over kv_axis)
    . value``, a fully masked query row giving zeros.

    Args:
        query: over ``q_axis``, ``head_axis`` and any other axes (batch, heads, groups ...).
        key: over ``kv_axis``, ``head_axis`` (same size as the query's) and other axes, each of
            which the query also has (matched by name; a query axis the key lacks, such as the group
            axis of grouped-query attention, is broadcast over the key).
        value: over ``kv_axis``, axes shared with the query (matched by name), and its own head
            axes: an axis named ``head_axis`` (of any size: value head sizes may differ from the
            query's) or axes of other names. Those own axes take ``head_axis``'s place in the output.
        q_axis: the query's sequence axis.
        kv_axis: the key's and value's sequence axis; it must have another name than ``q_axis``.
        head_axis: the axis contracted between query and key.
        mask: a boolean NamedArray, True where a query may attend to a key, over any of the scores'
            axes (the query's axes other than ``head_axis``, and ``kv_axis``), broadcast by name.
            Build it with `causal_mask`, `padding_mask` ... and combine with ``&`` / ``|``.
        bias: an additive NamedArray over any of the scores' axes (e.g. `alibi_bias`).
        scale: the factor on the scores; default ``1 / sqrt(size of head_axis)``. May be traced.

    Returns:
        A NamedArray over the query's axes, in their order, with ``head_axis`` replaced by the
        value's own axes. Its dtype is the value's (computed in at least float32).

    Raises:
        AxisNotFoundError: an input lacks the axis it needs (the message lists those it has).
        ValueError: ``q_axis`` and ``kv_axis`` share a name, sizes disagree between the inputs, the
            key or value has an axis the query lacks (other than ``kv_axis`` and the value's head
            axes), or the mask or bias has an axis the scores lack.
        TypeError: an input is not a NamedArray, or the mask is not boolean.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> q = nx.ones({"q": 2, "head": 4})
        >>> k = nx.ones({"k": 3, "head": 4})
        >>> v = nx.named(jnp.arange(6.0).reshape(3, 2), ("k", "v_head"))
        >>> mask = nx.nn.causal_mask(nx.Axis("q", 2), nx.Axis("k", 3))
        >>> out = nx.nn.dot_product_attention(q, k, v, q_axis="q", kv_axis="k", head_axis="head", mask=mask)
        >>> out.axes, out.array.tolist()
        ((Axis('q', 2), Axis('v_head', 2)), [[0.0, 1.0], [1.0, 2.0]])
    """
    for what, x in (("query", query), ("key", key), ("value", value)):
        if not _is_named(x):
            raise TypeError(f"{_OP}: `{what}` must be a NamedArray, got {type(x).__name__}")
    for what, x in (("mask", mask), ("bias", bias)):
        if x is not None and not _is_named(x):
            raise TypeError(f"{_OP}: `{what}` must be a NamedArray or None, got {type(x).__name__}")
    if mask is not None and mask.dtype != bool:
        raise TypeError(
            f"{_OP}: `mask` must be boolean (True = attend), got dtype {mask.dtype}; use `bias` for additive masks"
        )
    sig = (
        query.axes,
        key.axes,
        value.axes,
        query.dtype,
        key.dtype,
        value.dtype,
        q_axis,
        kv_axis,
        head_axis,
        None if mask is None else mask.axes,
        None if bias is None else bias.axes,
    )
    try:
        plan = _PLANS[sig]
    except (KeyError, TypeError):
        plan = _plan(query, key, value, q_axis, kv_axis, head_axis, mask, bias)
        try:
            _PLANS[sig] = plan
        except TypeError:  # an unhashable selector: no caching
            pass
    k, out_axes, default_scale = plan
    args = [query.array, key.array, value.array, default_scale if scale is None else scale]
    args += [x.array for x in (mask, bias) if x is not None]
    return _new(k(*args), out_axes)


def _plan(query, key, value, q_axis, kv_axis, head_axis, mask, bias):
    qn, kn, hn = (axis_name(a, _OP) for a in (q_axis, kv_axis, head_axis))
    if qn == kn:
        raise ValueError(
            f"{_OP}: q_axis and kv_axis are both {qn!r}; the scores hold both, so the key's and value's sequence "
            f"axis needs another name: nx.rename(key, {{{qn!r}: 'key_{qn}'}}) (and the same for value)"
        )
    axis_index_in(query.axes, q_axis, f"{_OP} (query)")
    H = query.axes[axis_index_in(query.axes, head_axis, f"{_OP} (query)")]
    kh = key.axes[axis_index_in(key.axes, head_axis, f"{_OP} (key)")]
    S = key.axes[axis_index_in(key.axes, kv_axis, f"{_OP} (key)")]
    vs = value.axes[axis_index_in(value.axes, kv_axis, f"{_OP} (value)")]
    if kh.size != H.size:
        raise ValueError(
            f"{_OP}: head axis {hn!r} has size {H.size} in the query {query.axes} but {kh.size} in the key {key.axes}"
        )
    if vs.size != S.size:
        raise ValueError(
            f"{_OP}: kv axis {kn!r} has size {S.size} in the key {key.axes} but {vs.size} in the value {value.axes}"
        )
    if any(a.name == kn for a in query.axes):
        raise ValueError(f"{_OP}: the query {query.axes} already has the kv axis {kn!r}; rename one of them")
    for what, x in (("key", key), ("value", value)):
        if any(a.name == qn for a in x.axes):
            raise ValueError(
                f"{_OP}: the {what} {x.axes} has the query's sequence axis {qn!r}; rename it (kv_axis={kn!r})"
            )
    q_others = tuple(a for a in query.axes if a.name not in (qn, hn))
    qo = {a.name: a for a in q_others}
    for what, x, skip in (("key", key, (kn, hn)), ("value", value, (kn,))):
        for a in x.axes:
            if a.name in skip or (what == "value" and a.name not in qo):
                continue
            if a.name not in qo:
                raise ValueError(
                    f"{_OP}: the key {key.axes} has the axis {a} that the query {query.axes} lacks; every axis "
                    f"of the key other than kv_axis={kn!r} and head_axis={hn!r} must be one of the query's"
                )
            if qo[a.name].size != a.size:
                raise ValueError(
                    f"{_OP}: axis {a.name!r} has size {qo[a.name].size} in the query {query.axes} "
                    f"and {a.size} in the {what} {x.axes}"
                )
    v_own = tuple(a for a in value.axes if a.name != kn and a.name not in qo)
    if not v_own:
        raise ValueError(
            f"{_OP}: the value {value.axes} has no head axis of its own "
            f"(an axis other than kv_axis={kn!r} and the query's)"
        )
    out_axes = []
    for a in query.axes:
        out_axes.extend(v_own if a.name == hn else (a,))
    out_axes = tuple(out_axes)
    if len({a.name for a in out_axes}) != len(out_axes):
        raise ValueError(f"{_OP}: the value's head axes {v_own} clash with the query's axes {query.axes}")
    scores = {a.name: a for a in q_others + (query.axes[axis_index_in(query.axes, q_axis, _OP)], S)}
    for what, x in (("mask", mask), ("bias", bias)):
        if x is None:
            continue
        for a in x.axes:
            if a.name not in scores or scores[a.name].size != a.size:
                raise ValueError(
                    f"{_OP}: the {what} has the axis {a}, which is not an axis of the scores "
                    f"{tuple(scores.values())} (the query's axes other than head_axis, and kv_axis)"
                )
    default_scale = 1.0 / math.sqrt(H.size)
    k_names = {a.name for a in key.axes if a.name not in (kn, hn)}
    fused = (
        len(v_own) == 1
        and v_own[0].size == H.size
        and {a.name for a in value.axes if a.name in qo} == k_names
        and query.dtype == key.dtype == value.dtype
        and jnp.issubdtype(query.dtype, jnp.floating)
    )
    mask_axes = None if mask is None else mask.axes
    bias_axes = None if bias is None else bias.axes
    if fused:
        make = _fused_maker(
            query.axes, key.axes, value.axes, qn, kn, hn, v_own[0], k_names, mask_axes, bias_axes, out_axes
        )
    else:
        make = _named_maker(query.axes, key.axes, value.axes, qn, kn, hn, mask_axes, bias_axes, out_axes)
    k = _kernels.kernel((_OP, fused, query.axes, key.axes, value.axes, qn, kn, hn, mask_axes, bias_axes), make)
    return k, out_axes, default_scale


def _fused_maker(q_axes, k_axes, v_axes, qn, kn, hn, v_head, k_names, mask_axes, bias_axes, out_axes):
    """The BTNH layout for `jax.nn.dot_product_attention` (see the module docstring)."""
    qpos = [a.name for a in q_axes].index(qn)
    others = [a for a in q_axes if a.name not in (qn, hn)]
    B = tuple(a for a in others if a.name in k_names and [x.name for x in q_axes].index(a.name) < qpos)
    K = tuple(a for a in others if a.name in k_names and a not in B)
    G = tuple(a for a in others if a.name not in k_names)
    by = {a.name: a for a in q_axes + k_axes}
    T, S, Hd = by[qn], by[kn], by[hn]
    nb, nk, ng = (math.prod(a.size for a in g) for g in (B, K, G))
    q_order = tuple(a.name for a in B + (T,) + K + G + (Hd,))
    k_order = tuple(a.name for a in B + (S,) + K + (Hd,))
    v_order = tuple(a.name for a in B + (S,) + K) + (v_head.name,)
    res_axes = B + (T,) + K + G + (v_head,)

    def four_d(x_axes, a):
        """A mask or bias over some of the scores' axes, broadcastable to (B, N, T, S)."""
        names = {x.name for x in x_axes}
        groups = [B, K + G, (T,), (S,)]
        target, shape = (), []
        for g in groups:
            if any(x.name in names for x in g):
                target += g
                shape.append(math.prod(x.size for x in g))
            else:
                shape.append(1)
        return jnp.reshape(broadcast_to(_new(a, x_axes), target).array, shape)

    def make():
        def f(q, k, v, scale, *extra):
            extra = list(extra)
            m = four_d(mask_axes, extra.pop(0)) if mask_axes is not None else None
            b = four_d(bias_axes, extra.pop(0)) if bias_axes is not None else None
            qa = jnp.reshape(rearrange(_new(q, q_axes), q_order).array, (nb, T.size, nk * ng, Hd.size))
            ka = jnp.reshape(rearrange(_new(k, k_axes), k_order).array, (nb, S.size, nk, Hd.size))
            va = jnp.reshape(rearrange(_new(v, v_axes), v_order).array, (nb, S.size, nk, Hd.size))
            out = jax.nn.dot_product_attention(qa, ka, va, bias=b, mask=m, scale=scale)
            if m is not None:  # jax gives the mean of the values on a fully masked row: zeros instead
                valid = jnp.transpose(jnp.any(m, axis=-1, keepdims=True), (0, 2, 1, 3))
                out = jnp.where(valid, out, jnp.zeros((), out.dtype))
            out = jnp.reshape(out, tuple(a.size for a in res_axes))
            return rearrange(_new(out, res_axes), tuple(a.name for a in out_axes)).array

        return f

    return make


def _named_maker(q_axes, k_axes, v_axes, qn, kn, hn, mask_axes, bias_axes, out_axes):
    """The same math as named contractions, for shapes the fused path does not take."""

    def make():
        def f(q, k, v, scale, *extra):
            extra = list(extra)
            m = _new(extra.pop(0), mask_axes) if mask_axes is not None else None
            b = _new(extra.pop(0), bias_axes) if bias_axes is not None else None
            dtype = jnp.promote_types(jnp.result_type(q, k), np.float32)
            s = dot(_new(q, q_axes), _new(k, k_axes), axis=hn, preferred_element_type=dtype) * jnp.asarray(scale, dtype)
            if b is not None:
                s = (s + b).astype(dtype)
            if m is not None:
                s = where(m, s, jnp.finfo(dtype).min)
            p = softmax(s.astype(np.float32), kn).astype(jnp.result_type(v))
            out = dot(p, _new(v, v_axes), axis=kn)
            if m is not None:  # a fully masked row gives zeros
                valid = nx_any(m, axis=kn) if any(a.name == kn for a in mask_axes) else m
                out = where(valid, out, jnp.zeros((), out.dtype))
            return rearrange(out, tuple(a.name for a in out_axes)).array

        return f

    return make
