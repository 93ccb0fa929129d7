"""Axis rules: which named axis lives on which mesh axis.

A rule maps a logical axis name (an `Axis` name such as ``"batch"``) to a mesh axis name, a tuple of
mesh axis names (the axis is split over their product), or ``None`` (replicated). Rules are ordered:
an array whose axes two rules would put on one mesh axis gets it for the name whose rule comes first,
and the other name stays replicated (the flax / MaxText convention), so a spec never names a mesh
axis twice. A name may have several rules: the first whose mesh axes are still free applies.

The active rules come from the innermost `axis_rules` context, else from `set_axis_rules`, else there
are none (everything replicated). The mesh is JAX's own: `jax.set_mesh`, or a ``mesh=`` argument.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import jax
from jax.sharding import AbstractMesh, Mesh, PartitionSpec

from ..core._kernels import is_eager

MeshAxes: TypeAlias = "str | tuple[str, ...] | None"
RulesLike: TypeAlias = "Mapping[str, MeshAxes] | Iterable[tuple[str, MeshAxes]]"
Rules: TypeAlias = "tuple[tuple[str, tuple[str, ...] | None], ...]"

_GLOBAL: list[Rules] = [()]
_ACTIVE: contextvars.ContextVar[Rules | None] = contextvars.ContextVar("namedax_axis_rules", default=None)


def normalize_rules(rules: Any, op: str) -> Rules:
    """Rules as a tuple of ``(name, mesh axes tuple or None)`` pairs, validated."""
    if isinstance(rules, Mapping):
        pairs = list(rules.items())
    elif isinstance(rules, Iterable) and not isinstance(rules, str | bytes):
        pairs = list(rules)
    else:
        raise TypeError(f"{op}: `rules` must be a dict or a list of (axis name, mesh axes) pairs, got {rules!r}")
    out = []
    for pair in pairs:
        if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
            raise TypeError(f"{op}: each rule must be an (axis name, mesh axes) pair, got {pair!r}")
        name, mesh_axes = pair
        if not isinstance(name, str):
            raise TypeError(f"{op}: a rule's axis name must be a str, got {name!r} in {pair!r}")
        if mesh_axes is None:
            out.append((name, None))
            continue
        if isinstance(mesh_axes, str):
            axes = (mesh_axes,)
        else:
            axes = tuple(mesh_axes) if isinstance(mesh_axes, Sequence) else ()
        if not axes or not all(isinstance(a, str) for a in axes) or len(set(axes)) != len(axes):
            raise TypeError(
                f"{op}: the rule for {name!r} must give a mesh axis name, a tuple of distinct mesh axis names "
                f"or None, got {mesh_axes!r}"
            )
        out.append((name, axes))
    return tuple(out)


def set_axis_rules(rules: RulesLike) -> None:
    """Set the axis rules used wherever no `axis_rules` context is active.

    Args:
        rules: a dict ``{axis name: mesh axis | tuple of mesh axes | None}`` or a list of such pairs
            (a list keeps the order that decides conflicts, and may give one name several rules).

    Examples:
        >>> import namedax as nx
        >>> nx.sharding.set_axis_rules({"batch": "data"})
        >>> nx.sharding.current_axis_rules()
        (('batch', ('data',)),)
        >>> nx.sharding.set_axis_rules({})   # back to no rules: everything replicated
    """
    _GLOBAL[0] = normalize_rules(rules, "set_axis_rules")


@contextlib.contextmanager
def axis_rules(rules: RulesLike) -> Iterator[None]:
    """Use ``rules`` inside a ``with`` block (they replace, not extend, the outer rules).

    Args:
        rules: a dict ``{axis name: mesh axis | tuple of mesh axes | None}`` or a list of such pairs.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
        >>> with nx.sharding.axis_rules({"batch": "data", "embed": None}):
        ...     nx.sharding.pspec(x)
        P('data', None)
        >>> nx.sharding.pspec(x)       # no rules outside the block: replicated
        P(None, None)
    """
    token = _ACTIVE.set(normalize_rules(rules, "axis_rules"))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current_axis_rules() -> Rules:
    """The active rules, normalised to ``((name, mesh axes tuple or None), ...)``.

    Examples:
        >>> import namedax as nx
        >>> with nx.sharding.axis_rules([("batch", "data"), ("mlp", ("data", "model"))]):
        ...     nx.sharding.current_axis_rules()
        (('batch', ('data',)), ('mlp', ('data', 'model')))
    """
    active = _ACTIVE.get()
    return _GLOBAL[0] if active is None else active


def resolve_rules(rules: Any, op: str) -> Rules:
    return current_axis_rules() if rules is None else normalize_rules(rules, op)


def assign(names: Sequence[str], rules: Rules) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Mesh axes for each name of one array, in rule order: ``(assigned, skipped)`` where ``skipped``
    says why a name with a rule stays replicated (its mesh axes were taken by an earlier rule)."""
    present = set(names)
    assigned: dict[str, tuple[str, ...]] = {}
    decided: set[str] = set()
    owner: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, mesh_axes in rules:
        if name not in present or name in decided:
            continue
        if mesh_axes is None:
            decided.add(name)
            skipped.pop(name, None)
            continue
        taken = [m for m in mesh_axes if m in owner]
        if taken:
            skipped.setdefault(name, f"{taken[0]!r} taken by {owner[taken[0]]!r}")
            continue
        assigned[name] = mesh_axes
        decided.add(name)
        skipped.pop(name, None)
        owner.update((m, name) for m in mesh_axes)
    return assigned, skipped


