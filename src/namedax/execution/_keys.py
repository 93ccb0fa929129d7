"""Per-point random keys: with ``key=``, the executors call ``model(state, *args, key=k_i, **kwargs)``
where ``k_i = point_key(key, i)`` for the point's global flat index ``i``.

Why from the flat index: it is the one thing about a point that does not depend on how the sweep is
cut up (``n_vmap``, ``n_pmap``, call sizes, checkpoint resumption, processes), so a stochastic model
gives bit-identical results however it is run. ``jax.random.fold_in`` takes 32 bits of data, so:

- ``i < 2**32``: ``k_i = jax.random.fold_in(key, i)``, exactly;
- ``i >= 2**32``: ``k_i = fold_in(fold_in(key, i >> 32), i & 0xFFFFFFFF)`` (high word, then low).

On device the index is carried as a (high, low) pair of uint32, so this needs no x64 mode. The
second form is only compiled in for spaces of more than 2**32 points. A padding point (past the end
of the sweep) gets the key of the last point, as it gets its state.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import as_int
from ..core._digest import digest

_WORD = 2**32


def point_key(key: Any, index: int) -> jax.Array:
    """The key the executors pass to the model at flat index ``index`` of a sweep run with ``key=key``.

    ``jax.random.fold_in(key, index)`` for ``index < 2**32``; beyond,
    ``fold_in(fold_in(key, index >> 32), index & 0xFFFFFFFF)``.

    Args:
        key: a typed key (``jax.random.key``) or a legacy uint32 key (``jax.random.PRNGKey``).
        index: the point's flat index, ``0 <= index < 2**63``.

    Returns:
        A key of the same kind as ``key``.

    Examples:
        >>> import jax
        >>> from namedax.execution import point_key
        >>> key = jax.random.key(0)
        >>> bool((jax.random.key_data(point_key(key, 7)) == jax.random.key_data(jax.random.fold_in(key, 7))).all())
        True
    """
    index = as_int(index, "point_key: `index` must be an int")
    if not 0 <= index < 2**63:
        raise ValueError(f"point_key: `index` must be in [0, 2**63), got {index}")
    key = check_key("point_key", key)
    if index < _WORD:
        return jax.random.fold_in(key, index)
    return jax.random.fold_in(jax.random.fold_in(key, index >> 32), index & (_WORD - 1))


def check_key(op: str, key: Any) -> Any:
    """``key`` if it is one typed key or one legacy uint32 key (of the default implementation), else a
    clear error; None passes."""
    if key is None:
        return None
    if isinstance(key, jax.Array | np.ndarray) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{op}: `key` must be a single key, got a key array of shape {key.shape}; every point "
                             "gets its own key folded from it")
        return key
    raw = jax.random.key_data(jax.random.key(0)).shape
    if isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32 and key.shape == raw:
        return jnp.asarray(key)  # a legacy key: the model then gets legacy keys
    shape = getattr(key, "shape", None)
    dtype = getattr(key, "dtype", type(key).__name__)
    raise TypeError(f"{op}: `key` must be a jax random key (jax.random.key(seed), or a legacy uint32 key of shape "
                    f"{raw} from jax.random.PRNGKey) or None, got {dtype}{list(shape) if shape is not None else ''}: "
                    f"{key!r}")


def check_accepts_key(op: str, model: Any) -> None:
    """A clear error now if ``model`` cannot take the keyword argument ``key`` (when its signature says)."""
    try:
        sig = inspect.signature(model)
    except (TypeError, ValueError):  # no signature to read: the call itself will tell
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    p = params.get("key")
    if p is not None and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
        return
    name = getattr(model, "__qualname__", type(model).__name__)
    raise TypeError(f"{op}: `key` is given, so the model is called as model(state, *args, key=<the point's key>, "
                    f"**kwargs), but the model {name}{sig} takes no keyword argument `key`; add a `key` parameter "
                    "(or pass no key)")


def fingerprint(key: Any) -> list | None:
    """What a checkpoint manifest records of the key (another key is another sweep)."""
    if key is None:
        return None
    kind = "typed" if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else "legacy"
    return [kind, str(jax.random.key_impl(key)) if kind == "typed" else "", digest(key)]


def encode(index: int) -> np.ndarray:
    """A flat index as the (high, low) uint32 pair the device side reads."""
    return np.array([index >> 32, index & (_WORD - 1)], np.uint32)


def keys_at(key: Any, first: Any, offset: Any, size: int, last: int, wide: bool) -> Any:
    """On device: the keys of points ``first + offset + [0, size)`` (``first`` an `encode`\\ d pair,
    ``offset + size < 2**31``), indices past ``last`` clamped to it; ``wide`` when ``last >= 2**32``."""
    k = jnp.asarray(offset).astype(jnp.uint32) + jnp.arange(size, dtype=jnp.uint32)
    lo = first[1] + k
    hi = first[0] + (lo < first[1]).astype(jnp.uint32)  # the carry into the high word
    lh, ll = np.uint32(last >> 32), np.uint32(last & (_WORD - 1))
    past = (hi > lh) | ((hi == lh) & (lo > ll))
    hi, lo = jnp.where(past, lh, hi), jnp.where(past, ll, lo)
    low = jax.vmap(lambda d: jax.random.fold_in(key, d))(lo)
    if not wide:
        return low
    high = jax.vmap(lambda h, d: jax.random.fold_in(jax.random.fold_in(key, h), d))(hi, lo)
    return jax.vmap(lambda c, a, b: jnp.where(c, a, b))(hi == 0, low, high)
