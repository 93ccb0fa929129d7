"""namedax.execution: ParallelExecution / SequentialExecution / Results against numpy references.

In this process JAX has one CPU device. Multi-device checks (4 forced CPU devices) and the SIGKILL
resume run in subprocesses (the device count is fixed when jax is imported); the two-process
jax.distributed run is in test_execution_multiprocess.py.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import run_with_devices
from namedax.execution import ModelError, ParallelExecution, Results, SequentialExecution
from namedax.execution import _engine as _e
from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace

ROOT = pathlib.Path(__file__).resolve().parent.parent


def P(name, low, high):
    return Parameter(name, 0.0, low=low, high=high, free=True)


def grid_ref(lows, highs, ns):
    """The grid's points in flat (row-major) order, from numpy alone."""
    axes = [np.linspace(lo, hi, n, dtype=np.float32) for lo, hi, n in zip(lows, highs, ns, strict=True)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return [m.reshape(-1) for m in mesh]


STATE = {"param1": P("param1", 0.0, 1.0), "param2": P("param2", -1.0, 1.0)}


def simulate(state):
    return state["param1"] * state["param2"]


# ---------------------------------------------------------------------------------------------
# The reference example
# ---------------------------------------------------------------------------------------------


def test_reference_example_against_numpy():
    space = GridSpace(STATE, n=10)
    executor = ParallelExecution(model=simulate, statespace=space, n_vmap=5, n_pmap=jax.device_count())
    results = executor.run()
    assert isinstance(results, Results)
    p1, p2 = grid_ref([0.0, -1.0], [1.0, 1.0], [10, 10])
    ref = p1 * p2
    assert len(results) == 100
    np.testing.assert_allclose(results[0], ref[0], rtol=1e-6)
    all_results = list(results)
    assert len(all_results) == 100
    np.testing.assert_allclose(np.array(all_results), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[10:20], ref[10:20], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[-3], ref[-3], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[np.int64(42)], ref[42], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[::7], ref[::7], rtol=1e-6, atol=1e-7)
    assert results.space is space


def test_named_grid_shapes_and_values():
    state = {"a": P("a", 0.0, 1.0), "fixed": 3.0, "b": P("b", 1.0, 2.0), "c": P("c", -1.0, 0.0)}
    ns = {"a": 3, "b": 4, "c": 2}
    space = GridSpace(state, n=ns)
    out = ParallelExecution(lambda s: s["a"] + 10 * s["b"] + 100 * s["c"] + s["fixed"], space).run().named()
    assert out.axes == (nx.Axis("a", 3), nx.Axis("b", 4), nx.Axis("c", 2))
    a, b, c = np.meshgrid(*[np.linspace(lo, hi, n, dtype=np.float32) for lo, hi, n in
                            [(0, 1, 3), (1, 2, 4), (-1, 0, 2)]], indexing="ij")
    np.testing.assert_allclose(np.asarray(out.array), a + 10 * b + 100 * c + 3.0, rtol=1e-6)


@pytest.mark.parametrize("n_vmap", [1, 3, 7, 8, 100, None])
def test_results_do_not_depend_on_n_vmap(n_vmap):
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -2.0, 2.0)}, n={"a": 5, "b": 7})  # 35: a prime times 5

    def model(s):
        return jax.lax.fori_loop(0, 5, lambda _, x: x + 0.1 * (s["a"] - x * s["b"]), 0.0)

    got = ParallelExecution(model, space, n_vmap=n_vmap).run()[:]
    a, b = grid_ref([0.0, -2.0], [1.0, 2.0], [5, 7])
    x = np.zeros_like(a)
    for _ in range(5):
        x = x + np.float32(0.1) * (a - x * b)
    np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-6)
    base = ParallelExecution(model, space, n_vmap=1).run()[:]
    np.testing.assert_array_equal(got, base)  # bitwise, whatever the chunking


