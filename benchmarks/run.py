"""Run every namedax benchmark and write benchmarks/RESULTS.md.

    python -m benchmarks [--quick] [--only AREA ...] [--out PATH] [--no-peers] [--setup-peers]
    python benchmarks/run.py ...             (the same)

Each benchmark script (``bench_eager``, ``bench_vmap``, ``bench_stacked``, ``bench_stacked_state``,
``bench_sweep``, ``bench_sharding``, ``bench_attention``, ``bench_losses``, ``bench_decoder``, ``bench_optimize``) has an entry
point ``run(quick: bool) -> list[dict]`` whose rows compare namedax with its raw-JAX baseline measured in the
same run, rounds interleaved: ``lib`` and ``raw`` are median times (in ``unit``), ``ratio`` the median of the
per-round ratios lib / raw, ``lo`` / ``hi`` their spread (min, max), ``budget`` the budget
(docs/architecture.md) it is held to: a bound on the ratio (``"<= 1.25"``, ``">= 0.9"``) or on namedax's own
value in the row's unit (``"time <= 100 us"``, ``"memory <= 16 B/pt"``).

Peers (haliax, tvboptim, penzai) run in their own virtual environments under
``benchmarks/peers/.venvs/`` (made by ``python benchmarks/peers/setup.py``, or ``--setup-peers``) on
the same workloads, each against raw JAX in its own environment so that different JAX versions
compare fairly. Those whose environment exists are run in every mode; the others are listed with the
reason. ``--quick`` (fewer rounds, fewer sizes) takes a few minutes at most and is the CI smoke run:
its exit status is non-zero only when a benchmark crashes, never because of a timing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the bench_* scripts and peers/ are plain modules beside this file
    sys.path.insert(0, str(HERE))

from peers import envs as peer_envs  # noqa: E402 - after the path fix above

# area key -> (title, what the ratio compares, budget in words)
AREAS: dict[str, tuple[str, str]] = {
    "eager": ("Eager ops", "namedax op on small arrays (4x8, 8x16) vs the same `jax.numpy` call. "
              "Budget: at most 1.25x."),
    "vmap": ("vmap trace and run time", "Trace: `make_jaxpr` of `nx.vmap` over 1-3 axes vs nested "
             "`equinox.filter_vmap` (budget at most 1.0x). Jitted run: `jit(nx.vmap(f))` vs nested `jax.vmap`, "
             "after asserting the two jaxprs are equal (budget 1.00 within noise, checked as at most 1.05x)."),
    "stacked": ("Stacked compile and step time", "`nn.Stacked` of a residual MLP block vs a hand-written "
                "equinox + `lax.scan` stack. Budgets: compile time at 64 layers at most 1.3x that at 4 "
                "(\"compile growth\"); step time at most 1.05x hand-written."),
    "stacked_state": ("Stacked with per-layer state", "`nn.Stacked` of a residual block with `nn.BatchNorm` "
                      "(running statistics per layer, `fold(x, state)`) vs a hand-written equinox + `lax.scan` "
                      "stack threading the statistics as xs -> ys, checked first to compute the same output and "
                      "state. Budgets: compile growth 64 vs 4 layers at most 1.3x; step time at most 1.05x "
                      "hand-written."),
    "sweep": ("Sweep throughput and peak memory", "`ParallelExecution` vs the best hand-chunked "
              "`jit(lax.map(vmap(model)))`. Budgets: throughput at least 0.9x; memory a few bytes per point "
              "beyond the outputs."),
    "store": ("Sweeps on disk", "`ParallelExecution(..., store=path)` of a trivial model with one float32 output "
              "per point, streamed to a Zarr store, in a fresh process: peak resident memory (VmHWM) against a "
              "process that only imports jax, namedax and zarr. Budget: under 1 GB at 10^9 points (10^7 quick)."),
    "sharding": ("Sharding by name", "A 4-layer `nn.Stacked` MLP training step on a (data=2, model=2) mesh of 4 "
                 "forced CPU devices, placed by axis rules (`nx.sharding.shard`), vs the same math on positional "
                 "arrays placed with hand-written `NamedSharding`s, checked first to give the same loss and "
                 "parameters. Budgets: step time at most 1.05x; the same number of collectives in the compiled HLO; "
                 "equal parameter bytes per device."),
    "attention": ("Attention", "`nn.dot_product_attention` by name vs `jax.nn.dot_product_attention` on the same "
                  "arrays (batch 8, sequence 128, 4 heads of 64, causal mask), forward and forward + backward under "
                  "`jax.jit`, outputs checked equal first. Budget: at most 1.05x."),
    "losses": ("Fused cross-entropy", "`nn.fused_cross_entropy` (blockwise projection + loss, never materialising the "
               "logits) vs the unfused projection + optax cross-entropy at vocab 32768, value and gradient. Budgets: "
               "peak temporary memory (compiled `memory_analysis()`) at most a quarter of the unfused form; step "
               "time at most 1.2x."),
    "decoder": ("Decoder training step", "A 4-layer decoder-only transformer (embed 256, 4 heads, sequence 128, "
                "batch 8) written with namedax's attention, loss and `nn.Stacked` vs the same math positionally "
                "(`lax.scan`, `jax.nn.dot_product_attention`, optax), loss and gradients checked equal first. "
                "Budgets: step time at most 1.05x; compile time at most 1.15x."),
    "optimize": ("Multi-start optimisation", "`nx.execution.optimize` (Adam from every start of a `UniformSpace`, "
                 "three bounded parameters of a least-squares fit) vs a hand-written `jit(vmap(optax loop))` over the "
                 "same starts with the same sigmoid reparametrisation, optima and losses checked equal first. Budget: "
                 "throughput at least 0.9x."),
    "results": ("Results access", "Reading a finished sweep's `Results` vs indexing the raw output arrays. "
                "Budget: microseconds."),
}
# benchmark module -> the area its failure is reported under (a module may fill several areas)
MODULES = {"bench_eager": "eager", "bench_vmap": "vmap", "bench_stacked": "stacked",
           "bench_stacked_state": "stacked_state", "bench_sweep": "sweep", "bench_sharding": "sharding",
           "bench_attention": "attention", "bench_losses": "losses",
           "bench_decoder": "decoder", "bench_optimize": "optimize",
           "bench_store": "store"}


# ----------------------------------------------------------------------------- running


def _error_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]


def _child(name: str, quick: bool, out: str) -> None:
    """In the benchmark's own process: run it and write its rows (or its error line) to `out`."""
    try:
        mod = importlib.import_module(name)
        if not hasattr(mod, "run"):
            raise AttributeError(f"{name}.py has no entry point run(quick: bool) -> list[dict]")
        result = {"rows": [dict(r) for r in mod.run(quick)]}
    except Exception as e:  # noqa: BLE001 - reported in the table, the other areas still run
        traceback.print_exc()
        result = {"error": _error_line(e)}
    Path(out).write_text(json.dumps(result, default=float))


