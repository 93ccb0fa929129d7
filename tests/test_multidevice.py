"""Runs every file of tests/multidevice/ in its own python with 4 forced CPU devices (the flag must be
set before jax is imported, so it cannot be set in this process). One test per file; a failure shows
that run's report."""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent
FILES = sorted(p.name for p in (HERE / "multidevice").glob("test_*.py"))


@pytest.mark.parametrize("name", FILES)
def test_multidevice_file(name):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", "-rfE", f"multidevice/{name}"],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
