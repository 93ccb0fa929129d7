"""Run haliax's own tests against `namedax.compat.haliax` and print the pass count.

    python benchmarks/haliax_suite.py [--version 1.3] [--dir /tmp/haliax-suite] [pytest args...]

Downloads haliax's source distribution with ``pip download --no-binary :all:`` into a temporary
directory (nothing of haliax enters the repository: licence and size), writes a conftest that
aliases ``haliax`` and its submodules to `namedax.compat.haliax` in ``sys.modules``, and runs the
test files below with pytest. Offline (the download fails), it says so and exits 0.
The failures that remain are deliberate differences, listed in docs/migration_haliax.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TEST_FILES = ["core_test.py", "test_axis.py", "test_dot.py", "test_hof.py", "test_ops.py", "test_scan.py", "test_nn.py"]

CONFTEST = """\
import importlib
import sys

import namedax.compat.haliax as _hax

sys.modules["haliax"] = _hax
for _name in ("axis", "nn", "nn.scan", "random", "partitioning", "util"):
    sys.modules["haliax." + _name] = importlib.import_module("namedax.compat.haliax." + _name)
"""


def fetch(version: str, where: Path) -> Path | None:
    """The unpacked tests directory of haliax ``version`` under ``where``, or None if offline."""
    tests = where / f"haliax-{version}" / "tests"
    if tests.is_dir():
        return tests
    cmd = [sys.executable, "-m", "pip", "download", f"haliax=={version}", "--no-deps", "--no-binary", ":all:",
           "-d", str(where), "-q"]  # fmt: skip
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    (sdist,) = where.glob(f"haliax-{version}.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(where, filter="data")
    return tests if tests.is_dir() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="1.3")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "haliax-suite")
    args, pytest_args = parser.parse_known_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    tests = fetch(args.version, args.dir)
    if tests is None:
        print(f"haliax {args.version}: could not download its source distribution (offline?); nothing run")
        return 0
    run = args.dir / "run"
    run.mkdir(exist_ok=True)
    for name in TEST_FILES:
        (run / name).write_text((tests / name).read_text())
    (run / "conftest.py").write_text(CONFTEST)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(run), "-rf", *pytest_args]
    proc = subprocess.run([*cmd, *(str(run / n) for n in TEST_FILES)], cwd=run, capture_output=True, text=True)
    print(proc.stdout[-6000:])
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error)", proc.stdout.splitlines()[-1])}
    passed, total = counts.get("passed", 0), sum(counts.values())
    print(f"haliax {args.version} suite on namedax.compat.haliax: {passed}/{total} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
