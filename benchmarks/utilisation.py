"""Worker utilisation of a real campaign: time in calculations / (workers x wall time).

Runs a real GPAW campaign (gpaw-fast, 16-atom SiGe cells) on a local Dask
cluster in a temporary folder and prints figures measured from the store's
own timestamps. Wall time runs from the first submission to the last result.

    .venv/bin/python -m benchmarks.utilisation --workers 2 --budget 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.store.read import read_store

CAMPAIGN = """
[campaign]
store = "{store}"
[space]
supercell = [2, 2, 2]
[calculator]
preset = "{preset}"
[strategy]
kind = "max_std"
[stop]
budget = {budget}
[cluster]
workers = {workers}
dashboard = false
"""


def utilisation(store: Path, workers: int) -> dict:
    calc = read_store(store).calculations
    done = np.isfinite(calc["finished"])
    busy = float(np.sum(calc["finished"][done] - calc["started"][done]))
    wall = float(np.max(calc["finished"][done]) - np.min(calc["submitted"]))
    # dispatch latency: submission to start on a worker, for tasks submitted into a free slot
    latency = calc["started"][done] - calc["submitted"][done]
    return {"workers": workers, "calculations": int(done.sum()), "wall_s": round(wall, 2),
            "busy_s": round(busy, 2), "mean_task_s": round(busy / done.sum(), 2),
            "utilisation": round(busy / (workers * wall), 4),
            "median_submit_to_start_s": round(float(np.median(latency)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--preset", default="gpaw-fast")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "bench.h5"
            text = CAMPAIGN.format(store=store, preset=args.preset, budget=args.budget, workers=workers)
            run_campaign(parse_campaign(text), text)
            rows.append(utilisation(store, workers))
    if args.json:
        print(json.dumps(rows))
    for r in rows:
        print(f"workers {r['workers']}: {r['calculations']} calculations, wall {r['wall_s']} s, "
              f"mean task {r['mean_task_s']} s, utilisation {100 * r['utilisation']:.1f} %, "
              f"median submit->start {r['median_submit_to_start_s']} s")


if __name__ == "__main__":
    main()
