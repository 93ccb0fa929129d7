"""`python -m benchmarks`: run every benchmark and write benchmarks/RESULTS.md (see run.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import cli  # noqa: E402

raise SystemExit(cli())
