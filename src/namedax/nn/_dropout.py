"""`Dropout`: zero random elements, with an explicit key."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import random as nxr
from ..core._axis import Axis, AxisSelection, axis_name, to_selectors
from ..core._named_array import NamedArray, named, rearrange
from ..ops import where, zeros_like
from ._util import InferenceFlag, InferenceSlot, inference_bool, module_call


def _check_pdrop(pdrop: Any, op: str) -> float:
    real = isinstance(pdrop, int | float | np.integer | np.floating) and not isinstance(pdrop, bool | np.bool_)
    if not real or not 0.0 <= pdrop <= 1.0:
        raise ValueError(f"{op}: `pdrop` must be a float in [0, 1], got {pdrop!r}")
    return float(pdrop)


def dropout(
    x: NamedArray,
    pdrop: float,
    broadcast_axes: AxisSelection | None = None,
    *,
    inference: Any = False,
    key: Any = None,
) -> NamedArray:
    """Zero each element of ``x`` with probability ``pdrop`` and scale the rest by ``1 / (1 - pdrop)``.

    Args:
        x: a NamedArray.
        pdrop: the probability of dropping an element, in ``[0, 1]``.
        broadcast_axes: axes along which the mask is shared (e.g. a sequence axis, to drop whole
            features); axes that ``x`` does not have are ignored, so the same setting works inside a
            `namedax.vmap` that removed them.
        inference: turn dropout off (``x`` is returned as is). A bool, or a boolean scalar array;
            a traced one (a `jax.jit` argument) is known only at run time, so both results are
            computed and one selected: a ``key`` is then required.
        key: a PRNG key, required when dropout may be active (a NamedArray without axes, such as
            one layer's key from `Stacked`, is accepted).

    Returns:
        A NamedArray with the axes of ``x``, in their order.

    Raises:
        ValueError: ``pdrop`` is not in ``[0, 1]``, or dropout may be active and ``key`` is None.
        TypeError: ``inference`` is neither a bool nor a boolean scalar array.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> x = nx.ones({"batch": 2, "embed": 1000})
        >>> y = nx.nn.dropout(x, 0.25, key=jax.random.key(0))
        >>> sorted(set(y.array.ravel().tolist()))  # kept elements are scaled by 1 / 0.75
        [0.0, 1.3333]
        >>> nx.nn.dropout(x, 0.25, inference=True) is x
        True
        >>> f = jax.jit(lambda v, off: nx.nn.dropout(v, 0.25, inference=off, key=jax.random.key(0)))
        >>> bool((f(x, True).array == 1).all()), bool((f(x, False).array == y.array).all())
        (True, True)
    """
    pdrop = _check_pdrop(pdrop, "dropout")
    off = inference_bool(inference, "dropout")
    if off or pdrop == 0.0:
        return x
    if key is None:
        if off is None:
            raise ValueError(
                f"dropout: a PRNG `key` is required while dropout may be active (pdrop={pdrop}): `inference` "
                "is traced, so its value is known only at run time; pass key=..., or a Python bool as `inference`"
            )
        raise ValueError(
            f"dropout: a PRNG `key` is required while dropout is active (pdrop={pdrop}, inference=False): "
            "pass key=..., or inference=True to turn dropout off"
        )
    if pdrop == 1.0:
        out = zeros_like(x)
    else:
        shared = set() if broadcast_axes is None else {axis_name(a) for a in to_selectors(broadcast_axes)}
        mask_axes = tuple(a for a in x.axes if a.name not in shared)
        q = 1.0 - pdrop
        mask = nxr.bernoulli(nxr._check_key("dropout", key), mask_axes, q)
        out = where(mask, x / q, 0)
        if out.axes != x.axes:  # the mask lacks the broadcast axes, so where() put them last
            out = rearrange(out, tuple(a.name for a in x.axes))
    if off is None:  # traced: select at run time
        out = named(jnp.where(inference, x.array, out.array), x.axes)
    return out


class Dropout(eqx.Module):
    """Dropout as a module (haliax's ``Dropout``): see `dropout`.

    Randomness is explicit: an active dropout needs a ``key`` at call time. In a `Stacked` stack,
    give each layer its own key with ``stack.fold(x, key=nx.random.split(key, Layers))``.

    Inference mode: ``inference=True`` at construction or per call, or `equinox.nn.inference_mode`,
    which flips the ``inference`` flag of every layer of a model (a `Stacked` stack included). The
    flag is part of the model's structure, like a static field: `jax.jit` and `jax.grad` see no
    leaf for it (jit compiles once per value), and a model holding Dropout goes through
    `jax.jit`, `jax.grad` and optax as a PyTree of arrays.

    Attributes:
        pdrop: the probability of dropping an element (static).
        broadcast_axes: axes along which the mask is shared, or None (static).
        inference: the default for the call's ``inference``; a bool-like flag (``bool(drop.inference)``)
            set by `equinox.nn.inference_mode` or `equinox.tree_at`.

    Examples:
        >>> import equinox as eqx
        >>> import jax
        >>> import namedax as nx
        >>> drop = nx.nn.Dropout(0.5)
        >>> x = nx.ones({"embed": 8})
        >>> drop(x, inference=True).array.tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        >>> set(drop(x, key=jax.random.key(1)).array.tolist()) <= {0.0, 2.0}
        True
        >>> model = {"drop": drop, "scale": nx.ones({"embed": 8})}
        >>> evaluation = eqx.nn.inference_mode(model)          # every Dropout off, no key needed
        >>> bool(evaluation["drop"].inference), evaluation["drop"](x) is x
        (True, True)
        >>> bool(eqx.nn.inference_mode(evaluation, False)["drop"].inference)
        False
        >>> jax.jit(lambda m, v: m["drop"](v) * m["scale"])(evaluation, x).array.tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """

    pdrop: float = eqx.field(static=True)
    broadcast_axes: Axis | str | tuple[Axis | str, ...] | None = eqx.field(static=True)
    _inference: InferenceSlot

    def __init__(self, pdrop: float = 0.5, broadcast_axes: AxisSelection | None = None, inference: bool = False):
        """Args: see the attributes. Raises ValueError when ``pdrop`` is not in ``[0, 1]``, TypeError
        when ``inference`` is not a bool."""
        self.pdrop = _check_pdrop(pdrop, "Dropout")
        self.broadcast_axes = None if broadcast_axes is None else to_selectors(broadcast_axes)
        self._inference = InferenceSlot(inference, "Dropout")

    @classmethod
    def init(
        cls,
        pdrop: float = 0.5,
        broadcast_axes: AxisSelection | None = None,
        *,
        inference: bool = False,
        key: Any = None,
    ) -> Dropout:
        """A new layer, as every namedax module is built (``Dropout(pdrop)`` works as well).

        Args:
            pdrop: the probability of dropping an element, in ``[0, 1]``.
            broadcast_axes: axes along which the mask is shared, or None.
            inference: start with dropout off.
            key: unused (the mask is drawn at call time); accepted so that every module's ``init``
                takes ``key=``, e.g. through `Stacked.init`.

        Returns:
            A `Dropout` (an instance of ``cls``).

        Raises:
            ValueError: ``pdrop`` is not in ``[0, 1]``.
            TypeError: ``inference`` is not a bool.

        Examples:
            >>> import namedax as nx
            >>> drop = nx.nn.Dropout.init(0.1, broadcast_axes="position")
            >>> drop.pdrop, drop.broadcast_axes, bool(drop.inference)
            (0.1, ('position',), False)
        """
        del key
        return cls(pdrop, broadcast_axes, inference)

    @property
    def inference(self) -> InferenceFlag:
        """Whether dropout is off by default (a bool-like flag; see the class docstring)."""
        return self._inference.flag

    @module_call
    def __call__(self, x: NamedArray, *, key: Any = None, inference: Any = None) -> NamedArray:
        """Apply dropout to ``x``.

        Args:
            x: a NamedArray.
            key: a PRNG key, required unless dropout is off.
            inference: True turns dropout off for this call; None uses the module's ``inference``.
                A traced boolean scalar selects at run time, as in `dropout`.

        Returns:
            A NamedArray with the axes of ``x``.

        Raises:
            ValueError: dropout may be active and ``key`` is None.
            TypeError: ``x`` is a plain array (name its axes first with `namedax.named`).
        """
        if inference is None:
            inference = self.inference
        return dropout(x, self.pdrop, self.broadcast_axes, inference=inference, key=key)
