"""namedax: named-axis arrays for JAX.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
    >>> x = nx.ones((Batch, Embed))
    >>> nx.sum(x, axis=Embed).axes
    (Axis('batch', 2),)
"""

from . import ops as ops
from .core._axis import (
    Axis as Axis,
    AxisSelection as AxisSelection,
    AxisSelector as AxisSelector,
    AxisSpec as AxisSpec,
    axis_name as axis_name,
    axis_size as axis_size,
    concat_axes as concat_axes,
    eliminate_axes as eliminate_axes,
    make_axes as make_axes,
    replace_axis as replace_axis,
    selects_axis as selects_axis,
    union_axes as union_axes,
)
from .core._named_array import (
    AxisNotFoundError as AxisNotFoundError,
    NamedArray as NamedArray,
    broadcast_axis as broadcast_axis,
    broadcast_to as broadcast_to,
    named as named,
    rearrange as rearrange,
    rename as rename,
)
from .core._kernels import clear_caches as clear_caches
from .core._xarray import from_xarray as from_xarray, to_xarray as to_xarray
from .ops import *  # noqa: F403  (ops/__init__.py lists its names explicitly)

# --- transforms (owned by _vmap.py, _scan.py, _pmap.py, _collectives.py) ---
from .transforms._collectives import (
    all_gather as all_gather,
    axis_index as axis_index,
    pmax as pmax,
    pmean as pmean,
    pmin as pmin,
    psum as psum,
)
from .transforms._scan import fold as fold, map as map, scan as scan
from .transforms._vmap import vmap as vmap
from .transforms._pmap import pmap as pmap
from . import random as random
# --- end transforms ---

from . import spaces as spaces
from . import execution as execution
from . import sharding as sharding
from . import nn as nn
from ._version import __version__ as __version__
