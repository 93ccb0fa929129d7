"""vmap over named axes.

``nx.vmap(f, Batch)`` maps ``f`` over the axis *named* ``batch``: every NamedArray argument that has
it is mapped along it wherever it sits, and inside ``f`` it lacks that axis; NamedArrays without it
are passed whole. Outputs get the axis back, in front. There are no ``in_axes`` to keep in sync with
the layout of the data; the names carry the information.

How it works: one call resolves, for every argument leaf and every mapped axis, a positional
``in_axes`` entry (the position of the axis in a NamedArray; the ``default`` / ``args`` / ``kwargs``
spec for a plain leaf), checks all sizes once, then runs one `jax.vmap` per axis (the last listed
innermost, so ``vmap(f, (A, B)) == vmap(vmap(f, B), A)``) over the flat list of mapped arrays, with
``axis_name`` the axis's name so collectives work by name. The innermost function rebuilds the
arguments (NamedArrays with their reduced axes), calls ``f`` once and hands back the output's arrays;
its other leaves pass through, as `equinox.filter_vmap` passes them. Nothing is traced twice, and under
jit the jaxpr is the one of the hand-written nested `jax.vmap`. Not nested `equinox.filter_vmap`:
the arguments are already resolved, and its per-level Module and partition passes cost more trace
time than everything namedax adds (benchmarks/bench_vmap.py).

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
    >>> x = nx.named(jnp.arange(6.0).reshape(3, 2), (Embed, Batch))
    >>> def first_over_embed(v):
    ...     return v["embed", 0] * 10
    >>> nx.vmap(first_over_embed, Batch)(x).array
    Array([ 0., 10.], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

import equinox as eqx
import jax

from ..core._axis import Axis, AxisSelection
from ..core._named_array import _is_named, _new
from . import _state
from ._mapping import (
    Resolved,
    Specs,
    arg_label,
    check_out_axes,
    eager_cached,
    make_specs,
    parse_axes,
    resolve,
    zero_if_array_else_none,
)
from ._state import UnexpectedState

_is_array = eqx.is_array

class _VmapWrapper:
    """The mapped function. A plain registered PyTree (``fn`` is its child, so arrays held by a
    callable Module stay visible to `equinox.filter_jit`), hashable by identity for `jax.jit`, and a
    descriptor, so it works as a method. Not an `equinox.Module`: building one costs ~1 us, not ~40."""

    def __init__(self, fun: Callable, axes: tuple, specs: Specs):
        self._fun, self._axes, self._specs = fun, axes, specs
        functools.update_wrapper(self, fun, updated=())  # not __dict__: fn may be a Module with fields

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return _Bound(self, instance)

    def __call__(self, /, *args, **kwargs):
        return _run_cached(self, args, kwargs)

    def __repr__(self):
        return f"vmap({self._fun!r}, {tuple(Axis(n, s) if s is not None else n for n, s in self._axes)})"


class _Bound:
    """``wrapper`` bound to an instance (a PyTree, like `equinox.Partial`, but cheap)."""

    __slots__ = ("wrapper", "instance")

    def __init__(self, wrapper: _VmapWrapper, instance: Any):
        self.wrapper, self.instance = wrapper, instance

    def __call__(self, /, *args, **kwargs):
        return _run_cached(self.wrapper, (self.instance, *args), kwargs)


jax.tree_util.register_pytree_node(
    _VmapWrapper, lambda w: ((w._fun,), (w._axes, w._specs)), lambda aux, ch: _VmapWrapper(ch[0], *aux)
)
jax.tree_util.register_pytree_node(
    _Bound, lambda b: ((b.wrapper, b.instance), None), lambda _, ch: _Bound(*ch)
)


def run(w: _VmapWrapper, args: tuple, kwargs: dict, *, op: str = "vmap", front: bool = False,
        jax_names: tuple | None = None):  # fmt: skip
    """Run the mapped call: resolve it, then execute it (with the state's way back if there is one).
    ``front=True`` leaves the state's mapped axes in front and returns ``(out, plan)`` (`pmap` and
    `map` lay them out later with ``plan.fix``; plan is None without state); ``jax_names`` overrides
    the JAX axis names (`map` classifies under a private one)."""
    r = resolve(w._fun, w._axes, w._specs, args, kwargs, op)
    if r.st is None:
        out = execute(w._fun, r, op)
        return (out, None) if front else out
    return _StatefulRun(w, r, args, kwargs, op, jax_names).execute(front)


_run_cached = eager_cached(run)


def _call(fun: Callable, r: Resolved, dyn: list, op: str) -> Any:
    """``fun`` on the arguments rebuilt from one element's slices, its outputs checked."""
    a, k = r.rebuild(dyn)
    out = fun(*a, **k)
    check_out_axes(out, {a.name for a in r.mapped}, op, _ADDED_BACK)
    return out


