"""Model outputs a sweep cannot store are refused before the sweep, saying what the model returned (issue 18)."""

import jax
import numpy as np
import pytest

from namedax.execution import ParallelExecution, SequentialExecution
from namedax.spaces import GridSpace
from test_execution_executors import P


def space():
    return GridSpace({"a": P("a", 0.0, 1.0)}, n=3)


def eager_none(s):
    if float(s["a"]) > 2.0:  # Python control flow: SequentialExecution runs it without jit
        return s["a"]
    return None


@pytest.mark.parametrize("ex", [ParallelExecution, SequentialExecution])
@pytest.mark.parametrize("out, text", [(None, "None"), ({}, r"\{\}"), ((), r"\(\)"), ({"tag": "x"}, r"\{'tag': 'x'\}")])
def test_no_array_output(ex, out, text):
    calls = []

    def model(s):
        calls.append(1)
        return out

    with pytest.raises(TypeError, match=rf"{ex.__name__}: the model returned {text}, which holds no array; a model "
                       "must return an array"):
        ex(model, space(), progress=False).run()
    assert len(calls) <= 1  # refused when traced once, before the sweep


def test_no_array_output_eager():
    with pytest.raises(TypeError, match=r"SequentialExecution: on point 0 \(a=0\), the model returned None"):
        SequentialExecution(eager_none, space(), progress=False).run()


@pytest.mark.parametrize("ex", [ParallelExecution, SequentialExecution])
def test_typed_key_output(ex):
    def model(s):
        return {"k": jax.random.fold_in(jax.random.key(0), 1), "y": s["a"]}

    with pytest.raises(TypeError, match=rf"{ex.__name__}: the model returns a typed PRNG key at k \(key<fry>\[\]\); "
                       r"outputs are stored as numbers: return jax.random.key_data\(key\)"):
        ex(model, space(), progress=False).run()


def test_key_data_output_works():
    key = jax.random.key(0)
    out = ParallelExecution(lambda s: jax.random.key_data(key) + 0 * s["a"].astype("uint32"), space(),
                            progress=False).run()
    np.testing.assert_array_equal(np.asarray(out[:]), np.tile(np.asarray(jax.random.key_data(key)), (3, 1)))


@pytest.mark.parametrize("ex", [ParallelExecution, SequentialExecution])
def test_a_sweep_too_large_for_memory_is_refused_before_it_starts(ex):
    calls = []

    def model(s):
        calls.append(1)
        return s["a"] + s["b"]

    huge = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=10**6)  # 1e12 points, 3.64 TiB of float32
    with pytest.raises(ValueError, match=rf"{ex.__name__}: the outputs of the 1,000,000,000,000 points take 3.64 TiB "
                       r"\(4 bytes per point\), more than the .* of memory available; stream them to disk with "
                       r"store=\"results.zarr\", or sweep a smaller space"):
        ex(model, huge, progress=False).run()
    assert len(calls) <= 1


def test_memory_limit_can_be_set(monkeypatch):
    monkeypatch.setenv("NAMEDAX_RESULTS_MAX_BYTES", "40")
    out = ParallelExecution(lambda s: s["a"], GridSpace({"a": P("a", 0.0, 1.0)}, n=10), progress=False).run()
    np.testing.assert_allclose(np.asarray(out[:]), np.linspace(0, 1, 10, dtype=np.float32))
    with pytest.raises(ValueError, match="take 44 bytes .* more than the 40 bytes of memory allowed by "
                       "NAMEDAX_RESULTS_MAX_BYTES"):
        ParallelExecution(lambda s: s["a"], GridSpace({"a": P("a", 0.0, 1.0)}, n=11), progress=False).run()


@pytest.mark.parametrize("ex, kw", [(ParallelExecution, {"n_vmap": 4}), (SequentialExecution, {})])
def test_a_failing_point_is_reported_quietly(ex, kw, capfd, caplog):
    import logging

    import equinox as eqx

    from namedax.execution import ModelError

    def model(s):
        return eqx.error_if(s["a"] * 1.0, s["a"] > 0.7, "a too large")

    sp = GridSpace({"a": P("a", 0.0, 1.0)}, n=64)
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError) as info:
        ex(model, sp, progress=False, **kw).run()
    first = int(np.argmax(np.linspace(0, 1, 64, dtype=np.float32) > 0.7))
    assert info.value.point == first and str(info.value).endswith("a too large")
    out, err = capfd.readouterr()
    assert len((out + err).splitlines()) <= 2, out + err
    assert not [r for r in caplog.records if "callback failed" in r.getMessage()]
    assert logging.getLogger("jax._src.callback").filters == []  # restored after the run
