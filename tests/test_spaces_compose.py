"""Combined spaces (spaces/_compose.py, _gen.ProductGen): products, zips and TrialSpace, against
itertools.product / zip / Python int arithmetic, through the executors, and their fingerprints."""

import builtins
import itertools
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from namedax.execution import ParallelExecution, SequentialExecution
from namedax.spaces import DataSpace, GridSpace, Parameter, ProductSpace, TrialSpace, UniformSpace, ZipSpace


def _grid(na=3, nb=4):
    state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
             "b": Parameter("b", 0.0, low=-1.0, high=2.0, free=True), "dt": 0.5}
    return GridSpace(state, n={"a": na, "b": nb})


def _grid_values(na=3, nb=4):
    return np.linspace(0.0, 1.0, na, dtype=np.float32), np.linspace(-1.0, 2.0, nb, dtype=np.float32)


def _data():
    return DataSpace({"x": jnp.array([10.0, 20.0]), "w": Parameter("w", jnp.ones(2))})


def _uniform(n, name="y", lo=0.0, hi=1.0, key=1):
    return UniformSpace({name: Parameter(name, 0.0, low=lo, high=hi, free=True)}, n, key=jax.random.key(key))


def _ref_uniform(n_points_key, idx, lo=0.0, hi=1.0):
    """UniformSpace's documented point formula, in raw jax: key fold_in(fold_in(key, i >> 32), i & 0xFFFFFFFF)."""
    k = jax.random.fold_in(jax.random.fold_in(jax.random.key(n_points_key), idx >> 32), idx & 0xFFFFFFFF)
    u = float(jax.random.uniform(k, (1,), jnp.float32)[0])
    return lo + (hi - lo) * u


# ---- products ----


def test_product_points_follow_itertools_product():
    g, d = _grid(), _data()
    space = g * d
    assert isinstance(space, ProductSpace)
    assert space.axes == (nx.Axis("a", 3), nx.Axis("b", 4), nx.Axis("data", 2)) and space.N == 24 == len(space)
    av, bv = _grid_values()
    xs = [10.0, 20.0]
    ref = list(itertools.product(range(3), range(4), range(2)))
    got = list(space)
    assert len(got) == len(ref)
    for (ia, ib, ix), (s, p) in builtins.zip(ref, got, strict=True):
        assert float(s["a"]) == av[ia] and float(s["b"]) == bv[ib] and s["dt"] == 0.5
        assert float(p["x"]) == xs[ix]
        np.testing.assert_array_equal(p["w"].value, np.ones(2))
    # negative and numpy indices, the tuple state
    s, p = space[np.int64(-1)]
    assert float(s["a"]) == 1.0 and float(s["b"]) == 2.0 and float(p["x"]) == 20.0
    assert isinstance(space.state, tuple) and space.state[0]["dt"] == 0.5


def test_product_block_equals_host_points_and_meshgrid():
    space = _grid() * TrialSpace(5)
    av, bv = _grid_values()
    ma, mb, mt = (m.reshape(-1) for m in np.meshgrid(av, bv, np.arange(5), indexing="ij"))
    for start, size in [(0, 60), (7, 30), (55, 10)]:  # the last one runs past the end: padding repeats the last
        s, t = space.block(start, size)
        idx = np.minimum(np.arange(start, start + size), 59)
        np.testing.assert_array_equal(np.asarray(s["a"].value), ma[idx])
        np.testing.assert_array_equal(np.asarray(s["b"].value), mb[idx])
        np.testing.assert_array_equal(np.asarray(t), mt[idx])
        assert t.dtype == jnp.int32
    # host point i == device block row i, bitwise
    blk, trials = space.block(0, 60)
    for i in (0, 13, 37, 59):
        s, t = space[i]
        assert int(t) == int(trials[i]) and float(s["b"]) == float(blk["b"].value[i])
    pts, tr = space.points([3, -1])
    np.testing.assert_array_equal(np.asarray(tr), [3, 4])


def test_product_block_under_jit_with_traced_start_and_offset():
    space = _uniform(6) * _grid(2, 3)

    @jax.jit
    def run(space, tok, off):
        u, g = space.block(tok, 8, off)
        return u["y"].value, g["b"].value

    y, b = run(space, space.block_start(5), jnp.int32(3))
    idx = np.arange(8, 16)
    iu, ig = np.divmod(idx, 6)
    _, bv = _grid_values(2, 3)
    np.testing.assert_allclose(np.asarray(y), [_ref_uniform(1, int(j)) for j in iu], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(b), bv[ig % 3])


