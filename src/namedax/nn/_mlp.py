"""`MLP`: a stack of `Linear` layers of different shapes with an activation between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax

from .. import random as nxr
from ..core._axis import Axis, AxisSpec, to_axes
from ..core._named_array import NamedArray
from ._activations import relu
from ._linear import Linear
from ._util import module_call, spec


class MLP(eqx.Module):
    """A multilayer perceptron from ``In`` to ``Out`` (haliax's ``MLP``).

    ``depth`` hidden layers of width ``Hidden``, so ``depth + 1`` `Linear` layers, with
    ``activation`` after every one but the last. Consecutive hidden layers cannot share an axis name
    (a weight cannot hold an axis twice), so they alternate between ``Hidden`` and
    ``Hidden.alias(Hidden.name + "2")``, as in haliax.

    Attributes:
        layers: the `Linear` layers, input first.
        activation: the activation between layers (static).
        In: the input axis or axes (static).
        Out: the output axis or axes (static).

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> In, Out, Hidden = nx.Axis("x", 3), nx.Axis("y", 2), nx.Axis("mlp", 16)
        >>> mlp = nx.nn.MLP.init(In, Out, Hidden, depth=2, key=jax.random.key(0))
        >>> [layer.weight.axes for layer in mlp.layers]  # doctest: +NORMALIZE_WHITESPACE
        [(Axis('mlp', 16), Axis('x', 3)), (Axis('mlp2', 16), Axis('mlp', 16)), (Axis('y', 2), Axis('mlp2', 16))]
        >>> mlp(nx.ones({"batch": 5, "x": 3})).axes
        (Axis('batch', 5), Axis('y', 2))
    """

    layers: tuple[Linear, ...]
    activation: Callable[[NamedArray], NamedArray] = eqx.field(static=True)
    In: Axis | tuple[Axis, ...] = eqx.field(static=True)
    Out: Axis | tuple[Axis, ...] = eqx.field(static=True)

    @classmethod
    def init(
        cls,
        In: AxisSpec | Axis,
        Out: AxisSpec | Axis,
        Hidden: Axis | int,
        depth: int,
        activation: Callable[[NamedArray], NamedArray] = relu,
        *,
        key: Any,
        use_bias: bool = True,
        use_final_bias: bool = True,
        out_first: bool = True,
        init_scale: float = 1.0,
        dtype: Any = None,
    ) -> MLP:
        """A new MLP; each `Linear` is initialised by `Linear.init` with its own key.

        Args:
            In: the input axis or axes.
            Out: the output axis or axes.
            Hidden: the hidden axis, or its size (then it is named ``"mlp"``).
            depth: the number of hidden layers (0 gives one `Linear` from ``In`` to ``Out``).
            activation: a function of a NamedArray, e.g. `namedax.nn.relu` or `namedax.nn.gelu`.
            key: a PRNG key.
            use_bias: biases on the hidden layers.
            use_final_bias: a bias on the last layer.
            out_first: the weights' layout, as in `Linear.init`.
            init_scale: a factor on every weight's scale, as in `Linear.init`.
            dtype: the parameters' float dtype (default: JAX's default float).

        Returns:
            An `MLP` (an instance of ``cls``).

        Raises:
            ValueError: ``depth`` is negative, or the hidden names clash with ``In`` or ``Out``.
            TypeError: ``Hidden`` is neither an `Axis` nor an int, or ``activation`` is not callable.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> mlp = nx.nn.MLP.init(nx.Axis("x", 3), nx.Axis("y", 1), 8, depth=1, key=jax.random.key(0))
            >>> len(mlp.layers), mlp.layers[0].Out
            (2, Axis('mlp', 8))
        """
        op = "MLP.init"
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"{op}: `depth` must be an int >= 0 (the number of hidden layers), got {depth!r}")
        if isinstance(Hidden, int) and not isinstance(Hidden, bool):
            Hidden = Axis("mlp", Hidden)
        if type(Hidden) is not Axis:
            raise TypeError(f"{op}: `Hidden` must be an Axis or an int, got {Hidden!r}")
        if not callable(activation):
            raise TypeError(f"{op}: `activation` must be callable, got {activation!r}")
        In, Out = spec(In, op, "In"), spec(Out, op, "Out")
        Hidden2 = Hidden.alias(Hidden.name + "2")
        outer = {a.name for a in to_axes(In) + to_axes(Out)}
        hidden = [Hidden if i % 2 == 0 else Hidden2 for i in range(depth)]
        clash = sorted(outer & {a.name for a in hidden})
        if clash:
            raise ValueError(f"{op}: the hidden axes {Hidden}, {Hidden2} clash with In={In} or Out={Out} on {clash}")
        keys = jax.random.split(nxr._check_key(op, key), depth + 1)
        dims: list = [In, *hidden, Out]
        layers = tuple(
            Linear.init(
                dims[i], dims[i + 1], key=keys[i], use_bias=use_bias if i < depth else use_final_bias,
                out_first=out_first, init_scale=init_scale, dtype=dtype,
            )
            for i in range(depth + 1)
        )
        return cls(layers=layers, activation=activation, In=In, Out=Out)

    @module_call
    def __call__(self, x: NamedArray, *, key: Any = None) -> NamedArray:
        """Apply the layers in order, with the activation between them (``key`` is unused).

        Args:
            x: a NamedArray holding the ``In`` axes.

        Returns:
            A NamedArray over the other axes of ``x``, then ``Out``.

        Raises:
            TypeError: ``x`` is a plain array (name its axes first with `namedax.named`).
        """
        del key
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)