def test_extra_args_kwargs_dict_and_named_outputs():
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 4, "b": 3})
    Time = nx.Axis("time", 5)
    w = jnp.arange(3.0)

    def model(s, w, scale, *, shift=0.0, label="x"):
        return {
            "x": (s["a"] * s["b"] + w.sum()) * scale + shift,
            "trace": nx.arange(Time) * s["a"],
            "vec": jnp.stack([s["a"], s["b"], s["a"] - s["b"]]),
            "label": label,
        }

    res = ParallelExecution(model, space, w, 2.0, shift=1.0, label="run", n_vmap=5).run()
    a, b = grid_ref([0.0, -1.0], [1.0, 1.0], [4, 3])
    for i in (0, 5, -1):
        r = res[i]
        assert r["label"] == "run"
        np.testing.assert_allclose(r["x"], (a[i] * b[i] + 3.0) * 2.0 + 1.0, rtol=1e-6)
        assert isinstance(r["trace"], nx.NamedArray) and r["trace"].axes == (Time,)
        np.testing.assert_allclose(np.asarray(r["trace"].array), np.arange(5) * a[i], rtol=1e-6)
        np.testing.assert_allclose(r["vec"], [a[i], b[i], a[i] - b[i]], rtol=1e-6)
    sl = res[2:6]
    assert sl["trace"].axes == (nx.Axis("point", 4), Time)
    np.testing.assert_allclose(sl["vec"][:, 1], b[2:6])
    named = res.named()
    assert named["x"].axes == space.axes
    assert named["trace"].axes == space.axes + (Time,)
    assert named["vec"].axes == space.axes + (nx.Axis("dim_0", 3),)
    assert named["label"] == "run"
    np.testing.assert_allclose(np.asarray(named["vec"].array)[..., 2], (a - b).reshape(4, 3), rtol=1e-6)
    # the same through SequentialExecution
    seq = SequentialExecution(model, space, w, 2.0, shift=1.0, label="run").run()
    assert seq[3]["label"] == "run"
    for k in ("x", "vec"):
        np.testing.assert_allclose(seq[:][k], res[:][k], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(seq[:]["trace"].array), np.asarray(res[:]["trace"].array), rtol=1e-6)



def test_static_arguments_equal_by_value_but_not_the_same_compile_apart():
    # Python scalars are compiled into the program; 0.0 == -0.0 (and 1 == True), but they are
    # different arguments: a cached program for one must not serve the other.
    space = GridSpace({"a": P("a", 1.0, 2.0)}, n=2)

    def model(s, k):
        return s["a"] / k

    with np.errstate(divide="ignore"):
        ref_pos, ref_neg = np.float32([1.0, 2.0]) / np.float32(0.0), np.float32([1.0, 2.0]) / np.float32(-0.0)
    np.testing.assert_array_equal(ParallelExecution(model, space, 0.0).run()[:], ref_pos)
    np.testing.assert_array_equal(ParallelExecution(model, space, -0.0).run()[:], ref_neg)
    np.testing.assert_array_equal(SequentialExecution(model, space, -0.0).run()[:], ref_neg)
    np.testing.assert_array_equal(SequentialExecution(model, space, 0.0).run()[:], ref_pos)

def test_uniform_and_data_spaces_against_pointwise_model():
    state = {"a": P("a", 0.0, 1.0), "b": P("b", 10.0, 20.0), "k": jnp.array([1.0, 2.0])}

    def model(s):
        return s["a"] * s["k"] + s["b"]

    space = UniformSpace(state, 29, key=jax.random.key(7))
    res = ParallelExecution(model, space, n_vmap=4).run()
    ref = np.stack([np.asarray(model(p)) for p in space])
    np.testing.assert_allclose(res[:], ref, rtol=1e-6)
    assert res.named().axes == (nx.Axis("sample", 29), nx.Axis("dim_0", 2))

    data = DataSpace({"x": np.arange(12.0, dtype=np.float32).reshape(6, 2), "y": np.arange(6, dtype=np.int32),
                      "c": Parameter("c", 2.0)})
    dres = ParallelExecution(lambda s: s["x"].sum() * s["y"] + s["c"], data, n_vmap=4).run()
    np.testing.assert_allclose(dres[:], np.arange(12.0).reshape(6, 2).sum(1) * np.arange(6) + 2.0)
    assert dres.named().axes == (nx.Axis("data", 6),)


def test_padding_never_reaches_the_model():
    # a model that fails loudly on anything outside the space: padding repeats the last real point
    space = GridSpace({"a": P("a", 1.0, 2.0)}, n=7)

    def model(s):
        return eqx.error_if(s["a"], (s["a"] < 1.0) | (s["a"] > 2.0) | jnp.isnan(s["a"]), "not a point of the space")

    res = ParallelExecution(model, space, n_vmap=4).run()
    np.testing.assert_allclose(res[:], np.linspace(1, 2, 7, dtype=np.float32))


