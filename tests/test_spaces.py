"""namedax.spaces: Parameter, DataSpace, UniformSpace, GridSpace, against numpy references."""

import copy
import operator
import os
import pickle
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import namedax as nx
from namedax.spaces import DataSpace, DataSpaceSizeError, GridSpace, Parameter, UniformSpace

# ---------------------------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------------------------

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
          operator.pow, operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
INT_BINARY = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
def test_parameter_binary_operators_both_sides(op):
    a, b = np.float32(2.5), np.float32(1.5)
    p, q = Parameter("p", a), Parameter("q", b)
    ref = op(a, b)
    for got in (op(p, b), op(p, jnp.asarray(b)), op(p, q), op(a, q), op(jnp.asarray(a), q), op(float(a), q)):
        assert not isinstance(got, Parameter)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6)


@pytest.mark.parametrize("op", INT_BINARY, ids=lambda f: f.__name__)
def test_parameter_integer_operators(op):
    p, q = Parameter("p", 12), Parameter("q", 2)
    for got in (op(p, 2), op(12, q), op(p, q)):
        assert int(got) == op(12, 2)


def test_parameter_matmul_divmod_unary_and_conversions():
    m = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    v = np.array([1.0, -2.0, 3.0], np.float32)
    p = Parameter("m", m)
    np.testing.assert_allclose(np.asarray(p @ v), m @ v)
    np.testing.assert_allclose(np.asarray(v[:2] @ p), v[:2] @ m)
    s = Parameter("s", -7.5)
    assert float(-s) == 7.5 and float(+s) == -7.5 and float(abs(s)) == 7.5
    assert int(~Parameter("i", 5)) == ~5
    q, r = divmod(Parameter("x", 7.0), 2.0)
    assert (float(q), float(r)) == divmod(7.0, 2.0)
    q, r = divmod(7.0, Parameter("y", 2.0))
    assert (float(q), float(r)) == divmod(7.0, 2.0)
    assert float(s) == -7.5 and int(Parameter("i", 3)) == 3 and complex(Parameter("c", 2.0)) == 2 + 0j
    assert bool(Parameter("t", 1.0)) and not bool(Parameter("f", 0.0))
    assert [1, 2, 3, 4][Parameter("k", 2)] == 3  # __index__
    assert f"{Parameter('f', 0.125):.2f}" == "0.12"
    assert round(Parameter("r", 2.6)) == 3


def test_parameter_behaves_like_its_value_in_jax_numpy():
    x = np.array([0.1, 0.7, 2.0], np.float32)
    p = Parameter("x", x)
    for f, ref in [(jnp.sin, np.sin), (jnp.exp, np.exp), (jnp.sum, np.sum), (jnp.tanh, np.tanh)]:
        np.testing.assert_allclose(np.asarray(f(p)), ref(x), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.where(p > 0.5, p, 0.0)), np.where(x > 0.5, x, 0.0))
    np.testing.assert_allclose(np.asarray(jnp.dot(p, p)), x @ x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.maximum(p, Parameter("y", 1.0))), np.maximum(x, 1.0))
    np.testing.assert_allclose(np.asarray(p), x)
    assert p.shape == (3,) and p.dtype == jnp.float32 and p.ndim == 1 and p.size == 3 and len(p) == 3
    np.testing.assert_allclose([float(v) for v in p], x)
    assert float(p[1]) == np.float32(0.7) and float(p[Parameter("i", 2)]) == 2.0
    np.testing.assert_allclose(np.asarray(p.sum()), x.sum())  # methods of the value
    np.testing.assert_allclose(np.asarray(p.reshape(3, 1)), x.reshape(3, 1))
    # numpy scalars on the left defer to the Parameter
    np.testing.assert_allclose(np.asarray(np.float32(2.0) * p), 2 * x)


