"""Treescope support for NamedArray: notebooks show names, sizes, statistics and a named array view.

treescope (an optional extra, ``pip install 'namedax[treescope]'``) looks for two methods on the
type of every value it renders: ``__treescope_repr__`` (how the node is drawn) and
``__treescope_ndarray_adapter__`` (how `treescope.render_array` and the automatic array
visualiser read the data). `NamedArray` defines both as two-line methods that import this module
on first use, so ``import namedax`` never imports treescope and nothing needs registering.

- The node: ``<NamedArray float32{'batch': 4, 'embed': 8} ≈0.1 ±1.0 [≥-2.0, ≤2.2] nonzero:32>``
  when folded (dtype, the named shape, treescope's summary statistics of the data, and the
  sharding by name, ``sharded{'batch': 'data'}``, when the array is split over devices); unfolded,
  its ``array`` and ``axes``. Models (equinox modules are dataclasses to treescope) show this line
  for every parameter.
- `Axis` renders as ``Axis(name='embed', size=8)`` (by default treescope draws the tuple underneath).
- The array view: every axis is a named, positionless axis (`NamedPositionlessAxisInfo`), as
  penzai's NamedArray does, so the interactive view labels its sliders and facets by name. The
  sharding view is the underlying jax array's.

    >>> import jax, treescope
    >>> import namedax as nx
    >>> x = nx.random.normal(jax.random.key(0), {"batch": 4, "embed": 8})
    >>> "float32{'batch': 4, 'embed': 8}" in treescope.render_to_text(x)
    True
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from .core._axis import Axis
from .core._named_array import NamedArray, _broadcast_to, _is_named

# treescope is imported inside the functions: it is an optional extra (tests/test_packaging.py
# holds module-level imports to the runtime dependencies), and only treescope itself calls them.


def _is_concrete(a: Any) -> bool:
    return isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer)


def sharding_by_name(x: NamedArray) -> dict[str, Any] | None:
    """``{axis name: mesh axes}`` of the split axes of a placed array, or None when it is not split
    (one device, replicated, or a sharding that names no mesh axes)."""
    from .sharding import describe  # sharding is a layer above core; treescope only needs it here

    a = x.array
    if not _is_concrete(a) or a.is_deleted() or a.is_fully_replicated:
        return None
    try:
        layout = describe(x)
    except TypeError:  # a positional sharding: treescope's own sharding view still shows it
        return None
    split = {name: mesh for name, mesh in layout.items() if mesh is not None}
    return split or None


def summary(x: NamedArray, inspect_data: bool = True) -> str:
    """One line: dtype, named shape, statistics of the data (when ``inspect_data`` and it is on this
    host), and the sharding by name."""
    from treescope import dtype_util
    from treescope.external import jax_support

    a = x.array
    dtype = getattr(a, "dtype", None)
    parts = [dtype_util.get_dtype_name(dtype) if dtype is not None else type(a).__name__, str(x.shape)]
    if inspect_data and _is_concrete(a):
        parts.append(jax_support.summarize_array_data(a))
    elif isinstance(a, jax.core.Tracer):
        parts.append(" - traced")
    split = sharding_by_name(x)
    if split:
        parts.append(f" sharded{split}")
    return "".join(parts)


def render(x: NamedArray, path: str | None, subtree_renderer: Any) -> Any:
    """The treescope node of ``x``: its summary folded, its ``array`` and ``axes`` unfolded."""
    from treescope import lowering, rendering_parts

    def label(inspect_data: bool) -> Any:
        line = summary(x, inspect_data)
        return rendering_parts.summarizable_condition(
            summary=rendering_parts.abbreviation_color(rendering_parts.text(f"<NamedArray {line}>")),
            detail=rendering_parts.siblings(
                rendering_parts.maybe_qualified_type_name(NamedArray),
                "(",
                rendering_parts.fold_condition(
                    expanded=rendering_parts.comment_color(rendering_parts.text("  # " + line))
                ),
            ),
        )

    children = rendering_parts.build_field_children(
        x, path, subtree_renderer, fields_or_attribute_names=("array", "axes")
    )
    return rendering_parts.build_custom_foldable_tree_node(
        label=lowering.maybe_defer_rendering(main_thunk=lambda _: label(True), placeholder_thunk=lambda: label(False)),
        contents=rendering_parts.summarizable_condition(
            detail=rendering_parts.siblings(rendering_parts.indented_children(children), ")")
        ),
        path=path,
        expand_state=rendering_parts.ExpandState.COLLAPSED,
    )


def render_axis(axis: Axis, path: str | None, subtree_renderer: Any) -> Any:
    """``Axis(name='embed', size=8)`` (treescope would otherwise draw the tuple Axis is built on)."""
    from treescope import repr_lib

    return repr_lib.render_object_constructor(
        Axis, {"name": axis.name, "size": axis.size}, path, subtree_renderer, roundtrippable=True
    )


@functools.cache
def adapter() -> Any:
    """The NDArray adapter (one instance; its class subclasses treescope's, so it is built on first use)."""
    from treescope import ndarray_adapters
    from treescope.external import jax_support

    class NamedArrayAdapter(ndarray_adapters.NDArrayAdapter[NamedArray]):
        """treescope's view of a NamedArray: one named, positionless axis per `Axis`, in data order."""

        def get_axis_info_for_array_data(self, array: NamedArray) -> tuple[ndarray_adapters.AxisInfo, ...]:
            return tuple(ndarray_adapters.NamedPositionlessAxisInfo(axis_name=a.name, size=a.size) for a in array.axes)

        def get_array_data_with_truncation(
            self, array: NamedArray, mask: Any, edge_items_per_axis: tuple[int | None, ...]
        ) -> tuple[np.ndarray, np.ndarray]:
            if _is_named(mask):  # aligned by name, its missing axes broadcast; a plain mask fits by position
                mask = _broadcast_to(mask, array.axes, "treescope mask").array
            return jax_support.JAXArrayAdapter().get_array_data_with_truncation(array.array, mask, edge_items_per_axis)

        def get_array_summary(self, array: NamedArray, fast: bool) -> str:
            return f"NamedArray {summary(array, inspect_data=not fast)}"

        def get_numpy_dtype(self, array: NamedArray) -> np.dtype | None:
            return array.dtype if isinstance(array.dtype, np.dtype) else None

        def get_sharding_info_for_array_data(self, array: NamedArray) -> ndarray_adapters.ShardingInfo | None:
            if not _is_concrete(array.array):
                return None
            return jax_support.JAXArrayAdapter().get_sharding_info_for_array_data(array.array)

        def should_autovisualize(self, array: NamedArray) -> bool:
            return _is_concrete(array.array) and not array.array.is_deleted()

    return NamedArrayAdapter()
