"""Digests and value keys: how namedax identifies a value across processes and runs.

Two jobs, one rule each:

- A *digest* names a value by its content, for checkpoint manifests and space fingerprints, so a
  sweep resumed in another process (or after an edit) is recognised or refused. Arrays are encoded
  one way (dtype string, shape, C-order bytes; typed PRNG keys by their key data); every other object
  by `stable_repr` (its repr without memory addresses, callables by module and qualified name, sets
  sorted); a PyTree by its structure and then its leaves. `code_digest` extends this to the code
  behind a callable.
- A `ValueKey` makes static data (a space's fixed Python leaves, a model's non-array arguments) a
  key for PyTree aux data and compiled-program caches: equal by value when hashable, else by
  identity; floats by repr, because ``0.0 == -0.0`` but they compile to different programs.

This module sits in ``spaces/`` because spaces are the lowest layer that needs it (a space's
fingerprint and its static leaves); ``execution/`` builds on ``spaces/`` and imports it from here.
It depends on nothing in namedax: a pure utility over PyTrees, arrays and objects.
"""

from __future__ import annotations

import hashlib
import re
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_repr(x: Any) -> str:
    """``repr(x)`` that is the same in every process: no memory addresses, callables by module and
    qualified name, sets in sorted order (their iteration order changes with string hashing)."""
    if isinstance(x, set | frozenset):
        return f"{type(x).__name__}({sorted(stable_repr(v) for v in x)})"
    if type(x) is tuple:
        return f"({', '.join(stable_repr(v) for v in x)}{',' if len(x) == 1 else ''})"
    if callable(x) and hasattr(x, "__qualname__"):
        return f"{getattr(x, '__module__', '?')}.{x.__qualname__}"
    return _ADDRESS.sub("", repr(x))


def is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic | jax.Array)


class Digest:
    """An incremental sha256 over values: arrays by content, other objects by `stable_repr`."""

    def __init__(self):
        self._h = hashlib.sha256()

    def raw(self, b: bytes) -> Digest:
        self._h.update(b)
        return self

    def text(self, *xs: Any) -> Digest:
        """Each of ``xs`` by `stable_repr`, separated."""
        for x in xs:
            self._h.update(stable_repr(x).encode() + b"\0")
        return self

    def array(self, a: Any) -> Digest:
        """The one encoding of arrays: dtype, shape, bytes (a typed key by its key data)."""
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            self.text(str(a.dtype))
            a = jax.random.key_data(a)
        a = np.asarray(a)
        self._h.update(f"{a.dtype.str}{a.shape}".encode())
        self._h.update(np.ascontiguousarray(a).tobytes())
        return self

    def value(self, x: Any) -> Digest:
        return self.array(x) if is_array(x) else self.text(x)

    def tree(self, tree: Any) -> Digest:
        """A PyTree: its structure, then every leaf by `value`."""
        leaves, treedef = jax.tree.flatten(tree)
        self.text(treedef)
        for leaf in leaves:
            self.value(leaf)
        return self

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def digest(*trees: Any) -> str:
    """The hex digest of PyTrees (see `Digest.tree`)."""
    d = Digest()
    for t in trees:
        d.tree(t)
    return d.hexdigest()


class ValueKey:
    """Static data as a hashable key: equal by value when hashable (same type; floats and complex
    numbers by repr, so ``0.0`` and ``-0.0`` differ and a NaN equals itself), else by identity."""

    __slots__ = ("obj", "_key", "_h")

    def __init__(self, obj: Any):
        self.obj = obj
        key = (type(obj), repr(obj) if isinstance(obj, float | complex) else obj)
        try:
            self._h = hash(key)
            self._key = key
        except TypeError:
            self._h = id(obj)
            self._key = None

    def __hash__(self):
        return self._h

    def __eq__(self, other):
        if type(other) is not ValueKey:
            return NotImplemented
        if self.obj is other.obj:
            return True
        if self._key is None or other._key is None:
            return False
        try:
            return bool(self._key == other._key)
        except Exception:
            return False


def code_digest(callables: list) -> str:
    """A digest of the code behind callables, beyond their names: a function's bytecode and
    constants, its defaults, the values its closure captures, and the functions and values of its
    own module that it names (followed recursively). So a closure over another constant, or a
    function of the same name with another body (a notebook cell run again after an edit), is
    another model. Bound methods add their instance's attributes; other callable objects their
    class's ``__call__``."""
    d = Digest()
    seen: set[int] = set()
    home: list[dict] = []  # the first function's module: user code, whose globals are followed

    def code(c: types.CodeType) -> None:
        d.raw(c.co_code).text(c.co_names)
        for k in c.co_consts:
            code(k) if isinstance(k, types.CodeType) else d.text(k)

    def names(c: types.CodeType) -> set[str]:
        out = set(c.co_names)
        for k in c.co_consts:
            if isinstance(k, types.CodeType):
                out |= names(k)
        return out

    def value(x, depth: int) -> None:
        if depth > 8 or id(x) in seen:
            return
        try:
            visit(x, depth)
        except Exception:  # an object that will not be inspected: its type stands for it
            d.text(f"<{type(x).__qualname__}>")

    def visit(x, depth: int) -> None:
        if isinstance(x, types.FunctionType):
            seen.add(id(x))
            d.text(x)
            code(x.__code__)
            value(x.__defaults__, depth + 1)
            value(x.__kwdefaults__, depth + 1)
            for cell in x.__closure__ or ():
                try:
                    value(cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell
                    d.text("<empty cell>")
            if not home:
                home.append(x.__globals__)
            if x.__globals__ is home[0]:
                for name in sorted(names(x.__code__)):
                    if name in home[0]:
                        value(home[0][name], depth + 1)
            return
        if isinstance(x, types.ModuleType | type):
            d.text(getattr(x, "__qualname__", x.__name__))
            return
        func = getattr(x, "__func__", None)  # bound methods (equinox's too)
        if isinstance(func, types.FunctionType):
            value(func, depth + 1)
            if isinstance(x, types.MethodType):
                value(x.__self__, depth + 1)
            return
        wrapped = getattr(x, "__wrapped__", None)  # jax.jit, equinox.filter_jit, functools.wraps
        if wrapped is not None and wrapped is not x:
            value(wrapped, depth + 1)
        try:
            leaves = jax.tree.leaves(x)
        except Exception:  # e.g. a dict whose keys cannot be sorted
            leaves = [x]
        if len(leaves) != 1 or leaves[0] is not x:  # a container: its leaves
            for leaf in leaves:
                value(leaf, depth + 1)
            return
        if callable(x):  # a callable object: its class's code, and its attributes unless a PyTree
            seen.add(id(x))
            call = getattr(type(x), "__call__", None)
            if isinstance(call, types.FunctionType):
                value(call, depth + 1)
            for attr in ("func", "args", "keywords"):  # functools.partial
                if hasattr(x, attr):
                    value(getattr(x, attr), depth + 1)
            if hasattr(x, "__dict__"):
                value(dict(vars(x)), depth + 1)
            return
        if is_array(x):
            try:
                d.array(x)
            except Exception:  # not addressable here (another process's shards)
                d.text(f"{type(x).__name__}{np.shape(x)}")
            return
        if hasattr(x, "__dict__") and not isinstance(x, str | bytes | int | float | complex):
            seen.add(id(x))
            d.text(type(x).__qualname__)
            value(dict(vars(x)), depth + 1)
            return
        d.text(x)

    for c in callables:
        value(c, 0)
    return d.hexdigest()
