"""Sweeps streamed to a Zarr store (execution/_store.py): equal to the in-memory run bit for bit, readable by
xarray alone, resumable after SIGKILL, refused for another sweep, read lazily; two processes writing one store."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("zarr")
xr = pytest.importorskip("xarray")

import namedax as nx  # noqa: E402
from helpers import DISTRIBUTED, kill_then_resume, run_processes  # noqa: E402
from namedax.execution import ParallelExecution, SequentialExecution, open_results  # noqa: E402
from namedax.execution import _store as S  # noqa: E402
from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace  # noqa: E402
from test_execution_executors import P  # noqa: E402

Time = nx.Axis("time", 3)
ROOT = pathlib.Path(__file__).resolve().parent.parent


def tree_model(s, w):
    return {"x": s["a"] * s["b"] + w, "tr": nx.arange(Time) * s["a"], "n": (s["a"] * 10).astype(jnp.int32),
            "pos": s["b"] > 0, "h": (s["a"] - s["b"]).astype(jnp.float16), "v": jnp.stack([s["a"], s["b"]]),
            "label": "fhn"}


def grid():
    return GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 7, "b": 5})


def assert_same(got, ref):
    lg, tg = jax.tree.flatten(got)
    lr, tr = jax.tree.flatten(ref)
    assert tg == tr, (tg, tr)
    for x, y in zip(lg, lr, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
        np.testing.assert_array_equal(x, y)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(S, "CHUNK_BYTES", 150)  # a few points per chunk: many chunks, carried partial ones


@pytest.mark.parametrize("executor", ["parallel", "sequential"])
def test_grid_store_equals_memory_and_numpy(tmp_path, small_chunks, executor):
    space = grid()
    if executor == "parallel":
        run = lambda **kw: ParallelExecution(tree_model, space, 2.0, n_vmap=4, progress=False, **kw).run()  # noqa: E731
    else:
        run = lambda **kw: SequentialExecution(tree_model, space, 2.0, progress=False, **kw).run()  # noqa: E731
    ref = run()
    got = run(store=tmp_path / "s.zarr")
    assert got.store == str(tmp_path / "s.zarr") and ref.store is None
    assert_same(got[:], ref[:])
    for i in (0, 3, 17, -1):
        assert_same(got[i], ref[i])
    assert_same(got[2:31:4], ref[2:31:4])
    assert_same(got[::-3], ref[::-3])
    assert_same(list(got), list(ref))
    assert_same(got.named(), ref.named())
    assert_same(open_results(tmp_path / "s.zarr")[:], ref[:])
    # against numpy: the grid's values, row-major
    a, b = np.meshgrid(np.linspace(0, 1, 7, dtype=np.float32), np.linspace(-1, 1, 5, dtype=np.float32), indexing="ij")
    np.testing.assert_array_equal(got.named()["x"].array, a * b + np.float32(2.0))
    # xarray alone: the labelled grid, coordinates, dims, static outputs as attributes
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert dict(ds.sizes) == {"a": 7, "b": 5, "time": 3, "dim_0": 2}
    np.testing.assert_array_equal(ds["a"].values, a[:, 0])
    np.testing.assert_array_equal(ds["b"].values, b[0])
    np.testing.assert_array_equal(ds["x"].values, a * b + np.float32(2.0))
    np.testing.assert_array_equal(ds["tr"].transpose("a", "b", "time").values, a[..., None] * np.arange(3))
    assert ds["pos"].dtype == bool and ds["h"].dtype == np.float16 and ds["n"].dtype == np.int32
    assert ds.attrs["label"] == "fhn"
    assert float(ds["x"].sel(a=0.5, b=1.0)) == np.float32(0.5) + 2
    code = ("import sys, xarray; ds = xarray.open_zarr(sys.argv[1]); assert 'namedax' not in sys.modules; "
            "print(dict(ds.sizes), float(ds['x'].sel(a=0.5, b=1.0)))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.zarr")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.split("}")[1].strip() == "2.5", out.stdout + out.stderr
    mem = ref.to_xarray()
    lazy = got.to_xarray()
    for name in mem.data_vars:
        assert lazy[name].dims == mem[name].dims
        np.testing.assert_array_equal(lazy[name].values, mem[name].values)


def test_single_output_named_output_and_data_space(tmp_path, small_chunks):
    data = DataSpace({"a": Parameter("a", jnp.arange(23.0), free=True), "k": 3.0})
    ref = ParallelExecution(lambda s: s["a"] * s["k"], data, n_vmap=4).run()
    got = ParallelExecution(lambda s: s["a"] * s["k"], data, n_vmap=4, store=tmp_path / "d.zarr").run()
    assert_same(got[:], ref[:])
    assert got[5] == np.float32(15.0) and type(got[5]) is type(ref[5])
    da = xr.open_zarr(tmp_path / "d.zarr")["output"]
    np.testing.assert_array_equal(da.values, np.arange(23.0, dtype=np.float32) * 3)
    np.testing.assert_array_equal(da["a"].values, np.arange(23.0, dtype=np.float32))  # the parameter, per point
    lazy, mem = got.to_xarray(), ref.to_xarray()
    assert isinstance(lazy, xr.DataArray) and lazy.dims == mem.dims == ("data",)
    np.testing.assert_array_equal(lazy.values, mem.values)
    np.testing.assert_array_equal(lazy["a"].values, mem["a"].values)
    # a NamedArray output over a UniformSpace
    u = UniformSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, 37, key=jax.random.key(3))
    f = lambda s: nx.arange(Time) * s["a"] + s["b"]  # noqa: E731
    ref = ParallelExecution(f, u, n_vmap=8).run()
    got = ParallelExecution(f, u, n_vmap=8, store=tmp_path / "u.zarr").run()
    assert_same(got[:], ref[:])
    assert_same(got.named(), ref.named())
    pts = u.points()
    ds = xr.open_zarr(tmp_path / "u.zarr")
    np.testing.assert_array_equal(ds["output"].values,
                                  np.asarray(pts["a"].value)[:, None] * np.arange(3, dtype=np.float32)
                                  + np.asarray(pts["b"].value)[:, None])
    np.testing.assert_array_equal(ds["b"].values, np.asarray(pts["b"].value))
    assert ds["output"].dims == ("sample", "time")


def test_untraceable_model_sequential_store(tmp_path, small_chunks):
    def model(s):
        return s["a"] * 10 if float(s["a"]) > 0.5 else -s["a"]  # runs without jit

    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=9)
    ref = SequentialExecution(model, space, progress=False).run()
    got = SequentialExecution(model, space, progress=False, store=tmp_path / "e.zarr").run()
    assert_same(got[:], ref[:])
    again = SequentialExecution(model, space, progress=False, store=tmp_path / "e.zarr").run()  # all done: loads
    assert_same(again[:], ref[:])


def test_resume_skips_done_chunks_and_refusals(tmp_path, small_chunks):
    space = grid()
    path = tmp_path / "s.zarr"
    ref = ParallelExecution(tree_model, space, 2.0, n_vmap=4).run()
    ParallelExecution(tree_model, space, 2.0, n_vmap=4, store=path).run()
    done = S.Store._from_meta("t", S._zarr("t"), path, S._read_meta(path), space, None, "r+").done
    n = done.shape[0]
    assert n > 4
    done[1] = 0  # as if the run had died before flagging chunk 1 and the last one
    done[n - 1] = 0
    calls = []

    def counted(s, w):
        jax.debug.callback(lambda: calls.append(1))
        return tree_model(s, w)

    # another model (another fingerprint) is refused; the same model resumes only the missing chunks
    with pytest.raises(ValueError, match="store .* holds a sweep of another model"):
        ParallelExecution(counted, space, 2.0, store=path).run()
    with pytest.raises(ValueError, match="store .* holds a sweep of a different space"):
        ParallelExecution(tree_model, GridSpace(space.state, n=4), 2.0, store=path).run()
    with pytest.raises(ValueError, match=r"store .* with other arguments \(args\[0\] differs\)"):
        ParallelExecution(tree_model, space, 3.0, store=path).run()
    with pytest.raises(ValueError, match="not finished: 2 of"):
        open_results(path)
    part = open_results(path, partial=True, space=space)
    assert np.isnan(part[:]["x"]).sum() == sum(b - a for a, b in S.Chunks(
        (7, 5), *S._read_meta(path)["chunks"]).ranges(done[:]))
    again = ParallelExecution(tree_model, space, 2.0, n_vmap=3, store=path).run()
    assert_same(again[:], ref[:])
    assert done[:].all()
    assert_same(open_results(path, space=space).points()["a"].value, space.points()["a"].value)
    with pytest.raises(ValueError, match="is not the space of the sweep"):
        open_results(path, space=GridSpace(space.state, n=4))


def test_store_arguments_refused(tmp_path):
    space = grid()
    with pytest.raises(ValueError, match="pass `store` or `checkpoint_dir`, not both"):
        ParallelExecution(tree_model, space, 2.0, store=tmp_path / "s", checkpoint_dir=tmp_path / "c")
    with pytest.raises(TypeError, match="`store` must be a path"):
        ParallelExecution(tree_model, space, 2.0, store=3)
    with pytest.raises(ValueError, match="`store` is the empty string"):
        SequentialExecution(tree_model, space, 2.0, store="")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty and holds no namedax sweep"):
        ParallelExecution(tree_model, space, 2.0, store=other).run()
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="holds no namedax sweep store"):
        open_results(other)
    with pytest.raises(ValueError, match="output 'a/b' cannot name a Zarr array"):
        ParallelExecution(lambda s: {"a/b": s["a"]}, space, store=tmp_path / "slash").run()
    with pytest.raises(ValueError, match="cannot hold an array named 'a' twice"):
        ParallelExecution(lambda s: {"a": s["a"]}, space, store=tmp_path / "clash").run()
    # a store in use by another running sweep
    from namedax.execution._checkpoint import _take

    (tmp_path / "busy").mkdir()
    fd = _take("test", tmp_path / "busy", "store")
    try:
        with pytest.raises(ValueError, match="store .* is in use by another running sweep"):
            ParallelExecution(tree_model, space, 2.0, store=tmp_path / "busy").run()
    finally:
        os.close(fd)


def test_reads_are_lazy(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "CHUNK_BYTES", 4 * 1000)  # 1000 points (whole rows of b) per chunk
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 200, "b": 100})
    path = tmp_path / "big.zarr"
    ParallelExecution(lambda s: s["a"] + s["b"], space, store=path).run()
    import zarr.storage

    reads = []
    get = zarr.storage.LocalStore.get

    async def counting(self, key, *a, **k):
        reads.append(key)
        return await get(self, key, *a, **k)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting)
    r = open_results(path)
    reads.clear()
    a, b = np.linspace(0, 1, 200, dtype=np.float32), np.linspace(-1, 1, 100, dtype=np.float32)
    np.testing.assert_allclose(r[12345], a[123] + b[45], rtol=1e-6)
    data = [k for k in reads if k.startswith("output/c")]
    assert data == ["output/c/12/0"], reads  # the one chunk holding point 12345 (rows 120..129)
    reads.clear()
    np.testing.assert_allclose(r[2990:3010], (a[:, None] + b[None]).reshape(-1)[2990:3010], rtol=1e-6)
    assert sorted(k for k in reads if k.startswith("output/c")) == ["output/c/2/0", "output/c/3/0"]


KILL_SCRIPT = """
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
import namedax.execution._store as S
from namedax.spaces import GridSpace, Parameter
from namedax.execution import ParallelExecution
S.CHUNK_BYTES = 4 * 2000  # two rows per chunk

