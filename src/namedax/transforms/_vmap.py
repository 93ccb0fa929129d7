"""vmap over named axes.

``nx.vmap(f, Batch)`` maps ``f`` over the axis *named* ``batch``: every NamedArray argument that has
it is mapped along it wherever it sits, and inside ``f`` it lacks that axis; NamedArrays without it
are passed whole. Outputs get the axis back, in front. There are no ``in_axes`` to keep in sync with
the layout of the data; the names carry the information.

How it works: one call resolves, for every argument leaf and every mapped axis, a positional
``in_axes`` entry (the position of the axis in a NamedArray; the ``default`` / ``args`` / ``kwargs``
spec for a plain leaf), checks all sizes once, then runs one `equinox.filter_vmap` per axis (the
last listed innermost, so ``vmap(f, (A, B)) == vmap(vmap(f, B), A)``) over the flat list of array
leaves, with ``axis_name`` the axis's name so collectives work by name. The innermost function
rebuilds the arguments (NamedArrays with their reduced axes) and calls ``f`` once: nothing is traced
twice, and under jit the jaxpr is the one of the hand-written nested `jax.vmap`.

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
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis, AxisSelection, axis_name, to_selectors
from ..core._named_array import _is_named, _new
from . import _state
from ._state import UnexpectedState

_is_array = eqx.is_array  # jax and numpy arrays, as filter_vmap sees them


def _zero_if_array_else_none(x: Any) -> int | None:
    """The default spec: map plain arrays along their leading dimension, broadcast everything else.
    A 0-d array has no dimension to map, so it is broadcast (jax.vmap would refuse it)."""
    return 0 if _is_array(x) and getattr(x, "ndim", 1) > 0 else None


def _parse_axes(axis: AxisSelection, op: str) -> tuple[tuple[str, int | None], ...]:
    """``((name, size or None), ...)`` in the listed order; duplicates and empty lists refused."""
    if isinstance(axis, Mapping):
        out = tuple((axis_name(k, op), int(Axis(k, v).size)) for k, v in axis.items())
    else:
        out = tuple((axis_name(s), s.size if type(s) is Axis else None) for s in to_selectors(axis, op))
    if not out:
        raise ValueError(f"{op}: no axis given to map over")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{op}: axis {sorted({n for n in names if names.count(n) > 1})} listed twice in {axis!r}")
    return out


def _is_callable_spec(spec: Any) -> bool:
    """A callable spec ``leaf -> int | None`` is a PyTree leaf. A callable PyTree (an equinox Module
    with ``__call__``, such as ``Model(w=None, b=0)`` giving per-field specs) is a PyTree prefix of
    specs, as in `equinox.filter_vmap`."""
    return callable(spec) and jax.tree_util.treedef_is_leaf(jax.tree.structure(spec))


def _check_spec(spec: Any, op: str, where: str) -> None:
    if spec is None or type(spec) is int or _is_callable_spec(spec):
        return
    if isinstance(spec, bool):
        raise TypeError(f"{op}: spec {where} must be an int, None or a callable, got {spec!r}")
    leaves = jax.tree.leaves(spec, is_leaf=lambda s: s is None)
    for s in leaves:
        if not (s is None or (type(s) is int) or callable(s)):
            raise TypeError(
                f"{op}: spec {where} must be a PyTree of ints, None and callables leaf -> int | None, got leaf {s!r}"
            )


def _positional_params(fn: Callable) -> tuple[tuple[str, ...], set[str] | None]:
    """(names of the positional parameters, names accepted by keyword or None for any); ``((), None)``
    when ``fn`` has no signature."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return (), None
    kinds = inspect.Parameter
    names = tuple(p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD))
    if any(p.kind is kinds.VAR_KEYWORD for p in params):
        return names, None
    return names, {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}


def _leaf_specs(spec: Any, sub: Any, leaves: list, op: str, desc: Callable[[], str]) -> list:
    """One spec (int, None or a callable, see `_level_spec`) per leaf of ``sub`` (NamedArrays are
    leaves; their entry is unused). ``desc()`` describes the spec for error messages (built only on
    error: it is slow)."""
    if spec is None or type(spec) is int or _is_callable_spec(spec):
        return [spec] * len(leaves)
    pairs: list = []
    try:
        jax.tree.map(lambda s, x: pairs.append((s, x)), spec, sub, is_leaf=lambda s: s is None)
    except ValueError:
        raise ValueError(
            f"{op}: the spec {desc()}, of structure {jax.tree.structure(spec, is_leaf=lambda s: s is None)}, "
            f"is not a PyTree prefix of the argument, of structure {jax.tree.structure(sub, is_leaf=_is_named)}"
        ) from None
    out: list = []
    for s, x in pairs:
        out.extend(_leaf_specs(s, x, jax.tree.leaves(x, is_leaf=_is_named), op, desc))
    return out


