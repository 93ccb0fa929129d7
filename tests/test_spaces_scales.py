"""Log-scale Parameters and quasi-random UniformSpaces, against numpy.geomspace, raw jax.random and
scipy.stats.qmc directly with the same seed."""

import contextlib
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution
from namedax.spaces import GridSpace, Parameter, UniformSpace


def _state(scale_b="log"):
    return {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            "b": Parameter("b", 1.0, low=1e-3, high=10.0, free=True, scale=scale_b),
            "k": Parameter("k", 2.0), "dt": 0.1}


# ---- Parameter(scale=...) ----


def test_parameter_scale_field_and_errors():
    p = Parameter("k", 1.0, low=0.1, high=10.0, free=True, scale="log")
    assert p.scale == "log" and Parameter("k", 1.0).scale == "linear"
    assert "scale='log'" in repr(p) and "scale" not in repr(Parameter("k", 1.0))
    assert pickle.loads(pickle.dumps(p)).scale == "log"
    assert jax.tree.map(lambda x: x * 2, p).scale == "log"
    assert p.replace(value=3.0).scale == "log" and p.replace(scale="linear").scale == "linear"
    # linear Parameters keep their PyTree structure (the fingerprints of existing checkpoints)
    assert jax.tree.structure(Parameter("k", 1.0)) == jax.tree.structure(Parameter("k", 2.0, scale="linear"))
    assert jax.tree.structure(p) != jax.tree.structure(p.replace(scale="linear"))
    with pytest.raises(ValueError, match=r"Parameter 'k': scale='log' needs `low` > 0, got low=0.0"):
        Parameter("k", 1.0, low=0.0, high=1.0, scale="log")
    with pytest.raises(ValueError, match="`scale` must be 'linear' or 'log', got 'ln'"):
        Parameter("k", 1.0, scale="ln")


def test_log_grid_is_geomspace():
    space = GridSpace(_state(), n={"a": 2, "b": 7})
    np.testing.assert_allclose(space.coords()["b"], np.geomspace(1e-3, 10.0, 7), rtol=2e-6)
    assert space.coords()["b"][-1] == np.float32(10.0) and space.coords()["b"][0] == np.float32(1e-3)
    np.testing.assert_array_equal(space.coords()["a"], np.float32([0.0, 1.0]))
    # host points, device blocks and GridSpace(log=...) agree bitwise
    blk = space.block(0, 14)
    for i in (0, 3, 9, 13):
        assert float(space[i]["b"]) == float(blk["b"].value[i])
    same = GridSpace(_state("linear"), n={"a": 2, "b": 7}, log="b")
    np.testing.assert_array_equal(np.asarray(same.block(0, 14)["b"].value), np.asarray(blk["b"].value))
    assert "(log)" in repr(space)


def test_log_uniform_against_raw_jax_random():
    key = jax.random.key(3)
    space = UniformSpace(_state(), 500, key=key)
    blk = space.block(0, 500)
    ref_a, ref_b = [], []
    for i in range(500):
        u = jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, 0), i), (2,), jnp.float32)
        ref_a.append(float(u[0]))
        ref_b.append(1e-3 * (10.0 / 1e-3) ** float(u[1]))
    np.testing.assert_allclose(np.asarray(blk["a"].value), ref_a, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(blk["b"].value), ref_b, rtol=1e-5)
    b = np.asarray(blk["b"].value)
    assert b.min() >= np.float32(1e-3) and b.max() <= np.float32(10.0)
    # log-uniform: about a quarter of the points per decade of the four
    counts = np.histogram(np.log10(b), bins=[-3, -2, -1, 0, 1])[0]
    assert counts.min() > 90
    assert float(space[123]["b"]) == float(blk["b"].value[123])
    assert "(log)" in repr(space)


def test_scale_and_method_defaults_do_not_change_fingerprints():
    """The defaults (linear scale, method="random") fingerprint as the spaces that never name them;
    a log scale or another method is another space."""
    def state(scale=None):
        b = (Parameter("b", 1.0, low=1.0, high=10.0, free=True) if scale is None
             else Parameter("b", 1.0, low=1.0, high=10.0, free=True, scale=scale))
        return {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True), "b": b, "k": Parameter("k", 2.0), "dt": 0.1}

    assert GridSpace(state(), n=4).fingerprint() == GridSpace(state("linear"), n=4).fingerprint()
    assert GridSpace(state(), n=4).fingerprint() != GridSpace(state("log"), n=4).fingerprint()
    key = jax.random.key(3)
    plain = UniformSpace(state(), 100, key=key).fingerprint()
    assert plain == UniformSpace(state("linear"), 100, key=key, method="random").fingerprint()
    assert plain != UniformSpace(state(), 100, key=key, method="halton").fingerprint()
    assert plain != UniformSpace(state("log"), 100, key=key).fingerprint()