def test_parameter_is_a_pytree_with_a_static_face():
    p = Parameter("a", 1.5, low=0.0, high=2.0, free=True)
    leaves, treedef = jax.tree.flatten(p)
    assert len(leaves) == 1 and float(leaves[0]) == 1.5
    doubled = jax.tree.map(lambda v: v * 2, p)
    assert isinstance(doubled, Parameter) and float(doubled.value) == 3.0
    assert (doubled.name, doubled.low, doubled.high, doubled.free) == ("a", 0.0, 2.0, True)
    ((path, _),) = jax.tree_util.tree_flatten_with_path(p)[0]
    assert jax.tree_util.keystr(path) == ".value"
    # JAX rebuilds it with tracers, batched values, None and ShapeDtypeStructs: no validation
    assert float(jax.jit(lambda q: q * 2)(p)) == 3.0
    out = jax.vmap(lambda q: q.value + 1)(Parameter("v", jnp.arange(3.0)))
    np.testing.assert_allclose(np.asarray(out), [1.0, 2.0, 3.0])
    shape = jax.eval_shape(lambda q: q, p)
    assert isinstance(shape, Parameter) and shape.value.shape == ()
    assert jax.tree.unflatten(treedef, [None]).value is None
    g = jax.grad(lambda q: jnp.sin(q) * q)(p)
    np.testing.assert_allclose(float(g.value), np.cos(1.5) * 1.5 + np.sin(1.5), rtol=1e-6)


def test_parameter_copy_pickle_replace_and_immutability():
    p = Parameter("a", [1.0, 2.0], low=-1, high=3, free=True)
    for q in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert isinstance(q, Parameter) and (q.name, q.low, q.high, q.free) == ("a", -1.0, 3.0, True)
        np.testing.assert_allclose(np.asarray(q.value), [1.0, 2.0])
    r = p.replace(value=5.0, free=False)
    assert float(r) == 5.0 and r.free is False and r.low == -1.0
    with pytest.raises(AttributeError, match="immutable"):
        p.value = 3.0
    with pytest.raises(TypeError, match="unknown fields"):
        p.replace(bogus=1)
    with pytest.raises(ValueError, match="low"):
        p.replace(low=5.0)
    expected = "Parameter('a', 0.5, low=0.0, high=1.0, free=True)"
    assert repr(Parameter("a", 0.5, low=0.0, high=1.0, free=True)) == expected
    assert repr(Parameter("b", 2)) == "Parameter('b', 2)"


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(low=2.0, high=1.0), ValueError, r"'a'.*`low` must be <= `high`.*low=2.0, high=1.0"),
        (dict(low=float("nan")), ValueError, r"`low` must be finite, got nan"),
        (dict(high=float("inf")), ValueError, r"`high` must be finite, got inf"),
        (dict(low=-np.inf, high=0.0), ValueError, r"`low` must be finite"),
        (dict(low="zero"), TypeError, r"`low` must be a real number or None, got 'zero'"),
        (dict(high=np.array([1.0, 2.0])), TypeError, r"`high` must be a real number"),
        (dict(low=True), TypeError, r"`low` must be a real number"),
        (dict(free="yes"), TypeError, r"`free` must be a bool, got str"),
    ],
)
def test_parameter_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Parameter("a", 0.0, **kwargs)


def test_parameter_bad_name_and_value():
    with pytest.raises(TypeError, match="`name` must be a str, got int"):
        Parameter(3, 0.0)
    with pytest.raises(TypeError, match=r"'a'.*`value` must be array-like"):
        Parameter("a", "text")
    assert Parameter("ok", 1.0, low=np.float32(0), high=np.int64(3)).high == 3.0  # numpy scalars are fine


# ---------------------------------------------------------------------------------------------
# DataSpace
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# GridSpace
# ---------------------------------------------------------------------------------------------


def _grid_state():
    return {
        "model": {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                  "b": Parameter("b", 0.0, low=-2.0, high=3.0, free=True)},
        "c": Parameter("c", 0.0, low=0.5, high=0.75, free=True),
        "k": Parameter("k", 4.0),
        "w": jnp.ones(3),
        "dt": 0.01,
    }


