"""pmap: a named axis split over devices.

``nx.pmap(f, Batch)`` is ``nx.vmap(f, Batch)`` with the work spread over devices: the same spec
language decides which leaves are mapped and along which dimension, the axis is cut into one
contiguous block per device, and each device runs ``nx.vmap(f, Batch)`` over its block. Outputs come
back as the vmap's would (NamedArrays with the axis first), sharded over the devices along it.

How it works: one ``jax.shard_map`` over a one-axis mesh of the devices, jitted (`equinox.filter_jit`,
so a second call with the same structure reuses the compiled program). The mesh axis is named
``f"{name}:devices"`` and the vmap inside keeps the axis's own name, so the named axis is made of two
JAX axes, devices major. While ``f`` is traced, `axis_alias` tells the named collectives so:
``nx.psum(x, Batch)`` sums over both (every device and every element of its block) and
``nx.axis_index(Batch)`` is ``device * block + position in block``. A raw ``jax.lax.psum(x, "batch")``
only sees the device's own block. The mesh is built with ``AxisType.Auto`` (Explicit axes refuse
unsharded inputs) and ``check_vma=False`` (the check refuses vmapped ``fori_loop``s whose carry
starts from a constant, which models do all the time).

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Batch = nx.Axis("batch", 4)
    >>> x = nx.named(jnp.array([1.0, 2.0, 3.0, 6.0]), Batch)
    >>> nx.pmap(lambda v: v - nx.pmean(v, Batch), Batch)(x).array
    Array([-2., -1.,  0.,  3.], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

import equinox as eqx
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..core._axis import Axis, AxisSelection
from ..core._kernels import is_eager
from ..core._named_array import _is_named, _new
from ._collectives import axis_alias
from ._mapping import Specs, make_specs, parse_axes, resolve, zero_if_array_else_none
from ._state import UnexpectedState
from ._vmap import _VmapWrapper, run, vmap

_is_array = eqx.is_array


class _PmapWrapper(eqx.Module):
    _fun: Callable
    _axis: tuple  # (name, size or None)
    _specs: Specs
    _devices: tuple

    @property
    def __wrapped__(self):
        return self._fun

    def __get__(self, instance, owner):
        del owner
        if instance is None:
            return self
        return eqx.Partial(self, instance)

    def __call__(self, /, *args, **kwargs):
        size, dims = _resolve(self, args, kwargs)
        n_dev = len(self._devices)
        if size % n_dev:
            raise ValueError(
                f"pmap: axis {self._axis[0]!r} has size {size}, which is not a multiple of the {n_dev} devices; "
                f"pad it to a multiple of {n_dev} or pass devices= a subset whose size divides {size}"
            )
        if is_eager():
            args, kwargs = _place(self, dims, args, kwargs)
        return _sharded(self, size, dims, args, kwargs)


@functools.cache
def _mesh(devices: tuple, name: str) -> Mesh:
    return Mesh(np.array(devices), (f"{name}:devices",), axis_types=(AxisType.Auto,))


def _place(w: _PmapWrapper, dims: tuple, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Move arrays committed to other devices (e.g. the output of a pmap over more devices) onto
    the mesh: jit refuses to mix device sets, but a transfer is what the user asked for."""
    mesh = _mesh(w._devices, w._axis[0])
    devs = set(w._devices)
    leaves, td = jax.tree.flatten((args, kwargs), is_leaf=_is_named)
    for k, leaf in enumerate(leaves):
        arr = leaf.array if _is_named(leaf) else leaf
        if isinstance(arr, jax.Array) and arr.committed:
            if arr.sharding.device_set != devs:
                arr = jax.device_put(arr, NamedSharding(mesh, _spec_at(dims[k], mesh.axis_names[0])))
                leaves[k] = _new(arr, leaf.axes) if _is_named(leaf) else arr
    return td.unflatten(leaves)


def _where(args: tuple, kwargs: dict) -> tuple[list, list]:
    """(position or None, keyword or None) and value of every argument, keywords sorted."""
    keys = sorted(kwargs)
    return [(i, None) for i in range(len(args))] + [(None, k) for k in keys], list(args) + [kwargs[k] for k in keys]


def _resolve(w: _PmapWrapper, args: tuple, kwargs: dict) -> tuple[int, tuple]:
    """The axis size and, for every leaf (NamedArrays are leaves), the dimension split over the
    devices or None: `vmap`'s resolution at one level, checked here, before anything runs."""
    r = resolve(w._fun, (w._axis,), w._specs, args, kwargs, "pmap")
    return r.mapped[0].size, tuple(r.dims())


