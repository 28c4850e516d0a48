"""What a store holds, in numbers: counts, latest model errors, uncertainty.

The numbers only: ``activemat status`` prints them with :func:`activemat.analysis.tables.render_status`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activemat.store import schema as S
from activemat.store.files import writer_running
from activemat.store.query import StoreView


def driver_running(path: Path) -> bool:
    """True while a campaign driver holds the store, whatever name (symlink, hard link) it opened it by."""
    return writer_running(path)


def _f(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _per_preset(calc: dict, ok: np.ndarray) -> dict:
    """Completed calculations and their median wall time (s) per preset (a multi-fidelity store holds several)."""
    out = {}
    for preset in sorted(set(calc["preset"][ok].tolist())):
        mask = ok & (calc["preset"] == preset)
        wall = calc["finished"][mask] - calc["started"][mask]
        out[str(preset)] = {"completed": int(mask.sum()), "median_wall_time": _f(np.median(wall))}
    return out


def superseded(calc: dict) -> np.ndarray:
    """Rows followed by a later attempt at the same candidate and preset (a retry, whatever its outcome).

    >>> superseded({"candidate": np.array([3, 4, 3]), "preset": np.array(["p", "p", "p"])}).tolist()
    [True, False, False]
    """
    n = len(calc["candidate"])
    if not n:
        return np.zeros(0, bool)
    presets, code = np.unique(np.asarray(calc["preset"]).astype(str), return_inverse=True)
    key = np.asarray(calc["candidate"], np.int64) * len(presets) + code
    _, task = np.unique(key, return_inverse=True)
    last = np.full(task.max() + 1, -1)
    np.maximum.at(last, task, np.arange(n))
    return np.arange(n) < last[task]


def summarize(view: StoreView) -> dict:
    """Counts, failures and the latest model's errors of a store as read (:func:`~activemat.store.read.read_store`)."""
    calc, snaps = view.calculations, view.snapshots
    status = calc["status"]
    ok = status == S.OK
    failed = status == S.FAILED
    gaps = calc["gap"][ok]
    latest = {k: (v[-1] if len(v) else float("nan")) for k, v in snaps.items()}
    live = driver_running(view.path)
    running = int(np.sum(status == S.RUNNING))
    return {
        "store": str(view.path),
        "schema_version": int(view.attrs[S.ATTR_SCHEMA]),
        "driver_running": live,
        "candidates": int(len(view.candidates["n_b"])),
        "attempts": int(len(status)),
        "completed": int(ok.sum()),
        "presets": _per_preset(calc, ok),
        "failed": int(np.sum(failed)),  # failed attempts
        "failed_candidates": len(set(calc["candidate"][failed].tolist()) - set(calc["candidate"][ok].tolist())),
        "retried": int(np.sum(calc["attempt"] > 0)),
        "running": running if live else 0,
        # stopped before a result and not retried since (a later attempt at the task supersedes them)
        "interrupted": int(np.sum(((status == S.INTERRUPTED) | ((status == S.RUNNING) & (not live)))
                                  & ~superseded(calc))),
        "gap_min": _f(gaps.min()) if len(gaps) else None,
        "gap_max": _f(gaps.max()) if len(gaps) else None,
        "n_train": int(latest.get("n_train", 0)) if len(snaps.get("n_train", [])) else 0,
        "cv_mae": _f(latest.get("cv_mae", float("nan"))),
        "cv_rmse": _f(latest.get("cv_rmse", float("nan"))),
        "baseline_mae": _f(latest.get("baseline_mae", float("nan"))),
        "max_std": _f(latest.get("max_std", float("nan"))),
        "model": str(snaps["model"][-1]) if len(snaps.get("model", [])) else None,
        "failures": [{"candidate": int(c), "attempt": int(a), "fallback": int(fb), "error": e, "scratch": sc or None}
                     for c, a, fb, e, sc in zip(calc["candidate"][failed], calc["attempt"][failed],
                                                calc["fallback"][failed], calc["error"][failed],
                                                calc["scratch"][failed])],
    }