def _meshgrid_ref(lows, highs, ns):
    vals = [np.linspace(lo, hi, n) for lo, hi, n in zip(lows, highs, ns, strict=True)]
    return [m.reshape(-1) for m in np.meshgrid(*vals, indexing="ij")]


def test_grid_axes_order_and_flat_order_against_meshgrid():
    state = _grid_state()
    space = GridSpace(state, n={"c": 2, "a": 3, "b": 4})
    # axes in the state's leaf order (dict keys sorted: 'c' before 'model'; 'a' before 'b')
    assert space.axes == (nx.Axis("c", 2), nx.Axis("a", 3), nx.Axis("b", 4))
    assert space.N == len(space) == 24
    ref_c, ref_a, ref_b = _meshgrid_ref([0.5, 0.0, -2.0], [0.75, 1.0, 3.0], [2, 3, 4])
    pts = space.points()
    np.testing.assert_allclose(np.asarray(pts["c"].value), ref_c, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pts["model"]["a"].value), ref_a, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pts["model"]["b"].value), ref_b, rtol=1e-6)
    for i, pt in enumerate(space):
        assert isinstance(pt["model"]["a"], Parameter) and pt["model"]["a"].free and pt["model"]["a"].low == 0.0
        np.testing.assert_allclose([float(pt["c"]), float(pt["model"]["a"]), float(pt["model"]["b"])],
                                   [ref_c[i], ref_a[i], ref_b[i]], rtol=1e-6, atol=1e-7)
        assert pt["k"] is state["k"] and pt["w"] is state["w"] and pt["dt"] == 0.01
    # bounds are hit exactly
    assert float(space[0]["model"]["b"]) == -2.0 and float(space[-1]["model"]["b"]) == 3.0
    assert float(space[-1]["c"]) == 0.75


@given(sizes=st.lists(st.sampled_from([1, 2, 3, 5]), min_size=1, max_size=3), data=st.data())
def test_grid_points_match_unravel_index(sizes, data):
    names = [f"p{k}" for k in range(len(sizes))]
    state = {k: Parameter(k, 0.0, low=-1.0 - j, high=2.0 * j + 1, free=True) for j, k in enumerate(names)}
    space = GridSpace(state, n=dict(zip(names, sizes, strict=True)))
    i = data.draw(st.integers(0, space.N - 1))
    coords = np.unravel_index(i, sizes)
    for j, k in enumerate(names):
        lo, hi = -1.0 - j, 2.0 * j + 1
        ref = lo if sizes[j] == 1 else np.linspace(lo, hi, sizes[j])[coords[j]]
        np.testing.assert_allclose(float(space[i][k]), ref, rtol=1e-6, atol=1e-6)


def test_grid_block_is_bitwise_equal_to_single_points_and_coords():
    space = GridSpace(_grid_state(), n={"c": 3, "a": 7, "b": 11})
    singles = [space[i] for i in range(space.N)]
    coords = space.coords()
    for start, size in [(0, space.N), (5, 17), (200, 40), (230, 9)]:
        blk = space.block(start, size)
        for j in range(size):
            i = min(start + j, space.N - 1)  # past the end: the last point again
            for path in (("c",), ("model", "a"), ("model", "b")):
                got = blk[path[0]] if len(path) == 1 else blk[path[0]][path[1]]
                want = singles[i][path[0]] if len(path) == 1 else singles[i][path[0]][path[1]]
                assert got.value[j] == want.value, (start, j, path)
        assert blk["w"] is space.state["w"] and blk["dt"] == 0.01  # fixed leaves are not stacked
    c_idx = np.unravel_index(np.arange(space.N), (3, 7, 11))
    np.testing.assert_array_equal(np.asarray(space.points()["model"]["b"].value), coords["b"][c_idx[2]])
    np.testing.assert_array_equal(np.asarray(space.points()["c"].value), coords["c"][c_idx[0]])


