"""Loops over a named axis: `scan`, `fold` and `map`.

``nx.scan(f, Layers)(init, *xs)`` runs ``f`` once per element of the axis ``Layers``, in order,
threading a carry (`jax.lax.scan` underneath). Which arguments are sliced per step follows haliax:

- a NamedArray that has the axis is sliced along it, wherever it sits (``f`` sees it without the
  axis); a NamedArray without it is passed whole to every step;
- a plain array of rank >= 1 is sliced along its leading dimension, which must have the axis's
  size; scalars and other leaves are passed whole. ``default`` overrides that choice for plain
  leaves, in `vmap`'s spec language (an int: slice along that dimension; None: pass whole; a
  callable ``leaf -> int | None``; a PyTree prefix of these). ``is_scanned`` / ``is_mapped`` (a
  bool, or a callable ``leaf -> bool``) are its older names, kept as aliases.

Per-step outputs are stacked: NamedArrays get the axis first, plain arrays a leading dimension;
outputs that are not arrays (Python values) pass through. `fold` keeps only the carry. `map` is
`vmap`'s sequential cousin (`jax.lax.map`, optionally in vectorised chunks of ``batch_size``): the
tool for an axis too large to map over at once. All three resolve their arguments with the mapping
core `vmap` and `pmap` use (`namedax.transforms._mapping`), so sizes are checked and errors worded
the same way.

``state=`` (as on `vmap` / `map`) names an argument of ``fn`` that is a state PyTree: it is not
sliced, but threaded through the loop like a second carry; ``fn`` returns ``(out, new_state)`` and
the loop returns ``(result, final_state)``. Called eagerly, the loops run through one cached jit
(see `namedax.transforms._mapping.eager_cached`): a second call with the same function and argument
structure reuses the trace, so Python side effects happen once and globals or closures are read at
the first call, as under `jax.jit`. Pass what changes as an argument.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Step, Embed = nx.Axis("step", 4), nx.Axis("embed", 2)
    >>> x = nx.named(jnp.arange(8.0).reshape(2, 4), (Embed, Step))
    >>> total, running = nx.scan(lambda c, v: (c + v, c + v), Step)(nx.zeros(Embed), x)
    >>> total.array, running.axes
    (Array([ 6., 22.], dtype=float32), (Axis('step', 4), Axis('embed', 2)))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp

from ..core._axis import Axis, AxisSelector
from ..core._named_array import _is_named, _new
from . import _state
from ._mapping import (
    _UNSET,
    Resolved,
    Specs,
    arg_label,
    check_carry,
    check_checkpoint,
    check_out_axes,
    check_spec,
    check_unroll,
    checkpointed,
    eager_cached,
    fn_alias,
    loop_default,
    one_of,
    positional_params,
    resolve,
    zero_if_array_else_none,
)
from ._mapping import _is_array as _is_array
from ._state import UnexpectedState
from ._vmap import _VmapWrapper, run


def _check_selector(axis: Any, op: str) -> tuple[str, int | None]:
    if type(axis) is Axis:
        return axis.name, axis.size
    if type(axis) is str:
        return axis, None
    raise TypeError(f"{op}: `axis` must be one Axis or axis name, got {type(axis).__name__}: {axis!r}")


def _check_fn(fn: Any, op: str) -> None:
    if not callable(fn):
        raise TypeError(f"{op}: `fn` must be callable, got {type(fn).__name__}: {fn!r}")


def _loop_specs(op: str, default: Any, aliases: dict, fn: Callable, state: Any = False,
                policy: UnexpectedState = "raise") -> Specs:  # fmt: skip
    """The spec for plain leaves from ``default`` or its old name (``is_scanned`` / ``is_mapped``)."""
    flag_name = "is_mapped" if op == "map" else "is_scanned"
    value, used = one_of(op, default, **aliases)
    if used is None:
        spec, flag = zero_if_array_else_none, flag_name
    elif used == "default":
        check_spec(value, op, "`default`")
        spec, flag = value, "default"
    else:
        if not (isinstance(value, bool) or callable(value)):
            raise TypeError(f"{op}: `{used}` must be a bool or a callable leaf -> bool, got {value!r}")
        spec, flag = loop_default(value), used
    names = positional_params(fn)[0] if type(state) in (int, str) else ()
    return Specs(spec, (), {}, names, state, policy, flag)


def _leading(r: Resolved) -> list:
    """The mapped arrays with the mapped dimension first (what `jax.lax.scan` / `map` slice)."""
    return [x if d == 0 else jnp.moveaxis(x, d, 0) for x, d in zip(r.dyn_arrays(), r.level_specs[0], strict=True)]


def _split_static(tree: Any, store: list) -> Any:
    """Array leaves stay in the tree; other leaves go to ``store`` (their slots become None)."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_named)
    dyn, static = [], []
    for leaf in leaves:
        arr = leaf.array if _is_named(leaf) else leaf
        if _is_array(arr):
            dyn.append(leaf)
            static.append(None)
        else:
            dyn.append(None)
            static.append(leaf)
    store[:] = [treedef, static]
    return dyn


