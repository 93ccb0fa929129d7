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

