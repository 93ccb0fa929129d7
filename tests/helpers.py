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


_RUNNER = """
import json, sys, textwrap, traceback
setup, checks = json.loads(sys.stdin.read())
ns = {}
exec(setup, ns)
for name, code in checks.items():
    try:
        exec(textwrap.dedent(code), dict(ns))
        print(json.dumps([name, "PASS"]))
    except BaseException:
        print(json.dumps([name, traceback.format_exc()]))
"""


def run_with_devices(setup: str, checks: dict[str, str], n: int = 4) -> dict[str, str]:
    """Run code snippets in one fresh python with ``n`` forced CPU devices (set before jax is
    imported); ``{name: "PASS" or the traceback}``, so each snippet reports as its own test."""
    import json
    import os
    import subprocess
    import sys
    import textwrap

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _RUNNER],
        input=json.dumps([textwrap.dedent(setup), checks]),
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(line) for line in proc.stdout.splitlines() if line.startswith("["))
