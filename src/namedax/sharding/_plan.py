"""plan: where every NamedArray of a PyTree would live, and what it costs per device, before running."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np
from jax.sharding import AbstractMesh, Mesh, PartitionSpec

from ..core._axis import Axis
from ..core._named_array import _is_named
from ._rules import assign, check_against_mesh, check_divisible, resolve_mesh, resolve_rules, spec_of


@dataclasses.dataclass(frozen=True)
class PlanRow:
    """One NamedArray leaf of a `Plan`: where it goes and what each device holds of it.

    Examples:
        >>> import jax, namedax as nx
        >>> mesh = jax.sharding.AbstractMesh((4,), ("data",))
        >>> row = nx.sharding.plan({"w": nx.zeros({"embed": 8})}, {"embed": "data"}, mesh=mesh).rows[0]
        >>> row.path, row.spec, row.bytes_total, row.bytes_per_device, row.replicated
        ("['w']", P('data',), 32, 8, False)
    """

    path: str
    axes: tuple[Axis, ...]
    spec: PartitionSpec
    dtype: np.dtype
    bytes_total: int
    bytes_per_device: int
    note: str

    @property
    def replicated(self) -> bool:
        """True when no axis is split: every device holds the whole array."""
        return all(e is None for e in self.spec)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The placement of a PyTree's NamedArrays on a mesh (made by `plan`); prints as a table.

    Examples:
        >>> import jax, namedax as nx
        >>> mesh = jax.sharding.AbstractMesh((2,), ("data",))
        >>> p = nx.sharding.plan({"w": nx.zeros({"embed": 8}), "b": nx.zeros({"out": 3})}, {"embed": "data"}, mesh=mesh)
        >>> p.bytes_per_device, p.bytes_total, [r.replicated for r in p.rows]
        (28, 44, [True, False])
    """

    rows: tuple[PlanRow, ...]
    mesh_shape: dict[str, int]

    @property
    def bytes_per_device(self) -> int:
        """The total bytes every device holds (the largest share where shards are uneven)."""
        return sum(r.bytes_per_device for r in self.rows)

    @property
    def bytes_total(self) -> int:
        """The bytes of the whole PyTree, counted once."""
        return sum(r.bytes_total for r in self.rows)

    def __str__(self) -> str:
        head = ("path", "axes", "spec", "dtype", "per device", "note")
        body = [
            (r.path or "(root)", " ".join(f"{a.name}:{a.size}" for a in r.axes) or "()", _spec_str(r.spec),
             str(r.dtype), _bytes(r.bytes_per_device), r.note or ("replicated" if r.replicated else ""))
            for r in self.rows
        ]  # fmt: skip
        widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        mesh = ", ".join(f"{k}={v}" for k, v in self.mesh_shape.items())
        lines = [f"sharding plan on mesh ({mesh})", fmt.format(*head), *(fmt.format(*row) for row in body)]
        lines.append(f"total per device: {_bytes(self.bytes_per_device)} (of {_bytes(self.bytes_total)})")
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


def _spec_str(spec: PartitionSpec) -> str:
    def one(e):
        return "-" if e is None else e if isinstance(e, str) else "(" + ",".join(e) + ")"

    return "(" + ", ".join(one(e) for e in spec) + ")"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def plan(tree: Any, rules: Any = None, mesh: Mesh | AbstractMesh | None = None) -> Plan:
    """Where every NamedArray leaf of ``tree`` would be placed under the rules, and its bytes per device.

    Works on real arrays and on shapes alone (e.g. the output of `equinox.filter_eval_shape` of a
    model's ``init``), so a model can be planned before it is built.

    Args:
        tree: a PyTree holding NamedArrays (or NamedArrays of `jax.ShapeDtypeStruct`).
        rules: the axis rules; the active ones (`axis_rules`) if omitted.
        mesh: the mesh; the one set by `jax.set_mesh` if omitted.

    Returns:
        A `Plan`: ``rows`` (path, axes, spec, dtype, bytes, bytes per device, note), the totals
        ``bytes_per_device`` and ``bytes_total``; ``print(plan)`` shows a table.

    Raises:
        ValueError: no mesh, a rule naming a mesh axis the mesh does not have, or an axis size that
            its mesh axes do not divide.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import namedax as nx
        >>> mesh = jax.sharding.AbstractMesh((2, 2), ("data", "model"))
        >>> params = {"w": nx.named(jnp.zeros((8, 16)), ("embed", "mlp")),
        ...           "b": nx.named(jnp.zeros(16), ("mlp",))}
        >>> p = nx.sharding.plan(params, {"mlp": "model", "embed": "data"}, mesh=mesh)
        >>> p.bytes_per_device, p.bytes_total
        (160, 576)
        >>> print(p)
        sharding plan on mesh (data=2, model=2)
        path    axes             spec          dtype    per device  note
        ['b']   mlp:16           (model)       float32  32 B
        ['w']   embed:8 mlp:16   (data, model) float32  128 B
        total per device: 160 B (of 576 B)
    """
    rules = resolve_rules(rules, "plan")
    mesh = resolve_mesh("plan", mesh)
    check_against_mesh("plan", rules, mesh)
    shape = dict(mesh.shape)
    rows = []
    for path, x in jax.tree_util.tree_leaves_with_path(tree, is_leaf=_is_named):
        if not _is_named(x):
            continue
        names = [a.name for a in x.axes]
        where = f" (at {jax.tree_util.keystr(path)})"
        assigned, skipped = assign(names, rules)
        check_divisible("plan", x.axes, assigned, mesh, where)
        dtype = np.dtype(x.array.dtype)
        total = math.prod(a.size for a in x.axes) * dtype.itemsize
        shards = math.prod(shape[m] for axes in assigned.values() for m in axes)
        note = "; ".join(f"{n} replicated: {why}" for n, why in skipped.items())
        rows.append(PlanRow(jax.tree_util.keystr(path), tuple(x.axes), spec_of(names, assigned), dtype, total,
                            total // shards, note))  # fmt: skip
    return Plan(tuple(rows), shape)
