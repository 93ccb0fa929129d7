"""Test helpers: compare named results with positional references."""

import jax
import numpy as np

import namedax as nx


def to_numpy(x, order=None):
    """A NamedArray as a numpy array, its axes put in ``order`` (names) first."""
    if order is not None:
        x = nx.rearrange(x, order)
    return np.asarray(x.array)


def assert_named_close(x, ref, order, rtol=1e-5, atol=1e-6):
    """``x`` (a NamedArray) has exactly the axes named in ``order`` and, rearranged to that order,
    equals the positional reference ``ref``."""
    assert isinstance(x, nx.NamedArray), type(x)
    assert {a.name for a in x.axes} == set(order), (x.axes, order)
    np.testing.assert_allclose(to_numpy(x, order), np.asarray(ref), rtol=rtol, atol=atol)


def tree_allclose(a, b, rtol=1e-5, atol=1e-6):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


DISTRIBUTED = r"""
import os, sys
pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
import jax
jax.config.update("jax_num_cpu_devices", 2)
try:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=30)
except Exception as e:
    print("DISTRIBUTED_UNAVAILABLE", type(e).__name__, e, flush=True)
    sys.exit(0)
"""
"""The start of a `run_processes` script: two CPU devices per process, jax.distributed joined (or
DISTRIBUTED_UNAVAILABLE printed); ``pid``, ``port`` and ``out`` set from the arguments."""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(script: str, tmp_path, n: int = 2, timeout: float = 150) -> list[str]:
    """Run ``script`` in ``n`` local processes (argv: process id, a free coordinator port on 127.0.0.1,
    an output path ``tmp_path/out{pid}.npz``) and return their logs. Skips the calling test when a
    process printed ``DISTRIBUTED_UNAVAILABLE`` (jax.distributed cannot start here); fails unless
    every process exited 0 and printed ``DONE``."""
    import os
    import subprocess
    import sys
    import time

    import pytest

    path = tmp_path / "proc.py"
    path.write_text(script)
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    procs, logs = [], []
    for pid in range(n):
        log = open(tmp_path / f"log{pid}.txt", "w")
        logs.append(log)
        cmd = [sys.executable, str(path), str(pid), str(port), str(tmp_path / f"out{pid}.npz")]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    texts = [(tmp_path / f"log{pid}.txt").read_text() for pid in range(n)]
    if any("DISTRIBUTED_UNAVAILABLE" in t for t in texts):
        reason = next(ln for t in texts for ln in t.splitlines() if "DISTRIBUTED_UNAVAILABLE" in ln)
        pytest.skip("jax.distributed cannot start here: " + reason)
    for pid, (p, t) in enumerate(zip(procs, texts, strict=True)):
        assert p.returncode == 0 and "DONE" in t, f"process {pid} (exit {p.returncode}):\n{t[-4000:]}"
    return texts


def kill_then_resume(script: str, tmp_path, target, ready, timeout: float = 120) -> dict:
    """Run ``script run <target>`` in a subprocess, SIGKILL it once ``ready()`` is true (failing if it
    finished first), then run ``script resume <target>`` and return the JSON its last line prints."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "sweep.py"
    path.write_text(script)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    log = tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(path), "run", str(target)], env=env, stdout=f, stderr=f)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None and not ready():
                time.sleep(0.02)
            assert proc.poll() is None, "the sweep ended before it could be killed: " + log.read_text()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = subprocess.run([sys.executable, str(path), "resume", str(target)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
