"""A SIGKILL fault campaign against checkpointed sweeps (not collected by pytest: run it by hand).

    python tests/fault_campaign.py [--trials 30] [--seed 0] [--store]

With ``--store`` the sweep streams to a Zarr store (``store=``, chunks of one grid row) instead of
``checkpoint_dir``, and "blocks" are the store's chunks flagged done.

Each trial starts a sweep of small blocks in a child process, kills it with SIGKILL at a random moment
(often in the middle of a block write), kills the resumed run again in about half the trials, then
resumes to the end in this process. A trial survives when the resumed results are bit-identical to an
uninterrupted run and every block that was complete before the kill was kept. It prints the figures:
faults injected, survived with nothing lost, wrong results (must be 0).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys
import jax, jax.numpy as jnp
import namedax.execution._engine as E
from namedax.spaces import GridSpace, Parameter
from namedax.execution import ParallelExecution
E._CALL_SECONDS = 0.01  # blocks of a few chunks: many writes to kill
E.max_chunks = lambda *_: 2
STORE = sys.argv[-1] == "--store"
if STORE:
    import namedax.execution._store as S
    S.CHUNK_BYTES = 4 * 300  # one row of the grid per chunk: many chunk writes to kill

def model(s):
    def step(_, x):
        return x + 0.01 * (x - x ** 3 / 3 + s["a"] - s["b"])
    return jax.lax.fori_loop(0, 3000, step, jnp.float32(-1.0))

space = GridSpace({"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
                   "b": Parameter("b", 0.0, low=0.5, high=1.5, free=True)}, n={"a": 300, "b": 300})
where = {"store" if STORE else "checkpoint_dir": sys.argv[1]}
r = ParallelExecution(model, space, progress=False, **where).run()
if len(sys.argv) > 2 and sys.argv[2] != "--store":
    import numpy as np
    np.save(sys.argv[2], r[:])
"""


MODE: list[str] = []  # ["--store"] in store mode


def blocks(d: str) -> set[str]:
    if MODE:  # the store's done flags: one file per chunk flagged done
        flags = os.path.join(d, "_namedax", "done", "c")
        return set(os.listdir(flags)) if os.path.isdir(flags) else set()
    return {f for f in os.listdir(d) if f.startswith("block-") and f.endswith(".npz")} if os.path.isdir(d) else set()


def kill_after(script: str, d: str, n_blocks: int) -> bool:
    """Run the sweep and SIGKILL it once ``n_blocks`` block files exist (polled every 2 ms, so the
    kill usually lands while the next block is being written); False when it finished first."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, script, d, *MODE], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    while proc.poll() is None and len(blocks(d)) < n_blocks:
        time.sleep(0.002)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--store", action="store_true", help="stream to a Zarr store instead of checkpoint_dir")
    args = p.parse_args()
    MODE[:] = ["--store"] if args.store else []
    rng = random.Random(args.seed)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "child.py")
        with open(script, "w") as f:
            f.write(CHILD)
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        ref_path = os.path.join(tmp, "ref.npy")
        subprocess.run([sys.executable, script, os.path.join(tmp, "ref-ck"), ref_path, *MODE], env=env, check=True)
        reference = np.load(ref_path)
        faults = survived = wrong = 0
        for trial in range(args.trials):
            d = os.path.join(tmp, f"ck{trial}")
            kept: set[str] = set()
            for _ in range(1 + (rng.random() < 0.5)):
                if kill_after(script, d, len(blocks(d)) + rng.randint(1, 120)):
                    faults += 1
                kept |= blocks(d)
            out = os.path.join(tmp, f"out{trial}.npy")
            subprocess.run([sys.executable, script, d, out, *MODE], env=env, check=True, capture_output=True)
            resumed = np.load(out)
            ok = np.array_equal(resumed, reference)
            wrong += not ok
            survived += ok and kept <= blocks(d)
            print(f"trial {trial}: {len(kept)} blocks before the last resume, equal={ok}", flush=True)
        print(f"faults injected: {faults}; trials survived with nothing lost: {survived}/{args.trials}; "
              f"wrong results: {wrong}")  # fmt: skip


if __name__ == "__main__":
    main()
