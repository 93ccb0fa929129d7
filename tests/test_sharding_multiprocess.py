"""The sharded training step of tests/multidevice/test_sharding_mesh.py across two processes
(jax.distributed on 127.0.0.1, two CPU devices each, one (data=2, model=2) mesh spanning both): the
loss and parameters after a few steps equal the same training without any mesh."""

import pathlib

import equinox as eqx
import jax
import numpy as np
import pytest

from helpers import DISTRIBUTED, run_processes, tree_allclose

HERE = pathlib.Path(__file__).resolve().parent

SCRIPT = DISTRIBUTED + r"""sys.path[:0] = [HERE, HERE + "/multidevice"]
import equinox as eqx, numpy as np
from jax.experimental import multihost_utils
import test_sharding_mesh as t
assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
saved = {}
for layout, store, compute in [("dp", t.DP, t.DP), ("fsdp", t.FSDP_STORE, t.DP), ("tp", t.TP, t.TP)]:
    model, losses, _ = t.sharded_steps(t.mesh_of("auto"), store, compute)
    leaves = [multihost_utils.process_allgather(a.array if hasattr(a, "array") else a, tiled=True)
              for a in jax.tree.leaves(eqx.filter(model, eqx.is_array))]
    saved[layout + "_losses"] = np.asarray(losses)
    for i, leaf in enumerate(leaves):
        saved[f"{layout}_{i}"] = np.asarray(leaf)
    spec = model.up.weight.array.sharding.spec
    saved[layout + "_spec"] = np.asarray(str(spec))
np.savez(out, **saved)
print("DONE", flush=True)
jax.distributed.shutdown()
""".replace("HERE", repr(str(HERE)), 1).replace('HERE + "/multidevice"', repr(str(HERE / "multidevice")))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_training_across_two_processes_equals_unsharded(tmp_path, monkeypatch):
    run_processes(SCRIPT, tmp_path, timeout=240)
    monkeypatch.syspath_prepend(str(HERE / "multidevice"))
    import test_sharding_mesh as t

    ref_model, ref_losses = t.reference_steps()
    ref_leaves = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(ref_model, eqx.is_array))]
    outs = [np.load(tmp_path / f"out{pid}.npz") for pid in range(2)]
    for o in outs:
        for layout, spec in [("dp", "P(None, None)"), ("fsdp", "P(None, 'data')"), ("tp", "P('model', None)")]:
            np.testing.assert_allclose(o[layout + "_losses"], ref_losses, rtol=1e-5)
            tree_allclose([o[f"{layout}_{i}"] for i in range(len(ref_leaves))], ref_leaves, rtol=1e-5, atol=1e-6)
            assert str(o[layout + "_spec"]) == spec
    for k in outs[0].files:
        np.testing.assert_array_equal(outs[0][k], outs[1][k])