def test_explicit_n_vmap_is_honoured_and_auto_rule():
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=50)
    _e._CACHE.clear()
    ParallelExecution(simulate_a, space, n_vmap=6).run()
    assert {k[2] for k in _e._CACHE if k[0] == "sweep"} == {6}
    assert _e.auto_n_vmap(10**6, 1, 4, "cpu") == 1024
    assert _e.auto_n_vmap(1500, 1, 4, "cpu") == 750  # two equal chunks, not 1024 + padding
    assert _e.auto_n_vmap(50, 4, 4, "cpu") == 13
    assert _e.auto_n_vmap(2**20, 1, 4, "gpu") == 2**14
    assert _e.auto_n_vmap(10**6, 1, 4, "gpu") == 16130  # 62 equal chunks
    assert _e.auto_n_vmap(10**6, 1, 2**20, "cpu") == 16  # 16 MB of outputs per chunk at most


def simulate_a(s):
    return s["a"] * 2


def test_sequential_matches_parallel_and_runs_untraceable_models():
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=4)

    def smooth(s):
        return jnp.sin(s["a"]) * s["b"]

    np.testing.assert_allclose(SequentialExecution(smooth, space).run()[:], ParallelExecution(smooth, space).run()[:],
                               rtol=1e-6)

    def branchy(s, t):
        if float(s["a"]) > 0.5:
            return s["a"] * t
        return -s["b"]

    res = SequentialExecution(branchy, space, 3.0).run()
    a, b = grid_ref([0, 0], [1, 1], [4, 4])
    np.testing.assert_allclose(res[:], np.where(a > 0.5, a * 3.0, -b), rtol=1e-6)



def test_sequential_untraceable_model_returning_python_numbers():
    # A model run without jit may compute with Python floats (math, float()): its numbers are
    # outputs that change from point to point, not a structure that must stay the same.
    import math

    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=3)
    a = np.linspace(0.0, 1.0, 3)

    res = SequentialExecution(lambda s: math.sin(float(s["a"])), space).run()
    np.testing.assert_allclose(res[:], np.sin(a), rtol=1e-6)
    res = SequentialExecution(lambda s: {"v": float(s["a"]) * 2, "big": float(s["a"]) > 0.4, "w": jnp.ones(2),
                                         "label": "run"}, space).run()
    np.testing.assert_allclose(res[:]["v"], a * 2)
    np.testing.assert_array_equal(res[:]["big"], a > 0.4)
    assert res[1]["label"] == "run"
    assert res.named()["v"].axes == (nx.Axis("a", 3),)

def test_module_model_with_array_fields():
    class Affine(eqx.Module):
        w: jax.Array
        b: float

        def __call__(self, s):
            return self.w * s["a"] + self.b

    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=5)
    res = ParallelExecution(Affine(jnp.array([1.0, -2.0]), 0.5), space, n_vmap=2).run()
    a = np.linspace(0, 1, 5, dtype=np.float32)
    np.testing.assert_allclose(res[:], a[:, None] * np.array([1.0, -2.0]) + 0.5, rtol=1e-6)


def test_indices_past_2_to_the_31():
    # 4.9e9 points: the engine's blocks near the end of the space (its host loop is plain Python ints)
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=70_000)
    dyn, static = _e.split(lambda s: s["a"] * 1000 + s["b"], (), {})
    layout, arr = _e.output_layout(static, space, dyn)
    sweep = _e.Sweep("test", static, space, dyn, arr, 4, 2, tuple(jax.devices()[:1]))
    got = {}
    sweep.run([(space.N - 13, space.N), (2**32 + 5, 2**32 + 9)],
              lambda start, count, host: got.update({start + k: host[0][k] for k in range(count)}))
    idx = sorted(got)
    assert idx == list(range(2**32 + 5, 2**32 + 9)) + list(range(space.N - 13, space.N))
    pts = space.points(idx)
    ref = np.asarray(pts["a"].value) * 1000 + np.asarray(pts["b"].value)
    np.testing.assert_allclose([got[i] for i in idx], ref, rtol=1e-7)


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