def test_products_flatten_and_associate():
    g, t, d = _grid(2, 2), TrialSpace(3), _data()
    left, right = (g * t) * d, g * (t * d)
    assert left.axes == right.axes and len(left.spaces) == len(right.spaces) == 3
    for i in range(left.N):
        (s1, t1, p1), (s2, t2, p2) = left[i], right[i]
        assert float(s1["a"]) == float(s2["a"]) and int(t1) == int(t2) and float(p1["x"]) == float(p2["x"])
    assert left.fingerprint() == right.fingerprint()


def test_product_refuses_clashing_axes_and_non_spaces():
    with pytest.raises(ValueError, match=r"'sample' is an axis of both UniformSpace\(N=4.*UniformSpace\(N=5"):
        _ = _uniform(4) * _uniform(5, name="z")
    with pytest.raises(ValueError, match="'a' is an axis of both"):
        _ = _grid() * _grid(2, 2)
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = _grid() * 3
    with pytest.raises(TypeError, match="ProductSpace: every argument must be a space"):
        ProductSpace(_grid(), "trial")
    # renaming through a one-space zip makes two samples combinable
    both = nx.spaces.zip(_uniform(4), name="s1") * _uniform(5, name="z")
    assert both.axes == (nx.Axis("s1", 4), nx.Axis("sample", 5))


def test_product_past_2_to_the_32_points_index_math():
    """N > 2**32 from parts whose own indices cross 32-bit words; nothing materialised."""
    n_u = 3 * 2**31  # the uniform part's index crosses 2**31 and 2**32
    u, t, g = _uniform(n_u, lo=1.0, hi=2.0, key=4), TrialSpace(7), _grid(3, 4)
    space = u * t * g
    assert space.N == n_u * 7 * 12 > 2**34
    av, bv = _grid_values()

    def ref(i):  # the flat index split with Python ints
        rest, ig = divmod(i, 12)
        iu, it = divmod(rest, 7)
        return iu, it, divmod(ig, 4)

    checks = [2**32 * 7 * 12 - 5, (2**31 - 1) * 84 + 80, space.N - 1, 2**33 + 12345]
    for i in checks:
        iu, it, (ia, ib) = ref(i)
        (pu, pt, pg) = space[i]
        assert int(pt) == it and float(pg["a"]) == av[ia] and float(pg["b"]) == bv[ib]
        np.testing.assert_allclose(float(pu["y"]), _ref_uniform(4, iu, 1.0, 2.0), rtol=1e-6)
    # a device block crossing the uniform part's 2**32 boundary (carries through every part)
    start = 2**32 * 84 - 40
    bu, bt, bg = space.block(start, 100)
    for r in (0, 39, 40, 41, 99):
        iu, it, (ia, ib) = ref(start + r)
        assert int(bt[r]) == it and float(bg["a"].value[r]) == av[ia] and float(bg["b"].value[r]) == bv[ib]
        np.testing.assert_allclose(float(bu["y"].value[r]), _ref_uniform(4, iu, 1.0, 2.0), rtol=1e-6)
    # the last three points, then padding that repeats the last point
    bu, bt, bg = space.block(space.N - 3, 6)
    np.testing.assert_array_equal(np.asarray(bt), [6] * 6)
    np.testing.assert_array_equal(np.asarray(bg["b"].value), bv[[1, 2, 3, 3, 3, 3]])
    np.testing.assert_array_equal(np.asarray(bu["y"].value)[2:], [np.asarray(bu["y"].value)[2]] * 4)