def _block_struct(a: Any, d: int | None, n_dev: int) -> jax.ShapeDtypeStruct:
    """One device's block of ``a`` (split along dimension ``d``), as a shape."""
    shape = tuple(np.shape(a))
    if d is not None:
        shape = shape[:d] + (shape[d] // n_dev,) + shape[d + 1 :]
    return jax.ShapeDtypeStruct(shape, a.dtype)


def _spec_at(d: int | None, mesh_axis: str) -> PartitionSpec:
    return PartitionSpec() if d is None else PartitionSpec(*([None] * d), mesh_axis)


@eqx.filter_jit
def _sharded(w: _PmapWrapper, size: int, dims: tuple, args: tuple, kwargs: dict):
    name = w._axis[0]
    mesh = _mesh(w._devices, name)
    mesh_axis = mesh.axis_names[0]
    block = Axis(name, size // len(w._devices))

    where, values = _where(args, kwargs)
    flat, treedefs = [], []
    for val in values:
        leaves, td = jax.tree.flatten(val, is_leaf=_is_named)
        flat.extend(leaves)
        treedefs.append((td, len(leaves)))
    # array leaves go through shard_map (split or replicated); the rest is closed over
    dyn = [k for k, leaf in enumerate(flat) if _is_array(leaf.array if _is_named(leaf) else leaf)]
    in_specs = [_spec_at(dims[k], mesh_axis) for k in dyn]

    # the inner vmap gets the resolved dimension of every plain leaf, so it maps exactly what was split
    inner_specs = []
    start = 0
    for td, n in treedefs:
        pairs = zip(flat[start : start + n], dims[start : start + n], strict=True)
        inner_specs.append(td.unflatten([None if _is_named(x) else d for x, d in pairs]))
        start += n
    n_args = len(args)
    kw_keys = [k for _, k in where[n_args:]]
    sp = w._specs
    inner = vmap(w._fun, block, default=None, args=tuple(inner_specs[:n_args]),
                 kwargs=dict(zip(kw_keys, inner_specs[n_args:], strict=True)),
                 state=sp.state, unexpected_state=sp.policy)  # fmt: skip
    static_out = []

    def body(arrays):
        full = list(flat)
        for k, arr in zip(dyn, arrays, strict=True):
            leaf = flat[k]
            if _is_named(leaf):
                d = dims[k]
                axes = leaf.axes if d is None else leaf.axes[:d] + (block,) + leaf.axes[d + 1 :]
                full[k] = _new(arr, axes)
            else:
                full[k] = arr
        vals, start = [], 0
        for td, n in treedefs:
            vals.append(td.unflatten(full[start : start + n]))
            start += n
        with axis_alias(name, (mesh_axis, name)):
            out, plan = run(cast(_VmapWrapper, inner), tuple(vals[:n_args]),
                            dict(zip(kw_keys, vals[n_args:], strict=True)), op="pmap", front=True)  # fmt: skip
        # state entries that stay unbatched (the same on every element) come back replicated, the rest split
        unb = plan.unbatched() if plan is not None else set()
        out_leaves, td = jax.tree.flatten(out, is_leaf=_is_named)
        split = [v if i not in unb else None for i, v in enumerate(out_leaves)]
        repl = [v if i in unb else None for i, v in enumerate(out_leaves)]
        (a1, s1), (a2, s2) = eqx.partition(split, eqx.is_array), eqx.partition(repl, eqx.is_array)
        static_out.append((td, s1, s2, unb, plan))
        return a1, a2

    arrays = [flat[k].array if _is_named(flat[k]) else flat[k] for k in dyn]
    # Trace once, outside the shard_map, so that every array `fn` closes over (a global, an earlier
    # pmap's output on another mesh, a tracer of an enclosing jit or grad) becomes an explicit,
    # replicated input: a shard_map refuses constants placed on any mesh but its own.
    n_dev = len(w._devices)
    local = [_block_struct(a, dims[k], n_dev) for a, k in zip(arrays, dyn, strict=True)]
    closed, out_shape = jax.make_jaxpr(body, axis_env=[(mesh_axis, n_dev)], return_shape=True)(local)
    out_tree = jax.tree.structure(out_shape)

    def hoisted(arrays, consts):
        return jax.tree.unflatten(out_tree, jax.core.eval_jaxpr(closed.jaxpr, consts, *arrays))

    consts = list(closed.consts)
    out_specs = (PartitionSpec(mesh_axis), PartitionSpec())
    mapped = jax.shard_map(hoisted, mesh=mesh, in_specs=(in_specs, [PartitionSpec()] * len(consts)),
                           out_specs=out_specs, check_vma=False)  # fmt: skip
    a1, a2 = mapped(arrays, consts)
    td, s1, s2, unb, plan = static_out[0]
    split, repl = eqx.combine(a1, s1), eqx.combine(a2, s2)
    out = td.unflatten([repl[i] if i in unb else split[i] for i in range(len(split))])
    full_axis = Axis(name, size)

    def restore(x):  # the vmap put the block's axis first: give it its full size
        if _is_named(x) and x.axes and x.axes[0] == block:
            return _new(x.array, (full_axis,) + x.axes[1:])
        return x

    out = jax.tree.map(restore, out, is_leaf=_is_named)
    return out if plan is None else plan.fix(out)


@overload
def pmap(
    fn: None = None,
    axis: AxisSelection = ...,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    devices: Sequence[jax.Device] | None = None,  # pyright: ignore[reportInvalidTypeForm]  # jax ships no stub for Device
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable[[Callable], Callable]: ...


@overload
def pmap(
    fn: Callable,
    axis: AxisSelection,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    devices: Sequence[jax.Device] | None = None,  # pyright: ignore[reportInvalidTypeForm]  # jax ships no stub for Device
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable: ...


def pmap(
    fn: Callable | None = None,
    axis: AxisSelection | None = None,
    *,
    default: Any = zero_if_array_else_none,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    devices: Sequence[jax.Device] | None = None,  # pyright: ignore[reportInvalidTypeForm]  # jax ships no stub for Device
    state: int | str | bool | None = None,
    unexpected_state: UnexpectedState = "raise",
) -> Callable:
    """Map ``fn`` over a named axis split across devices: `vmap`, in parallel.

    Arguments are resolved exactly as by `vmap` (NamedArrays holding the axis are mapped wherever it
    sits, plain leaves follow ``default`` / ``args`` / ``kwargs``). The axis is cut into equal
    contiguous blocks, one per device, and each device runs ``nx.vmap(fn, axis)`` over its block
    (``jax.shard_map`` on a one-axis mesh, jitted). Inside ``fn`` the named collectives (`psum`,
    `pmean`, `pmax`, `pmin`, `all_gather`, `axis_index`) act over the whole axis, across devices;
    a raw ``jax.lax`` collective on the axis name only sees the device's block.

    Args:
        fn: the function to map. Omit it for a decorator: ``@nx.pmap(axis=Batch)``.
        axis: exactly one axis: an `Axis`, a name (if an argument has it) or a one-entry
            ``{name: size}`` mapping. Its size must be a multiple of the number of devices.
        default: the spec for leaves that are not NamedArrays, as in `vmap`.
        args: per positional argument, a spec that overrides ``default``.
        kwargs: per keyword argument, a spec that overrides ``default``.
        devices: the devices to split over (default: all of ``jax.devices()``).
        state: which argument is the model state, as in `vmap`. A returned entry that stays
            unbatched is computed on every device and returned replicated: compute it with the
            named collectives (``nx.pmean(x, axis)``), which see every device; a raw
            ``jax.lax.pmean`` sees one device's block, and the copy returned is the first device's.
        unexpected_state: "raise", "warn" or "batch", as in `vmap`.

    Returns:
        The mapped function (or a decorator when ``fn`` is omitted). Its NamedArray outputs have the
        axis first, and every array output is sharded over the devices along its first dimension.

    Raises:
        ValueError: several axes given; the axis size is not a multiple of the device count (the
            message names both); sizes disagree or are unknown, or a state error, as in `vmap`.
        TypeError: ``fn`` is not callable, ``axis`` is missing, or a spec is malformed.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
        >>> x = nx.named(jnp.arange(6.0).reshape(3, 2), (Embed, Batch))
        >>> y = nx.pmap(lambda v: v * nx.axis_index(Batch), Batch, devices=jax.devices()[:1])(x)
        >>> y.axes
        (Axis('batch', 2), Axis('embed', 3))
        >>> y.array
        Array([[0., 0., 0.],
               [1., 3., 5.]], dtype=float32)
    """
    if fn is None:
        if axis is None:
            raise TypeError("pmap: `axis` is required, e.g. @nx.pmap(axis=Batch)")

        def decorator(f: Callable) -> Callable:
            return pmap(f, axis, default=default, args=args, kwargs=kwargs, devices=devices, state=state,
                        unexpected_state=unexpected_state)  # fmt: skip

        return decorator
    if not callable(fn):
        raise TypeError(
            f"pmap: `fn` must be callable, got {type(fn).__name__}: {fn!r}; "
            "for the decorator form write @nx.pmap(axis=...)"
        )
    if axis is None:
        raise TypeError("pmap: `axis` is required: nx.pmap(fn, axis)")
    parsed = parse_axes(axis, "pmap")
    if len(parsed) != 1:
        raise ValueError(
            f"pmap: splits exactly one axis over the devices, got {[n for n, _ in parsed]}; "
            "map the others with nx.vmap inside fn"
        )
    devs = tuple(jax.devices()) if devices is None else tuple(devices)
    if not devs:
        raise ValueError("pmap: `devices` is empty")
    specs = make_specs(fn, default, args, kwargs, state, unexpected_state, "pmap")
    wrapper = _PmapWrapper(_fun=fn, _axis=parsed[0], _specs=specs, _devices=devs)
    return eqx.module_update_wrapper(wrapper)
