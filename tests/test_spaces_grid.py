"""GridSpace and its point generator (spaces/_gen.py GridGen), against numpy's meshgrid and unravel_index."""

import os
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
from namedax.spaces import GridSpace, Parameter, UniformSpace


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



def test_gridgen_steps_like_unravel_index_past_2_32():
    # GridGen holds the sizes as static constants; its device stepping (mixed-radix addition from an
    # encoded start) must give numpy.unravel_index's coordinates, for indices past 2**32 too.
    ns = (100_003, 70_001, 3_001)  # 2.1e13 points
    state = {k: Parameter(k, 0.0, low=0.0, high=1.0, free=True) for k in ("a", "b", "c")}
    gen = GridSpace(state, n=dict(zip("abc", ns, strict=True)))._gen
    assert gen.ns == ns and jax.tree.leaves(gen)[0].shape == (5, 3)  # sizes are not leaves
    n_total = int(np.prod(ns, dtype=np.int64))
    rng = np.random.default_rng(0)
    starts = np.concatenate([rng.integers(0, n_total, 20), [2**32 - 3, 2**32 + 5, n_total - 40]])
    step = jax.jit(lambda tok, k: gen.advance(tok, k))
    for s in starts.tolist():
        ks = np.concatenate([np.arange(8), rng.integers(0, 2**31 - 1, 8)]).astype(np.uint32)
        got = np.asarray(step(gen.start(s), ks))
        want = np.stack(np.unravel_index(np.minimum(s + ks.astype(np.int64), n_total - 1), ns))  # clamped
        np.testing.assert_array_equal(got, want.astype(np.uint32))
        np.testing.assert_array_equal(gen.encode(np.asarray([s])), np.stack(np.unravel_index([s], ns)))


@pytest.mark.parametrize("low, high, what", [
    (0.0, 1e39, r"reaches beyond the float32 range \(\+-3.403e\+38\)"),
    (-1e39, 0.0, "reaches beyond the float32 range"),
    (-3e38, 3e38, "reaches beyond the float32 range"),  # the span overflows
])
def test_bounds_beyond_the_float32_range_are_refused(low, high, what):
    state = {"a": Parameter("a", 0.0, low=low, high=high, free=True)}
    for make in (lambda: GridSpace(state, n=3), lambda: UniformSpace(state, 3, key=jax.random.key(0))):
        with pytest.raises(ValueError, match=rf"Space: Parameter 'a' with bounds \[.*\] {what}.*jax_enable_x64"):
            make()


@pytest.mark.parametrize("low, high, n, log", [(1.0, 1.0 + 1e-9, 3, False), (1e6, 1e6 + 0.01, 5, False),
                                               (1.0, 1.0 + 1e-8, 4, True)])
def test_grid_steps_below_float32_resolution_are_refused(low, high, n, log):
    state = {"a": Parameter("a", low, low=low, high=high, free=True)}
    with pytest.raises(ValueError, match=rf"GridSpace: Parameter 'a' with bounds .* over {n} points steps by .* below "
                       "the resolution of float32.*neighbouring points would be equal"):
        GridSpace(state, n=n, log=log)


def test_grid_steps_at_float32_resolution_stay_distinct():
    low = 1.0
    high = float(np.float32(1.0) + 4 * np.spacing(np.float32(2.0)))  # steps of 2 ulp at the top
    space = GridSpace({"a": Parameter("a", low, low=low, high=high, free=True)}, n=5)
    vals = np.array([float(space[i]["a"].value) for i in range(5)])
    assert len(set(vals)) == 5
    GridSpace({"a": Parameter("a", 1.0, low=1.0, high=1.0, free=True)}, n=3)  # one value on purpose: allowed


def test_wide_and_fine_grids_work_in_float64_under_x64():
    script = textwrap.dedent("""
        import numpy as np
        from namedax.spaces import GridSpace, Parameter
        s = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1e39, free=True)}, n=3)
        assert [float(s[i]["a"].value) for i in range(3)] == [0.0, 5e38, 1e39]
        f = GridSpace({"a": Parameter("a", 1.0, low=1.0, high=1.0 + 1e-9, free=True)}, n=3)
        assert len({float(f[i]["a"].value) for i in range(3)}) == 3
        print("ok")
    """)
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