def model(s):  # a logistic map: cheap, and every bit of the result depends on every step
    return jax.lax.fori_loop(0, 2000, lambda _, x: (3.5 + 0.5 * s["a"]) * x * (1 - x), 0.1 + 0.8 * s["b"] / 1.5)

space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                   "b": Parameter("b", 0.0, low=0.5, high=1.5, free=True)}, n={"a": 300, "b": 1000})
mode, d = sys.argv[1], sys.argv[2]
if mode == "run":
    put, saved = S.Store._put, []
    def put_then_wait(self, k, rows):  # after 4 chunks, write half of the 5th chunk's data, then stall
        if len(saved) == 4:
            self._arrays[0][self.chunks.region(k)] = np.asarray(rows[0]).reshape(self._arrays[0].chunks) * 0 + 7
            print("STALLED", flush=True)
            time.sleep(600)
        put(self, k, rows)
        saved.append(k)
    S.Store._put = put_then_wait
    ParallelExecution(model, space, store=d, progress=False).run()
    print("FINISHED")
else:
    done0 = int(S.Store._from_meta("t", S._zarr("t"), d, S._read_meta(__import__("pathlib").Path(d)), space,
                                   None, "r").done[:].sum())
    resumed = ParallelExecution(model, space, store=d, progress=False).run()[:]
    full = ParallelExecution(model, space, progress=False).run()[:]
    print(json.dumps({"done_before": done0, "equal": bool(np.array_equal(resumed, full))}))
