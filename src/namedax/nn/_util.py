"""Small helpers shared by the modules of namedax.nn."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import numpy as np
from jax.core import Tracer

from ..core._axis import Axis, AxisSpec, check_unique, to_axes
from ..core._named_array import NamedArray

F = TypeVar("F", bound=Callable[..., Any])


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


def check_named(x: Any, op: str, what: str = "the input") -> None:
    """Refuse a plain array where a module needs a NamedArray: modules find their axes by name, so
    the axes must be named first (`namedax.named`)."""
    if isinstance(x, NamedArray):
        return
    shape = getattr(x, "shape", None)
    kind = f"a plain array of shape {tuple(shape)}" if shape is not None else type(x).__name__
    raise TypeError(
        f"{op}: {what} must be a NamedArray, got {kind}; name its axes first, e.g. "
        f"nx.named(x, ('batch', 'embed')) with one name per dimension"
    )


def module_call(fn: F) -> F:
    """Wrap a module's ``__call__(self, x, ...)``: check that ``x`` is a NamedArray and run the call
    under ``jax.named_scope(<class name>)``, so the module shows by name in profiles and HLO."""

    @functools.wraps(fn)
    def call(self, x, *args, **kwargs):
        name = type(self).__name__
        check_named(x, name)
        with jax.named_scope(name):
            return fn(self, x, *args, **kwargs)

    return call  # type: ignore[return-value]


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