def _join(dyn: list, store: list, axis: Axis) -> Any:
    treedef, static = store
    out = []
    for d, s in zip(dyn, static, strict=True):
        if d is None:
            out.append(s)
        elif _is_named(d):
            out.append(_new(d.array, (axis,) + d.axes))
        else:
            out.append(d)
    return treedef.unflatten(out)


def _check_out_axes(tree: Any, axis: Axis, op: str) -> None:
    why = f"which include the looped axis {axis.name!r}; outputs are stacked along it, so rename it"
    check_out_axes(tree, {axis.name}, op, lambda _: why)


def _checkpoint_option(op: str, gradient_checkpointing: Any, remat: Any) -> Any:
    """``gradient_checkpointing``, or its alias ``remat`` (haliax's name for it in `scan`)."""
    if remat is _UNSET:
        check_checkpoint(gradient_checkpointing, op)
        return gradient_checkpointing
    if gradient_checkpointing is not False:
        raise TypeError(f"{op}: `gradient_checkpointing` and `remat` are the same option; pass one")
    check_checkpoint(remat, op, "remat")
    return remat


def scan(
    fn: Callable | None = None,
    axis: AxisSelector | None = None,
    *,
    gradient_checkpointing: bool | Callable = False,
    reverse: bool = False,
    unroll: int | bool = 1,
    default: Any = _UNSET,
    state: int | str | bool | None = None,
    remat: bool | Callable = _UNSET,
    is_scanned: bool | Callable[[Any], bool] = _UNSET,
    f: Callable | None = None,
) -> Callable:
    """Loop ``fn(carry, *xs, **kwargs) -> (carry, y)`` over a named axis, stacking the outputs.

    Args:
        fn: the step function. Its carry must keep its structure, axes, shapes and dtypes from step
            to step. (``f=`` is its old name, still accepted.)
        axis: the axis to loop over (an `Axis`, or a name if an argument has it).
        gradient_checkpointing: recompute each step's internals in the backward pass: False, True,
            or a `jax.checkpoint` policy such as ``jax.checkpoint_policies.nothing_saveable`` (the
            option of `namedax.nn.Stacked`). ``remat`` is its alias (haliax's name).
        reverse: loop from the last element to the first (outputs are still stacked in order).
        unroll: steps per loop iteration, as for `jax.lax.scan`.
        default: for plain (unnamed) leaves, the dimension to slice, in `vmap`'s spec language (an
            int, None to pass whole, a callable ``leaf -> int | None``, or a PyTree prefix); by
            default plain arrays of rank >= 1 are sliced along their leading dimension and everything
            else is passed whole. NamedArrays are sliced exactly when they have the axis.
        state: which argument of ``fn`` is a state PyTree threaded through the loop (a parameter
            name, or a position counting the carry as 0); None (default): the argument that is an
            `equinox.nn.State`, if any; False: none. ``fn`` then returns ``((carry, y), new_state)``,
            the new state like the old (structure, shapes, dtypes), and the scan returns
            ``((carry, ys), final_state)``. The state is never sliced.
        remat: alias of ``gradient_checkpointing``.
        is_scanned: older form of ``default``, kept as an alias: a bool, or a callable
            ``leaf -> bool`` saying which plain leaves are sliced along their leading dimension.
        f: old name of ``fn``.

    Returns:
        ``scanned(init, *xs, **kwargs) -> (carry, ys)``: NamedArrays in ``ys`` get the axis first,
        other arrays a leading dimension. Called eagerly, it reuses its trace (see the module docs).

    Raises:
        ValueError: sizes along the axis disagree (naming the arguments), the size is unknown, the
            carry (or state) changes structure, axes, shape or dtype, or an output already has the axis.
        TypeError: ``fn`` is not callable, an option has the wrong type, or ``fn`` does not return a pair.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
        >>> w = nx.named(jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), (Layers, Embed))
        >>> h, hs = nx.scan(lambda h, w: (h * w, h["embed", 0]), Layers)(nx.ones(Embed), w)
        >>> h.array, hs.axes, hs.array
        (Array([15., 48.], dtype=float32), (Axis('layers', 3),), Array([1., 1., 3.], dtype=float32))

        With a state threaded through the steps (here a step counter):

        >>> def step(h, w, st):
        ...     return (h * w, h["embed", 0]), {"n": st["n"] + 1}
        >>> (h, hs), st = nx.scan(step, Layers, state="st")(nx.ones(Embed), w, {"n": jnp.array(0)})
        >>> st["n"]
        Array(3, dtype=int32, weak_type=True)
    """
    return _make_loop("scan", fn, f, axis, gradient_checkpointing, remat, reverse, unroll, default,
                      {"is_scanned": is_scanned}, state, keep=True)  # fmt: skip


