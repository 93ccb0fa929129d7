"""Fourier transforms by axis name: `fft`, `ifft`, `rfft`, `irfft` (haliax's flat functions).

One function per transform, whose ``axis`` says what to transform: ``None`` the last axis; a name
that axis; an `Axis` that axis at the length of the `Axis` (cropped or zero-padded, as jax.numpy's
``n``; the result's axis is that `Axis`); a sequence of names or a ``{name: length or None or Axis}``
mapping several axes at once (jax.numpy's ``fftn`` family, in the order given). A transformed axis
keeps its name and place; `rfft` halves the last transformed axis (``n // 2 + 1``), `irfft` restores
it (``2 * (m - 1)`` unless a length is given).

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.ones((2, 8)), ("batch", "time"))
    >>> nx.rfft(x, "time").shape
    {'batch': 2, 'time': 5}
    >>> nx.irfft(nx.rfft(x, "time"), "time").shape
    {'batch': 2, 'time': 8}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import jax.numpy.fft as jfft

from ..core._axis import Axis, AxisSelector, axis_name
from ..core._named_array import NamedArray, _new, axis_index_in

FFTAxis: TypeAlias = "AxisSelector | Sequence[AxisSelector] | Mapping[AxisSelector, int | Axis | None] | None"
"""What `fft` and its kin transform: see the module docstring."""


def _resolve(x: NamedArray, axis: Any, op: str) -> list[tuple[int, int | None, Axis | None]]:
    """``(position, requested length or None, result Axis or None)`` per transformed axis."""
    if not isinstance(x, NamedArray):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    if axis is None:
        if not x.axes:
            raise ValueError(f"{op}: a 0-d array has no axis to transform")
        return [(x.ndim - 1, None, None)]
    if type(axis) is str or type(axis) is Axis:
        items: list[tuple[Any, Any]] = [(axis_name(axis, op), axis if type(axis) is Axis else None)]
    elif isinstance(axis, Mapping):
        items = list(axis.items())
    elif isinstance(axis, Sequence):
        items = [(a, None) for a in axis]
    else:
        raise TypeError(f"{op}: `axis` must be None, an axis, a sequence of axes or a mapping, got {axis!r}")
    out, seen = [], set()
    for key, val in items:
        i = axis_index_in(x.axes, axis_name(key, op), op)
        if i in seen:
            raise ValueError(f"{op}: axis {x.axes[i].name!r} is listed twice in axis={axis!r}")
        seen.add(i)
        if val is None:
            out.append((i, None, None))
        elif type(val) is Axis:
            if val.name != x.axes[i].name:
                raise ValueError(f"{op}: {val} given for axis {x.axes[i].name!r}; the name must stay the same")
            out.append((i, val.size, val))
        elif isinstance(val, int) and not isinstance(val, bool) and val > 0:
            out.append((i, val, None))
        else:
            raise ValueError(
                f"{op}: the length for axis {x.axes[i].name!r} must be a positive int, an Axis or None, got {val!r}"
            )
    return out


def _transform(op: str, one: Callable, many: Callable, real: str | None) -> Callable[..., NamedArray]:
    """A named transform; ``real`` is how the last transformed axis changes size: "half"
    (rfft: n // 2 + 1), "double" (irfft: 2 (m - 1) unless a length is given) or None."""

    def fn(x: NamedArray, axis: FFTAxis = None, norm: str | None = None) -> NamedArray:
        spec = _resolve(x, axis, op)
        axes = list(x.axes)
        sizes = []
        for k, (i, n, given) in enumerate(spec):
            last = k == len(spec) - 1
            size = n if n is not None else axes[i].size
            if real == "double" and last and n is None:
                size = 2 * (axes[i].size - 1)
            sizes.append(size)
            out = size // 2 + 1 if real == "half" and last else size
            axes[i] = given if given is not None and out == given.size else axes[i].resize(out)
        if len(spec) == 1:
            r = one(x.array, n=sizes[0], axis=spec[0][0], norm=norm)
        else:
            r = many(x.array, s=tuple(sizes), axes=tuple(i for i, _, _ in spec), norm=norm)
        return _new(r, tuple(axes))

    fn.__name__ = fn.__qualname__ = op
    return fn


fft = _transform("fft", jfft.fft, jfft.fftn, None)
fft.__doc__ = """`jax.numpy.fft.fft` (and ``fftn``) by axis name; ``axis`` as in `namedax.ops._fft`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]), ("batch", "time"))
        >>> nx.fft(x, "time").array
        Array([[1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j],
               [4.+0.j, 0.+0.j, 0.+0.j, 0.+0.j]], dtype=complex64)
        >>> nx.fft(x, nx.Axis("time", 8)).shape  # zero-padded to 8
        {'batch': 2, 'time': 8}
    """
ifft = _transform("ifft", jfft.ifft, jfft.ifftn, None)
ifft.__doc__ = """`jax.numpy.fft.ifft` (and ``ifftn``) by axis name; ``axis`` as in `namedax.fft`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([4.0, 0.0, 0.0, 0.0]), "freq")
        >>> nx.ifft(x, "freq").array.real
        Array([1., 1., 1., 1.], dtype=float32)
    """
rfft = _transform("rfft", jfft.rfft, jfft.rfftn, "half")
rfft.__doc__ = """`jax.numpy.fft.rfft` (and ``rfftn``) by axis name: the (last) transformed axis keeps its
    name with ``n // 2 + 1`` elements; ``axis`` as in `namedax.fft`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 1.0, 1.0, 1.0]), "time")
        >>> nx.rfft(x, "time").array
        Array([4.+0.j, 0.+0.j, 0.+0.j], dtype=complex64)
    """
irfft = _transform("irfft", jfft.irfft, jfft.irfftn, "double")
irfft.__doc__ = """`jax.numpy.fft.irfft` (and ``irfftn``) by axis name: the (last) transformed axis gets
    ``2 * (m - 1)`` elements, or the length given by an `Axis` or a mapping; ``axis`` as in `namedax.fft`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 2.0, 3.0, 4.0, 5.0]), "time")
        >>> nx.irfft(nx.rfft(x, "time"), nx.Axis("time", 5)).array.round(4)
        Array([1., 2., 3., 4., 5.], dtype=float32)
    """
