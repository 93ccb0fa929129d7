"""Checkpoints of a sweep: a manifest and one file per finished block, each written atomically.

Layout of ``checkpoint_dir``::

    manifest.json                            what is swept: space fingerprint, outputs, model, arguments
    block-<start:020d>-<stop:020d>.npz       the outputs of points [start, stop), one array per leaf

A block file is written to a temporary name in the same directory, flushed to disk, then renamed,
so a file with a final name is always complete, even after SIGKILL. Resuming reads the manifest,
refuses a directory that holds another sweep (another space, output structure, model or arguments),
loads the finished blocks and returns the ranges still to compute. Blocks never need to line up
with the resumed run's calls: any set of finished ranges works.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
import types
from typing import Any

import numpy as np

_MANIFEST = "manifest.json"
_FORMAT = "namedax-sweep/2"  # 2: the model's code digest and per-argument digests
_BLOCK = re.compile(r"^block-(\d{20})-(\d{20})\.npz$")


def _atomic_write(path: pathlib.Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
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

    def __init__(self, path: pathlib.Path, writer: bool):
        self.path = path
        self.writer = writer

    @classmethod
    def open(cls, op: str, path: Any, manifest: dict, arrays: list[np.ndarray], writer: bool
             ) -> tuple[Checkpoint, list[tuple[int, int]]]:
        """Check or create the manifest, load finished blocks into ``arrays``; the missing ranges."""
        path = pathlib.Path(os.fspath(path))
        if path.exists() and not path.is_dir():
            raise ValueError(f"{op}: checkpoint_dir {str(path)!r} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        mpath = path / _MANIFEST
        blocks = [(m, f) for f in sorted(os.listdir(path)) if (m := _BLOCK.match(f))]
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text())
            except (OSError, ValueError) as e:
                raise ValueError(f"{op}: cannot read the checkpoint manifest {str(mpath)!r}: {e}") from None
            _compare(op, path, old, manifest)
        else:
            if blocks:
                raise ValueError(f"{op}: checkpoint_dir {str(path)!r} holds block files but no {_MANIFEST}; "
                                 "it is not a namedax checkpoint (or is damaged): pass another directory")
            if writer:
                text = json.dumps(manifest, indent=1, sort_keys=True)
                _atomic_write(mpath, lambda f: f.write(text.encode()))
        if writer:
            for f in os.listdir(path):
                if f.startswith(".tmp-"):  # left by a run killed mid-write
                    try:
                        os.unlink(path / f)
                    except OSError:
                        pass
        n = manifest["N"]
        done = []
        for m, f in blocks:
            start, stop = int(m.group(1)), int(m.group(2))
            if not 0 <= start < stop <= n:
                raise ValueError(f"{op}: checkpoint block {f!r} is outside the {n} points of the space")
            with np.load(path / f) as z:
                if len(z.files) != len(arrays):
                    raise ValueError(f"{op}: checkpoint block {f!r} has {len(z.files)} arrays, the outputs "
                                     f"have {len(arrays)} leaves")
                for k, dst in enumerate(arrays):
                    a = z[f"arr_{k}"]
                    if a.shape != (stop - start,) + dst.shape[1:] or a.dtype != dst.dtype:
                        raise ValueError(f"{op}: checkpoint block {f!r} leaf {k} has {a.dtype}{list(a.shape)}, "
                                         f"expected {dst.dtype}{[stop - start, *dst.shape[1:]]}")
                    dst[start:stop] = a
            done.append((start, stop))
        return cls(path, writer), _missing(done, n)

    def write(self, start: int, count: int, leaves: list[np.ndarray]) -> None:
        if not self.writer:
            return
        stop = start + count
        _atomic_write(self.path / f"block-{start:020d}-{stop:020d}.npz", lambda f: np.savez(f, *leaves))


def _missing(done: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    out, p = [], 0
    for a, b in sorted(done):
        if a > p:
            out.append((p, a))
        p = max(p, b)
    if p < n:
        out.append((p, n))
    return out


def _compare(op: str, path: pathlib.Path, old: dict, new: dict) -> None:
    where = f"checkpoint_dir {str(path)!r}"
    if old.get("format") != _FORMAT:
        raise ValueError(f"{op}: {where} has a manifest of format {old.get('format')!r}, not {_FORMAT!r}")
    if old.get("space") != new["space"] or old.get("N") != new["N"]:
        raise ValueError(
            f"{op}: {where} holds a sweep of a different space, so it cannot be resumed here: it was made for "
            f"{old.get('space_repr')} (fingerprint {str(old.get('space'))[:12]}...), this run sweeps "
            f"{new['space_repr']} (fingerprint {new['space'][:12]}...); pass another checkpoint_dir or delete it"
        )
    if old.get("outputs") != new["outputs"]:
        raise ValueError(f"{op}: {where} holds outputs of another structure: {old.get('outputs')}, this model returns "
                         f"{new['outputs']}; pass another checkpoint_dir or delete it")
    if old.get("model") == new["model"] and old.get("code") != new["code"]:
        raise ValueError(f"{op}: {where} holds a sweep of another model: {new['model']!r}, but with other code or "
                         "captured values (its body, a closure, a default or a function it calls changed); pass "
                         "another checkpoint_dir or delete it")
    if old.get("model") != new["model"]:
        raise ValueError(f"{op}: {where} holds a sweep of another model ({old.get('model')!r}, this run "
                         f"{new['model']!r}); pass another checkpoint_dir or delete it")
    if old.get("arguments") != new["arguments"]:
        raise ValueError(f"{op}: {where} holds a sweep of the same model {new['model']!r} with other arguments "
                         f"({_which_arguments(old, new)}); pass another checkpoint_dir or delete it")


def _which_arguments(old: dict, new: dict) -> str:
    """Which of the model's extra arguments differ, from the manifests' per-argument digests."""
    o, n = old["argument_digests"], new["argument_digests"]
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


def _argument_digest(tree: Any) -> str:
    """A short digest of one argument: its structure, its static leaves, its arrays' bytes."""
    import hashlib

    import jax

    from ._results import _stable_repr

    leaves, treedef = jax.tree.flatten(tree)
    h = hashlib.sha256(_stable_repr(treedef).encode())
    for leaf in leaves:
        if isinstance(leaf, np.ndarray | np.generic | jax.Array):
            _put_array(h, leaf)
        else:
            h.update(_stable_repr(leaf).encode() + b"\0")
    return h.hexdigest()[:16]