@pytest.mark.parametrize("n_u", [5, 2**31 + 3, 2**32 + 3])
def test_uniform_part_wraps_with_carry_for_small_and_large_n(n_u):
    """A uniform part that is not the last: its index wraps (one word for N < 2**31, two words above)."""
    space = TrialSpace(3) * _uniform(n_u, key=2)
    start = n_u - 4  # trial 0, the last four samples, then trial 1 from sample 0
    t, u = space.block(start, 12)
    idx = [start + r for r in range(12)]
    np.testing.assert_array_equal(np.asarray(t), [i // n_u for i in idx])
    np.testing.assert_allclose(np.asarray(u["y"].value), [_ref_uniform(2, i % n_u) for i in idx], rtol=1e-6)


def test_product_slicing_collect_named_and_pickle():
    space = _grid(2, 2) * TrialSpace(3)
    sub = space[2:5]
    assert isinstance(sub, DataSpace) and sub.N == 3
    s, t = sub[0]  # point 2: coordinates (0, 0, 2)
    assert float(s["a"]) == 0.0 and float(s["b"]) == -1.0 and int(t) == 2
    s, t = sub[1]  # point 3: coordinates (0, 1, 0)
    assert float(s["b"]) == 2.0 and int(t) == 0
    s, t = space.collect(n_vmap=5)
    assert s["a"].value.shape == (1, 5, 3) and np.isnan(np.asarray(s["a"].value)[0, -1, -1])
    state, trial = space.named()
    assert state["a"].value.axes == (nx.Axis("a", 2),) and trial.axes == (nx.Axis("trial", 3),)
    back = jax.tree.unflatten(*reversed(jax.tree.flatten(space)))
    assert back.N == space.N and int(back[5][1]) == 2 and back.fingerprint() == space.fingerprint()
    assert pickle.loads(pickle.dumps(space[4]))[0]["b"].name == "b"
    assert int(back.state[1]) == 0 and back.state[0]["dt"] == 0.5  # the state survives a JAX rebuild


# ---- zip ----


def test_zip_pairs_points_like_python_zip():
    g = _grid(2, 3)
    u = _uniform(6)
    z = nx.spaces.zip(g, u, name="pair")
    assert isinstance(z, ZipSpace) and z.axes == (nx.Axis("pair", 6),)
    for (s, p), gs, us in builtins.zip(z, g, u, strict=True):
        assert float(s["b"]) == float(gs["b"]) and float(p["y"]) == float(us["y"])
    s, p = z.block(1, 5)
    av, bv = _grid_values(2, 3)
    np.testing.assert_array_equal(np.asarray(s["a"].value), [av[i // 3] for i in range(1, 6)])
    np.testing.assert_allclose(np.asarray(p["y"].value), [_ref_uniform(1, i) for i in range(1, 6)], rtol=1e-6)
    assert nx.spaces.zip(u, _data() * TrialSpace(3)).axes == (nx.Axis("sample", 6),)  # the first's axis
    named = nx.spaces.zip(u, TrialSpace(6)).named()
    assert named[0]["y"].value.axes == (nx.Axis("sample", 6),) and named[1].axes == (nx.Axis("sample", 6),)


def test_zip_refuses_unequal_lengths_and_unnamed_multi_axis():
    with pytest.raises(ValueError, match=r"same number of points.*GridSpace\(N=12.*UniformSpace\(N=5"):
        nx.spaces.zip(_grid(), _uniform(5))
    with pytest.raises(ValueError, match="has several axes, so the zipped axis needs a name"):
        nx.spaces.zip(_grid(), _uniform(12))
    with pytest.raises(TypeError, match="every argument must be a space"):
        nx.spaces.zip(_grid(), [1, 2])
    with pytest.raises(TypeError, match="`name` must be a non-empty str"):
        nx.spaces.zip(_uniform(3), name=3)


# ---- trials ----


def test_trialspace_points_and_errors():
    t = TrialSpace(6, name="seed")
    assert t.axes == (nx.Axis("seed", 6),) and [int(x) for x in t] == list(range(6))
    np.testing.assert_array_equal(np.asarray(t.block(4, 4)), [4, 5, 5, 5])
    assert t.coords() == {"seed": pytest.approx(np.arange(6))}
    with pytest.raises(ValueError, match="TrialSpace: `n` must be >= 1"):
        TrialSpace(0)
    with pytest.raises(TypeError, match="TrialSpace: `name` must be a non-empty str"):
        TrialSpace(3, name="")


def _noisy(point, scale):
    state, trial = point
    key = jax.random.fold_in(jax.random.key(7), trial)
    return {"y": state["a"] * 10 + state["b"] + scale * jax.random.normal(key), "t": trial}


def _noisy_ref(na=3, nb=4, nt=5, scale=0.1):
    av, bv = _grid_values(na, nb)
    out = np.empty((na, nb, nt), np.float32)
    for ia, ib, it in itertools.product(range(na), range(nb), range(nt)):
        noise = float(jax.random.normal(jax.random.fold_in(jax.random.key(7), it)))
        out[ia, ib, it] = np.float32(av[ia] * 10 + bv[ib]) + np.float32(scale * noise)
    return out


@pytest.mark.parametrize("executor", ["parallel", "sequential"])
def test_product_results_are_a_grid_over_all_axes(executor):
    space = _grid() * TrialSpace(5)
    if executor == "parallel":
        results = ParallelExecution(_noisy, space, 0.1, n_vmap=7).run()
    else:
        results = SequentialExecution(_noisy, space, 0.1).run()
    ref = _noisy_ref()
    named = results.named()
    assert named["y"].axes == (nx.Axis("a", 3), nx.Axis("b", 4), nx.Axis("trial", 5))
    np.testing.assert_allclose(np.asarray(named["y"].array), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(named["t"].array)[1, 2], np.arange(5))
    ds = results.to_xarray()
    assert ds["y"].dims == ("a", "b", "trial")
    av, bv = _grid_values()
    np.testing.assert_array_equal(ds["a"].values, av)
    np.testing.assert_array_equal(ds["trial"].values, np.arange(5))
    np.testing.assert_allclose(ds["y"].sel(a=0.5, b=bv[1]).values, ref[1, 1], rtol=1e-6, atol=1e-6)
    s, t = results.points([13])
    assert int(t[0]) == 3


def test_parallel_over_product_does_not_depend_on_n_vmap_and_matches_a_loop():
    space = _uniform(10, lo=-1.0, hi=1.0) * TrialSpace(4) * _data()

    def model(point):
        u, trial, d = point
        return u["y"] * d["x"] + trial

    ref = np.asarray([float(model(p)) for p in space], np.float32)
    for n_vmap in (1, 3, 16):
        out = ParallelExecution(model, space, n_vmap=n_vmap).run()
        np.testing.assert_allclose(out[:], ref, rtol=1e-6)
    assert out.named().axes == (nx.Axis("sample", 10), nx.Axis("trial", 4), nx.Axis("data", 2))
    zipped = ParallelExecution(lambda p: p[0]["y"] + p[1], nx.spaces.zip(_uniform(6), TrialSpace(6))).run()
    np.testing.assert_allclose(zipped[:], [_ref_uniform(1, i) + i for i in range(6)], rtol=1e-6)
    assert zipped.to_xarray().dims == ("sample",)


# ---- fingerprints ----


def test_combined_spaces_digest_distinctly():
    g, t, u = _grid(), TrialSpace(5), _uniform(5)
    prints = {
        "g*t": (g * t).fingerprint(),
        "t*g": (t * g).fingerprint(),
        "g*t6": (g * TrialSpace(6)).fingerprint(),
        "g*seed": (g * TrialSpace(5, name="seed")).fingerprint(),
        "g*zip": (g * nx.spaces.zip(t, u)).fingerprint(),
        "g*zip2": (g * nx.spaces.zip(u, t)).fingerprint(),
        "g*u": (g * u).fingerprint(),
        "g*u(key)": (g * _uniform(5, key=9)).fingerprint(),
        "zip(t,u)": nx.spaces.zip(t, u).fingerprint(),
        "zip(t,u) renamed": nx.spaces.zip(t, u, name="x").fingerprint(),
        "t": t.fingerprint(),
    }
    assert len(set(prints.values())) == len(prints), prints
    assert (_grid() * TrialSpace(5)).fingerprint() == prints["g*t"]
    parts = (g * _data())._digests()  # the same named parts as any space: structure, points, leaves by path
    assert set(parts) == {"structure", "points", "[0]['a']", "[0]['b']", "[0]['dt']", "[1]['x']", "[1]['w']"}


def _leaf_sum(point):
    return sum(jax.tree.leaves(point))


def test_checkpoint_of_a_product_is_refused_for_another_product(tmp_path):
    ck = tmp_path / "ck"
    u, v = _uniform(4, key=1), nx.spaces.zip(_uniform(3, name="z", key=2), name="other")
    first = ParallelExecution(_leaf_sum, u * v, checkpoint_dir=ck).run()
    again = ParallelExecution(_leaf_sum, u * v, checkpoint_dir=ck).run()  # resumed: the same product is accepted
    np.testing.assert_array_equal(first[:], again[:])
    for other, what in [(v * u, "its kind, size, axes"),
                        (u * nx.spaces.zip(_uniform(3, name="z", key=5), name="other"), "how its points are made")]:
        with pytest.raises(ValueError, match="holds a sweep of a different space.*" + what):
            ParallelExecution(_leaf_sum, other, checkpoint_dir=ck).run()


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4), data=st.data())
def test_product_of_trials_blocks_match_python_divmod(sizes, data):
    """Property: block rows of a product of TrialSpaces are the mixed-radix digits of the flat index."""
    space = ProductSpace(*[TrialSpace(n, name=f"t{k}") for k, n in enumerate(sizes)])
    n = space.N
    start = data.draw(st.integers(0, n - 1))
    size = data.draw(st.integers(1, 2 * n + 3))
    got = np.stack([np.asarray(c) for c in space.block(start, size)], axis=1)
    ref = np.asarray([np.unravel_index(min(i, n - 1), sizes) for i in range(start, start + size)])
    np.testing.assert_array_equal(got, ref)
    assert [int(c) for c in space[start]] == list(ref[0])
