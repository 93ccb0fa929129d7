"""Checkpoints that cannot be fooled (issue 18): refusals up front, ownership, blocks bound to range and content."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution
from namedax.spaces import GridSpace
from test_execution_executors import P


def model(s):
    return s["a"] * 2.0 + s["b"]


def space():
    return GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 4, "b": 3})


def reference():
    a = np.linspace(0.0, 1.0, 4, dtype=np.float32)[:, None]
    b = np.linspace(-1.0, 1.0, 3, dtype=np.float32)[None, :]
    return (a * np.float32(2.0) + b).reshape(-1)


def test_empty_checkpoint_dir_is_refused():
    with pytest.raises(ValueError, match="ParallelExecution: `checkpoint_dir` is the empty string"):
        ParallelExecution(model, space(), checkpoint_dir="")


def test_user_temp_files_survive(tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    (d / ".tmp-notes").write_text("mine")
    (d / ".tmp-x.npz").write_text("mine too")
    out = ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    np.testing.assert_allclose(np.asarray(out[:]), reference(), rtol=1e-6)
    assert (d / ".tmp-notes").read_text() == "mine" and (d / ".tmp-x.npz").read_text() == "mine too"


def test_live_process_temp_survives(tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    live = d / f".namedax-tmp-{os.getppid()}-inflight.npz"  # a living process's in-flight write
    live.write_bytes(b"partial")
    ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    assert live.exists()


def test_uncreatable_directory_fails_before_compute(tmp_path):
    calls = []

    def counted(s):
        calls.append(1)
        return jnp.sum(s["a"])

    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"ParallelExecution: checkpoint_dir '.*afile/ck' cannot be created"):
        ParallelExecution(counted, space(), checkpoint_dir=f / "ck", progress=False).run()
    assert len(calls) <= 1  # traced once for the output structure, never run


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_fails_before_compute(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    finally:
        d.chmod(0o700)


HOLD = """
import sys, time
from namedax.execution._checkpoint import _take
import pathlib
fd = _take("child", pathlib.Path(sys.argv[1]))
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_second_process_is_refused_while_the_first_owns_the_directory(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "ck"
    d.mkdir()
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d), "60"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "LOCKED"
        with pytest.raises(ValueError, match=rf"checkpoint_dir '.*ck' is in use by another running sweep "
                                             rf"\(pid {proc.pid}\)"):
            ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
        assert not any(f.startswith("block-") for f in os.listdir(d))  # nothing written by the refused run
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    # the owner died: the kernel released its lock, a new run works
    out = ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    np.testing.assert_allclose(np.asarray(out[:]), reference(), rtol=1e-6)


def test_second_executor_in_the_same_process_is_refused(tmp_path):
    import pathlib

    from namedax.execution._checkpoint import _take

    d = tmp_path / "ck"
    d.mkdir()
    fd = _take("test", pathlib.Path(d))
    try:
        with pytest.raises(ValueError, match=rf"in use by another running sweep \(pid {os.getpid()}, this process\)"):
            ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    finally:
        os.close(fd)
    ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()  # released: works
    ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()  # and a run releases it too


def other_model(s):
    return s["a"] * 3.0 - s["b"]


def _blocks(d):
    return sorted(f for f in os.listdir(d) if f.startswith("block-") and f.endswith(".npz"))


def _swap(d, tmp_path):
    a, b = _blocks(d)[:2]
    os.replace(d / a, tmp_path / "x")
    os.replace(d / b, d / a)
    os.replace(tmp_path / "x", d / b)
    return [a, b]


def _rename(d, tmp_path):
    a, b = _blocks(d)[:2]
    os.replace(d / a, d / b)  # b's name, a's points
    return [b]


def _truncate(d, tmp_path):
    b = _blocks(d)[1]
    (d / b).write_bytes((d / b).read_bytes()[:100])
    return [b]


