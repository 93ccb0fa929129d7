"""Digests and value keys: how namedax identifies a value across processes and runs.

Two jobs, one rule each:

- A *digest* names a value by its content, for checkpoint manifests and space fingerprints, so a
  sweep resumed in another process (or after an edit) is recognised or refused. Arrays are encoded
  one way (dtype string, shape, C-order bytes; typed PRNG keys by their key data); every other
  object by what it holds, walked by `Fingerprint`: PyTree nodes and their static data, dataclass /
  attrs fields, ``__dict__`` and ``__slots__``, and for functions their code, closures and the
  user-module values they read. A value that cannot be read (a lock, a generator, an opaque C
  object) raises `Unfingerprintable` naming where it sits: a digest never stands for a type alone,
  because two different values of one type would then resume each other's checkpoints.
  `code_digest` is the same walk over the callables of a sweep.
- A `ValueKey` makes static data (a space's fixed Python leaves, a model's non-array arguments) a
  key for PyTree aux data and compiled-program caches: equal by value when hashable, else by
  identity; floats by repr, because ``0.0 == -0.0`` but they compile to different programs.

It depends on nothing in namedax: a pure utility over PyTrees, arrays and objects, used by spaces
(fingerprints, static leaves), execution (manifests, compiled-program keys) and transforms.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import re
import sys
import sysconfig
import types
import warnings
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
    """An incremental sha256 over values: arrays by content, every other object by what it holds
    (see `Fingerprint`)."""

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

    def value(self, x: Any, path: str = "value") -> Digest:
        """``x`` by its content (`Fingerprint`); raises `Unfingerprintable` naming ``path``."""
        Fingerprint(self).walk(x, path)
        return self

    def tree(self, tree: Any, path: str = "value") -> Digest:
        """A PyTree (or any object) by its structure and content: the same as `value`."""
        return self.value(tree, path)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def digest(*trees: Any) -> str:
    """The hex digest of values by their content (see `Fingerprint`)."""
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


class Unfingerprintable(TypeError):
    """A value whose content namedax cannot read (an opaque C object, a generator, a lock, a
    structure too large or too deep): it cannot be told apart from a changed one.

    Attributes:
        path: where it sits in the value digested (``args[0].lock``).
        kind: its type's name.
    """

    def __init__(self, path: str, obj: Any, why: str):
        self.path, self.kind, self.why = path, type(obj).__qualname__, why
        super().__init__(f"{path} (a {self.kind}) {why}")


_MAX_NODES = 1_000_000  # objects visited in one digest: bounds the work on huge Python structures
_MAX_DEPTH = 150  # nesting (Python's recursion limit is 1000 frames; a level takes a few)
_LIBRARIES = frozenset({"namedax", "jax", "jaxlib", "numpy", "equinox", "builtins", "ml_dtypes", "optax"})
_SITE = tuple(p for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")} if p)


@functools.lru_cache(maxsize=4096)
def _is_library(module: str | None) -> bool:
    """Installed code (the standard library, site-packages, namedax and its dependencies): identified
    by its names, its globals not followed. Everything else (``__main__``, a notebook, the user's own
    modules) is user code, whose module-level values are part of a model."""
    if not module:
        return True
    top = module.partition(".")[0]
    if top in _LIBRARIES or top in sys.stdlib_module_names:
        return True
    file = getattr(sys.modules.get(top), "__file__", None)
    return file is not None and os.path.abspath(file).startswith(_SITE)


def _code(c: types.CodeType) -> list:
    """A code object's bytecode, names and constants (nested code objects flattened in)."""
    out: list = [c.co_code, c.co_names]
    for k in c.co_consts:
        out += _code(k) if isinstance(k, types.CodeType) else [k]
    return out


def _names(c: types.CodeType) -> set[str]:
    out = set(c.co_names)
    for k in c.co_consts:
        if isinstance(k, types.CodeType):
            out |= _names(k)
    return out


