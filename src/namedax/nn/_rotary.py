"""Position information for attention: rotary embeddings (RoPE) and ALiBi biases, by name.

`rotary_embedding` rotates pairs of features of a query or key by an angle proportional to its
position, so that ``q . k`` depends only on the distance between the two positions. namedax uses
the *split-half* convention of GPT-NeoX and of Llama in Hugging Face transformers: the feature ``i``
of the first half of ``head_axis`` is paired with the feature ``i + H/2`` (not with its neighbour
``i + 1`` as in the original RoFormer / Meta Llama code, the *interleaved* convention; weights ported
from there need their head features permuted). With ``H`` the head size, ``p`` the position and
``f_i = theta ** (-2 i / H)``, ``i < H/2``::

    out[i]       = x[i] cos(p f_i) - x[i + H/2] sin(p f_i)
    out[i + H/2] = x[i + H/2] cos(p f_i) + x[i] sin(p f_i)

`alibi_bias` is the additive bias of ALiBi (Press et al., 2022, "Train Short, Test Long"): head ``h``
penalises a key by ``m_h`` times its distance from the query, with the paper's head slopes.

    >>> import namedax as nx
    >>> x = nx.ones({"position": 3, "head": 4})
    >>> nx.nn.rotary_embedding(x, "position", "head").axes
    (Axis('position', 3), Axis('head', 4))
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis, AxisSelector
from ..core._named_array import NamedArray, _is_named, axis_index_in, named
from ..ops import abs as nx_abs
from ..ops import arange, concatenate, split
from ..ops import cos as nx_cos
from ..ops import sin as nx_sin
from ._masks import _axis, _positions


def rotary_embedding(
    x: NamedArray,
    pos_axis: AxisSelector,
    head_axis: AxisSelector,
    *,
    theta: float = 10000.0,
    positions: Any = None,
) -> NamedArray:
    """Rotary position embedding (RoPE), split-half convention (see the module docstring).

    Args:
        x: a query or key, over ``pos_axis``, ``head_axis`` and any other axes.
        pos_axis: the sequence axis.
        head_axis: the feature axis that is rotated; its size must be even.
        theta: the base of the frequencies (10000 in most models; Llama 3 uses 500000).
        positions: the positions along ``pos_axis``: None for ``0, 1, ...``; an int or integer
            scalar (traced allowed) for ``k, k+1, ...`` (decoding from position ``k``); or a
            NamedArray of positions over ``pos_axis`` and e.g. a batch axis (packed sequences).

    Returns:
        A NamedArray with the axes of ``x`` in their order (then any axes of ``positions`` that
        ``x`` lacks), in ``x``'s dtype; the angles are computed in float32.

    Raises:
        AxisNotFoundError: ``x`` lacks ``pos_axis`` or ``head_axis``.
        ValueError: the head size is odd, or ``positions`` has another size along ``pos_axis``.
        TypeError: ``x`` is not a NamedArray.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 0.0], [1.0, 0.0]]), ("t", "head"))
        >>> y = nx.nn.rotary_embedding(x, "t", "head", theta=1.0)  # position 1 turns by 1 radian
        >>> y.array.round(4).tolist()
        [[1.0, 0.0], [0.5403, 0.8415]]
    """
    op = "rotary_embedding"
    if not _is_named(x):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    P = x.axes[axis_index_in(x.axes, pos_axis, op)]
    H = x.axes[axis_index_in(x.axes, head_axis, op)]
    if H.size % 2:
        raise ValueError(f"{op}: the head axis {H} must have an even size (its halves are rotated as pairs)")
    half = Axis(H.name, H.size // 2)
    if positions is None or not _is_named(positions):
        pos = arange(P, dtype=jnp.float32) + (0 if positions is None else jnp.asarray(positions, jnp.float32))
    else:
        for a in positions.axes:
            if a.name == P.name and a.size != P.size:
                raise ValueError(f"{op}: `positions` over {positions.axes} does not fit {P} of x {x.axes}")
        pos = positions.astype(jnp.float32)
    inv_freq = named(theta ** (-np.arange(half.size, dtype=np.float32) * 2 / H.size), (half,))
    angles = pos * inv_freq
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    cos, sin = nx_cos(angles).astype(dtype), nx_sin(angles).astype(dtype)
    x1, x2 = split(x, H.name, [half.size, half.size])
    return concatenate(H.name, [x1 * cos - x2 * sin, x2 * cos + x1 * sin])


def alibi_slopes(n: int) -> np.ndarray:
    """ALiBi's head slopes: for ``n`` a power of two, ``2 ** (-8 k / n)``, ``k = 1 .. n``; otherwise
    the slopes of the power of two ``c`` below ``n``, then every other slope of ``2 c`` (the paper's
    reference code).

    Examples:
        >>> import namedax as nx
        >>> nx.nn.alibi_slopes(4).tolist(), nx.nn.alibi_slopes(3).tolist()
        ([0.25, 0.0625, 0.015625, 0.00390625], [0.0625, 0.00390625, 0.25])
    """

    def pow2(m: int) -> list[float]:
        start = 2 ** (-8 / m)
        return [start ** (i + 1) for i in range(m)]

    if n & (n - 1) == 0:
        return np.asarray(pow2(n), np.float32)
    c = 2 ** math.floor(math.log2(n))
    return np.asarray(pow2(c) + pow2(2 * c)[0::2][: n - c], np.float32)


def alibi_bias(heads_axis: Axis, q_axis: Axis, kv_axis: Axis, *, q_offset: Any = 0) -> NamedArray:
    """The ALiBi bias ``-m_h * |i + q_offset - j|`` for head ``h``, query ``i`` and key ``j``.

    On the positions a causal mask keeps (``j <= i + q_offset``) this is the paper's
    ``-m_h (i - j)``; beyond them it is symmetric (as in bidirectional uses of ALiBi), so pass a
    causal mask as well for a decoder. Slopes ``m_h`` follow the paper for any head count: for ``n``
    heads, a power of two, ``m_h = 2 ** (-8 h / n)``, ``h = 1 .. n`` (1/2, 1/4, ... 1/256 for 8 heads);
    otherwise those of the power of two ``c`` below ``n``, then every other slope of ``2 c``.

    Args:
        heads_axis: the attention heads `Axis` (its size is the number of heads).
        q_axis: the query's sequence `Axis`.
        kv_axis: the key's sequence `Axis`, with another name.
        q_offset: the position of the first query (decoding), as in `causal_mask`.

    Returns:
        A float32 NamedArray over ``(heads_axis, q_axis, kv_axis)``, to pass as ``bias`` to
        `dot_product_attention`.

    Raises:
        TypeError: an axis is given without its size, or ``q_offset`` is not an integer.
        ValueError: the query and key axes share a name.

    Examples:
        >>> import namedax as nx
        >>> b = nx.nn.alibi_bias(nx.Axis("heads", 2), nx.Axis("q", 2), nx.Axis("k", 2))
        >>> b.axes
        (Axis('heads', 2), Axis('q', 2), Axis('k', 2))
        >>> b.array[:, 1].tolist()  # slopes 1/16 and 1/256 for 2 heads
        [[-0.0625, -0.0], [-0.00390625, -0.0]]
    """
    op = "alibi_bias"
    Hs = _axis(heads_axis, op, "heads_axis")
    qi, kj = _positions(q_axis, kv_axis, q_offset, op)
    slopes = named(jnp.asarray(alibi_slopes(Hs.size)), (Hs,))
    return -slopes * nx_abs(qi - kj).astype(jnp.float32)