def _flip(d, tmp_path):
    b = _blocks(d)[1]
    raw = bytearray((d / b).read_bytes())
    for i in (0, len(raw) // 2):  # the first byte and one in the data
        raw[i] ^= 0xFF
    (d / b).write_bytes(bytes(raw))
    return [b]


def _garbage(d, tmp_path):
    b = _blocks(d)[1]
    (d / b).write_bytes(os.urandom(300))
    return [b]


def _symlink_foreign(d, tmp_path):
    other = tmp_path / "other"
    ParallelExecution(other_model, space(), n_vmap=4, checkpoint_dir=other, progress=False).run()
    b = _blocks(d)[1]
    os.unlink(d / b)
    os.symlink(other / b, d / b)
    return [b]


def _directory(d, tmp_path):
    b = _blocks(d)[1]
    os.unlink(d / b)
    (d / b).mkdir()
    return [b]


@pytest.mark.parametrize("damage", [_swap, _rename, _truncate, _flip, _garbage, _symlink_foreign, _directory])
def test_damaged_or_foreign_blocks_are_named_and_recomputed(tmp_path, monkeypatch, caplog, damage):
    from namedax.execution import _engine as _e

    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: 3 blocks of 4 points
    d = tmp_path / "ck"
    ParallelExecution(model, space(), n_vmap=4, checkpoint_dir=d, progress=False).run()
    assert len(_blocks(d)) == 3
    bad = damage(d, tmp_path)
    with caplog.at_level("WARNING", logger="namedax.execution"):
        out = ParallelExecution(model, space(), n_vmap=4, checkpoint_dir=d, progress=False).run()
    np.testing.assert_allclose(np.asarray(out[:]), reference(), rtol=1e-6)
    for b in bad:
        assert f"checkpoint block {b!r}" in caplog.text and "its points are recomputed" in caplog.text
        assert os.path.lexists(d / (b + ".rejected"))
    caplog.clear()
    with caplog.at_level("WARNING", logger="namedax.execution"):  # the recomputed blocks are good
        again = ParallelExecution(model, space(), n_vmap=4, checkpoint_dir=d, progress=False).run()
    assert caplog.text == ""
    np.testing.assert_allclose(np.asarray(again[:]), reference(), rtol=1e-6)
    if damage is _symlink_foreign:  # the foreign sweep's file is untouched
        assert all((tmp_path / "other" / b).is_file() and not (tmp_path / "other" / b).is_symlink() for b in bad)


def test_a_crafted_huge_header_is_not_loaded(tmp_path, caplog):
    d = tmp_path / "ck"
    ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    (b,) = _blocks(d)
    import io
    import zipfile

    with zipfile.ZipFile(d / b, "w") as z:  # arr_0 claims 1e11 elements
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
        header["shape"] = (10**11,)
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        z.writestr("arr_0.npy", buf.getvalue() + b"\0" * 400_000)
        z.writestr("namedax_block.npy", b"")
    with caplog.at_level("WARNING", logger="namedax.execution"):
        out = ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    np.testing.assert_allclose(np.asarray(out[:]), reference(), rtol=1e-6)
    assert f"checkpoint block {b!r}" in caplog.text


@pytest.mark.parametrize("text, why", [
    ("[1, 2]", "holds a JSON list, not an object"),
    ('"manifest"', "holds a JSON str, not an object"),
    ("[" * 100_000 + "]" * 100_000, r"nested too deeply"),
    ("{not json", "JSONDecodeError"),
    ("drop outputs", r"lacks or mistypes \['outputs'\]"),
    ("N as text", r"lacks or mistypes \['N'\]"),
])
def test_garbage_manifest_is_named(tmp_path, text, why):
    import json

    d = tmp_path / "ck"
    ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()
    man = json.loads((d / "manifest.json").read_text())
    if text == "drop outputs":
        del man["outputs"]
        text = json.dumps(man)
    elif text == "N as text":
        man["N"] = "12"
        text = json.dumps(man)
    (d / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=rf"ParallelExecution: .*checkpoint manifest '.*manifest.json'.*{why}.*"
                       "pass another checkpoint_dir or delete it"):
        ParallelExecution(model, space(), checkpoint_dir=d, progress=False).run()


def test_damaged_argument_record_still_refuses_clearly(tmp_path):
    import json

    d = tmp_path / "ck"
    ParallelExecution(lambda s, k: s["a"] * k, space(), 2.0, checkpoint_dir=d, progress=False).run()
    man = json.loads((d / "manifest.json").read_text())
    man["argument_digests"] = {"args": 3}
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match="with other arguments \\(parts the damaged manifest cannot tell\\)"):
        ParallelExecution(lambda s, k: s["a"] * k, space(), 3.0, checkpoint_dir=d, progress=False).run()
