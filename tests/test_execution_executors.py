"""ParallelExecution / SequentialExecution (execution/_executors.py) against numpy references.

In this process JAX has one CPU device; the four-device checks are in tests/multidevice/test_execution.py,
the two-process jax.distributed run in test_execution_multiprocess.py.
"""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.execution import ModelError, ParallelExecution, Results, SequentialExecution
from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace


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

