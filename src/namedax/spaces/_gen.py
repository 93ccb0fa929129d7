"""Point generators: the device side of the spaces.

Every space owns a small generator PyTree that turns flat point indices into the values of its free
leaves, on device, from nothing but the index. Three facts shape the code:

- Indices are 64-bit safe without ``jax_enable_x64``. The host encodes an index exactly (Python or
  numpy int64 arithmetic) as a short uint32 vector: grid coordinates (`GridGen`), a (high, low) pair
  of 32-bit words (`UniformGen`), or a plain index (`DataGen`). On device a block
  ``[start, start + size)`` is the encoded start advanced by ``offset + arange(size)`` with carries
  (mixed-radix addition for a grid), so no device arithmetic ever needs more than 32 bits, and
  indices past the end clamp to the last point (padding is always a real point).
- Values are bitwise reproducible in any compilation context. XLA on CPU contracts ``a + b * c`` into
  an FMA and rewrites ``x / constant`` as ``x * (1 / constant)``, so the same formula can round
  differently inside another jit (an executor's) than on its own. Values are written as an addition
  of a quotient whose divisor XLA cannot fold (``d + 0 * x``): IEEE-exact on every path, including
  the numpy path used for single grid points.
- Bounds and keys are generator leaves, not constants: one compiled function serves every space of
  the same structure, whatever its bounds and key. A grid's sizes are static: they are the space's
  axes, already part of its PyTree structure (grids with n=3 and n=4 compile apart anyway), and as
  constants the mixed-radix stepping divides by multiply-and-shift (x86 has no vector integer
  division: about 2 ns a point instead of 15, a third of a cheap model's cost).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_U32 = np.uint32
MAX_BLOCK = 2**31 - 1  # offsets and block sizes stay below 2**31: uint32 carries never overflow


def _opaque(d, like):
    """``d`` broadcast against ``like`` in a way XLA cannot constant-fold (``0 * x`` is not
    simplified for floats), so a division by it stays a true IEEE division."""
    return d + 0 * like


def grid_formula(xp, c, last, low, span, high, den, ratio, log: bool, cdt):
    """Value of grid coordinate ``c`` (uint32): ``low + (high - low) * c / (n - 1)``, exactly
    ``high`` at the last point; geometric when ``log``. ``xp`` is numpy or jax.numpy."""
    j = c.astype(cdt)
    if log:
        v = low * _opaque(ratio, j) ** (j / _opaque(den, j))
    else:
        v = low + (span * j) / _opaque(den, j)
    return xp.where(c == last, high, v)


class GridGen:
    """Grid coordinates per point; one axis per free Parameter.

    Static: the sizes ``ns`` (and so each axis's last coordinate). Leaf: ``fp`` (rows: low, high,
    high - low, max(n - 1, 1), high / low), one column per axis, in one compute dtype.
    """

    def __init__(self, ns, lows, highs, logs, cdt, out_dts, shapes):
        ns = tuple(int(n) for n in ns)
        lo = np.asarray(lows, cdt)
        hi = np.asarray(highs, cdt)
        ratio = np.where(np.asarray(logs, bool), hi / np.where(lo > 0, lo, 1), 1).astype(cdt)
        self.fp = np.stack([lo, hi, hi - lo, np.asarray([max(n - 1, 1) for n in ns], cdt), ratio])
        self.static = (tuple(logs), np.dtype(cdt), tuple(out_dts), tuple(shapes), ns)

    def _leaves(self):
        return (self.fp,)

    @property
    def ns(self) -> tuple[int, ...]:
        return self.static[4]

    @property
    def d(self) -> int:
        return len(self.static[4])

    @property
    def lasts(self) -> np.ndarray:
        """Each axis's last coordinate, or 2**32-1 (never reached) when n == 1 (a single point is ``low``)."""
        return np.asarray([n - 1 if n > 1 else 2**32 - 1 for n in self.ns], dtype=_U32)

    def token_len(self) -> int:
        return self.d

    # host side
    def encode(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64).reshape(-1)
        coords = np.unravel_index(idx, self.ns)
        return np.stack(coords).astype(_U32).reshape(self.d, idx.size)

    def start(self, i: int) -> np.ndarray:
        out = []
        for n in reversed(self.ns):
            i, c = divmod(i, n)
            out.append(c)
        return np.asarray(out[::-1], dtype=_U32)

    def axis_values(self, xp, j: int, c):
        """The values of axis ``j`` at coordinates ``c``, in the parameter's dtype. With ``xp=numpy``
        this is the host path, bitwise equal to the device path for linear axes (``log`` axes use
        ``**``, whose numpy and XLA implementations differ: compute those on device)."""
        logs, cdt, out_dts, _, _ = self.static
        lo, hi, span, den, ratio = (self.fp[r, j] for r in range(5))
        return xp.asarray(grid_formula(xp, c, self.lasts[j], lo, span, hi, den, ratio, logs[j], cdt)).astype(out_dts[j])

    # device side
    def advance(self, tok, k):
        """Coordinates ``tok`` advanced by ``k`` points (mixed-radix addition with constant divisors);
        past the last point they stay at the last point."""
        carry = k
        cs: list[Any] = [None] * self.d
        for j in reversed(range(self.d)):
            n = _U32(self.ns[j])
            t = tok[j] + carry  # < 2**32: tok[j] < n < 2**31 and carry < 2**31 (see module docstring)
            cs[j], carry = t % n, t // n
        past = carry > 0
        return jnp.stack([jnp.where(past, _U32(self.ns[j] - 1), cs[j]) for j in range(self.d)])

    def values(self, enc):
        shapes = self.static[3]
        return tuple(_shaped(self.axis_values(jnp, j, enc[j]), shapes[j]) for j in range(self.d))


