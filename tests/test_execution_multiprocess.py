"""ParallelExecution across two processes (jax.distributed on 127.0.0.1, two CPU devices each).

Each process computes its share on a 4-device global mesh and must end with the complete Results.
Skipped, with the reason, where jax.distributed cannot start (no local networking, say).
"""

import os

import numpy as np

from helpers import DISTRIBUTED, run_processes

SCRIPT = DISTRIBUTED + r"""import jax.numpy as jnp, numpy as np
import namedax as nx
from namedax.spaces import GridSpace, UniformSpace, Parameter
from namedax.execution import ParallelExecution
assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2

state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
         "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True)}
space = GridSpace(state, n={"a": 7, "b": 5})
Time = nx.Axis("time", 3)

def model(s, w):
    return {"x": s["a"] * s["b"] + w, "tr": nx.arange(Time) * s["a"]}

ex = ParallelExecution(model, space, jnp.float32(2.0), n_pmap=None, n_vmap=3)
assert len(ex.devices) == 4
r = ex.run()
try:
    ParallelExecution(model, space, 2.0, n_pmap=1)
    raise AssertionError("n_pmap=1 accepted across two processes")
except ValueError as e:
    assert "not a multiple of the 2 processes" in str(e), e
u = UniformSpace(state, 101, key=jax.random.key(5))
ck = os.path.join(os.path.dirname(out), "ck")
ru = ParallelExecution(lambda s: s["a"] + s["b"], u, n_pmap=4, n_vmap=4, checkpoint_dir=ck).run()
ru2 = ParallelExecution(lambda s: s["a"] + s["b"], u, n_pmap=4, n_vmap=4, checkpoint_dir=ck).run()  # loads
pts = u.points()
np.testing.assert_allclose(ru[:], np.asarray(pts["a"].value) + np.asarray(pts["b"].value), rtol=1e-6)
np.savez(out, x=r[:]["x"], tr=np.asarray(r[:]["tr"].array), named=np.asarray(r.named()["x"].array), u=ru[:],
         u2=ru2[:])
print("DONE", flush=True)
jax.distributed.shutdown()
"""


def test_two_processes(tmp_path):
    run_processes(SCRIPT, tmp_path)
    outs = [np.load(tmp_path / f"out{pid}.npz") for pid in range(2)]
    a, b = np.meshgrid(np.linspace(0, 1, 7, dtype=np.float32), np.linspace(-1, 1, 5, dtype=np.float32),
                       indexing="ij")
    for o in outs:  # every process holds the complete results
        np.testing.assert_allclose(o["x"], (a * b).reshape(-1) + 2.0, rtol=1e-6)
        np.testing.assert_allclose(o["named"], a * b + 2.0, rtol=1e-6)
        np.testing.assert_allclose(o["tr"], a.reshape(-1, 1) * np.arange(3), rtol=1e-6)
        np.testing.assert_array_equal(o["u"], o["u2"])
        assert o["u"].shape == (101,)
    for k in outs[0].files:
        np.testing.assert_array_equal(outs[0][k], outs[1][k])
    assert os.path.exists(tmp_path / "ck" / "manifest.json")
