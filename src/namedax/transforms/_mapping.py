"""The mapping core shared by `vmap`, `pmap`, `map` and `scan`: which dimension of each argument is mapped.

Every named transform does the same first step: for each leaf of the arguments (NamedArrays are
leaves) and each mapped axis, find the dimension that is mapped (the axis's position in a
NamedArray; for a plain leaf, what the spec language says), check that every leaf agrees on the
axis's size, and say clearly when it does not or when no argument gives the size. `resolve` does
it once (as equinox shares one axis resolver between ``filter_vmap`` and ``filter_pmap``); the
front-ends differ only in how they run the result: nested `jax.vmap` levels (`vmap`), a
`jax.shard_map` around them (`pmap`), a `jax.lax.scan` / `jax.lax.map` over the leading dimension
(`scan`, `fold`, `map`).

The spec language for plain leaves (``default`` / ``args`` / ``kwargs``): an int maps along that
dimension, None broadcasts, a callable ``leaf -> int | None`` decides per leaf, and a PyTree prefix
of these gives per-field specs. `scan`'s ``is_scanned`` and `map`'s ``is_mapped`` (a bool, or a
callable ``leaf -> bool``) are the same concept, kept as aliases: `loop_default` converts them.

Also here, because every transform needs them once: labels for error messages (parameter names and
leaf paths), the eager cache (eager calls run through one cached jit, as `jax.jit` does), the carry
check of the loops, the gradient-checkpointing option, and the registration that hides namedax's
own frames from JAX's filtered tracebacks.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> from namedax.transforms import _mapping
    >>> x = nx.named(jnp.zeros((3, 2)), ("embed", "batch"))
    >>> r = _mapping.resolve(lambda v, w: v, (("batch", None),), _mapping.Specs(_mapping.zero_if_array_else_none),
    ...                      (x, jnp.ones(2)), {}, "vmap")
    >>> r.mapped, r.level_specs
    ((Axis('batch', 2),), [[1, 0]])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax._src import traceback_util

from ..core._axis import Axis, AxisSelection, axis_name, to_selectors
from ..core._digest import ValueKey
from ..core._kernels import hashable, is_eager
from ..core._named_array import _is_named, _new
from . import _state
from ._state import UnexpectedState

# Hide every frame of the namedax package from JAX's filtered tracebacks, as equinox does for its own
# modules: an error raised by user code inside nx.vmap then shows the user's frames, not namedax's.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
traceback_util.register_exclusion(PACKAGE_ROOT)

_is_array = eqx.is_array  # jax and numpy arrays, as filter_vmap sees them


# ---- the spec language -----------------------------------------------------------------------


def zero_if_array_else_none(x: Any) -> int | None:
    """The default spec: map plain arrays along their leading dimension, broadcast everything else.
    A 0-d array has no dimension to map, so it is broadcast (jax.vmap would refuse it)."""
    return 0 if _is_array(x) and getattr(x, "ndim", 1) > 0 else None


def loop_default(flag: bool | Callable[[Any], bool]) -> Any:
    """The spec equivalent to `scan`'s ``is_scanned`` / `map`'s ``is_mapped`` (a bool, or a callable
    ``leaf -> bool``): slice a selected leaf along its leading dimension."""
    if flag is True:
        return 0
    if flag is False:
        return None
    if not callable(flag):
        raise TypeError(f"expected a bool or a callable leaf -> bool, got {flag!r}")
    return lambda leaf: 0 if flag(leaf) else None


def parse_axes(axis: AxisSelection, op: str) -> tuple[tuple[str, int | None], ...]:
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


def check_spec(spec: Any, op: str, where: str) -> None:
    if spec is None or type(spec) is int or spec is zero_if_array_else_none or _is_callable_spec(spec):
        return
    if isinstance(spec, bool):
        raise TypeError(f"{op}: spec {where} must be an int, None or a callable, got {spec!r}")
    for s in jax.tree.leaves(spec, is_leaf=lambda s: s is None):
        if not (s is None or (type(s) is int) or callable(s)):
            raise TypeError(
                f"{op}: spec {where} must be a PyTree of ints, None and callables leaf -> int | None, got leaf {s!r}"
            )


def _leaf_specs(spec: Any, sub: Any, leaves: list, op: str, desc: Callable[[], str]) -> list:
    """One spec (int, None or a callable) per leaf of ``sub`` (NamedArrays are leaves; their entry is
    unused). ``desc()`` describes the spec for error messages (built only on error: it is slow)."""
    if spec is None or type(spec) is int or spec is zero_if_array_else_none or _is_callable_spec(spec):
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
    if spec is zero_if_array_else_none:  # the default needs no stand-in: the leaf is an array
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


class Specs:
    """The spec language of one transform, kept out of the PyTree's children. Equal by value when the
    specs are hashable (so rebuilding the same transform hits `jax.jit` caches), else by identity.
    ``names`` are ``fn``'s positional parameters (only needed when ``args`` / ``kwargs`` / ``state``
    refer to parameters); ``flag`` is the option a loop user spelled (``is_scanned``, ``default``
    ...), for hints in error messages, None for vmap and pmap."""

    __slots__ = ("default", "args", "kwargs", "names", "state", "policy", "flag", "_key")

    def __init__(
        self,
        default: Any,
        args: tuple = (),
        kwargs: dict | None = None,
        names: tuple[str, ...] = (),
        state: Any = None,
        policy: UnexpectedState = "raise",
        flag: str | None = None,
    ):
        kwargs = {} if kwargs is None else kwargs
        self.default, self.args, self.kwargs, self.names = default, args, kwargs, names
        self.state, self.flag = state, flag
        self.policy: UnexpectedState = policy
        # False != 0 for the state option; the one by-value-else-by-identity rule of core/_digest
        self._key = ValueKey((default, args, tuple(kwargs.items()), names, (type(state).__name__, state), policy, flag))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return self is other or (type(other) is Specs and self._key == other._key)

    def spec_for(self, i: int | None, key: str | None) -> tuple[Any, str]:
        """The spec of positional argument ``i`` or keyword ``key``, and a description for errors."""
        names = self.names
        if key is None:
            assert i is not None
            if i < len(self.args):
                return self.args[i], f"args[{i}]"
            if i < len(names) and names[i] in self.kwargs:
                return self.kwargs[names[i]], f"kwargs[{names[i]!r}]"
            return self.default, "default"
        if key in self.kwargs:
            return self.kwargs[key], f"kwargs[{key!r}]"
        if key in names and names.index(key) < len(self.args):
            j = names.index(key)
            return self.args[j], f"args[{j}]"
        return self.default, "default"


def make_specs(
    fn: Callable, default: Any, args: Any, kwargs: Mapping[str, Any] | None, state: Any, policy: Any, op: str
) -> Specs:
    """Check the spec options of `vmap` / `pmap` (at construction) and bundle them."""
    if type(args) is not tuple and (not isinstance(args, Sequence) or isinstance(args, str)):
        raise TypeError(f"{op}: `args` must be a tuple with one spec per positional argument, got {args!r}")
    kwargs = {} if kwargs is None else dict(kwargs)
    check_spec(default, op, "`default`")
    for i, s in enumerate(args):
        check_spec(s, op, f"args[{i}]")
    for k, s in kwargs.items():
        check_spec(s, op, f"kwargs[{k!r}]")
    _state.check_options(state, policy, op)
    names: tuple[str, ...] = ()
    if args or kwargs or type(state) in (int, str):  # a parameter may be passed either way: use the signature
        names, kw_ok = positional_params(fn)
        if len(args) > len(names) and _fixed_positionals(fn):
            raise ValueError(f"{op}: `args` has {len(args)} specs, but {getattr(fn, '__qualname__', fn)!r} takes "
                             f"{len(names)} positional argument{'s' * (len(names) != 1)} {list(names)}; give one spec "
                             "per positional argument (None broadcasts one)")
        if kwargs and kw_ok is not None:
            unknown = [k for k in kwargs if k not in kw_ok]
            if unknown:
                raise ValueError(f"{op}: `kwargs` has specs for {unknown}, which are not parameters of {fn!r}")
    return Specs(default, tuple(args), kwargs, names, state, policy)


# ---- labels for error messages -----------------------------------------------------------------


def positional_params(fn: Callable) -> tuple[tuple[str, ...], set[str] | None]:
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


def _fixed_positionals(fn: Callable) -> bool:
    """Whether ``fn`` has a signature without ``*args`` (so its positional arguments can be counted)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def labels(fn: Callable, n: int, skip: int = 0) -> list[str]:
    """Names for ``n`` positional arguments of ``fn`` after its first ``skip`` parameters (the layer,
    the carry, ...): the parameter names, ``args[i]`` past them."""
    names = positional_params(fn)[0][skip:]
    return [names[i] if i < len(names) else f"args[{i}]" for i in range(n)]