def fold(
    fn: Callable | None = None,
    axis: AxisSelector | None = None,
    *,
    gradient_checkpointing: bool | Callable = False,
    reverse: bool = False,
    unroll: int | bool = 1,
    default: Any = _UNSET,
    state: int | str | bool | None = None,
    remat: bool | Callable = _UNSET,
    is_scanned: bool | Callable[[Any], bool] = _UNSET,
    f: Callable | None = None,
) -> Callable:
    """Loop ``fn(carry, *xs, **kwargs) -> carry`` over a named axis and return the final carry.

    Arguments, slicing rules, aliases and errors as `scan`. With a state, ``fn`` returns
    ``(carry, new_state)`` and the fold returns ``(carry, final_state)``.

    Returns:
        ``folded(init, *xs, **kwargs) -> carry``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 2.0], [3.0, 4.0]]), ("step", "embed"))
        >>> nx.fold(lambda c, v: c + v, "step")(nx.zeros({"embed": 2}), x).array
        Array([4., 6.], dtype=float32)
    """
    return _make_loop("fold", fn, f, axis, gradient_checkpointing, remat, reverse, unroll, default,
                      {"is_scanned": is_scanned}, state, keep=False)  # fmt: skip


def _make_loop(op, fn, f, axis, gradient_checkpointing, remat, reverse, unroll, default, aliases, state, keep):
    fn = fn_alias(fn, f, op)
    _check_fn(fn, op)
    if axis is None:
        raise TypeError(f"{op}: `axis` is required: nx.{op}(fn, axis)")
    _check_selector(axis, op)
    policy = _checkpoint_option(op, gradient_checkpointing, remat)
    check_unroll(unroll, op)
    _state.check_options(state, "raise", op)
    opts = _LoopOptions(axis, _loop_specs(op, default, aliases, fn), policy, reverse, unroll, state, op, keep)

    def looped(init: Any, *args: Any, **kwargs: Any):
        return _loop_cached(fn, opts, init, args, kwargs)

    return looped


def loop(fn: Callable, axis: AxisSelector, op: str, *, keep: bool, gradient_checkpointing: Any = False,
         unroll: int | bool = 1, default: Any = None) -> Callable:  # fmt: skip
    """`scan` (``keep``) or `fold` for namedax's own loops (`namedax.nn.Stacked`): errors name
    ``op``, plain leaves follow ``default`` (None: passed whole), and there is no state argument."""
    return _make_loop(op, fn, None, axis, gradient_checkpointing, _UNSET, False, unroll, default, {}, False, keep)


class _LoopOptions:
    """The static options of one `scan` / `fold` (hashable, so eager calls share one jit trace)."""

    __slots__ = ("axis", "specs", "policy", "reverse", "unroll", "state", "op", "keep", "_key")

    def __init__(self, axis, specs, policy, reverse, unroll, state, op, keep):
        self.axis, self.specs, self.policy, self.reverse, self.unroll = axis, specs, policy, reverse, unroll
        self.state, self.op, self.keep = state, op, keep
        self._key = (axis, specs, policy, reverse, unroll, (type(state).__name__, state), op, keep)

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return type(other) is _LoopOptions and self._key == other._key