"""


def test_resume_after_sigkill(tmp_path):
    info = kill_then_resume(KILL_SCRIPT, tmp_path, tmp_path / "s.zarr", lambda: "STALLED" in (tmp_path / "run.log")
                            .read_text())
    assert info["done_before"] == 4, info  # the 5th chunk's data was on disk (garbage) but not flagged done
    assert info["equal"], "resumed results differ from an uninterrupted run"


MP_SCRIPT = DISTRIBUTED + r"""import jax.numpy as jnp, numpy as np
import namedax as nx
import namedax.execution._store as S
import zarr.storage
from namedax.spaces import GridSpace, Parameter
from namedax.execution import ParallelExecution
S.CHUNK_BYTES = 4 * 60
written = []
set_ = zarr.storage.LocalStore.set
async def record(self, key, value, *a, **k):
    written.append(key)
    return await set_(self, key, value, *a, **k)
zarr.storage.LocalStore.set = record

state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
         "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True)}
space = GridSpace(state, n={"a": 37, "b": 20})
path = os.path.join(os.path.dirname(out), "s.zarr")
r = ParallelExecution(lambda s, w: s["a"] * s["b"] + w, space, jnp.float32(2.0), n_pmap=None, n_vmap=4,
                      store=path).run()
x = r[:]
np.savez(out, x=x, named=np.asarray(r.named().array))
with open(out + ".json", "w") as f:
    json = __import__("json")
    json.dump(sorted(k for k in written if k.startswith("output/c/")), f)
