"""`Stacked`: N copies of a module whose parameters share one leading ``Layers`` axis.

A deep model is usually N copies of the same block. Written as a Python loop over N modules, JAX
traces and compiles the block N times, so compile time grows with depth. `Stacked` keeps one module
whose every parameter carries a ``Layers`` axis first, built by a single `namedax.vmap` of the
block's constructor, and runs it with a single `jax.lax.scan` (through `namedax.fold` /
`namedax.scan`): the block is traced once whatever the depth.

Arguments follow one rule, at construction and at call time alike: **a NamedArray holding the
``Layers`` axis is per layer** (each layer gets its slice), and NamedArrays without it are shared.
Plain arrays differ between the two:

- `Stacked.init` maps plain arrays along their first dimension, which must have size
  ``Layers.size`` (so ``key=jax.random.split(key, Layers.size)`` gives each layer its key, as in
  haliax);
- `Stacked.fold` / `scan` / `vmap` never slice a plain array: it goes whole to every layer. (haliax
  slices any array whose leading dimension happens to fit; namedax does not guess.) Make per-layer
  data per-layer by naming it, e.g. ``nx.random.split(key, Layers)``.

Inside a layer, its key (a slice of a NamedArray of keys) is a plain jax key, so ``init`` and
``__call__`` may call `jax.random.split` on it. Called eagerly, `fold` / `scan` / `vmap` run
through one cached `equinox.filter_jit` (an eager `jax.lax.scan` would retrace and recompile its
body on every call), so Python side effects in a layer happen when it is traced, as under `jax.jit`,
and the trace is reused for the same function: a value the layer (or a ``fold_via`` function) reads
from a global or a closure is the one it had at the first call. Pass what changes as an argument.

    >>> import jax
    >>> import namedax as nx
    >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 4)
    >>> Out = Embed.alias("out")
    >>> stack = nx.nn.Stacked.init(Layers, nx.nn.Linear)(Embed, Out, key=jax.random.split(jax.random.key(0), 3))
    >>> stack.stacked.weight.axes
    (Axis('layers', 3), Axis('out', 4), Axis('embed', 4))
    >>> def step(layer, x):  # one layer, then back to the carry's axis name
    ...     return nx.rename(layer(x), {"out": "embed"})
    >>> stack.fold_via(step)(nx.ones({"batch": 2, "embed": 4})).axes
    (Axis('batch', 2), Axis('embed', 4))
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis
from ..core._named_array import _is_named, _new
from ..transforms import _state
from ..transforms._mapping import (
    check_carry,
    check_checkpoint,
    check_unroll,
    eager_cached,
    labels,
    leaf_paths,
)
from ..transforms._scan import loop as _scan_loop
from ..transforms._state import UnexpectedState
from ..transforms._vmap import vmap as _vmap
from . import _stacked_state

M = TypeVar("M")
_is_array = eqx.is_array


def _call(layer, x, /, *args, **kwargs):
    return layer(x, *args, **kwargs)


def _plain_keys(tree: Any) -> Any:
    """One layer's keys as plain jax keys: a key NamedArray without axes (a slice of
    ``nx.random.split(key, Layers)``) is unwrapped, so layer code may call `jax.random.split` on it."""

    def unwrap(leaf):
        if _is_named(leaf) and not leaf.axes and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return leaf.array
        return leaf

    return jax.tree.map(unwrap, tree, is_leaf=_is_named)


def _check_per_layer(op: str, Layers: Axis, args: tuple, kwargs: dict, names: Callable[[], list[str]]) -> None:
    """Every NamedArray argument holding ``Layers`` must hold it with the stack's size."""
    leaves = jax.tree.leaves((args, kwargs), is_leaf=_is_named)
    for i, leaf in enumerate(leaves):
        if _is_named(leaf):
            for a in leaf.axes:
                if a.name == Layers.name and a.size != Layers.size:
                    raise ValueError(
                        f"{op}: argument {leaf_paths(args, kwargs, names())[i]} has {a} (axes {leaf.axes}), but the "
                        f"stack has {Layers}: a NamedArray holding {Layers.name!r} is sliced per layer, so it "
                        f"needs size {Layers.size}"
                    )