def _put_array(h, leaf) -> None:
    import jax

    if isinstance(leaf, jax.Array) and jax.numpy.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    a = np.asarray(leaf)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())


def _ordered_repr(x) -> str:
    """``_stable_repr``, with sets in a fixed order (their iteration order changes between
    processes with string hashing)."""
    from ._results import _stable_repr

    if isinstance(x, set | frozenset):
        return f"{type(x).__name__}({sorted(_ordered_repr(v) for v in x)})"
    if type(x) is tuple:
        return f"({', '.join(_ordered_repr(v) for v in x)})"
    return _stable_repr(x)


def code_digest(callables: list) -> str:
    """A digest of the code behind callables, beyond their names: a function's bytecode and
    constants, its defaults, the values its closure captures, and the functions and values of its
    own module that it names (followed recursively). So a closure over another constant, or a
    function of the same name with another body (a notebook cell run again after an edit), is
    another model. Bound methods add their instance's attributes; other callable objects their
    class's ``__call__``."""
    import hashlib

    import jax

    h = hashlib.sha256()
    seen: set[int] = set()
    home: list[dict] = []  # the first function's module: user code, whose globals are followed

    def put(x) -> None:
        h.update(str(x).encode())
        h.update(b"\0")

    def code(c: types.CodeType) -> None:
        h.update(c.co_code)
        put(c.co_names)
        for k in c.co_consts:
            code(k) if isinstance(k, types.CodeType) else put(_ordered_repr(k))

    def names(c: types.CodeType) -> set[str]:
        out = set(c.co_names)
        for k in c.co_consts:
            if isinstance(k, types.CodeType):
                out |= names(k)
        return out

    def value(x, depth: int) -> None:
        if depth > 8 or id(x) in seen:
            return
        try:
            visit(x, depth)
        except Exception:  # an object that will not be inspected: its type stands for it
            put(f"<{type(x).__qualname__}>")

    def visit(x, depth: int) -> None:
        if isinstance(x, types.FunctionType):
            seen.add(id(x))
            put(f"{x.__module__}.{x.__qualname__}")
            code(x.__code__)
            value(x.__defaults__, depth + 1)
            value(x.__kwdefaults__, depth + 1)
            for cell in x.__closure__ or ():
                try:
                    value(cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell
                    put("<empty cell>")
            if not home:
                home.append(x.__globals__)
            if x.__globals__ is home[0]:
                for name in sorted(names(x.__code__)):
                    if name in home[0]:
                        value(home[0][name], depth + 1)
            return
        if isinstance(x, types.ModuleType | type):
            put(getattr(x, "__qualname__", x.__name__))
            return
        func = getattr(x, "__func__", None)  # bound methods (equinox's too)
        if isinstance(func, types.FunctionType):
            value(func, depth + 1)
            if isinstance(x, types.MethodType):
                value(x.__self__, depth + 1)
            return
        wrapped = getattr(x, "__wrapped__", None)  # jax.jit, equinox.filter_jit, functools.wraps
        if wrapped is not None and wrapped is not x:
            value(wrapped, depth + 1)
        try:
            leaves = jax.tree.leaves(x)
        except Exception:  # e.g. a dict whose keys cannot be sorted
            leaves = [x]
        if len(leaves) != 1 or leaves[0] is not x:  # a container: its leaves
            for leaf in leaves:
                value(leaf, depth + 1)
            return
        if callable(x):  # a callable object: its class's code, and its attributes unless a PyTree
            seen.add(id(x))
            call = getattr(type(x), "__call__", None)
            if isinstance(call, types.FunctionType):
                value(call, depth + 1)
            for attr in ("func", "args", "keywords"):  # functools.partial
                if hasattr(x, attr):
                    value(getattr(x, attr), depth + 1)
            if hasattr(x, "__dict__"):
                value(dict(vars(x)), depth + 1)
            return
        if isinstance(x, np.ndarray | np.generic | jax.Array):
            try:
                _put_array(h, x)
            except Exception:  # not addressable here (another process's shards)
                put(f"{type(x).__name__}{np.shape(x)}")
            return
        if hasattr(x, "__dict__") and not isinstance(x, str | bytes | int | float | complex):
            seen.add(id(x))
            put(type(x).__qualname__)
            value(dict(vars(x)), depth + 1)
            return
        put(_ordered_repr(x))

    for c in callables:
        value(c, 0)
    return h.hexdigest()


def manifest(space, layout, static_describe: str, dyn_leaves: list, model: Any, callables: list,
             args: tuple = (), kwargs: dict | None = None) -> dict:
    """The manifest of a sweep: everything that must match for a checkpoint to be resumed.

    ``callables``: the model and the callables among its arguments (see `code_digest`). ``args`` and
    ``kwargs`` (the model's extra arguments) get a short digest each, only to say which differ."""
    import hashlib

    from ._results import _stable_repr

    h = hashlib.sha256(static_describe.encode())
    for leaf in dyn_leaves:
        _put_array(h, leaf)
    return {
        "format": _FORMAT,
        "space": space.fingerprint(),
        "space_repr": repr(space),
        "N": space.N,
        "outputs": layout.describe(),
        "model": _stable_repr(model),
        "code": code_digest(callables),
        "arguments": h.hexdigest(),
        "argument_digests": {
            "args": [_argument_digest(a) for a in args],
            "kwargs": {k: _argument_digest(v) for k, v in (kwargs or {}).items()},
        },
    }