def arg_label(fn: Callable, i: int | None, key: str | None, skip: int = 0) -> str:
    """The name of positional argument ``i`` (after ``skip`` parameters) or keyword ``key``."""
    if key is not None:
        return key
    assert i is not None
    return labels(fn, i + 1, skip)[i]


def leaf_paths(args: tuple, kwargs: dict, names: list[str]) -> list[str]:
    """A readable path for every leaf of ``(args, kwargs)`` (NamedArrays are leaves); ``names`` label
    the positional arguments (see `labels`)."""
    out = []
    for path, _ in jax.tree_util.tree_flatten_with_path((args, kwargs), is_leaf=_is_named)[0]:
        head = names[path[1].idx] if path[0].idx == 0 else str(path[1].key)
        out.append(repr(head + jax.tree_util.keystr(tuple(path[2:]))))
    return out


# ---- resolving one call ----------------------------------------------------------------------


class Resolved:
    """One call, resolved: the flat leaves of the arguments (NamedArrays are leaves), which of them
    are mapped (``dyn_pos``), at which dimension per level (``level_specs[k][d]`` for the ``d``-th
    mapped leaf, None where it is broadcast at that level), the axes a mapped NamedArray keeps inside
    ``fn`` (``dyn_axes``; None for plain arrays), the mapped axes with their sizes, and where the
    state argument is (``st``) with its leaves' positions per level (``state_in``)."""

    __slots__ = ("leaves", "treedefs", "n_args", "kw_keys", "dyn_pos", "dyn_axes", "level_specs", "mapped",
                 "st", "state_in")  # fmt: skip

    def __init__(self, leaves, treedefs, n_args, kw_keys, dyn_pos, dyn_axes, level_specs, mapped, st, state_in):
        self.leaves, self.treedefs, self.n_args, self.kw_keys = leaves, treedefs, n_args, kw_keys
        self.dyn_pos, self.dyn_axes, self.level_specs, self.mapped = dyn_pos, dyn_axes, level_specs, mapped
        self.st, self.state_in = st, state_in

    def dyn_arrays(self) -> list:
        """The arrays to map (a NamedArray's jax array), in the order of ``dyn_pos``."""
        leaves = self.leaves
        pairs = zip(self.dyn_pos, self.dyn_axes, strict=True)
        return [leaves[p].array if ax is not None else leaves[p] for p, ax in pairs]

    def rebuild(self, dyn: Sequence) -> tuple[tuple, dict]:
        """``(args, kwargs)`` with the mapped leaves replaced by ``dyn`` (slices: NamedArrays get their
        reduced axes back)."""
        full = list(self.leaves)
        for p, arr, ax in zip(self.dyn_pos, dyn, self.dyn_axes, strict=True):
            full[p] = arr if ax is None else _new(arr, ax)
        vals = []
        start = 0
        for td, n in self.treedefs:
            vals.append(td.unflatten(full[start : start + n]))
            start += n
        n_args = self.n_args
        return tuple(vals[:n_args]), dict(zip(self.kw_keys, vals[n_args:], strict=True))

    def dims(self) -> list:
        """For every leaf, its mapped dimension at the outermost level, or None."""
        out: list = [None] * len(self.leaves)
        for p, d in zip(self.dyn_pos, self.level_specs[0], strict=True):
            out[p] = d
        return out


