"""Parameter: a leaf of a state PyTree that knows its name, its bounds, and whether it is swept.

A `Parameter` is a registered PyTree whose only leaf is its value; the name, the bounds and the
``free`` flag are static. Inside a model it behaves like its value: every arithmetic and comparison
operator (on both sides, also between Parameters), ``float(p)``, ``p.shape``, indexing, methods of
the value (``p.sum()``), and jax.numpy functions through ``__jax_array__`` (``jnp.sin(p)``).

Like `NamedArray`, it is a plain registered class rather than an ``equinox.Module``: spaces build one
per point, and JAX rebuilds them from their leaves (tracers, batched values, ``None``) without any
validation. Only the public constructor checks its arguments.

The public name is `namedax.spaces.Parameter`.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from ..core._named_array import NamedArray, _is_named

_object_new = object.__new__


class Parameter:
    """A named value in a state PyTree; free Parameters are the dimensions a space sweeps.

    Args:
        name: the parameter's name; a `GridSpace` names its axis after it.
        value: the value (anything `jax.numpy.asarray` accepts, or a `NamedArray`); stored as a jax
            array.
        low: the lower bound, a finite real number, or None.
        high: the upper bound, a finite real number, or None.
        free: whether spaces sweep this parameter (`GridSpace` and `UniformSpace` need both bounds).
        scale: ``"linear"`` (the default) or ``"log"``: a `GridSpace` spaces a log parameter's points
            geometrically from ``low`` to ``high``, a `UniformSpace` draws it log-uniformly (its
            logarithm is uniform). Needs ``low > 0``.

    Attributes:
        name: the name (static).
        value: the value, the PyTree's only leaf.
        low: the lower bound as a Python float, or None (static).
        high: the upper bound as a Python float, or None (static).
        free: whether the parameter is swept (static).
        scale: ``"linear"`` or ``"log"`` (static).

    Raises:
        TypeError: ``name`` is not a str, ``free`` is not a bool, a bound is not a real number (a
            string is refused), or ``value`` is None or cannot be converted to an array.
        ValueError: a bound is not finite, ``low > high``, ``scale`` is not ``"linear"`` or ``"log"``,
            ``scale="log"`` with ``low <= 0``, or a fixed Parameter's (concrete) value lies outside
            its bounds. A free Parameter's value is not checked against the bounds: it is a
            placeholder that spaces replace (``Parameter("a", 0.0, low=1.0, high=2.0, free=True)``
            is fine).

    In arithmetic, comparisons and jax.numpy calls a Parameter stands for its value, and the results
    are plain arrays. ``jax.lax`` functions do not call ``__jax_array__``: pass ``p.value`` to them.

    Examples:
        >>> import jax.numpy as jnp
        >>> from namedax.spaces import Parameter
        >>> a = Parameter("a", 2.0, low=0.0, high=5.0, free=True)
        >>> b = Parameter("b", 3.0)
        >>> float(a * b), float(1 - a), bool(a < b)
        (6.0, -1.0, True)
        >>> float(jnp.sqrt(a * 8))
        4.0
        >>> a.name, a.low, a.high, a.free, a.shape
        ('a', 0.0, 5.0, True, ())
        >>> Parameter("k", 1.0, low=0.01, high=100.0, free=True, scale="log").scale
        'log'
    """

    __slots__ = ("name", "value", "low", "high", "free", "scale")
    __hash__ = None  # type: ignore[assignment]  # == is elementwise, as for arrays
    __array_priority__ = 1000  # numpy scalars and arrays defer to our reflected operators

    name: str
    value: Any
    low: float | None
    high: float | None
    free: bool
    scale: Literal["linear", "log"]

    def __init__(self, name: str, value: Any, low: float | None = None, high: float | None = None,
                 free: bool = False, scale: Literal["linear", "log"] = "linear"):
        if not isinstance(name, str):
            raise TypeError(f"Parameter: `name` must be a str, got {type(name).__name__}: {name!r}")
        low = _bound(low, name, "low")
        high = _bound(high, name, "high")
        if low is not None and high is not None and low > high:
            raise ValueError(f"Parameter {name!r}: `low` must be <= `high`, got low={low}, high={high}")
        if not isinstance(free, bool | np.bool_):
            raise TypeError(f"Parameter {name!r}: `free` must be a bool, got {type(free).__name__}: {free!r}")
        if scale not in ("linear", "log"):
            raise ValueError(f"Parameter {name!r}: `scale` must be 'linear' or 'log', got {scale!r}")
        if scale == "log" and low is not None and low <= 0:
            raise ValueError(f"Parameter {name!r}: scale='log' needs `low` > 0, got low={low}")
        if value is None:
            raise TypeError(f"Parameter {name!r}: `value` is required (a number or an array), got None")
        if not (isinstance(value, jax.Array) or _is_named(value)):
            try:
                value = jnp.asarray(value)
            except (TypeError, ValueError) as e:
                raise TypeError(f"Parameter {name!r}: `value` must be array-like, got {value!r} ({e})") from None
        if not free and (low is not None or high is not None):
            _check_within(name, value, low, high)
        _init(self, name, value, low, high, bool(free), scale)

    def __setattr__(self, key, value):
        raise AttributeError("Parameter is immutable; use p.replace(value=...)")

    def __delattr__(self, key):
        raise AttributeError("Parameter is immutable")

    def replace(self, **changes: Any) -> Parameter:
        """A copy with some of ``name``, ``value``, ``low``, ``high``, ``free``, ``scale`` changed (validated
        like the constructor).

        Examples:
            >>> from namedax.spaces import Parameter
            >>> Parameter("a", 1.0).replace(value=2.0, free=True).free
            True
        """
        unknown = set(changes) - set(Parameter.__slots__)
        if unknown:
            raise TypeError(f"Parameter.replace: unknown fields {sorted(unknown)}; "
                            f"the fields are {Parameter.__slots__}")
        fields = {k: getattr(self, k) for k in Parameter.__slots__}
        fields.update(changes)
        return Parameter(**fields)

    # ---- the value's face ----
    @property
    def shape(self):
        """The value's shape."""
        return self.value.shape

    @property
    def dtype(self):
        """The value's dtype."""
        return self.value.dtype

    @property
    def ndim(self) -> int:
        """The value's number of dimensions."""
        return self.value.ndim

    @property
    def size(self) -> int:
        """The value's number of elements."""
        return self.value.size

    def __getattr__(self, attr):
        # Methods and attributes of the value (p.sum(), p.T, p.astype(...)); never dunders, which
        # copy/pickle probe, and never our own slots (unset while JAX rebuilds us).
        if attr.startswith("__") or attr in Parameter.__slots__:
            raise AttributeError(attr)
        return getattr(self.value, attr)

    def __jax_array__(self):
        v = self.value
        return v.array if _is_named(v) else jnp.asarray(v)

    def __array__(self, dtype=None, copy=None):
        v = self.value
        out = np.asarray(v.array if _is_named(v) else v, dtype=dtype)
        return out.copy() if copy else out

    def __getitem__(self, idx):
        return self.value[_unwrap(idx)]

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        return iter(self.value)

    def __bool__(self):
        return bool(self.value)

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __complex__(self):
        return complex(self.value)

    def __index__(self):
        return operator.index(self.value)

    def __round__(self, ndigits=None):
        return round(self.value, ndigits) if ndigits is not None else round(self.value)

    def __format__(self, spec):
        return format(self.value, spec)

    def __divmod__(self, other):
        return divmod(self.value, _unwrap(other))

    def __rdivmod__(self, other):
        return divmod(_unwrap(other), self.value)

    def __repr__(self):
        parts = [repr(self.name), _value_repr(self.value)]
        if self.low is not None:
            parts.append(f"low={self.low!r}")
        if self.high is not None:
            parts.append(f"high={self.high!r}")
        if self.free:
            parts.append("free=True")
        if self.scale != "linear":
            parts.append(f"scale={self.scale!r}")
        return f"Parameter({', '.join(parts)})"

    def __reduce__(self):
        return (_rebuild, (self.name, self.value, self.low, self.high, self.free, self.scale))


