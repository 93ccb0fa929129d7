"""haliax's ``nn`` call forms on namedax's modules.

`MLP` and `Stacked` are subclasses of namedax's, with haliax's ``init`` signatures (``width=``,
``prevent_cse=``) and haliax's call rule for `Stacked`: a plain array whose first dimension is the
number of layers is sliced per layer (namedax passes plain arrays whole and slices only NamedArrays
holding the layer axis, so the adapter names those arrays by the layer axis and unwraps each slice).
`BlockSeq` is haliax's Python-loop stack, built by namedax's `Stacked.init` and unstacked.
`standardize` and the losses forward to namedax's reductions and `cross_entropy`.

    >>> import jax
    >>> import namedax.compat.haliax as hax
    >>> mlp = hax.nn.MLP.init(hax.Axis("x", 3), hax.Axis("y", 2), width=8, depth=1, key=jax.random.key(0))
    >>> mlp.layers[0].Out
    Axis('mlp', 8)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ... import nn as _nn
from ... import ops as _ops
from ...core._axis import Axis
from ...core._named_array import NamedArray, _is_named, named

# ---- Linear and MLP ---------------------------------------------------------------------------


def _no_dot_general(dot_general: Any, op: str) -> None:
    if dot_general is not None:
        raise TypeError(f"{op}: `dot_general` is not supported by namedax (it has no quantised dot)")


class Linear(_nn.Linear):
    """namedax's `namedax.nn.Linear`; ``init`` also takes haliax's ``dot_general=None``.

    haliax 1.3's default layout was ``out_first=False``; later haliax and namedax default to
    ``out_first=True`` (PyTorch's). The layout changes the weight's axis order, not the result.
    """

    @classmethod
    def init(cls, In: Any, Out: Any, *, key: Any, dot_general: Any = None, **kwargs: Any) -> Linear:  # type: ignore[override]
        """`namedax.nn.Linear.init`, refusing a non-None ``dot_general``.

        Examples:
            >>> import jax
            >>> import namedax.compat.haliax as hax
            >>> lin = hax.nn.Linear.init(hax.Axis("x", 3), hax.Axis("y", 2), key=jax.random.key(0), dot_general=None)
            >>> lin.weight.axes
            (Axis('y', 2), Axis('x', 3))
        """
        _no_dot_general(dot_general, "Linear.init")
        return super().init(In, Out, key=key, **kwargs)


class MLP(_nn.MLP):
    """namedax's `namedax.nn.MLP` with haliax's ``init(Input, Output, width, depth, ...)`` keywords."""

    @classmethod
    def init(  # type: ignore[override]
        cls,
        Input: Any,
        Output: Any,
        width: int | Axis,
        depth: int,
        activation: Callable[[NamedArray], NamedArray] = _nn.relu,
        *,
        use_bias: bool = True,
        use_final_bias: bool = True,
        key: Any,
        dot_general: Any = None,
        **kwargs: Any,
    ) -> MLP:
        """haliax's signature; forwards to `namedax.nn.MLP.init` (``width`` is its ``Hidden``).

        Raises:
            TypeError: ``dot_general`` is given (namedax has no pluggable dot_general).

        Examples:
            >>> import jax
            >>> import namedax.compat.haliax as hax
            >>> M = hax.Axis("m", 4)
            >>> mlp = hax.nn.MLP.init(hax.Axis("x", 3), hax.Axis("y", 2), width=M, depth=2, key=jax.random.key(0))
            >>> [layer.Out for layer in mlp.layers]
            [Axis('m', 4), Axis('m2', 4), Axis('y', 2)]
        """
        _no_dot_general(dot_general, "MLP.init")
        return super().init(Input, Output, width, depth, activation, key=key, use_bias=use_bias,
                            use_final_bias=use_final_bias, **kwargs)  # fmt: skip


# ---- Stacked and BlockSeq ----------------------------------------------------------------------


def _per_layer(Layers: Axis, args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple[bool, ...]]:
    """haliax's rule in namedax's terms: plain arrays leading with ``Layers.size`` become
    NamedArrays over ``Layers`` (and placeholder names); the mask says which, to unwrap them."""
    leaves, tree = jax.tree.flatten((args, kwargs), is_leaf=_is_named)
    mask = tuple(
        not _is_named(a) and eqx.is_array(a) and np.ndim(a) > 0 and np.shape(a)[0] == Layers.size for a in leaves
    )
    leaves = [
        named(a, (Layers, *(f"__haliax_dim_{i}" for i in range(1, np.ndim(a))))) if m else a
        for a, m in zip(leaves, mask, strict=True)
    ]
    args, kwargs = jax.tree.unflatten(tree, leaves)
    return args, kwargs, mask


@functools.cache
def _unwrapping(mask: tuple[bool, ...], keep_outputs: bool) -> Callable[..., Any]:
    # one function per mask, so namedax's eager cache (keyed on the function) is reused across calls
    def call(layer, x, *args, **kwargs):
        leaves, tree = jax.tree.flatten((args, kwargs), is_leaf=_is_named)
        # namedax already unwraps a layer's typed key; other marked leaves are still NamedArrays
        leaves = [a.array if m and _is_named(a) else a for a, m in zip(leaves, mask, strict=True)]
        args, kwargs = jax.tree.unflatten(tree, leaves)
        return layer(x, *args, **kwargs)

    return call


class Stacked(_nn.Stacked):
    """namedax's `namedax.nn.Stacked` with haliax's keywords and haliax's slicing of plain arrays.

    ``Stacked.init(Block, Module, *, gradient_checkpointing=False, prevent_cse=False)``;
    ``prevent_cse`` is accepted and ignored (namedax's scan does not need it). ``stack.Block`` is
    ``stack.Layers``. In `fold` and `scan`, a plain array whose first dimension is the number of
    layers is sliced per layer, as in haliax (e.g. ``key=jax.random.split(key, Block.size)``).

    Examples:
        >>> import jax
        >>> import namedax.compat.haliax as hax
        >>> Block, E = hax.Axis("block", 3), hax.Axis("e", 2)
        >>> stack = hax.nn.Stacked.init(Block, hax.nn.Dropout)(0.5)
        >>> y = stack.fold(hax.ones(E), key=jax.random.split(jax.random.key(0), 3), inference=True)
        >>> y.array.tolist(), stack.Block
        ([1.0, 1.0], Axis('block', 3))
    """

    @classmethod
    def init(  # type: ignore[override]
        cls, Block: Axis, module: type, *, gradient_checkpointing: Any = False, prevent_cse: bool = False, **kwargs: Any
    ) -> Callable[..., Stacked]:
        """haliax's signature; forwards to `namedax.nn.Stacked.init`."""
        del prevent_cse
        return super().init(Block, module, gradient_checkpointing=gradient_checkpointing, **kwargs)

    @property
    def Block(self) -> Axis:
        """haliax's name for the layer axis: `Layers`."""
        return self.Layers

    def fold(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """`namedax.nn.Stacked.fold`, plain arrays of ``Block.size`` rows sliced per layer."""
        args, kwargs, mask = _per_layer(self.Layers, args, kwargs)
        return self.fold_via(_unwrapping(mask, False))(x, *args, **kwargs)

    def scan(self, x: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """`namedax.nn.Stacked.scan`, plain arrays of ``Block.size`` rows sliced per layer."""
        args, kwargs, mask = _per_layer(self.Layers, args, kwargs)
        return self.scan_via(_unwrapping(mask, True))(x, *args, **kwargs)


def _slice_out(Block: Axis, i: int, leaf: Any) -> Any:
    if _is_named(leaf):
        return leaf[Block.name, i] if any(a.name == Block.name for a in leaf.axes) else leaf
    return leaf[i] if eqx.is_array(leaf) and np.ndim(leaf) else leaf


class BlockSeq(eqx.Module):
    """haliax's ``BlockSeq``: the layers as a list, run by a Python loop (traced once per layer).

    Built by namedax's `Stacked.init` and `Stacked.unstacked`, so the layers equal those of a
    `Stacked` built from the same arguments. `fold` and `scan` slice per-layer arguments as haliax
    does: NamedArrays holding ``Block``, and plain arrays along their first dimension.

    Examples:
        >>> import jax
        >>> import namedax.compat.haliax as hax
        >>> seq = hax.nn.BlockSeq.init(hax.Axis("block", 2), hax.nn.LayerNorm)(hax.Axis("e", 3))
        >>> len(seq.blocks), seq.fold(hax.ones({"e": 3})).axes
        (2, (Axis('e', 3),))
    """

    blocks: list
    Block: Axis = eqx.field(static=True)
    gradient_checkpointing: bool = eqx.field(static=True, default=False)

    @classmethod
    def init(
        cls, Block: Axis, module: type, *, gradient_checkpointing: bool = False, prevent_cse: bool = False
    ) -> Callable[..., BlockSeq]:
        """Curried, as `Stacked.init`: ``BlockSeq.init(Block, Module)(*args, **kwargs)``."""
        del prevent_cse

        def build(*args: Any, **kwargs: Any) -> BlockSeq:
            stacked = _nn.Stacked.init(Block, module)(*args, **kwargs)
            return cls(list(stacked.unstacked()), Block, gradient_checkpointing)

        return build

    def _blocks(self):
        for i, block in enumerate(self.blocks):
            yield i, (eqx.filter_checkpoint(block) if self.gradient_checkpointing else block)

    def fold(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """``x = block(x, *args_i, **kwargs_i)`` for each block in order."""
        for i, block in self._blocks():
            a, k = jax.tree.map(functools.partial(_slice_out, self.Block, i), (args, kwargs), is_leaf=_is_named)
            x = block(x, *a, **k)
        return x

    def scan(self, x: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Like `fold`, each block returning ``(carry, output)``; outputs stacked along ``Block``."""
        outs = []
        for i, block in self._blocks():
            a, k = jax.tree.map(functools.partial(_slice_out, self.Block, i), (args, kwargs), is_leaf=_is_named)
            x, y = block(x, *a, **k)
            outs.append(y)

        def stack(*ys):
            return _ops.stack(self.Block, ys) if _is_named(ys[0]) else jnp.stack(ys)

        return x, jax.tree.map(stack, *outs, is_leaf=_is_named)

    def unstacked(self) -> list:
        """The blocks."""
        return self.blocks


# ---- functions --------------------------------------------------------------------------------


def standardize(
    x: NamedArray,
    axis: Any,
    *,
    mean: NamedArray | None = None,
    variance: NamedArray | None = None,
    epsilon: float = 1e-5,
    where: NamedArray | None = None,
) -> NamedArray:
    """haliax's ``standardize`` (`jax.nn.standardize` by name): ``(x - mean) / sqrt(variance + epsilon)``
    over ``axis``, the moments from `namedax.mean` unless given.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> hax.nn.standardize(hax.named(jnp.array([1.0, 3.0]), "c"), "c").array
        Array([-1., 1.], dtype=float32)
    """
    if mean is None:
        mean = _ops.mean(x, axis, where=where)
    if variance is None:  # jax.nn.standardize's formula: E[x^2] - E[x]^2
        variance = _ops.mean(_ops.square(x), axis, where=where) - _ops.square(mean)
    return (x - mean) * _ops.rsqrt(variance + epsilon)


class _Unspecified:
    pass


UNSPECIFIED: Any = _Unspecified()


def _reduce(loss: NamedArray, reduction: Any, where: NamedArray | None, reduction_axis: Any) -> Any:
    if reduction is None:
        return loss
    reduction = _ops.mean if reduction is UNSPECIFIED else reduction
    return reduction(loss, axis=reduction_axis, where=where)


def cross_entropy_loss(
    logits: NamedArray,
    Label: Any,
    targets: NamedArray,
    reduction: Any = UNSPECIFIED,
    where: NamedArray | None = None,
    reduction_axis: Any = None,
) -> NamedArray:
    """haliax's ``cross_entropy_loss(logits, Label, targets, reduction, where, reduction_axis)``:
    `namedax.nn.cross_entropy` per position, then ``reduction`` (default `namedax.mean`; None keeps
    every position) over ``reduction_axis``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> logits = hax.named(jnp.array([[0.0, 0.0], [0.0, 0.0]]), ("b", "c"))
        >>> targets = hax.nn.one_hot(hax.named(jnp.array([0, 1]), "b"), hax.Axis("c", 2))
        >>> hax.nn.cross_entropy_loss(logits, "c", targets).array  # log 2
        Array(0.6931472, dtype=float32)
    """
    loss = _nn.cross_entropy(logits, targets, Label, where=where, reduction=None)
    return _reduce(loss, reduction, where, reduction_axis)


def binary_cross_entropy_loss(
    logits: NamedArray,
    targets: NamedArray,
    reduction: Any = UNSPECIFIED,
    where: NamedArray | None = None,
    reduction_axis: Any = None,
) -> NamedArray:
    """haliax's ``binary_cross_entropy_loss``: `namedax.nn.binary_cross_entropy_with_logits` per
    element, then ``reduction`` as in `cross_entropy_loss`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax.compat.haliax as hax
        >>> z = hax.named(jnp.zeros(2), "b")
        >>> hax.nn.binary_cross_entropy_loss(z, z + 1.0).array  # log 2
        Array(0.6931472, dtype=float32)
    """
    loss = _nn.binary_cross_entropy_with_logits(logits, targets, where=where, reduction=None)
    return _reduce(loss, reduction, where, reduction_axis)