def resolve(
    fn: Callable, axes: tuple, sp: Specs, args: tuple, kwargs: dict, op: str, skip: int = 0
) -> Resolved:
    """Resolve one call of ``fn`` mapped over ``axes`` (``((name, size or None), ...)``, outermost
    first): see `Resolved`. Raises the errors every transform shares (sizes that disagree, an unknown
    size, a spec that maps a non-array or a missing dimension), naming ``op``, the arguments (by
    ``fn``'s parameter names after ``skip``) and their sizes."""
    n_lev = len(axes)
    sizes: list = [s for _, s in axes]
    src: list = [k if s is not None else None for k, (_, s) in enumerate(axes)]  # k: the given size
    found: list = [None] * n_lev  # an Axis of the right size, when an argument has one
    st = None if sp.state is False else _state.find_state(sp.state, sp.names, args, kwargs, op)
    err = _Errors(fn, args, kwargs, op, skip, sp.flag, axes)

    leaves: list = []
    treedefs: list = []
    dyn_pos: list = []  # index into leaves of each array to map
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
        spec, where = sp.spec_for(i, key)
        if is_st and where == "default":
            spec = None  # plain arrays in the state are broadcast unless args/kwargs say otherwise

        def desc(where=where, i=i, key=key) -> str:
            return f"{where} (for argument {arg_label(fn, i, key, skip)!r})"

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
                            err.size(k, ax.size, (i, key, j, leaf.axes), src[k], sizes[k])
                        found[k] = ax
                        lspecs.append(p)
                    else:
                        lspecs.append(None)
                if lspecs.count(None) == n_lev:
                    continue  # broadcast: stays a static leaf
                dyn_axes.append(tuple(cur))
            elif (s0 := _level_spec(s, leaf, None, op, desc)) is None:
                continue
            elif not _is_array(leaf):
                err.not_array(i, key, j, leaf, where, s0)
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
                        err.no_dim(i, key, j, leaf, where, sk, k)
                    n = shape.pop(d)
                    if sizes[k] is None:
                        sizes[k], src[k] = n, (i, key, j, np.shape(leaf))
                    elif sizes[k] != n:
                        err.size(k, n, (i, key, j, np.shape(leaf)), src[k], sizes[k])
                    lspecs.append(d)
                dyn_axes.append(None)
            if is_st:
                state_in[-1] = tuple(lspecs)
            dyn_pos.append(base + j)
            for k in range(n_lev):
                level_specs[k].append(lspecs[k])

    for k, (name, _) in enumerate(axes):
        if sizes[k] is None:
            hint = f"Axis({name!r}, size)" + ("" if sp.flag else f" or {{{name!r}: size}}")
            raise ValueError(f"{op}: no argument has axis {name!r}, so its size is unknown: pass {hint} as the axis")
    mapped = tuple(Axis(name, sizes[k]) if found[k] is None else found[k] for k, (name, _) in enumerate(axes))
    return Resolved(leaves, treedefs, len(args), kw_keys, dyn_pos, dyn_axes, level_specs, mapped, st, state_in)


