"""DataSpace, and what every space shares (slicing, collect), against numpy references."""

import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.spaces import DataSpace, DataSpaceSizeError, GridSpace, Parameter


def _data_state():
    return {
        "x": jnp.array([[1, 2], [3, 4], [5, 6]]),
        "y": np.array([0.1, 0.2, 0.3], np.float32),
        "p": Parameter("p", jnp.array([10.0, 20.0, 30.0]), free=True),
        "fixed_param": Parameter("k", jnp.array([7.0, 8.0])),
        "scalar_array": jnp.array(0.5),
        "named": nx.named(jnp.arange(4.0), "t"),
        "dt": 0.1,
        "label": "run",
    }


def test_dataspace_points_and_fixed_leaves():
    state = _data_state()
    ds = DataSpace(state)
    assert ds.N == len(ds) == 3 and ds.axes == (nx.Axis("data", 3),)
    assert ds.state is state
    for i in (0, 1, 2, -1, -3, np.int64(1), np.int32(-2)):
        pt = ds[i]
        j = int(i) % 3
        np.testing.assert_array_equal(np.asarray(pt["x"]), np.asarray(state["x"])[j])
        np.testing.assert_array_equal(np.asarray(pt["y"]), state["y"][j])
        assert isinstance(pt["p"], Parameter) and pt["p"].name == "p" and pt["p"].free
        assert float(pt["p"]) == [10.0, 20.0, 30.0][j]
        # fixed leaves unchanged (the very same objects)
        for k in ("fixed_param", "scalar_array", "named", "dt", "label"):
            assert pt[k] is state[k]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 points"):
        ds[3]
    with pytest.raises(IndexError, match="index -4 is out of range"):
        ds[-4]
    for bad in (1.0, "a", True, None):
        with pytest.raises(TypeError, match="point index must be an int"):
            ds[bad]


def test_dataspace_mismatch_is_value_and_assertion_error():
    state = {"a": jnp.zeros((3, 2)), "b": {"c": jnp.zeros(4)}, "p": Parameter("p", jnp.zeros(3), free=True)}
    with pytest.raises(ValueError, match=r"\['a'\]: 3, \['b'\]\['c'\]: 4, \['p'\]: 3"):
        DataSpace(state)
    with pytest.raises(AssertionError, match="share their first dimension"):
        DataSpace(state)
    # the message says which leaves are free and how to keep an array fixed; the two ways it names work
    with pytest.raises(ValueError, match=r"the free leaves \(every array with a first dimension, and the free "
                                         r"Parameters\) must share.*to keep an array fixed \(the same at every "
                                         r"point\), wrap it in Parameter\(name, array\) \(free=False\) or name "
                                         r"its axes with nx.named"):
        DataSpace(state)
    for fixed in (Parameter("c", jnp.zeros(4)), nx.named(jnp.zeros(4), "t")):
        ds = DataSpace({"a": jnp.zeros((3, 2)), "b": {"c": fixed}, "p": Parameter("p", jnp.zeros(3), free=True)})
        assert ds.N == 3 and ds[1]["b"]["c"] is fixed
    assert issubclass(DataSpaceSizeError, ValueError) and issubclass(DataSpaceSizeError, AssertionError)


def test_dataspace_bad_inputs():
    with pytest.raises(ValueError, match="no free leaves"):
        DataSpace({"a": 1.0, "b": jnp.array(2.0), "c": Parameter("c", [1.0, 2.0])})
    with pytest.raises(ValueError, match=r"free Parameter 'c' at \['c'\] has a scalar value"):
        DataSpace({"a": jnp.zeros(3), "c": Parameter("c", 1.0, free=True)})
    with pytest.raises(TypeError, match="holds a NamedArray"):
        DataSpace({"c": Parameter("c", nx.named(jnp.zeros(3), "t"), free=True)})
    with pytest.raises(ValueError, match="no rows"):
        DataSpace({"a": jnp.zeros((0, 2))})
    with pytest.raises(ValueError, match="2147483648 rows; at most 2147483647"):
        DataSpace({"a": np.broadcast_to(np.float32(0), (2**31,))})  # a view: no memory


def test_dataspace_iteration_is_reentrant():
    ds = DataSpace({"v": jnp.arange(4.0)})
    it1, it2 = iter(ds), iter(ds)
    assert float(next(it1)["v"]) == 0.0 and float(next(it1)["v"]) == 1.0
    assert float(next(it2)["v"]) == 0.0  # a second iterator starts over, the first is undisturbed
    assert float(next(it1)["v"]) == 2.0
    pairs = [(float(a["v"]), float(b["v"])) for a in ds for b in ds]
    assert pairs == [(a, b) for a in range(4) for b in range(4)]


