import os
import pathlib
import re
import subprocess
import sys

import pytest

from namedax.__main__ import main


def test_demo_runs_trains_and_sweeps(tmp_path, capsys):
    out = tmp_path / "sweep.png"
    main(["demo", "--grid", "4", "--steps", "6", "--out", str(out)])
    text = capsys.readouterr().out
    assert "add: axis 'embed' has size 3 in one operand and 5 in another" in text
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", text).groups())
    assert last < first  # a few SGD steps reduce the toy regression loss
    assert "swept 16 points" in text
    assert f"heatmap written to {out}" in text or "matplotlib is not installed" in text  # an absolute path
    assert "result axes (Axis('omega', 4), Axis('zeta', 4))" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in text and not out.exists()
    else:
        assert out.exists() and out.stat().st_size > 1000


def test_demo_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--grid", "--devices", "--steps", "--no-plot"):
        assert opt in text


def _run(args, env_extra=None):
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "NAMEDAX_DEMO_DEVICES")}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=True)


def test_demo_devices_flag_from_the_command_line():
    """`python -m namedax demo --devices 4` sweeps over 4 forced CPU devices (it used to fail)."""
    done = _run(["-m", "namedax", "demo", "--devices", "4", "--grid", "4", "--steps", "1", "--no-plot"])
    assert "devices: 4" in done.stdout and "sweeping over 4 devices (n_pmap=4)" in done.stdout
    assert "swept 16 points" in done.stdout
    assert 'x["batch", 1]     : [3.0, 4.0, 5.0]' in done.stdout  # namedax's own indexing syntax
    assert "ignoring" not in done.stderr


def test_demo_devices_flag_reruns_when_jax_has_already_started():
    """Called from a program whose JAX backend already runs (as the console script might be), the demo
    runs again in a fresh process with the flag set."""
    code = "import jax; jax.devices(); from namedax.__main__ import main; main(%r)"
    argv = ["demo", "--devices", "2", "--grid", "2", "--steps", "1", "--no-plot"]
    done = _run(["-c", code % argv], {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"})
    assert "JAX already started with 1 devices; running the demo again with 2" in done.stderr
    assert "devices: 2" in done.stdout and "swept 4 points" in done.stdout