class Fingerprint:
    """The walk behind every digest: a value by its content, whatever it is, or `Unfingerprintable`.

    - numbers, strings, bytes, None: their repr; arrays: `Digest.array`; types and modules: their names.
    - PyTrees, one level at a time: node type, aux data (static fields of equinox modules, dict keys)
      and children, so equinox modules, NamedArrays, dicts, lists and namedtuples are covered.
    - dataclass and attrs fields, ``__dict__`` and ``__slots__`` of Python objects; sets sorted.
    - functions: name, and for user code (not installed libraries) their bytecode, defaults, closure
      cells, the module-level values they name and the attributes they read of user modules
      (``config.SCALE``), followed recursively; installed functions by name, defaults and closure
      (``optax.adam(1e-3)`` is a closure over its rate). Bound methods add their instance,
      ``functools.partial`` its arguments, wrappers (``jax.jit``) what they wrap.
    - objects of installed classes (not dataclasses or attrs) by their repr when it is free of
      memory addresses (a library's repr describes its object; its ``__dict__`` may hold run-time
      caches, as a ``logging.Logger`` does), else by their fields.
    - anything else is readable only through a repr free of memory addresses; an object whose repr
      shows its address (a lock, a generator, a C object of default repr) raises `Unfingerprintable`,
      as do structures past `_MAX_NODES` objects or `_MAX_DEPTH` levels: never the type alone.
      Module-level values a function names are the exception: there an unreadable one (a logger, a
      thread pool) stands as its type, since it is a resource of the code rather than an input.
    Shared and cyclic references are digested once and then referred to by their order of visit.
    """

    def __init__(self, d: Digest):
        self.d = d
        self.seen: dict[int, int] = {}
        self.keep: list = []  # objects whose ids are in ``seen`` stay alive, so no id is reused
        self.nodes = 0

    def walk(self, x: Any, path: str) -> None:
        try:
            self._visit(x, path, 0)
        except RecursionError:
            raise Unfingerprintable(path, x, f"is nested deeper than Python can walk (limit {_MAX_DEPTH} levels)"
                                    ) from None

    def _lenient(self, x: Any, path: str, depth: int) -> None:
        """``x`` into a digest of its own, or its type if it is unreadable (module-level values)."""
        outer, self.d = self.d, Digest()
        try:
            self._visit(x, path, depth)
            h = self.d.hexdigest()
        except Unfingerprintable:
            h = f"<{type(x).__module__}.{type(x).__qualname__}>"
        finally:
            self.d = outer
        self.d.text(h)

    def _visit(self, x: Any, path: str, depth: int) -> None:
        d = self.d
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise Unfingerprintable(path, x, f"is part of a structure of more than {_MAX_NODES:,} objects")
        if depth > _MAX_DEPTH:
            raise Unfingerprintable(path, x, f"is nested deeper than {_MAX_DEPTH} levels")
        if x is None or type(x) in (bool, int, float, complex, str, bytes):
            d.text(f"{type(x).__name__}:{x!r}")
            return
        if is_array(x):
            try:
                d.array(x)
            except Exception:  # not addressable here (another process's shards): its shape
                d.text(f"{type(x).__name__}{np.shape(x)}{getattr(x, 'dtype', '')}")
            return
        if isinstance(x, type | types.ModuleType):
            d.text(f"{getattr(x, '__module__', '')}.{getattr(x, '__qualname__', x.__name__)}")
            return
        ref = self.seen.get(id(x))
        if ref is not None:
            d.text(f"<ref {ref}>")
            return
        self.seen[id(x)] = len(self.keep)
        self.keep.append(x)
        try:
            self._content(x, path, depth + 1)
        except Unfingerprintable:
            raise
        except RecursionError:
            raise
        except Exception as e:  # a property or __eq__ that raises while being read
            raise Unfingerprintable(path, x, f"cannot be read ({type(e).__name__}: {e})") from None

    def _content(self, x: Any, path: str, depth: int) -> None:
        d, visit, kind = self.d, self._visit, type(x)
        if isinstance(x, enum.Enum):
            d.text(f"{kind.__module__}.{kind.__qualname__}.{x.name}")
            return
        if kind in (list, tuple):  # directly, so self-containing lists are caught as cycles
            d.text(f"{kind.__name__}{len(x)}")
            for k, v in enumerate(x):
                visit(v, f"{path}[{k}]", depth)
            return
        if kind is dict:
            d.text(f"dict{len(x)}")
            try:
                keys = sorted(x)
            except TypeError:
                keys = sorted(x, key=stable_repr)
            for k in keys:
                visit(k, f"{path}<key {k!r}>", depth)
                visit(x[k], f"{path}[{k!r}]", depth)
            return
        if isinstance(x, set | frozenset):
            d.text(f"{kind.__name__}{len(x)}")
            for h in sorted(digest_of(v, f"{path}{{}}") for v in x):
                d.raw(h.encode())
            return
        with warnings.catch_warnings():  # jax warns of generators as leaves: they are refused below
            warnings.simplefilter("ignore", DeprecationWarning)
            children, treedef = jax.tree_util.tree_flatten(x, is_leaf=lambda y: y is not x)
        if treedef.num_nodes > 1 or not (len(children) == 1 and children[0] is x):  # a PyTree node
            node, aux = treedef.node_data() or (kind, None)
            d.text(f"node {node.__module__}.{node.__qualname__}")
            visit(aux, f"{path}<static>", depth)
            for k, (p, c) in enumerate(zip(_child_paths(x, treedef), children, strict=True)):
                visit(c, f"{path}{p}" if p else f"{path}[{k}]", depth)
            return
        if isinstance(x, types.FunctionType):
            self._function(x, path, depth)
            return
        if isinstance(x, types.MethodType):
            visit(x.__func__, path, depth)
            visit(x.__self__, f"{path}.__self__", depth)
            return
        if isinstance(x, types.BuiltinFunctionType | types.BuiltinMethodType):
            d.text(f"{getattr(x, '__module__', None)}.{x.__qualname__}")
            owner = getattr(x, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):  # a bound C method
                visit(owner, f"{path}.__self__", depth)
            return
        if isinstance(x, functools.partial):
            d.text("partial")
            visit((x.func, x.args, x.keywords), path, depth)
            return
        wrapped = getattr(x, "__wrapped__", None)  # jax.jit, custom_jvp, functools.wraps
        if wrapped is not None and wrapped is not x and not isinstance(x, type):
            d.text(f"wraps {kind.__module__}.{kind.__qualname__}")
            visit(wrapped, f"{path}.__wrapped__", depth)
            return
        if _is_library(kind.__module__) and not (dataclasses.is_dataclass(x) or hasattr(kind, "__attrs_attrs__")):
            r = repr(x)  # an installed class's own repr says what it is; its __dict__ may hold run-time caches
            if not _ADDRESS.search(r):  # (a Logger's level cache), which would make every run another sweep
                d.text(f"{kind.__module__}.{kind.__qualname__}:{r}")
                return
        fields = _fields(x)
        if fields is not None:
            d.text(f"object {kind.__module__}.{kind.__qualname__}")
            for name in fields:
                d.text(name)
                visit(getattr(x, name, _UNSET), f"{path}.{name}", depth)
            if callable(x) and isinstance(getattr(kind, "__call__", None), types.FunctionType):
                visit(kind.__call__, f"{path}.__call__", depth)
            if isinstance(x, list | tuple | dict):  # a subclass of a builtin type: its value too
                visit(list(x.items()) if isinstance(x, dict) else list(x), f"{path}[:]", depth)
            for base in (int, float, complex, str, bytes):
                if isinstance(x, base):
                    d.text(base.__repr__(x))
            return
        r = repr(x)
        if _ADDRESS.search(r):
            raise Unfingerprintable(path, x, "has no content namedax can read (no fields, no __dict__, and a repr "
                                    "showing only its memory address)")
        d.text(f"{kind.__module__}.{kind.__qualname__}:{r}")

    def _function(self, f: types.FunctionType, path: str, depth: int) -> None:
        d, visit = self.d, self._visit
        d.text(f"{f.__module__}.{f.__qualname__}")
        user = not _is_library(f.__module__)
        if user:
            for part in _code(f.__code__):
                d.raw(part) if isinstance(part, bytes) else d.text(part)
        visit(f.__defaults__, f"{path}.__defaults__", depth)
        visit(f.__kwdefaults__, f"{path}.__kwdefaults__", depth)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                d.text("<empty cell>")
                continue
            visit(value, f"{path}<closure {name}>", depth)
        if not user:
            return
        names, g = sorted(_names(f.__code__)), f.__globals__
        for name in names:
            if name not in g:
                continue
            v = g[name]
            d.text(f"global {name}")
            self._lenient(v, f"{path}<global {name}>", depth)
            if isinstance(v, types.ModuleType) and not _is_library(v.__name__):  # config.SCALE
                for attr in names:
                    if attr in vars(v):
                        d.text(f"{name}.{attr}")
                        self._lenient(vars(v)[attr], f"{path}<{name}.{attr}>", depth)


