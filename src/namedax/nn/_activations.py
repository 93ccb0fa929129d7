"""Activations, softmax over named axes, and one-hot encodings.

The elementwise activations are `jax.nn`'s, applied to ``x.array`` with the axes kept (each jax.nn
function is jitted already, so one eager call is one dispatch; under tracing the jaxpr is the
positional one). They are generated from a table, docstrings included. `softmax`, `log_softmax`
and `glu` act along named axes; `one_hot` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.nn as jnn
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis, AxisSelection, AxisSelector, axis_name, to_selectors
from ..core._named_array import NamedArray, _new, as_named, axis_index_in, unary

__all__ = [
    "relu", "relu6", "gelu", "quick_gelu", "silu", "swish", "sigmoid", "log_sigmoid", "tanh", "softplus",
    "soft_sign", "elu", "celu", "selu", "leaky_relu", "hard_tanh", "hard_sigmoid", "hard_silu", "hard_swish",
    "mish", "glu", "softmax", "log_softmax", "one_hot",
]  # fmt: skip


_DOC = """{summary} elementwise; the axes of ``x`` are kept.{extra}

Args:
    x: a `NamedArray` (or a scalar, which gives a 0-d `NamedArray`).

Returns:
    A `NamedArray` with the axes of ``x``.

Raises:
    TypeError: ``x`` is a plain array of nonzero rank (name its axes with `namedax.named`).

Examples:
    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.array([-1.0, 0.0, 2.0]), "embed")
    >>> nx.nn.{name}(x).array.tolist()
    {out}
