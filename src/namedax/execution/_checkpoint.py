"""Checkpoints of a sweep: a manifest and one file per finished block, each written atomically.

Layout of ``checkpoint_dir``::

    manifest.json                            what is swept: space fingerprint, outputs, model, arguments
    block-<start:020d>-<stop:020d>.npz       the outputs of points [start, stop), one array per leaf, and a
                                             record (member ``namedax_block``): sweep id, range, blake2b of the arrays,
                                             dtype names (bfloat16, float8, int4 ... leaves are stored as
                                             their bit patterns, which ``.npy`` keeps losslessly)
    .namedax-lock                            flock'ed by the run that owns the directory; holds its pid

A block file is written to a temporary name (``.namedax-tmp-<pid>-...``) in the same directory,
flushed to disk, then renamed, so a file with a final name is always complete, even after SIGKILL.
A run owns the directory for its whole length through an ``fcntl.flock`` (released by the kernel
when the process dies), so a second run into it is refused up front; the directory is probed for
writability before any compute. Only namedax's own temp files of this process or of a dead one are
ever deleted. Resuming reads the manifest, refuses a directory that holds another sweep (another
space, output structure, model or arguments), loads the finished blocks and returns the ranges still
to compute. A block that is not this sweep's intact block of the range its name says (swapped,
renamed, damaged, foreign, a symlink) is never used: it is logged by name (logger
``namedax.execution``), renamed to ``<name>.rejected`` and its points recomputed; recomputing rather
than refusing keeps a run going, and the block is only ever a cache of what the model computes.
Blocks never need to line up with the resumed run's calls: any set of finished ranges works.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pathlib
import re
import tempfile
import zipfile
from typing import Any

import jax
import numpy as np

from ..core._digest import Unfingerprintable, code_digest, digest, digest_of, stable_repr
from ._keys import fingerprint

_log = logging.getLogger("namedax.execution")

_MANIFEST = "manifest.json"
_META = "namedax_block"  # the npz member recording the block's sweep, range and content hash
_LOCK = ".namedax-lock"  # flock'ed by the writing run, for the whole run; holds its pid
_FORMAT = "namedax-sweep/5"  # 2: code and per-argument digests; 3: one digest encoding, per-part space digests;
# 4: owner lock, pid-named temps, blocks bound to their range and content; 5: digests by content,
# checkpoint_key, the random key and the failure policy (under "mark" every block holds the failure
# record as its last leaf)
_BLOCK = re.compile(r"^block-(\d{20})-(\d{20})\.npz$")


_TMP = ".namedax-tmp-"  # + "<pid>-": namedax only ever deletes files it named itself


def _atomic_write(path: pathlib.Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_TMP}{os.getpid()}-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Checkpoint:
    """An open checkpoint directory; `write` saves one finished block (process 0 only writes)."""

    def __init__(self, path: pathlib.Path, writer: bool, lock: int | None = None):
        self.path = path
        self.writer = writer
        self._lock = lock

    def close(self) -> None:
        """Release the directory (the kernel also releases it when the process dies)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @classmethod
    def open(cls, op: str, path: Any, manifest: dict, arrays: list[np.ndarray], writer: bool
             ) -> tuple[Checkpoint, list[tuple[int, int]]]:
        """Check or create the manifest, load finished blocks into ``arrays``; the missing ranges."""
        path, lock = own(op, path, writer)
        try:
            return cls._open(op, path, manifest, arrays, writer, lock)
        except BaseException:
            if lock is not None:
                os.close(lock)
            raise

    @classmethod
    def _open(cls, op, path, manifest, arrays, writer, lock):
        mpath = path / _MANIFEST
        blocks = [(m, f) for f in sorted(os.listdir(path)) if (m := _BLOCK.match(f))]
        if mpath.exists():
            _compare(op, path, _read_manifest(op, mpath, manifest), manifest)
        else:
            if blocks:
                raise ValueError(f"{op}: checkpoint_dir {str(path)!r} holds block files but no {_MANIFEST}; "
                                 "it is not a namedax checkpoint (or is damaged): pass another directory")
            if writer:
                text = json.dumps(manifest, indent=1, sort_keys=True)
                _atomic_write(mpath, lambda f: f.write(text.encode()))
        if writer:
            _remove_stale_temps(path)
        n, sweep = manifest["N"], _sweep_id(manifest)
        done = []
        for m, f in blocks:
            start, stop = int(m.group(1)), int(m.group(2))
            why = _check_block(path / f, sweep, start, stop, n, arrays)
            if isinstance(why, str):  # never used: reported by name and its points recomputed
                _log.warning("%s: checkpoint block %r in %r %s; ignored, its points are recomputed%s", op, f,
                             str(path), why, f" (kept as {f + '.rejected'!r})" if writer else "")
                if writer:
                    try:
                        os.replace(path / f, path / (f + ".rejected"))
                    except OSError:
                        pass
                continue
            for dst, a in zip(arrays, why, strict=True):
                dst[start:stop] = a
            done.append((start, stop))
        ck = cls(path, writer, lock)
        ck.sweep = sweep
        return ck, _missing(done, n)

    def write(self, start: int, count: int, leaves: list[np.ndarray]) -> None:
        if not self.writer:
            return
        stop = start + count
        leaves = [np.ascontiguousarray(a) for a in leaves]
        meta = {"sweep": self.sweep, "start": start, "stop": stop, "hash": _block_hash(self.sweep, start, stop, leaves),
                "dtypes": [a.dtype.name for a in leaves]}
        tag = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        stored = [_bits(a) for a in leaves]
        _atomic_write(self.path / f"block-{start:020d}-{stop:020d}.npz",
                      lambda f: np.savez(f, *stored, **{_META: tag}))


