"""NamedArray: a jax array whose dimensions have names.

A `NamedArray` pairs one array leaf with a static tuple of `Axis`. It is a plain registered PyTree
class (not an `equinox.Module`) because every op builds one: construction costs well under a
microsecond, and rebuilding from the PyTree (as JAX does with tracers, batched values, `None` or
`ShapeDtypeStruct` leaves) never validates.

Operands combine by name, as in xarray: the result's axes are those of the first operand, then the
new ones of the second; a name shared with two sizes is an error; plain scalars broadcast, and a plain
array of nonzero rank is refused rather than matched by position.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    >>> y = nx.named(jnp.array([10.0, 20.0, 30.0]), "embed")
    >>> (x + y).axes
    (Axis('batch', 2), Axis('embed', 3))
    >>> x["batch", 1].array
    Array([3., 4., 5.], dtype=float32)
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _kernels
from ._axis import Axis, AxisSelection, AxisSelector, axis_name, check_unique, to_axes, to_selectors
from ._methods import ArrayMethods

if TYPE_CHECKING:
    from typing import TypeAlias

    from jax.typing import ArrayLike

    from ._indexing import _AtIndexer

    # What operators accept. At run time a plain array must also be 0-d, which a type cannot say.
    _Operand: TypeAlias = "NamedArray | ArrayLike"
    _BinaryMethod: TypeAlias = "Callable[[NamedArray, _Operand], NamedArray]"


class AxisNotFoundError(KeyError, ValueError):
    """An axis was looked up by name and is not there. Both ``KeyError`` and ``ValueError``.

    Examples:
        >>> import namedax as nx
        >>> x = nx.zeros({"batch": 2})
        >>> try:
        ...     x.axis_size("embed")
        ... except KeyError as e:
        ...     print(e)
        axis_size: no axis 'embed' in (Axis('batch', 2),)
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _is_named(x) -> bool:
    return type(x) is NamedArray or isinstance(x, NamedArray)


def _binary_op(name: str, op: Callable, reflected: bool = False) -> Callable[[NamedArray, _Operand], NamedArray]:
    """An operator method: ``op`` broadcast by name (`broadcast_apply`); ``x ** 3`` with a Python int
    exponent as jax.numpy does it (`power_apply`)."""
    power = op is jnp.power and not reflected

    def method(self: NamedArray, other: _Operand) -> NamedArray:
        if not (_is_named(other) or isinstance(other, jax.Array | np.ndarray | int | float | complex | np.generic)):
            return NotImplemented  # e.g. a spaces.Parameter: its reflected operator handles it
        if power:
            return power_apply(name, op, (self, other))
        return broadcast_apply(name, op, (other, self) if reflected else (self, other))

    method.__name__ = method.__qualname__ = f"__{'r' if reflected else ''}{name}__"
    method.__doc__ = f"``{op.__name__}`` elementwise, broadcasting by axis name (see `namedax.{op.__name__}`)."
    return method


def unary(name: str, fn: Callable) -> Callable[[NamedArray | ArrayLike], NamedArray]:
    """The named version of a positional elementwise ``fn``: the axes are kept, a scalar gives a
    0-d result. One dispatch already (jax.numpy's functions are jitted), so nothing is cached. Used
    by the unary operators, `namedax.exp` and the like, and the `namedax.nn` activations."""

    def op(x: NamedArray | ArrayLike) -> NamedArray:
        if type(x) is not NamedArray:
            x = as_named(x, name)
        return _new(fn(x.array), x.axes)  # type: ignore[union-attr]

    op.__name__ = op.__qualname__ = name
    return op


def _non_numeric(dtype: Any) -> bool:
    return getattr(dtype, "kind", None) in ("O", "U", "S")  # objects, str, bytes


def check_data(array: Any, op: str) -> None:
    """A TypeError naming ``op`` unless ``array`` is an array (jax, numpy, a tracer or a
    ``ShapeDtypeStruct``) of a numeric dtype."""
    dtype = getattr(array, "dtype", None)
    if getattr(array, "shape", None) is None or dtype is None:
        raise TypeError(
            f"{op}: expected an array (jax or numpy) with a shape, got {type(array).__name__} {array!r:.60}; "
            "nx.named(data, axes) converts lists and scalars"
        )
    if _non_numeric(dtype):
        raise TypeError(f"{op}: arrays of dtype {dtype} (objects, strings) are not supported; only numeric data")