def _ADDED_BACK(clash: list) -> str:
    return f"which include the mapped axes {clash}; the mapped axes are added back to every output, so rename them"


class _FlatOut:
    """An output of ``fn``, flattened (NamedArrays as leaves) for the way out of the vmap levels: its
    arrays (a NamedArray's jax array) go through them, the rest stays here. ``owner[d]`` is the leaf
    index of array ``d``, ``axes[d]`` its NamedArray's axes (None for a plain array)."""

    __slots__ = ("td", "statics", "owner", "axes")

    def __init__(self, out: Any):
        leaves, self.td = jax.tree.flatten(out, is_leaf=_is_named)
        self.statics, self.owner, self.axes = leaves, [], []

    def arrays(self) -> list:
        out, leaves = [], self.statics
        for i, leaf in enumerate(leaves):
            if _is_named(leaf):
                if not _is_array(leaf.array):
                    continue
                self.axes.append(leaf.axes)
                out.append(leaf.array)
            elif _is_array(leaf):
                self.axes.append(None)
                out.append(leaf)
            else:
                continue
            self.owner.append(i)
            leaves[i] = None  # not kept: a tracer of the inner trace
        return out

    def build(self, vals: Sequence, lead: Callable[[int], tuple]) -> Any:
        """The output with array ``d`` replaced by ``vals[d]``; a NamedArray gets ``lead(d)`` in front."""
        leaves = list(self.statics)
        for d, (o, v, ax) in enumerate(zip(self.owner, vals, self.axes, strict=True)):
            leaves[o] = v if ax is None else _new(v, lead(d) + ax)
        return self.td.unflatten(leaves)


def execute(fun: Callable, r: Resolved, op: str) -> Any:
    """The mapped call without state: one `jax.vmap` per level, the last innermost, over the flat list
    of mapped arrays (already resolved: no `equinox.filter_vmap` needed to partition them); the
    output's non-arrays pass through, as `equinox.filter_vmap` passes them."""
    mapped = r.mapped
    box: list = []

    def innermost(dyn):
        flat = _FlatOut(_call(fun, r, dyn, op))
        box.append(flat)
        return flat.arrays()

    f = innermost
    for k in reversed(range(len(mapped))):
        f = jax.vmap(f, in_axes=(r.level_specs[k],), axis_name=mapped[k].name, axis_size=mapped[k].size)
    vals = f(r.dyn_arrays())
    return box[0].build(vals, lambda d: mapped)


