"""Collectives by axis name: `psum`, `pmean`, `pmax`, `pmin`, `all_gather`, `axis_index`.

Inside `namedax.vmap` (and `namedax.pmap`) a mapped axis is a JAX axis name equal to the axis's
name, so ``nx.psum(x, Batch)`` reduces ``x`` over every element of ``Batch``. The functions take an
`Axis` or its name (or several), and NamedArrays, plain arrays or PyTrees of them; NamedArrays keep
their axes (the mapped axis is not one of them inside the mapped function).

The hook: one named axis may be made of several JAX axes. `pmap` splits an axis over devices
(a ``shard_map`` mesh axis) and maps each device's block with vmap (a second JAX axis), and a
collective over the named axis must cover both. Every collective here resolves a name through
`jax_axis_names`, which reads a registry filled by the `axis_alias` context manager:

    with axis_alias("batch", ("batch_devices", "batch")):   # major to minor
        ...  # trace the mapped function here: nx.psum(x, "batch") sums over both JAX axes

Unregistered names resolve to themselves, ``(name,)``. The registry is thread-local and only
consulted while tracing, so the alias must be active while the function is traced.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Batch = nx.Axis("batch", 3)
    >>> x = nx.named(jnp.array([1.0, 2.0, 6.0]), Batch)
    >>> nx.vmap(lambda v: v - nx.pmean(v, Batch), Batch)(x).array
    Array([-2., -1.,  3.], dtype=float32)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._axis import Axis, AxisSelection, axis_name, to_selectors
from ..core._named_array import _is_named, _new

_LOCAL = threading.local()


def _registry() -> dict[str, tuple]:
    reg = getattr(_LOCAL, "aliases", None)
    if reg is None:
        reg = _LOCAL.aliases = {}
    return reg


def jax_axis_names(name: str) -> tuple:
    """The JAX axis names (major to minor) that make up the named axis ``name``: ``(name,)`` unless
    an `axis_alias` is active for it."""
    return _registry().get(name, (name,))


@contextlib.contextmanager
def axis_alias(name: str, jax_names: Sequence[Any]) -> Iterator[None]:
    """While active, collectives over the named axis ``name`` act over the JAX axes ``jax_names``
    (major to minor). For `pmap`: ``axis_alias("batch", ("batch_devices", "batch"))``."""
    reg = _registry()
    old = reg.get(name)
    reg[name] = tuple(jax_names)
    try:
        yield
    finally:
        if old is None:
            del reg[name]
        else:
            reg[name] = old


def mapped_size(name: str) -> int | None:
    """The size a named axis is mapped with here (by enclosing `namedax.vmap` / `namedax.pmap`), or
    None when it is not mapped."""
    size = 1
    for jn in jax_axis_names(name):
        try:
            size *= jax.lax.axis_size(jn)
        except NameError:
            return None
    return size


def _resolve(axis: AxisSelection, op: str) -> tuple[Any, ...]:
    """All JAX axis names for a selection, checked to be mapped here."""
    out: list = []
    for sel in to_selectors(axis, op):
        name = axis_name(sel)
        names = jax_axis_names(name)
        size = mapped_size(name)
        if size is None:
            raise ValueError(
                f"{op}: axis {name!r} is not mapped here; call {op} inside a function mapped over it, "
                f"e.g. nx.vmap(f, {name!r}). (To reduce a NamedArray over one of its own axes use nx.sum "
                "and friends.)"
            )
        if type(sel) is Axis and size != sel.size:
            raise ValueError(f"{op}: axis {name!r} is mapped with size {size}, but {sel} was given")
        out.extend(names)
    if not out:
        raise ValueError(f"{op}: no axis given")
    return tuple(out)


def _apply(x: Any, fn) -> Any:
    def one(leaf):
        if _is_named(leaf):
            return _new(fn(leaf.array), leaf.axes)
        return fn(leaf)

    return jax.tree.map(one, x, is_leaf=_is_named)


def _reduction(op: str, prim):
    def reduce(x: Any, axis: AxisSelection) -> Any:
        names = _resolve(axis, op)
        return _apply(x, lambda a: prim(a, names))

    reduce.__name__ = reduce.__qualname__ = op
    return reduce


_psum = _reduction("psum", jax.lax.psum)
_pmean = _reduction("pmean", jax.lax.pmean)
_pmax = _reduction("pmax", jax.lax.pmax)
_pmin = _reduction("pmin", jax.lax.pmin)


def psum(x: Any, axis: AxisSelection) -> Any:
    """Sum over a mapped named axis (or several), across every element mapped along it.

    Args:
        x: a NamedArray, a plain array, or a PyTree of them.
        axis: the mapped axis or axes, by `Axis` or name.

    Returns:
        ``x``'s structure, every leaf summed over the mapped axis; NamedArrays keep their axes.

    Raises:
        ValueError: an axis is not mapped where `psum` is called.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([[1, 2], [3, 4]]), ("batch", "embed"))
        >>> nx.vmap(lambda v: nx.psum(v, "batch"), "batch")(x).array
        Array([[4, 6],
               [4, 6]], dtype=int32)
    """
    return _psum(x, axis)


def pmean(x: Any, axis: AxisSelection) -> Any:
    """Mean over a mapped named axis (or several). Arguments and errors as `psum`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 2.0, 6.0]), "batch")
        >>> nx.vmap(lambda v: nx.pmean(v, "batch"), "batch")(x).array
        Array([3., 3., 3.], dtype=float32)
    """
    return _pmean(x, axis)


def pmax(x: Any, axis: AxisSelection) -> Any:
    """Maximum over a mapped named axis (or several). Arguments and errors as `psum`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 7.0, 6.0]), "batch")
        >>> nx.vmap(lambda v: nx.pmax(v, "batch"), "batch")(x).array
        Array([7., 7., 7.], dtype=float32)
    """
    return _pmax(x, axis)


def pmin(x: Any, axis: AxisSelection) -> Any:
    """Minimum over a mapped named axis (or several). Arguments and errors as `psum`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1.0, 7.0, 6.0]), "batch")
        >>> nx.vmap(lambda v: nx.pmin(v, "batch"), "batch")(x).array
        Array([1., 1., 1.], dtype=float32)
    """
    return _pmin(x, axis)


def _gather_names(a, names: tuple):
    # lax.all_gather over a tuple of vmap axes is unsupported: gather minor first, then merge.
    for jn in reversed(names):
        a = jax.lax.all_gather(a, jn)
    if len(names) > 1:
        a = jnp.reshape(a, (-1,) + a.shape[len(names) :])
    return a


def all_gather(x: Any, axis: AxisSelection) -> Any:
    """Every element's value along a mapped axis, gathered into a new leading dimension.

    Args:
        x: a NamedArray, a plain array, or a PyTree of them.
        axis: the mapped axis (or several: one leading dimension each, in the given order).

    Returns:
        NamedArrays get the axis back in front, with its full size; plain arrays get a leading
        dimension.

    Raises:
        ValueError: the axis is not mapped here, or a NamedArray already has an axis of that name.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.named(jnp.array([1, 2, 3]), "batch")
        >>> y = nx.vmap(lambda v: nx.all_gather(v, "batch").rename({"batch": "other"}) * v, "batch")(x)
        >>> y.axes
        (Axis('batch', 3), Axis('other', 3))
        >>> y.array
        Array([[1, 2, 3],
               [2, 4, 6],
               [3, 6, 9]], dtype=int32)
    """
    sels = to_selectors(axis)
    groups = [(axis_name(s), _resolve(s, "all_gather")) for s in sels]

    def one(leaf):
        arr = leaf.array if _is_named(leaf) else leaf
        for _, names in reversed(groups):
            arr = _gather_names(arr, names)
        if not _is_named(leaf):
            return arr
        new = tuple(Axis(n, arr.shape[i]) for i, (n, _) in enumerate(groups))
        have = {a.name for a in leaf.axes}
        clash = [a.name for a in new if a.name in have]
        if clash:
            raise ValueError(
                f"all_gather: the NamedArray already has axes {clash} ({leaf.axes}); rename them first"
            )
        return _new(arr, new + leaf.axes)

    return jax.tree.map(one, x, is_leaf=_is_named)


def axis_index(axis: AxisSelection) -> jax.Array:
    """The position of the current element along a mapped axis, as a plain 0-d int32 array (as in
    haliax). With several axes, the row-major flat index over them.

    Raises:
        ValueError: the axis is not mapped here.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.zeros({"batch": 3})
        >>> nx.vmap(lambda v: v + nx.axis_index("batch"), "batch")(x).array
        Array([0., 1., 2.], dtype=float32)
    """
    names = _resolve(axis, "axis_index")
    return jax.lax.axis_index(names[0] if len(names) == 1 else names)


__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "jax_axis_names", "axis_alias"]
