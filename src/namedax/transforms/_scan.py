"""Loops over a named axis: `scan`, `fold` and `map`.

``nx.scan(f, Layers)(init, *xs)`` runs ``f`` once per element of the axis ``Layers``, in order,
threading a carry (`jax.lax.scan` underneath). Which arguments are sliced per step follows haliax:

- a NamedArray that has the axis is sliced along it, wherever it sits (``f`` sees it without the
  axis); a NamedArray without it is passed whole to every step;
- a plain array of rank >= 1 is sliced along its leading dimension, which must have the axis's
  size; scalars and other leaves are passed whole. ``is_scanned`` (a bool, or a callable on a plain
  leaf) overrides that choice for plain leaves.

Per-step outputs are stacked: NamedArrays get the axis first, plain arrays a leading dimension;
outputs that are not arrays (Python values) pass through. `fold` keeps only the carry. `map` is
`vmap`'s sequential cousin (`jax.lax.map`, optionally in vectorised chunks of ``batch_size``): the
tool for an axis too large to map over at once.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Step, Embed = nx.Axis("step", 4), nx.Axis("embed", 2)
    >>> x = nx.named(jnp.arange(8.0).reshape(2, 4), (Embed, Step))
    >>> total, running = nx.scan(lambda c, v: (c + v, c + v), Step)(nx.zeros(Embed), x)
    >>> total.array, running.axes
    (Array([ 6., 22.], dtype=float32), (Axis('step', 4), Axis('embed', 2)))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis, AxisSelector
from ..core._named_array import _is_named, _new, rearrange
from . import _state
from ._state import UnexpectedState
from ._vmap import _positional_params, _run, _Specs, _VmapWrapper

_is_array = eqx.is_array


def _is_shaped_array(x: Any) -> bool:
    """The default ``is_scanned``: plain arrays of rank >= 1."""
    return _is_array(x) and np.ndim(x) >= 1


def _check_selector(axis: Any, op: str) -> tuple[str, int | None]:
    if type(axis) is Axis:
        return axis.name, axis.size
    if type(axis) is str:
        return axis, None
    raise TypeError(f"{op}: `axis` must be one Axis or axis name, got {type(axis).__name__}: {axis!r}")


def _labels(fn: Callable, skip: int, n_args: int) -> list[str]:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ][skip:]
    except (TypeError, ValueError):
        params = []
    return [params[i].name if i < len(params) else f"args[{i}]" for i in range(n_args)]


class _Plan(NamedTuple):
    """The sliced leaves of one call and how to rebuild the arguments from a slice of them."""

    axis: Axis
    xs: list
    rebuild: Callable


def _plan(fn, op: str, axis, args: tuple, kwargs: dict, is_scanned, skip: int, whole: tuple | None = None) -> _Plan:
    """``whole``: ``(position, keyword)`` of an argument whose plain leaves are never sliced (the state)."""
    name, size = _check_selector(axis, op)
    flag = "is_mapped" if op == "map" else "is_scanned"  # the parameter that picks the sliced plain leaves
    src: str | None = f"the given {axis}" if size is not None else None
    leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=_is_named)
    keep: set[int] = set()
    if whole is not None:
        for n, (p, _) in enumerate(jax.tree_util.tree_flatten_with_path((args, kwargs), is_leaf=_is_named)[0]):
            if (p[0].idx == 0 and whole[1] is None and p[1].idx == whole[0]) or (
                p[0].idx == 1 and p[1].key == whole[1]
            ):
                keep.add(n)
    pos: list[int] = []
    inner: list = []  # axes inside fn for NamedArrays, None for plain arrays
    xs: list = []

    def path_of(i: int) -> str:
        paths = [p for p, _ in jax.tree_util.tree_flatten_with_path((args, kwargs), is_leaf=_is_named)[0]]
        p = paths[i]
        labels = _labels(fn, skip, len(args))
        head = labels[p[1].idx] if p[0].idx == 0 else str(p[1].key)
        return repr(head + jax.tree_util.keystr(tuple(p[2:])))

    for i, leaf in enumerate(leaves):
        if _is_named(leaf):
            names = [a.name for a in leaf.axes]
            if name not in names:
                continue
            j = names.index(name)
            n = leaf.axes[j].size
            arr = leaf.array if j == 0 else rearrange(leaf, (name, ...)).array
            inner.append(leaf.axes[:j] + leaf.axes[j + 1 :])
            what = f"axes {leaf.axes}"
        else:
            scanned = i not in keep and (is_scanned(leaf) if callable(is_scanned) else bool(is_scanned))
            if not scanned:
                continue
            if not _is_array(leaf) or np.ndim(leaf) == 0:
                raise ValueError(
                    f"{op}: argument {path_of(i)} ({type(leaf).__name__}) is selected by `{flag}` but "
                    "has no leading dimension to slice"
                )
            n = np.shape(leaf)[0]
            arr = leaf
            inner.append(None)
            what = f"shape {np.shape(leaf)}"
        if size is None:
            size, src = n, f"argument {path_of(i)} ({what})"
        elif n != size:
            if inner[-1] is None:
                detail = f"has leading dimension size {n}; pass {flag}=... to leave it whole"
            else:
                detail = f"has size {n}"
            raise ValueError(
                f"{op}: axis {name!r} has size {size} from {src}, but argument {path_of(i)} ({what}) {detail}"
            )
        pos.append(i)
        xs.append(arr)
    if size is None:
        raise ValueError(
            f"{op}: no argument has axis {name!r}, so its size is unknown: pass Axis({name!r}, size) as the axis"
        )

    def rebuild(slices):
        full = list(leaves)
        for p, x, ax in zip(pos, slices, inner, strict=True):
            full[p] = x if ax is None else _new(x, ax)
        return treedef.unflatten(full)

    return _Plan(Axis(name, size), xs, rebuild)


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
    for leaf in jax.tree.leaves(tree, is_leaf=_is_named):
        if _is_named(leaf) and any(a.name == axis.name for a in leaf.axes):
            raise ValueError(
                f"{op}: the function returned a NamedArray with axes {leaf.axes}, which include the looped "
                f"axis {axis.name!r}; outputs are stacked along it, so rename it"
            )


def _check_carry(carry: Any, carry_def: Any, new_carry: Any, op: str, name: str) -> None:
    """The carry out of a step must match the carry in: the same structure (NamedArray axes are part
    of it), and every leaf the same shape and dtype. A weakly typed leaf in (a Python scalar) may
    change dtype: `jax.lax.scan` promotes it and traces the step again."""
    new_def = jax.tree.structure(new_carry)
    if new_def != carry_def:
        raise ValueError(
            f"{op} over {name!r}: the carry must keep its structure and axes; it went in as "
            f"{carry_def} and came out as {new_def}"
        )
    ins = jax.tree_util.tree_flatten_with_path(carry, is_leaf=_is_named)[0]
    for (path, a), b in zip(ins, jax.tree.leaves(new_carry, is_leaf=_is_named), strict=True):
        ta = jax.typeof(a.array if _is_named(a) else a)
        tb = jax.typeof(b.array if _is_named(b) else b)
        if ta.shape != tb.shape or (ta.dtype != tb.dtype and not ta.weak_type):
            where = f"carry{jax.tree_util.keystr(path)}"
            if _is_named(a):
                where += f" (axes {a.axes})"
            raise ValueError(
                f"{op} over {name!r}: the carry must keep its shapes and dtypes; {where} went in as "
                f"{ta.dtype.name}{list(ta.shape)} and came out as {tb.dtype.name}{list(tb.shape)}"
                + ("" if ta.dtype == tb.dtype else "; cast it back, e.g. with .astype")
            )


def _check_remat(remat: Any, op: str) -> None:
    if not (remat is False or remat is True or callable(remat)):
        raise TypeError(f"{op}: `remat` must be False, True or a jax.checkpoint policy, got {remat!r}")


def _checkpointed(body: Callable, remat: Any) -> Callable:
    # prevent_cse=False: inside a scan, CSE cannot merge the recomputation away (jax.checkpoint docs)
    if remat is False:
        return body
    if remat is True:
        return jax.checkpoint(body, prevent_cse=False)
    return jax.checkpoint(body, policy=remat, prevent_cse=False)


def scan(
    f: Callable,
    axis: AxisSelector,
    *,
    remat: bool | Callable = False,
    reverse: bool = False,
    unroll: int | bool = 1,
    is_scanned: bool | Callable[[Any], bool] = _is_shaped_array,
) -> Callable:
    """Loop ``f(carry, *xs, **kwargs) -> (carry, y)`` over a named axis, stacking the outputs.

    Args:
        f: the step function. Its carry must keep its structure, axes, shapes and dtypes from step to step.
        axis: the axis to loop over (an `Axis`, or a name if an argument has it).
        remat: recompute each step's internals in the backward pass: False, True, or a
            `jax.checkpoint` policy such as ``jax.checkpoint_policies.nothing_saveable``.
        reverse: loop from the last element to the first (outputs are still stacked in order).
        unroll: steps per loop iteration, as for `jax.lax.scan`.
        is_scanned: for plain (unnamed) leaves, whether to slice them along their leading
            dimension; by default plain arrays of rank >= 1 are sliced and everything else is
            passed whole. NamedArrays are sliced exactly when they have the axis.

    Returns:
        ``scanned(init, *xs, **kwargs) -> (carry, ys)``: NamedArrays in ``ys`` get the axis first,
        other arrays a leading dimension.

    Raises:
        ValueError: sizes along the axis disagree (naming the arguments), the size is unknown, the
            carry changes structure, axes, shape or dtype, or an output already has the axis.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
        >>> w = nx.named(jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), (Layers, Embed))
        >>> h, hs = nx.scan(lambda h, w: (h * w, h["embed", 0]), Layers)(nx.ones(Embed), w)
        >>> h.array, hs.axes, hs.array
        (Array([15., 48.], dtype=float32), (Axis('layers', 3),), Array([1., 1., 3.], dtype=float32))
    """
    return _scan(f, axis, remat=remat, reverse=reverse, unroll=unroll, is_scanned=is_scanned, op="scan")


def _scan(f: Callable, axis: AxisSelector, *, remat, reverse, unroll, is_scanned, op: str) -> Callable:
    """`scan`, with errors naming ``op`` (the public function called: `scan` or `fold`)."""
    name, _ = _check_selector(axis, op)
    if not callable(f):
        raise TypeError(f"{op}: `f` must be callable, got {type(f).__name__}: {f!r}")
    _check_remat(remat, op)

    def scanned(init: Any, *args: Any, **kwargs: Any):
        plan = _plan(f, op, axis, args, kwargs, is_scanned, skip=1)
        carry_def = jax.tree.structure(init)  # NamedArray axes are part of the structure
        store: list = []

        def body(carry, slices):
            a, kw = plan.rebuild(slices)
            out = f(carry, *a, **kw)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"{op}: `f` must return a pair (carry, y), got {type(out).__name__}")
            new_carry, y = out
            _check_carry(carry, carry_def, new_carry, op, name)
            _check_out_axes(y, plan.axis, op)
            return new_carry, _split_static(y, store)

        body = _checkpointed(body, remat)
        carry, ys = jax.lax.scan(
            body, init, plan.xs, length=plan.axis.size, reverse=reverse, unroll=unroll
        )
        return carry, _join(ys, store, plan.axis)

    return scanned


def fold(
    f: Callable,
    axis: AxisSelector,
    *,
    remat: bool | Callable = False,
    reverse: bool = False,
    unroll: int | bool = 1,
    is_scanned: bool | Callable[[Any], bool] = _is_shaped_array,
) -> Callable:
    """Loop ``f(carry, *xs, **kwargs) -> carry`` over a named axis and return the final carry.

    Arguments, slicing rules and errors as `scan`.

    Returns:
        ``folded(init, *xs, **kwargs) -> carry``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1.0, 2.0], [3.0, 4.0]]), ("step", "embed"))
        >>> nx.fold(lambda c, v: c + v, "step")(nx.zeros({"embed": 2}), x).array
        Array([4., 6.], dtype=float32)
    """
    if not callable(f):
        raise TypeError(f"fold: `f` must be callable, got {type(f).__name__}: {f!r}")

    @functools.wraps(f)  # errors name f's parameters
    def step(carry, *args, **kwargs):
        return f(carry, *args, **kwargs), None

    scanned = _scan(step, axis, remat=remat, reverse=reverse, unroll=unroll, is_scanned=is_scanned, op="fold")

    def folded(init: Any, *args: Any, **kwargs: Any):
        return scanned(init, *args, **kwargs)[0]

    return folded


def map(
    fn: Callable,
    axis: AxisSelector,
    *,
    batch_size: int | None = None,
    is_mapped: bool | Callable[[Any], bool] = _is_shaped_array,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable:
    """Map ``fn`` over a named axis sequentially (`jax.lax.map`), in vectorised chunks of ``batch_size``.

    Same result as `vmap` over one axis (outputs lead with the axis), but memory grows with
    ``batch_size``, not with the axis: the tool for axes too large to vectorise at once.

    Args:
        fn: the function to map.
        axis: the axis (an `Axis`, or a name if an argument has it).
        batch_size: elements per vectorised chunk (None: one at a time). Need not divide the size.
        is_mapped: as `scan`'s ``is_scanned``: which plain leaves are sliced along their leading
            dimension (by default plain arrays of rank >= 1). NamedArrays are mapped when they have
            the axis.
        state: which argument is the model state, as in `vmap` (its plain arrays are never sliced).
            Entries that stay unbatched are carried through the loop, one copy, not one per element.
        unexpected_state: "raise", "warn" or "batch", as in `vmap`.

    Returns:
        The mapped function; NamedArray outputs get the axis first, other arrays a leading dimension.

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
    _check_selector(axis, "map")
    if not callable(fn):
        raise TypeError(f"map: `fn` must be callable, got {type(fn).__name__}: {fn!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"map: `batch_size` must be a positive int or None, got {batch_size!r}")

    _state.check_options(state, unexpected_state, "map")
    names = _positional_params(fn)[0] if type(state) in (int, str) else ()

    def mapped(*args: Any, **kwargs: Any):
        st = None if state is False else _state.find_state(state, names, args, kwargs, "map")
        if st is not None:
            return _map_state(fn, axis, batch_size, is_mapped, st, unexpected_state, names, args, kwargs)
        plan = _plan(fn, "map", axis, args, kwargs, is_mapped, skip=0)
        store: list = []
        xs = plan.xs if plan.xs else [jnp.zeros((plan.axis.size, 0), jnp.int8)]
        n_real = len(plan.xs)

        def body(slices):
            a, kw = plan.rebuild(slices[:n_real])
            out = fn(*a, **kw)
            _check_out_axes(out, plan.axis, "map")
            return _split_static(out, store)

        ys = jax.lax.map(body, xs, batch_size=batch_size)
        return _join(ys, store, plan.axis)

    return mapped


def _map_state(fn, axis, batch_size, is_mapped, st, policy, names, args, kwargs):
    """`map` with a state argument: classify the returned state entries by one abstract trace of the
    equivalent `vmap` (see `namedax._state`), then loop, carrying the entries that stay unbatched
    (one copy, not one per element) and stacking the rest."""
    plan = _plan(fn, "map", axis, args, kwargs, is_mapped, skip=0, whole=st)
    name = plan.axis.name
    label = _arg_label_of(fn, st)
    state_val = args[st[0]] if st[1] is None else kwargs[st[1]]

    def spec(leaf):
        return 0 if (is_mapped(leaf) if callable(is_mapped) else bool(is_mapped)) else None

    w = _VmapWrapper(fn, ((name, plan.axis.size),), _Specs(spec, (), {}, names, _state_by_place(st), policy))
    found: list = []

    def classify(a, k):
        out, splan = _run(w, a, k, op="map", front=True, jax_names=(f"{name}:map",))
        assert splan is not None  # w has a state, so _run returns its plan
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
        a, kw = plan.rebuild(slices[: len(plan.xs)])
        out = _state.split_output(fn(*a, **kw), state_val, "map", label)
        _check_out_axes(out, plan.axis, "map")
        leaves, td = jax.tree.flatten(out, is_leaf=_is_named)
        meta[:] = [td, [leaves[i].axes if _is_named(leaves[i]) else None for i in unb]]
        carry = [leaves[i].array if _is_named(leaves[i]) else leaves[i] for i in unb]
        carry = [jax.lax.convert_element_type(c, jnp.result_type(c)) for c in carry]  # drop weak types
        ys = [None if i in unb_set else leaf for i, leaf in enumerate(leaves)]
        return carry, _split_static(ys, store)

    xs = plan.xs if plan.xs else [jnp.zeros((plan.axis.size, 0), jnp.int8)]
    carry, ys = _chunked(elem, init, xs, plan.axis.size, batch_size)
    stacked = _join(ys, store, plan.axis)
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


def _state_by_place(st: tuple) -> int | str:
    return st[0] if st[1] is None else st[1]


def _arg_label_of(fn, st: tuple) -> str:
    if st[1] is not None:
        return st[1]
    ps = _positional_params(fn)[0]
    return ps[st[0]] if st[0] < len(ps) else f"args[{st[0]}]"
