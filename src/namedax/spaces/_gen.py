"""Point generators: the device side of the spaces.

Every space owns a small generator PyTree that turns flat point indices into the values of its free
leaves, on device, from nothing but the index. Three facts shape the code:

- Indices are 64-bit safe without ``jax_enable_x64``. The host encodes an index exactly (Python or
  numpy int64 arithmetic) as a short uint32 vector: grid coordinates (`GridGen`), a (high, low) pair
  of 32-bit words (`UniformGen`), a plain index (`DataGen`, `SampleGen`, `TrialGen`), or the
  tokens of combined spaces one after the other (`ProductGen`). On device a block
  ``[start, start + size)`` is the encoded start advanced by ``offset + arange(size)`` with carries
  (mixed-radix addition for a grid), so no device arithmetic ever needs more than 32 bits, and
  indices past the end clamp to the last point (padding is always a real point). Every generator
  can also ``wrap``: advance modulo its N and return the carry, which is how a product carries from
  one space into the next.
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
import math
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
    def wrap(self, tok, k):
        """Coordinates ``tok`` advanced by ``k`` points (mixed-radix addition with constant divisors),
        wrapping around, and the carry out (how many times they wrapped)."""
        carry = k
        cs: list[Any] = [None] * self.d
        for j in reversed(range(self.d)):
            n = _U32(self.ns[j])
            t = tok[j] + carry  # < 2**32: tok[j] < n < 2**31 and carry < 2**31 (see module docstring)
            cs[j], carry = t % n, t // n
        return cs, carry

    def advance(self, tok, k):
        """`wrap`, but past the last point the coordinates stay at the last point."""
        cs, carry = self.wrap(tok, k)
        past = carry > 0
        return jnp.stack([jnp.where(past, _U32(self.ns[j] - 1), cs[j]) for j in range(self.d)])

    def values(self, enc):
        shapes = self.static[3]
        return tuple(_shaped(self.axis_values(jnp, j, enc[j]), shapes[j]) for j in range(self.d))


class UniformGen:
    """Point ``i`` has key ``fold_in(fold_in(key, i >> 32), i & 0xFFFFFFFF)`` and one uniform draw
    per free Parameter from it: ``low + (high - low) * u``, or ``low * (high / low) ** u`` for a
    log-scale Parameter."""

    def __init__(self, key, n: int, lows, highs, cdt, out_dts, shapes, logs=()):
        self.key = key
        self.last = np.asarray([(n - 1) >> 32, (n - 1) & 0xFFFFFFFF], dtype=_U32)
        lo = np.asarray(lows, cdt)
        hi = np.asarray(highs, cdt)
        self.fp = np.stack([lo, hi, hi - lo])  # rows: low, high, high - low
        # logs only when some are set: linear spaces keep the structure (and fingerprint) they had
        self.static = (np.dtype(cdt), tuple(out_dts), tuple(shapes)) + ((tuple(logs),) if any(logs) else ())

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

    def wrap(self, tok, k):
        """The index ``tok`` (two words) plus ``k`` modulo N, and the carry ``(index + k) // N``, in
        32-bit arithmetic: for N >= 2**31 the carry is 0 or 1 (k < 2**31 <= N), a two-word
        comparison and subtraction; for smaller N the sum fits one word and divides directly."""
        u32 = jnp.uint32
        hi, lo = tok[0], tok[1]
        lo2 = lo + k
        hi2 = hi + (lo2 < lo).astype(u32)
        n_lo = self.last[1] + u32(1)
        n_hi = self.last[0] + (n_lo == 0).astype(u32)
        big = (n_hi > 0) | (n_lo >= u32(2**31))
        ge = (hi2 > n_hi) | ((hi2 == n_hi) & (lo2 >= n_lo))
        b_lo = jnp.where(ge, lo2 - n_lo, lo2)
        b_hi = jnp.where(ge, hi2 - n_hi - (lo2 < n_lo).astype(u32), hi2)
        n_small = jnp.where(big, u32(1), n_lo)
        new_hi = jnp.where(big, b_hi, u32(0))
        new_lo = jnp.where(big, b_lo, lo2 % n_small)
        return [new_hi, new_lo], jnp.where(big, ge.astype(u32), lo2 // n_small)

    def values(self, enc):
        cdt, out_dts, shapes = self.static[:3]
        n_free = len(out_dts)
        keys = jax.vmap(lambda h, lo: jax.random.fold_in(jax.random.fold_in(self.key, h), lo))(enc[0], enc[1])
        u = jax.vmap(lambda k: jax.random.uniform(k, (n_free,), cdt))(keys)
        v = jnp.minimum(self.fp[0] + (self.fp[2] * u) / _opaque(1, u), self.fp[1])
        if len(self.static) > 3:  # log-uniform columns: low * (high / low) ** u, kept inside [low, high]
            vlog = self.fp[0] * (self.fp[1] / _opaque(self.fp[0], u)) ** u
            vlog = jnp.clip(vlog, self.fp[0], self.fp[1])
            v = jnp.where(np.asarray(self.static[3]), vlog, v)
        return tuple(_shaped(v[:, p].astype(out_dts[p]), shapes[p]) for p in range(n_free))


class _OneWord:
    """Generators whose token is the point index itself, one uint32 word (N < 2**31)."""

    def _last(self):
        raise NotImplementedError

    def token_len(self) -> int:
        return 1

    def encode(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx, np.int64).astype(_U32).reshape(1, -1)

    def start(self, i: int) -> np.ndarray:
        return np.asarray([i], dtype=_U32)

    def advance(self, tok, k):
        return jnp.minimum(tok[0] + k, self._last())[None]

    def wrap(self, tok, k):
        n = self._last() + _U32(1)
        t = tok[0] + k  # < 2**32: both < 2**31
        return [t % n], t // n


class DataGen(_OneWord):
    """Rows of stored arrays: point ``i`` is row ``i`` of every free leaf."""

    def __init__(self, arrays, n: int):
        self.arrays = tuple(arrays)
        self.last = np.asarray([n - 1], dtype=_U32)
        self.static = ()

    def _leaves(self):
        return (self.arrays, self.last)

    def _last(self):
        return self.last[0]

    def values(self, enc):
        idx = enc[0].astype(jnp.int32)
        return tuple(a[idx] for a in self.arrays)


class SampleGen(DataGen):
    """Rows of a sample computed on the host (quasi-random points): one column per free Parameter,
    each filled into the Parameter's shape and cast to its dtype."""

    def __init__(self, columns, n: int, out_dts, shapes, key):
        super().__init__(columns, n)
        self.key = key  # the seed, kept for `UniformSpace.key` and the fingerprint
        self.static = (tuple(out_dts), tuple(shapes))

    def _leaves(self):
        return (self.arrays, self.last, self.key)

    def values(self, enc):
        out_dts, shapes = self.static
        idx = enc[0].astype(jnp.int32)
        return tuple(_shaped(a[idx].astype(dt), s) for a, dt, s in zip(self.arrays, out_dts, shapes, strict=True))


