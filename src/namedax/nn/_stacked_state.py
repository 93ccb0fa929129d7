"""State through `Stacked`: which argument is the state, which of its leaves are per layer, and
how they go into the layer loop and come back.

A state leaf is **per layer** when it is a NamedArray holding ``Layers`` (each layer reads and
writes its own slice, and the slices come back stacked, ``Layers`` where it was), or when it
belongs to an entry of an `equinox.nn.State` that one of the stack's own `StateIndex`es owns
(built by ``eqx.nn.make_with_state(Stacked.init(...))``; a plain array there leads with
``Layers.size``, as the stack's plain parameters do). Every other leaf is **shared**: in
`Stacked.fold` / `scan` it is threaded through the layers in order (a layer reads what the one
before wrote, as in a Python loop over the layers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import equinox as eqx
import jax
import numpy as np

from ..core._axis import Axis
from ..core._named_array import _is_named, _new, rearrange
from ..transforms import _state
from ..transforms._mapping import positional_params


def find(
    state: Any, fn: Callable, lead: tuple, args: tuple, kwargs: dict, op: str
) -> tuple[int | None, str | None] | None:
    """Where the state is among ``args`` / ``kwargs`` (``(index into args, None)`` or ``(None, key)``),
    or None. ``lead`` are the arguments ``fn`` gets before ``args`` (the layer, and the carry in a
    loop); ``state`` counts ``fn``'s parameters, as `namedax.vmap`'s does."""
    if state is None and lead:
        # the carry holding a State would be read whole by every layer: refuse it clearly
        found = [leaf for leaf in jax.tree.leaves(lead[1:], is_leaf=_is_state) if _is_state(leaf)]
        if found:
            raise TypeError(
                f"{op}: the carry holds an eqx.nn.State; pass the state as an argument after the carry "
                "(stack.fold(x, state)) so that each layer reads and writes its own slice"
            )
    _state.check_options(state, "raise", op)
    where = _state.find_state(state, positional_params(fn)[0], (None,) * len(lead) + args, kwargs, op)
    if where is None or where[0] is None:
        return where
    if where[0] < len(lead):
        what = "the layer" if where[0] == 0 else "the carry"
        raise ValueError(f"{op}: `state={state!r}` names {what}; the state is an argument after it")
    return where[0] - len(lead), None


def take(where: tuple[int | None, str | None], args: tuple, kwargs: dict) -> Any:
    pos, key = where  # (index, None) or (None, key)
    return args[cast(int, pos)] if key is None else kwargs[key]


def put(where: tuple[int | None, str | None], args: tuple, kwargs: dict, value: Any) -> tuple[tuple, dict]:
    pos, key = where
    if key is None:
        pos = cast(int, pos)  # (index, None) or (None, key)
        return args[:pos] + (value,) + args[pos + 1 :], kwargs
    return args, {**kwargs, key: value}


def _is_state(x: Any) -> bool:
    return isinstance(x, eqx.nn.State)


def _is_index(x: Any) -> bool:
    return isinstance(x, eqx.nn.StateIndex)


def _describe(leaf: Any, drop: str | None = None) -> tuple:
    """A leaf's kind, axes or shape, and dtype (without axis ``drop``, or the leading dimension of a
    plain array when ``drop`` is given: what a layer sees of a per-layer leaf)."""
    if _is_named(leaf):
        return ("NamedArray", tuple(a for a in leaf.axes if a.name != drop), jax.dtypes.result_type(leaf.array))
    shape = np.shape(leaf)
    return ("array", shape[1:] if drop is not None else shape, jax.dtypes.result_type(leaf))


class LayerState:
    """One call's state argument, its leaves (NamedArrays are leaves) sorted into per-layer and shared.

    Per-layer leaves go to the layer loop (or vmap) as NamedArrays holding ``Layers``: plain ones
    are wrapped with placeholder names, as `Stacked` does with plain parameters. `inner` builds the
    state a layer sees from such (sliced) leaves, `outer` takes a layer's new state back to them,
    checking it is like the old, and `restore` builds the returned state from the stacked leaves."""

    def __init__(self, stacked: Any, Layers: Axis, st: Any, label: str, op: str):
        self.Layers, self.op, self.label = Layers, op, label
        leaves, self.treedef = jax.tree.flatten(st, is_leaf=_is_named)
        self.paths = _state.leaf_paths(label, st)
        markers = {i.marker for i in jax.tree.leaves(stacked, is_leaf=_is_index) if _is_index(i)}
        owned = _owned_leaves(st, markers)
        self.plain: dict[int, tuple[Axis, ...]] = {}  # per-layer plain leaf -> its placeholder axes
        self.per: list[int] = []
        for i, leaf in enumerate(leaves):
            holds = _is_named(leaf) and any(a.name == Layers.name for a in leaf.axes)
            if owned[i] and not holds:
                shape = np.shape(leaf)
                if _is_named(leaf) or not shape or shape[0] != Layers.size:
                    raise ValueError(
                        f"{op}: state entry {self.paths[i]!r} belongs to a layer of the stack but has "
                        f"{leaf.axes if _is_named(leaf) else f'shape {shape}'}, without {Layers}; build the "
                        "state with eqx.nn.make_with_state(Stacked.init(...))(...) so it holds one value per layer"
                    )
                self.plain[i] = tuple(Axis(f"__stacked_dim{j}", n) for j, n in enumerate(shape[1:], 1))
                leaves[i] = _new(leaf, (Layers,) + self.plain[i])
                holds = True
            if holds:
                self.per.append(i)
        per = set(self.per)
        self.shared = [i for i in range(len(leaves)) if i not in per]
        self.leaves = leaves  # plain per-layer leaves wrapped
        # what each leaf looks like inside a layer
        self.looks = [
            _describe(self._unwrap(i, v), Layers.name if i in self.per else None) for i, v in enumerate(leaves)
        ]

    def part(self, leaves: list) -> tuple[list, list]:
        """``leaves`` as ``(per-layer leaves, shared leaves)``."""
        return [leaves[i] for i in self.per], [leaves[i] for i in self.shared]

    def merge(self, per: list, shared: list) -> list:
        """The inverse of `part`."""
        out = [None] * len(self.leaves)
        for i, v in zip(self.per + self.shared, per + shared, strict=True):
            out[i] = v
        return out

    def _unwrap(self, i: int, leaf: Any) -> Any:
        return leaf.array if i in self.plain else leaf

    def template(self) -> Any:
        """The state as it came in (for structure checks)."""
        return self.treedef.unflatten([self._unwrap(i, v) for i, v in enumerate(self.leaves)])

    def wrapped(self) -> Any:
        """The state with its plain per-layer leaves wrapped."""
        return self.treedef.unflatten(self.leaves)

    def inner(self, leaves: list) -> Any:
        """The state a layer sees, from its (sliced, wrapped) leaves."""
        return self.treedef.unflatten([self._unwrap(i, v) for i, v in enumerate(leaves)])

    def outer(self, new: Any) -> list:
        """A layer's new state as (wrapped) leaves, checked to look like the old."""
        leaves = jax.tree.leaves(new, is_leaf=_is_named)
        for i, leaf in enumerate(leaves):
            if _describe(leaf) != self.looks[i]:
                raise ValueError(
                    f"{self.op}: a layer must return its state like it got it; state entry {self.paths[i]!r} "
                    f"went in as {_fmt(self.looks[i])} and came out as {_fmt(_describe(leaf))}"
                )
        return [_new(v, self.plain[i]) if i in self.plain else v for i, v in enumerate(leaves)]

    def restore(self, leaves: list) -> Any:
        """The returned state, from stacked per-layer leaves (``Layers`` goes back where it was)."""
        out = []
        for i, v in enumerate(leaves):
            if i in self.plain:
                v = v.array
            elif i in self.per and v.axes != self.leaves[i].axes:
                v = rearrange(v, self.leaves[i].axes)
            out.append(v)
        return self.treedef.unflatten(out)


def _fmt(d: tuple) -> str:
    return f"{d[0]} {d[1]} {d[2]}"


def _owned_leaves(st: Any, markers: set) -> list[bool]:
    """For every leaf of ``st`` (NamedArrays are leaves): whether it sits in an `eqx.nn.State`
    entry whose key is one of ``markers``."""
    owned: list[bool] = []
    for node in jax.tree.leaves(st, is_leaf=lambda x: _is_named(x) or _is_state(x)):
        if _is_state(node):
            values, keys = node.tree_flatten()
            for value, key in zip(values, keys, strict=True):
                owned += [key in markers] * len(jax.tree.leaves(value, is_leaf=_is_named))
        else:
            owned.append(False)
    return owned