# ---------------------------------------------------------------------------------------------
# Fast grid blocks equal the space's own blocks, bitwise
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(ns=st.lists(st.sampled_from([1, 2, 3, 7]), min_size=1, max_size=3), size=st.sampled_from([1, 5, 64]),
       start=st.integers(0, 400), offset=st.integers(0, 300))
def test_engine_grid_block_equals_space_block(ns, size, start, offset):
    state = {f"p{k}": P(f"p{k}", -1.0 + k, 2.0 + k) for k in range(len(ns))}
    space = GridSpace(state, n={f"p{k}": n for k, n in enumerate(ns)})
    tok = space.block_start(start)
    fast = jax.jit(lambda sp, t, o: _e.block(sp, t, size, o))(space, tok, np.int32(offset))
    ref = jax.jit(lambda sp, t, o: sp.block(t, size, o))(space, tok, np.int32(offset))
    for x, y in zip(jax.tree.leaves(fast), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ---------------------------------------------------------------------------------------------
# xarray
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_e, "_interactive", lambda: True)
    ParallelExecution(simulate, GridSpace(STATE, n=6), progress=True).run()
    err = capsys.readouterr().err
    assert "100%|" in err and "36.0/36.0" in err and "pt/s" in err
    ParallelExecution(simulate, GridSpace(STATE, n=6), progress=False).run()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_bad_inputs():
    space = GridSpace(STATE, n=3)
    with pytest.raises(TypeError, match="`model` must be callable"):
        ParallelExecution(3, space)
    with pytest.raises(TypeError, match="`statespace` must be a space"):
        ParallelExecution(simulate, {"a": 1})
    with pytest.raises(ValueError, match=r"`n_vmap`.*got 0; 1 available device: \[CpuDevice\(id=0\)\]"):
        ParallelExecution(simulate, space, n_vmap=0)
    with pytest.raises(TypeError, match="`n_vmap` must be an int or None, got float"):
        ParallelExecution(simulate, space, n_vmap=2.0)
    with pytest.raises(TypeError, match="`n_vmap` must be an int or None"):
        ParallelExecution(simulate, space, n_vmap=True)
    with pytest.raises(ValueError, match=r"`n_pmap`.*must be in \[1, 1\], got 2; 1 available device: \[CpuDevice"):
        ParallelExecution(simulate, space, n_pmap=2)
    with pytest.raises(ValueError, match=r"`n_pmap`.*got 0"):
        ParallelExecution(simulate, space, n_pmap=0)
    with pytest.raises(TypeError, match="`checkpoint_dir` must be a path"):
        ParallelExecution(simulate, space, checkpoint_dir=3)
    with pytest.raises(TypeError, match="`progress` must be a bool"):
        ParallelExecution(simulate, space, progress="yes")
    with pytest.raises(TypeError, match="`model` must be callable"):
        SequentialExecution(None, space)
    with pytest.raises(TypeError, match="`statespace` must be a space"):
        SequentialExecution(simulate, [1, 2])


def test_model_errors_name_the_point():
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 4, "b": 3})

    def raises(s):
        raise ValueError("boom")

    for Ex in (ParallelExecution, SequentialExecution):
        with pytest.raises(ModelError, match=r"the model raised on point 0 \(a=0, b=-1\): ValueError: boom") as ei:
            Ex(raises, space).run()
        assert ei.value.point == 0 and isinstance(ei.value.__cause__, ValueError)

    def branchy(s):
        return s["a"] if s["a"] > 0.5 else -s["a"]

    with pytest.raises(ModelError, match="fails when traced by jax.vmap / jax.jit: TracerBoolConversionError"):
        ParallelExecution(branchy, space).run()

    def runtime(s):  # raises at run time on one point only: found by bisection
        return eqx.error_if(s["a"] * 1.0, (s["a"] > 0.6) & (s["b"] > 0.9), "too big")

    with pytest.raises(ModelError, match=r"failed on point 8 \(a=0.666667, b=1\): too big") as ei:
        ParallelExecution(runtime, space, n_vmap=2).run()
    assert ei.value.point == 8
    with pytest.raises(ModelError, match=r"failed on point 8 \(a=0.666667, b=1\): too big"):
        SequentialExecution(runtime, space).run()

    def inconsistent(s):
        return {"x": s["a"]} if float(s["a"]) > 0.5 else s["a"]

    with pytest.raises(ModelError, match=r"different structure on point 6 \(a=0.666667, b=-1\) than on point 0"):
        SequentialExecution(inconsistent, space).run()

    def shapes(s):
        return jnp.zeros(2 if float(s["b"]) > 0.5 else 3)

    with pytest.raises(ModelError, match=r"different structure on point 2 \(a=0, b=1\)"):
        SequentialExecution(shapes, space).run()


