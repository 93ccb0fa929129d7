"""The peers' virtual environments: what each installs, which workload script it runs, and its state.

Shared by ``setup.py`` (which makes them) and ``benchmarks/run.py`` (which runs them). Standard
library only. Each venv lives in ``benchmarks/peers/.venvs/NAME/`` (gitignored) with a
``status.json`` written by setup.py: ``{"ok": bool, "error": str, "requirements": [...], ...}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"


@dataclass(frozen=True)
class PeerEnv:
    name: str
    label: str
    requirements: tuple[str, ...]  # "{jax}" stands for the JAX version of namedax's own environment
    script: str
    check: str  # Python run in the venv after installing: must exit 0
    newest_pre: str = ""  # a package whose newest pre-release that passes `check` is wanted
    why: str = ""
    probe: tuple[str, ...] = field(default=())  # requirements expected to fail `check` (recorded as `why`)

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def status(self) -> dict:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}


ENVS = (
    PeerEnv(
        "haliax-dev", "haliax, newest pre-release on namedax's JAX",
        ("jax=={jax}", "jaxlib=={jax}"), "peer_haliax.py",
        "import haliax as hax; hax.sum(hax.arange(hax.Axis('a', 3)))", newest_pre="haliax",
    ),
    PeerEnv(
        "haliax-1.3", "haliax 1.3 (latest release) on the JAX of its time",
        # haliax 1.3 (April 2024) pins no JAX; jax 0.4.26 is that month's release and the equinox,
        # jaxtyping and numpy of the time go with it.
        ("haliax==1.3", "jax[cpu]==0.4.26", "jaxlib==0.4.26", "equinox==0.11.4", "jaxtyping==0.2.28", "numpy<2"),
        "peer_haliax.py",
        "import haliax as hax; hax.sum(hax.arange(hax.Axis('a', 3)))",
        probe=("haliax==1.3", "jax=={jax}", "jaxlib=={jax}"),
    ),
    PeerEnv(
        "tvboptim", "tvboptim (ParallelExecution)",
        ("tvboptim==0.4.0", "jax=={jax}", "jaxlib=={jax}"), "peer_tvboptim.py",
        "from tvboptim.execution import ParallelExecution; from tvboptim.types import Space, GridAxis",
    ),
    PeerEnv(
        "penzai", "penzai (pz.nx named axes)",
        ("penzai==0.2.5", "jax=={jax}", "jaxlib=={jax}"), "peer_penzai.py",
        "from penzai import pz; pz.nx.wrap(__import__('jax').numpy.zeros(3)).tag('a')",
    ),
)


def problem(env: PeerEnv) -> str:
    """Why `env` cannot run now ('' when it can)."""
    if not env.python.exists():
        return f"not set up: run `python benchmarks/peers/setup.py {env.name}` (needs PyPI)"
    st = env.status()
    if not st:
        return f"{env.path}/status.json missing: rerun `python benchmarks/peers/setup.py {env.name}`"
    if not st.get("ok"):
        return st.get("error") or "setup failed"
    return ""