def _loop(fn: Callable, o: _LoopOptions, init: Any, args: tuple, kwargs: dict) -> Any:
    """One call of a `scan` / `fold` (``o.keep``: ``fn`` returns ``(carry, y)``, else the carry)."""
    op = o.op
    where = _find_loop_state(o.state, fn, init, args, kwargs, op)
    state_in = label = None
    if where is not None:
        state_in = _take(where, args, kwargs)
        label = arg_label(fn, *where, skip=1)
        args, kwargs = _put(where, args, kwargs, None)  # the state is threaded, not sliced
    r = resolve(fn, ((*_check_selector(o.axis, op),),), o.specs, args, kwargs, op, skip=1)
    axis = r.mapped[0]
    name = axis.name
    store: list = []

    def body(carry, slices):
        carry, st = carry
        a, kw = r.rebuild(slices)
        if where is not None:
            a, kw = _put(where, a, kw, st)
        out = fn(carry, *a, **kw)
        if where is not None:
            out, new_st = _state.split_output(out, state_in, op, cast(str, label))
            check_carry(st, new_st, f"{op} over {name!r}: the state {label!r} must", what=cast(str, label))
            st = new_st
        if o.keep:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"{op}: `fn` must return a pair (carry, y), got {type(out).__name__}")
            new_carry, y = out
        else:
            new_carry, y = out, None
        check_carry(carry, new_carry, f"{op} over {name!r}: the carry must")
        _check_out_axes(y, axis, op)
        return (new_carry, st), _split_static(y, store)

    body = checkpointed(body, o.policy)
    (carry, st), ys = jax.lax.scan(
        body, (init, state_in), _leading(r), length=axis.size, reverse=o.reverse, unroll=o.unroll
    )
    out = (carry, _join(ys, store, axis)) if o.keep else carry
    return out if where is None else (out, st)


_loop_cached = eager_cached(_loop)


def _find_loop_state(state, fn, init, args, kwargs, op) -> tuple[int | None, str | None] | None:
    """Where the state is among ``args`` / ``kwargs`` (``(index into args, None)`` or ``(None, key)``);
    ``state`` counts ``fn``'s parameters, the carry being 0."""
    if state is False:
        return None
    names = positional_params(fn)[0] if type(state) in (int, str) else ()
    where = _state.find_state(state, names, (init, *args), kwargs, op)
    if where is None or where[0] is None:
        return where
    if where[0] == 0:
        raise ValueError(f"{op}: `state={state!r}` names the carry; the state is an argument after it")
    return where[0] - 1, None


def _take(where: tuple, args: tuple, kwargs: dict) -> Any:
    return args[where[0]] if where[1] is None else kwargs[where[1]]


def _put(where: tuple, args: tuple, kwargs: dict, value: Any) -> tuple[tuple, dict]:
    if where[1] is None:
        return args[: where[0]] + (value,) + args[where[0] + 1 :], kwargs
    return args, {**kwargs, where[1]: value}


def map(
    fn: Callable | None = None,
    axis: AxisSelector | None = None,
    *,
    batch_size: int | None = None,
    default: Any = _UNSET,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
    is_mapped: bool | Callable[[Any], bool] = _UNSET,
    f: Callable | None = None,
) -> Callable:
    """Map ``fn`` over a named axis sequentially (`jax.lax.map`), in vectorised chunks of ``batch_size``.

    Same result as `vmap` over one axis (outputs lead with the axis), but memory grows with
    ``batch_size``, not with the axis: the tool for axes too large to vectorise at once.

    Args:
        fn: the function to map (``f=`` is its old name, still accepted).
        axis: the axis (an `Axis`, or a name if an argument has it).
        batch_size: elements per vectorised chunk (None: one at a time). Need not divide the size.
        default: which plain leaves are sliced and along which dimension, as `scan`'s ``default``
            (by default plain arrays of rank >= 1, along their leading dimension). NamedArrays are
            mapped when they have the axis.
        state: which argument is the model state, as in `vmap` (its plain arrays are never sliced).
            Entries that stay unbatched are carried through the loop, one copy, not one per element.
        unexpected_state: "raise", "warn" or "batch", as in `vmap`.
        is_mapped: older form of ``default``, kept as an alias (a bool or a callable ``leaf -> bool``).
        f: old name of ``fn``.

    Returns:
        The mapped function; NamedArray outputs get the axis first, other arrays a leading
        dimension. Called eagerly, it reuses its trace (see the module docs).

    Raises:
        ValueError: sizes along the axis disagree, the size is unknown, ``batch_size`` is not a
            positive int, an output already has the axis, or a state error as in `vmap`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(6.0).reshape(3, 2), ("point", "embed"))
        >>> y = nx.map(lambda v: v * v["embed", 1], "point", batch_size=2)(x)
        >>> y.array
        Array([[ 0.,  1.],
               [ 6., 9.],
               [20., 25.]], dtype=float32)
    """
    fn = fn_alias(fn, f, "map")
    if axis is None:
        raise TypeError("map: `axis` is required: nx.map(fn, axis)")
    _check_selector(axis, "map")
    _check_fn(fn, "map")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"map: `batch_size` must be a positive int or None, got {batch_size!r}")
    _state.check_options(state, unexpected_state, "map")
    specs = _loop_specs("map", default, {"is_mapped": is_mapped}, fn, state, unexpected_state)
    axes = ((*_check_selector(axis, "map"),),)

    def mapped(*args: Any, **kwargs: Any):
        return _map_cached(fn, axes, specs, batch_size, args, kwargs)

    return mapped


