"""State through the mapping transforms: which argument is the state, and what comes back.

`vmap`, `pmap` and `map` take a ``state=`` argument naming which argument of ``fn`` is the model
state (default: the argument that is an `equinox.nn.State`, if exactly one is). ``fn`` must then
return ``(out, new_state)``, ``new_state`` of the same PyTree structure as the state that came in
(equinox's ``y, state = layer(x, state)`` convention). Entries of the state are mapped like any
argument; what changes is the way back:

- an entry that came in mapped along an axis gets the axis back *where it was* (not in front);
- an entry that came in without the axis and is written with the same value for every element
  comes back unbatched, as it came;
- an entry that came in without the axis but is written with a value that differs along it is
  *unexpected*: ``unexpected_state`` decides ("raise", "warn" and return it with the axis in front,
  or "batch": return it so silently).

"Differs along the axis" is decided structurally while tracing, by JAX's batching itself: at each
vmap level every state entry that came in unbatched is passed through `probe`, an identity
`jax.custom_batching.custom_vmap` whose rule is told whether its input is batched. Nothing runs on
data, so the decision holds under `jax.jit`, and a write computed with a collective over the axis
(``nx.pmean(x, Batch)``) counts as the same for every element, as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from ..core._named_array import _is_named, _new

UnexpectedState = Literal["raise", "warn", "batch"]
_POLICIES = ("raise", "warn", "batch")


def check_options(state: Any, unexpected_state: Any, op: str) -> None:
    """Refuse malformed ``state`` / ``unexpected_state`` at construction."""
    ok = state is None or state is False or type(state) is str or (type(state) is int and state >= 0)
    if not ok:
        raise TypeError(
            f"{op}: `state` must name the state argument: a positional index (int >= 0), a parameter name "
            f"(str), None (the argument that is an eqx.nn.State, if any) or False (no state), got {state!r}"
        )
    if unexpected_state not in _POLICIES:
        raise ValueError(f"{op}: `unexpected_state` must be one of {_POLICIES}, got {unexpected_state!r}")


def find_state(
    state: Any, names: Sequence[str], args: tuple, kwargs: dict, op: str
) -> tuple[int | None, str | None] | None:
    """Where the state argument is in this call: ``(position, None)``, ``(None, keyword)``, or None
    when there is no state. ``names`` are ``fn``'s positional parameter names."""
    if state is False:
        return None
    if state is None:
        found = [(i, None) for i, a in enumerate(args) if isinstance(a, eqx.nn.State)]
        found += [(None, k) for k, v in kwargs.items() if isinstance(v, eqx.nn.State)]
        if len(found) > 1:
            where = [f"args[{i}]" if k is None else repr(k) for i, k in found]
            raise ValueError(
                f"{op}: several arguments are eqx.nn.State ({', '.join(where)}); say which is the state "
                "with state=<index or name>, or bundle them into one argument"
            )
        return found[0] if found else None
    if type(state) is int:
        if state < len(args):
            return state, None
        if state < len(names) and names[state] in kwargs:
            return None, names[state]
        raise ValueError(f"{op}: `state={state}` names positional argument {state}, but only {len(args)} were given")
    if state in kwargs:
        return None, state
    if state in names and names.index(state) < len(args):
        return names.index(state), None
    raise ValueError(f"{op}: `state={state!r}` names an argument that was not passed (parameters: {list(names)})")


def split_output(out: Any, state_in: Any, op: str, label: str) -> tuple[Any, Any]:
    """``(out, new_state)`` from ``fn``'s return value, checked against the state that came in."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"{op}: with a state argument ({label!r}), the function must return a pair (out, new_state), "
            f"got {type(out).__name__}; pass state=False to treat {label!r} as an ordinary argument"
        )
    new = out[1]
    td_in = jax.tree.structure(state_in, is_leaf=_is_named)
    td_out = jax.tree.structure(new, is_leaf=_is_named)
    if td_in != td_out:
        raise ValueError(
            f"{op}: the returned state must have the structure of the state argument {label!r}; it came in "
            f"as {td_in} and went out as {td_out}"
        )
    return out


def leaf_paths(label: str, state: Any) -> list[str]:
    """A readable path for every leaf of ``state`` (NamedArrays are leaves); an `equinox.nn.State`
    at the top shows its entries by their keys (``state['Model.norm.index']``)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_named)[0]]
    keys = state.tree_flatten()[1] if isinstance(state, eqx.nn.State) else None
    out = []
    for p in paths:
        if keys is not None and p and isinstance(p[0], jax.tree_util.FlattenedIndexKey):
            head = keys[p[0].key]
            out.append(label + f"[{head!r}]" + jax.tree_util.keystr(tuple(p[1:])))
        else:
            out.append(label + jax.tree_util.keystr(tuple(p)))
    return out


