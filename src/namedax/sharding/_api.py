"""pspec, shard and describe: placement by name, done by JAX's own sharding machinery."""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..core._named_array import NamedArray, _is_named, _new
from ..ops import _linalg
from ._rules import (
    assign,
    check_against_mesh,
    check_divisible,
    context_mesh,
    current_axis_rules,
    resolve_mesh,
    resolve_rules,
    spec_of,
)


def _named_spec(op: str, x: NamedArray, rules, mesh) -> PartitionSpec:
    names = [a.name for a in x.axes]
    assigned, _ = assign(names, rules)
    if mesh is not None:
        check_divisible(op, x.axes, assigned, mesh, "")
    return spec_of(names, assigned)


def pspec(tree: Any, rules: Any = None) -> Any:
    """The `PartitionSpec` of a NamedArray under the axis rules (a PyTree of them for a PyTree).

    Each axis gets the mesh axes of its rule, in the order of the array's axes; axes without a rule,
    and axes whose mesh axes an earlier rule already took for this array, are replicated (``None``).
    Plain leaves get ``PartitionSpec()``. When a mesh is set (`jax.set_mesh`) the sizes are checked
    against it.

    Args:
        tree: a NamedArray or a PyTree holding NamedArrays.
        rules: the axis rules (a dict or list of pairs); the active ones (`axis_rules`) if omitted.

    Raises:
        ValueError: a sharded axis's size is not a multiple of its mesh axes' sizes, or a rule names a
            mesh axis the mesh does not have.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.zeros((8, 4, 6)), ("batch", "seq", "embed"))
        >>> nx.sharding.pspec(x, {"batch": "data", "embed": "model"})
        P('data', None, 'model')
        >>> nx.sharding.pspec({"x": x, "step": 3}, [("batch", ("data", "model"))])
        {'step': P(), 'x': P(('data', 'model'), None, None)}
    """
    rules = resolve_rules(rules, "pspec")
    mesh = context_mesh()
    if mesh is not None:
        check_against_mesh("pspec", rules, mesh)
    return jax.tree.map(
        lambda x: _named_spec("pspec", x, rules, mesh) if _is_named(x) else PartitionSpec(), tree, is_leaf=_is_named
    )


def _out_spec(out_axes) -> PartitionSpec:
    """The spec of a contraction's output under the active rules (ops' dot asks, on Explicit axes)."""
    names = [a.name for a in out_axes]
    return spec_of(names, assign(names, current_axis_rules())[0])


_linalg.out_spec_from_rules = _out_spec


def _is_tracer(a: Any) -> bool:
    return isinstance(a, jax.core.Tracer)


def shard(tree: Any, rules: Any = None, mesh: Mesh | None = None) -> Any:
    """Put every NamedArray of a PyTree where its names say; plain leaves are left alone.

    Outside `jax.jit` this places the data (`jax.device_put` with a `NamedSharding`). Inside
    `jax.jit` it constrains the layout (`jax.lax.with_sharding_constraint`) on a mesh of Auto axes,
    and reshards (`jax.sharding.reshard`) on a mesh with Explicit axes, which is the default of
    `jax.make_mesh`.

    Args:
        tree: a NamedArray or a PyTree holding NamedArrays.
        rules: the axis rules; the active ones (`axis_rules`) if omitted.
        mesh: the device mesh; the one set by `jax.set_mesh` if omitted.

    Raises:
        ValueError: no mesh is given or set, a rule names a mesh axis the mesh does not have, or a
            sharded axis's size is not a multiple of its mesh axes' sizes.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import namedax as nx
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
        >>> y = nx.sharding.shard(x, {"batch": "data"}, mesh=mesh)
        >>> y.array.sharding.spec
        P('data', None)
        >>> nx.sharding.describe(y)
        {'batch': 'data', 'embed': None}
    """
    rules = resolve_rules(rules, "shard")
    mesh = resolve_mesh("shard", mesh)
    check_against_mesh("shard", rules, mesh)
    explicit = AxisType.Explicit in tuple(mesh.axis_types)

    def place(x):
        if not _is_named(x):
            return x
        spec = _named_spec("shard", x, rules, mesh)
        a = x.array
        if _is_tracer(a):
            target = NamedSharding(mesh, spec) if isinstance(mesh, Mesh) else spec
            a = jax.sharding.reshard(a, target) if explicit else jax.lax.with_sharding_constraint(a, target)
        else:
            if not isinstance(mesh, Mesh):
                raise ValueError("shard: placing concrete data needs a concrete mesh: pass `mesh=` or use jax.set_mesh")
            a = jax.device_put(a, NamedSharding(mesh, spec))
        return _new(a, x.axes)

    return jax.tree.map(place, tree, is_leaf=_is_named)


def _entry(e: Any) -> Any:
    if e is None or e is PartitionSpec.UNCONSTRAINED:
        return None
    if isinstance(e, tuple):
        return e[0] if len(e) == 1 else e
    return e


def _describe_one(x: NamedArray) -> dict[str, Any]:
    a = x.array
    sharding = jax.typeof(a).sharding if _is_tracer(a) else getattr(a, "sharding", None)
    names = [ax.name for ax in x.axes]
    if isinstance(sharding, NamedSharding):
        spec = tuple(sharding.spec) + (None,) * (len(names) - len(sharding.spec))
        return {n: _entry(e) for n, e in zip(names, spec, strict=True)}
    if sharding is None or sharding.is_fully_replicated:
        return dict.fromkeys(names)
    raise TypeError(
        f"describe: the array with axes {x.axes} has a {type(sharding).__name__}, which does not name mesh axes; "
        "place it with nx.sharding.shard (a NamedSharding) to read its layout by name"
    )


def describe(x: Any) -> Any:
    """The sharding of a NamedArray by name: ``{axis name: mesh axis, tuple of mesh axes or None}``.

    Read from the array itself (its `NamedSharding`); inside `jax.jit` it is read from the traced
    value's type (`jax.typeof`), which carries the sharding on a mesh with Explicit axes. On Auto
    axes the compiler picks the layout after tracing, so a traced value reads as replicated.
    A PyTree gives a PyTree of such dicts (``None`` for plain leaves).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
        >>> nx.sharding.describe(x)          # one device: nothing is split
        {'batch': None, 'embed': None}
    """
    return jax.tree.map(lambda v: _describe_one(v) if _is_named(v) else None, x, is_leaf=_is_named)
