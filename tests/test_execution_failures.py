"""The failure policy (on_error=raise|nan|mark): models that diverge or raise on some points, checked
against a Python loop; Results.failed in flat order and by name; rerun of the failed points only;
the failure record through a checkpoint resume."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ModelError, ParallelExecution, SequentialExecution
from namedax.execution import _engine as _e
from namedax.spaces import GridSpace, Parameter


def P(name, low, high):
    return Parameter(name, 0.0, low=low, high=high, free=True)


# 6 x 5 = 30 points; r * dt > 2 makes the Euler steps blow up
SPACE = GridSpace({"r": P("r", 0.0, 50.0), "x0": P("x0", 0.5, 1.5)}, n={"r": 6, "x0": 5})


def diverging(state, dt):
    """dx/dt = -r x by explicit Euler, 200 steps: |1 - r dt| > 1 overflows to inf (or NaN)."""
    x = jax.lax.fori_loop(0, 200, lambda _, x: x - dt * state["r"] * x * jnp.abs(x), jnp.asarray(state["x0"]))
    return {"x": x, "steps": jnp.int32(200)}


def raising(state, limit):
    """Raises (equinox.error_if) where x0 > limit; a float, an int and a bool output."""
    v = eqx.error_if(state["r"] * state["x0"], state["x0"] > limit, "x0 too large")
    return {"v": v, "n": jnp.int32(7), "ok": v > 1.0}


def loop(model, *args, space=SPACE):
    """A Python loop over the points: each point's outputs, or None where the model raises."""
    out = []
    for i in range(space.N):
        try:
            out.append(jax.tree.map(np.asarray, model(space[i], *args)))
        except Exception:
            out.append(None)
    return out


def expected(rows, fill):
    """The loop's outputs stacked, failed points (None) given ``fill``'s values."""
    return jax.tree.map(lambda *xs: np.stack(xs), *[fill if r is None else r for r in rows])


def assert_same(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, equal_nan=True)
        assert g.dtype == w.dtype


def nonfinite(rows):
    return np.array([r is not None and not np.isfinite(r["x"]) for r in rows])


def run_all(model, *args, on_error, **opts):
    """The results of every executor and a few chunkings."""
    yield ParallelExecution(model, SPACE, *args, on_error=on_error, progress=False, **opts).run()
    for n_vmap in (1, 4, 7):
        yield ParallelExecution(model, SPACE, *args, n_vmap=n_vmap, on_error=on_error, progress=False, **opts).run()
    yield SequentialExecution(model, SPACE, *args, on_error=on_error, progress=False, **opts).run()


def test_diverging_model_under_each_policy():
    rows = loop(diverging, 0.1)
    bad = nonfinite(rows)
    assert 0 < bad.sum() < SPACE.N  # the test means something
    want = expected(rows, None)
    for policy in ("raise", "nan", "mark"):
        for res in run_all(diverging, 0.1, on_error=policy):
            assert_same(res[:], want)  # non-finite outputs are values under every policy
            if policy == "mark":
                np.testing.assert_array_equal(res.failed, bad)
                assert res.failed.dtype == np.bool_ and res.failed.shape == (SPACE.N,)
            else:
                assert res.failed is None


def test_failed_by_name():
    res = ParallelExecution(diverging, SPACE, 0.1, on_error="mark", progress=False).run()
    mask = res.failed_named()
    assert [(a.name, a.size) for a in mask.axes] == [("r", 6), ("x0", 5)]
    r = np.asarray(SPACE.points()["r"].value).reshape(6, 5)
    x0 = np.asarray(SPACE.points()["x0"].value).reshape(6, 5)
    ref = np.array([[not np.isfinite(np.asarray(diverging({"r": r[i, j], "x0": x0[i, j]}, 0.1)["x"]))
                     for j in range(5)] for i in range(6)])
    np.testing.assert_array_equal(np.asarray(mask.array), ref)
    with pytest.raises(ValueError, match=r"failed_named: .*no record of failed points; run the sweep with "
                                         r"on_error=\"mark\""):
        ParallelExecution(diverging, SPACE, 0.1, progress=False).run().failed_named()


