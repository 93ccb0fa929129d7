"""The methods of `NamedArray` that are named ops: ``x.sum("embed")`` is ``namedax.sum(x, "embed")``.

They are small forwarding definitions with the ops' signatures written out, so type checkers and
``help()`` see each one; the ops themselves live in `namedax.ops`, a layer above core, which is
imported on the first call (core never imports ops while being imported). `NamedArray` inherits
them from `ArrayMethods`; its operators are generated in its own class body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jax.typing import DTypeLike

    from ._axis import Axis, AxisSelection, AxisSelector, AxisSpec
    from ._named_array import NamedArray

_ops: Any = None


def _load_ops() -> Any:
    global _ops
    from .. import ops

    _ops = ops
    return ops


_MISSING: Any = object()  # dot's "axis not given" (the op raises a clear error)


class ArrayMethods:
    """Mixin of `NamedArray`: each method calls the `namedax` function of the same name on ``self``."""

    __slots__ = ()

    # ---- reductions (ops/_reductions.py) ----
    def sum(
        self, axis: AxisSelection | None = None, *, where: NamedArray | None = None, dtype: DTypeLike | None = None
    ) -> NamedArray:
        """`namedax.sum` of this array."""
        return (_ops or _load_ops()).sum(self, axis, where=where, dtype=dtype)

    def mean(
        self, axis: AxisSelection | None = None, *, where: NamedArray | None = None, dtype: DTypeLike | None = None
    ) -> NamedArray:
        """`namedax.mean` of this array."""
        return (_ops or _load_ops()).mean(self, axis, where=where, dtype=dtype)

    def prod(
        self, axis: AxisSelection | None = None, *, where: NamedArray | None = None, dtype: DTypeLike | None = None
    ) -> NamedArray:
        """`namedax.prod` of this array."""
        return (_ops or _load_ops()).prod(self, axis, where=where, dtype=dtype)

    def max(
        self, axis: AxisSelection | None = None, *, where: NamedArray | None = None, initial: float | None = None
    ) -> NamedArray:
        """`namedax.max` of this array."""
        return (_ops or _load_ops()).max(self, axis, where=where, initial=initial)

    def min(
        self, axis: AxisSelection | None = None, *, where: NamedArray | None = None, initial: float | None = None
    ) -> NamedArray:
        """`namedax.min` of this array."""
        return (_ops or _load_ops()).min(self, axis, where=where, initial=initial)

    def std(
        self,
        axis: AxisSelection | None = None,
        *,
        where: NamedArray | None = None,
        ddof: int = 0,
        dtype: DTypeLike | None = None,
    ) -> NamedArray:
        """`namedax.std` of this array."""
        return (_ops or _load_ops()).std(self, axis, where=where, ddof=ddof, dtype=dtype)

    def var(
        self,
        axis: AxisSelection | None = None,
        *,
        where: NamedArray | None = None,
        ddof: int = 0,
        dtype: DTypeLike | None = None,
    ) -> NamedArray:
        """`namedax.var` of this array."""
        return (_ops or _load_ops()).var(self, axis, where=where, ddof=ddof, dtype=dtype)

    def any(self, axis: AxisSelection | None = None, *, where: NamedArray | None = None) -> NamedArray:
        """`namedax.any` of this array."""
        return (_ops or _load_ops()).any(self, axis, where=where)

    def all(self, axis: AxisSelection | None = None, *, where: NamedArray | None = None) -> NamedArray:
        """`namedax.all` of this array."""
        return (_ops or _load_ops()).all(self, axis, where=where)

    def argmax(self, axis: AxisSelector | None = None) -> NamedArray:
        """`namedax.argmax` of this array."""
        return (_ops or _load_ops()).argmax(self, axis)

    def argmin(self, axis: AxisSelector | None = None) -> NamedArray:
        """`namedax.argmin` of this array."""
        return (_ops or _load_ops()).argmin(self, axis)

    def cumsum(self, axis: AxisSelector, *, dtype: DTypeLike | None = None) -> NamedArray:
        """`namedax.cumsum` of this array."""
        return (_ops or _load_ops()).cumsum(self, axis, dtype=dtype)

    def cumprod(self, axis: AxisSelector, *, dtype: DTypeLike | None = None) -> NamedArray:
        """`namedax.cumprod` of this array."""
        return (_ops or _load_ops()).cumprod(self, axis, dtype=dtype)

    def sort(self, axis: AxisSelector, *, descending: bool = False, stable: bool = True) -> NamedArray:
        """`namedax.sort` of this array."""
        return (_ops or _load_ops()).sort(self, axis, descending=descending, stable=stable)

    def argsort(self, axis: AxisSelector, *, descending: bool = False, stable: bool = True) -> NamedArray:
        """`namedax.argsort` of this array."""
        return (_ops or _load_ops()).argsort(self, axis, descending=descending, stable=stable)

    # ---- shape (ops/_shape.py) ----
    def flatten_axes(self, old_axes: AxisSelection, new_axis: AxisSelector) -> NamedArray:
        """`namedax.flatten_axes` of this array."""
        return (_ops or _load_ops()).flatten_axes(self, old_axes, new_axis)

    def unflatten_axis(self, axis: AxisSelector, new_axes: AxisSpec | Axis) -> NamedArray:
        """`namedax.unflatten_axis` of this array."""
        return (_ops or _load_ops()).unflatten_axis(self, axis, new_axes)

    def split(self, axis: AxisSelector, new_axes: Sequence[Axis | int]) -> list[NamedArray]:
        """`namedax.split` of this array."""
        return (_ops or _load_ops()).split(self, axis, new_axes)

    def unbind(self, axis: AxisSelector) -> list[NamedArray]:
        """`namedax.unbind` of this array."""
        return (_ops or _load_ops()).unbind(self, axis)

    def ravel(self, new_axis: AxisSelector) -> NamedArray:
        """`namedax.ravel` of this array."""
        return (_ops or _load_ops()).ravel(self, new_axis)

    def take(self, axis: AxisSelector, index: Any, *, mode: str | None = None, fill_value: Any = None) -> NamedArray:
        """`namedax.take` of this array."""
        return (_ops or _load_ops()).take(self, axis, index, mode=mode, fill_value=fill_value)

    def roll(self, shift: Any, axis: AxisSelection) -> NamedArray:
        """`namedax.roll` of this array."""
        return (_ops or _load_ops()).roll(self, shift, axis)

    def pad(
        self,
        pad_width: Mapping[AxisSelector, int | tuple[int, int]],
        mode: str = "constant",
        *,
        constant_values: Any = 0,
        **kwargs: Any,
    ) -> NamedArray:
        """`namedax.pad` of this array."""
        return (_ops or _load_ops()).pad(self, pad_width, mode, constant_values=constant_values, **kwargs)

    # ---- dynamic slicing (ops/_dynamic_slice.py) ----
    def slice(self, start: Mapping[AxisSelector, Any], length: Mapping[AxisSelector, int]) -> NamedArray:
        """`namedax.slice` of this array."""
        return (_ops or _load_ops()).slice(self, start, length)

    def updated_slice(self, start: Mapping[AxisSelector, Any], update: NamedArray) -> NamedArray:
        """`namedax.updated_slice` of this array."""
        return (_ops or _load_ops()).updated_slice(self, start, update)

    # ---- elementwise (ops/_elementwise.py) ----
    def round(self, decimals: int = 0) -> NamedArray:
        """`namedax.round` of this array."""
        return (_ops or _load_ops()).round(self, decimals)

    def clip(self, a_min: NamedArray | Any = None, a_max: NamedArray | Any = None) -> NamedArray:
        """`namedax.clip` of this array."""
        return (_ops or _load_ops()).clip(self, a_min, a_max)

    def conj(self) -> NamedArray:
        """`namedax.conj` of this array."""
        return (_ops or _load_ops()).conj(self)

    # ---- contractions (ops/_linalg.py): x.dot(y, axis=...) is dot(x, y, axis=...) ----
    def dot(
        self,
        *arrays: NamedArray,
        axis: AxisSelection | None = _MISSING,
        precision: Any = None,
        preferred_element_type: Any = None,
        out_axes: Sequence[AxisSelector | Any] | None = None,
        out_sharding: Any = None,
    ) -> NamedArray:
        """`namedax.dot` of this array and ``arrays``."""
        return (_ops or _load_ops()).dot(
            self, *arrays, axis=axis, precision=precision, preferred_element_type=preferred_element_type,
            out_axes=out_axes, out_sharding=out_sharding,
        )  # fmt: skip