def test_grid_block_under_jit_with_traced_start_and_offset():
    space = GridSpace(_grid_state(), n={"c": 3, "a": 7, "b": 11})
    ref = space.block(0, space.N)

    @jax.jit
    def run(sp, token, offset):
        pts = sp.block(token, 8, offset)
        return jax.vmap(lambda s: s["model"]["a"] * 100 + s["model"]["b"] + s["w"].sum(), in_axes=(sp.in_axes,))(pts)

    for start, offset in [(0, 0), (10, 3), (220, 6)]:
        got = run(space, space.block_start(start), offset)
        idx = np.minimum(np.arange(start + offset, start + offset + 8), space.N - 1)
        a, b = (np.asarray(ref["model"][k].value)[idx] for k in ("a", "b"))
        np.testing.assert_array_equal(np.asarray(got), (a * 100 + b) + 3.0)
    # closed over (its bounds become XLA constants): still bitwise the same points
    closed = jax.jit(lambda token: space.block(token, 16)["model"]["b"].value)(space.block_start(40))
    np.testing.assert_array_equal(np.asarray(closed), np.asarray(ref["model"]["b"].value)[40:56])


def test_grid_in_axes_and_free_mask():
    space = GridSpace(_grid_state(), n=2)
    assert space.in_axes == {"c": 0, "k": None, "model": {"a": 0, "b": 0}, "w": None, "dt": None}
    assert space.free_mask == {"c": True, "k": False, "model": {"a": True, "b": True}, "w": False, "dt": False}


BIG = 10**10  # 5 axes of 100 points


def _big_grid():
    state = {f"p{k}": Parameter(f"p{k}", 0.0, low=-1.0 - k, high=1.0 + 2 * k, free=True) for k in range(5)}
    return GridSpace(state, n=100)


def _big_ref(i):
    coords = np.unravel_index(i, (100,) * 5)
    return [np.linspace(-1.0 - k, 1.0 + 2 * k, 100)[coords[k]] for k in range(5)]


def test_grid_is_lazy_on_1e10_points():
    space = _big_grid()  # warm-up: imports, first dispatches
    space[0]
    t0 = time.perf_counter()
    space = _big_grid()
    point = space[123456789]
    elapsed = time.perf_counter() - t0
    assert space.N == BIG
    np.testing.assert_allclose([float(point[f"p{k}"]) for k in range(5)], _big_ref(123456789), rtol=1e-6)
    assert elapsed < 0.05, f"constructing a 1e10 grid and reading one point took {elapsed * 1e3:.1f} ms"


def test_grid_indices_past_2_31_are_exact():
    space = _big_grid()
    for i in (2**31 - 1, 2**31, 2**31 + 7, 2**32 + 12345, 7_654_321_098, BIG - 1):
        np.testing.assert_allclose([float(space[i][f"p{k}"]) for k in range(5)], _big_ref(i), rtol=1e-6)
    # a block on device, starting past 2**32 and crossing several axis boundaries, without x64
    start = 2**32 + 99_999_950
    blk = space.block(start, 100)
    for j in range(0, 100, 7):
        np.testing.assert_allclose([float(blk[f"p{k}"].value[j]) for k in range(5)], _big_ref(start + j), rtol=1e-6)
        assert all(blk[f"p{k}"].value[j] == space[start + j][f"p{k}"].value for k in range(5))
    # the end of the grid clamps to the last point
    tail = space.block(BIG - 3, 6)
    want = [float(space[BIG - 3]["p4"]), float(space[BIG - 2]["p4"])] + [float(space[BIG - 1]["p4"])] * 4
    np.testing.assert_array_equal(np.asarray(tail["p4"].value), want)
    assert space.block_start(BIG + 5).tolist() == [99] * 5
    assert space.points(slice(BIG - 2, None))["p0"].shape == (2,)