_UNSET = object.__new__(type("_Unset", (), {"__repr__": lambda self: "<unset>"}))


def _fields(x: Any) -> list[str] | None:
    """The readable fields of a Python object (dataclass, attrs, ``__dict__``, ``__slots__``), or
    None if it has none to read."""
    kind = type(x)
    if dataclasses.is_dataclass(x):
        return [f.name for f in dataclasses.fields(x)]
    attrs = getattr(kind, "__attrs_attrs__", None)
    if attrs is not None:
        return [a.name for a in attrs]
    names: list[str] = []
    for cls in kind.__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names += [s for s in ((slots,) if isinstance(slots, str) else slots) if s not in ("__dict__", "__weakref__")]
    own = getattr(x, "__dict__", None)
    if isinstance(own, dict):
        names += sorted(k for k in own if isinstance(k, str))
    elif not names:
        return None
    return names


def _child_paths(x: Any, treedef: Any) -> list[str]:
    """Readable paths of a PyTree node's children (``['a']``, ``[0]``, ``.weight``) for error messages."""
    try:
        flat, _ = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
        return [jax.tree_util.keystr(p) for p, _ in flat]
    except Exception:
        return [""] * treedef.num_leaves


def digest_of(x: Any, path: str = "value") -> str:
    """The hex digest of one value by its content; raises `Unfingerprintable` naming ``path``."""
    return Digest().value(x, path).hexdigest()


def code_digest(callables: list, strict: bool = True) -> str:
    """A digest of the code behind callables, beyond their names: a function's bytecode and
    constants, its defaults, the values its closure captures, and the functions and values of user
    modules that it names (followed recursively, attributes of user modules it reads included). So
    a closure over another constant, a function of the same name with another body (a notebook cell
    run again after an edit) or a changed constant of a module it reads is another model. Bound
    methods add their instance, callable objects their class's ``__call__`` and their fields.
    ``strict=False`` lets an unreadable value stand as its type (used with an explicit checkpoint
    key, which names what the digest cannot see)."""
    d = Digest()
    fp = Fingerprint(d)
    for k, c in enumerate(callables):
        if strict:
            fp.walk(c, f"callable {k}")
        else:
            fp._lenient(c, f"callable {k}", 0)
    return d.hexdigest()
