"""The device engine (execution/_engine.py): compiled programs, chunking, padding, sizing of calls, progress."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution, SequentialExecution
from namedax.execution import _engine as _e
from namedax.spaces import GridSpace
from test_execution_executors import STATE, P, simulate, simulate_a


def test_static_arguments_equal_by_value_but_not_the_same_compile_apart():
    # Python scalars are compiled into the program; 0.0 == -0.0 (and 1 == True), but they are
    # different arguments: a cached program for one must not serve the other.
    space = GridSpace({"a": P("a", 1.0, 2.0)}, n=2)

    def model(s, k):
        return s["a"] / k

    with np.errstate(divide="ignore"):
        ref_pos, ref_neg = np.float32([1.0, 2.0]) / np.float32(0.0), np.float32([1.0, 2.0]) / np.float32(-0.0)
    np.testing.assert_array_equal(ParallelExecution(model, space, 0.0).run()[:], ref_pos)
    np.testing.assert_array_equal(ParallelExecution(model, space, -0.0).run()[:], ref_neg)
    np.testing.assert_array_equal(SequentialExecution(model, space, -0.0).run()[:], ref_neg)
    np.testing.assert_array_equal(SequentialExecution(model, space, 0.0).run()[:], ref_pos)


def test_padding_never_reaches_the_model():
    # a model that fails loudly on anything outside the space: padding repeats the last real point
    space = GridSpace({"a": P("a", 1.0, 2.0)}, n=7)

    def model(s):
        return eqx.error_if(s["a"], (s["a"] < 1.0) | (s["a"] > 2.0) | jnp.isnan(s["a"]), "not a point of the space")

    res = ParallelExecution(model, space, n_vmap=4).run()
    np.testing.assert_allclose(res[:], np.linspace(1, 2, 7, dtype=np.float32))


def test_explicit_n_vmap_is_honoured_and_auto_rule():
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=50)
    _e._CACHE.clear()
    ParallelExecution(simulate_a, space, n_vmap=6).run()
    assert {k[2] for k in _e._CACHE if k[0] == "sweep"} == {6}
    assert _e.auto_n_vmap(10**6, 1, 4, "cpu") == 1024
    assert _e.auto_n_vmap(1500, 1, 4, "cpu") == 750  # two equal chunks, not 1024 + padding
    assert _e.auto_n_vmap(50, 4, 4, "cpu") == 13
    assert _e.auto_n_vmap(2**20, 1, 4, "gpu") == 2**14
    assert _e.auto_n_vmap(10**6, 1, 4, "gpu") == 16130  # 62 equal chunks
    assert _e.auto_n_vmap(10**6, 1, 2**20, "cpu") == 16  # 16 MB of outputs per chunk at most


def test_indices_past_2_to_the_31():
    # 4.9e9 points: the engine's blocks near the end of the space (its host loop is plain Python ints)
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=70_000)
    dyn, static = _e.split(lambda s: s["a"] * 1000 + s["b"], (), {})
    layout, arr = _e.output_layout(static, space, dyn)
    sweep = _e.Sweep("test", static, space, dyn, arr, 4, 2, tuple(jax.devices()[:1]))
    got = {}
    sweep.run([(space.N - 13, space.N), (2**32 + 5, 2**32 + 9)],
              lambda start, count, host: got.update({start + k: host[0][k] for k in range(count)}))
    idx = sorted(got)
    assert idx == list(range(2**32 + 5, 2**32 + 9)) + list(range(space.N - 13, space.N))
    pts = space.points(idx)
    ref = np.asarray(pts["a"].value) * 1000 + np.asarray(pts["b"].value)
    np.testing.assert_allclose([got[i] for i in idx], ref, rtol=1e-7)


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_e, "_interactive", lambda: True)
    ParallelExecution(simulate, GridSpace(STATE, n=6), progress=True).run()
    err = capsys.readouterr().err
    assert "100%|" in err and "36.0/36.0" in err and "pt/s" in err
    ParallelExecution(simulate, GridSpace(STATE, n=6), progress=False).run()
    assert capsys.readouterr().err == ""



def _slow_model(seconds_per_point):
    """A model that takes ``seconds_per_point`` per point, vectorised or not (a sleeping callback)."""
    import time as _time

    def wait(a):
        _time.sleep(seconds_per_point * max(1, np.size(a)))
        return np.asarray(a, np.float32) * 2

    def model(s):
        return jax.pure_callback(wait, jax.ShapeDtypeStruct((), jnp.float32), s["a"].value, vmap_method="expand_dims")

    return model


def test_first_checkpoint_lands_within_seconds_for_a_slow_model(tmp_path, monkeypatch):
    # 2000 points at 10 ms: 20 s of work. The automatic chunk used to be 1000 points, so the first
    # block (at least one chunk) came after 10 s; now a slow model gets small chunks.
    import time as _time

    from namedax.execution import _checkpoint

    class Stop(Exception):
        pass

    written = []
    write = _checkpoint.Checkpoint.write

    def write_and_stop(self, start, count, leaves):
        write(self, start, count, leaves)
        written.append((_time.perf_counter(), start, count, leaves[0].copy()))
        raise Stop

    monkeypatch.setattr(_checkpoint.Checkpoint, "write", write_and_stop)
    space = GridSpace({"a": P("a", 0.0, 1.0)}, n=2000)
    t0 = _time.perf_counter()
    with pytest.raises(Stop):
        ParallelExecution(_slow_model(0.01), space, checkpoint_dir=tmp_path / "ck", progress=False).run()
    (t1, start, count, got), = written
    assert t1 - t0 < 4.0, f"first block after {t1 - t0:.1f} s ({count} points)"
    assert start == 0 and count <= 400
    assert (tmp_path / "ck" / f"block-{0:020d}-{count:020d}.npz").exists()
    np.testing.assert_allclose(got, np.linspace(0, 1, 2000, dtype=np.float32)[:count] * 2, rtol=1e-6)
    _time.sleep(0.3)  # the call dispatched after the first lets its callbacks finish
    # a fast model keeps the full chunk; the rule itself
    assert _e.auto_n_vmap(2000, 1, 4, "cpu", point_seconds=1e-6) == 1000
    assert _e.auto_n_vmap(2000, 1, 4, "cpu", point_seconds=0.01) == 100
    assert _e.auto_n_vmap(2000, 1, 4, "cpu", point_seconds=5.0) == 1


def test_progress_bar_says_when_checkpoints_are_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_e, "_interactive", lambda: True)
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: 5 blocks
    space = GridSpace(STATE, n=3)
    ParallelExecution(simulate, space, n_vmap=2, checkpoint_dir=tmp_path / "ck").run()
    err = capsys.readouterr().err
    assert "9.00/9.00" in err and "saved 5 blocks]" in err, err  # intermediate refreshes depend on timing