print("DONE", flush=True)
jax.distributed.shutdown()
"""


def test_two_processes_write_one_store(tmp_path):
    run_processes(MP_SCRIPT, tmp_path)
    a, b = np.meshgrid(np.linspace(0, 1, 37, dtype=np.float32), np.linspace(-1, 1, 20, dtype=np.float32),
                       indexing="ij")
    ref = a * b + np.float32(2.0)
    for pid in range(2):
        o = np.load(tmp_path / f"out{pid}.npz")
        np.testing.assert_allclose(o["x"], ref.reshape(-1), rtol=1e-6)
        np.testing.assert_allclose(o["named"], ref, rtol=1e-6)
    np.testing.assert_allclose(xr.open_zarr(tmp_path / "s.zarr")["output"].values, ref, rtol=1e-6)
    written = [json.loads((tmp_path / f"out{pid}.npz.json").read_text()) for pid in range(2)]
    assert written[0] and written[1], written  # both processes wrote chunks ...
    assert not set(written[0]) & set(written[1])  # ... never the same one
    assert len(written[0]) + len(written[1]) == len(set(written[0]) | set(written[1]))


def test_docs_plot_from_the_reopened_store(tmp_path):
    """The heatmap block of docs/sweeps.md ("Results on disk") runs on a store written here."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = text.split("A heatmap from the reopened store")[1].split("```python\n", 1)[1].split("```", 1)[0]
    space = GridSpace({"param1": P("param1", 0.0, 1.0), "param2": P("param2", -1.0, 1.0)}, n=10)
    path = str(tmp_path / "sweep.zarr")
    ParallelExecution(lambda s: s["param1"] * s["param2"], space, store=path).run()
    exec(block, {"path": path, "os": os})
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_an_extra_per_point_array(tmp_path, small_chunks):
    """What a failure mask needs: one more per-point array, written with the outputs, read by name."""
    from namedax.execution._checkpoint import manifest
    from namedax.execution._results import Layout

    space = grid()
    layout = Layout({"x": jax.ShapeDtypeStruct((), np.float32)})
    man = manifest(space, layout, tree_model, (2.0,))
    st, ranges = S.Store.open("test", tmp_path / "m.zarr", man, layout, space, 4, extras=(("failed", np.bool_),))
    assert ranges == [(0, 35)]
    x = np.arange(35, dtype=np.float32)
    failed = x % 3 == 0
    st.write(0, 20, [x[:20], failed[:20]])
    st.write(20, 15, [x[20:], failed[20:]])
    st.close()
    np.testing.assert_array_equal(st.view("failed")[:], failed)
    assert len(st.views()) == 1
    ds = xr.open_zarr(tmp_path / "m.zarr")
    np.testing.assert_array_equal(ds["failed"].values, failed.reshape(7, 5))
    assert ds["failed"].dims == ("a", "b")
    np.testing.assert_array_equal(open_results(tmp_path / "m.zarr")[:]["x"], x)