def test_raising_model_under_each_policy(monkeypatch):
    rows = loop(raising, 1.1)
    raised = np.array([r is None for r in rows])
    assert 0 < raised.sum() < SPACE.N
    fill = {"v": np.float32(np.nan), "n": np.int32(0), "ok": np.bool_(False)}  # the documented fill values
    want = expected(rows, fill)
    with pytest.raises(ModelError, match="ParallelExecution: the model failed on point 3 .*x0 too large"):
        ParallelExecution(raising, SPACE, 1.1, progress=False).run()
    with pytest.raises(ModelError, match="SequentialExecution: the model failed on point 3 .*x0 too large"):
        SequentialExecution(raising, SPACE, 1.1, progress=False).run()
    for policy in ("nan", "mark"):
        for res in run_all(raising, 1.1, on_error=policy):
            assert_same(res[:], want)
            if policy == "mark":
                np.testing.assert_array_equal(res.failed, raised)
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # many small calls, several of them failing
    res = ParallelExecution(raising, SPACE, 1.1, n_vmap=2, on_error="mark", progress=False).run()
    assert_same(res[:], want)
    np.testing.assert_array_equal(res.failed, raised)


def test_raising_and_diverging_points_are_both_marked():
    def both(state, dt, limit):
        return diverging(state, dt)["x"] + raising(state, limit)["v"]

    rows = loop(both, 0.1, 1.4)
    want_failed = np.array([r is None or not np.isfinite(r) for r in rows])
    assert [r is None for r in rows].count(True) and nonfinite([{"x": r} if r is not None else None
                                                                for r in rows]).any()
    want = np.array([np.nan if r is None else r for r in rows], np.float32)
    for res in run_all(both, 0.1, 1.4, on_error="mark"):
        np.testing.assert_array_equal(res.failed, want_failed)
        np.testing.assert_allclose(res[:], want, rtol=1e-6, equal_nan=True)


def test_untraceable_model_fails_point_by_point():
    def picky(state, limit):
        if float(state["x0"]) > limit:  # Python control flow: run without jit
            raise ValueError("too large")
        return state["r"] * 2.0

    want = np.array([np.nan if float(SPACE[i]["x0"].value) > 1.2 else float(SPACE[i]["r"].value) * 2.0
                     for i in range(SPACE.N)], np.float32)
    res = SequentialExecution(picky, SPACE, 1.2, on_error="mark", progress=False).run()
    np.testing.assert_allclose(res[:], want, equal_nan=True)
    np.testing.assert_array_equal(res.failed, np.isnan(want))
    res = SequentialExecution(picky, SPACE, 0.0, on_error="nan", progress=False)
    with pytest.raises(ModelError, match="raised on every point; the first: .*too large"):
        res.run()
    fixed = SequentialExecution(picky, SPACE, 1.2, on_error="mark", progress=False).rerun(
        SequentialExecution(picky, SPACE, 1.2, on_error="mark", progress=False).run(), 2.0)
    np.testing.assert_allclose(fixed[:], np.asarray(SPACE.points()["r"].value) * 2.0)
    assert not fixed.failed.any()


def test_rerun_recomputes_only_the_failed_points():
    calls = []

    def counted(state, dt):
        jax.debug.callback(lambda: calls.append(1))
        return diverging(state, dt)

    for make in (ParallelExecution, SequentialExecution):
        ex = make(counted, SPACE, 0.1, on_error="mark", progress=False)
        first = ex.run()
        bad = first.failed.copy()
        calls.clear()
        fixed = ex.rerun(first, 0.001)  # a smaller step: every point converges
        assert first.failed is not fixed.failed and (first.failed == bad).all()  # the first results stay as they were
        small = loop(diverging, 0.001)
        want = expected([small[i] if bad[i] else jax.tree.map(np.asarray, first[i]) for i in range(SPACE.N)], None)
        assert_same(fixed[:], want)
        assert not fixed.failed.any()
        if make is SequentialExecution:
            assert len(calls) == bad.sum()  # only the failed points ran
        # a rerun that does not help keeps them marked; nothing failed: the same results back
        again = ex.rerun(first, 0.1)
        np.testing.assert_array_equal(again.failed, bad)
        assert ex.rerun(fixed, 0.1) is fixed