def _level_spec(spec: Any, leaf: Any, shape: tuple | None, op: str, desc: Callable[[], str]) -> int | None:
    """The int or None a leaf's spec gives at one level of the mapping. A callable is called as an
    inner level of nested vmaps would call it: on the leaf with the dimensions the outer levels
    mapped removed (``shape`` is what remains; None at the outermost level, which sees ``leaf``)."""
    if not callable(spec):
        return spec
    if shape is None:
        return _resolved(spec(leaf), op, desc)
    if spec is _zero_if_array_else_none:  # the default needs no stand-in: the leaf is an array
        return 0 if shape else None
    dtype = leaf.dtype
    if isinstance(dtype, np.dtype):
        view = np.broadcast_to(np.zeros((), dtype), shape)  # zero strides: nothing is allocated
    else:  # keys and other extended dtypes; computed now, not staged into a jit trace
        with jax.ensure_compile_time_eval():
            view = jnp.broadcast_to(jnp.zeros((), dtype), shape)
    return _resolved(spec(view), op, desc)


def _resolved(r: Any, op: str, desc: Callable[[], str]) -> int | None:
    if r is None or type(r) is int:
        return r
    if isinstance(r, int | np.integer) and not isinstance(r, bool):
        return int(r)
    raise TypeError(f"{op}: the callable spec {desc()} must return an int or None, got {r!r}")


def _path_str(prefix: str, path) -> str:
    return prefix + jax.tree_util.keystr(tuple(path))


class _Specs:
    """The spec language of one vmap, kept out of the PyTree's children. Equal by value when the specs
    are hashable (so rebuilding the same vmap hits `jax.jit` caches), else by identity (a dict spec)."""

    __slots__ = ("default", "args", "kwargs", "names", "state", "policy", "_key")

    def __init__(
        self,
        default,
        args: tuple,
        kwargs: dict,
        names: tuple[str, ...],
        state: Any = None,
        policy: UnexpectedState = "raise",
    ):
        self.default, self.args, self.kwargs, self.names = default, args, kwargs, names
        self.state = state
        self.policy: UnexpectedState = policy
        key = (default, args, tuple(kwargs.items()), names, (type(state).__name__, state), policy)  # False != 0
        try:
            hash(key)
        except TypeError:
            key = None
        self._key = key

    def __hash__(self):
        return id(self) if self._key is None else hash(self._key)

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not _Specs or self._key is None or other._key is None:
            return False
        return self._key == other._key


class _VmapWrapper:
    """The mapped function. A plain registered PyTree (``fn`` is its child, so arrays held by a
    callable Module stay visible to `equinox.filter_jit`), hashable by identity for `jax.jit`, and a
    descriptor, so it works as a method. Not an `equinox.Module`: building one costs ~1 us, not ~40."""

    def __init__(self, fun: Callable, axes: tuple, specs: _Specs):
        self._fun, self._axes, self._specs = fun, axes, specs
        functools.update_wrapper(self, fun, updated=())  # not __dict__: fn may be a Module with fields

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return _Bound(self, instance)

    def __call__(self, /, *args, **kwargs):
        return _run(self, args, kwargs)

    def __repr__(self):
        return f"vmap({self._fun!r}, {tuple(Axis(n, s) if s is not None else n for n, s in self._axes)})"


class _Bound:
    """``wrapper`` bound to an instance (a PyTree, like `equinox.Partial`, but cheap)."""

    __slots__ = ("wrapper", "instance")

    def __init__(self, wrapper: _VmapWrapper, instance: Any):
        self.wrapper, self.instance = wrapper, instance

    def __call__(self, /, *args, **kwargs):
        return _run(self.wrapper, (self.instance, *args), kwargs)


jax.tree_util.register_pytree_node(
    _VmapWrapper, lambda w: ((w._fun,), (w._axes, w._specs)), lambda aux, ch: _VmapWrapper(ch[0], *aux)
)
jax.tree_util.register_pytree_node(
    _Bound, lambda b: ((b.wrapper, b.instance), None), lambda _, ch: _Bound(*ch)
)


