"""ParallelExecution on four devices: results independent of the chunking and of the device count,
devices named in errors, a run-time error located, checkpoints written and resumed."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.execution import ModelError, ParallelExecution
from namedax.execution import _engine as _e
from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace

Time = nx.Axis("time", 3)


def P(name, low, high):
    return Parameter(name, 0.0, low=low, high=high, free=True)


def model(s, w, *, k=1.0):
    x = jax.lax.fori_loop(0, 7, lambda _, x: x + 0.1 * (s["a"] - x * s["b"]), 0.0)
    return {"x": x * w + k, "tr": nx.arange(Time) * s["a"], "v": jnp.stack([s["a"], s["b"]])}


def same(r1, r2):
    for a, b in zip(jax.tree.leaves(r1[:]), jax.tree.leaves(r2[:]), strict=True):
        a, b = np.asarray(getattr(a, "array", a)), np.asarray(getattr(b, "array", b))
        np.testing.assert_array_equal(a, b)


def test_chunking_invariance_grid(devices):
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


def test_chunking_invariance_uniform_and_data(devices):
    u = UniformSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 2.0)}, 41, key=jax.random.key(3))

    def f(s):
        return s["a"] * s["b"]

    ref = ParallelExecution(f, u, n_vmap=1).run()
    np.testing.assert_allclose(ref[:], [float(f(p)) for p in u], rtol=1e-6)
    for nv, npm in [(3, 4), (10, 2), (None, None)]:
        same(ParallelExecution(f, u, n_vmap=nv, n_pmap=npm).run(), ref)
    d = DataSpace({"x": np.arange(22.0, dtype=np.float32).reshape(11, 2)})
    np.testing.assert_allclose(ParallelExecution(lambda s: s["x"] @ jnp.array([1.0, 10.0]), d, n_vmap=2,
                                                 n_pmap=4).run()[:],
                               np.arange(22.0).reshape(11, 2) @ [1.0, 10.0])


def test_devices_named_in_errors(devices):
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=3)
    with pytest.raises(ValueError) as ei:
        ParallelExecution(lambda s: s["a"], space, n_pmap=5)
    assert "must be in [1, 4], got 5; 4 available devices: [CpuDevice(id=0), CpuDevice(id=1)" in str(ei.value)
    assert len(ParallelExecution(lambda s: s["a"], space, n_pmap=None).devices) == 4


def test_runtime_error_located_on_four_devices(devices):
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=50)

    def m(s):
        return eqx.error_if(s["a"] * 1.0, (s["a"] > 0.7) & (s["a"] < 0.72), "bad point")

    with pytest.raises(ModelError) as ei:
        ParallelExecution(m, space, n_vmap=3, n_pmap=4).run()
    assert ei.value.point == 35 and "point 35 (a=0.714286): bad point" in str(ei.value)


def test_checkpoint_on_four_devices(devices, tmp_path, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 7, "b": 5})
    d = tmp_path / "ck"
    r1 = ParallelExecution(model, space, 2.0, n_vmap=2, n_pmap=4, checkpoint_dir=d).run()
    assert len([f for f in os.listdir(d) if f.startswith("block-")]) == 5
    same(ParallelExecution(model, space, 2.0, n_vmap=2, n_pmap=4, checkpoint_dir=d).run(), r1)
    same(ParallelExecution(model, space, 2.0, n_vmap=1, n_pmap=1).run(), r1)


def test_store_on_four_devices_equals_memory(tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    from namedax.execution import _store as S

    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.5, 1.5)}, n={"a": 13, "b": 11})
    ref = ParallelExecution(model, space, 2.0, n_vmap=5, n_pmap=4).run()
    monkeypatch.setattr(S, "CHUNK_BYTES", 500)  # many chunks, blocks ending inside them
    got = ParallelExecution(model, space, 2.0, n_vmap=5, n_pmap=4, store=tmp_path / "s.zarr").run()
    same(got, ref)
    for x, y in zip(jax.tree.leaves(got.named()), jax.tree.leaves(ref.named()), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
