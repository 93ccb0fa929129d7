"""Multi-start optimisation: from every point of a space, descend the free Parameters with optax.

``optimize(loss, space, *args, optimizer=..., steps=...)`` is a sweep whose model is a whole
optimisation: from each start (a point of ``space``) it runs ``steps`` updates of an optax
optimizer on the free Parameters of the state, with every other leaf held fixed, and returns the
optimised values and the final loss. It is built on `ParallelExecution`, so the starts are
generated on device, vectorised (``n_vmap``), spread over devices (``n_pmap``), sized in blocks,
checkpointed and resumed exactly like a sweep's points; `OptimizeResults` reads them back and sorts
the starts by their final loss.

Bounds are kept by optimising an unconstrained value ``u`` per free Parameter and giving the loss
``x = to_bounded(u)``:

- ``[low, high]``: ``x = low + (high - low) * sigmoid(u)`` (clipped to ``[low, high]`` against
  rounding), so ``u = logit((x - low) / (high - low))`` at the start.
- only ``low``: ``x = low + softplus(u)``; only ``high``: ``x = high - softplus(u)``.
- no bounds: ``x = u``, the optimizer sees the Parameter itself.
- ``low == high``: ``x = low`` (nothing to optimise).

A start on a bound (a grid's first and last values) has no finite ``u``: it begins ``1e-6`` inside
(relative to the range for ``[low, high]``, absolute for a half-bound; at least two float epsilons
of the dtype). There the map is flat, so plain gradient descent crawls away from the bound while
scale-free optimizers (Adam and its kin) do not notice. Gradients are taken with respect to ``u``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core._axis import as_int
from ..core._named_array import _is_named
from ..spaces._base import AbstractSpace
from ..spaces._parameter import Parameter, with_value
from . import _engine as _e
from ._engine import ModelError
from ._executors import ParallelExecution, _check_common
from ._results import Results

_EDGE = 1e-6  # how far inside its bound a start on the bound begins (see the module docstring)


_AUTO_VMAP = 8192  # the widest automatic chunk of starts per device (memory: a few MB per chunk for typical losses)

def _is_entry(x) -> bool:
    return isinstance(x, Parameter) or _is_named(x)


def _optax(op: str):
    try:
        import optax
    except ImportError:
        raise ModuleNotFoundError(f"{op} needs optax, which is not installed: pip install 'namedax[optimize]' "
                                  "(or pip install optax)") from None
    return optax


# ---------------------------------------------------------------------------------------------
# The reparametrisation
# ---------------------------------------------------------------------------------------------


def _edge(dtype) -> float:
    return max(_EDGE, 2 * float(jnp.finfo(dtype).eps))


def _softplus_inv(y):
    return y + jnp.log(-jnp.expm1(-y))  # log(exp(y) - 1), without overflow for large y


def to_free(x, low: float | None, high: float | None):
    """The unconstrained value ``u`` the optimizer sees for a Parameter value ``x`` in its bounds."""
    if low is not None and high is not None:
        if high == low:
            return jnp.zeros_like(x)
        e = _edge(x.dtype)
        f = jnp.clip((x - low) / (high - low), e, 1 - e)
        return jnp.log(f) - jnp.log1p(-f)
    if low is not None:
        return _softplus_inv(jnp.maximum(x - low, _edge(x.dtype)))
    if high is not None:
        return _softplus_inv(jnp.maximum(high - x, _edge(x.dtype)))
    return x


def to_bounded(u, low: float | None, high: float | None):
    """The Parameter value for the unconstrained ``u``: inside ``[low, high]`` whatever ``u``."""
    if low is not None and high is not None:
        if high == low:
            return jnp.full_like(u, low)
        return jnp.clip(low + (high - low) * jax.nn.sigmoid(u), low, high)
    if low is not None:
        return low + jax.nn.softplus(u)
    if high is not None:
        return high - jax.nn.softplus(u)
    return u


# ---------------------------------------------------------------------------------------------
# One start: the model the sweep runs
# ---------------------------------------------------------------------------------------------


def _scalar(out):
    if isinstance(out, Parameter):
        out = out.value
    return out.array if _is_named(out) else jnp.asarray(out)


def _descend(state, loss: Callable, optimizer, steps: int, args: tuple, kwargs: dict):
    """``steps`` optimizer updates of the free Parameters of one start; the optimised values (in
    the order of the state's leaves) and the loss there."""
    import optax

    entries, treedef = jax.tree.flatten(state, is_leaf=_is_entry)
    free = [i for i, e in enumerate(entries) if isinstance(e, Parameter) and e.free]
    bounds = [(entries[i].low, entries[i].high) for i in free]

    def values(u):
        return tuple(to_bounded(v, lo, hi) for v, (lo, hi) in zip(u, bounds, strict=True))

    def f(u):
        new = list(entries)
        for i, v in zip(free, values(u), strict=True):
            new[i] = with_value(entries[i], v)
        return _scalar(loss(treedef.unflatten(new), *args, **kwargs))

    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def step(_, carry):
        u, opt_state = carry
        if extra:  # line searches (optax.lbfgs) want the value and the function too
            value, grad = jax.value_and_grad(f)(u)
            updates, opt_state = optimizer.update(grad, opt_state, u, value=value, grad=grad, value_fn=f)
        else:
            updates, opt_state = optimizer.update(jax.grad(f)(u), opt_state, u)
        return optax.apply_updates(u, updates), opt_state

    u0 = tuple(to_free(entries[i].value, lo, hi) for i, (lo, hi) in zip(free, bounds, strict=True))
    u, _ = lax.fori_loop(0, steps, step, (u0, optimizer.init(u0)))
    return {"loss": f(u), "values": values(u)}


# ---------------------------------------------------------------------------------------------
# The public function
# ---------------------------------------------------------------------------------------------


def _free_parameters(op: str, space: AbstractSpace) -> list[Parameter]:
    """The free Parameters of point 0, in the order of the state's leaves; errors for none or for
    non-floating values."""
    pairs = jax.tree_util.tree_flatten_with_path(space[0], is_leaf=_is_entry)[0]
    found = [(jax.tree_util.keystr(p) or "state", e) for p, e in pairs if isinstance(e, Parameter) and e.free]
    if not found:
        leaves = [jax.tree_util.keystr(p) or "state" for p, _ in pairs]
        raise ValueError(f"{op}: the space's state has no free Parameter to optimise (its leaves: {leaves}); mark "
                         "the optimised leaves with Parameter(name, value, free=True)")
    for path, p in found:
        if not jnp.issubdtype(p.dtype, jnp.floating):
            raise TypeError(f"{op}: free Parameter {p.name!r} at {path} holds {p.dtype} values; optimisation needs "
                            "floating values (give the space float data)")
    return [p for _, p in found]


def _check_loss(op: str, loss: Callable, space: AbstractSpace, args: tuple, kwargs: dict) -> None:
    """Trace the loss at the first start: it must give a real scalar."""
    try:
        out = eqx.filter_eval_shape(lambda s: _scalar(loss(s, *args, **kwargs)), space[0])
    except Exception as e:
        err = _e.diagnose_trace_error(op, loss, space, args, kwargs, e)
        raise _renamed(err) from err.__cause__
    if out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"{op}: `loss` must return a real scalar (shape ()), got shape {out.shape} and dtype "
                         f"{out.dtype} on {_e.describe_point(space, 0)}; reduce it, e.g. with jnp.sum or nx.sum")