def _unwrap(x):
    return x.value if isinstance(x, Parameter) else x


def _binary(op, reflected: bool):
    if reflected:

        def method(self, other):
            return op(_unwrap(other), self.value)
    else:

        def method(self, other):
            return op(self.value, _unwrap(other))

    return method


def _unary(op):
    def method(self):
        return op(self.value)

    return method


_BINARY = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "matmul": operator.matmul,
    "and": operator.and_, "or": operator.or_, "xor": operator.xor, "lshift": operator.lshift,
    "rshift": operator.rshift,
}  # fmt: skip
_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
            "gt": operator.gt, "ge": operator.ge}  # fmt: skip
_UNARY = {"neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "invert": operator.invert}

for _name, _op in _BINARY.items():
    setattr(Parameter, f"__{_name}__", _binary(_op, False))
    setattr(Parameter, f"__r{_name}__", _binary(_op, True))
for _name, _op in _COMPARE.items():
    setattr(Parameter, f"__{_name}__", _binary(_op, False))
for _name, _op in _UNARY.items():
    setattr(Parameter, f"__{_name}__", _unary(_op))


def _check_within(name: str, value: Any, low: float | None, high: float | None) -> None:
    """A fixed Parameter's value must respect its bounds (traced values are not checked)."""
    data = value.array if _is_named(value) else value
    if isinstance(data, jax.core.Tracer):
        return
    v = np.asarray(data)
    if v.size == 0 or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
        return
    lo_bad = low is not None and bool(np.any(v < low))
    hi_bad = high is not None and bool(np.any(v > high))
    if lo_bad or hi_bad:
        shown = v.item() if v.size == 1 else f"{v.dtype}{list(v.shape)} from {v.min()} to {v.max()}"
        raise ValueError(f"Parameter {name!r}: the value {shown} lies outside its bounds [{low}, {high}]; a fixed "
                         "Parameter's value must respect them (pass free=True to sweep it, or widen the bounds)")


def _bound(x: Any, name: str, which: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool | np.bool_ | str | bytes):  # float("1") would take a string
        raise TypeError(f"Parameter {name!r}: `{which}` must be a real number or None, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"Parameter {name!r}: `{which}` must be a real number or None, got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"Parameter {name!r}: `{which}` must be finite, got {v}")
    return v


_slot_set = {k: Parameter.__dict__[k].__set__ for k in Parameter.__slots__}


def _init(p: Parameter, name, value, low, high, free, scale="linear") -> None:
    _slot_set["name"](p, name)
    _slot_set["value"](p, value)
    _slot_set["low"](p, low)
    _slot_set["high"](p, high)
    _slot_set["free"](p, free)
    _slot_set["scale"](p, scale)


def _rebuild(name, value, low, high, free, scale="linear") -> Parameter:
    """Build without checks (JAX unflattening, spaces, pickling)."""
    p = _object_new(Parameter)
    _init(p, name, value, low, high, free, scale)
    return p


def with_value(p: Parameter, value: Any) -> Parameter:
    """``p`` carrying another value, unchecked."""
    return _rebuild(p.name, value, p.low, p.high, p.free, p.scale)


def _aux(p: Parameter) -> tuple:
    """The static data; ``scale`` only when not linear, so linear Parameters keep the PyTree
    structure (and so the space fingerprints) they had before log scales existed."""
    aux = (p.name, p.low, p.high, p.free)
    return aux if p.scale == "linear" else aux + (p.scale,)


def _value_repr(v) -> str:
    if isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer):
        a = np.asarray(v)
        return repr(a.item()) if a.ndim == 0 else f"{np.array2string(a, separator=', ', threshold=8)}"
    if isinstance(v, NamedArray):
        return f"NamedArray({v.shape})"
    return repr(v)


def _flatten_with_keys(p: Parameter):
    return ((jax.tree_util.GetAttrKey("value"), p.value),), _aux(p)


def _flatten(p: Parameter):
    return (p.value,), _aux(p)


def _unflatten(aux, children):
    p = _object_new(Parameter)
    _init(p, aux[0], children[0], *aux[1:])
    return p


jax.tree_util.register_pytree_with_keys(Parameter, _flatten_with_keys, _unflatten, _flatten)
