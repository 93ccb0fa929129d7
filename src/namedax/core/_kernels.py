"""Per-signature plans and kernels: why eager namedax ops can be as fast as raw jax.numpy.

A named op reduces, for a given signature (the axes of its operands and its static options), to a
fixed positional computation: a transpose, some inserted dimensions, a jax.numpy call. namedax
builds that computation once per signature (its *plan*: the kernel and the result's axes, validated
when built, so a cached plan is a valid one) and runs the kernel

- jitted when eager, so a transpose plus an op costs one dispatch (a few microseconds) instead of
  one dispatch per primitive;
- plain when JAX is tracing (jit, grad, vmap, scan), so traced code has exactly the jaxpr of the
  hand-written positional version.

Plans and kernels live in one least-recently-used cache of `cache_size` entries (default
`DEFAULT_CACHE_SIZE`); a program that meets many signatures (say a sum over 10 000 different sizes)
keeps at most that many plans and jitted kernels alive. `namedax.clear_caches` empties it. A hit
costs one dict lookup.

    >>> import namedax as nx
    >>> from namedax.core import _kernels
    >>> _kernels.set_cache_size(2)
    >>> for n in range(1, 6):
    ...     _ = nx.sum(nx.ones({"t": n}), "t")
    >>> _kernels.cache_len() <= 2
    True
    >>> _kernels.set_cache_size(_kernels.DEFAULT_CACHE_SIZE)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax

try:  # private, but the cheapest way to ask "is anything tracing right now?"
    from jax._src.core import trace_ctx as _trace_ctx

    _is_eager = _trace_ctx.is_top_level
except Exception:  # pragma: no cover - a future jax without it: always take the traced path

    def _is_eager() -> bool:
        return False


is_eager = _is_eager
"""True when no JAX transformation is tracing (then kernels run jitted)."""

DEFAULT_CACHE_SIZE = 4096
"""Plans and kernels kept by default: far more than a model's signatures, a few MB at most."""

# Two generations approximate least-recently-used at the cost of one dict lookup per hit (an
# OrderedDict's move_to_end would hash the key, tuples of Axis, a second time): a hit in the old
# generation moves the entry to the new one; when the new one holds half the limit, it becomes the
# old one and what was not used meanwhile is dropped.
_CACHE: dict[Hashable, Any] = {}
_OLD: dict[Hashable, Any] = {}
_max_size = DEFAULT_CACHE_SIZE


def cached(key: Hashable, build: Callable[..., Any], *args: Any) -> Any:
    """The value cached under ``key``, built by ``build(*args)`` on a miss; at most `cache_size`
    entries are kept, the least recently used dropped first. An unhashable key raises TypeError,
    as a dict does; an error in ``build`` caches nothing."""
    v = _CACHE.get(key)
    if v is None:
        v = _miss(key, build, args)
    return v


lookup: Callable[[Hashable], Any] = _CACHE.get
"""``lookup(key)``: the value cached under ``key`` in the current generation, or None. For the
hottest paths (eager `namedax.dot`): ``lookup(key) or cached(key, build, ...)`` is `cached` with one
Python call fewer per hit. (``_CACHE`` is only ever cleared in place, so this bound method stays valid.)"""


def _miss(key: Hashable, build: Callable[..., Any], args: tuple) -> Any:
    v = _OLD.pop(key, None)
    if v is None:
        v = build(*args)
    if len(_CACHE) >= max(_max_size // 2, 1):
        _OLD.clear()
        _OLD.update(_CACHE)
        _CACHE.clear()
    _CACHE[key] = v
    return v


def cache_len() -> int:
    """How many plans and kernels are cached now."""
    return len(_CACHE) + len(_OLD)


def hashable(key: Any) -> bool:
    """Whether ``key`` can be a cache key (to tell an unhashable key from a TypeError of a build)."""
    try:
        hash(key)
    except TypeError:
        return False
    return True


def jit_pair(fn: Callable) -> Callable:
    """``fn`` run jitted when eager, plain when traced (not cached: for plans that hold it)."""
    jitted = jax.jit(fn)

    def run(*args):
        return jitted(*args) if _is_eager() else fn(*args)

    run.plain, run.jitted = fn, jitted  # type: ignore[attr-defined]  # for tests and introspection
    return run


def _build_kernel(make: Callable[..., Callable], args: tuple) -> Callable:
    return jit_pair(make(*args))


def kernel(key: Hashable, make: Callable[..., Callable], *args: Any) -> Callable:
    """The kernel for ``key``: the function ``make(*args)``, run jitted when eager and plain when
    traced. Built once per key (the key must determine the function)."""
    return cached(("kernel", key), _build_kernel, make, args)


def cache_size() -> int:
    """How many plans and kernels the cache keeps."""
    return _max_size


def set_cache_size(n: int) -> None:
    """Keep at most ``n`` plans and kernels (dropping the least recently used now if needed)."""
    global _max_size
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_cache_size: n must be a positive int, got {n!r}")
    _max_size = n
    if cache_len() > n:
        clear_caches()


def clear_caches() -> None:
    """Drop every cached plan and jitted kernel of namedax's eager ops (as `equinox.clear_caches`).

    Results do not change: the next call of each op plans and compiles again. Useful to free memory
    after a program met very many shapes, or in tests. The cache is bounded anyway (`cache_size`,
    4096 entries by default, least recently used dropped first).

    Examples:
        >>> import namedax as nx
        >>> x = nx.ones({"t": 3})
        >>> float(nx.sum(x, "t"))
        3.0
        >>> nx.clear_caches()
        >>> float(nx.sum(x, "t"))  # planned and compiled again
        3.0
    """
    _CACHE.clear()
    _OLD.clear()