def as_named(x: Any, op: str) -> NamedArray:
    """A NamedArray as is, a scalar as a 0-d NamedArray; anything else is a TypeError naming ``op``."""
    if _is_named(x):
        return x
    check_operand(x, op)
    return _new(jnp.asarray(x), ())


_indexing: Any = None  # core/_indexing.py, which builds on this module: imported on first use


def _load_indexing() -> Any:
    global _indexing
    from . import _indexing as module

    _indexing = module
    return module


REPR_MAX_VALUES = 100
"""``repr`` of a NamedArray with more elements than this is one line without the values."""


class NamedArray(ArrayMethods):
    """An array whose dimensions are named by a tuple of `Axis`.

    Build one with `named` (which reads sizes from the array) or directly from an array and its axes.
    The constructor checks that the axes fit the array; internal rebuilding does not.

    Attributes:
        array: the underlying jax array.
        axes: one `Axis` per dimension, names unique.

    Examples:
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> x = nx.NamedArray(jnp.zeros((2, 3)), (nx.Axis("batch", 2), nx.Axis("embed", 3)))
        >>> x.shape
        {'batch': 2, 'embed': 3}
        >>> x.sum("embed").axes
        (Axis('batch', 2),)
    """

    __slots__ = ("array", "axes")
    __hash__ = None  # type: ignore[assignment]  # == is elementwise, as for jax arrays
    __array_priority__ = 1000  # numpy scalars defer to our reflected operators

    array: Any
    axes: tuple[Axis, ...]

    def __init__(self, array: Any, axes: Sequence[Axis] | Mapping[str, int]):
        axes = to_axes(axes)
        check_unique(axes, "NamedArray")
        check_data(array, "NamedArray")
        shape = array.shape
        if tuple(shape) != tuple(a.size for a in axes):
            raise ValueError(f"NamedArray: axes {axes} do not fit an array of shape {tuple(shape)}")
        _set_array(self, array)
        _set_axes(self, axes)

    def __setattr__(self, key, value):
        raise AttributeError("NamedArray is immutable")

    def __reduce__(self):
        # pickle and copy.(deep)copy rebuild through the constructor: their default sets the slots
        # with setattr, which an immutable class refuses
        # (through `_new`: a PyTree's leaf may be None or a sentinel, which the constructor refuses)
        return (_new, (self.array, self.axes))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(x)`` is the data, ``np.asarray(x.array)``: the names are dropped."""
        if copy:
            return np.array(self.array, dtype=dtype, copy=True)
        return np.asarray(self.array, dtype=dtype)

    def __class_getitem__(cls, spec: Any) -> Any:
        """``NamedArray["batch embed"]`` is ``namedax.typing.Named["batch embed"]``."""
        from ..typing import Named  # lazy: typing sits below _core in the layering

        return Named[spec]

    # ---- basic properties ----
    @property
    def shape(self) -> dict[str, int]:
        """``{name: size}`` in axis order."""
        return {a.name: a.size for a in self.axes}

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def size(self) -> int:
        n = 1
        for a in self.axes:
            n *= a.size
        return n

    def axis_size(self, axis: AxisSelector) -> int:
        """The size of one axis, by name or `Axis`."""
        return self.axes[self._index(axis, "axis_size")].size

    def has_axis(self, axis: AxisSelection) -> bool:
        """Whether every selected axis is present (by name, and by size for an `Axis`)."""
        for sel in to_selectors(axis, "has_axis"):
            name = axis_name(sel)
            found = next((a for a in self.axes if a.name == name), None)
            if found is None or (type(sel) is Axis and found.size != sel.size):
                return False
        return True

    def resolve_axis(self, axis: AxisSelection) -> Axis | tuple[Axis, ...]:
        """The `Axis` (or tuple of them, for several) that a selection names."""
        if type(axis) is str or type(axis) is Axis:
            return self.axes[self._index(axis, "resolve_axis")]
        return tuple(self.axes[self._index(s, "resolve_axis")] for s in to_selectors(axis, "resolve_axis"))

    def _index(self, axis: AxisSelector, op: str) -> int:
        return axis_index_in(self.axes, axis, op)

    def item(self):
        """The single element as a Python scalar."""
        return self.array.item()

    def scalar(self) -> jax.Array:
        """The 0-d jax array of a NamedArray without axes (a full reduction's result, a loss).

        `jax.grad` and `jax.value_and_grad` need a scalar array as the output: differentiate
        ``lambda p: loss(p).scalar()``. (NamedArray has no ``__jax_array__``: jax 0.10 refuses it in
        every jax.numpy function, so this is the explicit way; `jax.numpy.asarray` also works.)

        Raises:
            ValueError: the array has axes (they are named in the message).

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> x = nx.arange(nx.Axis("t", 3)).astype(float)
            >>> nx.sum(x * x).scalar()
            Array(5., dtype=float32)
            >>> jax.grad(lambda p: nx.sum(p * p).scalar())(x).array
            Array([0., 2., 4.], dtype=float32)
        """
        if self.axes:
            raise ValueError(
                f"scalar: the array has axes {self.axes}; reduce them first (e.g. nx.sum(x)) or index them away"
            )
        return self.array

    def astype(self, dtype) -> NamedArray:
        """The same axes with the array cast to ``dtype``."""
        return _new(self.array.astype(dtype), self.axes)

    def rename(self, renames: Mapping[AxisSelector, AxisSelector]) -> NamedArray:
        """Rename axes, ``{old: new}``; sizes are kept. See `rename`."""
        return rename(self, renames)

    def rearrange(self, order: Sequence[AxisSelector | Any]) -> NamedArray:
        """Reorder the axes; ``...`` stands for the axes not listed. See `rearrange`."""
        return rearrange(self, order)

    def broadcast_to(self, axes: Sequence[Axis | str] | Mapping[str, int]) -> NamedArray:
        """Broadcast to exactly ``axes``, in that order. See `broadcast_to`."""
        return broadcast_to(self, axes)

    def broadcast_axis(self, axis: Axis | Sequence[Axis] | Mapping[str, int]) -> NamedArray:
        """Add new axes in front. See `broadcast_axis`."""
        return broadcast_axis(self, axis)

    # ---- indexing ----
    def __getitem__(self, idx) -> NamedArray:
        """Index by name: ``x["batch", 3]``, ``x["batch", 1:3, "embed", 0]``, ``x[{"batch": idx}]``
        (an integer NamedArray gathers); see `namedax.core._indexing`.

        A concrete integer index (a Python or numpy int, or a concrete 0-d array) out of range is an
        IndexError; a traced one (under `jax.jit`) and the values of index arrays are not checked and
        clamp to the axis, as in jax."""
        return (_indexing or _load_indexing()).getitem(self, idx)

    @property
    def at(self) -> _AtIndexer:
        """Functional updates by name: ``x.at["batch", 0].set(1.0)``, also ``add``, ``multiply``,
        ``min``, ``max`` and ``get``, with jax's ``.at`` keyword arguments.

        Concrete integer indices are range-checked as in indexing; an update at a traced (or index
        array) position out of range is dropped, jax's default ``mode`` for scatters."""
        return (_indexing or _load_indexing())._AtIndexer(self)

    def __iter__(self):
        raise TypeError(
            f"a NamedArray with axes {self.axes} cannot be iterated over by position; "
            "use nx.unbind(x, axis) or index by name: x[axis, i]"
        )

    def __len__(self):
        raise TypeError(f"len() of a NamedArray is ambiguous; use x.axis_size(name) on {self.axes}")

    def __bool__(self):
        return bool(self.array)

    def __float__(self):
        return float(self.array)

    def __int__(self):
        return int(self.array)

    def __index__(self):
        return operator.index(self.array)

    # ---- operators: elementwise, broadcasting by name (`broadcast_apply`) ----
    __add__, __radd__ = _binary_op("add", jnp.add), _binary_op("add", jnp.add, reflected=True)
    __sub__, __rsub__ = _binary_op("sub", jnp.subtract), _binary_op("sub", jnp.subtract, reflected=True)
    __mul__, __rmul__ = _binary_op("mul", jnp.multiply), _binary_op("mul", jnp.multiply, reflected=True)
    __truediv__ = _binary_op("truediv", jnp.true_divide)
    __rtruediv__ = _binary_op("truediv", jnp.true_divide, reflected=True)
    __floordiv__ = _binary_op("floordiv", jnp.floor_divide)
    __rfloordiv__ = _binary_op("floordiv", jnp.floor_divide, reflected=True)
    __mod__, __rmod__ = _binary_op("mod", jnp.mod), _binary_op("mod", jnp.mod, reflected=True)
    __pow__, __rpow__ = _binary_op("pow", jnp.power), _binary_op("pow", jnp.power, reflected=True)
    __and__, __rand__ = _binary_op("and", jnp.bitwise_and), _binary_op("and", jnp.bitwise_and, reflected=True)
    __or__, __ror__ = _binary_op("or", jnp.bitwise_or), _binary_op("or", jnp.bitwise_or, reflected=True)
    __xor__, __rxor__ = _binary_op("xor", jnp.bitwise_xor), _binary_op("xor", jnp.bitwise_xor, reflected=True)
    __lshift__ = _binary_op("lshift", jnp.left_shift)
    __rlshift__ = _binary_op("lshift", jnp.left_shift, reflected=True)
    __rshift__ = _binary_op("rshift", jnp.right_shift)
    __rrshift__ = _binary_op("rshift", jnp.right_shift, reflected=True)
    # comparisons are elementwise, as for jax arrays (hence the override of object's)
    __eq__: ClassVar[_BinaryMethod] = _binary_op("eq", jnp.equal)  # type: ignore[assignment]
    __ne__: ClassVar[_BinaryMethod] = _binary_op("ne", jnp.not_equal)  # type: ignore[assignment]
    __lt__, __le__ = _binary_op("lt", jnp.less), _binary_op("le", jnp.less_equal)
    __gt__, __ge__ = _binary_op("gt", jnp.greater), _binary_op("ge", jnp.greater_equal)
    __neg__, __pos__ = unary("__neg__", jnp.negative), unary("__pos__", jnp.positive)
    __abs__, __invert__ = unary("__abs__", jnp.abs), unary("__invert__", jnp.invert)

    def __matmul__(self, other):
        raise TypeError("`@` is ambiguous for named arrays: use nx.dot(x, y, axis=...) to name the axes to contract")

    __rmatmul__ = __matmul__

    def __repr__(self):
        """Up to `REPR_MAX_VALUES` elements: the values too; larger, traced or abstract: one line of
        dtype and named shape, ``NamedArray(float32{'batch': 512, 'embed': 1024})``."""
        arr = self.array
        if isinstance(arr, jax.Array) and not isinstance(arr, jax.core.Tracer):
            if arr.is_deleted():
                return f"NamedArray({arr.dtype}{self.shape}, deleted)"
            if arr.size > REPR_MAX_VALUES or jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
                return f"NamedArray({arr.dtype}{self.shape})"  # PRNG keys have no numpy values to show
            body = np.array2string(np.asarray(arr), separator=", ", prefix="  array=")
            return f"NamedArray({self.shape}, dtype={arr.dtype},\n  array={body})"
        if isinstance(arr, jax.core.Tracer | jax.ShapeDtypeStruct):
            what = "traced" if isinstance(arr, jax.core.Tracer) else "abstract"
            return f"NamedArray({arr.dtype}{self.shape}, {what})"
        return f"NamedArray({self.shape}, {arr!r})"

    def to_xarray(self, *, coords: Any = None, name: Any = None) -> Any:
        """An ``xarray.DataArray`` with the axis names as dims; see `namedax.to_xarray`."""
        from ._xarray import to_xarray  # lazy: xarray is an optional extra

        return to_xarray(self, coords=coords, name=name)

    # treescope (notebooks) finds these by name, so namedax never imports it; see namedax._treescope
    def __treescope_repr__(self, path: str | None, subtree_renderer: Any) -> Any:
        from .. import _treescope  # lazy: treescope is an optional extra

        return _treescope.render(self, path, subtree_renderer)

    def __treescope_ndarray_adapter__(self) -> Any:
        from .. import _treescope

        return _treescope.adapter()


_set_array = NamedArray.__dict__["array"].__set__
_set_axes = NamedArray.__dict__["axes"].__set__
_object_new = object.__new__


def _new(array, axes: tuple[Axis, ...]) -> NamedArray:
    """Build without checks: for internal use with axes already known to be right."""
    x = _object_new(NamedArray)
    _set_array(x, array)
    _set_axes(x, axes)
    return x


def _flatten_with_keys(x: NamedArray):
    return ((jax.tree_util.GetAttrKey("array"), x.array),), x.axes


def _flatten(x: NamedArray):
    return (x.array,), x.axes


def _unflatten(axes, children):
    return _new(children[0], axes)


jax.tree_util.register_pytree_with_keys(NamedArray, _flatten_with_keys, _unflatten, _flatten)


def axis_index_in(axes: tuple[Axis, ...], axis: AxisSelector, op: str) -> int:
    """Position of ``axis`` in ``axes``; a helpful error names what is there."""
    name = axis_name(axis, op)
    for i, a in enumerate(axes):
        if a.name == name:
            if type(axis) is Axis and axis.size != a.size:
                raise ValueError(f"{op}: axis {name!r} has size {a.size}, but {axis} was given")
            return i
    raise AxisNotFoundError(f"{op}: no axis {name!r} in {axes}")


def named(array: Any, axes: AxisSelection) -> NamedArray:
    """Name the dimensions of an array.

    Args:
        array: anything `jax.numpy.asarray` accepts.
        axes: one name or `Axis` per dimension (a lone name for a 1-D array), or a ``{name: size}``
            mapping. Sizes are read from the array and checked against any given `Axis`.

    Raises:
        ValueError: the number of names differs from the array's rank, a size disagrees, or a name
            repeats.

    Examples:
        >>> import namedax as nx
        >>> x = nx.named([[1, 2, 3], [4, 5, 6]], ("batch", "embed"))
        >>> x.shape
        {'batch': 2, 'embed': 3}
    """
    if not isinstance(array, jax.Array | jax.ShapeDtypeStruct):
        if isinstance(array, str | bytes) or _non_numeric(getattr(array, "dtype", None)):
            check_data(np.asarray(array), "named")
        try:
            array = jnp.asarray(array)
        except (TypeError, ValueError) as e:
            what = f"{type(array).__name__} {array!r:.60}"
            raise TypeError(f"named: cannot make a numeric array of {what} ({e})") from None
    sels = to_selectors(axes)
    shape = tuple(array.shape)
    if len(sels) != len(shape):
        raise ValueError(f"named: {len(sels)} axes {sels} given for an array of shape {shape}")
    out = []
    for sel, n in zip(sels, shape, strict=True):
        if type(sel) is Axis and sel.size != n:
            raise ValueError(f"named: {sel} given for a dimension of size {n} (array shape {shape})")
        out.append(sel if type(sel) is Axis else Axis(sel, n))
    out = tuple(out)
    check_unique(out, "named")
    return _new(array, out)


# ---------------------------------------------------------------------------------------------
# Broadcasting by name
# ---------------------------------------------------------------------------------------------


_SCALAR_TYPES = frozenset({int, float, complex, bool})


def _is_scalar(x) -> bool:
    if type(x) in _SCALAR_TYPES or isinstance(x, int | float | complex | np.generic):
        return True
    shape = getattr(x, "shape", None)
    return shape is not None and len(shape) == 0 and not _is_named(x)


def check_operand(x, op: str) -> None:
    """Refuse plain arrays of nonzero rank: namedax never matches dimensions by position."""
    if _is_named(x) or _is_scalar(x):
        return
    shape = getattr(x, "shape", None)
    if shape is not None:
        raise TypeError(
            f"{op}: cannot combine a NamedArray with a plain array of shape {tuple(shape)}; "
            "name its axes first with nx.named(array, axes)"
        )
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}: {x!r}")