class _StatefulRun:
    """The mapped call with a state argument. Every level returns (batched arrays, unbatched arrays);
    which is which is decided while tracing (see `_state`) and recorded in ``split``; ``flat`` is the
    flattened output (`_FlatOut`), ``n_y`` its number of leaves before the state."""

    def __init__(self, w: _VmapWrapper, r: Resolved, args: tuple, kwargs: dict, op: str, jax_names):
        self.fun, self.r, self.op, self.policy = w._fun, r, op, w._specs.policy
        st = cast(tuple, r.st)
        self.label = arg_label(w._fun, *st)
        self.state_val = args[cast(int, st[0])] if st[1] is None else kwargs[st[1]]  # (index, None) or (None, key)
        self.names_j = jax_names or tuple(a.name for a in r.mapped)
        self.flat: _FlatOut | None = None
        self.n_y = 0
        self.split: list = [None] * len(r.mapped)
        self._paths: list = []

    def innermost(self, dyn: list) -> list:
        out = _state.split_output(_call(self.fun, self.r, dyn, self.op), self.state_val, self.op, self.label)
        self.n_y = len(jax.tree.leaves(out[0], is_leaf=_is_named))
        self.flat = _FlatOut(out)
        return self.flat.arrays()

    def path(self, d: int) -> str:
        if not self._paths:
            self._paths.extend(_state.leaf_paths(self.label, self.state_val))
        return self._paths[cast(_FlatOut, self.flat).owner[d] - self.n_y]

    def level(self, k: int, inner: Callable) -> Callable:
        r, mapped = self.r, self.r.mapped

        def body(dyn):
            vals = inner(dyn)
            owner, n_y = cast(_FlatOut, self.flat).owner, self.n_y
            is_state = [o >= n_y for o in owner]
            mapped_in = [r.state_in[o - n_y] if o >= n_y else None for o in owner]
            flags = _state.classify(vals, is_state, mapped_in, k, self.names_j[k], self.op, self.policy, self.path,
                                    mapped[k].name)  # fmt: skip
            self.split[k] = flags
            return [v for v, b in zip(vals, flags, strict=True) if b], [
                v for v, b in zip(vals, flags, strict=True) if not b
            ]

        vm = jax.vmap(body, in_axes=(r.level_specs[k],), out_axes=(0, None), axis_name=self.names_j[k],
                      axis_size=mapped[k].size)  # fmt: skip

        def merged(dyn):
            b, u = vm(dyn)
            ib, iu = iter(b), iter(u)
            return [next(ib) if f else next(iu) for f in self.split[k]]

        return merged

    def execute(self, front: bool):
        r, n_lev = self.r, len(self.r.mapped)
        f = self.innermost
        for k in reversed(range(n_lev)):
            f = self.level(k, f)
        vals = f(r.dyn_arrays())
        flat, n_y = cast(_FlatOut, self.flat), self.n_y
        batched = [tuple(self.split[k][d] for k in range(n_lev)) for d in range(len(vals))]
        plan = _state.Plan({o: (batched[d], r.state_in[o - n_y]) for d, o in enumerate(flat.owner) if o >= n_y})
        out = flat.build(vals, lambda d: tuple(a for a, b in zip(r.mapped, batched[d], strict=True) if b))
        return (out, plan) if front else plan.fix(out)


