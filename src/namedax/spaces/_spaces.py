"""The public spaces (re-exported by `namedax.spaces`)."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis
from ..core._digest import digest
from ..core._named_array import _is_named, _new
from ..random import _check_key as _random_key
from . import _gen as _g
from ._base import (
    _MAX_N,
    AbstractSpace,
    _check_bounds,
    _compute_dtype,
    _count,
    _default_float,
    _dims,
    _flatten_state,
    _free_parameters,
    _out_dtype,
    _put_free,
)
from ._parameter import Parameter


class DataSpaceSizeError(ValueError, AssertionError):
    """The free leaves of a `DataSpace` disagree on their first dimension.

    Both a ``ValueError`` (namedax's error for mismatched sizes) and an ``AssertionError`` (what the
    reference implementation raises), so either ``except`` clause catches it.
    """


# ---------------------------------------------------------------------------------------------
# DataSpace
# ---------------------------------------------------------------------------------------------


class DataSpace(AbstractSpace):
    """A space of given points: row ``i`` of every free leaf is point ``i``.

    The free leaves are the array leaves (numpy or jax, at least 1-D) and the free Parameters; they
    share their first dimension N. Fixed leaves, the same at every point: Parameters with
    ``free=False`` and NamedArrays (whatever their shapes; wrap an array in one of them to keep it
    fixed), 0-d arrays, and non-array leaves. One axis, ``data``, of size N (``1 <= N < 2**31``).

    Args:
        state: the state PyTree.

    Attributes:
        state: the state as given.
        N: the number of points (the shared first dimension).

    Raises:
        DataSpaceSizeError: the free leaves disagree on N (a ``ValueError`` and an ``AssertionError``;
            the message lists every free leaf's path and size).
        ValueError: no free leaves, a free Parameter without a first dimension, or N = 0.
        TypeError: a free Parameter holds a NamedArray.

    Examples:
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import DataSpace
        >>> state = {'param1': jnp.array([[1, 2], [3, 4], [5, 6]]),
        ...          'param2': jnp.array([0.1, 0.2, 0.3])}
        >>> ds = DataSpace(state)
        >>> ds.N
        3
        >>> single_state = ds[0]  # Get first parameter set
        >>> single_state['param1'], single_state['param2']
        (Array([1, 2], dtype=int32), Array(0.1, dtype=float32))
        >>> def model(state):
        ...     return state['param1'].sum() * state['param2']
        >>> for state in ds:     # Iterate over all parameter sets
        ...     print(f"{float(model(state)):.1f}")
        0.3
        1.4
        3.3
    """

    def __init__(self, state: Any):
        treedef, paths, entries = _flatten_state(state)
        free, arrays = [], []
        for i, e in enumerate(entries):
            if isinstance(e, Parameter):
                if not e.free:
                    continue
                if _is_named(e.value):
                    raise TypeError(f"DataSpace: free Parameter {e.name!r} at {paths[i]} holds a NamedArray; "
                                    "free Parameters hold plain arrays")
                if np.ndim(e.value) == 0:
                    raise ValueError(
                        f"DataSpace: free Parameter {e.name!r} at {paths[i]} has a scalar value; a DataSpace "
                        "reads one row per point from the first dimension: give it shape (N, ...), or free=False"
                    )
                free.append(i)
                arrays.append(e.value)
            elif isinstance(e, jax.Array | np.ndarray) and e.ndim >= 1:
                free.append(i)
                arrays.append(e)
        if not free:
            raise ValueError(
                "DataSpace: the state has no free leaves (arrays with a first dimension, or free Parameters); "
                f"its leaves are {list(paths)}"
            )
        sizes = {paths[i]: int(np.shape(a)[0]) for i, a in zip(free, arrays, strict=True)}
        if len(set(sizes.values())) > 1:
            listing = ", ".join(f"{p}: {n}" for p, n in sizes.items())
            raise DataSpaceSizeError(
                f"DataSpace: the free leaves (every array with a first dimension, and the free Parameters) must "
                f"share their first dimension (the number of points N), got {listing}; to keep an array fixed "
                "(the same at every point), wrap it in Parameter(name, array) (free=False) or name its axes "
                "with nx.named"
            )
        n = next(iter(sizes.values()))
        if n == 0:
            raise ValueError(f"DataSpace: the free leaves have no rows (first dimension 0): {list(sizes)}")
        if n > _g.MAX_BLOCK:
            raise ValueError(f"DataSpace: {n} rows; at most {_g.MAX_BLOCK} (split the data into several spaces)")
        gen = _g.DataGen([jnp.asarray(a) for a in arrays], n)
        self._setup(state, treedef, paths, entries, free, gen, n, (Axis("data", n),), (), keep_free=False)

    @classmethod
    def _from_values(cls, space: AbstractSpace, values, n: int) -> DataSpace:
        """The points ``values`` (stacked free values) of ``space`` as a DataSpace: same structure and
        free leaves, fixed leaves unchanged."""
        self = object.__new__(cls)
        entries = _put_free(space, space._entries(), values)
        state = space._treedef.unflatten(entries)
        gen = _g.DataGen(list(values), n)
        self._setup(state, space._treedef, space._paths, entries, space._free, gen, n, (Axis("data", n),), (),
                    keep_free=False)
        return self

    def _host_point(self, i: int) -> tuple:
        return tuple(a[i] for a in self._gen.arrays)

    def _point_digests(self) -> dict[str, str]:  # the free leaves' data, by path
        return {self._paths[pos]: digest(a) for pos, a in zip(self._free, self._gen.arrays, strict=True)}

    @property
    def state(self):
        """The state the space was built from."""
        if self._state is None:  # rebuilt by JAX: the data live in the generator
            self._state = self._assemble(self._gen.arrays)
        return self._state

    def named(self) -> Any:
        """The state with each free leaf as a `NamedArray` with axes ``("data", "dim_0", ...)``.

        Examples:
            >>> import jax.numpy as jnp
            >>> from namedax.spaces import DataSpace
            >>> named = DataSpace({"w": jnp.zeros((3, 2))}).named()
            >>> named["w"].axes
            (Axis('data', 3), Axis('dim_0', 2))
        """
        return self._assemble([_new(a, self._axes + _dims(a.shape[1:])) for a in self._gen.arrays])

    def coords(self) -> dict[str, np.ndarray]:
        """``{"data": arange(N)}``."""
        return {"data": np.arange(self._N)}

    def __repr__(self):
        leaves = ", ".join(
            f"{self._paths[pos]} {tuple(a.shape[1:])} {a.dtype}" for pos, a in zip(self._free, self._gen.arrays,
                                                                                  strict=True)
        )
        return f"DataSpace(N={self._N}, axis 'data', free leaves: {leaves})"


# ---------------------------------------------------------------------------------------------
# UniformSpace
# ---------------------------------------------------------------------------------------------


def _check_key(key, op: str):
    """A typed key (the default ``jax.random.key(0)`` when None); checks are `namedax.random`'s."""
    if key is None:
        return jax.random.key(0)
    key = _random_key(op, key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if np.shape(key) != (2,):
        raise TypeError(f"{op}: `key` is raw key data of shape {np.shape(key)}; pass a jax.random.key")
    return jax.random.wrap_key_data(jnp.asarray(key))  # a legacy jax.random.PRNGKey


class UniformSpace(AbstractSpace):
    """``n`` random points: each free Parameter uniform in ``[low, high]``, one axis ``sample``.

    Point ``i`` depends only on the key and ``i``: its key is
    ``fold_in(fold_in(key, i >> 32), i & 0xFFFFFFFF)``, from which one ``jax.random.uniform`` of
    shape ``(number of free Parameters,)`` gives ``low + (high - low) * u`` per free Parameter (in
    leaf order; ``low * (high / low) ** u``, log-uniform, for a ``scale="log"`` Parameter). So any
    chunking gives the same points, and the same key the same space. A free Parameter whose value
    is an array is filled with its one draw (the value's shape is kept).

    Quasi-random points (``method="sobol" | "halton" | "lhs"``, which need scipy: ``pip install
    'namedax[qmc]'``) fill the box more evenly than random ones. Those sequences are generated,
    not indexed, so the space draws all ``n`` points once, at construction, on the host, with
    ``scipy.stats.qmc`` (scrambled; one dimension per free Parameter, ``u`` mapped to the bounds as
    above), seeded with ``numpy.random.default_rng(numpy.asarray(jax.random.key_data(key)))``: the
    same key gives the same points. It then holds them (``n * (number of free Parameters)``
    values, 4 bytes each in float32: 100 MB for 10^7 points of 3 Parameters) and indexes them in
    O(1); at most ``2**27`` values. Sobol points are best balanced when ``n`` is a power of 2.

    Args:
        state: the state PyTree; its free Parameters all need ``low`` and ``high``.
        n: the number of points (``1 <= n < 2**63``; quasi-random: ``n * (free Parameters) <= 2**27``).
        key: a ``jax.random.key`` (or a legacy ``jax.random.PRNGKey``). Optional, as in the reference
            implementation (tvboptim): None means ``jax.random.key(0)``, so a space built without a
            key is always the same space; pass another key for other points.
        method: ``"random"`` (the default: independent uniform points), or the quasi-random
            ``"sobol"``, ``"halton"`` or ``"lhs"`` (Latin hypercube).

    Raises:
        ValueError: no free Parameters, a free Parameter without bounds, ``n < 1``, an unknown
            ``method``, a quasi-random sample too large.
        TypeError: ``n`` is not an int, ``key`` is not a key.
        ModuleNotFoundError: a quasi-random method without scipy.

    Examples:
        >>> import jax
        >>> from namedax.spaces import Parameter, UniformSpace
        >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
        ...          "b": Parameter("b", 0.0, low=10.0, high=20.0, free=True)}
        >>> space = UniformSpace(state, 1000, key=jax.random.key(1))
        >>> space.axes
        (Axis('sample', 1000),)
        >>> p = space[5]
        >>> bool(0 <= p["a"] <= 1 and 10 <= p["b"] <= 20)
        True
        >>> q = UniformSpace(state, 1000, key=jax.random.key(1))[5]   # the same key: the same points
        >>> bool(q["b"] == p["b"])
        True
        >>> sobol = UniformSpace(state, 256, method="sobol")          # needs scipy
        >>> bool(0 <= sobol[7]["a"] <= 1)
        True
    """

    def __init__(self, state: Any, n: int, key: Any = None, *,
                 method: Literal["random", "sobol", "halton", "lhs"] = "random"):
        op = "UniformSpace"
        n = _count(n, op, "n", _MAX_N)
        key = _check_key(key, op)
        if method not in _METHODS:
            raise ValueError(f"{op}: `method` must be one of {list(_METHODS)}, got {method!r}")
        treedef, paths, entries = _flatten_state(state)
        free = _free_parameters(op, paths, entries, need_bounds=True)
        params = [entries[i] for i in free]
        cdt = _default_float()
        out_dts = [_out_dtype(p.value) for p in params]
        shapes = [tuple(np.shape(p.value)) for p in params]
        _check_bounds(op, params, out_dts, cdt)
        lows, highs = [p.low for p in params], [p.high for p in params]
        logs = [p.scale == "log" for p in params]
        # linear Parameters and the random method keep the info (and so the fingerprint) of before
        info = tuple((p.name, p.low, p.high) + (("log",) if lg else ()) for p, lg in zip(params, logs, strict=True))
        if method == "random":
            gen = _g.UniformGen(key, n, lows, highs, cdt, out_dts, shapes, logs)
        else:
            if n * len(params) > _QMC_MAX:
                raise ValueError(f"{op}: method={method!r} holds its {n} points x {len(params)} free Parameters "
                                 f"in memory; at most {_QMC_MAX} values (use method='random' for larger spaces)")
            columns = _qmc_sample(op, method, key, n, lows, highs, logs)
            gen = _g.SampleGen([jnp.asarray(c.astype(dt)) for c, dt in zip(columns, out_dts, strict=True)], n,
                               out_dts, shapes, key)
            info += (method,)
        self._setup(state, treedef, paths, entries, free, gen, n, (Axis("sample", n),), info, keep_free=True)

    @property
    def method(self) -> str:
        """How the points are drawn: ``"random"``, ``"sobol"``, ``"halton"`` or ``"lhs"``."""
        return self._info[-1] if isinstance(self._info[-1], str) else "random"

    @property
    def key(self):
        """The space's key."""
        return self._gen.key

    def named(self) -> Any:
        """The state with each free Parameter carrying a `NamedArray` over ``sample`` (and ``dim_0``, ...
        for array values). Builds all N points: for small spaces.

        Examples:
            >>> from namedax.spaces import Parameter, UniformSpace
            >>> space = UniformSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, 4)
            >>> space.named()["a"].value.axes
            (Axis('sample', 4),)
        """
        return self._named_points()

    def coords(self) -> dict[str, np.ndarray]:
        """``{"sample": arange(N)}``."""
        return {"sample": np.arange(self._N)}

    def __repr__(self):
        bounds = ", ".join(f"{p[0]} in [{p[1]}, {p[2]}]{' (log)' if len(p) > 3 else ''}"
                           for p in self._info if isinstance(p, tuple))
        if self.method != "random":
            return f"UniformSpace(N={self._N}, axis 'sample', {bounds}, method={self.method!r})"
        key = np.asarray(jax.random.key_data(self._gen.key)).tolist()
        return f"UniformSpace(N={self._N}, axis 'sample', {bounds}, key={key})"


_METHODS = ("random", "sobol", "halton", "lhs")
_QMC_MAX = 2**27  # values held by a quasi-random space: 512 MB in float32


def _qmc_sample(op: str, method: str, key, n: int, lows, highs, logs) -> list[np.ndarray]:
    """``n`` scrambled quasi-random points in the bounds (float64, one column per Parameter)."""
    try:
        from scipy.stats import qmc
    except ImportError:
        raise ModuleNotFoundError(f"{op}: method={method!r} needs scipy, which is not installed: "
                                  "pip install 'namedax[qmc]' (or pip install scipy)") from None
    engine_cls = {"sobol": qmc.Sobol, "halton": qmc.Halton, "lhs": qmc.LatinHypercube}[method]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    seed_kw = "rng" if "rng" in inspect.signature(engine_cls).parameters else "seed"  # scipy >= 1.15: rng
    engine = engine_cls(len(lows), **{seed_kw: rng})
    with warnings.catch_warnings():  # n not a power of 2: documented, not an error
        warnings.filterwarnings("ignore", message=".*balance properties of Sobol", category=UserWarning)
        u = engine.random(n)
    lo, hi = np.asarray(lows, np.float64), np.asarray(highs, np.float64)
    lin = u * (hi - lo) + lo  # as qmc.scale
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = lo * (hi / np.where(np.asarray(logs), lo, 1.0)) ** u
    v = np.clip(np.where(np.asarray(logs), geo, lin), lo, hi)
    return [v[:, j] for j in range(len(lows))]


# ---------------------------------------------------------------------------------------------
# GridSpace
# ---------------------------------------------------------------------------------------------


def _grid_sizes(n, names: list[str]) -> list[int]:
    op = "GridSpace"
    if isinstance(n, Mapping):
        missing = [k for k in names if k not in n]
        unknown = [k for k in n if k not in names]
        if unknown:
            raise ValueError(f"{op}: `n` names {unknown}, which are not free Parameters; "
                             f"the free Parameters are {names}")
        if missing:
            raise ValueError(f"{op}: `n` gives no size for {missing}; give one for every free Parameter {names}, "
                             "or a single int for all")
        return [_count(n[k], op, f"n[{k!r}]", _g.MAX_BLOCK) for k in names]
    return [_count(n, op, "n", _g.MAX_BLOCK)] * len(names)


def _grid_logs(log, names: list[str], params) -> list[bool]:
    op = "GridSpace"
    if isinstance(log, bool | np.bool_):
        logs = [bool(log)] * len(names)
    else:
        chosen = [log] if isinstance(log, str) else list(log)
        unknown = [k for k in chosen if k not in names]
        if unknown:
            raise ValueError(f"{op}: `log` names {unknown}, which are not free Parameters; the free Parameters "
                             f"are {names}")
        logs = [k in chosen for k in names]
    logs = [lg or p.scale == "log" for p, lg in zip(params, logs, strict=True)]
    bad = [f"{p.name!r} (low={p.low})" for p, lg in zip(params, logs, strict=True) if lg and p.low <= 0]
    if bad:
        raise ValueError(f"{op}: log spacing needs `low` > 0, got {', '.join(bad)}")
    return logs


class GridSpace(AbstractSpace):
    """A grid: one axis per free Parameter, named after it, ``n`` points from ``low`` to ``high``.

    Axis values are ``low + (high - low) * j / (n - 1)`` for ``j = 0 .. n - 1`` (exactly ``high`` at
    ``j = n - 1``; ``low`` when ``n == 1``), or geometric (``low * (high / low) ** (j / (n - 1))``)
    for the parameters in ``log`` and those with ``scale="log"``. Axes come in
    the state's leaf order, N is the product of their sizes, and flat index ``i`` runs row-major (last
    axis fastest): ``numpy.unravel_index(i, sizes)`` gives the coordinates, as for
    ``numpy.meshgrid(*values, indexing="ij")`` flattened. A free Parameter whose value is an array
    is filled with its axis value (the value's shape is kept). Swept values keep a floating value's
    dtype; other values become the default float dtype.

    Args:
        state: the state PyTree; its free Parameters all need ``low`` and ``high``.
        n: points per axis, an int for every axis or ``{name: int}`` for each (``1 <= n < 2**31``).
        log: geometric spacing (``low > 0``) for all axes (True), or for the named ones, in addition
            to the free Parameters with ``scale="log"``.

    Raises:
        ValueError: no free Parameters, a free Parameter without bounds, two free Parameters with one
            name, a size < 1, a mapping that misses or invents names, log spacing with ``low <= 0``,
            N of ``2**63`` or more.
        TypeError: a size is not an int.

    Examples:
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import GridSpace, Parameter
        >>> def simulate(state):
        ...     return state['param1'] * state['param2']
        >>> state = {
        ...     'param1': Parameter("param1", 0.0, low=0.0, high=1.0, free=True),
        ...     'param2': Parameter("param2", 0.0, low=-1.0, high=1.0, free=True)
        ... }
        >>> space = GridSpace(state, n=10)  # 100 parameter combinations
        >>> space.N, space.axes
        (100, (Axis('param1', 10), Axis('param2', 10)))
        >>> first_result = simulate(space[0])
        >>> all_results = [simulate(s) for s in space]
        >>> float(first_result), len(all_results), float(all_results[-1])
        (-0.0, 100, 1.0)
    """

    def __init__(self, state: Any, n: int | Mapping[str, int] = 10, *, log: bool | str | Any = False):
        op = "GridSpace"
        treedef, paths, entries = _flatten_state(state)
        free = _free_parameters(op, paths, entries, need_bounds=False)
        params = [entries[i] for i in free]
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            dups = sorted({k for k in names if names.count(k) > 1})
            where = ", ".join(f"{names[k]!r} at {paths[free[k]]}" for k in range(len(names)) if names[k] in dups)
            raise ValueError(f"{op}: free Parameters name the grid's axes, so their names must be unique; "
                             f"repeated: {where}")
        _free_parameters(op, paths, entries, need_bounds=True)
        ns = _grid_sizes(n, names)
        logs = _grid_logs(log, names, params)
        total = math.prod(ns)
        if total > _MAX_N:
            raise ValueError(f"{op}: {total} points ({dict(zip(names, ns, strict=True))}) exceed 2**63 - 1")
        out_dts = [_out_dtype(p.value) for p in params]
        cdt = np.result_type(*[_compute_dtype(dt) for dt in out_dts])
        shapes = [tuple(np.shape(p.value)) for p in params]
        _check_bounds(op, params, out_dts, cdt, ns, logs)
        gen = _g.GridGen(ns, [p.low for p in params], [p.high for p in params], logs, cdt, out_dts, shapes)
        axes = tuple(Axis(k, s) for k, s in zip(names, ns, strict=True))
        info = tuple((p.name, s, p.low, p.high, lg) for p, s, lg in zip(params, ns, logs, strict=True))
        self._setup(state, treedef, paths, entries, free, gen, total, axes, info, keep_free=True)

    def _host_point(self, i: int) -> tuple:
        gen = self._gen
        logs, cdt, out_dts, shapes, _ = gen.static
        if any(logs):  # numpy's ** differs from XLA's: ask the device
            return super()._host_point(i)
        fp = np.asarray(gen.fp)  # elementwise numpy = IEEE = the device path
        v = _g.grid_formula(np, gen.start(i), gen.lasts, fp[0], fp[2], fp[1], fp[3], fp[4], False, cdt)
        return tuple(jnp.asarray(np.broadcast_to(v[j].astype(out_dts[j]), shapes[j])) for j in range(gen.d))

    def _axis_values(self, j: int) -> np.ndarray:
        c = np.arange(self._axes[j].size, dtype=np.uint32)
        if self._gen.static[0][j]:
            return np.asarray(_g.grid_axis_values(self._gen, c, j))
        return self._gen.axis_values(np, j, c)

    def coords(self) -> dict[str, np.ndarray]:
        """``{name: the n values along that axis}``, in the parameters' dtypes.

        Examples:
            >>> from namedax.spaces import GridSpace, Parameter
            >>> space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
            >>> space.coords()
            {'a': array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)}
        """
        return {ax.name: self._axis_values(j) for j, ax in enumerate(self._axes)}

    def named(self) -> Any:
        """The state with each free Parameter carrying a `NamedArray` over its own axis only (plus
        ``dim_0``, ... for array values): the whole grid in ``sum(n)`` numbers, not ``prod(n)``.

        Examples:
            >>> import jax.numpy as jnp
            >>> import namedax as nx
            >>> from namedax.spaces import GridSpace, Parameter
            >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            ...          "b": Parameter("b", 0.0, low=1.0, high=3.0, free=True)}
            >>> space = GridSpace(state, n={"a": 2, "b": 3})
            >>> named = space.named()
            >>> named["a"].value.axes, named["b"].value.axes
            ((Axis('a', 2),), (Axis('b', 3),))
            >>> grid = named["b"] + named["a"] * 10   # the whole grid, by name
            >>> grid.rearrange(("a", "b")).array
            Array([[ 1.,  2.,  3.],
                   [11., 12., 13.]], dtype=float32)
        """
        shapes = self._gen.static[3]
        values = []
        for j, ax in enumerate(self._axes):
            v = jnp.asarray(self._axis_values(j))
            v = jnp.broadcast_to(v.reshape((ax.size,) + (1,) * len(shapes[j])), (ax.size,) + shapes[j])
            values.append(_new(v, (ax,) + _dims(shapes[j])))
        return self._assemble(values)

    def __repr__(self):
        axes = ", ".join(f"{name}: {s} points in [{lo}, {hi}]{' (log)' if lg else ''}"
                         for name, s, lo, hi, lg in self._info)
        return f"GridSpace(N={self._N}, {axes})"
