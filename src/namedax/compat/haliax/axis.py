"""``haliax.axis``: axes and the helpers over them (re-exports)."""

from ...core._axis import (
    Axis as Axis,
    AxisSelection as AxisSelection,
    AxisSelector as AxisSelector,
    AxisSpec as AxisSpec,
    axis_name as axis_name,
    concat_axes as concat_axes,
    selects_axis as selects_axis,
)
from ._core import (
    ds as ds,
    dslice as dslice,
    eliminate_axes as eliminate_axes,
    rearrange_for_partial_order as rearrange_for_partial_order,
)
