"""`BatchNorm`: normalisation by batch statistics over named axes, with running statistics as state."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp

from ..core._axis import Axis, AxisSelection, AxisSpec, to_axes, to_selectors
from ..core._axis import axis_name as _name_of
from ..core._named_array import NamedArray
from ..ops import mean, ones, rsqrt, zeros
from ..transforms._collectives import mapped_size, pmean
from ._normalization import _affine, _feature_names
from ._util import InferenceFlag, InferenceSlot, inference_bool, module_call, spec


class BatchNorm(eqx.Module):
    """Batch normalisation over named axes, its running statistics kept in an `equinox.nn.State`.

    One mean and one variance per element of the feature axes ``axis``, averaged over every other
    axis of the input, and over the axes named in ``axis_name`` that the input lacks because an
    enclosing `namedax.vmap` / `namedax.pmap` maps them (averaged with `namedax.pmean`). So the same
    layer works on a whole batch (``batch`` an axis of the input) and in per-example code mapped
    over ``batch``, with the same result.

    In training (``inference=False``) the input is normalised with the batch statistics, and the
    running statistics are updated as
    ``running = momentum * running + (1 - momentum) * batch_statistic`` (biased variance; flax's
    convention: momentum 0.99 keeps 99% of the old value, PyTorch's 0.1 is 0.9 here). In inference
    the running statistics normalise and the state is returned unchanged. Toggle with the
    ``inference`` flag (`equinox.nn.inference_mode` flips it in every layer of a model) or per call.
    The flag is part of the model's structure, like a static field: `jax.jit` and `jax.grad` see
    no leaf for it (jit compiles once per value), so plain `jax.jit` works on a model holding
    BatchNorm, in either mode.

    Attributes:
        axis: the feature axis or axes (static): statistics, weight and bias live on them.
        weight: the scale over ``axis``, or None.
        bias: the offset over ``axis``, or None.
        index: the `equinox.nn.StateIndex` of ``(running_mean, running_var)``, NamedArrays over ``axis``.
        axis_name: names of mapped axes also averaged over when the input lacks them (static).
        eps: added to the variance (static).
        momentum: weight of the old running statistics in an update (static).
        inference: use the running statistics, leave the state alone (a bool-like flag,
            ``bool(bn.inference)``, set by `equinox.nn.inference_mode` or `equinox.tree_at`).

    Examples:
        >>> import equinox as eqx
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Batch, Embed = nx.Axis("batch", 4), nx.Axis("embed", 2)
        >>> bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(Embed, momentum=0.5)
        >>> x = nx.named(jnp.array([[1.0, 0.0], [3.0, 0.0], [5.0, 4.0], [7.0, 4.0]]), (Batch, Embed))
        >>> y, state = bn(x, state)
        >>> nx.mean(y, axis="batch").array.round(4).tolist(), nx.var(y, axis="batch").array.round(3).tolist()
        ([0.0, 0.0], [1.0, 1.0])
        >>> running_mean, running_var = state.get(bn.index)
        >>> running_mean.array, running_var.array  # halfway from (0, 1) to the batch's (4, 2) and (5, 4)
        (Array([2., 1.], dtype=float32), Array([3. , 2.5], dtype=float32))
        >>> evaluation = eqx.nn.inference_mode(bn)                # running statistics, state unchanged
        >>> y, same = jax.jit(lambda m, v, s: m(v, s))(evaluation, x, state)
        >>> y["batch", 0].array.round(3).tolist(), same.get(bn.index)[0].array.tolist()
        ([-0.577, -0.632], [2.0, 1.0])
    """

    axis: Axis | tuple[Axis, ...] = eqx.field(static=True)
    weight: NamedArray | None
    bias: NamedArray | None
    index: eqx.nn.StateIndex
    axis_name: tuple[str, ...] = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    momentum: float = eqx.field(static=True)
    _inference: InferenceSlot

    def __init__(
        self,
        axis: Axis | tuple[Axis, ...],
        weight: NamedArray | None,
        bias: NamedArray | None,
        index: eqx.nn.StateIndex,
        axis_name: tuple[str, ...] = (),
        eps: float = 1e-5,
        momentum: float = 0.99,
        inference: bool = False,
    ):
        """The fields as they are (build a layer with `init` instead)."""
        self.axis, self.weight, self.bias, self.index = axis, weight, bias, index
        self.axis_name, self.eps, self.momentum = axis_name, eps, momentum
        self._inference = InferenceSlot(inference, "BatchNorm")

    @property
    def inference(self) -> InferenceFlag:
        """Whether the running statistics normalise by default (a bool-like flag)."""
        return self._inference.flag

    @classmethod
    def init(
        cls,
        axis: AxisSpec | Axis,
        *,
        axis_name: AxisSelection = (),
        eps: float = 1e-5,
        momentum: float = 0.99,
        use_weight: bool = True,
        use_bias: bool = True,
        inference: bool = False,
        dtype: Any = jnp.float32,
        key: Any = None,
    ) -> BatchNorm:
        """A new layer: weight ones, bias zeros, running mean zeros and running variance ones.

        Build it with `equinox.nn.make_with_state` to get the initial state too:
        ``bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(Embed)``.

        Args:
            axis: the feature axis (or axes).
            axis_name: mapped axes (by name or `Axis`) to average over as well when the input lacks
                them; an axis the input has is averaged over anyway.
            eps: added to the variance before the square root (>= 0).
            momentum: weight of the old running statistics, in [0, 1].
            use_weight: learn a scale over ``axis``.
            use_bias: learn an offset over ``axis``.
            inference: start in inference mode.
            dtype: dtype of the parameters and running statistics.
            key: unused (nothing is random); accepted so that every module's ``init`` takes ``key=``.

        Returns:
            A `BatchNorm`.

        Raises:
            TypeError: an axis is given by name only (sizes are needed).
            ValueError: ``eps`` or ``momentum`` is out of range, or ``axis_name`` names a feature axis.

        Examples:
            >>> import equinox as eqx
            >>> import namedax as nx
            >>> bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(nx.Axis("embed", 3), use_bias=False)
            >>> bn.weight.axes, bn.bias, [s.axes for s in state.get(bn.index)]
            ((Axis('embed', 3),), None, [(Axis('embed', 3),), (Axis('embed', 3),)])
        """
        del key
        op = "BatchNorm.init"
        axis = spec(axis, op, "axis")
        if not eps >= 0:
            raise ValueError(f"{op}: `eps` must be >= 0, got {eps!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{op}: `momentum` must be in [0, 1] (the weight of the old statistics), got {momentum!r}")
        names = tuple(_name_of(a) for a in to_selectors(axis_name)) if axis_name != () else ()
        axes = to_axes(axis)
        clash = [n for n in names if n in {a.name for a in axes}]
        if clash:
            raise ValueError(
                f"{op}: `axis_name` {clash} names a feature axis of {axes}; statistics are kept per feature"
            )
        return cls(
            axis=axis,
            weight=ones(axes, dtype=dtype) if use_weight else None,
            bias=zeros(axes, dtype=dtype) if use_bias else None,
            index=eqx.nn.StateIndex((zeros(axes, dtype=dtype), ones(axes, dtype=dtype))),
            axis_name=names,
            eps=float(eps),
            momentum=float(momentum),
            inference=inference,
        )

    @module_call
    def __call__(
        self, x: NamedArray, state: eqx.nn.State, *, key: Any = None, inference: Any = None
    ) -> tuple[NamedArray, eqx.nn.State]:
        """Normalise ``x``; return it with the new state (``key`` is unused).

        Args:
            x: the input; it must hold the feature axes.
            state: the state holding this layer's running statistics.
            inference: overrides the ``inference`` flag when not None: a bool (not a traced value:
                the two modes read different statistics and return different states, so the mode is
                chosen when tracing).

        Returns:
            ``(y, state)``: ``y`` with the axes of ``x`` in their order; the state updated in
            training, unchanged in inference.

        Raises:
            AxisNotFoundError: ``x`` lacks a feature axis.
            ValueError: a feature axis has another size in ``x``, in training there is nothing to
                average over (``x`` holds only feature axes and no mapped ``axis_name``), or in
                training an ``axis_name`` the input lacks is not mapped by an enclosing
                `namedax.vmap` / `namedax.pmap`.
            TypeError: ``inference`` is traced (or not a bool), or ``x`` is a plain array (name its
                axes first with `namedax.named`).
        """
        features = _feature_names("BatchNorm", self.axis, x)
        if inference is None:
            inference = self.inference
        off = inference_bool(inference, "BatchNorm")
        if off is None:
            raise TypeError(
                "BatchNorm: `inference` is a traced value (e.g. an argument of jax.jit); the two modes read "
                "different statistics and return different states, so the mode must be a Python bool when "
                "tracing: set it with eqx.nn.inference_mode(model) (the flag stays static under jax.jit), "
                "or mark the argument static (jax.jit(..., static_argnames=...) or eqx.filter_jit)"
            )
        if off:
            mu, var = state.get(self.index)
        else:
            local = tuple(a.name for a in x.axes if a.name not in features)
            mapped = tuple(n for n in self.axis_name if n not in local)
            if not local and not mapped:
                raise ValueError(
                    f"BatchNorm: the input {x.axes} holds only the feature axes {features} and no mapped "
                    "`axis_name`: there is nothing to average the batch statistics over"
                )
            unmapped = [n for n in mapped if mapped_size(n) is None]
            if unmapped:
                raise ValueError(
                    f"BatchNorm: `axis_name` {unmapped[0]!r} is neither an axis of the input {x.axes} nor "
                    "mapped here: `axis_name` names an axis that an enclosing nx.vmap / nx.pmap maps away "
                    f"from the input. Call the layer inside nx.vmap(..., {unmapped[0]!r}) (or nx.pmap), or "
                    f"give the input the {unmapped[0]!r} axis"
                )

            def average(v: NamedArray) -> NamedArray:
                v = mean(v, axis=local) if local else v
                return pmean(v, mapped) if mapped else v

            mu = average(x)
            var = average((x - mu) * (x - mu))
            old_mu, old_var = state.get(self.index)
            m = self.momentum
            new = (
                (m * old_mu + (1 - m) * mu).astype(old_mu.dtype),
                (m * old_var + (1 - m) * var).astype(old_var.dtype),
            )
            state = state.set(self.index, new)
        return _affine(self.weight, self.bias, (x - mu) * rsqrt(var + self.eps)), state