def probe(values: list, axis_name: Any) -> list[bool]:
    """Which of ``values`` (traced inside the vmap over JAX axis ``axis_name``) are batched along it.

    An identity `custom_vmap` over ``(values, axis_index)``: the axis index is batched at exactly
    this level, so the rule runs at this level (not an outer one) and reports the others' flags."""
    seen: list = []

    @custom_vmap
    def ident(xs, m):
        return xs, m

    @ident.def_vmap
    def _rule(axis_size, in_batched, xs, m):
        del axis_size
        seen.append(list(in_batched[0]))
        return (xs, m), (in_batched[0], True)

    ident(values, jax.lax.axis_index(axis_name))
    return seen[0] if seen else [False] * len(values)


def unexpected(op: str, policy: str, path: str, axis: str) -> None:
    """Apply the policy to an entry that came in without ``axis`` and is written differently along it."""
    msg = (
        f"{op}: state entry {path!r} came in without axis {axis!r}, but the function writes it with a value "
        f"that differs along {axis!r} (it depends on the mapped element)"
    )
    if policy == "raise":
        same = "" if op == "map" else f" (e.g. reduce with nx.pmean(..., {axis!r}))"
        raise ValueError(
            msg + ". Give the entry the axis on the way in (e.g. nx.broadcast_axis(entry, axis)) so each element "
            f"has its own; write a value that is the same for every element{same}; or pass "
            f"unexpected_state='batch' (or 'warn') to get it back with {axis!r} in front"
        )
    if policy == "warn":
        warnings.warn(msg + f"; it is returned with {axis!r} in front", UserWarning, stacklevel=5)


def place(leaf: Any, batched: Sequence[bool], in_pos: Sequence[int | None]) -> Any:
    """Lay out a returned state entry: it arrives with one leading dimension per level where it is
    batched (outermost first); each level it came in mapped at goes back to its position on the way
    in (positions taken as the levels removed them, outermost first), newly batched levels stay in
    front. ``leaf`` is a NamedArray or a plain array."""
    if not any(p is not None for p in in_pos):
        return leaf
    arr = leaf.array if _is_named(leaf) else leaf
    levels = [k for k, b in enumerate(batched) if b]
    lead = dict(zip(levels, range(len(levels)), strict=True))
    cur = list(range(len(levels), jnp.ndim(arr)))
    for k in reversed(range(len(in_pos))):
        p = in_pos[k]
        if p is not None:
            cur.insert(min(p, len(cur)), lead[k])
    perm = [lead[k] for k in levels if in_pos[k] is None] + cur
    if perm == list(range(len(perm))):
        return leaf
    arr = jnp.transpose(arr, perm)
    return _new(arr, tuple(leaf.axes[i] for i in perm)) if _is_named(leaf) else arr


class Plan:
    """How a mapped call's state entries come back: for each output leaf that is state (by flat
    index over the output, NamedArrays as leaves), the levels where it is batched and the positions
    it came in mapped at. `fix` lays the entries out once the leading dimensions are in place."""

    __slots__ = ("entries",)

    def __init__(self, entries: dict[int, tuple[tuple[bool, ...], tuple[int | None, ...]]]):
        self.entries = entries

    def unbatched(self) -> set[int]:
        return {i for i, (b, _) in self.entries.items() if not any(b)}

    def fix(self, out: Any) -> Any:
        leaves, td = jax.tree.flatten(out, is_leaf=_is_named)
        for i, (b, pos) in self.entries.items():
            leaf = leaves[i]
            if _is_named(leaf) or eqx.is_array(leaf):
                leaves[i] = place(leaf, b, pos)
        return td.unflatten(leaves)


def classify(
    vals: list, is_state: list[bool], mapped_in: list, k: int, axis_name: Any, op: str, policy: str,
    path: Callable[[int], str], name: str,
) -> list[bool]:
    """Which of the flat output arrays ``vals`` leave vmap level ``k`` batched: every output that is
    not state; state mapped in at this level; state that came in unbatched and is written batched
    (after ``policy`` has had its say)."""
    flags = [True] * len(vals)
    ask = [i for i, s in enumerate(is_state) if s and mapped_in[i][k] is None]
    if ask:
        got = probe([vals[i] for i in ask], axis_name)
        for i, b in zip(ask, got, strict=True):
            if b:
                unexpected(op, policy, path(i), name)
            flags[i] = b
    return flags
