"""Combined spaces swept over four devices: the same results as one device and as a Python loop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

import namedax as nx
from namedax.execution import ParallelExecution
from namedax.spaces import GridSpace, Parameter, TrialSpace, UniformSpace


def _model(point, sigma):
    state, trial = point
    noise = jax.random.normal(jax.random.fold_in(jax.random.key(3), trial))
    return state["a"] * state["b"] + sigma * noise


def test_grid_times_trials_on_four_devices(devices):
    state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
             "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True, scale="linear")}
    space = GridSpace(state, n={"a": 5, "b": 3}) * TrialSpace(7)
    out = ParallelExecution(_model, space, 0.5, n_vmap=3, n_pmap=len(devices)).run()
    one = ParallelExecution(_model, space, 0.5, n_vmap=4, n_pmap=1).run()
    np.testing.assert_allclose(out[:], one[:], rtol=1e-6, atol=1e-7)
    av, bv = np.linspace(0, 1, 5, dtype=np.float32), np.linspace(-1, 1, 3, dtype=np.float32)
    ref = np.empty((5, 3, 7), np.float32)
    for i, j, t in itertools.product(range(5), range(3), range(7)):
        noise = float(jax.random.normal(jax.random.fold_in(jax.random.key(3), t)))
        ref[i, j, t] = av[i] * bv[j] + np.float32(0.5 * noise)
    named = out.named()
    assert named.axes == (nx.Axis("a", 5), nx.Axis("b", 3), nx.Axis("trial", 7))
    np.testing.assert_allclose(np.asarray(named.array), ref, rtol=1e-5, atol=1e-6)


def test_zip_and_log_uniform_on_four_devices(devices):
    u = UniformSpace({"k": Parameter("k", 1.0, low=0.01, high=100.0, free=True, scale="log")}, 37,
                     key=jax.random.key(1))
    space = nx.spaces.zip(u, TrialSpace(37)) * TrialSpace(2, name="rep")
    out = ParallelExecution(lambda p: p[0][0]["k"] + p[0][1] * 1000 + p[1], space, n_pmap=len(devices)).run()
    ref = np.asarray([float(s["k"]) + t * 1000 + r for (s, t), r in space], np.float32)
    np.testing.assert_allclose(out[:], ref, rtol=1e-6)
    assert out.named().axes == (nx.Axis("sample", 37), nx.Axis("rep", 2))
    assert jnp.all(out.named().array > 0)