def test_open_results_rebuilds_the_output_structure(tmp_path):
    import equinox as eqx

    class Out(eqx.Module):
        x: jax.Array
        y: jax.Array

    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=5)
    a = np.linspace(0, 1, 5, dtype=np.float32)
    ParallelExecution(lambda s: (s["a"], None, [s["a"] + 1, "lbl"]), space, store=tmp_path / "t").run()
    assert_same(open_results(tmp_path / "t")[3], (a[3], None, [a[3] + np.float32(1), "lbl"]))
    # a PyTree node that JSON cannot describe comes back as a dict by leaf path
    r = ParallelExecution(lambda s: Out(s["a"] * 1.0, s["a"] * 2.0), space, store=tmp_path / "m").run()
    assert isinstance(r[2], Out)
    assert_same(open_results(tmp_path / "m")[2], {"x": a[2], "y": a[2] * np.float32(2)})


@pytest.mark.parametrize("shape", [(7,), (7, 5), (3, 4, 5), (2, 3, 1, 4), (13, 1)])
@pytest.mark.parametrize("target", [1, 3, 6, 20, 1000])
@pytest.mark.parametrize("uniform", [False, True])
def test_chunk_geometry_against_numpy(shape, target, uniform):
    ch = S.Chunks.plan(shape, target, uniform, multiple=2)
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    seen = []
    for k in range(ch.n):
        a, b = ch.span(k)
        np.testing.assert_array_equal(flat[ch.region(k)].reshape(-1), np.arange(a, b))  # contiguous, row-major
        assert all(ch.index(i) == k for i in range(a, b))
        seen.append((a, b))
    assert seen == sorted(seen) and seen[0][0] == 0 and seen[-1][1] == flat.size
    assert all(p[1] == q[0] for p, q in zip(seen, seen[1:]))  # they tile the points
    sizes = {b - a for a, b in seen[:-1]}
    assert len(sizes) <= 1 or not uniform  # uniform: all chunks but the last have one size
    if not (uniform and ch.i == 0):  # (there, a chunk is rounded up to whole shares of a call)
        assert ch.points <= max(target, shape[-1])


@pytest.mark.parametrize("ex, kw", [(ParallelExecution, {"n_vmap": 4}), (SequentialExecution, {})])
def test_store_with_keys_and_the_failure_record(tmp_path, ex, kw):
    """key= and on_error="mark" stream like any output: the store's `failed` array and every
    point's draw equal a Python loop's; reopened, the record is still there."""
    space = grid()
    key = jax.random.key(7)

    def noisy(s, key):
        x = s["a"] / s["b"] + jax.random.normal(key)  # b == 0 (point 2 of every row) divides by zero
        return {"x": x, "u": jax.random.uniform(key)}

    res = ex(noisy, space, key=key, on_error="mark", store=tmp_path / "s.zarr", progress=False, **kw).run()
    want_u = np.array([float(jax.random.uniform(jax.random.fold_in(key, i))) for i in range(space.N)], np.float32)
    want_bad = np.array([not np.isfinite(float(noisy(space[i], jax.random.fold_in(key, i))["x"]))
                         for i in range(space.N)])
    assert want_bad.sum() == 7
    np.testing.assert_array_equal(np.asarray(res[:]["u"]), want_u)
    np.testing.assert_array_equal(res.failed, want_bad)
    again = open_results(tmp_path / "s.zarr")
    np.testing.assert_array_equal(again.failed, want_bad)
    np.testing.assert_array_equal(again.failed_named().array, want_bad.reshape(7, 5))