def _check_policy(gradient_checkpointing: Any, unroll: Any, op: str) -> None:
    check_checkpoint(gradient_checkpointing, op)
    check_unroll(unroll, op)


class Stacked(eqx.Module, Generic[M]):
    """``Layers.size`` copies of a module, stored as one module whose parameters lead with ``Layers``.

    Build one with `Stacked.init` (one vmapped call of the module's ``init``); run it with `fold`
    (layers in sequence), `scan` (in sequence, keeping each layer's extra output), or `vmap` (every
    layer on the same input). Compile time does not grow with depth: the layer is traced once, inside
    one `jax.lax.scan` (or one vmap).

    Per-layer arguments are NamedArrays holding ``Layers``; any other argument is passed unchanged
    to every layer (a plain array is never sliced). ``gradient_checkpointing`` recomputes each
    layer's internals in the backward pass instead of storing them (same results and gradients,
    less memory).

    Stateful layers keep one state slice per layer: build with
    ``stack, state = eqx.nn.make_with_state(Stacked.init(Layers, Module))(...)`` and call
    ``stack.fold(x, state)``, which returns ``(x, state)`` (see `fold` and the "Stateful models" page).

    Attributes:
        stacked: the module, every NamedArray parameter with ``Layers`` first and every plain array
            parameter with a leading dimension of size ``Layers.size``.
        Layers: the stacking axis (static).
        gradient_checkpointing: False, True (checkpoint each layer), or a `jax.checkpoint` policy
            (static).
        unroll: layers per iteration of the underlying `jax.lax.scan` (static; 1 keeps compile time
            flat in depth).

    Examples:
        >>> import jax
        >>> import equinox as eqx
        >>> import namedax as nx
        >>> Layers, Embed, Mlp = nx.Axis("layers", 4), nx.Axis("embed", 8), nx.Axis("mlp", 16)
        >>> class Block(eqx.Module):
        ...     up: nx.nn.Linear
        ...     down: nx.nn.Linear
        ...     @classmethod
        ...     def init(cls, *, key):
        ...         k1, k2 = jax.random.split(key)
        ...         return cls(nx.nn.Linear.init(Embed, Mlp, key=k1), nx.nn.Linear.init(Mlp, Embed, key=k2))
        ...     def __call__(self, x):
        ...         return x + self.down(nx.nn.relu(self.up(x)))
        >>> blocks = nx.nn.Stacked.init(Layers, Block)(key=jax.random.split(jax.random.key(0), 4))
        >>> blocks.stacked.up.weight.axes
        (Axis('layers', 4), Axis('mlp', 16), Axis('embed', 8))
        >>> x = nx.ones({"batch": 2, "embed": 8})
        >>> blocks.fold(x).axes
        (Axis('batch', 2), Axis('embed', 8))
        >>> blocks.vmap(x).axes
        (Axis('layers', 4), Axis('batch', 2), Axis('embed', 8))
    """

    stacked: M
    Layers: Axis = eqx.field(static=True)
    gradient_checkpointing: bool | Callable[..., Any] = eqx.field(static=True, default=False)
    unroll: int | bool = eqx.field(static=True, default=1)

    def __check_init__(self):
        if type(self.Layers) is not Axis:
            raise TypeError(f"Stacked: `Layers` must be an Axis, got {self.Layers!r}")
        _check_policy(self.gradient_checkpointing, self.unroll, "Stacked")

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        Layers: Axis,
        Module: type[M],
        *,
        gradient_checkpointing: bool | Callable[..., Any] = False,
        unroll: int | bool = 1,
    ) -> Callable[..., Stacked[M]]:
        """Curried constructor: ``Stacked.init(Layers, Module)(*args, **kwargs)``.

        The returned function calls ``Module.init(*args, **kwargs)`` (the constructor ``Module(...)``
        when the class has no ``init``) once, under `namedax.vmap` over ``Layers``: NamedArrays
        holding ``Layers`` and plain arrays are mapped (a plain array along its first dimension,
        which must have size ``Layers.size``, e.g. ``jax.random.split(key, Layers.size)``);
        everything else (axes, NamedArrays without ``Layers``, Python values) is shared by the layers.

        Args:
            Layers: the stacking axis, an `Axis` (its size is the number of layers).
            Module: the module class.
            gradient_checkpointing: False, True or a `jax.checkpoint` policy; see `Stacked`.
            unroll: layers per scan iteration (see `jax.lax.scan`).

        Returns:
            A function of ``Module.init``'s arguments that returns a `Stacked` (an instance of ``cls``).

        Raises:
            TypeError: ``Layers`` is not an `Axis`, ``Module`` is not a class, a policy or option has
                the wrong type, or ``Module.init`` returns an instance of another class than
                ``Module`` (typically a subclass inheriting a staticmethod ``init`` of its parent).
            ValueError: a plain array argument has no leading dimension of size ``Layers.size``, or a
                NamedArray argument holds ``Layers`` with another size.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 4)
            >>> norms = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(Embed)  # nothing per layer: 3 equal copies
            >>> norms.stacked.weight.axes
            (Axis('layers', 3), Axis('embed', 4))
            >>> keys = nx.random.split(jax.random.key(0), Layers)  # named keys work as well
            >>> nx.nn.Stacked.init(Layers, nx.nn.Linear)(Embed, Embed.alias("out"), key=keys).Layers
            Axis('layers', 3)
        """
        op = "Stacked.init"
        if type(Layers) is not Axis:
            raise TypeError(f"{op}: `Layers` must be an Axis (its size is the number of layers), got {Layers!r}")
        if not isinstance(Module, type):
            raise TypeError(f"{op}: `Module` must be a module class, got {type(Module).__name__}: {Module!r}")
        _check_policy(gradient_checkpointing, unroll, op)
        make = getattr(Module, "init", None)
        if make is None:
            make = Module
        where = f"{Module.__name__}.init" if make is not Module else Module.__name__

        def one(*args, **kwargs):
            args, kwargs = _plain_keys((args, kwargs))
            m = make(*args, **kwargs)
            if type(m) is not Module:
                raise TypeError(
                    f"{op}: {where} returned an instance of {type(m).__name__}, not of {Module.__name__}. "
                    f"A subclass that inherits a staticmethod `init` builds its parent class: define `init` on "
                    f"{Module.__name__}, or make the parent's `init` a classmethod returning cls(...)"
                )
            return m

        @functools.wraps(make)
        def build(*args, **kwargs) -> Stacked[M]:
            leaves = jax.tree.leaves((args, kwargs), is_leaf=_is_named)
            for i, leaf in enumerate(leaves):
                if not _is_named(leaf) and _is_array(leaf):
                    shape = np.shape(leaf)
                    if not shape or shape[0] != Layers.size:
                        path = leaf_paths(args, kwargs, labels(make, len(args)))[i]
                        raise ValueError(
                            f"{op}: argument {path} of {where} is a plain array of shape {shape}; plain arrays are "
                            f"split across the layers along their first dimension, which must have size "
                            f"{Layers.size} ({Layers}), e.g. jax.random.split(key, {Layers.size}). To share a "
                            "value between the layers, pass a NamedArray without that axis or a Python scalar"
                        )
            _check_per_layer(op, Layers, args, kwargs, lambda: labels(make, len(args)))
            stacked = _vmap(one, Layers)(*args, **kwargs)
            return cls(stacked, Layers, gradient_checkpointing, unroll)

        return build

    # ---- the layers as per-layer NamedArrays -------------------------------------------------

    def _named_layers(self, op: str):
        """``stacked`` with each plain array leaf wrapped as a NamedArray over ``Layers`` (and
        placeholder names), so that `namedax.scan` / `namedax.vmap` slice the parameters by name
        while plain array *arguments* stay whole; and the means to unwrap one layer.

        A 0-d array leaf is shared by the layers, not sliced: it is a Python scalar field (shared
        since `Stacked.init`) that `jax.jit` or `jax.grad` turned into an array."""
        leaves, treedef = jax.tree.flatten(self.stacked, is_leaf=_is_named)
        plain = []
        for i, leaf in enumerate(leaves):
            if not _is_named(leaf) and _is_array(leaf) and np.ndim(leaf):
                shape = np.shape(leaf)
                if shape[0] != self.Layers.size:
                    paths = jax.tree_util.tree_flatten_with_path(self.stacked, is_leaf=_is_named)[0]
                    raise ValueError(
                        f"{op}: parameter {jax.tree_util.keystr(paths[i][0])!r} has shape {shape}, but every "
                        f"plain array of the stack must lead with {self.Layers}"
                    )
                rest = tuple(Axis(f"__stacked_dim{j}", n) for j, n in enumerate(shape[1:], 1))
                leaves[i] = _new(leaf, (self.Layers,) + rest)
                plain.append(i)

        def unwrap(layer):
            ls = jax.tree.leaves(layer, is_leaf=_is_named)
            for i in plain:
                ls[i] = ls[i].array
            return treedef.unflatten(ls)

        return treedef.unflatten(leaves), unwrap

    def _loop(self, op: str, fn: Callable, keep_outputs: bool, x: Any, args: tuple, kwargs: dict, state: Any = None):
        _check_per_layer(op, self.Layers, args, kwargs, lambda: labels(fn, len(args), skip=2))
        where = _stacked_state.find(state, fn, (None, x), args, kwargs, op)
        return _run_loop(self, op, fn, keep_outputs, x, args, kwargs, where)

    def _layer_state(self, op: str, fn: Callable, skip: int, where: tuple, args: tuple, kwargs: dict):
        label = labels(fn, len(args), skip=skip)[where[0]] if where[1] is None else where[1]
        return _stacked_state.LayerState(self.stacked, self.Layers, _stacked_state.take(where, args, kwargs), label, op)

    def _run_loop(self, op: str, fn: Callable, keep_outputs: bool, x: Any, args: tuple, kwargs: dict, where=None):
        layers, unwrap = self._named_layers(op)
        st = None
        if where is not None:
            st = self._layer_state(op, fn, 2, where, args, kwargs)
            args, kwargs = _stacked_state.put(where, args, kwargs, None)

        def body(carry, layer, per, /, *a, **k):
            carry, shared = carry
            a, k = _plain_keys((a, k))
            if st is not None:
                assert where is not None  # st is built from it
                a, k = _stacked_state.put(where, a, k, st.inner(st.merge(per, shared)))
            out = fn(unwrap(layer), carry, *a, **k)
            if st is not None:
                out, new_state = _state.split_output(out, st.template(), op, st.label)
                per, shared = st.part(st.outer(new_state))
            if keep_outputs:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(
                        f"{op}: each layer must return a pair (carry, output), got {type(out).__name__}; "
                        "use fold for layers that return only the carry"
                    )
                new, y = out
            else:
                new, y = out, None
            check_carry(carry, new, f"{op}: a layer must return a carry like its input, for the next layer; it must")
            return (new, shared), (y, per)

        run = _scan_loop(body, self.Layers, op, keep=True, gradient_checkpointing=self.gradient_checkpointing,
                         unroll=self.unroll)  # fmt: skip
        if st is None:
            (x, _), (ys, _) = run((x, []), layers, [], *args, **kwargs)
            return (x, ys) if keep_outputs else x
        per_in, shared_in = st.part(st.leaves)
        (x, shared), (ys, per) = run((x, shared_in), layers, per_in, *args, **kwargs)
        return ((x, ys) if keep_outputs else x), st.restore(st.merge(per, shared))

    # ---- running the layers ------------------------------------------------------------------

    def fold(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the layers in sequence: ``x = layer(x, *args, **kwargs)`` for each layer, in order.

        Args:
            x: the carry (any PyTree); each layer must return one of the same structure, axes,
                shapes and dtypes.
            *args: passed to every layer; NamedArrays holding ``Layers`` are sliced per layer.
            **kwargs: likewise, e.g. ``key=nx.random.split(key, Layers)`` for per-layer dropout.

        Returns:
            The carry after the last layer. With a state argument (one that is an
            `equinox.nn.State`, e.g. from ``eqx.nn.make_with_state(Stacked.init(...))``), each layer
            is called ``layer(x, state, ...)`` and returns ``(x, state)``, and `fold` returns
            ``(carry, state)``: each layer reads and writes its own slice of the per-layer entries
            (see `Stacked`); other entries are threaded through the layers in order.

        Raises:
            ValueError: a per-layer argument holds ``Layers`` with another size, or a layer changes
                the carry's structure, axes, shapes or dtypes, or returns its state unlike it got it.
            TypeError: the carry holds an `equinox.nn.State` (pass it after the carry).

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 2), nx.Axis("embed", 3)
            >>> norms = nx.nn.Stacked.init(Layers, nx.nn.RMSNorm)(Embed)
            >>> y = norms.fold(nx.named(jax.numpy.array([3.0, 0.0, 4.0]), Embed))
            >>> y.array  # rms-normalised twice: sqrt(3) / 5 * (3, 0, 4)
            Array([1.0392, 0.    , 1.3856], dtype=float32)
        """
        return self._loop("Stacked.fold", _call, False, x, args, kwargs)

    def scan(self, x: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Run the layers in sequence, each returning ``(carry, output)``; keep every output.

        Args:
            x: the initial carry.
            *args: passed to every layer; NamedArrays holding ``Layers`` are sliced per layer.
            **kwargs: likewise.

        Returns:
            ``(carry, outputs)``: the last carry, and the layers' outputs stacked on ``Layers``
            (NamedArrays get ``Layers`` first, plain arrays a leading dimension). With a state
            argument (as for `fold`) each layer returns ``((carry, output), state)`` and `scan`
            returns ``((carry, outputs), state)``.

        Raises:
            TypeError: a layer does not return a pair.
            ValueError: as for `fold`.

        Examples:
            >>> import jax
            >>> import equinox as eqx
            >>> import namedax as nx
            >>> class Scale(eqx.Module):
            ...     w: nx.NamedArray
            ...     def __call__(self, x):
            ...         y = x * self.w
            ...         return y, nx.sum(y, axis="embed")
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
            >>> stack = nx.nn.Stacked.init(Layers, Scale)(nx.named(jax.numpy.array([1.0, 2.0, 3.0]), Layers))
            >>> y, sums = stack.scan(nx.ones(Embed))
            >>> y.array, sums.axes, sums.array
            (Array([6., 6.], dtype=float32), (Axis('layers', 3),), Array([ 2.,  4., 12.], dtype=float32))
        """
        return self._loop("Stacked.scan", _call, True, x, args, kwargs)

    def vmap(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Run every layer on the same input, independently; outputs stacked on ``Layers``.

        Args:
            x: the input, given to every layer (sliced per layer if it is a NamedArray holding ``Layers``).
            *args: passed to every layer; NamedArrays holding ``Layers`` are sliced per layer.
            **kwargs: likewise.

        Returns:
            The layers' outputs: NamedArrays get ``Layers`` first, plain arrays a leading dimension.
            With a state argument (as for `fold`) each layer returns ``(output, state)`` and `vmap`
            returns ``(outputs, state)``; an entry that is not per layer and that the layers write
            differently raises (see `vmap_via`'s ``unexpected_state``).

        Raises:
            ValueError: a per-layer argument holds ``Layers`` with another size, or a shared state
                entry is written differently by the layers.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
            >>> keys = jax.random.split(jax.random.key(0), 3)
            >>> stack = nx.nn.Stacked.init(Layers, nx.nn.Linear)(Embed, {"out": 1}, key=keys)
            >>> stack.vmap(nx.ones({"batch": 5, "embed": 2})).axes
            (Axis('layers', 3), Axis('batch', 5), Axis('out', 1))
        """
        return self._vmap("Stacked.vmap", _call, (x, *args), kwargs)

    def fold_via(self, fn: Callable[..., Any], *, state: int | str | bool | None = None) -> Callable[..., Any]:
        """`fold` with ``fn(layer, carry, *args, **kwargs) -> carry`` instead of ``layer(carry, ...)``.

        Use it to run a method other than ``__call__`` (``stack.fold_via(Block.decode)``) or any
        function of one layer.

        Args:
            fn: called once per layer, in order, with the layer first.
            state: which argument of ``fn`` is the state, by name or position among ``fn``'s
                parameters (the layer is 0, the carry 1); None: the argument that is an
                `equinox.nn.State`, if any; False: none. With a state, ``fn`` returns
                ``(carry, state)``, and any PyTree works as state: its NamedArrays holding
                ``Layers`` are per layer, the other leaves are threaded through the layers in order.

        Returns:
            ``folded(x, *args, **kwargs) -> carry`` (``(carry, state)`` with a state), with `fold`'s
            argument rules and errors.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
            >>> norms = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(Embed)
            >>> count = norms.fold_via(lambda layer, n: n + nx.sum(layer.weight, axis="embed"))
            >>> count(nx.zeros(())).array  # 3 layers, each weight sums to 2
            Array(6., dtype=float32)
        """
        _state.check_options(state, "raise", "Stacked.fold_via")
        return lambda x, *args, **kwargs: self._loop("Stacked.fold_via", fn, False, x, args, kwargs, state)

    def scan_via(
        self, fn: Callable[..., tuple[Any, Any]], *, state: int | str | bool | None = None
    ) -> Callable[..., tuple[Any, Any]]:
        """`scan` with ``fn(layer, carry, *args, **kwargs) -> (carry, output)``.

        Args:
            fn: called once per layer, in order, with the layer first.
            state: which argument of ``fn`` is the state, as for `fold_via`; ``fn`` then returns
                ``((carry, output), state)``.

        Returns:
            ``scanned(x, *args, **kwargs) -> (carry, outputs)`` (``((carry, outputs), state)`` with a
            state), with `scan`'s rules and errors.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
            >>> norms = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(Embed)
            >>> _, biases = norms.scan_via(lambda layer, c: (c, layer.bias))(nx.zeros(()))
            >>> biases.axes
            (Axis('layers', 3), Axis('embed', 2))
        """
        _state.check_options(state, "raise", "Stacked.scan_via")
        return lambda x, *args, **kwargs: self._loop("Stacked.scan_via", fn, True, x, args, kwargs, state)

    def vmap_via(
        self,
        fn: Callable[..., Any],
        *,
        state: int | str | bool | None = None,
        unexpected_state: UnexpectedState = "raise",
    ) -> Callable[..., Any]:
        """`vmap` with ``fn(layer, *args, **kwargs)``: every layer independently, outputs stacked.

        Args:
            fn: called with each layer first (all layers at once, under `namedax.vmap`).
            state: which argument of ``fn`` is the state, as for `fold_via` (the layer is 0);
                ``fn`` then returns ``(output, state)``.
            unexpected_state: what to do with a state entry that is not per layer but that the
                layers write differently: "raise", "warn" or "batch" (return it with ``Layers``
                first), as for `namedax.vmap`.

        Returns:
            ``mapped(*args, **kwargs)`` (``(outputs, state)`` with a state), with `vmap`'s argument
            rules and errors.

        Examples:
            >>> import namedax as nx
            >>> norms = nx.nn.Stacked.init(nx.Axis("layers", 3), nx.nn.LayerNorm)(nx.Axis("embed", 2))
            >>> norms.vmap_via(lambda layer: nx.sum(layer.weight, axis="embed"))().array
            Array([2., 2., 2.], dtype=float32)
        """
        _state.check_options(state, unexpected_state, "Stacked.vmap_via")
        return lambda *args, **kwargs: self._vmap("Stacked.vmap_via", fn, args, kwargs, state, unexpected_state)

    def _vmap(
        self, op: str, fn: Callable, args: tuple, kwargs: dict, state: Any = None, policy: UnexpectedState = "raise"
    ):
        _check_per_layer(op, self.Layers, args, kwargs, lambda: labels(fn, len(args), skip=1))
        where = _stacked_state.find(state, fn, (None,), args, kwargs, op)
        return _run_vmap(self, op, fn, args, kwargs, where, policy)

    def _run_vmap(
        self, op: str, fn: Callable, args: tuple, kwargs: dict, where=None, policy: UnexpectedState = "raise"
    ):
        layers, unwrap = self._named_layers(op)
        if where is None:

            def one(layer, /, *a, **k):
                a, k = _plain_keys((a, k))
                return fn(unwrap(layer), *a, **k)

            return _vmap(one, self.Layers, default=None, state=False)(layers, *args, **kwargs)

        st = self._layer_state(op, fn, 1, where, args, kwargs)
        args, kwargs = _stacked_state.put(where, args, kwargs, st.wrapped())

        @functools.wraps(fn)  # so that vmap's messages name fn's parameters
        def one_with_state(layer, /, *a, **k):
            wrapped = _stacked_state.take(where, a, k)
            a, k = _plain_keys(_stacked_state.put(where, a, k, None))
            a, k = _stacked_state.put(where, a, k, st.inner(jax.tree.leaves(wrapped, is_leaf=_is_named)))
            out, new = _state.split_output(fn(unwrap(layer), *a, **k), st.template(), op, st.label)
            return out, st.treedef.unflatten(st.outer(new))

        at = where[0] + 1 if where[1] is None else where[1]  # the layer comes first
        run = _vmap(one_with_state, self.Layers, default=None, state=at, unexpected_state=policy)
        out, new = run(layers, *args, **kwargs)
        return out, st.restore(jax.tree.leaves(new, is_leaf=_is_named))

    # ---- single layers -----------------------------------------------------------------------

    def get_layer(self, i: int) -> M:
        """Layer ``i`` as a plain module (every ``Layers`` axis and leading dimension removed).

        Args:
            i: the layer index; negative counts from the end. Under `jax.jit` a traced integer
                scalar works too; out of range, it raises when the program runs (`equinox.error_if`).

        Returns:
            The module of layer ``i``.

        Raises:
            IndexError: ``i`` is out of range (a traced ``i``: an `equinox.EquinoxRuntimeError` at run time).
            TypeError: ``i`` is not an integer.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Layers, Embed = nx.Axis("layers", 3), nx.Axis("embed", 2)
            >>> keys = jax.random.split(jax.random.key(0), 3)
            >>> stack = nx.nn.Stacked.init(Layers, nx.nn.Linear)(Embed, {"out": 1}, key=keys)
            >>> stack.get_layer(-1).weight.axes
            (Axis('out', 1), Axis('embed', 2))
        """
        n = self.Layers.size
        if isinstance(i, jax.Array) and not isinstance(i, jax.core.Tracer) and i.ndim == 0:
            if jnp.issubdtype(i.dtype, jnp.integer):
                i = int(i)  # a concrete array index: checked now, like an int
        if isinstance(i, int | np.integer) and not isinstance(i, bool):
            if not -n <= i < n:
                raise IndexError(f"Stacked.get_layer: index {i} is out of range for {self.Layers}")
            i = int(i) % n
        elif hasattr(i, "dtype") and np.ndim(i) == 0 and np.issubdtype(np.dtype(i.dtype), np.integer):  # type: ignore[union-attr]
            # known only at run time: checked there (an error under jit, as equinox's error_if does)
            i = eqx.error_if(i, (i < -n) | (i >= n), f"Stacked.get_layer: index out of range for {self.Layers}")
            i = jnp.where(i < 0, i + n, i)
        else:
            raise TypeError(f"Stacked.get_layer: the index must be an int, got {type(i).__name__}: {i!r}")
        name = self.Layers.name

        def take(leaf):
            if _is_named(leaf):
                return leaf[name, i] if any(a.name == name for a in leaf.axes) else leaf
            if _is_array(leaf) and np.ndim(leaf):  # a 0-d array is a shared scalar (see _named_layers)
                return leaf[i]
            return leaf

        return jax.tree.map(take, self.stacked, is_leaf=_is_named)

    def unstacked(self) -> tuple[M, ...]:
        """Every layer as a plain module, first to last (for inspection, logging or checkpoints).

        Returns:
            A tuple of ``Layers.size`` modules; ``unstacked()[i]`` equals ``get_layer(i)``.

        Examples:
            >>> import namedax as nx
            >>> norms = nx.nn.Stacked.init(nx.Axis("layers", 3), nx.nn.LayerNorm)(nx.Axis("embed", 2))
            >>> [layer.weight.axes for layer in norms.unstacked()]
            [(Axis('embed', 2),), (Axis('embed', 2),), (Axis('embed', 2),)]
        """
        return tuple(self.get_layer(i) for i in range(self.Layers.size))


# Eager calls go through one cached jit (keyed on the layer function, the structure and the static
# values; see namedax.transforms._mapping.eager_cached), as the transforms' eager calls do: an eager
# lax.scan would retrace and recompile its body on every call, and an eager vmap would dispatch op by op.
_run_loop = eager_cached(Stacked._run_loop)
_run_vmap = eager_cached(Stacked._run_vmap)
