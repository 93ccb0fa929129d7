"""Parameter spaces: sets of model states whose dimensions are named axes.

A *state* is any PyTree (dicts, lists, equinox modules, ...) that a model takes as input. A
`Parameter` marks a leaf with a name and bounds; ``free=True`` marks the leaves a space sweeps. A
space is the set of states obtained by giving the free leaves every combination of values:

- `DataSpace`: given values; every array leaf and every free Parameter holds one row per point
  (shared first dimension N). One axis, ``data``.
- `UniformSpace`: ``n`` random points, each free Parameter uniform in ``[low, high]``. One axis,
  ``sample``.
- `GridSpace`: a grid, one axis per free Parameter named after it, ``n`` points from ``low`` to
  ``high`` inclusive. Flat order is row-major: the last axis varies fastest.
- `TrialSpace`: ``n`` repeats, point ``i`` is the index ``i``. One axis, ``trial``.

Spaces combine: ``a * b`` is their Cartesian product (`ProductSpace`, the axes of both, points
``(point_a, point_b)``), `zip` pairs the points of equal-length spaces along one axis. A
``Parameter(..., scale="log")`` is spaced geometrically by a grid and drawn log-uniformly by a
`UniformSpace`, which also samples quasi-randomly (``method="sobol" | "halton" | "lhs"``).

Spaces are lazy: no space holds its points. ``space[i]`` computes point ``i`` from ``i`` alone (a
``1e10``-point grid answers in microseconds), `AbstractSpace.block` computes a contiguous block of
points on device (what the executors call, block by block), and indices are 64-bit safe whatever the
``jax_enable_x64`` setting. Spaces are PyTrees, so they can be passed into `jax.jit`.

    >>> import jax.numpy as jnp
    >>> from namedax.spaces import GridSpace, Parameter
    >>> state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
    ...          "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True),
    ...          "dt": 0.1}
    >>> space = GridSpace(state, n={"a": 3, "b": 5})
    >>> space.N, space.axes
    (15, (Axis('a', 3), Axis('b', 5)))
    >>> point = space[7]                      # a = 0.5 (coordinate 1), b = 0.0 (coordinate 2)
    >>> float(point["a"]), float(point["b"]), point["dt"]
    (0.5, 0.0, 0.1)
    >>> block = space.block(0, 4)             # points 0..3, free leaves stacked on device
    >>> block["b"].value
    Array([-1. , -0.5,  0. ,  0.5], dtype=float32)
"""

from ._base import AbstractSpace as AbstractSpace
from ._compose import (
    ProductSpace as ProductSpace,
    TrialSpace as TrialSpace,
    ZipSpace as ZipSpace,
    zip as zip,
)
from ._parameter import Parameter as Parameter
from ._spaces import (
    DataSpace as DataSpace,
    DataSpaceSizeError as DataSpaceSizeError,
    GridSpace as GridSpace,
    UniformSpace as UniformSpace,
)
