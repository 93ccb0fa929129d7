"""Named-axis annotations for typed model code: ``f32["batch embed"]``, ``Named["batch ..."]``.

jaxtyping binds dimensions by position (``Float[Array, "batch embed"]``) and never sees axis names.
These annotations check a `NamedArray` by its names instead:

- **names as a set**: ``f32["batch embed"]`` accepts axes ``(batch, embed)`` and ``(embed, batch)``;
- **exact unless** ``...``: without it the array has exactly the listed axes, with it
  (``f32["batch ..."]``) it may have others;
- **fixed sizes** where wanted: ``f32["batch embed=64"]``, or ``f32[Batch, Embed]`` from `Axis` objects;
- **dtype**: `f32`, `f16`, `bf16`, `f64`, `i32`, `i64`, `u8`, `bool_`, any float `Float`, any integer
  `Int` (signed or unsigned), any dtype `Named`;
- **one size per name per call**: under ``jaxtyping.jaxtyped(typechecker=beartype.beartype)`` (or
  jaxtyping's import hook or pytest plugin) a name keeps one size across the arguments and the
  return value of a call, and agrees with jaxtyping's own dimensions of the same name
  (``Float[Array, "batch"]``). Sizes are static, so this also checks at trace time under `jax.jit`.

A failed check raises whatever the type checker raises (``jaxtyping.TypeCheckError`` under
``jaxtyped``); the reason, naming the axis, is the chained beartype violation.

How it works: each annotation is a subclass of `NamedArray`, made once per (dtype, spec) on
subscription, whose metaclass implements ``__instancecheck__`` (and beartype's
``__instancecheck_str__`` for the message). Sizes are shared through jaxtyping's per-call memo of
dimension sizes, a private API of jaxtyping 0.3.x: pyproject pins ``jaxtyping>=0.3.11,<0.4`` and
``tests/test_typing.py`` fails loudly if it moves. Static type checkers see every annotation as
`NamedArray`.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> from namedax.typing import f32, Named
    >>> x = nx.zeros({"embed": 3, "batch": 2})
    >>> isinstance(x, f32["batch embed"]), isinstance(x, f32["batch"]), isinstance(x, f32["batch ..."])
    (True, False, True)
    >>> isinstance(x.astype(jnp.int32), f32["batch embed"]), isinstance(x, Named["batch embed=3"])
    (False, True)
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import jax.numpy as jnp
import numpy as np

from .core._axis import Axis
from .core._named_array import NamedArray

try:  # private API of jaxtyping 0.3.x; tests/test_typing.py::test_jaxtyping_private_api checks it
    from jaxtyping._storage import get_shape_memo as _get_shape_memo
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "namedax.typing shares axis sizes through jaxtyping's per-call shape memo, a private API "
        "that this jaxtyping no longer has: install jaxtyping>=0.3.11,<0.4"
    ) from e

__all__ = ["f32", "f16", "bf16", "f64", "i32", "i64", "u8", "bool_", "Float", "Int", "Named"]


class _Kind:
    """A dtype rule: a name (``f32``), what it accepts in words, and the test (cached per dtype)."""

    __slots__ = ("name", "what", "test", "seen")

    def __init__(self, name: str, what: str, test: Callable[[np.dtype], bool] | None):
        self.name, self.what, self.test = name, what, test
        self.seen: dict[Any, bool] = {}

    def accepts(self, dtype: Any) -> bool:
        try:
            return self.seen[dtype]
        except KeyError:
            ok = self.seen[dtype] = self.test is None or bool(self.test(np.dtype(dtype)))
            return ok


def _exactly(dtype) -> Callable[[np.dtype], bool]:
    target = np.dtype(dtype)
    return lambda d: d == target


def _subdtype(category) -> Callable[[np.dtype], bool]:
    return lambda d: bool(jnp.issubdtype(d, category))


class _NamedMeta(type):
    """Metaclass of the annotations: ``isinstance`` checks names, sizes and dtype."""

    _kind: _Kind
    _spec: Any  # the subscript as written, or None for the bare kind
    _axes: tuple[tuple[str, int | None], ...]
    _names: frozenset[str]
    _open: bool

    def __instancecheck__(cls, obj: Any) -> bool:
        return _violation(cls, obj, bind=True) == ""

    def __instancecheck_str__(cls, obj: Any) -> str:
        # beartype's hook for the violation message; called after a failed isinstance, so it must
        # not bind sizes.
        return _violation(cls, obj, bind=False) or f"{_describe(obj)} matches {cls.__name__}"

    def __getitem__(cls, spec: Any) -> _NamedMeta:
        if cls._spec is not None:
            raise TypeError(f"{cls.__name__} is already subscripted")
        return _subscript(cls._kind.name, spec)

    def __call__(cls, *args, **kwargs):
        raise TypeError(f"{cls.__name__} is an annotation, not a constructor: build arrays with "
                        "namedax.named(array, axes)")


def _describe(obj: Any) -> str:
    if isinstance(obj, NamedArray):
        return f"NamedArray {obj.shape} of dtype {getattr(obj.array, 'dtype', None)}"
    return type(obj).__name__


def _violation(cls: _NamedMeta, obj: Any, bind: bool) -> str:
    """Why ``obj`` does not match ``cls`` ("" if it does); binds new sizes in the memo if ``bind``."""
    if not isinstance(obj, NamedArray):
        return f"expected a NamedArray for {cls.__name__}, got {type(obj).__name__}"
    kind = cls._kind
    if kind.test is not None:
        dtype = getattr(obj.array, "dtype", None)
        if dtype is None or not kind.accepts(dtype):
            return f"{cls.__name__} expects {kind.what}, got {_describe(obj)}"
    have = obj.shape
    missing = [name for name, _ in cls._axes if name not in have]
    if missing:
        return f"{cls.__name__}: missing axis {_names(missing)}; the array has axes {have}"
    if not cls._open:
        extra = [name for name in have if name not in cls._names]
        if extra:
            return (f"{cls.__name__}: unexpected axis {_names(extra)}; the array has axes {have} "
                    "(add '...' to the annotation to allow other axes)")
    memo = _get_shape_memo()[0]  # name -> size for the current jaxtyped call (a fresh dict outside one)
    new = []
    for name, size in cls._axes:
        actual = have[name]
        if size is not None and actual != size:
            return f"{cls.__name__}: axis {name!r} has size {actual}, but the annotation requires {size}"
        if name in memo:
            if memo[name] != actual:
                return (f"{cls.__name__}: axis {name!r} has size {actual}, but {name!r} has size {memo[name]} "
                        "elsewhere in this call")
        else:
            new.append((name, actual))
    if bind:
        memo.update(new)
    return ""


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _parse(kind: str, spec: Any) -> tuple[tuple[tuple[str, int | None], ...], bool, str]:
    """``(axes as (name, size or None), has '...', label)`` from a str, an Axis, ``...`` or a tuple."""
    items = spec if type(spec) is tuple else (spec,)
    tokens: list[Any] = []
    for item in items:
        tokens.extend(item.split() if isinstance(item, str) else (item,))
    axes: list[tuple[str, int | None]] = []
    labels: list[str] = []
    is_open = False
    for tok in tokens:
        if tok is Ellipsis or tok == "...":
            if is_open:
                raise ValueError(f"{kind}[{spec!r}]: '...' appears more than once")
            is_open = True
            labels.append("...")
            continue
        if type(tok) is Axis:
            name, size = tok.name, tok.size
        elif isinstance(tok, str):
            name, eq, size_str = tok.partition("=")
            size = None
            if eq:
                if not (size_str.isascii() and size_str.isdigit()):
                    raise ValueError(f"{kind}[{spec!r}]: the size in {tok!r} must be a non-negative int, "
                                     "as in 'embed=64'")
                size = int(size_str)
            if not name or name[0] in "*#?":
                raise ValueError(f"{kind}[{spec!r}]: {tok!r} is not an axis name (axes match by name, so "
                                 "jaxtyping's '*', '#', '?' modifiers do not apply; use '...' for other axes)")
        else:
            raise TypeError(f"{kind}[...]: expected axis names in a str, Axis objects or '...', "
                            f"got {type(tok).__name__}: {tok!r}")
        if any(name == n for n, _ in axes):
            raise ValueError(f"{kind}[{spec!r}]: axis {name!r} appears more than once")
        axes.append((name, size))
        labels.append(name if size is None else f"{name}={size}")
    return tuple(axes), is_open, " ".join(labels)


_KINDS: dict[str, _NamedMeta] = {}
_CACHE: dict[tuple[str, Any], _NamedMeta] = {}


def _subscript(kind: str, spec: Any) -> _NamedMeta:
    key = (kind, spec)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    except TypeError:
        raise TypeError(f"{kind}[...]: expected axis names in a str, Axis objects or '...', got {spec!r}") from None
    base = _KINDS[kind]
    axes, is_open, label = _parse(kind, spec)
    cls = _NamedMeta(f"{kind}[{label!r}]", (base,), {
        "__slots__": (), "__module__": __name__, "__doc__": f"A {base._kind.what} NamedArray with axes {label!r}.",
        "_spec": spec, "_axes": axes, "_names": frozenset(n for n, _ in axes), "_open": is_open,
    })
    _CACHE[key] = cls
    return cls


def _unpickle(kind: str, spec: Any) -> _NamedMeta:
    return _KINDS[kind] if spec is None else _subscript(kind, spec)


copyreg.pickle(_NamedMeta, lambda cls: (_unpickle, (cls._kind.name, cls._spec)))


def _make_kind(name: str, what: str, test: Callable[[np.dtype], bool] | None, example: str,
               counter: str) -> _NamedMeta:
    kind = _Kind(name, what, test)
    doc = f"""Annotation for a `NamedArray` of {what}: ``{name}["batch embed"]``, ``{name}["batch ..."]``.

    Axis names match as a set; without ``...`` the array has exactly those axes; ``name=size`` fixes a
    size. Under ``jaxtyping.jaxtyped(typechecker=beartype.beartype)`` each name keeps one size
    across a call's arguments and return value. The bare ``{name}`` accepts any axes.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import namedax as nx
        >>> from namedax.typing import {name}
        >>> x = nx.NamedArray(np.zeros((2, 3), jnp.{example}), {{"batch": 2, "embed": 3}})
        >>> isinstance(x, {name}["embed batch"]), isinstance(x, {name}["batch"]), isinstance(x, {name})
        (True, False, True)
        >>> isinstance(nx.NamedArray(np.zeros(2, jnp.{counter}), {{"batch": 2}}), {name}["batch"])
        {"True" if test is None else "False"}
    """
    cls = _NamedMeta(name, (NamedArray,), {
        "__slots__": (), "__module__": __name__, "__doc__": doc,
        "_kind": kind, "_spec": None, "_axes": (), "_names": frozenset(), "_open": True,
    })
    _KINDS[name] = cls
    return cls


# Static type checkers see every annotation as NamedArray; `NamedArray[...]` type-checks once
# NamedArray declares `__class_getitem__`.
if TYPE_CHECKING:
    f32: TypeAlias = NamedArray
    f16: TypeAlias = NamedArray
    bf16: TypeAlias = NamedArray
    f64: TypeAlias = NamedArray
    i32: TypeAlias = NamedArray
    i64: TypeAlias = NamedArray
    u8: TypeAlias = NamedArray
    bool_: TypeAlias = NamedArray
    Float: TypeAlias = NamedArray
    Int: TypeAlias = NamedArray
    Named: TypeAlias = NamedArray
else:
    f32 = _make_kind("f32", "dtype float32", _exactly(np.float32), "float32", "int32")
    f16 = _make_kind("f16", "dtype float16", _exactly(np.float16), "float16", "float32")
    bf16 = _make_kind("bf16", "dtype bfloat16", _exactly(jnp.bfloat16), "bfloat16", "float16")
    f64 = _make_kind("f64", "dtype float64", _exactly(np.float64), "float64", "float32")
    i32 = _make_kind("i32", "dtype int32", _exactly(np.int32), "int32", "uint8")
    i64 = _make_kind("i64", "dtype int64", _exactly(np.int64), "int64", "int32")
    u8 = _make_kind("u8", "dtype uint8", _exactly(np.uint8), "uint8", "int32")
    bool_ = _make_kind("bool_", "dtype bool", _exactly(np.bool_), "bool_", "int32")
    Float = _make_kind("Float", "any floating dtype", _subdtype(jnp.floating), "bfloat16", "int32")
    Int = _make_kind("Int", "any integer dtype (signed or unsigned)", _subdtype(jnp.integer), "uint8", "float32")
    Named = _make_kind("Named", "any dtype", None, "int32", "float32")
