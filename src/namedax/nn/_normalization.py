"""`LayerNorm` and `RMSNorm`: normalisation over named axes, with an optional affine map."""

from __future__ import annotations

from typing import Any

import equinox as eqx

from ..core._axis import Axis, AxisSpec, to_axes
from ..core._named_array import AxisNotFoundError, NamedArray
from ..ops import mean, ones, rsqrt, var, zeros
from ._util import module_call, spec


class _Norm(eqx.Module):
    axis: Axis | tuple[Axis, ...] = eqx.field(static=True)
    weight: NamedArray | None
    bias: NamedArray | None
    eps: float = eqx.field(static=True, default=1e-5)

    _use_bias_default = True

    @classmethod
    def init(
        cls,
        axis: AxisSpec | Axis,
        eps: float = 1e-5,
        use_weight: bool = True,
        use_bias: bool | None = None,
        *,
        dtype: Any = None,
        key: Any = None,
    ):
        """A new layer over ``axis``: weight ones, bias zeros (so it starts as the plain normalisation).

        Args:
            axis: the axis (or axes) to normalise over; the weight and bias live on them.
            eps: added to the variance (mean square for `RMSNorm`) before the square root.
            use_weight: learn a scale over ``axis``.
            use_bias: learn an offset over ``axis`` (default: True for `LayerNorm`, False for `RMSNorm`).
            dtype: the parameters' float dtype (default: JAX's default float). haliax's ``dtype`` is
                a compute dtype instead; here the input's dtype is kept by the usual promotion.
            key: unused (nothing is random); accepted so that every module's ``init`` takes ``key=``.

        Returns:
            An instance of ``cls``.

        Raises:
            TypeError: an axis is given by name only (sizes are needed).
            ValueError: ``eps`` is negative, or ``axis`` repeats a name.

        Examples:
            >>> import namedax as nx
            >>> norm = nx.nn.LayerNorm.init(nx.Axis("embed", 4), use_bias=False)
            >>> norm.weight.axes, norm.bias
            ((Axis('embed', 4),), None)
        """
        del key
        op = f"{cls.__name__}.init"
        axis = spec(axis, op, "axis")
        if not eps >= 0:
            raise ValueError(f"{op}: `eps` must be >= 0, got {eps!r}")
        if use_bias is None:
            use_bias = cls._use_bias_default
        axes = to_axes(axis)
        return cls(
            axis=axis,
            weight=ones(axes, dtype=dtype) if use_weight else None,
            bias=zeros(axes, dtype=dtype) if use_bias else None,
            eps=float(eps),
        )

    def _names(self, x: NamedArray) -> tuple[str, ...]:
        return _feature_names(type(self).__name__, self.axis, x)

    def _affine(self, out: NamedArray) -> NamedArray:
        return _affine(self.weight, self.bias, out)


def _feature_names(layer: str, axis: Axis | tuple[Axis, ...], x: NamedArray) -> tuple[str, ...]:
    """The names of ``axis``, checked against the input (present, same sizes)."""
    have = {a.name: a.size for a in x.axes}
    for a in to_axes(axis):
        n = have.get(a.name)
        if n is None:
            raise AxisNotFoundError(f"{layer}: the input {x.axes} has no axis {a.name!r}")
        if n != a.size:
            raise ValueError(f"{layer}: axis {a.name!r} has size {n}, the layer expects {a}")
    return tuple(a.name for a in to_axes(axis))


def _affine(weight: NamedArray | None, bias: NamedArray | None, out: NamedArray) -> NamedArray:
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


class LayerNorm(_Norm):
    """Normalise over named axes: ``(x - mean) / sqrt(var + eps) * weight + bias`` (haliax's ``LayerNorm``).

    Mean and variance are taken over ``axis`` (several axes are normalised jointly); the result keeps
    the axes of the input, in their order.

    Attributes:
        axis: the normalised axis or axes (static).
        weight: the scale over ``axis``, or None.
        bias: the offset over ``axis``, or None.
        eps: added to the variance (static).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Embed = nx.Axis("embed", 4)
        >>> norm = nx.nn.LayerNorm.init(Embed)
        >>> x = nx.named(jnp.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 8.0]]), ("batch", "embed"))
        >>> y = norm(x)
        >>> y.axes
        (Axis('batch', 2), Axis('embed', 4))
        >>> nx.mean(y, axis="embed").array.round(4).tolist(), nx.var(y, axis="embed").array.round(3).tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """

    @module_call
    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        """Normalise ``x`` over ``axis`` (``key`` is unused).

        Raises:
            TypeError: ``x`` is a plain array (name its axes first with `namedax.named`).
            AxisNotFoundError: ``x`` lacks a normalised axis (the message lists the axes it has).
            ValueError: a normalised axis has another size in ``x``.
        """
        names = self._names(x)
        out = (x - mean(x, axis=names)) * rsqrt(var(x, axis=names) + self.eps)
        return self._affine(out)


class RMSNorm(_Norm):
    """Normalise by the root mean square over named axes: ``x / sqrt(mean(x**2) + eps) * weight``.

    No centring, and no bias unless ``use_bias=True`` (LLaMA-style; haliax's ``RmsNorm`` defaults
    to a bias).

    Attributes:
        axis: the normalised axis or axes (static).
        weight: the scale over ``axis``, or None.
        bias: the offset over ``axis``, or None.
        eps: added to the mean square (static).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> norm = nx.nn.RMSNorm.init(nx.Axis("embed", 2), eps=0.0)
        >>> norm.bias is None
        True
        >>> norm(nx.named(jnp.array([3.0, 4.0]), "embed")).array.tolist()  # rms = sqrt(12.5)
        [0.8485, 1.1314]
    """

    _use_bias_default = False

    @module_call
    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        """Normalise ``x`` over ``axis`` (``key`` is unused).

        Raises:
            TypeError: ``x`` is a plain array (name its axes first with `namedax.named`).
            AxisNotFoundError: ``x`` lacks a normalised axis (the message lists the axes it has).
            ValueError: a normalised axis has another size in ``x``.
        """
        names = self._names(x)
        return self._affine(x * rsqrt(mean(x * x, axis=names) + self.eps))


RmsNorm = RMSNorm  # haliax's name for it
