"""SequentialExecution checkpoints (issue 18 item 10): the same directory format as ParallelExecution, resumed
point for point, for compiled and eager (untraceable) models alike."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ModelError, ParallelExecution, SequentialExecution
from namedax.execution import _engine as _e
from test_checkpoint_safety import reference, space

calls = []


def traced(s):
    return s["a"] * 2.0 + s["b"]


def eager(s):
    if float(s["a"]) > 10.0:  # Python control flow: SequentialExecution runs it without jit
        return s["a"]
    calls.append(float(s["a"] * 2.0 + s["b"]))  # which point: its value
    return s["a"] * 2.0 + s["b"]


@pytest.mark.parametrize("model", [traced, eager])
def test_sequential_resumes_from_its_blocks(tmp_path, monkeypatch, model):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # a block per point
    d = tmp_path / "ck"
    out = SequentialExecution(model, space(), checkpoint_dir=d, progress=False).run()
    np.testing.assert_array_equal(np.asarray(out[:]), reference())
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    assert len(blocks) == 12
    for f in blocks[3:8]:
        os.unlink(d / f)
    calls.clear()
    again = SequentialExecution(model, space(), checkpoint_dir=d, progress=False).run()
    np.testing.assert_array_equal(np.asarray(again[:]), reference())
    if model is eager:  # point 0 (tried, then for the layout) and the five lost points, nothing else
        assert sorted(c for c in calls if c != reference()[0]) == sorted(reference()[3:8])
    with pytest.raises(ValueError, match="holds a sweep of another model"):
        SequentialExecution(lambda s: s["a"] * 2.0 + s["b"], space(), checkpoint_dir=d, progress=False).run()


def test_sequential_and_parallel_share_the_format(tmp_path):
    d = tmp_path / "ck"
    ParallelExecution(traced, space(), checkpoint_dir=d, progress=False).run()
    out = SequentialExecution(traced, space(), checkpoint_dir=d, progress=False).run()  # all loaded
    np.testing.assert_array_equal(np.asarray(out[:]), reference())


def test_a_failing_point_keeps_the_points_before_it(tmp_path):
    d = tmp_path / "ck"

    def failing(s, limit):
        if float(s["a"]) > limit:
            raise RuntimeError("too far")
        return s["a"] * 2.0 + s["b"]

    with pytest.raises(ModelError, match="point 6"):
        SequentialExecution(failing, space(), 0.5, checkpoint_dir=d, progress=False).run()
    done = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    assert done and done[-1].endswith("-00000000000000000006.npz")  # points [0, 6) kept


def test_sequential_checkpoint_options_checked(tmp_path):
    with pytest.raises(ValueError, match="SequentialExecution: `checkpoint_dir` is the empty string"):
        SequentialExecution(traced, space(), checkpoint_dir="")
    with pytest.raises(ValueError, match="SequentialExecution: `checkpoint_key` is given without"):
        SequentialExecution(traced, space(), checkpoint_key="k")
    out = SequentialExecution(lambda s, lock: jnp.sum(s["a"]), space(), object(), checkpoint_dir=tmp_path,
                              checkpoint_key="k", progress=False).run()
    assert len(out) == 12