# ---- quasi-random ----


def _scipy_ref(method, d, n, key, lows, highs):
    qmc = pytest.importorskip("scipy.stats.qmc")
    cls = {"sobol": qmc.Sobol, "halton": qmc.Halton, "lhs": qmc.LatinHypercube}[method]
    engine = cls(d, rng=np.random.default_rng(np.asarray(jax.random.key_data(key))))
    with pytest.warns(UserWarning) if method == "sobol" and n & (n - 1) else contextlib.nullcontext():
        u = engine.random(n)  # scipy warns that a Sobol n not a power of 2 loses balance
    return qmc.scale(u, lows, highs)


@pytest.mark.parametrize("method", ["sobol", "halton", "lhs"])
@pytest.mark.parametrize("n", [64, 100])
def test_qmc_points_are_scipys(method, n):
    pytest.importorskip("scipy")
    key = jax.random.key(5)
    state = _state("linear")
    space = UniformSpace(state, n, key=key, method=method)
    assert space.method == method and space.axes[0].name == "sample" and space.key == key
    ref = _scipy_ref(method, 2, n, key, [0.0, 1e-3], [1.0, 10.0]).astype(np.float32)
    blk = space.block(0, n)
    np.testing.assert_array_equal(np.asarray(blk["a"].value), ref[:, 0])
    np.testing.assert_array_equal(np.asarray(blk["b"].value), ref[:, 1])
    for i in (0, n // 2, n - 1):  # host indexing, O(1) into the held sample
        assert float(space[i]["b"]) == ref[i, 1]
    assert space[3]["k"].value == 2.0 and space[3]["dt"] == 0.1
    # reproducible from the key; another key, other points
    again = UniformSpace(state, n, key=jax.random.key(5), method=method)
    np.testing.assert_array_equal(np.asarray(again.block(0, n)["a"].value), ref[:, 0])
    other = UniformSpace(state, n, key=jax.random.key(6), method=method)
    assert not np.array_equal(np.asarray(other.block(0, n)["a"].value), ref[:, 0])


def test_qmc_log_scale_and_sweep():
    pytest.importorskip("scipy")
    key = jax.random.key(2)
    space = UniformSpace(_state(), 128, key=key, method="sobol")
    u = _scipy_ref("sobol", 2, 128, key, [0.0, 0.0], [1.0, 1.0])
    ref_b = (1e-3 * (10.0 / 1e-3) ** u[:, 1]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(space.block(0, 128)["b"].value), ref_b, rtol=1e-6)
    out = ParallelExecution(lambda s: s["a"] * s["b"], space, n_vmap=16).run()
    np.testing.assert_allclose(out[:], u[:, 0].astype(np.float32) * ref_b, rtol=1e-5)
    assert out.to_xarray().dims == ("sample",)


def test_qmc_errors_and_fingerprints():
    pytest.importorskip("scipy")
    state = _state("linear")
    with pytest.raises(ValueError, match=r"UniformSpace: `method` must be one of \['random', 'sobol'"):
        UniformSpace(state, 10, method="grid")
    with pytest.raises(ValueError, match=r"method='sobol' holds its 100000000 points x 2 free Parameters"):
        UniformSpace(state, 10**8, method="sobol")  # refused before drawing anything
    prints = {(m, k): UniformSpace(state, 64, key=jax.random.key(k), method=m).fingerprint()
              for m in ("random", "sobol", "halton", "lhs") for k in (0, 1)}
    prints["log"] = UniformSpace(_state(), 64, key=jax.random.key(0)).fingerprint()
    prints["sobol log"] = UniformSpace(_state(), 64, key=jax.random.key(0), method="sobol").fingerprint()
    assert len(set(prints.values())) == len(prints)
    assert UniformSpace(state, 64, key=jax.random.key(1), method="lhs").fingerprint() == prints[("lhs", 1)]
    assert "method='halton'" in repr(UniformSpace(state, 8, method="halton"))
