"""Wall time of the read verbs (predict, inspect, plot) on the 402-row reference store: refit against stored
hyperparameters.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.read_verbs [--repeats 3] [--store benchmarks/data/reference-pbe.h5]

The reference store (schema 2, every one of the 402 configurations computed with gpaw-pbe-pw) predates stored
hyperparameters, so its read verbs optimise the GP's hyperparameters every time ("before": what every read
verb did until store schema 5). The script copies it into a temporary folder, times each verb on the copy as
it is, then lets the campaign's own Learner write one snapshot, as the loop does after every result (the
store is migrated to schema 5 on that open), and times each verb again ("after": the model rebuilt from the
snapshot's hyperparameters, nothing optimised), and with ``--refit``. Each figure is the best of
``--repeats`` runs of the command line in a fresh process, so Python's imports are included: what a user
waits for. Nothing is written outside the temporary folder except benchmarks/results/read_verbs.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save


REPO = Path(__file__).resolve().parents[1]
VERBS = {"predict": ["predict", "{store}", "Si8Ge8"], "inspect": ["inspect", "{store}"],
         "plot": ["plot", "{store}", "-o", "{out}"], "predict --curve": ["predict", "{store}", "--curve"]}


def wall(args: list[str], repeats: int) -> float:
    """Best wall time (s) of ``activemat ARGS`` in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "activemat.cli", *args], capture_output=True, text=True, env=env)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"activemat {' '.join(args)} failed: {proc.stderr.strip()}")
        best = min(best, took)
    return best


def write_snapshot(path: Path) -> str:
    """One snapshot of the campaign's model on every result, written as the loop writes it (Learner)."""
    from activemat.campaign.learner import Learner
    from activemat.campaign.model import CampaignModel
    from activemat.campaign.stored import open_campaign
    from activemat.store.write import CampaignStore

    view = open_campaign(path)
    config, pool = view.config(), view.pool()
    ledger = view.ledger()
    learner = Learner(CampaignModel.of(config, pool), pool,
                      iteration=len(view.snapshots["iteration"]))
    free = np.ones(len(pool), bool)
    free[view.training_set()[0]] = False
    learner.fit(ledger, free)
    snapshot = learner.snapshot(ledger)
    with CampaignStore.open(path, config.identity()) as store:
        store.add_snapshot(snapshot, learner.mean.astype("f4"), learner.std.astype("f4"))
    return snapshot["model"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(REPO / "benchmarks" / "data" / "reference-pbe.h5"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "reference.h5"
        shutil.copy(args.store, store)
        fill = {"store": str(store), "out": str(Path(tmp) / "figures")}

        def run(verb: str, *extra: str) -> float:
            return wall([a.format(**fill) for a in VERBS[verb]] + list(extra), args.repeats)

        for verb in VERBS:
            rows[verb] = {"before": run(verb)}
        model = write_snapshot(store)
        for verb in VERBS:
            rows[verb].update(after=run(verb), refit=run(verb, "--refit"))
    print(f"read verbs on {args.store} (402 calculations, {model}); best of {args.repeats} runs, wall time of "
          f"the command in a fresh process, imports included; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"{'verb':<16} {'before (s)':>11} {'after (s)':>10} {'speed-up':>9} {'--refit (s)':>12}")
    print("                 hyperparameters  stored       ")
    for verb, r in rows.items():
        print(f"{verb:<16} {r['before']:>11.2f} {r['after']:>10.2f} {r['before'] / r['after']:>8.1f}x "
              f"{r['refit']:>12.2f}")
    print("before: the store as it is (no stored hyperparameters: they are optimised, as every read verb did "
          "until store schema 5); after: one loop snapshot later, the model rebuilt from its stored "
          "hyperparameters; --refit: the same store, optimised again on request")
    path = save("read_verbs", {"store": args.store, "repeats": args.repeats, "model": model, "verbs": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