# ---------------------------------------------------------------------------------------------
# Checkpoints (in process; the SIGKILL run is below)
# ---------------------------------------------------------------------------------------------


def ck_model(s, w):
    return {"x": s["a"] * w, "y": jnp.stack([s["b"], s["a"]])}


def test_checkpoint_resume_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: many blocks
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 9, "b": 7})
    d = tmp_path / "ck"
    full = ParallelExecution(ck_model, space, 2.0, n_vmap=4, checkpoint_dir=d).run()
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    assert len(blocks) == 16 and (d / "manifest.json").exists()  # 63 points in chunks of 4
    ref = ParallelExecution(ck_model, space, 2.0, n_vmap=4).run()
    for x, y in zip(jax.tree.leaves(full[:]), jax.tree.leaves(ref[:]), strict=True):
        np.testing.assert_array_equal(x, y)
    # drop some blocks: only they are recomputed, and the results are the same
    for f in blocks[3:7] + blocks[-1:]:
        os.unlink(d / f)
    kept = {f: os.stat(d / f).st_mtime_ns for f in os.listdir(d) if f.startswith("block-")}
    (d / ".tmp-left-by-a-killed-run.npz").write_bytes(b"partial")
    again = ParallelExecution(ck_model, space, 2.0, n_vmap=4, checkpoint_dir=d).run()
    for x, y in zip(jax.tree.leaves(again[:]), jax.tree.leaves(ref[:]), strict=True):
        np.testing.assert_array_equal(x, y)
    assert all(os.stat(d / f).st_mtime_ns == t for f, t in kept.items())
    assert sorted(f for f in os.listdir(d) if f.startswith("block-")) == blocks
    assert not any(f.startswith(".tmp-") for f in os.listdir(d))
    # a finished checkpoint is loaded, nothing is computed
    loaded = ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()
    np.testing.assert_array_equal(loaded[:]["x"], ref[:]["x"])
    # refusals: another space, another output structure, other arguments
    with pytest.raises(ValueError, match="holds a sweep of a different space"):
        ParallelExecution(ck_model, GridSpace(space.state, n=5), 2.0, checkpoint_dir=d).run()
    with pytest.raises(ValueError, match="holds outputs of another structure"):
        ParallelExecution(lambda s, w: s["a"] * w, space, 2.0, checkpoint_dir=d).run()
    with pytest.raises(ValueError, match=r"same model '.*ck_model' with other arguments \(args\[0\] differs\)"):
        ParallelExecution(ck_model, space, jnp.float32(3.0), checkpoint_dir=d).run()
    # not a directory / not a checkpoint
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        ParallelExecution(ck_model, space, 2.0, checkpoint_dir=f).run()
    other = tmp_path / "other"
    other.mkdir()
    (other / blocks[0]).write_bytes(b"")
    with pytest.raises(ValueError, match="holds block files but no manifest.json"):
        ParallelExecution(ck_model, space, 2.0, checkpoint_dir=str(other)).run()


def kw_model(s, w, *, scale=1.0, shift=0.0):
    return s["a"] * w * scale + shift


def kw_other(s, w):
    return s["a"] + w