_MODEL = f"{_descend.__module__}.{_descend.__qualname__}"
_WORDING = (  # the executor's words for its model and arguments, in the terms of optimize's caller
    (f"another model: {_MODEL!r}, but with other code or captured values (its body, a closure, a default or a "
     "function it calls changed)", "another optimisation: the loss or the optimizer has other code or captured "
     "values"),
    (f"the same model {_MODEL!r} with other arguments", "the same loss with other settings"),
    ("args[0] differs", "`loss` differs"), ("args[1] differs", "`optimizer` differs"),
    ("args[2] differs", "`steps` differs"), ("args[3] differs", "the loss's positional arguments differ"),
    ("args[4] differs", "the loss's keyword arguments differ"), ("the model", "the loss"),
    ("`model` must be callable as model(", "`loss` must be callable as loss("), ("`statespace`", "`space`"),
)


def _renamed(e: Exception) -> Exception:
    """An executor's error as this function's own (its message names `optimize`)."""
    msg = str(e)
    for prefix in ("ParallelExecution", "optimize"):
        if msg.startswith(prefix):
            msg = "optimize" + msg[len(prefix):]
            break
    for a, b in _WORDING:
        msg = msg.replace(a, b)
    if isinstance(e, ModelError):
        return ModelError(msg, e.point)
    return type(e)(msg) if type(e) in (ValueError, TypeError) else e


