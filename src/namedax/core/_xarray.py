"""NamedArray <-> xarray: an xarray object's dims are exactly named axes, so the conversion is a
renaming of concepts and a copy of the data.

`from_xarray` reads a ``DataArray`` (dims become axes, in order) or a ``Dataset`` (a dict of
NamedArrays, one per data variable); `to_xarray` writes a NamedArray as a ``DataArray`` (or a dict
of them as a ``Dataset``). Coordinates and attributes are dropped on the way in: a NamedArray holds
names and sizes, not labels (pass ``coords=`` to `to_xarray` to put labels back). The data goes
through `jax.numpy.asarray`, so float64 becomes float32 unless ``jax_enable_x64`` is on, as for any
array handed to JAX. xarray is an optional extra (``pip install 'namedax[xarray]'``), imported on
first use.

    >>> import numpy as np
    >>> import xarray as xr
    >>> import namedax as nx
    >>> da = xr.DataArray(np.zeros((2, 3), np.float32), dims=("batch", "embed"))
    >>> x = nx.from_xarray(da)
    >>> x.axes
    (Axis('batch', 2), Axis('embed', 3))
    >>> x.to_xarray().dims
    ('batch', 'embed')
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._axis import Axis
from ._named_array import NamedArray, _is_named, _new
from ._optional import require


def _axes_of(dims: tuple[Hashable, ...], shape: tuple[int, ...], what: str) -> tuple[Axis, ...]:
    for d in dims:
        if type(d) is not str:
            raise TypeError(
                f"from_xarray: {what} has dims {dims}; the dim {d!r} is a {type(d).__name__}, but axis names are "
                f"strings: rename it first, e.g. da.rename({{{d!r}: {str(d)!r}}})"
            )
    return tuple(Axis(d, n) for d, n in zip(dims, shape, strict=True))


def from_xarray(obj: Any) -> NamedArray | dict[Hashable, NamedArray]:
    """A NamedArray from an ``xarray.DataArray``, or a dict of them from an ``xarray.Dataset``.

    Each dim becomes an axis of the same name and size, in the same order; coordinates, attributes
    and the array's name are dropped (a NamedArray has no labels). The data is read with
    `jax.numpy.asarray` (dask arrays are computed; float64 becomes float32 unless
    ``jax_enable_x64`` is on).

    Args:
        obj: an ``xarray.DataArray`` or ``xarray.Dataset``. Its dims must be strings.

    Returns:
        A `NamedArray` (a DataArray; 0-d gives a NamedArray without axes), or a dict from each data
        variable's name to its NamedArray (a Dataset).

    Raises:
        TypeError: ``obj`` is not an xarray object, or a dim is not a string (xarray allows any
            hashable); the message names it.
        ModuleNotFoundError: xarray is not installed (``pip install 'namedax[xarray]'``).

    Examples:
        >>> import numpy as np
        >>> import xarray as xr
        >>> import namedax as nx
        >>> ds = xr.Dataset({"t": (("time",), np.arange(3.0)), "p": ((), 1.5)})
        >>> {k: v.shape for k, v in nx.from_xarray(ds).items()}
        {'t': {'time': 3}, 'p': {}}
    """
    xr = require("xarray", "from_xarray", "xarray")
    if isinstance(obj, xr.Dataset):
        return {name: _from_data_array(var, f"data variable {name!r}") for name, var in obj.data_vars.items()}
    if isinstance(obj, xr.DataArray):
        return _from_data_array(obj, f"the DataArray {obj.name!r}" if obj.name is not None else "the DataArray")
    raise TypeError(f"from_xarray: expected an xarray.DataArray or xarray.Dataset, got {type(obj).__name__}")


def _from_data_array(da: Any, what: str) -> NamedArray:
    axes = _axes_of(tuple(da.dims), tuple(da.shape), what)
    data = da.to_numpy()
    if data.dtype.kind not in "biufc":
        raise TypeError(f"from_xarray: {what} has dtype {data.dtype}; only numeric data becomes a NamedArray")
    return _new(jnp.asarray(data), axes)


def to_xarray(x: NamedArray | Mapping[Hashable, NamedArray], *, coords: Any = None, name: Hashable = None) -> Any:
    """An ``xarray.DataArray`` of a NamedArray (dims are its axis names), or an ``xarray.Dataset``
    of a mapping of NamedArrays (one data variable each). ``NamedArray.to_xarray()`` is the same.

    Args:
        x: a NamedArray with concrete data (not traced), or a mapping from names to them.
        coords: coordinates for the result, anything xarray's constructor takes (optional).
        name: the DataArray's name (a NamedArray only).

    Returns:
        ``xarray.DataArray`` or ``xarray.Dataset``, holding numpy copies of the data.

    Raises:
        TypeError: ``x`` is not a NamedArray or mapping of them, or holds traced data.
        ModuleNotFoundError: xarray is not installed (``pip install 'namedax[xarray]'``).

    Examples:
        >>> import namedax as nx
        >>> da = nx.to_xarray(nx.arange(nx.Axis("time", 3)), coords={"time": [0.0, 0.5, 1.0]})
        >>> da.dims, da.sel(time=0.5).item()
        (('time',), 1)
    """
    xr = require("xarray", "to_xarray", "xarray")
    if isinstance(x, Mapping):
        return xr.Dataset({k: _variable(v, f"to_xarray: {k!r}") for k, v in x.items()}, coords=coords)
    dims, data = _variable(x, "to_xarray")
    return xr.DataArray(data, dims=dims, coords=coords, name=name)


def _variable(x: Any, op: str) -> tuple[tuple[str, ...], np.ndarray]:
    """``(dims, numpy data)`` of a NamedArray with concrete data."""
    if not _is_named(x):
        raise TypeError(f"{op}: expected a NamedArray, got {type(x).__name__}")
    if isinstance(x.array, jax.core.Tracer) or not hasattr(x.array, "__array__"):
        raise TypeError(
            f"{op}: the array with axes {x.axes} has no concrete data ({type(x.array).__name__}); "
            "convert outside jax.jit / vmap"
        )
    return tuple(a.name for a in x.axes), np.asarray(x.array)