class _Errors:
    """The errors of `resolve`, worded for the transform called: vmap and pmap speak of specs, the
    loops (``flag`` set) of the option that selects the sliced plain leaves."""

    def __init__(self, fn, args, kwargs, op, skip, flag, axes):
        self.fn, self.args, self.kwargs, self.op = fn, args, kwargs, op
        self.skip, self.flag, self.axes = skip, flag, axes

    def path(self, i, key, j) -> str:
        val = self.args[i] if key is None else self.kwargs[key]
        paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(val, is_leaf=_is_named)[0]]
        return repr(arg_label(self.fn, i, key, self.skip) + jax.tree_util.keystr(tuple(paths[j])))

    def _describe(self, info) -> str:
        if type(info) is int:
            return f"the given {Axis(*self.axes[info])}"
        i, key, j, shape = info
        what = f"axes {shape}" if shape and isinstance(shape[0], Axis) else f"shape {shape}"
        return f"argument {self.path(i, key, j)} ({what})"

    def size(self, k, n, here, first, first_size):
        name = self.axes[k][0]
        if self.flag is None:
            raise ValueError(
                f"{self.op}: axis {name!r} has size {n} in {self._describe(here)}, "
                f"but size {first_size} in {self._describe(first)}"
            )
        shape = here[3]
        named = bool(shape) and isinstance(shape[0], Axis)
        detail = f"has size {n}" if named else f"has leading dimension size {n}; pass {self.flag}=... to leave it whole"
        raise ValueError(
            f"{self.op}: axis {name!r} has size {first_size} from {self._describe(first)}, but "
            f"{self._describe(here)} {detail}"
        )

    def not_array(self, i, key, j, leaf, where, s):
        if self.flag is not None:
            self._unsliceable(i, key, j, leaf)
        raise ValueError(
            f"{self.op}: argument {self.path(i, key, j)} is a {type(leaf).__name__}, not an array, but its spec "
            f"({where}) maps it along dimension {s}; only arrays can be mapped: give it the spec None"
        )

    def no_dim(self, i, key, j, leaf, where, s, k):
        if self.flag is not None and np.ndim(leaf) == 0:
            self._unsliceable(i, key, j, leaf)
        raise ValueError(
            f"{self.op}: argument {self.path(i, key, j)} of shape {np.shape(leaf)} has no dimension {s} to map "
            f"over axis {self.axes[k][0]!r} (spec from {where}); give it the spec None to broadcast it, or name "
            "its axes with nx.named"
        )

    def _unsliceable(self, i, key, j, leaf):
        raise ValueError(
            f"{self.op}: argument {self.path(i, key, j)} ({type(leaf).__name__}) is selected by `{self.flag}` but "
            "has no leading dimension to slice"
        )