def optimize(loss: Callable, space: AbstractSpace, *args: Any, optimizer: Any, steps: int,
             n_vmap: int | None = None, n_pmap: int | None = 1, checkpoint_dir: str | os.PathLike | None = None,
             progress: bool = True, **kwargs: Any) -> OptimizeResults:
    """Minimise ``loss(state, *args, **kwargs)`` from every point of ``space`` with an optax optimizer.

    Each start is a point of the space (its state, as a sweep's model would get it). From it,
    ``steps`` updates of ``optimizer`` change the free Parameters of the state (every free
    `Parameter` leaf, not only the ones the space varies); fixed Parameters, NamedArrays, data
    and every other leaf keep their values. Bounds hold throughout: the optimizer works on an
    unconstrained value ``u`` per Parameter: the loss sees ``low + (high - low) * sigmoid(u)``
    for ``[low, high]``, ``low + softplus(u)`` or ``high - softplus(u)`` for one bound, ``u``
    itself for none (a start on a bound begins ``1e-6`` inside it; the guide's *From sweep to
    optimum* has the details). The result equals a hand-written ``jax.vmap`` over an optax loop on the same
    starts; the starts run like a sweep's points (`ParallelExecution`): vectorised, over devices,
    in blocks, checkpointed.

    Args:
        loss: the function to minimise; it returns a real scalar and must be traceable by
            ``jax.grad`` and ``jax.vmap``.
        space: the starts, a space from `namedax.spaces` (`GridSpace`, `UniformSpace`, `DataSpace`).
        *args: extra positional arguments of the loss (arrays are traced, the rest compiled in).
        optimizer: an ``optax.GradientTransformation`` (``optax.adam(1e-2)``, a chain, ...);
            transformations taking extra arguments also get ``value``, ``grad`` and ``value_fn``
            (so ``optax.lbfgs()`` works).
        steps: the number of updates from every start (0 evaluates the loss at the starts).
        n_vmap: starts vectorised per step on each device. None: all of a device's starts, up to
            `_AUTO_VMAP` (an optimisation loop runs ``steps`` iterations per chunk, so wide chunks
            amortise each iteration's overhead: on 2 CPU cores 4096 starts in one chunk run 1.4x
            faster than four chunks of 1024, the sweeps' default).
        n_pmap: devices to use (default 1; None uses all), as for `ParallelExecution`.
        checkpoint_dir: a directory where finished blocks of starts are written; a later call with
            the same loss, optimizer, steps, space and arguments resumes from them.
        progress: show a progress bar on a terminal or in a notebook.
        **kwargs: extra keyword arguments of the loss (the names above are this function's own).

    Returns:
        `OptimizeResults`: the optimised state and the final loss of every start.

    Raises:
        ModuleNotFoundError: optax is not installed (``pip install 'namedax[optimize]'``).
        TypeError: ``loss`` is not callable, ``space`` is not a space, ``optimizer`` is not an optax
            GradientTransformation, ``steps`` is not an int, a free Parameter is not floating.
        ValueError: ``steps < 0``, the state has no free Parameter, the loss does not return a real
            scalar; bad executor options, as for `ParallelExecution`.
        ModelError: the loss raised, or cannot be traced (the message names the start).

    Examples:
        >>> import jax.numpy as jnp
        >>> import optax
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import optimize
        >>> state = {"x": Parameter("x", 0.0, low=-3.0, high=3.0, free=True)}
        >>> def loss(state):                       # minima at x = -1 and x = 2
        ...     return (state["x"] + 1) ** 2 * (state["x"] - 2) ** 2
        >>> results = optimize(loss, GridSpace(state, n=4), optimizer=optax.adam(0.1), steps=300)
        >>> [round(float(s["x"]), 3) for s in results]    # from x = -3, -1, 1, 3
        [-1.0, -1.0, 2.0, 2.0]
        >>> float(results.loss.max()) < 1e-6
        True
    """
    op = "optimize"
    optax = _optax(op)
    try:
        _check_common(op, loss, space, progress, None, "raise")
    except TypeError as e:
        raise _renamed(e) from None
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"{op}: `optimizer` must be an optax.GradientTransformation (e.g. optax.adam(1e-2)), got "
                        f"{type(optimizer).__name__}: {optimizer!r}")
    steps = as_int(steps, f"{op}: `steps` must be an int")
    if steps < 0:
        raise ValueError(f"{op}: `steps` must be >= 0, got {steps}")
    _free_parameters(op, space)
    _check_loss(op, loss, space, args, kwargs)
    if n_vmap is None:
        n_dev = n_pmap if isinstance(n_pmap, int) and n_pmap >= 1 else jax.device_count()  # (checked below)
        n_vmap = int(min(-(-space.N // n_dev), _AUTO_VMAP))
    try:
        sweep = ParallelExecution(_descend, space, loss, optimizer, steps, args, kwargs, n_vmap=n_vmap,
                                  n_pmap=n_pmap, checkpoint_dir=checkpoint_dir, progress=progress).run()
    except (ModelError, ValueError, TypeError) as e:
        raise _renamed(e) from e
    return OptimizeResults(sweep)


# ---------------------------------------------------------------------------------------------
# The results
# ---------------------------------------------------------------------------------------------


class OptimizeResults:
    """The outcome of `optimize`: the optimised state and the final loss of every start.

    Starts are in the flat order of the space they came from (``results.space``).

    - ``len(results)`` is the number of starts; ``results.loss`` the final losses (numpy, one per
      start); ``results[i]`` the optimised state of start ``i`` (the start's state with its free
      Parameters carrying the optimised values); iterating gives them in order.
    - ``results.argsort()`` orders the starts from the lowest final loss (NaN last), and
      ``results.best()`` is the best state, ``results.best(k)`` the ``k`` best stacked (as
      `points` stacks them).
    - `points` stacks the optimised states of several starts, `to_space` makes a `DataSpace` of
      them (to sweep a model over the optima), `named` gives losses and values over the space's
      axes (a grid of starts comes back as a grid).

    Attributes:
        space: the space of the starts.
        loss: the final loss of every start, a read-only numpy array of shape ``(N,)``.

    Examples:
        >>> import optax
        >>> from namedax.spaces import GridSpace, Parameter
        >>> from namedax.execution import optimize
        >>> state = {"x": Parameter("x", 0.0, low=-2.0, high=2.0, free=True), "c": Parameter("c", 1.0)}
        >>> def loss(state):                      # a tilted double well: minima near -1.04 and 0.96
        ...     return (state["x"] ** 2 - state["c"]) ** 2 + 0.3 * state["x"]
        >>> results = optimize(loss, GridSpace(state, n=5), optimizer=optax.adam(0.02), steps=500)
        >>> results.loss.round(3)                 # from x = -2, -1, 0, 1, 2
        array([-0.305, -0.305, -0.305,  0.294,  0.294], dtype=float32)
        >>> best = results.best()
        >>> round(float(best["x"]), 2), float(best["c"])          # the fixed Parameter is unchanged
        (-1.04, 1.0)
        >>> int(results.argsort()[-1]) in (3, 4)                   # the worst start ends in the other well
        True
        >>> results.best(2)["x"].value.shape
        (2,)
    """

    __slots__ = ("_sweep", "_loss", "_values")

    def __init__(self, sweep: Results):
        out = sweep[:]
        self._sweep = sweep
        self._loss = np.asarray(out["loss"])
        self._values = tuple(np.asarray(v) for v in out["values"])

    @property
    def space(self) -> AbstractSpace:
        """The space of the starts."""
        return self._sweep.space

    @property
    def loss(self) -> np.ndarray:
        """The final loss of every start, in flat order."""
        return self._loss

    def __len__(self) -> int:
        return len(self._loss)

    def _with_values(self, state: Any, pick) -> Any:
        """``state`` with its free Parameters carrying ``pick(values)`` of each."""
        entries, treedef = jax.tree.flatten(state, is_leaf=_is_entry)
        k = 0
        for i, e in enumerate(entries):
            if isinstance(e, Parameter) and e.free:
                entries[i] = with_value(e, jnp.asarray(pick(self._values[k])))
                k += 1
        return treedef.unflatten(entries)

    def __getitem__(self, i) -> Any:
        """The optimised state of start ``i`` (an int; negative counts from the end)."""
        state = self.space[i]  # checks the index
        i = as_int(i, "OptimizeResults: a start index must be an int")
        return self._with_values(state, lambda v: v[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def points(self, indices: slice | range | Sequence[int] | np.ndarray | None = None) -> Any:
        """The optimised states of the starts at ``indices`` (all by default), free leaves stacked
        along a new leading dimension, as `AbstractSpace.points` stacks the starts.

        Examples:
            >>> import optax
            >>> from namedax.spaces import GridSpace, Parameter
            >>> from namedax.execution import optimize
            >>> state = {"x": Parameter("x", 0.0, low=0.0, high=4.0, free=True)}
            >>> results = optimize(lambda s: (s["x"] - 1.5) ** 2, GridSpace(state, n=3),
            ...                    optimizer=optax.adam(0.1), steps=200)
            >>> results.points([0, 2])["x"].value.round(3)
            Array([1.5, 1.5], dtype=float32)
        """
        idx = self.space._indices(indices, "points")
        return self._with_values(self.space.points(idx), lambda v: v[idx])

    def argsort(self) -> np.ndarray:
        """The start indices from the lowest final loss to the highest (NaN last; ties keep flat order)."""
        return np.argsort(self._loss, kind="stable")

    def best(self, k: int | None = None) -> Any:
        """The optimised state with the lowest final loss; with ``k``, the ``k`` best states stacked
        (best first, as `points` stacks them).

        Raises:
            TypeError / ValueError: ``k`` is not an int in ``[1, N]``.
        """
        order = self.argsort()
        if k is None:
            return self[int(order[0])]
        k = as_int(k, "OptimizeResults.best: `k` must be an int or None")
        if not 1 <= k <= len(self):
            raise ValueError(f"OptimizeResults.best: `k` must be in [1, {len(self)}] (the number of starts), got {k}")
        return self.points(order[:k])

    def to_space(self) -> Any:
        """The optimised states as a `DataSpace` (axis ``data``, one point per start, in flat order),
        to sweep a model over the optima with `ParallelExecution`."""
        from ..spaces._spaces import DataSpace

        space = self.space
        entries = jax.tree.flatten(self.points(), is_leaf=_is_entry)[0]
        values = [entries[pos].value if isinstance(entries[pos], Parameter) else entries[pos] for pos in space._free]
        return DataSpace._from_values(space, values, len(self))

    def named(self) -> dict[str, Any]:
        """The final losses and optimised values as `NamedArray`\\ s over the space's axes.

        Returns:
            ``{"loss": NamedArray, "values": {name: NamedArray}}``: one entry per free Parameter,
            keyed by its name (by its path in the state when names repeat); an array-valued
            Parameter's own dimensions become axes ``dim_0``, ``dim_1``, ...
        """
        out = self._sweep.named()
        pairs = jax.tree_util.tree_flatten_with_path(self.space[0], is_leaf=_is_entry)[0]
        params = [(jax.tree_util.keystr(p) or "state", e.name) for p, e in pairs
                  if isinstance(e, Parameter) and e.free]
        names = [n for _, n in params]
        keys = names if len(set(names)) == len(names) else [p for p, _ in params]
        return {"loss": out["loss"], "values": dict(zip(keys, out["values"], strict=True))}

    def __repr__(self) -> str:
        axes = ", ".join(f"{a.name}: {a.size}" for a in self.space.axes)
        finite = self._loss[np.isfinite(self._loss)]
        best = f"best loss {finite.min():.6g}" if finite.size else "no finite loss"
        return f"OptimizeResults({len(self)} starts of {type(self.space).__name__}({axes}); {best})"

