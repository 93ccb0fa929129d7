"""Checkpoints (execution/_checkpoint.py): resume, refusals, block checks, a SIGKILL + resume subprocess."""

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import kill_then_resume
from namedax.execution import ParallelExecution
from namedax.execution import _engine as _e
from namedax.spaces import DataSpace, GridSpace, Parameter
from test_execution_executors import P


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
    (d / ".namedax-tmp-999999999-left-by-a-killed-run.npz").write_bytes(b"partial")  # a dead pid
    again = ParallelExecution(ck_model, space, 2.0, n_vmap=4, checkpoint_dir=d).run()
    for x, y in zip(jax.tree.leaves(again[:]), jax.tree.leaves(ref[:]), strict=True):
        np.testing.assert_array_equal(x, y)
    assert all(os.stat(d / f).st_mtime_ns == t for f, t in kept.items())
    assert sorted(f for f in os.listdir(d) if f.startswith("block-")) == blocks
    assert not any(f.startswith(".namedax-tmp-") for f in os.listdir(d))
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
    # earlier formats: refused by their format
    for old in ("namedax-sweep/1", "namedax-sweep/2", "namedax-sweep/3", "namedax-sweep/4"):
        man["format"] = old
        (d / "manifest.json").write_text(json.dumps(man))
        with pytest.raises(ValueError, match=rf"manifest of format '{old}', not 'namedax-sweep/5'.*another version"):
            ParallelExecution(kw_model, space, 2.0, scale=jnp.float32(3.0), checkpoint_dir=d).run()


def test_checkpoint_refusal_says_which_leaf_of_the_space_differs(tmp_path):
    # A fixed array of the state changed: both spaces print alike, so the error names the leaf.
    def space(w, high=1.0, n=4):
        return GridSpace({"a": P("a", 0.0, high), "w": w, "dt": 0.1}, n=n)

    d = tmp_path / "ck"
    ParallelExecution(lambda s: s["a"] * s["w"].sum(), space(jnp.ones(3)), checkpoint_dir=d).run()
    assert repr(space(jnp.ones(3))) == repr(space(jnp.full(3, 2.0)))
    for other, what in [(space(jnp.full(3, 2.0)), r"they differ in the state leaf \['w'\];"),
                        (space(jnp.ones(3), high=2.0), "they differ in its kind, size, axes, free leaves or bounds"),
                        (space(jnp.ones(3), n=5), "they differ in its kind, size"),
                        (DataSpace({"a": jnp.zeros(4), "w": Parameter("w", jnp.ones(3)), "dt": 0.1}), "its kind")]:
        with pytest.raises(ValueError, match="holds a sweep of a different space.*" + what):
            ParallelExecution(lambda s: s["a"] * s["w"].sum(), other, checkpoint_dir=d).run()
    d2 = tmp_path / "data"
    data = {"x": jnp.arange(4.0), "k": Parameter("k", jnp.ones(2))}
    ParallelExecution(lambda s: s["x"], DataSpace(data), checkpoint_dir=d2).run()
    with pytest.raises(ValueError, match=r"they differ in the state leaf \['x'\];"):
        ParallelExecution(lambda s: s["x"], DataSpace({**data, "x": jnp.arange(4.0) + 1}), checkpoint_dir=d2).run()


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


def test_checkpoint_block_checks(tmp_path, caplog):
    # a block that is not this sweep's intact block of its range is reported by name, set aside, recomputed
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n=3)
    d = tmp_path / "ck"
    ref = ParallelExecution(ck_model, space, 2.0).run()[:]
    ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()
    (block,) = [f for f in os.listdir(d) if f.startswith("block-")]
    outside = "block-00000000000000000000-00000000000000000099.npz"
    for write, msg in [(lambda: np.savez(d / block, np.zeros(9, np.float32)), "holds \\['arr_0.npy'\\]"),
                       (lambda: np.savez(d / block, np.zeros(9, np.float64), np.zeros((9, 2), np.float32)),
                        "holds"),
                       (lambda: np.savez(d / outside, np.zeros(99)), "is outside the 9 points")]:
        write()
        caplog.clear()
        with caplog.at_level("WARNING", logger="namedax.execution"):
            out = ParallelExecution(ck_model, space, 2.0, checkpoint_dir=d).run()[:]
        np.testing.assert_array_equal(out["x"], ref["x"])
        np.testing.assert_array_equal(out["y"], ref["y"])
        assert re.search(msg + ".*ignored, its points are recomputed", caplog.text), caplog.text
    assert sorted(f for f in os.listdir(d) if f.startswith("block-")) == [block, block + ".rejected",
                                                                         outside + ".rejected"]


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
    d = tmp_path / "ck"

    def four_blocks() -> bool:
        return d.exists() and len([f for f in os.listdir(d) if f.startswith("block-")]) >= 4

    info = kill_then_resume(KILL_SCRIPT, tmp_path, d, four_blocks)
    assert info["equal"], "resumed results differ from an uninterrupted run"
    assert 4 <= len(info["before"]) < len(info["after"])
    assert set(info["before"]) <= set(info["after"])  # finished blocks were kept, not recomputed
    p = 0
    for a, b in info["spans"]:  # the blocks tile the sweep exactly
        assert a == p
        p = b
    assert p == info["n"]

