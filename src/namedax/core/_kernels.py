"""Per-signature kernels: why eager namedax ops can be as fast as raw jax.numpy.

A named op reduces, for a given signature (the axes of its operands and its static options), to a
fixed positional computation: a transpose, some inserted dimensions, a jax.numpy call. namedax
builds that computation once per signature and keeps two forms of it:

- the plain function, used whenever JAX is tracing (jit, grad, vmap, scan), so traced code has
  exactly the jaxpr of the hand-written positional version;
- its `jax.jit`, used eagerly, so a transpose plus an op costs one dispatch (a few microseconds)
  instead of one dispatch per primitive.
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


_KERNELS: dict[Hashable, tuple[Callable, Callable]] = {}


def kernel(key: Hashable, make: Callable[[], Callable]) -> tuple[Callable, Callable]:
    """The (plain, jitted) pair for ``key``, built by ``make()`` on first use."""
    k = _KERNELS.get(key)
    if k is None:
        fn = make()
        k = _KERNELS[key] = (fn, jax.jit(fn))
    return k


def run(k: tuple[Callable, Callable], *args: Any) -> Any:
    """Call a kernel: jitted when eager, plain when tracing."""
    if _is_eager():
        return k[1](*args)
    return k[0](*args)


is_eager = _is_eager
"""True when no JAX transformation is tracing (then kernels run jitted)."""