def union_of(op: str, axes_list: Sequence[tuple[Axis, ...]]) -> tuple[Axis, ...]:
    """The union of several operands' axes, in order of appearance; a size conflict is an error."""
    out = list(axes_list[0])
    sizes = {a.name: a.size for a in out}
    for axes in axes_list[1:]:
        for a in axes:
            s = sizes.get(a.name)
            if s is None:
                sizes[a.name] = a.size
                out.append(a)
            elif s != a.size:
                raise ValueError(
                    f"{op}: axis {a.name!r} has size {s} in one operand and {a.size} in another "
                    f"(operand axes: {' and '.join(str(ax) for ax in axes_list)})"
                )
    return tuple(out)


def aligner(src: tuple[Axis, ...], dst: tuple[Axis, ...]) -> Callable[[Any], Any] | None:
    """A positional function putting an array with axes ``src`` (a subset of ``dst``) in the layout
    of ``dst``: transposed to ``dst``'s order, size-1 dimensions where ``src`` lacks an axis.
    None when nothing needs doing."""
    if tuple(dst[len(dst) - len(src) :]) == src:
        return None  # numpy broadcasting adds the missing leading dimensions itself
    names = [a.name for a in dst]
    pos = [names.index(a.name) for a in src]
    perm = tuple(sorted(range(len(src)), key=lambda i: pos[i]))
    src_names = {a.name for a in src}
    missing = tuple(i for i, a in enumerate(dst) if a.name not in src_names)
    transpose = perm != tuple(range(len(src)))

    def align(a):
        if transpose:
            a = jax.lax.transpose(a, perm)
        if missing:
            a = jax.lax.expand_dims(a, missing)
        return a

    return align