def test_checkpoint_refusal_says_which_arguments_differ(tmp_path):
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=4)
    d = tmp_path / "ck"
    ParallelExecution(kw_model, space, 2.0, scale=jnp.float32(3.0), checkpoint_dir=d).run()
    man = json.loads((d / "manifest.json").read_text())
    assert len(man["argument_digests"]["args"]) == 1 and list(man["argument_digests"]["kwargs"]) == ["scale"]
    cases = {
        r"\(args\[0\] differs\)": ((jnp.float32(2.5),), {"scale": jnp.float32(3.0)}),
        r"\(kwargs\['scale'\] differs\)": ((2.0,), {"scale": jnp.float32(4.0)}),
        r"\(args\[0\] differs, keyword 'scale' was passed then, not now\)": ((1.0,), {}),
        r"\(keyword 'shift' was not passed then\)": ((2.0,), {"scale": jnp.float32(3.0), "shift": 1.0}),
        r"\(1 positional arguments then, 0 now, keyword 'w' was not passed then\)": (
            (), {"w": 2.0, "scale": jnp.float32(3.0)}),
    }
    for msg, (args, kwargs) in cases.items():
        with pytest.raises(ValueError, match=r"sweep of the same model '.*kw_model' with other arguments " + msg):
            ParallelExecution(kw_model, space, *args, checkpoint_dir=d, **kwargs).run()
    # the same arguments resume
    ParallelExecution(kw_model, space, 2.0, scale=jnp.float32(3.0), checkpoint_dir=d).run()
    # another model: named as such, without talking of arguments
    with pytest.raises(ValueError, match=r"holds a sweep of another model \('.*kw_model', this run '.*kw_other'\)"):
        ParallelExecution(kw_other, space, 2.0, checkpoint_dir=d).run()
    # a manifest of the first format (no code or per-argument digests): refused by its format
    man["format"] = "namedax-sweep/1"
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match=r"manifest of format 'namedax-sweep/1', not 'namedax-sweep/2'"):
        ParallelExecution(kw_model, space, 2.0, scale=jnp.float32(3.0), checkpoint_dir=d).run()


def test_executor_option_names_are_never_passed_to_the_model():
    # documented: n_vmap / n_pmap / checkpoint_dir / progress always go to the executor; a model
    # keyword of that name must be bound first (functools.partial)
    import functools

    def model(s, progress=1.0, n_vmap=1.0):
        return s["a"] * progress + n_vmap

    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=3)
    ref = np.array([model({"a": v}) for v in np.linspace(0.0, 1.0, 3)], np.float32)
    for ex in (ParallelExecution(model, space, progress=False, n_vmap=2),
               SequentialExecution(model, space, progress=False)):
        np.testing.assert_allclose(ex.run()[:], ref)  # the model got its defaults
    bound = functools.partial(model, progress=10.0, n_vmap=5.0)
    want = np.array([bound({"a": v}) for v in np.linspace(0.0, 1.0, 3)], np.float32)
    np.testing.assert_allclose(ParallelExecution(bound, space, progress=False).run()[:], want)
    np.testing.assert_allclose(SequentialExecution(bound, space, progress=False).run()[:], want)


def test_checkpoint_refuses_another_model_of_the_same_name(tmp_path):
    # A closure over another constant, or a function of the same name with another body (a notebook
    # cell run again after an edit), is another model: resuming must refuse, never return the old
    # sweep's outputs. References: the formulas by hand, with numpy.
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=5)
    a = np.linspace(0.0, 1.0, 5, dtype=np.float32)

    def scaled(c):
        return lambda s: s["a"] * c

    d = tmp_path / "closure"
    np.testing.assert_allclose(ParallelExecution(scaled(2.0), space, checkpoint_dir=d).run()[:], a * 2.0)
    with pytest.raises(ValueError, match="another model"):
        ParallelExecution(scaled(3.0), space, checkpoint_dir=d).run()
    np.testing.assert_allclose(ParallelExecution(scaled(2.0), space, checkpoint_dir=d).run()[:], a * 2.0)

    d = tmp_path / "edited"

    def model(s):
        return s["a"] + 1.0

    np.testing.assert_allclose(ParallelExecution(model, space, checkpoint_dir=d).run()[:], a + 1.0)

    def model(s):  # noqa: F811  (the same name, another body)
        return s["a"] - 1.0

    with pytest.raises(ValueError, match="another model"):
        ParallelExecution(model, space, checkpoint_dir=d).run()

    # a helper the model calls, edited: another model too
    d = tmp_path / "helper"
    helper = {"f": lambda x: x * 10.0}

    def outer(s):
        return helper["f"](s["a"])

    np.testing.assert_allclose(ParallelExecution(outer, space, checkpoint_dir=d).run()[:], a * 10.0)
    helper["f"] = lambda x: x * 20.0
    with pytest.raises(ValueError, match="another model"):
        ParallelExecution(outer, space, checkpoint_dir=d).run()


