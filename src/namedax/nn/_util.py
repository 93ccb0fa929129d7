"""Small helpers shared by the modules of namedax.nn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from .._axis import Axis, AxisSpec, check_unique, to_axes
from .._core import NamedArray


def spec(axes: AxisSpec | Axis, op: str, what: str) -> Axis | tuple[Axis, ...]:
    """An axis spec as stored in a module's static fields: one `Axis` as is, else a tuple of them
    (hashable, so that jit can cache on it)."""
    if type(axes) is Axis:
        return axes
    if isinstance(axes, str):
        raise TypeError(f"{op}: `{what}` needs sizes: pass Axis({axes!r}, size), not the name {axes!r}")
    if not isinstance(axes, Mapping | tuple | list):
        raise TypeError(f"{op}: `{what}` must be an Axis, a sequence of Axis or a {{name: size}} mapping, got {axes!r}")
    try:
        out = to_axes(axes)
    except TypeError as e:
        raise TypeError(f"{op}: `{what}`: {e}") from None
    if not out:
        raise ValueError(f"{op}: `{what}` names no axis")
    check_unique(out, f"{op} (`{what}`)")
    return out


def key_of(key: Any, op: str) -> Any:
    """A single PRNG key; a NamedArray without axes (one layer's key from ``nx.random.split``
    through `Stacked` or `namedax.vmap`) is unwrapped."""
    if isinstance(key, NamedArray):
        if key.axes:
            raise ValueError(
                f"{op}: `key` is a NamedArray of keys over {key.axes}; pass a single key (map over "
                "those axes with nx.vmap or Stacked so that each call gets one)"
            )
        key = key.array
    if key is None:
        raise TypeError(f"{op}: a PRNG `key` is required, e.g. key=jax.random.key(0)")
    dtype = getattr(key, "dtype", None)
    ndim = getattr(key, "ndim", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
    if (typed and ndim == 0) or (not typed and dtype == "uint32" and ndim == 1):
        return key
    hint = ""
    if typed and ndim:
        hint = (
            "; for one key per layer of a Stacked (or per element of a vmap) split the key by name, "
            "nx.random.split(key, Layers): plain arrays are passed whole, never sliced"
        )
    raise TypeError(
        f"{op}: `key` must be one jax.random.key (or legacy PRNGKey), got {type(key).__name__} "
        f"with shape {getattr(key, 'shape', None)} and dtype {dtype}{hint}"
    )