def test_grid_named_sweep_with_vmap_matches_meshgrid():
    state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
             "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True)}
    space = GridSpace(state, n={"a": 4, "b": 5})
    named = space.named()
    assert named["a"].value.axes == (nx.Axis("a", 4),) and named["b"].value.axes == (nx.Axis("b", 5),)

    def model(s):
        return s["a"] * s["b"] + jnp.sin(s["a"])

    out = nx.vmap(model, space.axes)(space.named())
    A, B = np.meshgrid(np.linspace(0, 1, 4), np.linspace(-1, 1, 5), indexing="ij")
    np.testing.assert_allclose(np.asarray(nx.rearrange(out, ("a", "b")).array), A * B + np.sin(A), rtol=1e-6,
                               atol=1e-6)
    # the same numbers as evaluating point by point, in flat order
    flat = np.array([float(model(p)) for p in space])
    np.testing.assert_allclose(np.asarray(out.array).reshape(-1), flat, rtol=1e-6)
    # fixed array leaves are broadcast with default=None
    state2 = dict(state, w=jnp.arange(3.0), k=Parameter("k", 2.0))
    space2 = GridSpace(state2, n={"a": 4, "b": 5})
    out2 = nx.vmap(lambda s: model(s) * s["k"] + s["w"].sum(), space2.axes, default=None)(space2.named())
    np.testing.assert_allclose(np.asarray(out2.array), (A * B + np.sin(A)) * 2 + 3, rtol=1e-6, atol=1e-6)


def test_grid_named_namedarray_plus_parameter():
    named = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                       "b": Parameter("b", 0.0, low=0.0, high=1.0, free=True)}, n=2).named()
    out = named["a"] * 10 + named["b"]
    assert out.axes == (nx.Axis("a", 2), nx.Axis("b", 2))


def test_grid_array_values_log_spacing_dtypes_and_repr():
    state = {"v": Parameter("v", jnp.zeros((2, 3)), low=1.0, high=100.0, free=True),
             "h": Parameter("h", jnp.zeros((), jnp.float16), low=0.0, high=1.0, free=True),
             "i": Parameter("i", 3, low=1, high=4, free=True)}
    space = GridSpace(state, n={"v": 3, "h": 5, "i": 4}, log="v")
    assert [a.name for a in space.axes] == ["h", "i", "v"]
    pt = space[space.N - 1]
    assert pt["v"].shape == (2, 3) and pt["h"].dtype == jnp.float16 and pt["i"].dtype == jnp.float32
    np.testing.assert_allclose(space.coords()["v"], np.geomspace(1.0, 100.0, 3), rtol=1e-5)
    np.testing.assert_array_equal(space.coords()["i"], [1.0, 2.0, 3.0, 4.0])
    assert float(pt["v"][1, 2]) == 100.0 and float(pt["h"]) == 1.0
    np.testing.assert_allclose(np.asarray(space[1]["v"].value), np.full((2, 3), 10.0), rtol=1e-5)  # coords (0, 0, 1)
    blk = space.block(0, space.N)
    np.testing.assert_array_equal(np.asarray(blk["v"].value[:, 0, 0]), np.asarray(space.points()["v"].value[:, 1, 1]))
    assert blk["v"].value[5, 0, 0] == space[5]["v"].value[0, 0]
    named = space.named()
    assert named["v"].value.axes == (nx.Axis("v", 3), nx.Axis("dim_0", 2), nx.Axis("dim_1", 3))
    assert repr(space) == ("GridSpace(N=60, h: 5 points in [0.0, 1.0], i: 4 points in [1.0, 4.0], "
                           "v: 3 points in [1.0, 100.0] (log))")
    one = GridSpace({"a": Parameter("a", 0.0, low=2.0, high=5.0, free=True)}, n=1)
    assert one.N == 1 and float(one[0]["a"]) == 2.0 and float(one.block(0, 3)["a"].value[2]) == 2.0


def _free(name, low=0.0, high=1.0, value=0.0):
    return Parameter(name, value, low=low, high=high, free=True)


