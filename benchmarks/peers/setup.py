"""Create one virtual environment per peer under benchmarks/peers/.venvs/ (needs PyPI).

    python benchmarks/peers/setup.py [NAME ...] [--force] [--jax VERSION]

NAME is one of haliax-dev, haliax-1.3, tvboptim, penzai (default: all). Run it with the Python of
namedax's own environment: "namedax's JAX" is the jax version installed there (or ``--jax``).
Each venv gets a ``status.json``; a peer that cannot be installed or imported is recorded there
with the error line, and benchmarks/run.py reports it instead of failing. For haliax-dev the newest
pre-releases are tried in turn until one imports on that JAX; for haliax 1.3 the script also
records why it needs an older JAX (its import error on the current one).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envs import ENVS, VENVS, PeerEnv  # noqa: E402

PIP_TIMEOUT = 1200
MAX_PRE_TRIES = 4


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING")]
    return (lines[-1] if lines else "")[:300]


def _sh(cmd: list[str], timeout: float = PIP_TIMEOUT) -> tuple[bool, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s: {' '.join(cmd)}"
    return p.returncode == 0, _last_line(p.stderr) or _last_line(p.stdout)


def _make_venv(path: Path, force: bool) -> tuple[bool, str]:
    if force and path.exists():
        shutil.rmtree(path)
    if (path / "bin" / "python").exists():
        return True, ""
    return _sh([sys.executable, "-m", "venv", str(path)], timeout=300)


def _pip(path: Path, reqs: list[str]) -> tuple[bool, str]:
    return _sh([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *reqs])


def _check(path: Path, code: str) -> tuple[bool, str]:
    ok, err = _sh([str(path / "bin" / "python"), "-W", "ignore", "-c", code], timeout=300)
    return ok, err.replace(str(path) + "/", "")  # no machine-specific paths in the report


def _pre_releases(python: Path, package: str) -> list[str]:
    p = subprocess.run([str(python), "-m", "pip", "index", "versions", "--pre", package], capture_output=True,
                       text=True, timeout=300)
    m = re.search(r"Available versions:\s*(.+)", p.stdout)
    listed = [v.strip() for v in m.group(1).split(",")] if m else []
    return [v for v in listed if re.search(r"(dev|a|b|rc)\d*$", v)]


def _versions(path: Path) -> dict:
    code = ("import json, importlib.metadata as m\nout = {}\n"
            "for d in ('haliax', 'penzai', 'tvboptim', 'jax', 'jaxlib', 'equinox', 'numpy'):\n"
            "    try: out[d] = m.version(d)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
    p = subprocess.run([str(path / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def setup(env: PeerEnv, jax_version: str | None, force: bool) -> dict:
    def fill(reqs):
        return [r.format(jax=jax_version) if jax_version else r.split("==")[0] if "{jax}" in r else r for r in reqs]

    t0 = time.perf_counter()
    status: dict = {"ok": False, "error": "", "requirements": fill(env.requirements), "notes": []}
    if env.probe:  # record why this peer needs another JAX: its error on namedax's
        probe = VENVS / f"_probe-{env.name}"
        ok, err = _make_venv(probe, force=True)
        if ok:
            ok, err = _pip(probe, fill(env.probe))
        if ok:
            ok, err = _check(probe, env.check)
        status["notes"].append(f"{' '.join(fill(env.probe))}: " + ("imports too" if ok else err))
        shutil.rmtree(probe, ignore_errors=True)
    ok, err = _make_venv(env.path, force)
    if ok:
        ok, err = _pip(env.path, status["requirements"])
    if ok and env.newest_pre:
        candidates = _pre_releases(env.python, env.newest_pre)
        if not candidates:
            ok, err = False, f"no pre-release of {env.newest_pre} listed by `pip index versions --pre`"
        for v in candidates[:MAX_PRE_TRIES]:
            ok, err = _pip(env.path, [f"{env.newest_pre}=={v}", *status["requirements"]])
            if ok:
                ok, err = _check(env.path, env.check)
            status["notes"].append(f"{env.newest_pre}=={v}: " + ("imports" if ok else err))
            if ok:
                status["requirements"].insert(0, f"{env.newest_pre}=={v}")
                break
    elif ok:
        ok, err = _check(env.path, env.check)
    status.update(ok=ok, error="" if ok else err, versions=_versions(env.path) if ok else {},
                  seconds=round(time.perf_counter() - t0))
    if env.path.exists():
        (env.path / "status.json").write_text(json.dumps(status, indent=1))
    print(f"{env.name}: {'ready' if ok else 'FAILED: ' + err} {status['versions'] or ''}", flush=True)
    for note in status["notes"]:
        print(f"  {note}", flush=True)
    return status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=", ".join(e.name for e in ENVS))
    p.add_argument("--force", action="store_true", help="delete and recreate existing venvs")
    p.add_argument("--jax", help="the JAX version of namedax's environment (default: the one this Python has)")
    args = p.parse_args(argv)
    unknown = set(args.names) - {e.name for e in ENVS}
    if unknown:
        p.error(f"unknown peer(s) {sorted(unknown)}; choose from {[e.name for e in ENVS]}")
    jax_version = args.jax
    if jax_version is None:
        try:
            jax_version = version("jax")
        except PackageNotFoundError:
            jax_version = None  # then the peers get the newest JAX pip resolves
    VENVS.mkdir(parents=True, exist_ok=True)
    results = [setup(e, jax_version, args.force) for e in ENVS if not args.names or e.name in args.names]
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
