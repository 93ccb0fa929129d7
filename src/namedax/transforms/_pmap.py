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

On the user's mesh: when a mesh is set with `jax.set_mesh` (and no ``devices=`` is given), the
shard_map runs on that mesh, so inputs and outputs stay where `namedax.sharding` put them. The named
axis is split over the mesh axes the axis rules give it (`namedax.sharding.axis_rules`), or over every
mesh axis when no rule names it; every mesh axis is manual inside (the devices of a mesh axis the
named axis is not split over see the same block). This is shard_map by name: specs come from the
names and the rules, and the named collectives act over the whole axis.

Arrays that ``f`` closes over (globals, an earlier pmap's output, tracers of an enclosing `jax.jit`
or `jax.grad`) are hoisted into explicit replicated inputs: a shard_map refuses constants placed on
another mesh, so ``f`` is traced once outside it and its jaxpr evaluated inside.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Batch = nx.Axis("batch", 4)
    >>> x = nx.named(jnp.array([1.0, 2.0, 3.0, 6.0]), Batch)
    >>> nx.pmap(lambda v: v - nx.pmean(v, Batch), Batch)(x).array
    Array([-2., -1.,  0.,  3.], dtype=float32)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast, overload

import equinox as eqx
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..core._axis import Axis, AxisSelection
from ..core._kernels import is_eager
from ..core._named_array import _is_named, _new
from ..sharding._rules import assign, context_mesh, current_axis_rules
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
    _explicit_devices: bool

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
        on = _mesh_for(self)
        if size % on.shards:
            where = (f"the {on.shards} shards of mesh axes {on.axes}" if on.from_rules
                     else f"the {on.shards} devices")  # fmt: skip
            raise ValueError(
                f"pmap: axis {self._axis[0]!r} has size {size}, which is not a multiple of {where}; "
                f"pad it to a multiple of {on.shards} or pass devices= a subset whose size divides {size}"
            )
        if is_eager() and not on.from_rules:
            args, kwargs = _place(self, dims, args, kwargs)
        return _sharded(self, on, size, dims, args, kwargs)


class _On(NamedTuple):
    """Where a pmap runs: the mesh, the mesh axes its named axis is split over, their shard count,
    and whether that came from the axis rules and the mesh set with jax.set_mesh."""

    mesh: Any
    axes: tuple[str, ...]
    shards: int
    from_rules: bool


def _check_devices(devices: Any) -> tuple:
    """``devices=`` as a tuple of distinct jax devices, or a clear error."""
    if isinstance(devices, str) or not isinstance(devices, Sequence | np.ndarray):
        raise TypeError(f"pmap: `devices` must be a sequence of jax devices (e.g. jax.devices()[:2]), got "
                        f"{type(devices).__name__}: {devices!r}")
    devs = tuple(np.asarray(devices, dtype=object).ravel()) if isinstance(devices, np.ndarray) else tuple(devices)
    if not devs:
        raise ValueError("pmap: `devices` is empty")
    bad = [d for d in devs if not isinstance(d, jax.Device)]
    if bad:
        raise TypeError(f"pmap: `devices` must hold jax devices (e.g. jax.devices()[:2], not their indices), got "
                        f"{bad[0]!r} ({type(bad[0]).__name__}) among {list(devs)}")
    dups = sorted({str(d) for d in devs if devs.count(d) > 1})
    if dups:
        raise ValueError(f"pmap: `devices` lists {', '.join(dups)} more than once ({list(devs)}); each device "
                         "takes one part of the axis, so give distinct devices")
    return devs


@functools.cache
def _mesh(devices: tuple, name: str) -> Mesh:
    return Mesh(np.array(devices), (f"{name}:devices",), axis_types=(AxisType.Auto,))


