"""Dispatch: worker utilisation and per-task overhead with 1, 2, 4 workers on tasks of known duration.

Runs the real campaign loop (activemat.campaign.loop.run_campaign) on a real Dask
LocalCluster of worker processes (127.0.0.1), with the GPAW task replaced by
activemat.compute.oracle.ReplayOracle answering after a fixed delay (sleeping, so
tasks of known duration that leave the CPU to the driver). Everything the
driver does between results (store writes, GP refit, cross-validation,
predictions over the 402-candidate pool, kriging-believer selection) counts
as overhead. Utilisation is measured from the store's own timestamps with
benchmarks/utilisation.py's `utilisation()`; per-task overhead is
(workers x wall - busy) / tasks. Real GPAW campaigns already in runs/ are
measured the same way (read-only).

    .venv/bin/python -m benchmarks.dispatch --workers 1 2 4 --delay 2 --tasks 12
"""

from __future__ import annotations

import argparse
import io
import re
import tempfile
from pathlib import Path

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.oracle import ReplayOracle
from activemat.store.read import read_store
from benchmarks.common import command, save, synthetic_gap
from benchmarks.utilisation import CAMPAIGN, utilisation

REAL_STORES = ("runs/seed-tutorial-all.h5", "runs/seed-tutorial.h5", "runs/seed-tutorial-active.h5",
               "runs/reference-pbe.h5")


def synthetic(workers: int, delay: float, tasks_per_worker: int) -> dict:
    from rich.console import Console

    from activemat.campaign.progress import Reporter

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "dispatch.h5"
        budget = workers * tasks_per_worker
        text = CAMPAIGN.format(preset="gpaw-fast", store=store, budget=budget, workers=workers)
        config = parse_campaign(text)
        pool = build_campaign_pool(config)
        gaps = dict(enumerate(synthetic_gap(pool.features).tolist()))
        run_campaign(config, text, task=ReplayOracle(gaps, delay=delay),
                     report=Reporter(budget, Console(file=io.StringIO())))
        u = utilisation(store, workers)
    u["task_s"] = delay
    u["overhead_per_task_s"] = round((workers * u["wall_s"] - u["busy_s"]) / u["calculations"], 3)
    return u


def real(path: str) -> dict | None:
    if not Path(path).exists():
        return None
    data = read_store(path)
    found = re.findall(r"^\s*workers\s*=\s*(\d+)", data.attrs["campaign_toml"], re.M)
    workers = int(found[0]) if found else 2
    u = utilisation(Path(path), workers)
    u["store"] = path
    u["overhead_per_task_s"] = round((workers * u["wall_s"] - u["busy_s"]) / u["calculations"], 3)
    return u


def summary(result: dict) -> list[str]:
    """The report's section: utilisation and overhead per task, synthetic tasks and real GPAW stores."""
    d = result
    out = [f"Command: `{d['command']}` (load average {d['machine']['load_1min']} on {d['machine']['cpus']} cores).", "",
           "| tasks | workers | tasks run | wall (s) | utilisation | overhead per task (s) | median submit->start (s) |",
           "|---|---|---|---|---|---|---|"]
    for r in d["synthetic"]:
        out.append(f"| synthetic {r['task_s']:g} s | {r['workers']} | {r['calculations']} | {r['wall_s']} | "
                   f"{100 * r['utilisation']:.1f} % | {r['overhead_per_task_s']} | {r['median_submit_to_start_s']} |")
    for r in d["real"]:
        out.append(f"| real GPAW `{r['store']}` ({r['mean_task_s']} s mean) | {r['workers']} | {r['calculations']} | "
                   f"{r['wall_s']} | {100 * r['utilisation']:.1f} % | {r['overhead_per_task_s']} | "
                   f"{r['median_submit_to_start_s']} |")
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--delay", type=float, default=2.0, help="seconds per synthetic task")
    p.add_argument("--tasks", type=int, default=12, help="tasks per worker")
    args = p.parse_args()
    rows = []
    for w in args.workers:
        r = synthetic(w, args.delay, args.tasks)
        rows.append(r)
        print(f"synthetic {args.delay:g} s tasks, {w} worker(s): {r['calculations']} tasks, wall {r['wall_s']} s, "
              f"utilisation {100 * r['utilisation']:.1f} %, overhead {r['overhead_per_task_s']} s/task, "
              f"median submit->start {r['median_submit_to_start_s']} s", flush=True)
    reals = [r for r in (real(s) for s in REAL_STORES) if r]
    for r in reals:
        print(f"real GPAW {r['store']}: {r['workers']} worker(s), {r['calculations']} calculations of "
              f"{r['mean_task_s']} s, utilisation {100 * r['utilisation']:.1f} %", flush=True)
    out = save("dispatch", {"synthetic": rows, "real": reals,
                            "command": command("dispatch")})
    print(f"-> {out}")


if __name__ == "__main__":
    main()
