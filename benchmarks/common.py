"""Helpers shared by the benchmark scripts: results as JSON under benchmarks/results/ with the command that made
them and the machine they ran on, a synthetic gap for timing runs, and what the report's summaries share
(:class:`Route`, :func:`median_or_none`, :func:`or_never`, :func:`shell`)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"host": platform.node(), "cpus": os.cpu_count(), "load_1min": round(load, 2),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M")}


def clean(v):
    """``v`` ready for JSON: numpy scalars as Python numbers, NaN and infinities as None."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def command(module: str, argv: list[str] | None = None) -> str:
    """The command line that ran the benchmark ``module`` (``python -m benchmarks.<module> ARGS``), as its results
    record it; ``argv`` defaults to this process's arguments.

    >>> command("fidelity", ["--repeats", "2"])
    'python -m benchmarks.fidelity --repeats 2'
    """
    return " ".join(["python -m", f"benchmarks.{module}", *(sys.argv[1:] if argv is None else argv)])


def save(name: str, data: dict, results: Path | None = None) -> Path:
    """``data`` with the machine's description as ``<results>/<name>.json`` (default: benchmarks/results)."""
    results = RESULTS if results is None else Path(results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(clean({"machine": machine(), **data}), indent=1))
    return path


def load(name: str) -> dict | None:
    """The saved result ``benchmarks/results/<name>.json``; None if there is none."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def synthetic_gap(features: np.ndarray) -> np.ndarray:
    """A smooth synthetic gap (eV) of the pool features, for timing runs only (not physics)."""
    x = features[:, 0]
    pair1 = features[:, 1] if features.shape[1] > 1 else 0 * x
    return np.maximum(0.60 - 0.55 * x + 0.05 * x**2 + 0.04 * (pair1 - (1 - 2 * x) ** 2), 0.0)


def median_or_none(values: list) -> float | None:
    """Median over repeats of a cost to a target, a repeat that never got there (None) counting as infinite; None
    if the median did not get there either.

    >>> median_or_none([3, None, 5]), median_or_none([None, None, 5]), median_or_none([])
    (5.0, None, None)
    """
    v = np.array([np.inf if x is None else x for x in values], float)
    m = float(np.median(v)) if len(v) else math.inf
    return m if math.isfinite(m) else None


def or_never(value: float | None, fmt: str = "{:g}") -> str:
    """A cost or label count to a target as a report shows it; ``not reached`` for None.

    >>> or_never(None), or_never(26.1), or_never(3.14159, "{:.1f}")
    ('not reached', '26.1', '3.1')
    """
    return "not reached" if value is None else fmt.format(value)


def shell(command_line: str) -> str:
    """A recorded command as one types it with the project's virtualenv: ``python -m benchmarks.x ...`` (recorded
    since the benchmarks became a package) or ``benchmarks/x.py ...`` (recorded before) after ``.venv/bin/``.

    >>> shell("python -m benchmarks.store_batches"), shell("benchmarks/store_batches.py")
    ('.venv/bin/python -m benchmarks.store_batches', '.venv/bin/python benchmarks/store_batches.py')
    """
    command_line = command_line.strip()
    return ".venv/bin/" + command_line if command_line.startswith("python ") else ".venv/bin/python " + command_line


@dataclass
class Route:
    """One row of the report's table of routes to the PBE map: a benchmark's result read by its ``routes()``.

    Attributes
    ----------
    strategy : how picks were made (``ivr``, ``max_std``, ``random``, ``ivr/cost``, ...).
    to_mae, to_max : cost (labels, for one fidelity) to the MAE and the max-error target in each repeat; None
        where a repeat never got there.
    median_mae, median_max : their medians, a never-reached repeat counting as infinite (None: not reached).
    repeats : the runs behind them.
    command : the command that produced the result.
    spend : what the route bought, appended to its description (``; median 93 gpaw-fast + 12 PBE labels``).
    fmt : how its costs print (``{:g}`` for label counts, ``{:.1f}`` for costs).
    """

    strategy: str
    to_mae: list
    to_max: list
    median_mae: float | None
    median_max: float | None
    repeats: int
    command: str
    spend: str = ""
    fmt: str = "{:g}"