class UniformGen:
    """Point ``i`` has key ``fold_in(fold_in(key, i >> 32), i & 0xFFFFFFFF)`` and one uniform draw
    per free Parameter from it: ``low + (high - low) * u``."""

    def __init__(self, key, n: int, lows, highs, cdt, out_dts, shapes):
        self.key = key
        self.last = np.asarray([(n - 1) >> 32, (n - 1) & 0xFFFFFFFF], dtype=_U32)
        lo = np.asarray(lows, cdt)
        hi = np.asarray(highs, cdt)
        self.fp = np.stack([lo, hi, hi - lo])  # rows: low, high, high - low
        self.static = (np.dtype(cdt), tuple(out_dts), tuple(shapes))

    def _leaves(self):
        return (self.key, self.last, self.fp)

    def token_len(self) -> int:
        return 2

    def encode(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        return np.stack([(idx >> 32).astype(_U32), (idx & 0xFFFFFFFF).astype(_U32)]).reshape(2, -1)

    def start(self, i: int) -> np.ndarray:
        return np.asarray([i >> 32, i & 0xFFFFFFFF], dtype=_U32)

    def advance(self, tok, k):
        hi, lo = tok[0], tok[1]
        lo2 = lo + k  # wraps modulo 2**32
        hi2 = hi + (lo2 < lo).astype(jnp.uint32)
        past = (hi2 > self.last[0]) | ((hi2 == self.last[0]) & (lo2 > self.last[1]))
        return jnp.stack([jnp.where(past, self.last[0], hi2), jnp.where(past, self.last[1], lo2)])

    def values(self, enc):
        cdt, out_dts, shapes = self.static
        n_free = len(out_dts)
        keys = jax.vmap(lambda h, lo: jax.random.fold_in(jax.random.fold_in(self.key, h), lo))(enc[0], enc[1])
        u = jax.vmap(lambda k: jax.random.uniform(k, (n_free,), cdt))(keys)
        v = jnp.minimum(self.fp[0] + (self.fp[2] * u) / _opaque(1, u), self.fp[1])
        return tuple(_shaped(v[:, p].astype(out_dts[p]), shapes[p]) for p in range(n_free))


class DataGen:
    """Rows of stored arrays: point ``i`` is row ``i`` of every free leaf."""

    def __init__(self, arrays, n: int):
        self.arrays = tuple(arrays)
        self.last = np.asarray([n - 1], dtype=_U32)
        self.static = ()

    def _leaves(self):
        return (self.arrays, self.last)

    def token_len(self) -> int:
        return 1

    def encode(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx, np.int64).astype(_U32).reshape(1, -1)

    def start(self, i: int) -> np.ndarray:
        return np.asarray([i], dtype=_U32)

    def advance(self, tok, k):
        return jnp.minimum(tok[0] + k, self.last[0])[None]

    def values(self, enc):
        idx = enc[0].astype(jnp.int32)
        return tuple(a[idx] for a in self.arrays)


def _shaped(v, shape):
    """Stacked scalars ``(size,)`` broadcast to ``(size, *shape)``."""
    if not shape:
        return v
    return jnp.broadcast_to(v.reshape(v.shape + (1,) * len(shape)), v.shape + tuple(shape))


def _register(cls, names):
    def flatten(g):
        return g._leaves(), g.static

    def unflatten(static, children):
        g = object.__new__(cls)
        for name, c in zip(names, children, strict=True):
            setattr(g, name, c)
        g.static = static
        return g

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)


_register(GridGen, ("fp",))
_register(UniformGen, ("key", "last", "fp"))
_register(DataGen, ("arrays", "last"))


@functools.partial(jax.jit, static_argnames="size")
def block_values(gen, tok, offset, size: int):
    """The free values of points ``tok + offset + [0, size)`` (clamped to the last point), stacked."""
    k = jnp.asarray(offset).astype(jnp.uint32) + jnp.arange(size, dtype=jnp.uint32)
    return gen.values(gen.advance(jnp.asarray(tok).astype(jnp.uint32), k))


@jax.jit
def values_at(gen, enc):
    """The free values of the points encoded in ``enc`` (shape ``(L, k)``), stacked."""
    return gen.values(enc)


@functools.partial(jax.jit, static_argnames="j")
def grid_axis_values(gen, c, j: int):
    """Axis ``j`` of a grid at coordinates ``c`` (uint32), on device."""
    return gen.axis_values(jnp, j, c)


@jax.jit
def value_at(gen, enc):
    """The free values of one encoded point (``enc`` of shape ``(L, 1)``), unstacked."""
    return tuple(v[0] for v in gen.values(enc))
