"""Helpers shared by the benchmark scripts: results as JSON under benchmarks/results/."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"host": platform.node(), "cpus": os.cpu_count(), "load_1min": round(load, 2),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M")}


def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(_clean({"machine": machine(), **data}), indent=1))
    return path


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def synthetic_gap(features: np.ndarray) -> np.ndarray:
    """A smooth synthetic gap (eV) of the pool features, for timing runs only (not physics)."""
    x = features[:, 0]
    pair1 = features[:, 1] if features.shape[1] > 1 else 0 * x
    return np.maximum(0.60 - 0.55 * x + 0.05 * x**2 + 0.04 * (pair1 - (1 - 2 * x) ** 2), 0.0)
