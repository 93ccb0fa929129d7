"""The failure policy of a sweep (``on_error=``), on the host side.

- ``"raise"`` (the default): a model that raises at run time (``equinox.error_if``, a callback) stops
  the sweep with a `ModelError` naming the point; non-finite outputs are ordinary values.
- ``"nan"``: the points whose model raises get the fill value (`fill_value`: NaN for floating and
  complex leaves, 0 for integer leaves, False for bool leaves) and the sweep goes on.
- ``"mark"``: as ``"nan"``, and every point that raised or returned a non-finite float in any leaf
  is recorded in ``Results.failed`` (one bool per point, flat order), which also goes into
  checkpoints and lets the executors' ``rerun`` recompute just those points.

A model that cannot be traced at all, or raises on every point when traced, always raises: there
is no output structure to fill. The helpers at the end serve the executors' ``rerun`` and
`SequentialExecution`'s point-by-point record.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._results import Layout, Results

OnError = Literal["raise", "nan", "mark"]
_POLICIES = ("raise", "nan", "mark")


def check_on_error(op: str, on_error: object) -> str:
    if not isinstance(on_error, str) or on_error not in _POLICIES:
        raise ValueError(f"{op}: `on_error` must be one of {_POLICIES}, got {on_error!r}: \"raise\" stops at a point "
                         "whose model raises, \"nan\" fills its outputs with NaN and goes on, \"mark\" also records "
                         "it (and non-finite outputs) in results.failed")
    return on_error


def fill_value(dtype: np.dtype) -> float | int | bool:
    """What a failed point's leaf holds: NaN (floating, complex), 0 (integer), False (bool)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.inexact):
        return np.nan
    return False if dtype == np.bool_ else 0


def nonfinite(leaves: list[np.ndarray], count: int) -> np.ndarray:
    """Per point (the leading dimension), whether any floating or complex value of any leaf is not finite."""
    out = np.zeros(count, bool)
    for a in leaves:
        if np.issubdtype(a.dtype, np.inexact):
            out |= ~np.isfinite(a.reshape(count, -1)).all(axis=1) if a.size else False
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The ranges ``[a, b)`` of consecutive True entries of a bool vector."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


# ---- for the executors: reruns and the record of a point-by-point run ----


def check_rerun(op: str, ex, results, failed_only: bool = True) -> np.ndarray:
    """The points to recompute: the failure record of ``results`` (if they come from a sweep of this
    executor's space with one), or every point (``failed_only=False``)."""
    if not isinstance(results, Results):
        raise TypeError(f"{op}: `results` must be the Results of a run, got {type(results).__name__}")
    if results.space is not ex.statespace and results.space.fingerprint() != ex.statespace.fingerprint():
        raise ValueError(f"{op}: `results` are of another space ({results.space!r}) than this executor's "
                         f"({ex.statespace!r})")
    if not isinstance(failed_only, bool | np.bool_):
        raise TypeError(f"{op}: `failed_only` must be a bool, got {failed_only!r}")
    if not failed_only:
        return np.ones(len(results), bool)
    if results.failed is None:
        raise ValueError(f"{op}: `results` hold no record of failed points; run with on_error=\"mark\" to get one")
    return results.failed


def check_same_outputs(op: str, layout: Layout, results: Results) -> None:
    if layout.describe() != results._layout.describe():
        raise ValueError(f"{op}: with these arguments the model returns {layout.describe()}, but the results hold "
                         f"{results._layout.describe()}; a rerun must return the same structure, shapes and dtypes")


def start_arrays(layout: Layout, n: int, base: Results | None, on_error: str,
                 op: str = "Results") -> tuple[list, np.ndarray | None]:
    """The arrays to fill (a copy of ``base``'s, or new) and the failure record (under "mark")."""
    if base is not None:
        failed = np.zeros(n, bool) if base.failed is None else np.array(base.failed)
        return [np.array(a[:]) for a in base._arrays], failed  # (a store's: read into memory)
    return layout.allocate(n, op), (np.zeros(n, bool) if on_error == "mark" else None)