@overload
def vmap(
    fn: None = None,
    axis: AxisSelection = ...,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable[[Callable], Callable]: ...


@overload
def vmap(
    fn: Callable,
    axis: AxisSelection,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable: ...


def vmap(
    fn: Callable | None = None,
    axis: AxisSelection | None = None,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable:
    """Map ``fn`` over one or several named axes.

    NamedArray arguments that have a mapped axis are mapped along it, wherever it sits, and inside
    ``fn`` they lack it; NamedArrays without it are passed whole. Other leaves follow ``default``,
    or the overrides ``args`` (per positional argument) and ``kwargs`` (per keyword argument).
    Every NamedArray output gets the mapped axes back in front, every other array output a leading
    dimension; outputs that are not arrays pass through. Inside ``fn`` the JAX axis name of each
    mapping is the axis's name, so `psum` and friends work by name.

    Args:
        fn: the function to map. Omit it for a decorator: ``@nx.vmap(axis=Batch)``.
        axis: one axis (an `Axis`, or a name if an argument has it), several (mapped with the last
            innermost; the outputs lead with them in the listed order, so
            ``vmap(f, (A, B)) == vmap(vmap(f, B), A)``), or a ``{name: size}`` mapping. An axis no
            argument has needs its size.
        default: the spec for leaves that are not NamedArrays: an int (map along that dimension),
            None (broadcast), a callable ``leaf -> int | None``, or a PyTree prefix of them. The
            default maps arrays along their first dimension and broadcasts everything else
            (0-d arrays included: they have no dimension to map). With several axes the spec
            applies at each level, as for nested vmaps: a callable sees the leaf without the
            dimensions the outer levels mapped, so by default an array that holds only the outer
            axis is broadcast over the inner ones.
        args: per positional argument, a spec that overrides ``default`` (a literal None broadcasts).
        kwargs: per keyword argument (by parameter name), a spec that overrides ``default``.
        state: which argument is the model state (a positional index or a parameter name); None
            (default) picks the argument that is an `equinox.nn.State`, if one is; False: none.
            With a state, ``fn`` returns ``(out, new_state)``; the state's plain arrays are
            broadcast unless ``args`` / ``kwargs`` say otherwise, and each returned entry gets the
            mapped axes back where it had them on the way in, or stays unbatched if it came in
            without them and is written the same for every element. See the "Stateful models" guide.
        unexpected_state: for a state entry that came in without a mapped axis but is written with
            a value that differs along it: "raise" (default; a ValueError naming the entry and the
            axis), "warn" (a UserWarning while tracing, then as "batch"), or "batch" (return it with
            the axis in front).

    Returns:
        The mapped function (a PyTree-friendly wrapper that also works as a method and through
        `equinox.filter_jit`), or a decorator when ``fn`` is omitted.

    Raises:
        ValueError: an axis no argument has was given without a size; sizes disagree (the message
            names both sizes and the arguments); a spec maps a non-array or a missing dimension;
            ``state`` names an argument that was not passed, several arguments are `equinox.nn.State`
            without ``state=``, the returned state changes structure, or (with
            ``unexpected_state="raise"``) a state entry is written differently along an axis it
            came in without.
        TypeError: ``fn`` is not callable, a spec is not made of ints, None and callables,
            ``state`` is malformed, or ``fn`` does not return a pair while there is a state.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
        >>> x = nx.named(jnp.arange(6.0).reshape(2, 3), (Batch, Embed))
        >>> w = nx.named(jnp.array([1.0, 0.0, -1.0]), Embed)
        >>> nx.vmap(lambda v, w: v * w, Batch)(x, w).array
        Array([[ 0.,  0., -2.],
               [ 3.,  0., -5.]], dtype=float32)
        >>> @nx.vmap(axis={"seed": 4})
        ... def draw():
        ...     return nx.zeros(Embed)
        >>> draw().axes
        (Axis('seed', 4), Axis('embed', 3))

        With state: a per-element counter keeps its axis where it was; a shared one stays shared.

        >>> def count(v, state):
        ...     return v, {"mine": state["mine"] + v, "total": state["total"] + nx.psum(v, Batch)}
        >>> state = {"mine": nx.zeros((Embed, Batch)), "total": nx.zeros(Embed)}
        >>> _, new = nx.vmap(count, Batch, state="state")(x, state)
        >>> new["mine"].axes, new["total"].axes, new["total"].array
        ((Axis('embed', 3), Axis('batch', 2)), (Axis('embed', 3),), Array([3., 5., 7.], dtype=float32))
    """
    if fn is None:
        if axis is None:
            raise TypeError("vmap: `axis` is required, e.g. @nx.vmap(axis=Batch)")

        def decorator(f: Callable) -> Callable:
            return vmap(f, axis, default=default, args=args, kwargs=kwargs, state=state,
                        unexpected_state=unexpected_state)  # fmt: skip

        return decorator
    if not callable(fn):
        raise TypeError(
            f"vmap: `fn` must be callable, got {type(fn).__name__}: {fn!r}; "
            "for the decorator form write @nx.vmap(axis=...)"
        )
    if axis is None:
        raise TypeError("vmap: `axis` is required: nx.vmap(fn, axis)")
    parsed = parse_axes(axis, "vmap")
    return _VmapWrapper(fn, parsed, make_specs(fn, default, args, kwargs, state, unexpected_state, "vmap"))
