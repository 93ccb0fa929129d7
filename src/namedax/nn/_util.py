"""Small helpers shared by the modules of namedax.nn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from ..core._axis import Axis, AxisSpec, check_unique, to_axes
from ..core._named_array import NamedArray


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


# ---- the ``inference`` flag ------------------------------------------------------------------------
#
# ``Dropout.inference`` and ``BatchNorm.inference`` must be reachable by `equinox.nn.inference_mode`
# (an `equinox.tree_at` on every ``.inference``), so they cannot be static fields; a plain bool leaf
# (equinox's own choice) would break `jax.grad` over the model ("grad requires real- or complex-valued
# inputs") and become a tracer under `jax.jit`. So the flag is a PyTree node without leaves, its bool
# kept in the tree's structure as a static field is: JAX transforms see no leaf, and jit retraces when
# it flips. `tree_at` replaces the node with a bare bool; the slot around it (its parent node) wraps
# that bool again when it is rebuilt, so the module keeps a leafless flag whatever sets it.


class InferenceFlag:
    """The ``inference`` flag of a namedax module: a bool (``if layer.inference``, ``== True``,
    ``bool(...)``) that is a PyTree node without leaves, so that JAX transforms treat it as static."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __eq__(self, other: object) -> bool:
        return self.value == (other.value if isinstance(other, InferenceFlag) else other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class InferenceSlot:
    """A module's field holding its `InferenceFlag`; it turns whatever replaces the flag (a bool from
    `equinox.nn.inference_mode` or `equinox.tree_at`) back into one, or refuses it."""

    __slots__ = ("flag", "owner")

    def __init__(self, value: Any, owner: str):
        self.owner = owner
        self.flag = value if isinstance(value, InferenceFlag) else InferenceFlag(_field_bool(value, owner))

    def __repr__(self) -> str:
        return repr(self.flag.value)


jax.tree_util.register_pytree_node(InferenceFlag, lambda f: ((), f.value), lambda value, _: InferenceFlag(value))
jax.tree_util.register_pytree_node(
    InferenceSlot, lambda s: ((s.flag,), s.owner), lambda owner, children: InferenceSlot(children[0], owner)
)


def _field_bool(value: Any, owner: str) -> bool:
    flag = inference_bool(value, owner)
    if flag is None:
        raise TypeError(
            f"{owner}: the `inference` field must be a concrete bool, got a traced value {value!r}: it is "
            "part of the model's structure (JAX transforms treat it as static), so set it outside "
            "jax.jit, e.g. eqx.nn.inference_mode(model) before the jitted call"
        )
    return flag


def inference_bool(value: Any, op: str) -> bool | None:
    """``value`` as a Python bool, or None when it is a traced boolean scalar (its value is only known
    at run time). Accepts bools, numpy bools and 0-d boolean arrays; refuses anything else."""
    if isinstance(value, bool | np.bool_ | InferenceFlag):
        return bool(value)
    if isinstance(value, jax.Array | np.ndarray) and value.shape == () and value.dtype == bool:
        if isinstance(value, Tracer):
            return None
        return bool(value)
    raise TypeError(
        f"{op}: `inference` must be a bool (or a boolean scalar array), got {type(value).__name__}: {value!r}"
    )