def test_checkpoint_block_checks(tmp_path):
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n=3)
    d = tmp_path / "ck"
    ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()
    (block,) = [f for f in os.listdir(d) if f.startswith("block-")]
    np.savez(d / block, np.zeros(9, np.float32))  # one leaf instead of two
    with pytest.raises(ValueError, match="has 1 arrays, the outputs have 2 leaves"):
        ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()
    np.savez(d / block, np.zeros(9, np.float64), np.zeros((9, 2), np.float32))
    with pytest.raises(ValueError, match="leaf 0 has float64"):
        ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()
    os.unlink(d / block)
    np.savez(d / "block-00000000000000000000-00000000000000000099.npz", np.zeros(99))
    with pytest.raises(ValueError, match="outside the 9 points"):
        ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()


# ---------------------------------------------------------------------------------------------
# Subprocesses: four devices, and SIGKILL + resume
# ---------------------------------------------------------------------------------------------

SETUP = """
import jax, jax.numpy as jnp, numpy as np
import equinox as eqx
import namedax as nx
from namedax.spaces import GridSpace, UniformSpace, DataSpace, Parameter
from namedax.execution import ParallelExecution, SequentialExecution, ModelError
assert jax.device_count() == 4
def P(name, low, high):
    return Parameter(name, 0.0, low=low, high=high, free=True)
Time = nx.Axis("time", 3)
def model(s, w, *, k=1.0):
    x = jax.lax.fori_loop(0, 7, lambda _, x: x + 0.1 * (s["a"] - x * s["b"]), 0.0)
    return {"x": x * w + k, "tr": nx.arange(Time) * s["a"], "v": jnp.stack([s["a"], s["b"]])}
def same(r1, r2):
    for a, b in zip(jax.tree.leaves(r1[:]), jax.tree.leaves(r2[:]), strict=True):
        a, b = np.asarray(getattr(a, "array", a)), np.asarray(getattr(b, "array", b))
        np.testing.assert_array_equal(a, b)
"""

CHECKS = {
    "chunking_invariance_grid": """
        space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 7, "b": 5})
        ref = ParallelExecution(model, space, 2.0, k=0.5, n_vmap=1, n_pmap=1).run()
        a, b = np.meshgrid(np.linspace(0, 1, 7, dtype=np.float32), np.linspace(-1, 1, 5, dtype=np.float32),
                           indexing="ij")
        x = np.zeros_like(a)
        for _ in range(7):
            x = x + np.float32(0.1) * (a - x * b)
        np.testing.assert_allclose(ref.named()["x"].array, x * 2.0 + 0.5, rtol=1e-5)
        for nv, npm in [(None, 1), (1, 4), (3, 2), (5, 4), (7, 3), (64, 4), (None, None), (2, 4)]:
            same(ParallelExecution(model, space, 2.0, k=0.5, n_vmap=nv, n_pmap=npm).run(), ref)
    """,
    "chunking_invariance_uniform_and_data": """
        u = UniformSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 2.0)}, 41, key=jax.random.key(3))
        f = lambda s: s["a"] * s["b"]
        ref = ParallelExecution(f, u, n_vmap=1).run()
        np.testing.assert_allclose(ref[:], [float(f(p)) for p in u], rtol=1e-6)
        for nv, npm in [(3, 4), (10, 2), (None, None)]:
            same(ParallelExecution(f, u, n_vmap=nv, n_pmap=npm).run(), ref)
        d = DataSpace({"x": np.arange(22.0, dtype=np.float32).reshape(11, 2)})
        g = lambda s: s["x"] @ jnp.array([1.0, 10.0])
        np.testing.assert_allclose(ParallelExecution(g, d, n_vmap=2, n_pmap=4).run()[:],
                                   np.arange(22.0).reshape(11, 2) @ [1.0, 10.0])
    """,
    "devices_named_in_errors": """
        space = GridSpace({"a": P("a", 0.0, 1.0)}, n=3)
        try:
            ParallelExecution(lambda s: s["a"], space, n_pmap=5)
            raise AssertionError("no error")
        except ValueError as e:
            assert "must be in [1, 4], got 5; 4 available devices: [CpuDevice(id=0), CpuDevice(id=1)" in str(e), e
        assert len(ParallelExecution(lambda s: s["a"], space, n_pmap=None).devices) == 4
    """,
    "runtime_error_located_on_four_devices": """
        space = GridSpace({"a": P("a", 0.0, 1.0)}, n=50)
        def m(s):
            return eqx.error_if(s["a"] * 1.0, (s["a"] > 0.7) & (s["a"] < 0.72), "bad point")
        try:
            ParallelExecution(m, space, n_vmap=3, n_pmap=4).run()
            raise AssertionError("no error")
        except ModelError as e:
            assert e.point == 35 and "point 35 (a=0.714286): bad point" in str(e), e
    """,
    "checkpoint_on_four_devices": """
        import tempfile
        import namedax.execution._engine as E
        E._CALL_SECONDS = 0.0
        space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 7, "b": 5})
        with tempfile.TemporaryDirectory() as d:
            r1 = ParallelExecution(model, space, 2.0, n_vmap=2, n_pmap=4, checkpoint_dir=d).run()
            import os
            assert len([f for f in os.listdir(d) if f.startswith("block-")]) == 5
            same(ParallelExecution(model, space, 2.0, n_vmap=2, n_pmap=4, checkpoint_dir=d).run(), r1)
            same(ParallelExecution(model, space, 2.0, n_vmap=1, n_pmap=1).run(), r1)
    """,
}



