"""Per-point keys and the failure policy on four devices: bitwise equal to a Python loop for every
(n_vmap, n_pmap), through a checkpoint resume, and a raising model bisected across devices."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from namedax.execution import ParallelExecution
from namedax.execution import _engine as _e
from namedax.spaces import GridSpace, Parameter

KEY = jax.random.key(5)
SPACE = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                   "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True)}, n={"a": 7, "b": 9})  # 63 points


def noisy(state, *, key):
    k1, k2 = jax.random.split(key)
    return {"x": jax.random.normal(k1, (2,)), "bits": jax.random.bits(k2, (3,)), "a": state["a"] * 1.0}


def reference():
    outs = [noisy(SPACE[i], key=jax.random.fold_in(KEY, i)) for i in range(SPACE.N)]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *outs)


def assert_bitwise(results, ref):
    for g, r in zip(jax.tree.leaves(results[:]), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(g, r)


def test_keys_independent_of_devices_and_chunks(devices):
    ref = reference()
    for n_pmap in (1, 2, 4):
        for n_vmap in (1, 5, None):  # 5: padding on every device count
            res = ParallelExecution(noisy, SPACE, key=KEY, n_vmap=n_vmap, n_pmap=n_pmap, progress=False).run()
            assert_bitwise(res, ref)


def test_keys_through_a_resume_on_other_devices(devices, tmp_path, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per device per call: many blocks
    d = tmp_path / "ck"
    ref = reference()
    assert_bitwise(ParallelExecution(noisy, SPACE, key=KEY, n_vmap=2, n_pmap=4, checkpoint_dir=d).run(), ref)
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    for f in blocks[1:3] + blocks[-1:]:
        os.unlink(d / f)
    assert_bitwise(ParallelExecution(noisy, SPACE, key=KEY, n_vmap=3, n_pmap=2, checkpoint_dir=d).run(), ref)


def test_raising_points_marked_across_devices(devices):
    def model(state):
        return eqx.error_if(state["a"] + state["b"], (state["a"] > 0.6) & (state["b"] < 0.0), "bad point")

    pts = SPACE.points()
    a, b = np.asarray(pts["a"].value), np.asarray(pts["b"].value)
    raised = (a > 0.6) & (b < 0.0)
    want = np.where(raised, np.nan, a + b).astype(np.float32)
    for n_vmap in (2, None):
        res = ParallelExecution(model, SPACE, n_vmap=n_vmap, n_pmap=4, on_error="mark", progress=False).run()
        np.testing.assert_array_equal(res.failed, raised)
        np.testing.assert_allclose(res[:], want, rtol=1e-6, equal_nan=True)
    res = ParallelExecution(lambda s: jnp.log(s["a"]), SPACE, n_pmap=4, on_error="mark").run()
    np.testing.assert_array_equal(res.failed, a <= 0)  # log(0) = -inf