def _portable(dtype: np.dtype) -> bool:
    """Whether ``.npy`` files keep this dtype (bfloat16, float8, int4 ... of ml_dtypes come back as void)."""
    try:
        return np.lib.format.descr_to_dtype(np.lib.format.dtype_to_descr(dtype)) == dtype
    except Exception:
        return False


def _bits(a: np.ndarray) -> np.ndarray:
    """``a`` as stored: itself, or its bit pattern as unsigned ints (its dtype name is in the record)."""
    return a if _portable(a.dtype) else a.view(f"u{a.dtype.itemsize}")


def _unbits(a: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """A stored leaf back in ``dtype``: a bit pattern is viewed as the dtype its record names."""
    if _portable(dtype) or a.dtype != np.dtype(f"u{dtype.itemsize}") or name != dtype.name:
        return a
    return a.view(dtype)


def _sweep_id(manifest: dict) -> str:
    """What binds a block to its sweep: a digest of the manifest's compared fields."""
    keys = ("format", "space", "N", "outputs", "model", "code", "arguments", "key", "on_error")
    return hashlib.blake2b(json.dumps([manifest[k] for k in keys]).encode(), digest_size=16).hexdigest()


def _block_hash(sweep: str, start: int, stop: int, leaves: list[np.ndarray]) -> str:
    h = hashlib.blake2b(json.dumps([sweep, start, stop]).encode(), digest_size=32)
    for a in leaves:
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_block(file: pathlib.Path, sweep: str, start: int, stop: int, n: int, arrays: list[np.ndarray]
                 ) -> list[np.ndarray] | str:
    """The block's arrays if it is this sweep's block of exactly [start, stop) with intact content, else why not."""
    if not 0 <= start < stop <= n:
        return f"is outside the {n} points of the space"
    if file.is_symlink():
        return "is a symbolic link (blocks are only ever written as files)"
    want = [(stop - start,) + dst.shape[1:] for dst in arrays]
    names = {f"arr_{k}.npy" for k in range(len(arrays))} | {_META + ".npy"}
    try:
        with zipfile.ZipFile(file) as z:  # sizes first: a crafted header must not allocate without bound
            sizes = {i.filename: i.file_size for i in z.infolist()}
        if set(sizes) != names:
            return f"holds {sorted(sizes)}, expected {sorted(names)}"
        for k, (dst, shape) in enumerate(zip(arrays, want, strict=True)):
            if sizes[f"arr_{k}.npy"] > int(np.prod(shape)) * dst.dtype.itemsize + 4096:
                return f"has a leaf {k} larger than the {list(shape)} values it should hold"
        if sizes[_META + ".npy"] > 65536:
            return "has an oversized record"
        with np.load(file, allow_pickle=False) as z:
            meta = json.loads(z[_META].tobytes())
            leaves = [z[f"arr_{k}"] for k in range(len(arrays))]
    except Exception as e:  # truncated, bit-flipped or garbage: unreadable
        return f"cannot be read ({type(e).__name__}: {e})"
    if not isinstance(meta, dict) or meta.get("sweep") != sweep:
        return "was written by another sweep"
    if (meta.get("start"), meta.get("stop")) != (start, stop):
        return f"holds points [{meta.get('start')}, {meta.get('stop')}), not the [{start}, {stop}) of its name"
    dtypes = meta.get("dtypes")
    if not isinstance(dtypes, list) or len(dtypes) != len(arrays):
        return "has a record without the dtypes of its leaves"
    leaves = [_unbits(a, dst.dtype, name) for a, dst, name in zip(leaves, arrays, dtypes, strict=True)]
    for k, (a, dst, shape) in enumerate(zip(leaves, arrays, want, strict=True)):
        if a.shape != shape or a.dtype != dst.dtype:
            return f"has leaf {k} of {a.dtype}{list(a.shape)}, expected {dst.dtype}{list(shape)}"
    if meta.get("hash") != _block_hash(sweep, start, stop, leaves):
        return "has content that does not match its recorded hash (damaged or altered)"
    return leaves


def own(op: str, path: Any, writer: bool, what: str = "checkpoint_dir") -> tuple[pathlib.Path, int | None]:
    """The directory, created if need be, and (for the writer) probed and locked for this run."""
    path = pathlib.Path(os.fspath(path))
    if path.exists() and not path.is_dir():
        raise ValueError(f"{op}: {what} {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{op}: {what} {str(path)!r} cannot be created: {e}") from None
    if not writer:
        return path, None
    _probe(op, path, what)
    return path, _take(op, path, what)


def _probe(op: str, path: pathlib.Path, what: str = "checkpoint_dir") -> None:
    """Fail before any compute if the directory cannot take a file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path, prefix=f"{_TMP}{os.getpid()}-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ValueError(f"{op}: {what} {str(path)!r} is not writable ({e}); pass a writable directory "
                         "or fix its permissions") from None


def _take(op: str, path: pathlib.Path, what: str = "checkpoint_dir") -> int:
    """Own the directory for this run: an exclusive flock on its lock file, or an error naming the owner."""
    fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ValueError(f"{op}: {what} {str(path)!r} is in use by another running sweep (pid {owner}"
                         f"{', this process' if owner == str(os.getpid()) else ''}); wait for it to finish or pass "
                         f"another {what}") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _remove_stale_temps(path: pathlib.Path) -> None:
    """Delete temp files left by a run killed mid-write: only namedax's own, of this process or a dead one."""
    for f in os.listdir(path):
        m = re.match(rf"^{re.escape(_TMP)}(\d+)-", f)
        if m and (int(m.group(1)) == os.getpid() or not _alive(int(m.group(1)))):
            try:
                os.unlink(path / f)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


def _missing(done: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    out, p = [], 0
    for a, b in sorted(done):
        if a > p:
            out.append((p, a))
        p = max(p, b)
    if p < n:
        out.append((p, n))
    return out


def _read_manifest(op: str, mpath: pathlib.Path, new: dict) -> dict:
    """The manifest on disk, or an error naming the file if it is not a readable namedax manifest."""
    fix = "it is damaged or not namedax's; pass another checkpoint_dir or delete it"
    try:
        old = json.loads(mpath.read_text())
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        why = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{op}: cannot read the checkpoint manifest {str(mpath)!r} ({why}); {fix}") from None
    if not isinstance(old, dict):
        raise ValueError(f"{op}: the checkpoint manifest {str(mpath)!r} holds a JSON {type(old).__name__}, not an "
                         f"object; {fix}")
    if old.get("format") == _FORMAT:  # (an older format is refused by name in `_compare`)
        bad = [k for k, v in new.items() if type(old.get(k)) is not type(v)
               and not (k == "key" and (old.get(k) is None or isinstance(old.get(k), list)))]  # key: list or null
        if bad:
            raise ValueError(f"{op}: the checkpoint manifest {str(mpath)!r} lacks or mistypes {bad}; {fix}")
    return old


def _compare(op: str, path: pathlib.Path, old: dict, new: dict, what: str = "checkpoint_dir") -> None:
    where = f"{what} {str(path)!r}"
    if old.get("format") != _FORMAT:
        raise ValueError(f"{op}: {where} has a manifest of format {old.get('format')!r}, not {_FORMAT!r}: it was "
                         f"written by another version of namedax and cannot be resumed; pass another {what} "
                         "or delete it")
    if old.get("space") != new["space"] or old.get("N") != new["N"]:
        raise ValueError(
            f"{op}: {where} holds a sweep of a different space, so it cannot be resumed here: it was made for "
            f"{old.get('space_repr')} (fingerprint {str(old.get('space'))[:12]}...), this run sweeps "
            f"{new['space_repr']} (fingerprint {new['space'][:12]}...); they differ in "
            f"{_which(_which_space_parts, old, new)}; pass another {what} or delete it"
        )
    if old.get("outputs") != new["outputs"]:
        raise ValueError(f"{op}: {where} holds outputs of another structure: {old.get('outputs')}, this model returns "
                         f"{new['outputs']}; pass another {what} or delete it")
    if old.get("model") == new["model"] and old.get("code") != new["code"]:
        raise ValueError(f"{op}: {where} holds a sweep of another model: {new['model']!r}, but with other code or "
                         "captured values (its body, a closure, a default or a function it calls changed); pass "
                         f"another {what} or delete it")
    if old.get("model") != new["model"]:
        raise ValueError(f"{op}: {where} holds a sweep of another model ({old.get('model')!r}, this run "
                         f"{new['model']!r}); pass another {what} or delete it")
    if old.get("key") != new["key"]:
        raise ValueError(f"{op}: {where} holds a sweep run with another random `key` "
                         f"({'no key' if old.get('key') is None else 'a different key'} then, "
                         f"{'no key' if new['key'] is None else 'this key'} now): its points drew other random "
                         f"numbers; pass another {what} or delete it")
    if old.get("on_error") != new["on_error"]:
        raise ValueError(f"{op}: {where} holds a sweep run with on_error={old.get('on_error')!r}, this run has "
                         f"on_error={new['on_error']!r}; pass another {what} or delete it")
    if old.get("arguments") != new["arguments"]:
        raise ValueError(f"{op}: {where} holds a sweep of the same model {new['model']!r} with other arguments "
                         f"({_which(_which_arguments, old, new)}); pass another {what} or delete it")


def _which(explain, old: dict, new: dict) -> str:
    try:
        return explain(old, new)
    except (TypeError, AttributeError, KeyError, ValueError):  # a hand-edited manifest: no details
        return "parts the damaged manifest cannot tell"


def _which_space_parts(old: dict, new: dict) -> str:
    """Which parts of the space differ, from the manifests' per-part digests (`AbstractSpace._digests`)."""
    o, n = old.get("space_digests", {}), new["space_digests"]

    def label(k: str) -> str:
        if k == "structure":
            return "its kind, size, axes, free leaves or bounds"
        if k == "points":
            return "how its points are made (bounds, key)"
        return f"the state leaf {k}"

    out = [label(k) for k in n if o.get(k) != n[k]] + [label(k) for k in o if k not in n]
    return ", ".join(dict.fromkeys(out)) or "its size"


def _which_arguments(old: dict, new: dict) -> str:
    """Which of the model's extra arguments differ, from the manifests' per-argument digests."""
    o, n = old["argument_digests"], new["argument_digests"]
    if "key" in o or "key" in n:
        if "key" in o and "key" in n:
            return "another checkpoint_key"
        return f"checkpoint_key given {'then, not now' if 'key' in o else 'now, not then'}"
    out = []
    oa, na = o.get("args", []), n["args"]
    if len(oa) != len(na):
        out.append(f"{len(oa)} positional arguments then, {len(na)} now")
    else:
        out += [f"args[{i}] differs" for i, (a, b) in enumerate(zip(oa, na)) if a != b]
    ok, nk = o.get("kwargs", {}), n["kwargs"]
    out += [f"kwargs[{k!r}] differs" for k in sorted(ok.keys() & nk.keys()) if ok[k] != nk[k]]
    out += [f"keyword {k!r} was passed then, not now" for k in sorted(ok.keys() - nk.keys())]
    out += [f"keyword {k!r} was not passed then" for k in sorted(nk.keys() - ok.keys())]
    return ", ".join(out) or "the model's own leaves differ"


def manifest(space, layout, model: Any, args: tuple = (), kwargs: dict | None = None, key: Any = None,
             on_error: str = "raise", *, op: str = "run", checkpoint_key: str | None = None) -> dict:
    """The manifest of a sweep: everything that must match for a checkpoint to be resumed.

    The model and its extra arguments get one digest as a whole (``arguments``: structure and
    content, see `Fingerprint`) and one each (only to say which differ); the model and the callables
    among its arguments a digest of their code (see `code_digest`); the space one per part (to say
    which differs); the random ``key`` its kind and digest. With ``checkpoint_key`` (the executors'
    option) the user's string stands for the model's arguments instead of their content, and
    unreadable values in the code stand as their types. Without it, an argument whose content
    cannot be read is refused (`_unreadable`)."""
    kwargs = kwargs or {}
    callables = [model, *(x for x in jax.tree.leaves((model, args, kwargs)) if callable(x))]
    try:
        parts = space._digests()
    except Unfingerprintable as e:
        raise _unreadable(op, "the space's state", e) from None
    if checkpoint_key is not None:
        arguments = digest_of(checkpoint_key, "checkpoint_key")
        per = {"args": [], "kwargs": {}, "key": arguments[:16]}
        code = code_digest(callables, strict=False)
    else:
        per = {"args": [], "kwargs": {}}
        for i, a in enumerate(args):
            per["args"].append(_part(op, a, f"args[{i}]", f"positional argument {i}")[:16])
        for k, v in kwargs.items():
            per["kwargs"][k] = _part(op, v, f"kwargs[{k!r}]", f"keyword argument {k!r}")[:16]
        arguments = _part(op, (model, args, kwargs), "(model, args, kwargs)", "the model")
        try:
            code = code_digest(callables)
        except Unfingerprintable as e:
            raise _unreadable(op, "the model's code (or a callable among its arguments)", e) from None
    return {
        "format": _FORMAT,
        "space": digest(sorted(parts.items())),
        "space_digests": parts,
        "space_repr": repr(space),
        "N": space.N,
        "outputs": layout.describe(),
        "model": stable_repr(model),
        "code": code,
        "arguments": arguments,
        "argument_digests": per,
        "key": fingerprint(key),
        "on_error": on_error,
    }


def _part(op: str, value: Any, path: str, what: str) -> str:
    try:
        return digest_of(value, path)
    except Unfingerprintable as e:
        raise _unreadable(op, what, e) from None


def _unreadable(op: str, what: str, e: Unfingerprintable) -> TypeError:
    return TypeError(
        f"{op}: cannot checkpoint this sweep: {what} holds {e.path} (a {e.kind}), which {e.why}, so a changed "
        "value could not be told from this one and a checkpoint of another sweep could be resumed. Pass it as an "
        "array (or a PyTree, dataclass or object of readable fields), or give checkpoint_key='...' (a string you "
        "change whenever the model's arguments change: it then identifies them instead of their content)")