def check_out_axes(tree: Any, names: Any, op: str, why: Callable[[list], str]) -> None:
    """Refuse a NamedArray output that already holds a mapped axis (the transform adds it back);
    ``why(clashing names)`` ends the message."""
    for leaf in jax.tree.leaves(tree, is_leaf=_is_named):
        if _is_named(leaf) and _is_array(leaf.array):
            clash = [a.name for a in leaf.axes if a.name in names]
            if clash:
                raise ValueError(f"{op}: the function returned a NamedArray with axes {leaf.axes}, {why(clash)}")


# ---- options and checks shared by the loops ---------------------------------------------------


def fn_alias(fn: Any, f: Any, op: str) -> Any:
    """``fn``, or the deprecated keyword ``f=`` (the old name of the first parameter) when given."""
    if f is None:
        return fn
    if fn is not None:
        raise TypeError(f"{op}: pass the function once, as `fn` (`f` is its old name)")
    return f


def one_of(op: str, default: Any, **aliases: Any) -> tuple[Any, str | None]:
    """The option given among ``default`` and its old names (``is_scanned=...``), and the name used;
    ``(default, None)`` when none was given. Giving two of them is an error."""
    given = [(k, v) for k, v in aliases.items() if v is not _UNSET]
    if default is not _UNSET:
        given.insert(0, ("default", default))
    if len(given) > 1:
        raise TypeError(f"{op}: {' and '.join(f'`{k}`' for k, _ in given)} are the same option; pass one")
    return (given[0][1], given[0][0]) if given else (_UNSET, None)


class _Unset:
    def __repr__(self):
        return "<unset>"


_UNSET: Any = _Unset()


def check_checkpoint(value: Any, op: str, name: str = "gradient_checkpointing") -> None:
    """``gradient_checkpointing`` (alias ``remat``): False, True or a `jax.checkpoint` policy."""
    if not (value is False or value is True or (callable(value) and not isinstance(value, type))):
        raise TypeError(
            f"{op}: `{name}` must be False, True or a jax.checkpoint policy "
            f"(e.g. jax.checkpoint_policies.nothing_saveable), got {value!r}"
        )


