"""Smoke test of the benchmark runner: a tiny subset runs, gives finite ratios, writes a markdown table.

Never asserts on a timing: CI machines are shared and noisy; budgets are read from benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks` lives at the repository root, beside src/

from benchmarks import run  # noqa: E402


def test_quick_eager_subset_writes_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    rows = run.main(["--quick", "--only", "eager", "--no-peers", "--out", str(out)])
    assert rows, "the eager benchmark produced no rows"
    assert all("error" not in r for r in rows), [r["error"] for r in rows if "error" in r]
    assert {r["area"] for r in rows} == {"eager"}
    for r in rows:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0, r
        assert r["lo"] <= r["ratio"] <= r["hi"], r
        assert r["unit"] == "us" and r["budget"] == "<= 1.25"
    text = out.read_text()
    assert "## Eager ops" in text and "| case | namedax |" in text
    table = [ln for ln in text.splitlines() if ln.startswith("| x + y |")]
    assert len(table) == 1 and table[0].count("|") == 9  # one row per case, every column filled in
    assert "Machine:" in text and "jax 0." in text


def test_verdict():
    ok = dict(area="eager", case="c", lib=1.0, raw=1.0, unit="us", ratio=1.1, lo=1.0, hi=1.2, budget="<= 1.25")
    assert run.verdict(ok) == "ok"
    assert run.verdict({**ok, "ratio": 1.3}) == "MISSED"
    assert run.verdict({**ok, "budget": ">= 0.9", "ratio": 0.8}) == "MISSED"
    assert run.verdict({**ok, "budget": "time <= 100 us", "lib": 50.0}) == "ok"
    assert run.verdict({**ok, "budget": ""}) == ""


def test_crashing_benchmark_becomes_an_error_row(tmp_path):
    (tmp_path / "bench_boom.py").write_text("def run(quick):\n    raise RuntimeError('deliberate\\nsecond line')\n")
    (tmp_path / "bench_none.py").write_text("X = 1\n")
    rows = run.run_module("bench_boom", quick=True, area="eager", search=tmp_path)
    assert rows == [dict(area="eager", case="bench_boom crashed", error="RuntimeError: deliberate")]
    assert "| bench_boom crashed | failed |" in "\n".join(run.area_table(rows))
    rows = run.run_module("bench_none", quick=True, area="eager", search=tmp_path)
    assert "no entry point run(quick" in rows[0]["error"]


def test_stacked_state_benchmark_compares_one_computation():
    """The stateful-stack benchmark is registered, its two stacks agree (output and new state), and a
    tiny measurement gives one finite row per case."""
    from benchmarks import bench_stacked_state as bench

    assert run.MODULES["bench_stacked_state"] == "stacked_state" and "stacked_state" in run.AREAS
    # measure() first runs check_same, which raises (numpy assert_allclose) when namedax and the
    # hand-written stack differ in output or new state
    rows = bench.rows_of(bench.measure((2, 4), rounds=1))
    assert [r["case"] for r in rows] == [
        "compile, 2 layers", "step, 2 layers", "gradient step, 2 layers",
        "compile, 4 layers", "step, 4 layers", "gradient step, 4 layers",
        "compile growth, 4 / 2 layers",
    ]  # fmt: skip
    for r in rows:
        assert r["area"] == "stacked_state" and math.isfinite(r["ratio"]) and r["lo"] <= r["ratio"] <= r["hi"], r
        assert "OUTPUTS DIFFER" not in r.get("note", ""), r
    assert [r.get("budget") for r in rows if r.get("budget")] == ["<= 1.05", "<= 1.05", "<= 1.3"]


def test_optimize_benchmark_compares_one_computation():
    """The multi-start benchmark is registered, and namedax and the hand-written loop agree (measure()
    checks optima and losses with numpy's assert_allclose before timing)."""
    import pytest

    pytest.importorskip("optax")
    from benchmarks import bench_optimize as bench

    assert run.MODULES["bench_optimize"] == "optimize" and "optimize" in run.AREAS
    times = bench.measure(32, rounds=1)
    assert set(times) == {"nx", "hand"} and all(len(t) == 1 and t[0] > 0 for t in times.values())