@pytest.mark.parametrize(
    "state, kwargs, exc, match",
    [
        ({"a": Parameter("a", 0.0, free=True)}, {}, ValueError, r"needs both bounds.*'a' at \['a'\] \(low=None"),
        ({"a": Parameter("a", 0.0, low=0.0, high=1.0)}, {}, ValueError, "no free Parameters"),
        ({"x": _free("a"), "y": _free("a")},
         {}, ValueError, r"names must be unique; repeated: 'a' at \['x'\], 'a' at \['y'\]"),
        ({"a": _free("a")}, {"n": 0}, ValueError, "`n` must be >= 1, got 0"),
        ({"a": _free("a")}, {"n": {"a": -1}}, ValueError, r"`n\['a'\]` must be >= 1"),
        ({"a": _free("a")}, {"n": 2.5}, TypeError, "`n` must be an int"),
        ({"a": _free("a")}, {"n": True}, TypeError, "`n` must be an int"),
        ({"a": _free("a")}, {"n": 2**31}, ValueError, "`n` must be <= 2147483647"),
        ({"a": _free("a"), "b": _free("b")},
         {"n": {"a": 2}}, ValueError, r"gives no size for \['b'\]"),
        ({"a": _free("a")}, {"n": {"a": 2, "z": 3}}, ValueError,
         r"`n` names \['z'\], which are not free Parameters"),
        ({"a": _free("a")}, {"log": True}, ValueError, r"log spacing needs `low` > 0, got 'a' \(low=0.0\)"),
        ({"a": _free("a", 1.0, 2.0)}, {"log": ["q"]}, ValueError, r"`log` names \['q'\]"),
        ({f"p{k}": _free(f"p{k}") for k in range(3)}, {"n": 2**21}, ValueError,
         "exceed 2\\*\\*63 - 1"),
        ({"a": _free("a", value=nx.named(jnp.zeros(2), "t"))}, {}, TypeError, "holds a NamedArray"),
    ],
)
def test_grid_bad_inputs(state, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GridSpace(state, **kwargs)


def test_block_bad_inputs():
    space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, n=5)
    for args, exc, match in [
        ((0, 0), ValueError, r"`size` must be in \[1, 2147483647\], got 0"),
        ((0, 2.0), TypeError, "`size` must be a Python int"),
        ((0, 4, -1), ValueError, "`offset` must be >= 0"),
        ((0, 4, 2**31), ValueError, "`offset` must be >= 0 and `offset \\+ size` <= 2\\*\\*31"),
        ((np.zeros(3, np.uint32), 4), ValueError, r"token from block_start\(\) of shape \(1,\), got shape \(3,\)"),
        ((0, 4, np.zeros(2)), TypeError, "`offset` must be an integer scalar"),
    ]:
        with pytest.raises(exc, match=match):
            space.block(*args)
    with pytest.raises(ValueError, match="`start` must be >= 0, got -1"):
        space.block_start(-1)
    with pytest.raises(TypeError, match="`start` must be an int"):
        space.block_start(1.0)


def test_spaces_are_pytrees_and_fingerprints():
    space = GridSpace(_grid_state(), n=3)
    leaves, treedef = jax.tree.flatten(space)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.N == space.N and rebuilt.axes == space.axes
    np.testing.assert_array_equal(np.asarray(rebuilt.block(0, 27)["c"].value),
                                  np.asarray(space.block(0, 27)["c"].value))
    assert float(rebuilt[4]["model"]["b"]) == float(space[4]["model"]["b"])
    assert set(rebuilt.state) == set(space.state)
    assert GridSpace(_grid_state(), n=3).fingerprint() == space.fingerprint()
    assert GridSpace(_grid_state(), n=4).fingerprint() != space.fingerprint()
    other = _grid_state()
    other["w"] = jnp.full(3, 2.0)
    assert GridSpace(other, n=3).fingerprint() != space.fingerprint()
    ds = DataSpace(_data_state())
    leaves, treedef = jax.tree.flatten(ds)
    back = jax.tree.unflatten(treedef, leaves)
    np.testing.assert_array_equal(np.asarray(back.state["x"]), np.asarray(ds.state["x"]))
    assert back.state["p"].name == "p" and float(back[1]["p"]) == 20.0
    assert DataSpace(_data_state()).fingerprint() == ds.fingerprint()
    keyed = UniformSpace(_uniform_state(), 5, jax.random.key(1))
    assert UniformSpace(_uniform_state(), 5).fingerprint() != keyed.fingerprint()
    np.testing.assert_array_equal(np.asarray(ds.points(range(1, 3))["y"]), np.asarray(ds.state["y"])[1:3])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        ds.points(range(1, 4))