def check_unroll(unroll: Any, op: str) -> None:
    if not (isinstance(unroll, bool) or (isinstance(unroll, int) and unroll >= 1)):
        raise ValueError(f"{op}: `unroll` must be an int >= 1 or a bool, got {unroll!r}")


def checkpointed(body: Callable, policy: Any) -> Callable:
    """``body`` under `jax.checkpoint` (with the policy, if one is given), or as is for False."""
    # prevent_cse=False: inside a scan, CSE cannot merge the recomputation away (jax.checkpoint docs)
    if policy is False:
        return body
    if policy is True:
        return jax.checkpoint(body, prevent_cse=False)
    return jax.checkpoint(body, policy=policy, prevent_cse=False)


def check_carry(carry: Any, new_carry: Any, head: str, what: str = "carry") -> None:
    """The carry out of a step must match the carry in: the same structure (NamedArray axes are part
    of it), and every leaf the same shape and dtype. A weakly typed leaf in (a Python scalar) may
    change dtype: `jax.lax.scan` promotes it and traces the step again. ``head`` starts the message
    (``"scan over 'l': the carry must"``); ``what`` starts the path of a leaf."""
    carry_def, new_def = jax.tree.structure(carry), jax.tree.structure(new_carry)
    if new_def != carry_def:
        raise ValueError(f"{head} keep its structure and axes; it went in as {carry_def} and came out as {new_def}")
    ins = jax.tree_util.tree_flatten_with_path(carry, is_leaf=_is_named)[0]
    for (path, a), b in zip(ins, jax.tree.leaves(new_carry, is_leaf=_is_named), strict=True):
        ta = jax.typeof(a.array if _is_named(a) else a)
        tb = jax.typeof(b.array if _is_named(b) else b)
        if ta.shape != tb.shape or (ta.dtype != tb.dtype and not ta.weak_type):
            where = f"{what}{jax.tree_util.keystr(path)}"
            if _is_named(a):
                where += f" (axes {a.axes})"
            raise ValueError(
                f"{head} keep its shapes and dtypes; {where} went in as "
                f"{ta.dtype.name}{list(ta.shape)} and came out as {tb.dtype.name}{list(tb.shape)}"
                + ("" if ta.dtype == tb.dtype else "; cast it back, e.g. with .astype")
            )


# ---- eager calls: one cached trace -------------------------------------------------------------


def statics_hashable(tree: Any) -> bool:
    """Whether every non-array leaf of ``tree`` is hashable (so it can key a jit cache)."""
    return all(_is_array(leaf) or hashable(leaf) for leaf in jax.tree.leaves(tree))


def _as_if_not_jitted(e: BaseException) -> None:
    """Drop what JAX's jit boundary adds to an exception (a note, or a chained unfiltered trace): the
    eager jit is namedax's detail, and an error looks as it would without it."""
    notes = getattr(e, "__notes__", None)
    if notes:
        e.__notes__ = [n for n in notes if "JAX has removed its internal frames" not in n]
    cause = e.__cause__
    if isinstance(cause, traceback_util.UnfilteredStackTrace):
        e.__cause__, e.__context__ = cause.__cause__, cause.__context__
        e.__suppress_context__ = cause.__suppress_context__


def eager_cached(run: Callable) -> Callable:
    """``run``, but called eagerly it goes through one `equinox.filter_jit`: the trace is reused for
    the same function, argument structure, shapes and static values, as `jax.jit` reuses it (globals
    and closures are read at the first call). The cache is JAX's (least recently used, bounded;
    `jax.clear_caches` empties it). Under a trace, and when a static value is unhashable, ``run`` is
    called directly: the traced path pays one `is_eager` check."""
    jitted = eqx.filter_jit(run)

    def call(*args, **kwargs):
        if is_eager() and statics_hashable((args, kwargs)):
            try:
                return jitted(*args, **kwargs)
            except Exception as e:
                _as_if_not_jitted(e)
                raise
        return run(*args, **kwargs)

    call.__wrapped__ = run  # type: ignore[attr-defined]
    return call