"""


def _unary(name: str, fn: Callable, out: str, summary: str | None = None, extra: str = "") -> Callable:
    op = unary(name, fn)
    op.__doc__ = _DOC.format(summary=summary or f"`jax.nn.{name}`", name=name, out=out, extra=extra)
    return op


relu = _unary("relu", jnn.relu, "[0.0, 0.0, 2.0]")
relu6 = _unary("relu6", jnn.relu6, "[0.0, 0.0, 2.0]")
silu = _unary("silu", jnn.silu, "[-0.2689, 0.0, 1.7616]", extra=" Also called swish: ``x * sigmoid(x)``.")
swish = _unary("swish", jnn.swish, "[-0.2689, 0.0, 1.7616]", extra=" The same function as `silu`.")
sigmoid = _unary("sigmoid", jnn.sigmoid, "[0.2689, 0.5, 0.8808]")
log_sigmoid = _unary("log_sigmoid", jnn.log_sigmoid, "[-1.3133, -0.6931, -0.1269]")
tanh = _unary("tanh", jnp.tanh, "[-0.7616, 0.0, 0.964]", summary="`jax.numpy.tanh`")
softplus = _unary("softplus", jnn.softplus, "[0.3133, 0.6931, 2.1269]")
soft_sign = _unary("soft_sign", jnn.soft_sign, "[-0.5, 0.0, 0.6667]")
selu = _unary("selu", jnn.selu, "[-1.1113, 0.0, 2.1014]")
hard_tanh = _unary("hard_tanh", jnn.hard_tanh, "[-1.0, 0.0, 1.0]")
hard_sigmoid = _unary("hard_sigmoid", jnn.hard_sigmoid, "[0.3333, 0.5, 0.8333]")
hard_silu = _unary("hard_silu", jnn.hard_silu, "[-0.3333, 0.0, 1.6667]")
hard_swish = _unary("hard_swish", jnn.hard_swish, "[-0.3333, 0.0, 1.6667]")
mish = _unary("mish", jnn.mish, "[-0.3034, 0.0, 1.944]")


def _quick_gelu(a):
    return a * jnn.sigmoid(1.702 * a)


quick_gelu = _unary(
    "quick_gelu", _quick_gelu, "[-0.1542, 0.0, 1.9357]", summary="``x * sigmoid(1.702 * x)``",
    extra=" The fast GELU approximation of GPT-2 and CLIP.",
)  # fmt: skip


def gelu(x: NamedArray, approximate: bool = True) -> NamedArray:
    """`jax.nn.gelu` elementwise; the axes of ``x`` are kept.

    Args:
        x: a `NamedArray` (or a scalar).
        approximate: the tanh approximation (True, jax's and haliax's default) or the exact erf form.

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([-1.0, 0.0, 2.0]), "embed")
        >>> nx.nn.gelu(x).array.tolist(), nx.nn.gelu(x, approximate=False).array.tolist()
        ([-0.1588, 0.0, 1.9546], [-0.1587, 0.0, 1.9545])
    """
    x = as_named(x, "gelu")
    return _new(jnn.gelu(x.array, approximate=approximate), x.axes)


def leaky_relu(x: NamedArray, negative_slope: float = 0.01) -> NamedArray:
    """`jax.nn.leaky_relu` elementwise: ``x`` where positive, ``negative_slope * x`` elsewhere.

    Args:
        x: a `NamedArray` (or a scalar).
        negative_slope: the slope for negative inputs.

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([-1.0, 0.0, 2.0]), "embed")
        >>> nx.nn.leaky_relu(x).array.tolist(), nx.nn.leaky_relu(x, 0.5).array.tolist()
        ([-0.01, 0.0, 2.0], [-0.5, 0.0, 2.0])
    """
    x = as_named(x, "leaky_relu")
    return _new(jnn.leaky_relu(x.array, negative_slope=negative_slope), x.axes)


def elu(x: NamedArray, alpha: float = 1.0) -> NamedArray:
    """`jax.nn.elu` elementwise: ``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere.

    Args:
        x: a `NamedArray` (or a scalar).
        alpha: the scale of the negative part.

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([-1.0, 0.0, 2.0]), "embed")
        >>> nx.nn.elu(x).array.tolist()
        [-0.6321, 0.0, 2.0]
    """
    x = as_named(x, "elu")
    return _new(jnn.elu(x.array, alpha=alpha), x.axes)


def celu(x: NamedArray, alpha: float = 1.0) -> NamedArray:
    """`jax.nn.celu` elementwise: ``x`` where positive, ``alpha * (exp(x / alpha) - 1)`` elsewhere.

    Args:
        x: a `NamedArray` (or a scalar).
        alpha: the scale of the negative part.

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        TypeError: ``x`` is a plain array of nonzero rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([-1.0, 0.0, 2.0]), "embed")
        >>> nx.nn.celu(x, alpha=2.0).array.tolist()
        [-0.7869, 0.0, 2.0]
    """
    x = as_named(x, "celu")
    return _new(jnn.celu(x.array, alpha=alpha), x.axes)


def _axis_indices(x: NamedArray, axis: AxisSelection | None, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    idx = tuple(axis_index_in(x.axes, s, op) for s in to_selectors(axis))
    if len(set(idx)) != len(idx):
        raise ValueError(f"{op}: an axis is listed twice in {axis!r}")
    return idx


def softmax(x: NamedArray, axis: AxisSelection | None) -> NamedArray:
    """`jax.nn.softmax` over the named axis (or axes): ``exp(x) / sum(exp(x), axis)``.

    Args:
        x: a `NamedArray`.
        axis: the axis to normalise over, several (normalised jointly), or None for all axes.
            Required: namedax has no "last axis".

    Returns:
        A `NamedArray` with the axes of ``x``, summing to one over ``axis``.

    Raises:
        AxisNotFoundError: ``axis`` is not an axis of ``x`` (the message lists those present).
        ValueError: an axis is listed twice.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([[0.0, 0.0], [0.0, jnp.log(3.0)]]), ("batch", "label"))
        >>> nx.nn.softmax(logits, "label").array.tolist()
        [[0.5, 0.5], [0.25, 0.75]]
    """
    x = as_named(x, "softmax")
    return _new(jnn.softmax(x.array, axis=_axis_indices(x, axis, "softmax")), x.axes)


def log_softmax(x: NamedArray, axis: AxisSelection | None) -> NamedArray:
    """`jax.nn.log_softmax` over the named axis (or axes): ``x - logsumexp(x, axis)``.

    Args:
        x: a `NamedArray`.
        axis: the axis to normalise over, several, or None for all axes. Required.

    Returns:
        A `NamedArray` with the axes of ``x``.

    Raises:
        AxisNotFoundError: ``axis`` is not an axis of ``x`` (the message lists those present).
        ValueError: an axis is listed twice.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([[0.0, 0.0], [0.0, jnp.log(3.0)]]), ("batch", "label"))
        >>> jnp.exp(nx.nn.log_softmax(logits, "label").array).tolist()
        [[0.5, 0.5], [0.25, 0.75]]
    """
    x = as_named(x, "log_softmax")
    return _new(jnn.log_softmax(x.array, axis=_axis_indices(x, axis, "log_softmax")), x.axes)


def glu(x: NamedArray, axis: AxisSelector) -> NamedArray:
    """`jax.nn.glu` along a named axis: its first half times the sigmoid of its second half.

    Args:
        x: a `NamedArray`.
        axis: the axis to split in two; its size must be even. It keeps its name with half the size.

    Returns:
        A `NamedArray` with the axes of ``x``, ``axis`` halved.

    Raises:
        AxisNotFoundError: ``axis`` is not an axis of ``x``.
        ValueError: the axis has an odd size.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 2.0, 0.0, 100.0]), "embed")
        >>> y = nx.nn.glu(x, "embed")
        >>> y.axes, y.array.tolist()
        ((Axis('embed', 2),), [0.5, 2.0])
    """
    x = as_named(x, "glu")
    i = axis_index_in(x.axes, axis, "glu")
    ax = x.axes[i]
    if ax.size % 2:
        raise ValueError(f"glu: axis {ax.name!r} has odd size {ax.size}; it is split into two halves")
    axes = x.axes[:i] + (Axis(ax.name, ax.size // 2),) + x.axes[i + 1 :]
    return _new(jnn.glu(x.array, axis=i), axes)


def one_hot(x: NamedArray | int, class_axis: Axis, *, dtype: Any = None) -> NamedArray:
    """One-hot encode integer ids along a new named axis (haliax's ``one_hot``).

    Args:
        x: an integer `NamedArray` of ids, or one Python int.
        class_axis: the new axis, an `Axis` (its size is the number of classes). It goes last.
        dtype: the result's dtype (default: jax's default float).

    Returns:
        A `NamedArray` over ``x.axes + (class_axis,)``; an id outside ``[0, size)`` gives a row of
        zeros, as `jax.nn.one_hot` does.

    Raises:
        TypeError: ``class_axis`` is not an `Axis`, or ``x`` is not an integer NamedArray or int.
        ValueError: ``x`` already has an axis named like ``class_axis``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> ids = nx.named(jnp.array([2, 0]), "batch")
        >>> y = nx.nn.one_hot(ids, nx.Axis("label", 3))
        >>> y.axes
        (Axis('batch', 2), Axis('label', 3))
        >>> y.array.tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if type(class_axis) is not Axis:
        raise TypeError(
            f"one_hot: `class_axis` must be an Axis (its size is the number of classes), got {class_axis!r}"
        )
    if isinstance(x, NamedArray):
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(f"one_hot: ids must be integers, got dtype {x.dtype} over {x.axes}")
        if any(a.name == class_axis.name for a in x.axes):
            raise ValueError(f"one_hot: the ids {x.axes} already have an axis named {axis_name(class_axis)!r}")
        return _new(jnn.one_hot(x.array, class_axis.size, dtype=dtype), x.axes + (class_axis,))
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        return _new(jnn.one_hot(jnp.asarray(x), class_axis.size, dtype=dtype), (class_axis,))
    raise TypeError(f"one_hot: `x` must be an integer NamedArray or an int, got {type(x).__name__}: {x!r}")