def test_fixed_python_floats_equal_by_value_but_not_the_same_compile_apart():
    # A fixed Python float is static data of the space's PyTree: 0.0 == -0.0, but a jitted function
    # must not reuse the program compiled for one with the other (a silent 1/0.0 for 1/-0.0).
    def space(k):
        return GridSpace({"a": Parameter("a", 0.0, low=1.0, high=2.0, free=True), "k": k}, n=2)

    @jax.jit
    def f(sp, tok):
        points = sp.block(tok, 2)
        return points["a"].value / points["k"]

    with np.errstate(divide="ignore"):
        ref_pos, ref_neg = np.float32([1.0, 2.0]) / np.float32(0.0), np.float32([1.0, 2.0]) / np.float32(-0.0)
    tok = space(0.0).block_start(0)
    np.testing.assert_array_equal(np.asarray(f(space(0.0), tok)), ref_pos)
    np.testing.assert_array_equal(np.asarray(f(space(-0.0), tok)), ref_neg)
    assert jax.tree.structure(space(float("nan"))) == jax.tree.structure(space(float("nan")))

def test_64_bit_indices_with_x64_enabled_too():
    script = textwrap.dedent("""
        import jax, numpy as np
        from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace
        assert jax.config.jax_enable_x64
        grid = GridSpace({f"p{k}": Parameter(f"p{k}", 0.0, low=-1.0, high=1.0, free=True) for k in range(5)}, n=100)
        start = 2**32 + 99_999_990
        blk = grid.block(start, 20)
        for j in (0, 9, 10, 19):
            c = np.unravel_index(start + j, (100,) * 5)
            ref = [np.linspace(-1.0, 1.0, 100)[c[k]] for k in range(5)]
            assert np.allclose([float(blk[f"p{k}"].value[j]) for k in range(5)], ref, rtol=1e-12), j
            assert all(blk[f"p{k}"].value[j] == grid[start + j][f"p{k}"].value for k in range(5))
        uni = UniformSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True)}, 2**40)
        ub = uni.block(2**32 - 1, 2)
        assert ub["a"].value[1] == uni[2**32]["a"].value and ub["a"].value.dtype == np.float64
        ds = DataSpace({"k": np.arange(5, dtype=np.int64) * 2**40})
        assert int(ds[3]["k"]) == 3 * 2**40 and int(ds.block(4, 2)["k"][1]) == 4 * 2**40
        print("ok")
    """)
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# UniformSpace
# ---------------------------------------------------------------------------------------------


def _uniform_state():
    return {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            "b": Parameter("b", jnp.zeros(2), low=10.0, high=20.0, free=True),
            "c": Parameter("c", 1.0),
            "w": jnp.ones(2)}