@pytest.fixture(scope="module")
def four_devices():
    return run_with_devices(SETUP, CHECKS)


@pytest.mark.parametrize("name", list(CHECKS))
def test_four_devices(four_devices, name):
    assert four_devices.get(name) == "PASS", four_devices.get(name, "did not run")


KILL_SCRIPT = """
import json, os, sys
import jax, jax.numpy as jnp, numpy as np
import namedax.execution._engine as E
from namedax.spaces import GridSpace, Parameter
from namedax.execution import ParallelExecution
E._CALL_SECONDS = 0.02  # small blocks, so the kill lands mid-sweep
E.max_chunks = lambda *_: 8  # and never more than 8 chunks a call, whatever speed a call measures

def model(s):
    def step(_, x):
        v, w = x
        return v + 0.01 * (v - v ** 3 / 3 - w + s["a"]), w + 0.0008 * (v + 0.7 - s["b"] * w)
    return jax.lax.fori_loop(0, 5000, step, (jnp.float32(-1.0), jnp.float32(1.0)))[0]

space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                   "b": Parameter("b", 0.0, low=0.5, high=1.5, free=True)}, n={"a": 1000, "b": 1000})
mode, d = sys.argv[1], sys.argv[2]
if mode == "run":
    # After its 4th saved block the sweep stops to wait (the next call already dispatched), so the
    # parent's SIGKILL always lands mid-sweep, however fast or loaded the machine is.
    import time
    from namedax.execution._checkpoint import Checkpoint
    write, saved = Checkpoint.write, []
    def write_then_wait(self, *a):
        write(self, *a)
        saved.append(1)
        if len(saved) == 4:
            time.sleep(600)
    Checkpoint.write = write_then_wait
    ParallelExecution(model, space, checkpoint_dir=d, progress=False).run()
    print("FINISHED")
else:
    before = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    resumed = ParallelExecution(model, space, checkpoint_dir=d, progress=False).run()[:]
    full = ParallelExecution(model, space, progress=False).run()[:]
    after = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    spans = sorted(tuple(int(x) for x in f[6:-4].split("-")) for f in after)
    print(json.dumps({"before": before, "after": after, "spans": spans, "equal": bool(np.array_equal(resumed, full)),
                      "n": int(space.N)}))
"""


def test_resume_after_sigkill(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(KILL_SCRIPT)
    d = tmp_path / "ck"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    log = tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(script), "run", str(d)], env=env, stdout=f, stderr=f)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if d.exists() and len([f for f in os.listdir(d) if f.startswith("block-")]) >= 4:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, (
                f"the sweep ended before it could be killed ({len(os.listdir(d)) if d.exists() else 0} files "
                f"in the checkpoint): " + log.read_text()
            )
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = subprocess.run([sys.executable, str(script), "resume", str(d)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["equal"], "resumed results differ from an uninterrupted run"
    assert 4 <= len(info["before"]) < len(info["after"])
    assert set(info["before"]) <= set(info["after"])  # finished blocks were kept, not recomputed
    p = 0
    for a, b in info["spans"]:  # the blocks tile the sweep exactly
        assert a == p
        p = b
    assert p == info["n"]