def _map(fn: Callable, axes: tuple, specs: Specs, batch_size: int | None, args: tuple, kwargs: dict) -> Any:
    r = resolve(fn, axes, specs, args, kwargs, "map")
    if r.st is not None:
        return _map_state(fn, axes, specs, batch_size, r, args, kwargs)
    axis = r.mapped[0]
    store: list = []
    xs = _leading(r)
    n_real = len(xs)
    xs = xs if xs else [jnp.zeros((axis.size, 0), jnp.int8)]

    def body(slices):
        a, kw = r.rebuild(slices[:n_real])
        out = fn(*a, **kw)
        _check_out_axes(out, axis, "map")
        return _split_static(out, store)

    ys = jax.lax.map(body, xs, batch_size=batch_size)
    return _join(ys, store, axis)


_map_cached = eager_cached(_map)


def _map_state(fn, axes, specs, batch_size, r, args, kwargs):
    """`map` with a state argument: classify the returned state entries by one abstract trace of the
    equivalent `vmap` (see `namedax.transforms._state`), then loop, carrying the entries that stay
    unbatched (one copy, not one per element) and stacking the rest."""
    axis = r.mapped[0]
    name = axis.name
    st = cast(tuple, r.st)
    label = arg_label(fn, *st)
    state_val = args[st[0]] if st[1] is None else kwargs[st[1]]
    w = _VmapWrapper(fn, ((name, axis.size),), specs)
    found: list = []

    def classify(a, k):
        out, splan = run(w, a, k, op="map", front=True, jax_names=(f"{name}:map",))
        assert splan is not None  # w has a state, so run returns its plan
        leaves = jax.tree.leaves(out, is_leaf=_is_named)
        unb = sorted(splan.unbatched())
        found[:] = [splan, unb]
        return [leaves[i].array if _is_named(leaves[i]) else leaves[i] for i in unb]

    shapes = eqx.filter_eval_shape(classify, args, kwargs)
    splan, unb = found
    init = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    unb_set = set(unb)
    store: list = []
    meta: list = []

    def elem(slices):
        a, kw = r.rebuild(slices[: len(r.dyn_pos)])
        out = _state.split_output(fn(*a, **kw), state_val, "map", label)
        _check_out_axes(out, axis, "map")
        leaves, td = jax.tree.flatten(out, is_leaf=_is_named)
        meta[:] = [td, [leaves[i].axes if _is_named(leaves[i]) else None for i in unb]]
        carry = [leaves[i].array if _is_named(leaves[i]) else leaves[i] for i in unb]
        carry = [jax.lax.convert_element_type(c, jnp.result_type(c)) for c in carry]  # drop weak types
        ys = [None if i in unb_set else leaf for i, leaf in enumerate(leaves)]
        return carry, _split_static(ys, store)

    xs = _leading(r)
    xs = xs if xs else [jnp.zeros((axis.size, 0), jnp.int8)]
    carry, ys = _chunked(elem, init, xs, axis.size, batch_size)
    stacked = _join(ys, store, axis)
    td, unb_axes = meta
    it = iter(zip(carry, unb_axes, strict=True))
    full = []
    for i, leaf in enumerate(stacked):
        if i in unb_set:
            c, ax = next(it)
            full.append(c if ax is None else _new(c, ax))
        else:
            full.append(leaf)
    return splan.fix(td.unflatten(full))


def _chunked(elem, init, xs, n, batch_size):
    """``jax.lax.map`` (in vectorised chunks of ``batch_size``, as it does it) of ``elem(x) -> (carry, y)``
    whose ``carry`` is the same for every element: it is carried through the loop, ``y`` is stacked."""
    if batch_size is None:
        return jax.lax.scan(lambda _, x: elem(x), init, xs)
    vm = jax.vmap(elem, out_axes=(None, 0))
    n_chunks, rem = divmod(n, batch_size)
    cut = n_chunks * batch_size
    carry, parts = init, []
    if n_chunks:
        chunks = [x[:cut].reshape(n_chunks, batch_size, *x.shape[1:]) for x in xs]
        carry, ys = jax.lax.scan(lambda _, x: vm(x), init, chunks)
        parts.append(jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:]), ys))
    if rem:
        carry, ys = vm([x[cut:] for x in xs])
        parts.append(ys)
    ys = parts[0] if len(parts) == 1 else jax.tree.map(lambda a, b: jnp.concatenate([a, b]), *parts)
    return carry, ys


