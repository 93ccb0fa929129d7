"""`Conv` and `ConvTranspose`: convolutions over named spatial axes (haliax's names and ``init``).

A convolution names its spatial axes (``Spatial``, one to three in practice), its input channel
axis ``In`` and its output channel axis ``Out``. The input may hold its axes in any order and any
number of other (batch) axes; the output has the input's axes in the input's order, ``In``
replaced by ``Out`` and each spatial axis keeping its name with its new size.

Underneath is one `jax.lax.conv_general_dilated`: the batch axes are moved to the front and merged
into one (XLA's convolution has exactly one batch dimension), and the other axes keep their
layout, described to XLA by `jax.lax.ConvDimensionNumbers` rather than transposed.

The weight is a NamedArray over ``(Out, In, *kernel)``: its ``In`` axis has ``In.size // groups``
entries and its kernel axes carry the spatial names with the kernel sizes. Both the weight and the
bias start uniform in ``+-1 / sqrt(fan_in)``, ``fan_in = In.size // groups * prod(kernel_size)``
(haliax's and PyTorch's initialisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from .. import random as nxr
from ..core._axis import Axis, AxisSelection, axis_name, to_selectors
from ..core._named_array import AxisNotFoundError, NamedArray, _new
from ..random import _check_key
from ._util import module_call

Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

__all__ = ["Conv", "ConvTranspose"]


def _per_axis(value: int | Sequence[int], n: int, op: str, what: str) -> tuple[int, ...]:
    """One int per spatial axis: an int is repeated, a sequence must have one per axis."""
    out = (value,) * n if isinstance(value, int) else tuple(value)
    if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out):
        raise ValueError(f"{op}: `{what}` must be a positive int or {n} of them (one per spatial axis), got {value!r}")
    return out


def _padding(padding: Padding, n: int, op: str) -> str | tuple[tuple[int, int], ...]:
    """``"SAME"`` / ``"VALID"``, or one ``(low, high)`` pair per spatial axis (an int ``p`` is ``(p, p)``)."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f'{op}: `padding` must be "SAME", "VALID", an int or (low, high) pairs, got {padding!r}')
        return padding.upper()
    items = [padding] * n if isinstance(padding, int) else list(padding)
    pairs = []
    for p in items:
        if isinstance(p, int) and not isinstance(p, bool):
            p = (p, p)
        if not (isinstance(p, Sequence) and len(p) == 2 and all(isinstance(v, int) for v in p)):
            raise ValueError(f"{op}: `padding` entries must be ints or (low, high) pairs of ints, got {padding!r}")
        pairs.append((int(p[0]), int(p[1])))
    if len(pairs) != n:
        raise ValueError(f"{op}: `padding` needs one entry per spatial axis ({n}), got {padding!r}")
    return tuple(pairs)