def spec_of(names: Sequence[str], assigned: Mapping[str, tuple[str, ...]]) -> PartitionSpec:
    entries = []
    for n in names:
        m = assigned.get(n)
        entries.append(None if m is None else m[0] if len(m) == 1 else m)
    return PartitionSpec(*entries)


def context_mesh() -> Mesh | AbstractMesh | None:
    """The mesh set by `jax.set_mesh` (concrete when there is one, else the abstract one), or None."""
    if is_eager():  # get_mesh refuses to run under a trace
        mesh = jax.sharding.get_mesh()
        if not mesh.empty:
            return mesh
    abstract = jax.sharding.get_abstract_mesh()
    return None if abstract.empty else abstract


def resolve_mesh(op: str, mesh: Mesh | AbstractMesh | None) -> Mesh | AbstractMesh:
    """``mesh``, else the one set by `jax.set_mesh`; an error naming ``op`` when there is none."""
    if mesh is None:
        mesh = context_mesh()
        if mesh is None:
            raise ValueError(f"{op}: no device mesh: pass `mesh=` or set one with `jax.set_mesh(mesh)`")
    return mesh


def check_against_mesh(op: str, rules: Rules, mesh: Mesh | AbstractMesh) -> None:
    """Every mesh axis a rule names exists in ``mesh``."""
    shape = dict(mesh.shape)
    for name, mesh_axes in rules:
        for m in mesh_axes or ():
            if m not in shape:
                raise ValueError(
                    f"{op}: the rules map axis {name!r} to mesh axis {m!r}, which the mesh does not have "
                    f"(mesh axes: {shape})"
                )


def check_divisible(op: str, axes: Sequence[Any], assigned: Mapping[str, tuple[str, ...]], mesh, where: str) -> None:
    """Each assigned axis's size is a multiple of the product of its mesh axes' sizes."""
    shape = dict(mesh.shape)
    for ax in axes:
        mesh_axes = assigned.get(ax.name)
        if mesh_axes is None:
            continue
        n = math.prod(shape[m] for m in mesh_axes)
        if ax.size % n:
            sizes = ", ".join(f"{m!r}: {shape[m]}" for m in mesh_axes)
            raise ValueError(
                f"{op}: axis {ax.name!r} of size {ax.size}{where} cannot be split over mesh axes {mesh_axes} "
                f"(sizes {{{sizes}}}, {n} shards): {ax.size} is not a multiple of {n}. Change the axis size "
                f"or the rule for {ax.name!r}."
            )