def run_module(name: str, quick: bool, *, area: str | None = None, search: Path = HERE) -> list[dict]:
    """One benchmark module's rows, run in a fresh process of its own: nothing one benchmark allocates or
    caches skews the next, and the process is small when a benchmark measures its subprocesses' peak RSS.
    A crash becomes one error row (and a non-zero exit status of `python -m benchmarks`)."""
    area = area or MODULES[name]
    t0 = time.perf_counter()
    print(f"== {name} ({'quick' if quick else 'full'})", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        code = (f"import sys; sys.path[:0] = [{str(search)!r}, {str(HERE)!r}]; import run; "
                f"run._child({name!r}, {quick!r}, {str(out)!r})")
        try:  # the benchmark's own table goes to our stderr, so stdout stays the report's
            err = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            err = None
        proc = subprocess.run([sys.executable, "-c", code], cwd=search, stdout=err)
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError):
            result = {"error": f"the benchmark process died (exit status {proc.returncode})"}
    if "error" in result:
        return [dict(area=area, case=f"{name} crashed", error=result["error"])]
    rows = result["rows"]
    for r in rows:
        r.setdefault("area", area)
    print(f"   {name}: {len(rows)} rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def run_peer(env: peer_envs.PeerEnv, quick: bool, timeout: float) -> dict:
    """Run one peer's workload script in its venv: {"env", "status", "meta", "rows", "error"}."""
    out = dict(env=env.name, label=env.label, status="ok", meta={}, rows=[], error="",
               notes=env.status().get("notes", []))
    problem = peer_envs.problem(env)
    if problem:
        out.update(status="unavailable", error=problem)
        return out
    cmd = [str(env.python), str(HERE / "peers" / env.script)] + (["--quick"] if quick else [])
    print(f"== peer {env.name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE / "peers",
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        out.update(status="failed", error=f"timed out after {timeout:.0f} s")
        return out
    sys.stderr.write(proc.stderr[-4000:])
    for line in proc.stdout.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "meta" in item:
            out["meta"] = item["meta"]
        else:
            out["rows"].append(item)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        out.update(status="failed", error=(lines[-1] if lines else f"exit status {proc.returncode}")[:300])
    return out


# ----------------------------------------------------------------------------- machine and versions


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{rev}{' + uncommitted changes' if dirty else ''}" if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict:
    import jax

    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": mem,
        "devices": f"{jax.device_count()} x {jax.devices()[0].platform}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _pkg(p) for p in ("namedax", "jax", "jaxlib", "equinox", "jaxtyping", "numpy")},
        "commit": _git_rev(),
    }


# ----------------------------------------------------------------------------- verdicts and formatting


def verdict(row: dict) -> str:
    """'ok' or 'MISSED' against the row's budget, '' when it has none (judged on the median)."""
    budget = (row.get("budget") or "").strip()
    if not budget or "error" in row:
        return ""
    op, _, rest = budget.partition(" ")
    if op not in ("<=", ">="):  # "time <= 100 us": an absolute bound on namedax's own value
        op, value, unit = rest.split(maxsplit=2)
        if unit != row.get("unit"):
            return ""
        x, limit = row["lib"], float(value)
    else:
        x, limit = row["ratio"], float(rest)
    if not (isinstance(x, int | float) and math.isfinite(x)):
        return ""
    ok = x <= limit if op == "<=" else x >= limit if op == ">=" else True
    return "ok" if ok else "MISSED"


def _num(x: float) -> str:
    if not _finite(x):
        return "n/a"
    a = abs(x)
    return f"{x:.3g}" if a < 10 else f"{x:.0f}" if a >= 1000 else f"{x:.1f}"


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _ratio(row: dict) -> str:
    return f"{row['ratio']:.2f}" if _finite(row.get("ratio")) else "n/a"


def _spread(row: dict) -> str:
    if not (_finite(row.get("lo")) and _finite(row.get("hi"))):
        return ""
    return "single run" if row["lo"] == row["hi"] == row["ratio"] else f"{row['lo']:.2f} - {row['hi']:.2f}"


def _cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def area_table(rows: list[dict]) -> list[str]:
    out = ["| case | namedax | baseline | raw JAX | ratio (median) | spread (min - max) | budget | verdict |",
           "|---|---:|---|---:|---:|---:|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {_cell(r['case'])} | failed | | | | | | `{_cell(r['error'])}` |")
            continue
        unit = r.get("unit", "")
        case = r["case"] + (f" ({r['note']})" if r.get("note") else "")
        out.append(f"| {_cell(case)} | {_num(r['lib'])} {unit} | {_cell(r.get('baseline', 'raw JAX'))} | "
                   f"{_num(r['raw'])} {unit} | {_ratio(r)} | {_spread(r)} | {_cell(r.get('budget', ''))} | "
                   f"{verdict(r)} |")
    return out


def peer_section(peers: list[dict], ours: list[dict]) -> list[str]:
    by_case = {(r.get("area"), r.get("case")): r for r in ours if "error" not in r}
    out = ["## Peers", "",
           "Each peer runs the same workloads in its own virtual environment (`benchmarks/peers/`), timed against "
           "raw JAX in that environment, so the ratios compare fairly across JAX versions. The last column is "
           "namedax's ratio for the same case in this run (blank where namedax has no such case).", ""]
    for p in peers:
        meta = p.get("meta") or {}
        title = f"### {p['label']}"
        if meta:
            extra = ", ".join(f"{k} {v}" for k, v in meta.items() if k not in ("peer", "version"))
            title += f": {meta.get('peer')} {meta.get('version')} ({extra})"
        out += [title, ""]
        out += [f"- setup: `{_cell(n)}`" for n in p.get("notes", [])] + ([""] if p.get("notes") else [])
        if p["status"] != "ok":
            out += [f"Not measured ({p['status']}): `{_cell(p['error'])}`", ""]
            if not p["rows"]:
                continue
        out += ["| area | case | peer | raw JAX | ratio (median) | spread (min - max) | namedax ratio |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in p["rows"]:
            if "error" in r:
                out.append(f"| {r['area']} | {_cell(r['case'])} | failed | | | | `{_cell(r['error'])}` |")
                continue
            unit = r.get("unit", "")
            ref = by_case.get((r["area"], r["case"]))
            case = r["case"] + (f" ({r['note']})" if r.get("note") else "")
            out.append(f"| {r['area']} | {_cell(case)} | {_num(r['lib'])} {unit} | {_num(r['raw'])} {unit} | "
                       f"{_ratio(r)} | {_spread(r)} | {_ratio(ref) if ref else ''} |")
        out.append("")
    return out


def render(rows: list[dict], info: dict, peers: list[dict] | None, *, quick: bool, seconds: float) -> str:
    v = info["versions"]
    lines = [
        "# namedax benchmark results", "",
        f"Written by `python -m benchmarks{' --quick' if quick else ''}` on "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s "
        f"({'quick mode: few rounds, indicative only' if quick else 'full mode'}).", "",
        "Every ratio is namedax / raw-JAX baseline measured in the same run, rounds interleaved so machine load "
        "hits both alike: the median of the per-round ratios, and their spread (min - max) over the rounds. "
        "Times are medians. Below 1 is faster than the baseline. Verdicts judge the median against the budget "
        "of docs/architecture.md; on a loaded machine read the spread too.", "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory']} memory, {info['devices']}, "
        f"{info['os']}",
        f"- Python {info['python']}; namedax {v['namedax']} (commit {info['commit']}), jax {v['jax']}, "
        f"jaxlib {v['jaxlib']}, equinox {v['equinox']}, jaxtyping {v['jaxtyping']}, numpy {v['numpy']}", "",
    ]
    checked = [r for r in rows if verdict(r)]
    missed = [r for r in checked if verdict(r) == "MISSED"]
    failed = [r for r in rows if "error" in r]
    lines += ["## Budgets", "",
              f"{len(checked) - len(missed)} of {len(checked)} budgeted rows within budget"
              + (f"; {len(failed)} benchmark(s) failed" if failed else "") + "."]
    if missed:
        def measured(r):
            if r["budget"].split()[0] in ("<=", ">="):
                return f"ratio {r['ratio']:.3f} (spread {_spread(r)})"
            return f"{_num(r['lib'])} {r['unit']}"

        lines += ["", "Missed:", ""] + [
            f"- {AREAS.get(r['area'], (r['area'],))[0]}: {r['case']}: {measured(r)}, budget {r['budget']}"
            for r in missed]
    lines.append("")
    for key, (title, what) in AREAS.items():
        area_rows = [r for r in rows if r.get("area") == key]
        lines += [f"## {title}", "", what, ""]
        lines += area_table(area_rows) if area_rows else ["Not run."]
        lines.append("")
    other = [r for r in rows if r.get("area") not in AREAS]
    if other:
        lines += ["## Other", ""] + area_table(other) + [""]
    if peers is not None:
        lines += peer_section(peers, rows)
    lines += ["## Reproduce", "", "```bash",
              "python -m benchmarks                      # everything, full rounds: writes benchmarks/RESULTS.md",
              "python -m benchmarks --quick              # the CI smoke run (a few minutes)",
              "python benchmarks/peers/setup.py          # once: one virtual environment per peer",
              "python -m benchmarks --only eager vmap    # some areas only",
              "```", ""]
    return "\n".join(lines)


DOCS_BEGIN = "<!-- results: begin (written by `python -m benchmarks --update-docs`; do not edit by hand) -->"
DOCS_END = "<!-- results: end -->"


def update_docs(report: str, page: Path) -> None:
    """Replace the part of the docs page between its result markers with the report (one level down)."""
    text = page.read_text()
    head, sep1, rest = text.partition(DOCS_BEGIN)
    _, sep2, tail = rest.partition(DOCS_END)
    if not (sep1 and sep2):
        raise ValueError(f"{page} lacks the result markers {DOCS_BEGIN!r} ... {DOCS_END!r}")
    body = report.split("\n## Reproduce", 1)[0]  # the page explains reproducing in its own words
    body = body.split("\n", 1)[1]  # drop the report's title: the page has its own
    body = "\n".join("#" + ln if ln.startswith("## ") or ln.startswith("### ") else ln for ln in body.splitlines())
    page.write_text(f"{head}{DOCS_BEGIN}\n{body.strip()}\n\n{DOCS_END}{tail}")


# ----------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the selected benchmarks, write the report, return namedax's rows (peer rows under "peers")."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few rounds and sizes: the CI smoke run")
    p.add_argument("--only", nargs="+", choices=sorted(set(MODULES.values())), metavar="AREA",
                   help=f"run only these benchmark scripts, by area: {', '.join(sorted(set(MODULES.values())))}")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="where to write the markdown report")
    p.add_argument("--no-peers", action="store_true", help="skip the peers even where their venvs exist")
    p.add_argument("--setup-peers", action="store_true", help="create the peers' venvs first (needs PyPI)")
    p.add_argument("--json", type=Path, help="also write every row as JSON here")
    p.add_argument("--update-docs", action="store_true",
                   help="also copy the tables into docs/performance.md (between its result markers)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    rows: list[dict] = []
    for name, area in MODULES.items():
        if args.only and area not in args.only:
            continue
        rows += run_module(name, args.quick)
    peers = None
    if not args.no_peers:
        if args.setup_peers:
            subprocess.run([sys.executable, str(HERE / "peers" / "setup.py")], check=False)
        peers = [run_peer(env, args.quick, timeout=600 if args.quick else 2400) for env in peer_envs.ENVS]
    info = machine_info()
    text = render(rows, info, peers, quick=args.quick, seconds=time.perf_counter() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.update_docs:
        update_docs(text, HERE.parent / "docs" / "performance.md")
    if args.json:
        args.json.write_text(json.dumps(dict(info=info, rows=rows, peers=peers), indent=1, default=str))
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return rows


def cli(argv: list[str] | None = None) -> int:
    """`python -m benchmarks`: exit status 1 when a namedax benchmark crashed (never for a timing)."""
    rows = main(argv)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(cli())