def _mesh_for(w: _PmapWrapper) -> _On:
    """The mesh set with `jax.set_mesh` when the axis rules put the mapped axis on its axes (so the
    pmap's inputs and outputs live on the user's mesh); else a one-axis mesh of ``devices``."""
    name = w._axis[0]
    mesh = None if w._explicit_devices else context_mesh()
    if mesh is not None:  # a shard_map must use the context mesh: split over the ruled axes, or all
        axes = assign([name], current_axis_rules())[0].get(name)
        if not (axes and all(a in mesh.shape for a in axes)):
            axes = tuple(mesh.axis_names)
        return _On(mesh, axes, math.prod(mesh.shape[a] for a in axes), True)
    mesh = _mesh(w._devices, name)
    return _On(mesh, mesh.axis_names, len(w._devices), False)


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


_NO_MESH = jax.sharding.AbstractMesh((), ())


def _reshard(a: Any, spec: PartitionSpec, mesh: Any) -> Any:
    target = NamedSharding(mesh, spec) if isinstance(mesh, Mesh) else spec
    return jax.sharding.reshard(a, target)


def _block_struct(a: Any, d: int | None, n_dev: int) -> jax.ShapeDtypeStruct:
    """One device's block of ``a`` (split along dimension ``d``), as a shape."""
    shape = tuple(np.shape(a))
    if d is not None:
        shape = shape[:d] + (shape[d] // n_dev,) + shape[d + 1 :]
    return jax.ShapeDtypeStruct(shape, a.dtype)


def _spec_at(d: int | None, mesh_axis: Any) -> PartitionSpec:
    return PartitionSpec() if d is None else PartitionSpec(*([None] * d), mesh_axis)


@eqx.filter_jit
def _sharded(w: _PmapWrapper, on: _On, size: int, dims: tuple, args: tuple, kwargs: dict):
    name = w._axis[0]
    mesh = on.mesh
    mesh_axis = on.axes[0] if len(on.axes) == 1 else on.axes
    block = Axis(name, size // on.shards)

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
        with axis_alias(name, (*on.axes, name)):
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
    local = [_block_struct(a, dims[k], on.shards) for a, k in zip(arrays, dyn, strict=True)]
    env = list(mesh.shape.items())
    # traced with no mesh in context: closed-over arrays may live on any mesh (the shard_map gets
    # them as inputs), and the equations record no mesh that could disagree with the shard_map's
    with jax.sharding.use_abstract_mesh(_NO_MESH):
        closed, out_shape = jax.make_jaxpr(body, axis_env=env, return_shape=True)(local)
    out_tree = jax.tree.structure(out_shape)

    def hoisted(arrays, consts):
        return jax.tree.unflatten(out_tree, jax.core.eval_jaxpr(closed.jaxpr, consts, *arrays))

    consts = list(closed.consts)
    out_specs = (PartitionSpec(mesh_axis), PartitionSpec())
    mapped = jax.shard_map(hoisted, mesh=mesh, in_specs=(in_specs, [PartitionSpec()] * len(consts)),
                           out_specs=out_specs, check_vma=False)  # fmt: skip
    # every mesh axis is manual (a mesh axis the named axis is not split over sees the same block on
    # each of its devices): partly manual meshes need the mesh recorded while tracing, which a
    # closure over an array on another mesh forbids
    const_specs = [PartitionSpec()] * len(consts)
    if AxisType.Explicit in tuple(mesh.axis_types):  # explicit axes: inputs must already be laid out
        arrays = [_reshard(a, sp, mesh) for a, sp in zip(arrays, in_specs, strict=True)]
        consts = [_reshard(c, sp, mesh) for c, sp in zip(consts, const_specs, strict=True)]
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
    devs = tuple(jax.devices()) if devices is None else _check_devices(devices)
    specs = make_specs(fn, default, args, kwargs, state, unexpected_state, "pmap")
    wrapper = _PmapWrapper(_fun=fn, _axis=parsed[0], _specs=specs, _devices=devs, _explicit_devices=devices is not None)
    return eqx.module_update_wrapper(wrapper)
