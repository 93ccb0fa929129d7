"""`Linear`: a dense layer between named axes."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx

from .. import random as nxr
from ..core._axis import Axis, AxisSpec, axis_size, to_axes
from ..core._named_array import AxisNotFoundError, NamedArray
from ..ops import dot, zeros
from ._util import module_call, spec


class Linear(eqx.Module):
    """A dense layer from the input axes ``In`` to the output axes ``Out`` (haliax's ``Linear``).

    ``y = dot(x, weight, axis=In) + bias``: the ``In`` axes of ``x`` are contracted, ``Out`` takes
    their place after the other axes of ``x`` (batch axes, in their order), so the same layer
    applies to any batch layout without a `namedax.vmap`. ``In`` and ``Out`` may each be several
    axes (the weight has all of them).

    Attributes:
        weight: over ``Out + In`` (``In + Out`` with ``out_first=False``).
        bias: over ``Out``, or None.
        In: the input axis or axes (static).
        Out: the output axis or axes (static).

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> Batch, Embed, Hidden = nx.Axis("batch", 2), nx.Axis("embed", 4), nx.Axis("hidden", 3)
        >>> layer = nx.nn.Linear.init(Embed, Hidden, key=jax.random.key(0))
        >>> layer.weight.axes
        (Axis('hidden', 3), Axis('embed', 4))
        >>> layer(nx.ones((Embed, Batch))).axes
        (Axis('batch', 2), Axis('hidden', 3))
    """

    weight: NamedArray
    bias: NamedArray | None
    In: Axis | tuple[Axis, ...] = eqx.field(static=True)
    Out: Axis | tuple[Axis, ...] = eqx.field(static=True)

    @classmethod
    def init(
        cls,
        In: AxisSpec | Axis,
        Out: AxisSpec | Axis,
        *,
        key: Any,
        use_bias: bool = True,
        out_first: bool = True,
        init_scale: float = 1.0,
        dtype: Any = None,
    ) -> Linear:
        """A new layer with random weights and a zero bias.

        The weight is drawn from a standard normal truncated to ``[-3, 3]`` and scaled by
        ``init_scale / sqrt(fan_in)``, where ``fan_in`` is the product of the ``In`` sizes (haliax's
        initialisation; the standard deviation is about ``0.986 * init_scale / sqrt(fan_in)``, which
        keeps activations of order one through a stack of layers).

        Args:
            In: the input axis, several, or a ``{name: size}`` mapping.
            Out: the output axis or axes; no name may be shared with ``In``.
            key: a PRNG key (`jax.random.key`, a legacy `jax.random.PRNGKey`, or one layer's key as
                `Stacked` or `namedax.vmap` hand it over).
            use_bias: add a bias over ``Out`` (initialised to zero).
            out_first: lay the weight out as ``Out + In`` (PyTorch's order, the default) or ``In + Out``.
            init_scale: a factor on the weight's scale.
            dtype: the parameters' float dtype (default: JAX's default float, float32 unless x64 is on).

        Returns:
            A `Linear` (an instance of ``cls``, so subclasses inherit this constructor).

        Raises:
            ValueError: ``In`` and ``Out`` share an axis name, or a spec repeats a name.
            TypeError: an axis is given by name only (sizes are needed), or ``key`` is not a key.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> layer = nx.nn.Linear.init({"embed": 4}, {"heads": 2, "head_dim": 3}, key=jax.random.key(0))
            >>> layer.weight.shape, layer.bias.shape
            ({'heads': 2, 'head_dim': 3, 'embed': 4}, {'heads': 2, 'head_dim': 3})
        """
        In, Out = spec(In, "Linear.init", "In"), spec(Out, "Linear.init", "Out")
        ins, outs = to_axes(In), to_axes(Out)
        shared = sorted({a.name for a in ins} & {a.name for a in outs})
        if shared:
            raise ValueError(
                f"Linear.init: In={In} and Out={Out} share the axis names {shared}; a weight cannot hold an "
                f"axis twice: give the output another name (e.g. Out=Axis({shared[0] + '_out'!r}, size)) "
                "and rename it back with nx.rename if needed"
            )
        k = nxr._check_key("Linear.init", key)
        joint = outs + ins if out_first else ins + outs
        weight = nxr.truncated_normal(k, joint, -3.0, 3.0, dtype) * (init_scale / math.sqrt(axis_size(ins)))
        bias = zeros(outs, dtype=weight.dtype) if use_bias else None
        return cls(weight=weight, bias=bias, In=In, Out=Out)

    @module_call
    def __call__(self, x: NamedArray, *, key: Any = None) -> NamedArray:
        """Apply the layer: contract ``In``, add ``Out`` (and the bias).

        Args:
            x: a NamedArray holding every ``In`` axis, and no ``Out`` axis.
            key: unused; accepted so that every module takes ``key=``.

        Returns:
            A NamedArray over the other axes of ``x`` (in their order), then ``Out``.

        Raises:
            TypeError: ``x`` is a plain array (name its axes first with `namedax.named`).
            AxisNotFoundError: ``x`` lacks an ``In`` axis (the message lists the axes it has).
            ValueError: an ``In`` axis has another size in ``x``, or ``x`` already has an ``Out`` axis.
        """
        del key
        ins = to_axes(self.In)
        have = {a.name: a.size for a in x.axes}
        for a in ins:
            n = have.get(a.name)
            if n is None:
                raise AxisNotFoundError(f"Linear: the input {x.axes} has no input axis {a.name!r} (In={self.In})")
            if n != a.size:
                raise ValueError(f"Linear: input axis {a.name!r} has size {n}, the layer expects {a}")
        clash = [a.name for a in to_axes(self.Out) if a.name in have]
        if clash:
            raise ValueError(
                f"Linear: the input {x.axes} already has the output axes {clash} (Out={self.Out}); rename them"
            )
        y = dot(x, self.weight, axis=tuple(a.name for a in ins))
        if self.bias is not None:
            y = y + self.bias
        return y
