"""`lift`: run any positional function over named arrays (penzai's ``nmap``, with core axes).

Most of jax.numpy has a named version in namedax; `lift` covers the rest, and user code. The *core*
axes of a call are the ones the function works along: it sees them as its trailing positional
dimensions, in the order given. Every other named axis is *mapped*: the function is `jax.vmap`-ed
over it (under the axis's name, so named collectives work inside), and an argument that lacks a mapped
axis is broadcast along it. Results get the mapped axes first, then their trailing dimensions named.

Per signature (the function, the arguments' axes, dtypes and static values) the plan is built once
through `_kernels.cached`: the transposes, the nested vmaps and the result's axes (found with
`jax.eval_shape`, so a result that cannot be named is an error before anything runs). Eager calls
run it jitted; traced calls (jit, grad, vmap) run the plain version.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.ones({"batch": 2, "time": 8})
    >>> nx.lift(jnp.fft.rfft, "time", out_axes="freq")(x).shape
    {'batch': 2, 'freq': 5}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core import _kernels
from ..core._axis import Axis, AxisSelector, axis_name, to_selectors
from ..core._named_array import AxisNotFoundError, NamedArray, _is_named, _new


def lift(
    fn: Callable[..., Any],
    axis: AxisSelector | Sequence[AxisSelector] | None = None,
    *,
    out_axes: AxisSelector | Sequence[AxisSelector] | None = None,
) -> Callable[..., Any]:
    """Lift a positional function to named arrays: vmapped over every axis but the core ``axis``.

    The lifted function takes the arguments of ``fn``. In every `NamedArray` argument (at any depth
    of the argument PyTrees, keyword arguments included) the core axes become ``fn``'s trailing
    positional dimensions, in the order given; ``fn`` is mapped over all other axes, by name: an
    argument that lacks a mapped axis is not mapped along it (broadcast). Other arguments (plain
    arrays, numbers, strings) reach ``fn`` unchanged and unmapped. With ``axis=None`` ``fn`` sees
    one element of each argument at a time (a pure elementwise map).

    Each array the function returns comes back as a NamedArray: the mapped axes first (in order of
    first appearance across the arguments), then its trailing dimensions named, by the first rule
    that applies: none if there are none (``fn`` reduced the core axes); ``out_axes`` if given; the
    core axes' names if the dimensions have their sizes (in order).

    Args:
        fn: a positional function of arrays (and anything else), returning an array or a PyTree of
            arrays. It must be hashable (functions are): plans are cached on it.
        axis: the core axis or axes, by name or `Axis`; ``None`` for none.
        out_axes: names (or `Axis`) for the trailing dimensions of the results, when they are not
            the core axes (a transform that changes a size, a new dimension).

    Returns:
        The lifted function.

    Raises:
        AxisNotFoundError: a core axis is held by no argument.
        ValueError: a mapped axis has two sizes across the arguments (each argument's axes are
            listed), or a result's trailing dimensions cannot be named (the message gives the
            result's shape and what was expected).

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
        >>> nx.lift(jnp.linalg.norm, "embed")(x).axes  # the core axis reduced: no trailing dimension
        (Axis('batch', 2),)
        >>> k = nx.named(jnp.array([1.0, -1.0]), "embed")  # a core axis with another size
        >>> nx.lift(jnp.convolve, "embed", out_axes="conv")(x, k).array
        Array([[ 0.,  1.,  1., -2.],
               [ 3.,  1.,  1., -5.]], dtype=float32)
        >>> nx.lift(lambda a, b: a * b + 1)(x, nx.named(jnp.array([1.0, 2.0]), "batch")).array
        Array([[ 1.,  2.,  3.],
               [ 7.,  9., 11.]], dtype=float32)
    """
    core = _names(axis, "lift", "axis")
    outs = _names(out_axes, "lift", "out_axes") if out_axes is not None else None
    if len(set(s[0] for s in core)) != len(core):
        raise ValueError(f"lift({_fn_name(fn)}): a core axis is listed twice in axis={axis!r}")

    @functools.wraps(fn)
    def lifted(*args: Any, **kwargs: Any) -> Any:
        leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=_is_named)
        named, dynamic, static = [], [], []
        for i, leaf in enumerate(leaves):
            if _is_named(leaf):
                named.append(i)
            elif isinstance(leaf, jax.Array | np.ndarray):
                dynamic.append(i)
            else:
                static.append(i)
        sig = (
            tuple(leaves[i].axes for i in named),
            tuple(leaves[i].array.dtype for i in named),
            tuple((np.shape(leaves[i]), leaves[i].dtype) for i in dynamic),
        )
        # static arguments are baked into the plan: typed, so that 1, 1.0 and True get their own
        statics = tuple((type(leaves[i]), leaves[i]) for i in static)
        key = ("lift", fn, core, outs, treedef, tuple(named), tuple(dynamic), *sig, statics)
        build = (fn, core, outs, treedef, leaves, named, dynamic)
        try:
            plan = _kernels.cached(key, _plan, *build)
        except TypeError:
            if _kernels.hashable(key):
                raise
            plan = _plan(*build)  # an unhashable static argument: planned on every call
        k, out_tree, out_axes_list = plan
        arrays = k(*[leaves[i].array for i in named], *[leaves[i] for i in dynamic])
        flat = [_new(a, axes) for a, axes in zip(jax.tree.leaves(arrays), out_axes_list, strict=True)]
        return jax.tree.unflatten(out_tree, flat)

    return lifted


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or repr(fn)


def _names(sel: Any, op: str, what: str) -> tuple[tuple[str, int | None], ...]:
    """``(name, size or None)`` per selector (a size where an `Axis` was given)."""
    if sel is None:
        return ()
    return tuple((axis_name(s), s.size if type(s) is Axis else None) for s in to_selectors(sel, f"{op} ({what})"))


def _plan(fn, core, outs, treedef, leaves, named, dynamic):
    """The kernel, the results' PyTree structure and each result's axes."""
    name = f"lift({_fn_name(fn)})"
    core_names = tuple(n for n, _ in core)
    arrays: list[NamedArray] = [leaves[i] for i in named]
    # sizes by name across the arguments: mapped axes must agree, core axes may differ (convolve)
    sizes: dict[str, set[int]] = {}
    mapped: dict[str, int] = {}
    for x in arrays:
        for a in x.axes:
            sizes.setdefault(a.name, set()).add(a.size)
            if a.name not in core_names:
                if mapped.setdefault(a.name, a.size) != a.size:
                    raise ValueError(f"{name}: mapped axis {a.name!r} has different sizes across the arguments; "
                                     f"{_describe(treedef, leaves, named)}")
    for n, size in core:
        if n not in sizes:
            raise AxisNotFoundError(f"{name}: no argument has the core axis {n!r}; {_describe(treedef, leaves, named)}")
        if size is not None and sizes[n] != {size}:
            raise ValueError(f"{name}: axis={Axis(n, size)} given, but the arguments have sizes {sorted(sizes[n])}")
    mapped_axes = tuple(Axis(n, s) for n, s in mapped.items())
    # each argument transposed to (its mapped axes in mapped order, its core axes in core order)
    perms, in_axes = [], []
    for x in arrays:
        names = [a.name for a in x.axes]
        order = [n for n in mapped if n in names] + [n for n in core_names if n in names]
        perms.append(tuple(names.index(n) for n in order))
        in_axes.append([n in names for n in mapped])
    n_named = len(named)
    # the plan holds no array: named and dynamic leaves are filled in per call
    template = [None if i in named or i in dynamic else leaf for i, leaf in enumerate(leaves)]

    def run(*xs):
        named_xs = [x if p == tuple(range(len(p))) else jnp.transpose(x, p) for x, p in zip(xs, perms, strict=False)]
        dyn_xs = xs[n_named:]

        def inner(*slices):
            full = list(template)
            for i, v in zip(named, slices, strict=True):
                full[i] = v
            for i, v in zip(dynamic, dyn_xs, strict=True):
                full[i] = v
            args, kwargs = jax.tree.unflatten(treedef, full)
            return fn(*args, **kwargs)

        f = inner
        for level in reversed(range(len(mapped_axes))):  # innermost first: the first mapped axis leads
            f = jax.vmap(f, in_axes=tuple(0 if has[level] else None for has in in_axes),
                         axis_name=mapped_axes[level].name)  # fmt: skip
        return f(*named_xs)

    try:  # abstract evaluation: shapes only, nothing runs
        shapes = jax.eval_shape(run, *[x.array for x in arrays], *[leaves[i] for i in dynamic])
    except Exception as e:
        # fn's own error: say which call it was
        e.add_note(f"{name}: fn got each NamedArray argument with the core axes {core_names} as its trailing "
                   f"dimensions, mapped over {mapped_axes}")  # fmt: skip
        raise
    out_leaves, out_tree = jax.tree.flatten(shapes)
    out_axes_list = [_result_axes(name, s.shape, mapped_axes, core, sizes, outs) for s in out_leaves]
    return _kernels.jit_pair(run), out_tree, out_axes_list


def _result_axes(name, shape, mapped_axes, core, sizes, outs) -> tuple[Axis, ...]:
    trailing = tuple(shape[len(mapped_axes) :])
    if not trailing:
        return mapped_axes
    core_sizes = tuple((n, next(iter(sizes[n])) if len(sizes[n]) == 1 else None) for n, _ in core)
    if outs is not None:
        fits = len(outs) == len(trailing) and all(s in (None, t) for (_, s), t in zip(outs, trailing, strict=True))
        if not fits:
            raise ValueError(f"{name}: the result has shape {tuple(shape)}: after the mapped axes {mapped_axes} its "
                             f"trailing dimensions {trailing} do not fit out_axes={_fmt(outs)}")
        names = [n for n, _ in outs]
    elif len(core_sizes) == len(trailing) and all(s == t for (_, s), t in zip(core_sizes, trailing, strict=True)):
        names = [n for n, _ in core_sizes]
    else:
        raise ValueError(
            f"{name}: the result has shape {tuple(shape)}: after the mapped axes {mapped_axes} its trailing "
            f"dimensions {trailing} are not the core axes ({', '.join(_sizes_str(n, sizes[n]) for n, _ in core)}); "
            f"pass out_axes=(one name per trailing dimension)"
        )
    out = mapped_axes + tuple(Axis(n, t) for n, t in zip(names, trailing, strict=True))
    if len({a.name for a in out}) != len(out):
        raise ValueError(f"{name}: result axes {out} repeat a name; choose other out_axes")
    return out


def _sizes_str(name: str, sizes: set[int]) -> str:
    return f"{name!r} of size {' or '.join(map(str, sorted(sizes)))}"


def _fmt(axes) -> str:
    return "(" + ", ".join(f"{n!r}" if s is None else f"{n!r} ({s})" for n, s in axes) + ")"


def _describe(treedef, leaves, named) -> str:
    """Each NamedArray argument's path and axes, for errors."""
    paths = jax.tree_util.tree_flatten_with_path(jax.tree.unflatten(treedef, leaves), is_leaf=_is_named)[0]
    parts = []
    for path, leaf in paths:
        if _is_named(leaf):
            where = jax.tree_util.keystr(path)
            where = where.replace("[0]", "args", 1) if where.startswith("[0]") else where.replace("[1]", "kwargs", 1)
            parts.append(f"{where}: {leaf.axes}")
    return "the arguments have " + "; ".join(parts)