class _ConvBase(eqx.Module):
    weight: NamedArray
    bias: NamedArray | None
    Spatial: tuple[str, ...] = eqx.field(static=True)
    In: Axis = eqx.field(static=True)
    Out: Axis = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    stride: tuple[int, ...] = eqx.field(static=True)
    padding: str | tuple[tuple[int, int], ...] = eqx.field(static=True)
    dilation: tuple[int, ...] = eqx.field(static=True)
    groups: int = eqx.field(static=True)

    @classmethod
    def init(
        cls,
        Spatial: AxisSelection,
        In: Axis,
        Out: Axis,
        kernel_size: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        key: Any,
        dtype: Any = None,
    ) -> Self:
        """A new convolution (`Conv` or `ConvTranspose`, whichever class it is called on) with random weights.

        Args:
            Spatial: the spatial axis, or several (names or Axes; sizes are not needed).
            In: the input channel axis.
            Out: the output channel axis (another name than ``In``).
            kernel_size: an int for every spatial axis, or one per axis in ``Spatial``'s order.
            stride: the window stride (for `ConvTranspose` the upsampling factor), an int or one per
                spatial axis.
            padding: ``"SAME"`` (the default, as in flax; haliax's default is 0), ``"VALID"``, an int
                for every side, or one int or ``(low, high)`` pair per spatial axis (for
                `ConvTranspose`, `jax.lax.conv_transpose`'s pairs: see its class docstring).
            dilation: the kernel dilation (``rhs_dilation``), an int or one per spatial axis.
            groups: the feature group count; it divides ``In.size`` and ``Out.size``.
            use_bias: add a bias over ``Out``.
            key: a PRNG key.
            dtype: the parameters' dtype (default: jax's default float).

        Returns:
            An instance of the class it is called on.

        Raises:
            ValueError: names collide, a per-axis setting has the wrong length, or ``groups`` does
                not divide the channels.
            TypeError: ``In`` or ``Out`` is not an `Axis`, or ``key`` is not a key.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> conv = nx.nn.Conv.init("time", nx.Axis("in", 4), nx.Axis("out", 6), 5, groups=2,
            ...                        padding="VALID", key=jax.random.key(0))
            >>> conv.weight.shape
            {'out': 6, 'in': 2, 'time': 5}
            >>> conv(nx.ones({"in": 4, "time": 10})).shape
            {'out': 6, 'time': 6}
        """
        op = f"{cls.__name__}.init"
        names = tuple(axis_name(s, op) for s in to_selectors(Spatial, op))
        if not names:
            raise ValueError(f"{op}: `Spatial` names no axis")
        for what, ax in (("In", In), ("Out", Out)):
            if type(ax) is not Axis:
                raise TypeError(f"{op}: `{what}` must be an Axis (its size is the number of channels), got {ax!r}")
        taken = [In.name, Out.name, *names]
        if len(set(taken)) != len(taken):
            raise ValueError(f"{op}: In={In}, Out={Out} and Spatial={names} must all have different names")
        n = len(names)
        if not isinstance(groups, int) or groups < 1 or In.size % groups or Out.size % groups:
            raise ValueError(f"{op}: `groups`={groups!r} must be a positive int dividing In={In} and Out={Out}")
        kernel = _per_axis(kernel_size, n, op, "kernel_size")
        k_w, k_b = jax.random.split(_check_key(op, key))
        fan_in = In.size // groups * math.prod(kernel)
        lim = 1.0 / math.sqrt(fan_in)
        shape = (Out, In.resize(In.size // groups)) + tuple(Axis(s, k) for s, k in zip(names, kernel, strict=True))
        weight = nxr.uniform(k_w, shape, dtype=dtype, minval=-lim, maxval=lim)
        bias = nxr.uniform(k_b, (Out,), dtype=dtype, minval=-lim, maxval=lim) if use_bias else None
        return cls(
            weight=weight, bias=bias, Spatial=names, In=In, Out=Out, kernel_size=kernel,
            stride=_per_axis(stride, n, op, "stride"), padding=_padding(padding, n, op),
            dilation=_per_axis(dilation, n, op, "dilation"), groups=groups,
        )  # fmt: skip

    def _apply(self, x: NamedArray, op: str, conv) -> NamedArray:
        if not isinstance(x, NamedArray):
            raise TypeError(f"{op}: the input must be a NamedArray, got {type(x).__name__}")
        have = {a.name: a for a in x.axes}
        for name in (self.In.name, *self.Spatial):
            if name not in have:
                raise AxisNotFoundError(
                    f"{op}: the input {x.axes} has no axis {name!r} (In={self.In}, Spatial={self.Spatial})"
                )
        if have[self.In.name].size != self.In.size:
            raise ValueError(f"{op}: input channel axis {have[self.In.name]} should have size {self.In.size}")
        if self.Out.name in have:
            raise ValueError(f"{op}: the input {x.axes} already has the output axis {self.Out}; rename it")
        core = {self.In.name, *self.Spatial}
        batch = [i for i, a in enumerate(x.axes) if a.name not in core]
        rest = [i for i, a in enumerate(x.axes) if a.name in core]
        a = x.array
        if batch != list(range(len(batch))):
            a = jnp.transpose(a, batch + rest)
        bshape = tuple(x.axes[i].size for i in batch)
        a = a.reshape((math.prod(bshape),) + a.shape[len(batch) :])
        rest_names = [x.axes[i].name for i in rest]
        lhs = (0, 1 + rest_names.index(self.In.name)) + tuple(1 + rest_names.index(s) for s in self.Spatial)
        dn = lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=tuple(range(2 + len(self.Spatial))), out_spec=lhs)
        y = conv(a, self.weight.array, dn)
        sizes = dict(zip(rest_names, y.shape[1:], strict=True))
        y = y.reshape(bshape + y.shape[1:])
        order = batch + rest
        if order != list(range(len(order))):
            y = jnp.transpose(y, [order.index(i) for i in range(len(order))])
        axes = tuple(
            self.Out if a.name == self.In.name else Axis(a.name, sizes[a.name]) if a.name in core else a for a in x.axes
        )
        out = _new(y, axes)
        return out if self.bias is None else out + self.bias


class Conv(_ConvBase):
    """An N-dimensional convolution over named spatial axes (haliax's ``Conv``).

    Built by ``Conv.init`` (below). Equal to `jax.lax.conv_general_dilated` on the positional
    arrays (window strides ``stride``, ``rhs_dilation=dilation``, ``feature_group_count=groups``),
    plus the bias. Output sizes follow XLA: with explicit padding ``(lo, hi)``,
    ``(size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1``; ``"SAME"`` gives
    ``ceil(size / stride)``.

    Attributes:
        weight: over ``(Out, In with In.size // groups entries, *kernel axes named as Spatial)``.
        bias: over ``(Out,)``, or None.
        Spatial: the names of the spatial axes (static); the per-axis settings follow this order.
        In, Out: the channel axes (static).
        kernel_size, stride, dilation: one int per spatial axis; padding: ``"SAME"``, ``"VALID"``
            or one ``(low, high)`` pair per spatial axis; groups: the feature group count.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> Batch, H, W = nx.Axis("batch", 2), nx.Axis("height", 8), nx.Axis("width", 8)
        >>> C, D = nx.Axis("channels", 3), nx.Axis("features", 4)
        >>> conv = nx.nn.Conv.init((H, W), C, D, kernel_size=3, stride=2, key=jax.random.key(0))
        >>> conv.weight.axes
        (Axis('features', 4), Axis('channels', 3), Axis('height', 3), Axis('width', 3))
        >>> conv(nx.ones((Batch, H, W, C))).axes
        (Axis('batch', 2), Axis('height', 4), Axis('width', 4), Axis('features', 4))
    """

    @module_call
    def __call__(self, x: NamedArray, *, key: Any = None) -> NamedArray:
        """Convolve ``x`` over its spatial axes.

        Args:
            x: a NamedArray holding ``In`` and every spatial axis; any other axes are batch axes.
            key: unused; accepted so that every module takes ``key=``.

        Returns:
            A NamedArray over ``x``'s axes in ``x``'s order, ``In`` replaced by ``Out`` and the
            spatial axes resized.

        Raises:
            AxisNotFoundError: ``x`` lacks ``In`` or a spatial axis.
            ValueError: ``In`` has another size in ``x``, or ``x`` already has ``Out``.
        """
        del key

        def conv(a, w, dn):
            return lax.conv_general_dilated(
                a, w, self.stride, self.padding, rhs_dilation=self.dilation, dimension_numbers=dn,
                feature_group_count=self.groups,
            )  # fmt: skip

        return self._apply(x, "Conv", conv)


def _transpose_padding(k: int, s: int, padding: str) -> tuple[int, int]:
    """`jax.lax.conv_transpose`'s padding for ``"SAME"`` / ``"VALID"`` (``k`` the dilated kernel size)."""
    if padding == "SAME":
        total = k + s - 2
        lo = k - 1 if s > k - 1 else -(-total // 2)
    else:
        total = k + s - 2 + max(k - s, 0)
        lo = k - 1
    return lo, total - lo


class ConvTranspose(_ConvBase):
    """A transposed ("fractionally strided") convolution over named spatial axes.

    Built by ``ConvTranspose.init``, which takes the arguments of ``Conv.init``; ``stride`` is the
    upsampling factor. Equal to `jax.lax.conv_transpose` on the positional arrays
    (``transpose_kernel=False``, flax's ``ConvTranspose``), extended to feature groups: with
    ``"SAME"`` padding the spatial sizes are multiplied by ``stride``. Explicit ``(low, high)``
    padding is `jax.lax.conv_transpose`'s, the padding of the stride-dilated input; PyTorch's (and
    haliax's) ``padding=p, output_padding=o`` is ``(d * (k - 1) - p, d * (k - 1) - p + o)`` per axis.

    Attributes:
        weight: over ``(Out, In with In.size // groups entries, *kernel axes named as Spatial)``.
        bias: over ``(Out,)``, or None.
        Spatial, In, Out, kernel_size, stride, padding, dilation, groups: as in `Conv`.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> up = nx.nn.ConvTranspose.init("length", nx.Axis("c", 2), nx.Axis("d", 3), 4, stride=2,
        ...                               key=jax.random.key(0))
        >>> up(nx.ones({"batch": 5, "length": 7, "c": 2})).shape
        {'batch': 5, 'length': 14, 'd': 3}
    """

    @module_call
    def __call__(self, x: NamedArray, *, key: Any = None) -> NamedArray:
        """Apply the transposed convolution; axes as in `Conv.__call__`."""
        del key
        pads = self.padding
        if isinstance(pads, str):
            kernel = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True)]
            pads = tuple(_transpose_padding(k, s, pads) for k, s in zip(kernel, self.stride, strict=True))

        def conv(a, w, dn):
            return lax.conv_general_dilated(
                a, w, (1,) * len(self.Spatial), pads, lhs_dilation=self.stride, rhs_dilation=self.dilation,
                dimension_numbers=dn, feature_group_count=self.groups,
            )  # fmt: skip

        return self._apply(x, "ConvTranspose", conv)
