"""Attention masks as boolean NamedArrays (True = attend).

A mask is an ordinary boolean NamedArray over the query's sequence axis, the key's sequence axis
(a different name) and whatever else it depends on (a batch axis for padding or packed sequences).
`dot_product_attention` broadcasts it by name, so masks combine with ``&`` and ``|`` like any
NamedArray: ``causal_mask(Q, K) & padding_mask(lengths, K)`` is over ``(q, k, batch)``.

Decoding: the queries of a decoding step sit at positions ``k, k+1, ...`` of the sequence, not
``0, 1, ...``. The masks that depend on the query's position take ``q_offset`` (an int, a traced
integer scalar, or an integer NamedArray such as one offset per batch element), the position of the
first query: ``causal_mask(Axis("q", 1), Axis("k", 16), q_offset=step)`` lets the one new query see
the keys ``0 .. step``.

    >>> import namedax as nx
    >>> Q, K = nx.Axis("q", 3), nx.Axis("k", 3)
    >>> nx.nn.causal_mask(Q, K).array.astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
"""

from __future__ import annotations

from typing import Any

from ..core._axis import Axis
from ..core._named_array import NamedArray, _is_named, check_operand
from ..ops import arange


def _axis(ax: Any, op: str, what: str) -> Axis:
    if type(ax) is not Axis:
        raise TypeError(f"{op}: `{what}` must be an Axis with its size (e.g. nx.Axis({ax!r}, n)), got {ax!r}")
    return ax


def _positions(q_axis: Any, kv_axis: Any, q_offset: Any, op: str) -> tuple[NamedArray, NamedArray]:
    """Query positions (offset) and key positions, as int32 NamedArrays over their axes."""
    q, k = _axis(q_axis, op, "q_axis"), _axis(kv_axis, op, "kv_axis")
    if q.name == k.name:
        raise ValueError(
            f"{op}: the query axis {q} and the key axis {k} have the same name; a mask is over both, so the "
            "key's sequence axis needs its own name (e.g. nx.rename(key, {'position': 'key_position'}))"
        )
    _check_int(q_offset, op, "q_offset")
    return arange(q, dtype="int32") + q_offset, arange(k, dtype="int32")


def _check_int(v: Any, op: str, what: str) -> None:
    """An int, an integer scalar array or an integer NamedArray (broadcast by name)."""
    check_operand(v, op)
    dtype = getattr(v, "dtype", None)
    if (
        isinstance(v, bool)
        or (dtype is None and not isinstance(v, int))
        or (dtype is not None and dtype.kind not in "iu")
    ):
        raise TypeError(f"{op}: `{what}` must be an int or an integer array, got {v!r}")


def causal_mask(q_axis: Axis, kv_axis: Axis, *, q_offset: Any = 0) -> NamedArray:
    """The causal mask: query ``i`` attends to the keys ``j <= i + q_offset``.

    Args:
        q_axis: the query's sequence `Axis` (with its size).
        kv_axis: the key's sequence `Axis`, with another name.
        q_offset: the position of the first query (decoding; see the module docstring): an int, a
            traced integer scalar, or an integer NamedArray (its axes join the mask's).

    Returns:
        A boolean NamedArray over ``(q_axis, kv_axis)`` (then the axes of ``q_offset``).

    Raises:
        TypeError: an axis is given without its size, or ``q_offset`` is not an integer.
        ValueError: both axes have the same name.

    Examples:
        >>> import namedax as nx
        >>> nx.nn.causal_mask(nx.Axis("q", 2), nx.Axis("k", 4), q_offset=1).array.astype(int).tolist()
        [[1, 1, 0, 0], [1, 1, 1, 0]]
    """
    qi, kj = _positions(q_axis, kv_axis, q_offset, "causal_mask")
    return qi >= kj