def broadcast_apply(name: str, fn: Callable, args: Sequence[Any], static: Any = None) -> Any:
    """Apply a positional elementwise ``fn(*arrays)`` to NamedArrays and scalars, broadcasting by
    name. ``name`` identifies ``fn`` in the plan cache (one name, one fn); ``static`` holds options
    baked into ``fn`` and is part of the key."""
    sig = []
    for a in args:
        if type(a) is NamedArray:
            sig.append(a.axes)
        else:
            check_operand(a, name)
            sig.append(a.axes if _is_named(a) else None)
    k, out_axes = _kernels.cached((name, static, tuple(sig)), _broadcast_plan, name, fn, sig)
    return _new(k(*[a.array if _is_named(a) else a for a in args]), out_axes)


def _broadcast_plan(name: str, fn: Callable, sig: list) -> tuple[Callable, tuple[Axis, ...]]:
    named_axes = [s for s in sig if s is not None]
    out_axes = union_of(name, named_axes) if named_axes else ()
    aligns = [aligner(s, out_axes) if s is not None else None for s in sig]
    if not any(aligns):
        return _kernels.jit_pair(fn), out_axes

    def f(*xs):
        return fn(*[al(x) if al is not None else x for al, x in zip(aligns, xs, strict=True)])

    return _kernels.jit_pair(f), out_axes


