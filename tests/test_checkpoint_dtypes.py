"""Every dtype JAX computes in survives a checkpoint bit for bit (issue 18 item 2): bfloat16, float8, float4,
int4/uint4, int2/uint2 are stored as their bit patterns with their dtype names recorded."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution
from namedax.execution import _engine as _e
from namedax.spaces import GridSpace
from test_execution_executors import P

NAMES = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16", "float32", "complex64",
         "bfloat16", "int4", "uint4", "int2", "uint2"]
NAMES += sorted(n for n in dir(jnp) if n.startswith(("float8_", "float4_")))
if jax.config.jax_enable_x64:
    NAMES += ["int64", "uint64", "float64", "complex128"]
NAMES = [n for n in NAMES if hasattr(jnp, n)]


def space():
    return GridSpace({"a": P("a", -3.0, 3.0), "b": P("b", 0.0, 1.0)}, n={"a": 7, "b": 5})


def model_for(name):
    dtype = jnp.dtype(getattr(jnp, name))

    def model(s):
        x = s["a"] * 1.7 + s["b"] * 0.3
        if dtype == jnp.bool_:
            return {"y": x > 0.5}
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return {"y": (x + 1j * s["b"]).astype(dtype)}
        if jnp.issubdtype(dtype, jnp.unsignedinteger):
            x = jnp.abs(x)
        return {"y": x.astype(dtype), "w": jnp.stack([x, -x]).astype(dtype)}

    return model


@pytest.mark.parametrize("name", NAMES)
def test_resume_is_bitwise_for_every_dtype(tmp_path, name, caplog, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: many blocks
    model = model_for(name)
    ref = ParallelExecution(model, space(), progress=False).run()
    d = tmp_path / "ck"
    ParallelExecution(model, space(), n_vmap=4, checkpoint_dir=d, progress=False).run()
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    assert len(blocks) > 2
    for f in blocks[::2]:  # an interrupted run: half the blocks lost
        os.unlink(d / f)
    out = ParallelExecution(model, space(), n_vmap=3, checkpoint_dir=d, progress=False).run()
    assert "ignored" not in caplog.text and not [f for f in os.listdir(d) if f.endswith(".rejected")]
    for key in ref[0]:
        want, got = np.asarray(ref[:][key]), np.asarray(out[:][key])
        assert got.dtype == want.dtype == np.dtype(getattr(jnp, name))
        np.testing.assert_array_equal(got.view(f"u{got.dtype.itemsize}"), want.view(f"u{want.dtype.itemsize}"))
    again = ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()  # all from disk
    np.testing.assert_array_equal(np.asarray(again[:]["y"]).view(np.uint8), np.asarray(ref[:]["y"]).view(np.uint8))