def test_uniform_points_bounds_determinism_and_default_key():
    state = _uniform_state()
    space = UniformSpace(state, 500)
    assert space.N == 500 and space.axes == (nx.Axis("sample", 500),)
    pts = space.points()
    a, b = np.asarray(pts["a"].value), np.asarray(pts["b"].value)
    assert b.shape == (500, 2) and np.all(b[:, 0] == b[:, 1])  # one draw per Parameter, broadcast
    assert a.min() >= 0 and a.max() <= 1 and b.min() >= 10 and b.max() <= 20
    assert abs(a.mean() - 0.5) < 0.05 and abs(b.mean() - 15) < 0.5 and np.corrcoef(a, b[:, 0])[0, 1] < 0.2
    # the documented default key is jax.random.key(0); the same key gives the same space
    same = UniformSpace(state, 500, key=jax.random.key(0)).points()
    np.testing.assert_array_equal(np.asarray(same["a"].value), a)
    other = UniformSpace(state, 500, key=jax.random.key(1)).points()
    assert not np.array_equal(np.asarray(other["a"].value), a)
    raw = UniformSpace(state, 500, key=jax.random.PRNGKey(0)).points()
    np.testing.assert_array_equal(np.asarray(raw["a"].value), a)
    # the documented definition: one uniform per free Parameter from fold_in(fold_in(key, hi), lo)
    for i in (17, 499):
        k = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 0), i)
        u = np.asarray(jax.random.uniform(k, (2,)))
        np.testing.assert_allclose([a[i], b[i, 0]], [u[0], 10 + 10 * u[1]], rtol=1e-6)
    pt = space[17]
    assert pt["c"] is state["c"] and pt["w"] is state["w"] and isinstance(pt["a"], Parameter)
    assert repr(space) == "UniformSpace(N=500, axis 'sample', a in [0.0, 1.0], b in [10.0, 20.0], key=[0, 0])"


def test_uniform_any_chunking_gives_the_same_points():
    space = UniformSpace(_uniform_state(), 40, key=jax.random.key(3))
    whole = np.asarray(space.block(0, 40)["a"].value)
    for size in (1, 7):
        chunks = np.concatenate([np.asarray(space.block(s, size)["a"].value) for s in range(0, 40, size)])[:40]
        np.testing.assert_array_equal(chunks, whole)
    np.testing.assert_array_equal([space[i]["a"].value for i in range(40)], whole)
    np.testing.assert_array_equal(np.asarray(space.collect(n_vmap=8)["a"]).reshape(-1), whole)


def test_uniform_indices_past_2_32():
    space = UniformSpace(_uniform_state(), 2**40, key=jax.random.key(5))
    assert space.N == 2**40
    start = 2**32 - 2
    blk = space.block(start, 4)  # crosses the 32-bit word boundary
    for j in range(4):
        i = start + j
        k = jax.random.fold_in(jax.random.fold_in(jax.random.key(5), i >> 32), i & 0xFFFFFFFF)
        np.testing.assert_allclose(float(blk["a"].value[j]), float(jax.random.uniform(k, (2,))[0]), rtol=1e-6)
        assert blk["a"].value[j] == space[i]["a"].value
    assert float(space[2**32 + 1]["a"]) != float(space[1]["a"])
    named = UniformSpace(_uniform_state(), 3).named()
    assert named["a"].value.axes == (nx.Axis("sample", 3),)
    assert named["b"].value.axes == (nx.Axis("sample", 3), nx.Axis("dim_0", 2))
    np.testing.assert_array_equal(UniformSpace(_uniform_state(), 3).coords()["sample"], [0, 1, 2])


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((_uniform_state(), 0), {}, ValueError, "`n` must be >= 1, got 0"),
        ((_uniform_state(), 2.0), {}, TypeError, "`n` must be an int"),
        (({"a": Parameter("a", 0.0, low=0.0, free=True)}, 3), {}, ValueError, r"needs both bounds.*'a'.*high=None"),
        (({"a": Parameter("a", 0.0)}, 3), {}, ValueError, "no free Parameters"),
        ((_uniform_state(), 3), {"key": 0}, TypeError, "`key` must be a jax.random.key"),
        ((_uniform_state(), 3), {"key": jax.random.split(jax.random.key(0), 2)}, ValueError, "single key"),
    ],
)
def test_uniform_bad_inputs(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        UniformSpace(*args, **kwargs)
