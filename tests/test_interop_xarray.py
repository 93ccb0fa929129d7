"""NamedArray <-> xarray: round trips checked against the xarray objects (values, dims, dtype)."""

import builtins

import jax
import numpy as np
import pytest

import namedax as nx

xr = pytest.importorskip("xarray")


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_, np.complex64, np.int8])
def test_data_array_round_trip(rng, dtype):
    data = (rng.normal(size=(2, 3, 4)) * 10).astype(dtype)
    da = xr.DataArray(data, dims=("batch", "time", "embed"))
    x = nx.from_xarray(da)
    assert [(a.name, a.size) for a in x.axes] == [("batch", 2), ("time", 3), ("embed", 4)]
    assert isinstance(x.array, jax.Array) and x.dtype == dtype
    np.testing.assert_array_equal(np.asarray(x.array), data)
    back = x.to_xarray()
    assert back.dims == da.dims and back.dtype == da.dtype
    np.testing.assert_array_equal(back.values, da.values)
    xr.testing.assert_identical(back, da)


def test_zero_d():
    da = xr.DataArray(np.float32(2.5))
    x = nx.from_xarray(da)
    assert x.axes == () and x.item() == 2.5
    back = nx.to_xarray(x)
    assert back.dims == () and back.item() == 2.5 and back.dtype == np.float32


def test_coords_attrs_and_name_are_dropped_and_coords_can_be_given_back():
    da = xr.DataArray(
        np.arange(3.0, dtype=np.float32), dims="t", coords={"t": [0.0, 0.1, 0.2]}, name="v", attrs={"units": "s"}
    )
    x = nx.from_xarray(da)
    assert x.shape == {"t": 3}
    plain = x.to_xarray()
    assert "t" not in plain.coords and plain.attrs == {} and plain.name is None
    labelled = x.to_xarray(coords={"t": da["t"].values}, name="v")
    xr.testing.assert_equal(labelled, da)


def test_dataset_to_dict_and_back(rng):
    a = rng.normal(size=(2, 3)).astype(np.float32)
    b = np.arange(3, dtype=np.int32)
    ds = xr.Dataset({"a": (("batch", "embed"), a), "b": (("embed",), b), "c": ((), np.float32(1.0))})
    d = nx.from_xarray(ds)
    assert set(d) == {"a", "b", "c"}
    assert d["a"].shape == {"batch": 2, "embed": 3} and d["b"].shape == {"embed": 3} and d["c"].shape == {}
    np.testing.assert_array_equal(np.asarray(d["a"].array), a)
    xr.testing.assert_identical(nx.to_xarray(d), ds)


def test_float64_follows_jax_dtype_rules():
    x = nx.from_xarray(xr.DataArray(np.arange(3.0), dims="t"))
    assert x.dtype == jax.numpy.asarray(np.arange(3.0)).dtype


def test_non_string_dims_are_refused_by_name():
    da = xr.DataArray(np.zeros((2, 3)), dims=("batch", 7))
    with pytest.raises(TypeError, match=r"from_xarray: .*dim 7 is a int.*rename"):
        nx.from_xarray(da)
    ds = xr.Dataset({"v": (("a", 1), np.zeros((2, 2)))})
    with pytest.raises(TypeError, match=r"data variable 'v' has dims \('a', 1\)"):
        nx.from_xarray(ds)


def test_bad_inputs():
    with pytest.raises(TypeError, match="from_xarray: expected an xarray.DataArray or xarray.Dataset, got ndarray"):
        nx.from_xarray(np.zeros(3))
    with pytest.raises(TypeError, match="from_xarray: .*dtype <U1"):
        nx.from_xarray(xr.DataArray(np.array(["a", "b"]), dims="t"))
    with pytest.raises(TypeError, match="to_xarray: expected a NamedArray, got ndarray"):
        nx.to_xarray(np.zeros(3))
    x = nx.zeros({"a": 2})
    with pytest.raises(TypeError, match=r"to_xarray: .*\(Axis\('a', 2\),\) has no concrete data"):
        jax.jit(lambda v: v.to_xarray())(x)


def test_missing_xarray_names_the_extra(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError("no xarray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(__import__("sys").modules, "xarray")
    with pytest.raises(ModuleNotFoundError, match=r"from_xarray needs xarray.*namedax\[xarray\]"):
        nx.from_xarray(None)