@functools.lru_cache(maxsize=256)  # the function of a plan keyed on n: one object per n
def _integer_pow(n: int) -> Callable:
    def pow_n(x):
        return jnp.power(x, n)

    return pow_n


def power_apply(name: str, fn: Callable, args: Sequence[Any], static: Any = None) -> Any:
    """`broadcast_apply` for ``fn = jnp.power``. An exponent given as a Python or numpy int is part
    of the plan, not an argument of the jitted kernel: jax.numpy specialises on a concrete integer
    exponent (`jax.lax.integer_pow`: ``x ** 3`` by multiplication, an error for a negative power of
    an integer array), which a traced exponent would turn into a general ``lax.pow``."""
    x1, x2 = args
    if isinstance(x2, int | np.integer):  # bool too, as in jax.numpy
        n = operator.index(x2)
        return broadcast_apply(name, _integer_pow(n), (x1,), static=("integer_pow", n, static))
    return broadcast_apply(name, fn, args, static)


# ---------------------------------------------------------------------------------------------
# Axis manipulation
# ---------------------------------------------------------------------------------------------


def rename(x: NamedArray, renames: Mapping[AxisSelector, AxisSelector]) -> NamedArray:
    """Rename axes, ``{old: new}``; sizes are kept, and a new name may be given as an `Axis` of the
    same size.

    Examples:
        >>> import namedax as nx
        >>> nx.rename(nx.zeros({"a": 2, "b": 3}), {"a": "rows"}).axes
        (Axis('rows', 2), Axis('b', 3))
    """
    new = list(x.axes)
    for old, nw in renames.items():
        i = axis_index_in(x.axes, old, "rename")
        if type(nw) is Axis and nw.size != new[i].size:
            raise ValueError(f"rename: {x.axes[i]} cannot be renamed to {nw} (sizes differ)")
        new[i] = Axis(axis_name(nw, "rename"), new[i].size)
    out = tuple(new)
    check_unique(out, "rename")
    return _new(x.array, out)