class TrialGen(_OneWord):
    """Point ``i`` is ``i`` itself, an int32 scalar (N < 2**31, static: divisions by a constant)."""

    def __init__(self, n: int):
        self.static = (int(n),)

    def _leaves(self):
        return ()

    def _last(self):
        return _U32(self.static[0] - 1)

    def values(self, enc):
        return (enc[0].astype(jnp.int32),)


class ProductGen:
    """The points of several spaces together: their Cartesian product (flat index row-major over
    the spaces, the last fastest), or, ``zipped``, point ``i`` of every space side by side.

    A token is the spaces' tokens one after the other. Every generator can `wrap`: advance its
    token by ``k < 2**31`` modulo its N and report the carry (also < 2**31), so a block of a product
    is mixed-radix addition over the spaces, in 32-bit words, for any N below 2**63. Leaves: the
    spaces themselves (their generators and fixed leaves); static: zipped, sizes, token lengths.
    """

    def __init__(self, spaces, zipped: bool):
        self.spaces = tuple(spaces)
        self.static = (bool(zipped), tuple(s.N for s in spaces), tuple(s._gen.token_len() for s in spaces))

    def _leaves(self):
        return (self.spaces,)

    @property
    def gens(self) -> tuple:
        return tuple(s._gen for s in self.spaces)

    @property
    def n(self) -> int:
        zipped, ns, _ = self.static
        return ns[0] if zipped else math.prod(ns)

    def token_len(self) -> int:
        return sum(self.static[2])

    def _split(self, tok) -> list:
        out, a = [], 0
        for n_tok in self.static[2]:
            out.append(tok[a:a + n_tok])
            a += n_tok
        return out

    def split_index(self, i: int) -> list[int]:
        """The spaces' own indices of flat index ``i`` (Python ints, exact)."""
        zipped, ns, _ = self.static
        if zipped:
            return [i] * len(ns)
        out = []
        for n in reversed(ns):
            i, c = divmod(i, n)
            out.append(c)
        return out[::-1]

    def encode(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64).reshape(-1)
        zipped, ns, _ = self.static
        parts = [idx] * len(ns) if zipped else np.unravel_index(idx, ns)
        return np.concatenate([g.encode(np.asarray(p, np.int64)) for g, p in zip(self.gens, parts, strict=True)])

    def start(self, i: int) -> np.ndarray:
        return np.concatenate([g.start(c) for g, c in zip(self.gens, self.split_index(i), strict=True)])

    def wrap(self, tok, k):
        gens, parts = self.gens, self._split(tok)
        if self.static[0]:  # equal N: every space carries alike
            res = [g.wrap(p, k) for g, p in zip(gens, parts, strict=True)]
            return [w for r in res for w in r[0]], res[0][1]
        outs: list[Any] = [None] * len(gens)
        carry = k
        for j in reversed(range(len(gens))):
            outs[j], carry = gens[j].wrap(parts[j], carry)
        return [w for o in outs for w in o], carry

    def advance(self, tok, k):
        words, carry = self.wrap(tok, k)
        last = self.start(self.n - 1)
        past = carry > 0
        return jnp.stack([jnp.where(past, last[j], w) for j, w in enumerate(words)])

    def values(self, enc):
        return tuple(v for g, p in zip(self.gens, self._split(enc), strict=True) for v in g.values(p))


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
_register(SampleGen, ("arrays", "last", "key"))
_register(TrialGen, ())
_register(ProductGen, ("spaces",))


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