def test_slicing_gives_dataspaces():
    state = _data_state()
    ds = DataSpace(state)
    x = np.asarray(state["x"])
    for sl in (slice(1, 3), slice(None, None, 2), slice(-2, None), slice(None, None, -1), slice(0, 100)):
        sub = ds[sl]
        assert isinstance(sub, DataSpace) and sub.N == len(range(3)[sl])
        np.testing.assert_array_equal(np.asarray(sub.state["x"]), x[sl])
        assert isinstance(sub.state["p"], Parameter) and sub.state["p"].free
        np.testing.assert_array_equal(np.asarray(sub.state["p"].value), np.array([10.0, 20.0, 30.0])[sl])
        assert sub.state["fixed_param"] is state["fixed_param"] and sub.state["named"] is state["named"]
    with pytest.raises(ValueError, match="selects no points"):
        ds[2:1]
    # a slice of a grid keeps fixed arrays fixed even when their first dimension matches
    grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True), "w": jnp.ones((2, 5))}, n=4)
    sub = grid[1:3]
    assert sub.N == 2 and sub.state["w"] is not None and sub[0]["w"].shape == (2, 5)
    np.testing.assert_allclose(np.asarray(sub.state["a"].value), [1 / 3, 2 / 3], rtol=1e-6)


@pytest.mark.parametrize("n_vmap, n_pmap", [(None, None), (2, None), (None, 2), (2, 3), (5, 1), (1, 7)])
def test_collect_shapes_order_and_padding(n_vmap, n_pmap):
    x = np.arange(7 * 2, dtype=np.int32).reshape(7, 2)
    y = np.linspace(0, 1, 7).astype(np.float32)
    b = np.array([True, False, True, True, False, True, False])
    ds = DataSpace({"x": jnp.asarray(x), "y": jnp.asarray(y), "b": jnp.asarray(b), "dt": 0.1})
    out = ds.collect(n_vmap=n_vmap, n_pmap=n_pmap)
    nv, npm = n_vmap or 1, n_pmap or 1
    n_map = -(-7 // (nv * npm))
    total = nv * npm * n_map
    pad = total - 7

    def ref(a, fill):
        tail = np.repeat(a[-1:], pad, axis=0) if fill is None else np.full((pad,) + a.shape[1:], fill, a.dtype)
        padded = np.concatenate([a, tail])
        return padded.reshape((npm, nv, n_map) + a.shape[1:])

    np.testing.assert_array_equal(np.asarray(out["y"]), ref(y, np.nan))  # floats: NaN padding
    np.testing.assert_array_equal(np.asarray(out["x"]), ref(x, None))  # ints: repeat the last point
    np.testing.assert_array_equal(np.asarray(out["b"]), ref(b, None))
    assert out["dt"] == 0.1
    exact = ds.collect(n_vmap=n_vmap, n_pmap=n_pmap, fill_value=-1)
    np.testing.assert_array_equal(np.asarray(exact["x"]), ref(x, -1))
    np.testing.assert_array_equal(np.asarray(exact["y"]), ref(y, -1.0))
    repeat = ds.collect(n_vmap=n_vmap, n_pmap=n_pmap, fill_value=None)
    np.testing.assert_array_equal(np.asarray(repeat["y"]), ref(y, None))


def test_collect_bad_inputs():
    ds = DataSpace({"v": jnp.arange(3.0)})
    for kw, exc, match in [
        (dict(n_vmap=0), ValueError, "`n_vmap` must be >= 1, got 0"),
        (dict(n_pmap=-2), ValueError, "`n_pmap` must be >= 1, got -2"),
        (dict(n_vmap=1.5), TypeError, "`n_vmap` must be an int"),
        (dict(n_pmap=True), TypeError, "`n_pmap` must be an int"),
        (dict(fill_value="x"), TypeError, "`fill_value` must be a real number or None"),
        (dict(fill_value=1j), TypeError, "`fill_value` must be a real number or None"),
        (dict(fill_value=np.zeros(2)), TypeError, "`fill_value` must be a real number or None"),
    ]:
        with pytest.raises(exc, match=match):
            ds.collect(**kw)
    grid = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                      "b": Parameter("b", 0.0, low=0.0, high=1.0, free=True)}, n=100_000)
    with pytest.raises(ValueError, match="exceed 2147483647.*block by block"):
        grid.collect()


def test_dataspace_named_coords_repr_and_points():
    ds = DataSpace({"w": jnp.arange(6.0).reshape(3, 2), "p": Parameter("p", jnp.arange(3.0), free=True), "c": 1.0})
    named = ds.named()
    assert named["w"].axes == (nx.Axis("data", 3), nx.Axis("dim_0", 2))
    np.testing.assert_array_equal(np.asarray(named["w"].array), np.arange(6.0).reshape(3, 2))
    assert isinstance(named["p"], Parameter) and named["p"].value.axes == (nx.Axis("data", 3),)
    assert named["c"] == 1.0
    np.testing.assert_array_equal(ds.coords()["data"], np.arange(3))
    assert repr(ds) == "DataSpace(N=3, axis 'data', free leaves: ['p'] () float32, ['w'] (2,) float32)"
    # a sweep by name over the data axis equals the point-by-point evaluation
    out = nx.vmap(lambda s: s["w"].sum("dim_0") * s["p"], ds.axes, default=None)(named)
    assert out.axes == ds.axes
    np.testing.assert_allclose(np.asarray(out.array), [float(pt["w"].sum() * pt["p"]) for pt in ds])
    pts = ds.points([2, 0, -1])
    np.testing.assert_array_equal(np.asarray(pts["w"]), np.arange(6.0).reshape(3, 2)[[2, 0, 2]])
    with pytest.raises(IndexError, match="index 5 is out of range"):
        ds.points([0, 5])
    with pytest.raises(TypeError, match="1-D sequence of ints"):
        ds.points([[0, 1]])