def _transposed(x: NamedArray, perm: tuple[int, ...]) -> NamedArray:
    axes = tuple(x.axes[i] for i in perm)
    if perm == tuple(range(len(perm))):
        return x
    return _new(_kernels.kernel(("transpose", perm), _transposer, perm)(x.array), axes)


def _transposer(perm: tuple[int, ...]) -> Callable:
    return lambda a: jax.lax.transpose(a, perm)


def rearrange(x: NamedArray, order: Sequence[AxisSelector | Any]) -> NamedArray:
    """Put the axes in the given order. ``...`` (once) stands for every axis not listed, in its
    current order; without it, the order must list every axis.

    Examples:
        >>> import namedax as nx
        >>> x = nx.zeros({"a": 2, "b": 3, "c": 4})
        >>> nx.rearrange(x, ("c", ...)).axes
        (Axis('c', 4), Axis('a', 2), Axis('b', 3))
    """
    order = tuple(order)
    if order.count(Ellipsis) > 1:
        raise ValueError(f"rearrange: `...` may appear at most once in {order}")
    listed = [axis_index_in(x.axes, s, "rearrange") for s in order if s is not Ellipsis]
    if len(set(listed)) != len(listed):
        raise ValueError(f"rearrange: an axis is listed twice in {order}")
    if Ellipsis in order:
        rest = [i for i in range(x.ndim) if i not in listed]
        e = order.index(Ellipsis)
        perm = tuple(listed[:e] + rest + listed[e:])
    else:
        if len(listed) != x.ndim:
            missing = [a for i, a in enumerate(x.axes) if i not in listed]
            raise ValueError(f"rearrange: order {order} leaves out axes {missing}; add them or use `...`")
        perm = tuple(listed)
    return _transposed(x, perm)


