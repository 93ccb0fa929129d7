"""Results (execution/_results.py): indexing, named outputs, xarray export."""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.execution import ParallelExecution
from namedax.spaces import GridSpace, UniformSpace
from test_execution_executors import STATE, P, simulate


def test_results_indexing_errors():
    res = ParallelExecution(simulate, GridSpace(STATE, n=3)).run()
    with pytest.raises(IndexError, match="index 9 is out of range for 9 points"):
        res[9]
    with pytest.raises(IndexError, match="index -10 is out of range"):
        res[-10]
    with pytest.raises(TypeError, match="must be an int or a slice, got float"):
        res[1.0]
    with pytest.raises(TypeError, match="must be an int or a slice"):
        res[True]
    assert "Results(9 points of GridSpace(param1: 3, param2: 3)" in repr(res)


def test_results_access_is_fast():
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=100)  # 10^4 points
    single = ParallelExecution(lambda s: s["a"] * s["b"], space).run()
    tree = ParallelExecution(lambda s: {"x": s["a"], "y": jnp.stack([s["a"], s["b"]])}, space).run()
    for res in (single, tree):
        t = time.perf_counter()
        for i in range(10**4):
            res[i]
        per_item = (time.perf_counter() - t) / 10**4
        assert per_item < 30e-6, per_item  # microseconds, not milliseconds
        t = time.perf_counter()
        items = list(res)
        assert time.perf_counter() - t < 0.5 and len(items) == 10**4


def test_points():
    space = GridSpace(STATE, n=3)
    res = ParallelExecution(simulate, space).run()
    pts = res.points([0, -1])
    np.testing.assert_allclose(np.asarray(pts["param1"].value), [0.0, 1.0])


def test_to_xarray():
    xr = pytest.importorskip("xarray")
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 2.0)}, n={"a": 3, "b": 5})
    da = ParallelExecution(lambda s: s["a"] * s["b"], space).run().to_xarray()
    assert isinstance(da, xr.DataArray) and da.dims == ("a", "b")
    np.testing.assert_allclose(da.coords["b"].values, np.linspace(0, 2, 5, dtype=np.float32))
    assert float(da.sel(a=1.0, b=1.5)) == pytest.approx(1.5)
    Time = nx.Axis("time", 4)
    ds = ParallelExecution(lambda s: {"x": s["a"], "tr": nx.arange(Time) * s["b"], "v": jnp.zeros(2),
                                      "w": jnp.zeros(3), "tag": "hi"}, space).run().to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["tr"].dims == ("a", "b", "time") and ds["x"].dims == ("a", "b")
    assert ds["v"].dims == ("a", "b", "v.dim_0") and ds["w"].dims == ("a", "b", "w.dim_0")  # sizes 2 and 3
    assert ds.attrs["tag"] == "hi"
    np.testing.assert_allclose(ds["tr"].sel(a=0.5, b=2.0).values, np.arange(4) * 2.0)
    u = UniformSpace({"a": P("a", 0.0, 1.0), "b": P("b", 5.0, 6.0)}, 6, key=jax.random.key(1))
    ud = ParallelExecution(lambda s: s["a"] + s["b"], u).run().to_xarray()
    assert ud.dims == ("sample",)
    np.testing.assert_allclose(ud.values, ud.coords["a"].values + ud.coords["b"].values, rtol=1e-6)


def test_to_xarray_parameter_coordinates_are_never_mislabelled():
    # Two free Parameters may share a name in a UniformSpace / DataSpace: a coordinate of that name
    # would hold only one of them (whichever came last). Unambiguous names still get theirs.
    pytest.importorskip("xarray")
    u = UniformSpace({"x": P("a", 0.0, 1.0), "y": P("a", 10.0, 11.0), "z": P("c", 5.0, 6.0)}, 4,
                     key=jax.random.key(2))
    da = ParallelExecution(lambda s: s["x"] + s["y"], u).run().to_xarray()
    assert "a" not in da.coords
    np.testing.assert_array_equal(da.coords["c"].values, [float(p["z"]) for p in u])
    np.testing.assert_allclose(da.values, [float(p["x"]) + float(p["y"]) for p in u], rtol=1e-6)


def test_to_xarray_without_xarray(monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)
    res = ParallelExecution(simulate, GridSpace(STATE, n=2)).run()
    with pytest.raises(ModuleNotFoundError, match=r"namedax\[xarray\]"):
        res.to_xarray()


def test_named_axis_clash():
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=2)
    res = ParallelExecution(lambda s: nx.arange(nx.Axis("a", 3)) * s["a"], space).run()
    with pytest.raises(ValueError, match="also name axes of the space"):
        res.named()
    with pytest.raises(ValueError, match="already has an axis 'a'"):
        res[0:2]