def test_rerun_every_point_with_failed_only_false():
    for make in (ParallelExecution, SequentialExecution):
        ex = make(diverging, SPACE, 0.1, progress=False)  # no failure record needed
        out = ex.rerun(ex.run(), 0.001, failed_only=False)
        assert_same(out[:], expected(loop(diverging, 0.001), None))
        assert not out.failed.any()
        with pytest.raises(TypeError, match="rerun: `failed_only` must be a bool, got 1"):
            ex.rerun(out, 0.001, failed_only=1)


def test_rerun_errors():
    ex = ParallelExecution(diverging, SPACE, 0.1, on_error="mark", progress=False)
    res = ex.run()
    with pytest.raises(ValueError, match=r"rerun: `results` hold no record of failed points; run with "
                                         r"on_error=\"mark\""):
        ex.rerun(ParallelExecution(diverging, SPACE, 0.1, progress=False).run(), 0.1)
    with pytest.raises(TypeError, match="rerun: `results` must be the Results of a run, got dict"):
        ex.rerun({}, 0.1)
    other = GridSpace({"r": P("r", 0.0, 5.0), "x0": P("x0", 0.5, 1.5)}, n=3)
    with pytest.raises(ValueError, match="rerun: `results` are of another space"):
        ParallelExecution(diverging, other, 0.1, on_error="mark").rerun(res, 0.1)

    def shaped(state, w):
        return state["r"] * w / (state["r"] - 10.0)  # inf at r = 10

    ex2 = ParallelExecution(shaped, SPACE, 1.0, on_error="mark")
    with pytest.raises(ValueError, match=r"rerun: with these arguments the model returns .*f4\[3\].* but the results "
                                         r"hold .*f4\[\]"):
        ex2.rerun(ex2.run(), jnp.ones(3))  # the output becomes a vector
    with pytest.raises(ValueError, match=r"ParallelExecution: `on_error` must be one of \('raise', 'nan', 'mark'\), "
                                         r"got 'ignore'"):
        ParallelExecution(diverging, SPACE, 0.1, on_error="ignore")
    with pytest.raises(ValueError, match="SequentialExecution: `on_error` must be one of"):
        SequentialExecution(diverging, SPACE, 0.1, on_error=None)


def test_failure_record_survives_a_checkpoint_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: many blocks
    d = tmp_path / "ck"
    rows = loop(raising, 1.1)
    raised = np.array([r is None for r in rows])
    full = ParallelExecution(raising, SPACE, 1.1, n_vmap=4, on_error="mark", checkpoint_dir=d).run()
    np.testing.assert_array_equal(full.failed, raised)
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    for f in blocks[2:4]:
        os.unlink(d / f)
    # resumed (another chunk size): the deleted blocks' points are recomputed, the rest read back
    back = ParallelExecution(raising, SPACE, 1.1, n_vmap=3, on_error="mark", checkpoint_dir=d).run()
    np.testing.assert_array_equal(back.failed, raised)
    assert_same(back[:], full[:])

    def no_compute(*a, **k):
        raise AssertionError("nothing should be computed")

    monkeypatch.setattr(_e, "Sweep", no_compute)  # every block there: the record comes from disk alone
    again = ParallelExecution(raising, SPACE, 1.1, n_vmap=3, on_error="mark", checkpoint_dir=d).run()
    np.testing.assert_array_equal(again.failed, raised)
    with pytest.raises(ValueError, match="holds a sweep run with on_error='mark', this run has on_error='nan'"):
        ParallelExecution(raising, SPACE, 1.1, on_error="nan", checkpoint_dir=d).run()