def broadcast_to(x: NamedArray | Any, axes: Sequence[Axis | str] | Mapping[str, int]) -> NamedArray:
    """Broadcast to exactly ``axes``, in that order. Every axis of ``x`` must be among them with the
    same size; a name alone is allowed for an axis ``x`` has. A scalar broadcasts to anything.

    Examples:
        >>> import namedax as nx
        >>> x = nx.ones({"b": 3})
        >>> nx.broadcast_to(x, {"a": 2, "b": 3}).shape
        {'a': 2, 'b': 3}
    """
    return _broadcast_to(x, axes, "broadcast_to")


def _broadcast_to(x: NamedArray | Any, axes: Sequence[Axis | str] | Mapping[str, int], op: str) -> NamedArray:
    """`broadcast_to`, its errors naming the caller's operation ``op``."""
    x = as_named(x, op)
    if isinstance(axes, Mapping):
        target = to_axes(axes)
    else:
        target = tuple(a if type(a) is Axis else x.axes[axis_index_in(x.axes, a, op)] for a in axes)
    check_unique(target, op)
    tnames = {a.name: a for a in target}
    for a in x.axes:
        t = tnames.get(a.name)
        if t is None:
            raise ValueError(f"{op}: axis {a} of the array is not in the target axes {target}")
        if t.size != a.size:
            raise ValueError(f"{op}: axis {a.name!r} has size {a.size}, target wants {t.size} (target axes {target})")
    if x.axes == target:
        return x
    shape = tuple(a.size for a in target)
    dims = tuple(sorted(range(x.ndim), key=lambda i: [t.name for t in target].index(x.axes[i].name)))
    bdims = tuple([t.name for t in target].index(a.name) for a in x.axes)

    def make():
        def f(a):
            if dims != tuple(range(x.ndim)):
                a = jax.lax.transpose(a, dims)
            return jax.lax.broadcast_in_dim(a, shape, tuple(sorted(bdims)))

        return f

    return _new(_kernels.kernel(("broadcast_to", x.axes, target), make)(x.array), target)


def broadcast_axis(x: NamedArray | Any, axis: Axis | Sequence[Axis] | Mapping[str, int]) -> NamedArray:
    """Add new axes in front of ``x``'s (an axis ``x`` already has, with the same size, is left in place).

    Examples:
        >>> import namedax as nx
        >>> nx.broadcast_axis(nx.ones({"b": 3}), nx.Axis("a", 2)).shape
        {'a': 2, 'b': 3}
    """
    new = to_axes(axis)
    x = as_named(x, "broadcast_axis")
    have = {a.name: a for a in x.axes}
    for a in new:
        if a.name in have and have[a.name].size != a.size:
            raise ValueError(f"broadcast_axis: {a} conflicts with {have[a.name]} of the array")
    front = tuple(a for a in new if a.name not in have)
    return broadcast_to(x, front + x.axes)