def _spec_for(sp: _Specs, i: int | None, key: str | None) -> tuple[Any, str]:
    """The spec of positional argument ``i`` or keyword ``key``, and a description for errors."""
    names = sp.names
    if key is None:
        assert i is not None
        if i < len(sp.args):
            return sp.args[i], f"args[{i}]"
        if i < len(names) and names[i] in sp.kwargs:
            return sp.kwargs[names[i]], f"kwargs[{names[i]!r}]"
        return sp.default, "default"
    if key in sp.kwargs:
        return sp.kwargs[key], f"kwargs[{key!r}]"
    if key in names and names.index(key) < len(sp.args):
        j = names.index(key)
        return sp.args[j], f"args[{j}]"
    return sp.default, "default"


def _arg_label(w: Any, i: int | None, key: str | None) -> str:  # w: a _VmapWrapper or pmap's; reads w._fun
    if key is not None:
        return key
    names = _positional_params(w._fun)[0]
    return names[i] if i is not None and i < len(names) else f"args[{i}]"


def _run(w: _VmapWrapper, args: tuple, kwargs: dict, *, op: str = "vmap", front: bool = False,
         jax_names: tuple | None = None):
    """Run the mapped call. ``front=True`` leaves the state's mapped axes in front and returns
    ``(out, plan)`` (`pmap` and `map` lay them out later with ``plan.fix``; plan is None without state);
    ``jax_names`` overrides the JAX axis names (`map` classifies under a private one)."""
    axes = w._axes
    n_lev = len(axes)
    sizes: list = [s for _, s in axes]
    src: list = [f"the given {Axis(n, s)}" if s is not None else None for n, s in axes]
    sp = w._specs
    st = None if sp.state is False else _state.find_state(sp.state, sp.names, args, kwargs, op)

    leaves: list = []
    treedefs: list = []
    dyn_pos: list = []  # index into leaves of each array passed through vmap
    dyn_axes: list = []  # reduced axes for NamedArrays, None for plain arrays
    level_specs: list = [[] for _ in range(n_lev)]
    kw_keys = sorted(kwargs)
    where_list = [(i, None) for i in range(len(args))] + [(None, k) for k in kw_keys]
    values = list(args) + [kwargs[k] for k in kw_keys]
    state_in: list = []  # for each leaf of the state argument: its position per level (None: broadcast)

    for (i, key), val in zip(where_list, values, strict=True):
        is_st = st == (i, key)
        sub_leaves, td = jax.tree.flatten(val, is_leaf=_is_named)
        treedefs.append((td, len(sub_leaves)))
        if not sub_leaves:
            continue
        spec, where = _spec_for(sp, i, key)
        if is_st and where == "default":
            spec = None  # plain arrays in the state are broadcast unless args/kwargs say otherwise

        def desc(where=where, i=i, key=key) -> str:
            return f"{where} (for argument {_arg_label(w, i, key)!r})"

        specs = _leaf_specs(spec, val, sub_leaves, op, desc)
        base = len(leaves)
        leaves.extend(sub_leaves)
        for j, (leaf, s) in enumerate(zip(sub_leaves, specs, strict=True)):
            if is_st:
                state_in.append((None,) * n_lev)
            if _is_named(leaf):
                cur = list(leaf.axes)
                names = [a.name for a in cur]
                lspecs = []
                for k, (name, _) in enumerate(axes):
                    if name in names:
                        p = names.index(name)
                        ax = cur.pop(p)
                        names.pop(p)
                        if sizes[k] is None:
                            sizes[k], src[k] = ax.size, (i, key, j, leaf.axes)
                        elif sizes[k] != ax.size:
                            _size_error(w, args, kwargs, k, ax.size, (i, key, j, leaf.axes), src[k], sizes[k])
                        lspecs.append(p)
                    else:
                        lspecs.append(None)
                if all(p is None for p in lspecs):
                    continue  # broadcast: stays a static leaf
                dyn_axes.append(tuple(cur))
            elif (s0 := _level_spec(s, leaf, None, op, desc)) is None:
                continue
            elif not _is_array(leaf):
                raise ValueError(
                    f"{op}: argument {_leaf_path(w, args, kwargs, i, key, j)} is a {type(leaf).__name__}, "
                    f"not an array, but its spec ({where}) maps it along dimension {s0}; only arrays can be "
                    "mapped: give it the spec None"
                )
            else:
                shape = list(np.shape(leaf))
                lspecs = []
                sk: int | None = s0
                for k in range(n_lev):
                    if k and sk is not None:  # as nested vmaps: the spec again, on what is left of the leaf
                        sk = _level_spec(s, leaf, tuple(shape), op, desc)
                    if sk is None:  # once broadcast, the leaf is the same at every inner level
                        lspecs.append(None)
                        continue
                    d = sk + len(shape) if sk < 0 else sk
                    if not 0 <= d < len(shape):
                        raise ValueError(
                            f"{op}: argument {_leaf_path(w, args, kwargs, i, key, j)} of shape {np.shape(leaf)} "
                            f"has no dimension {sk} to map over axis {axes[k][0]!r} (spec from {where}); "
                            "give it the spec None to broadcast it, or name its axes with nx.named"
                        )
                    n = shape.pop(d)
                    if sizes[k] is None:
                        sizes[k], src[k] = n, (i, key, j, np.shape(leaf))
                    elif sizes[k] != n:
                        _size_error(w, args, kwargs, k, n, (i, key, j, np.shape(leaf)), src[k], sizes[k])
                    lspecs.append(d)
                dyn_axes.append(None)
            if is_st:
                state_in[-1] = tuple(lspecs)
            dyn_pos.append(base + j)
            for k in range(n_lev):
                level_specs[k].append(lspecs[k])

    for k, (name, _) in enumerate(axes):
        if sizes[k] is None:
            raise ValueError(
                f"{op}: no argument has axis {name!r}, so its size is unknown: "
                f"pass Axis({name!r}, size) or {{{name!r}: size}} as the axis"
            )

    mapped = tuple(Axis(name, sizes[k]) for k, (name, _) in enumerate(axes))
    mapped_names = {a.name for a in mapped}
    n_args = len(args)
    fun = w._fun

    def call_fn(dyn):
        full = list(leaves)
        for p, arr, ax in zip(dyn_pos, dyn, dyn_axes, strict=True):
            full[p] = arr if ax is None else _new(arr, ax)
        vals = []
        start = 0
        for td, n in treedefs:
            vals.append(td.unflatten(full[start : start + n]))
            start += n
        out = fun(*vals[:n_args], **dict(zip(kw_keys, vals[n_args:], strict=True)))
        for leaf in jax.tree.leaves(out, is_leaf=_is_named):
            if _is_named(leaf) and _is_array(leaf.array):
                clash = [a.name for a in leaf.axes if a.name in mapped_names]
                if clash:
                    raise ValueError(
                        f"{op}: the function returned a NamedArray with axes {leaf.axes}, which include the "
                        f"mapped axes {clash}; the mapped axes are added back to every output, so rename them"
                    )
        return out

    dyn_in = [leaves[p].array if ax is not None else leaves[p] for p, ax in zip(dyn_pos, dyn_axes, strict=True)]
    if st is None:
        f = call_fn
        for k in reversed(range(n_lev)):
            f = eqx.filter_vmap(f, in_axes=(level_specs[k],), axis_name=mapped[k].name, axis_size=mapped[k].size)
        out = f(dyn_in)

        def restore(x):
            if _is_named(x) and _is_array(x.array):
                return _new(x.array, mapped + x.axes)
            return x

        out = jax.tree.map(restore, out, is_leaf=_is_named)
        return (out, None) if front else out

    # With state: every level returns (batched arrays, unbatched arrays); which is which is decided
    # while tracing (see _state) and recorded in `split`, with the output's static parts in `meta`.
    label = _arg_label(w, *st)
    state_val = args[cast(int, st[0])] if st[1] is None else kwargs[st[1]]  # (index, None) or (None, key)
    names_j = jax_names or tuple(a.name for a in mapped)
    meta: list = []  # [treedef, per leaf ("named", axes) | ("array",) | ("static", value), dyn -> leaf, n_y]
    split: list = [None] * n_lev

    def innermost(dyn):
        out = _state.split_output(call_fn(dyn), state_val, op, label)
        n_y = len(jax.tree.leaves(out[0], is_leaf=_is_named))
        out_leaves, td = jax.tree.flatten(out, is_leaf=_is_named)
        kinds, arrays, owner = [], [], []
        for i, leaf in enumerate(out_leaves):
            if _is_named(leaf) and _is_array(leaf.array):
                kinds.append(("named", leaf.axes))
            elif not _is_named(leaf) and _is_array(leaf):
                kinds.append(("array",))
            else:
                kinds.append(("static", leaf))
                continue
            arrays.append(leaf.array if _is_named(leaf) else leaf)
            owner.append(i)
        meta[:] = [td, kinds, owner, n_y]
        return arrays

    paths: list = []

    def path(d: int) -> str:
        if not paths:
            paths.extend(_state.leaf_paths(label, state_val))
        return paths[meta[2][d] - meta[3]]

    def level(k: int, inner: Callable) -> Callable:
        def body(dyn):
            vals = inner(dyn)
            owner, n_y = meta[2], meta[3]
            is_state = [o >= n_y for o in owner]
            mapped_in = [state_in[o - n_y] if o >= n_y else None for o in owner]
            flags = _state.classify(vals, is_state, mapped_in, k, names_j[k], op, sp.policy, path, mapped[k].name)
            split[k] = flags
            return [v for v, b in zip(vals, flags, strict=True) if b], [
                v for v, b in zip(vals, flags, strict=True) if not b
            ]

        vm = jax.vmap(body, in_axes=(level_specs[k],), out_axes=(0, None), axis_name=names_j[k],
                      axis_size=mapped[k].size)  # fmt: skip

        def merged(dyn):
            b, u = vm(dyn)
            ib, iu = iter(b), iter(u)
            return [next(ib) if f else next(iu) for f in split[k]]

        return merged

    f = innermost
    for k in reversed(range(n_lev)):
        f = level(k, f)
    vals = f(dyn_in)

    td, kinds, owner, n_y = meta
    out_leaves = [kd[1] if kd[0] == "static" else None for kd in kinds]
    entries = {}
    for d, (o, v) in enumerate(zip(owner, vals, strict=True)):
        batched = tuple(split[k][d] for k in range(n_lev))
        lead = tuple(a for a, b in zip(mapped, batched, strict=True) if b)
        out_leaves[o] = _new(v, lead + kinds[o][1]) if kinds[o][0] == "named" else v
        if o >= n_y:
            entries[o] = (batched, state_in[o - n_y])
    plan = _state.Plan(entries)
    out = td.unflatten(out_leaves)
    return (out, plan) if front else plan.fix(out)


