"""Random numbers with named shapes: `jax.random` where ``shape`` is a set of axes.

Every sampler takes a key and the axes of its result, as an `Axis`, a sequence of them or a
``{name: size}`` mapping, and returns a `NamedArray`. The draw is exactly `jax.random`'s on the
positional shape, so ``nx.random.normal(key, (Batch, Embed)).array`` equals
``jax.random.normal(key, (Batch.size, Embed.size))`` bit for bit. Parameters (``minval``, ``p``,
``lower``, ...) may be scalars or NamedArrays over some of the result's axes, in any order: they are
aligned by name. The names and signatures follow ``haliax.random``.

Keys are new-style typed keys (`jax.random.key`) or legacy ``uint32`` keys (`jax.random.PRNGKey`).

**Keys through vmap.** Randomness per element of a named axis takes one line: `split` the key along
the axis, which gives a NamedArray of keys holding that axis, and pass it to `namedax.vmap` like any
other mapped argument. Each element then sees its own key (a NamedArray without axes, which every
sampler here accepts as a key):

    >>> import jax
    >>> import namedax as nx
    >>> Batch, Embed = nx.Axis("batch", 3), nx.Axis("embed", 2)
    >>> keys = nx.random.split(jax.random.key(0), Batch)
    >>> noise = nx.vmap(lambda k: nx.random.normal(k, Embed), Batch)(keys)
    >>> noise.axes
    (Axis('batch', 3), Axis('embed', 2))
    >>> bool((noise["batch", 0].array == noise["batch", 1].array).any())
    False

A typed key (`jax.random.key`, a 0-d array) passed unsplit is broadcast, as the default spec
broadcasts every 0-d array, and every element draws the same numbers. A legacy key
(`jax.random.PRNGKey`) is a plain ``uint32`` array of shape ``(2,)``: the default spec maps it along
that key-data dimension, as ``jax.vmap`` with ``in_axes=0`` would, so the call fails on the size (or,
over an axis of size 2, each element gets one ``uint32`` word, which the samplers refuse as a key).
To share a legacy key, give it the spec None (``nx.vmap(f, Batch, args=(None,))``), or use a typed
key. Legacy keys come back from `split` as typed keys (a NamedArray's dimensions are its axes, and a
legacy key has a trailing dimension of key data); ``jax.random.key_data`` recovers the raw bits.

**Keys through Stacked.** `nn.Stacked` builds and runs its layers with a vmap or a scan over its
``Layers`` axis, so per-layer keys are the same thing: a NamedArray of keys holding ``Layers``,
e.g. ``Stacked.init(Layers, Block)(key=nx.random.split(key, Layers))`` gives every layer its own
initialisation, and ``stack.fold(x, key=nx.random.split(key, Layers))`` its own dropout mask.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jrandom

from .core._axis import Axis, AxisSelector, AxisSpec, axis_name, check_unique, to_axes
from .core._named_array import NamedArray, _new, axis_index_in, broadcast_to, check_operand, union_of

__all__ = [
    "split", "normal", "uniform", "bernoulli", "randint", "truncated_normal", "categorical",
    "permutation", "choice", "exponential", "gumbel", "laplace", "cauchy", "logistic", "rademacher",
    "poisson", "gamma", "beta", "t", "pareto", "loggamma", "weibull_min",
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Argument checks shared by every sampler
# ---------------------------------------------------------------------------------------------


def _axes(op: str, shape: Any) -> tuple[Axis, ...]:
    if not (type(shape) is Axis or isinstance(shape, Mapping | Sequence)):
        raise TypeError(
            f"{op}: `shape` must be an Axis, a sequence of Axis or a {{name: size}} mapping, got "
            f"{type(shape).__name__}: {shape!r}"
        )
    try:
        axes = to_axes(shape)
    except TypeError as e:
        raise TypeError(f"{op}: {e}") from None
    check_unique(axes, op)
    return axes


def _check_key(op: str, key: Any) -> Any:
    """One PRNG key for ``op``, checked the same way across namedax (random, nn, spaces).

    Accepts a typed key (`jax.random.key`, 0-d) or a legacy ``uint32`` `jax.random.PRNGKey` (shape
    ``(2,)``), returned as given; a NamedArray without axes (one element's key from `split` through
    `namedax.vmap` or `nn.Stacked`) is unwrapped. Anything else is a TypeError (a ValueError for a
    NamedArray of several keys), naming ``op`` and saying how to get one key.
    """
    if isinstance(key, NamedArray):
        if key.axes:
            raise ValueError(
                f"{op}: `key` is a NamedArray of keys over {key.axes}; draw with a single key: map over those "
                "axes with nx.vmap (or nn.Stacked) so that each call gets one"
            )
        key = key.array
    if key is None:
        raise TypeError(f"{op}: a PRNG `key` is required, e.g. key=jax.random.key(0)")
    dtype = getattr(key, "dtype", None)
    ndim = getattr(key, "ndim", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if ndim != 0:
            raise _KeyArrayError(
                f"{op}: `key` must be a single key, got a key array of shape {key.shape}; for one key per "
                "element of a vmap (or per layer of a Stacked) split the key by name, "
                "nx.random.split(key, Layers): plain arrays are passed whole, never sliced"
            )
        return key
    if dtype == jnp.uint32 and ndim == 1:  # legacy jax.random.PRNGKey (raw key data)
        return key
    if dtype == jnp.uint32 and ndim == 0:  # a legacy key that a vmap mapped along its key data
        raise TypeError(
            f"{op}: `key` is a single uint32 word, not a key: a legacy jax.random.PRNGKey passed to "
            "nx.vmap is mapped along its key data by the default spec; give it the spec None "
            "(args=/kwargs=) or use a typed jax.random.key, which is broadcast"
        )
    raise TypeError(
        f"{op}: `key` must be a jax.random.key or jax.random.PRNGKey, got "
        f"{type(key).__name__} with shape {getattr(key, 'shape', None)} and dtype {dtype}"
    )


class _KeyArrayError(ValueError, TypeError):
    """Several keys where one is expected: a ValueError (a wrong size) that is also the TypeError
    namedax.nn raised for it before the key checks were merged."""


def _param(op: str, name: str, value: Any, axes: tuple[Axis, ...]) -> Any:
    """A distribution parameter laid out over ``axes``: NamedArrays are aligned by name."""
    if isinstance(value, NamedArray):
        sizes = {a.name: a.size for a in axes}
        for a in value.axes:
            if a.name not in sizes:
                raise ValueError(f"{op}: `{name}` has axis {a}, which is not in the shape {axes}; add it to `shape`")
            if sizes[a.name] != a.size:
                raise ValueError(f"{op}: `{name}` has {a}, but the shape has size {sizes[a.name]} for it")
        return broadcast_to(value, axes).array
    check_operand(value, f"{op} (`{name}`)")
    return value


def _shape(axes: tuple[Axis, ...]) -> tuple[int, ...]:
    return tuple(a.size for a in axes)


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def split(key: Any, axis: AxisSpec | Axis) -> NamedArray:
    """One key per element of a named axis (or of several axes): a NamedArray of typed keys.

    The keys are those of ``jax.random.split(key, sizes)``; pass them to `namedax.vmap` over the
    axis so that each element draws with its own key.

    Args:
        key: a `jax.random.key` or a legacy `jax.random.PRNGKey` (or a NamedArray holding one).
        axis: the axes of the keys: an `Axis`, a sequence of them or a ``{name: size}`` mapping.

    Returns:
        A NamedArray over ``axis`` whose elements are typed keys (legacy keys are wrapped with
        ``jax.random.wrap_key_data``; ``jax.random.key_data`` gives the raw bits back).

    Raises:
        TypeError: ``axis`` is a bare name without a size, or ``key`` is not a key.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> keys = nx.random.split(jax.random.key(0), nx.Axis("batch", 4))
        >>> keys.axes
        (Axis('batch', 4),)
        >>> bool((jax.random.key_data(keys.array) == jax.random.key_data(jax.random.split(jax.random.key(0), 4))).all())
        True
    """
    axes = _axes("split", axis)
    key = _check_key("split", key)
    keys = jrandom.split(key, _shape(axes))
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jrandom.wrap_key_data(keys)
    return _new(keys, axes)


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------


def normal(key: Any, shape: AxisSpec | Axis, dtype: Any = None) -> NamedArray:
    """Standard normal samples over ``shape``.

    Args:
        key: a PRNG key (typed or legacy).
        shape: the result's axes: an `Axis`, a sequence of them or a ``{name: size}`` mapping.
        dtype: a float dtype (default: JAX's default float).

    Returns:
        A NamedArray over ``shape``, equal to ``jax.random.normal(key, sizes, dtype)``.

    Raises:
        TypeError: a bare name without a size in ``shape``, or ``key`` is not a key.
        ValueError: duplicate names in ``shape``.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> x = nx.random.normal(jax.random.key(0), {"batch": 2, "embed": 3})
        >>> x.shape
        {'batch': 2, 'embed': 3}
    """
    axes = _axes("normal", shape)
    return _new(jrandom.normal(_check_key("normal", key), _shape(axes), dtype), axes)


def uniform(key: Any, shape: AxisSpec | Axis, dtype: Any = None, minval: Any = 0.0, maxval: Any = 1.0) -> NamedArray:
    """Uniform samples in ``[minval, maxval)`` over ``shape``.

    Args:
        key: a PRNG key.
        shape: the result's axes.
        dtype: a float dtype (default: JAX's default float).
        minval: a scalar or a NamedArray over some of ``shape``'s axes (aligned by name).
        maxval: the same, for the upper bound.

    Returns:
        A NamedArray over ``shape``.

    Raises:
        ValueError: a bound has an axis that ``shape`` lacks, or with another size.
        TypeError: a bound is a plain array of nonzero rank, or ``shape`` lacks a size.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> lo = nx.named(jnp.array([0.0, 10.0]), "batch")
        >>> x = nx.random.uniform(jax.random.key(0), {"batch": 2, "embed": 3}, minval=lo, maxval=lo + 1)
        >>> bool((x["batch", 1].array >= 10).all())
        True
    """
    axes = _axes("uniform", shape)
    lo, hi = _param("uniform", "minval", minval, axes), _param("uniform", "maxval", maxval, axes)
    return _new(jrandom.uniform(_check_key("uniform", key), _shape(axes), dtype, lo, hi), axes)


def bernoulli(key: Any, shape: AxisSpec | Axis, p: Any = 0.5) -> NamedArray:
    """Boolean samples, True with probability ``p``, over ``shape``.

    Args:
        key: a PRNG key.
        shape: the result's axes.
        p: a scalar or a NamedArray over some of ``shape``'s axes (aligned by name).

    Returns:
        A boolean NamedArray over ``shape``.

    Raises:
        ValueError: ``p`` has an axis that ``shape`` lacks, or with another size.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> p = nx.named(jnp.array([0.0, 1.0]), "batch")
        >>> nx.random.bernoulli(jax.random.key(0), {"embed": 3, "batch": 2}, p).array
        Array([[False,  True],
               [False,  True],
               [False,  True]], dtype=bool)
    """
    axes = _axes("bernoulli", shape)
    return _new(jrandom.bernoulli(_check_key("bernoulli", key), _param("bernoulli", "p", p, axes), _shape(axes)), axes)


def randint(key: Any, shape: AxisSpec | Axis, minval: Any, maxval: Any, dtype: Any = None) -> NamedArray:
    """Integers in ``[minval, maxval)`` over ``shape``.

    Args:
        key: a PRNG key.
        shape: the result's axes.
        minval: a scalar or a NamedArray over some of ``shape``'s axes (aligned by name).
        maxval: the same, for the upper bound.
        dtype: an integer dtype (default: JAX's default int).

    Returns:
        An integer NamedArray over ``shape``.

    Raises:
        ValueError: a bound has an axis that ``shape`` lacks, or with another size.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> x = nx.random.randint(jax.random.key(0), {"batch": 5}, 0, 3)
        >>> bool(((x.array >= 0) & (x.array < 3)).all())
        True
    """
    axes = _axes("randint", shape)
    lo, hi = _param("randint", "minval", minval, axes), _param("randint", "maxval", maxval, axes)
    return _new(jrandom.randint(_check_key("randint", key), _shape(axes), lo, hi, dtype), axes)


def truncated_normal(key: Any, shape: AxisSpec | Axis, lower: Any, upper: Any, dtype: Any = None) -> NamedArray:
    """Standard normal samples truncated to ``(lower, upper)``, over ``shape``.

    Args:
        key: a PRNG key.
        shape: the result's axes.
        lower: a scalar or a NamedArray over some of ``shape``'s axes (aligned by name).
        upper: the same, for the upper bound.
        dtype: a float dtype.

    Returns:
        A NamedArray over ``shape``.

    Raises:
        ValueError: a bound has an axis that ``shape`` lacks, or with another size.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> x = nx.random.truncated_normal(jax.random.key(0), {"batch": 4}, -1.0, 1.0)
        >>> bool((abs(x.array) < 1).all())
        True
    """
    axes = _axes("truncated_normal", shape)
    lo = _param("truncated_normal", "lower", lower, axes)
    hi = _param("truncated_normal", "upper", upper, axes)
    return _new(jrandom.truncated_normal(_check_key("truncated_normal", key), lo, hi, _shape(axes), dtype), axes)


def categorical(key: Any, logits: NamedArray, axis: AxisSelector, shape: AxisSpec | Axis | None = None) -> NamedArray:
    """Sample category indices along ``axis`` from unnormalised log-probabilities.

    Args:
        key: a PRNG key.
        logits: a NamedArray; ``softmax(logits, axis)`` gives the probabilities.
        axis: the category axis; it is removed from the result.
        shape: axes of the result. ``logits``' other axes are always kept; axes of ``shape`` that
            ``logits`` lacks add independent draws. The result lists ``shape``'s axes first, then
            the rest of ``logits``' (default: ``logits``' axes without ``axis``).

    Returns:
        An integer NamedArray of indices into ``axis``.

    Raises:
        AxisNotFoundError: ``axis`` is not an axis of ``logits``.
        ValueError: ``axis`` is in ``shape``, or an axis has two sizes.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> logits = nx.named(jnp.array([[0.0, -1e9], [-1e9, 0.0]]), ("batch", "cls"))
        >>> nx.random.categorical(jax.random.key(0), logits, "cls", {"sample": 3}).array
        Array([[0, 1],
               [0, 1],
               [0, 1]], dtype=int32)
    """
    if not isinstance(logits, NamedArray):
        raise TypeError(f"categorical: `logits` must be a NamedArray, got {type(logits).__name__}")
    cat = logits.axes[axis_index_in(logits.axes, axis, "categorical")]
    rest = tuple(a for a in logits.axes if a.name != cat.name)
    extra = () if shape is None else _axes("categorical", shape)
    if any(a.name == cat.name for a in extra):
        raise ValueError(f"categorical: the category axis {cat} cannot be in `shape` {extra}")
    out = union_of("categorical", [extra, rest])
    arr = broadcast_to(logits, out + (cat,)).array
    return _new(jrandom.categorical(_check_key("categorical", key), arr, axis=-1), out)


def permutation(
    key: Any, x: NamedArray | Axis, axis: AxisSelector | None = None, independent: bool = False
) -> NamedArray:
    """A random permutation: of ``0..n-1`` along an `Axis`, or of a NamedArray along one of its axes.

    Args:
        key: a PRNG key.
        x: an `Axis` (gives a permutation of ``arange`` over it) or a NamedArray.
        axis: the axis of ``x`` to shuffle (needed unless ``x`` has one axis).
        independent: shuffle each slice along ``axis`` independently (as in jax.random.permutation).

    Returns:
        A NamedArray with the axes of ``x``.

    Raises:
        ValueError: ``axis`` is missing for an array of several axes.
        AxisNotFoundError: ``axis`` is not an axis of ``x``.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> p = nx.random.permutation(jax.random.key(0), nx.Axis("batch", 5))
        >>> sorted(p.array.tolist())
        [0, 1, 2, 3, 4]
    """
    key = _check_key("permutation", key)
    if type(x) is Axis:
        if axis is not None and axis_name(axis) != x.name:
            raise ValueError(f"permutation: `axis` {axis!r} given with the Axis {x}")
        return _new(jrandom.permutation(key, x.size), (x,))
    if not isinstance(x, NamedArray):
        raise TypeError(f"permutation: `x` must be an Axis or a NamedArray, got {type(x).__name__}")
    i = _only_axis(x, axis, "permutation")
    return _new(jrandom.permutation(key, x.array, i, independent=independent), x.axes)


def _only_axis(x: NamedArray, axis: AxisSelector | None, op: str) -> int:
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"{op}: `axis` is needed for an array with axes {x.axes}")
        return 0
    return axis_index_in(x.axes, axis, op)


def choice(
    key: Any,
    shape: AxisSpec | Axis,
    a: NamedArray | Axis,
    axis: AxisSelector | None = None,
    replace: bool = True,
    p: NamedArray | None = None,
) -> NamedArray:
    """Random elements of ``a`` along ``axis`` (or random indices of an `Axis`), drawn ``shape`` times.

    Args:
        key: a PRNG key.
        shape: the axes of the draws.
        a: an `Axis` (draw indices ``0..n-1``) or a NamedArray (draw slices along ``axis``).
        axis: the axis of ``a`` to draw along (needed unless ``a`` has one axis).
        replace: draw with replacement.
        p: probabilities, a NamedArray over exactly ``axis`` (default: uniform).

    Returns:
        A NamedArray over ``shape`` followed by ``a``'s other axes.

    Raises:
        ValueError: ``p`` has other axes, ``shape`` repeats one of ``a``'s other axes, or too
            many draws without replacement.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> a = nx.named(jnp.array([[1, 2, 3], [4, 5, 6]]), ("batch", "embed"))
        >>> nx.random.choice(jax.random.key(0), {"draw": 4}, a, "batch").axes
        (Axis('draw', 4), Axis('embed', 3))
    """
    axes = _axes("choice", shape)
    key = _check_key("choice", key)
    if type(a) is Axis:
        along, arr, i, rest = a, a.size, 0, ()
    elif isinstance(a, NamedArray):
        i = _only_axis(a, axis, "choice")
        along, arr, rest = a.axes[i], a.array, a.axes[:i] + a.axes[i + 1 :]
    else:
        raise TypeError(f"choice: `a` must be an Axis or a NamedArray, got {type(a).__name__}")
    out = axes + rest
    check_unique(out, "choice (`shape` and the other axes of `a`)")
    n = 1
    for ax in axes:
        n *= ax.size
    if not replace and n > along.size:
        raise ValueError(f"choice: {n} draws over {axes} without replacement from {along} of size {along.size}")
    p_array = None
    if p is not None:
        if not isinstance(p, NamedArray) or [x.name for x in p.axes] != [along.name]:
            got = p.axes if isinstance(p, NamedArray) else type(p).__name__
            raise ValueError(f"choice: `p` must be a NamedArray over exactly {along}, got {got}")
        if p.axes[0].size != along.size:
            raise ValueError(f"choice: `p` has {p.axes[0]}, but `a` has {along}")
        p_array = p.array
    return _new(jrandom.choice(key, arr, _shape(axes), replace, p_array, i), out)


# ---------------------------------------------------------------------------------------------
# The other distributions: one factory over a table
# ---------------------------------------------------------------------------------------------


def _sampler(name: str, params: tuple[str, ...], example: tuple[str, ...], slow: bool = False):
    jfn = getattr(jrandom, name)

    def f(key, shape, *args, dtype=None, **kwargs):
        args = list(args)
        if len(args) == len(params) + 1 and dtype is None:  # haliax passes dtype positionally too
            dtype = args.pop()
        for pn in params[len(args) :]:
            if pn not in kwargs:
                raise TypeError(f"{name}: missing the parameter `{pn}` (parameters: {params})")
            args.append(kwargs.pop(pn))
        if kwargs or len(args) != len(params):
            raise TypeError(f"{name}: takes the parameters {params} and dtype, got {len(args)} values and {kwargs}")
        axes = _axes(name, shape)
        vals = [_param(name, pn, v, axes) for pn, v in zip(params, args, strict=True)]
        return _new(jfn(_check_key(name, key), *vals, _shape(axes), dtype), axes)

    call = f'nx.random.{name}(jax.random.key(0), {{"batch": 3}}{"".join(", " + e for e in example)})'
    if slow:  # these samplers take seconds to compile: the example only traces them
        call = f"jax.eval_shape(lambda key: {call.replace('jax.random.key(0)', 'key')}, jax.random.key(0))"
    sig = ", ".join(("key", "shape") + params)
    param_doc = ""
    if params:
        param_doc = "".join(f"\n        {p}: a scalar or a NamedArray over some of ``shape``'s axes." for p in params)
    P = inspect.Parameter
    f.__signature__ = inspect.Signature(
        [P(n, P.POSITIONAL_OR_KEYWORD) for n in ("key", "shape") + params]
        + [P("dtype", P.POSITIONAL_OR_KEYWORD, default=None)]
    )
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"""Samples of ``jax.random.{name}`` over the named axes ``shape``.

    Signature: ``{name}({sig}, dtype=None)``.

    Args:
        key: a PRNG key (typed or legacy).
        shape: the result's axes: an `Axis`, a sequence of them or a ``{{name: size}}`` mapping.{param_doc}
        dtype: the result's dtype (default as in jax.random).

    Returns:
        A NamedArray over ``shape``.

    Raises:
        ValueError: duplicate names in ``shape``, or a parameter has an axis that ``shape`` lacks
            or has with another size.
        TypeError: a bare name without a size in ``shape``, or ``key`` is not a key.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> {call}.axes
        (Axis('batch', 3),)
    """
    return f


exponential = _sampler("exponential", (), ())
gumbel = _sampler("gumbel", (), ())
laplace = _sampler("laplace", (), ())
cauchy = _sampler("cauchy", (), ())
logistic = _sampler("logistic", (), ())
rademacher = _sampler("rademacher", (), ())
poisson = _sampler("poisson", ("lam",), ("3.0",), slow=True)
gamma = _sampler("gamma", ("a",), ("2.0",), slow=True)
beta = _sampler("beta", ("a", "b"), ("2.0", "3.0"), slow=True)
t = _sampler("t", ("df",), ("4.0",), slow=True)
pareto = _sampler("pareto", ("b",), ("2.0",))
loggamma = _sampler("loggamma", ("a",), ("2.0",), slow=True)
weibull_min = _sampler("weibull_min", ("scale", "concentration"), ("1.0", "2.0"))