def sliding_window_mask(q_axis: Axis, kv_axis: Axis, window: Any, *, q_offset: Any = 0) -> NamedArray:
    """A causal sliding window: query ``i`` attends to the ``window`` keys ``i - window < j <= i``
    (itself included; Mistral's convention, ``q_offset`` added to ``i``).

    Args:
        q_axis: the query's sequence `Axis`.
        kv_axis: the key's sequence `Axis`, with another name.
        window: how many keys each query sees, itself included (an int or integer array, >= 1).
        q_offset: the position of the first query, as in `causal_mask`.

    Returns:
        A boolean NamedArray over ``(q_axis, kv_axis)`` (then the axes of ``window``, ``q_offset``).

    Raises:
        TypeError: an axis lacks its size, or ``window`` / ``q_offset`` is not an integer.
        ValueError: both axes have the same name, or a static ``window`` is below 1.

    Examples:
        >>> import namedax as nx
        >>> nx.nn.sliding_window_mask(nx.Axis("q", 4), nx.Axis("k", 4), 2).array.astype(int).tolist()
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    op = "sliding_window_mask"
    _check_int(window, op, "window")
    if isinstance(window, int) and window < 1:
        raise ValueError(f"{op}: `window` must be at least 1 (the query itself), got {window}")
    qi, kj = _positions(q_axis, kv_axis, q_offset, op)
    return (qi >= kj) & (qi - window < kj)


def prefix_lm_mask(q_axis: Axis, kv_axis: Axis, prefix_len: Any, *, q_offset: Any = 0) -> NamedArray:
    """The prefix-LM mask: every query sees the whole prefix (keys ``j < prefix_len``), and the rest
    causally (``j <= i + q_offset``).

    Args:
        q_axis: the query's sequence `Axis`.
        kv_axis: the key's sequence `Axis`, with another name.
        prefix_len: the prefix's length: an int, an integer scalar, or an integer NamedArray (one
            length per batch element, its axes join the mask's).
        q_offset: the position of the first query, as in `causal_mask`.

    Returns:
        A boolean NamedArray over ``(q_axis, kv_axis)`` (then the axes of ``prefix_len``, ``q_offset``).

    Raises:
        TypeError: an axis lacks its size, or ``prefix_len`` / ``q_offset`` is not an integer.
        ValueError: both axes have the same name.

    Examples:
        >>> import namedax as nx
        >>> nx.nn.prefix_lm_mask(nx.Axis("q", 3), nx.Axis("k", 3), 2).array.astype(int).tolist()
        [[1, 1, 0], [1, 1, 0], [1, 1, 1]]
    """
    op = "prefix_lm_mask"
    _check_int(prefix_len, op, "prefix_len")
    qi, kj = _positions(q_axis, kv_axis, q_offset, op)
    return (qi >= kj) | (kj < prefix_len)


def segment_mask(q_segment_ids: NamedArray, kv_segment_ids: NamedArray) -> NamedArray:
    """The packed-sequence mask: a query attends to the keys of its own segment (same id).

    Args:
        q_segment_ids: integer NamedArray over the query's sequence axis (and e.g. batch).
        kv_segment_ids: integer NamedArray over the key's sequence axis (another name; the batch
            axes shared with the query's ids are matched by name).

    Returns:
        A boolean NamedArray over the axes of ``q_segment_ids`` then the key's sequence axis.
        Combine with `causal_mask` for causal packed sequences.

    Raises:
        TypeError: the ids are not integer NamedArrays.
        ValueError: ``kv_segment_ids`` has no axis that ``q_segment_ids`` lacks (the same axis name
            on both would compare position by position instead of query against key).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> ids = jnp.array([0, 0, 1])
        >>> m = nx.nn.segment_mask(nx.named(ids, "q"), nx.named(ids, "k"))
        >>> m.array.astype(int).tolist()
        [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    """
    op = "segment_mask"
    for what, v in (("q_segment_ids", q_segment_ids), ("kv_segment_ids", kv_segment_ids)):
        if not _is_named(v) or v.dtype.kind not in "iu":
            raise TypeError(f"{op}: `{what}` must be an integer NamedArray, got {v!r}")
    qn = {a.name for a in q_segment_ids.axes}
    if all(a.name in qn for a in kv_segment_ids.axes):
        raise ValueError(
            f"{op}: kv_segment_ids over {kv_segment_ids.axes} has no axis that q_segment_ids over "
            f"{q_segment_ids.axes} lacks; give the key's sequence axis its own name (nx.rename)"
        )
    return q_segment_ids == kv_segment_ids


def padding_mask(lengths: Any, kv_axis: Axis) -> NamedArray:
    """The key-padding mask: keys ``j < lengths`` are real, the rest padding.

    Args:
        lengths: the number of real keys: an int, an integer scalar, or an integer NamedArray (e.g.
            one length per batch element).
        kv_axis: the key's sequence `Axis`.

    Returns:
        A boolean NamedArray over ``kv_axis`` then the axes of ``lengths``.

    Raises:
        TypeError: ``kv_axis`` lacks its size, or ``lengths`` is not an integer.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> lengths = nx.named(jnp.array([1, 3]), "batch")
        >>> m = nx.nn.padding_mask(lengths, nx.Axis("k", 3))
        >>> m.axes, m.array.astype(int).tolist()
        ((Axis('k', 3), Axis('batch', 2)), [[1, 1], [0, 1], [0, 1]])
    """
    op = "padding_mask"
    k = _axis(kv_axis, op, "kv_axis")
    _check_int(lengths, op, "lengths")
    return arange(k, dtype="int32") < lengths