def _leaf_path(w, args, kwargs, i, key, j) -> str:
    val = args[i] if key is None else kwargs[key]
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(val, is_leaf=_is_named)[0]]
    return repr(_path_str(_arg_label(w, i, key), paths[j]))


def _size_error(w, args, kwargs, k, n, here, first, first_size) -> None:
    def describe(info):
        if isinstance(info, str):
            return info
        i, key, j, shape = info
        what = f"axes {shape}" if shape and isinstance(shape[0], Axis) else f"shape {shape}"
        return f"argument {_leaf_path(w, args, kwargs, i, key, j)} ({what})"

    raise ValueError(
        f"vmap: axis {w._axes[k][0]!r} has size {n} in {describe(here)}, "
        f"but size {first_size} in {describe(first)}"
    )


@overload
def vmap(
    fn: None = None,
    axis: AxisSelection = ...,
    *,
    default: Any = _zero_if_array_else_none,
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
    default: Any = _zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable: ...


def vmap(
    fn: Callable | None = None,
    axis: AxisSelection | None = None,
    *,
    default: Any = _zero_if_array_else_none,
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
    parsed = _parse_axes(axis, "vmap")
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise TypeError(f"vmap: `args` must be a tuple with one spec per positional argument, got {args!r}")
    kwargs = {} if kwargs is None else dict(kwargs)
    _check_spec(default, "vmap", "`default`")
    for i, s in enumerate(args):
        _check_spec(s, "vmap", f"args[{i}]")
    for k, s in kwargs.items():
        _check_spec(s, "vmap", f"kwargs[{k!r}]")
    _state.check_options(state, unexpected_state, "vmap")
    names: tuple[str, ...] = ()
    if args or kwargs or type(state) in (int, str):  # a parameter may be passed either way: use the signature
        names, kw_ok = _positional_params(fn)
        if kwargs and kw_ok is not None:
            unknown = [k for k in kwargs if k not in kw_ok]
            if unknown:
                raise ValueError(f"vmap: `kwargs` has specs for {unknown}, which are not parameters of {fn!r}")
    return _VmapWrapper(fn, parsed, _Specs(default, tuple(args), kwargs, names, state, unexpected_state))
