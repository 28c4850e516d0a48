"""Wall time of the read verbs (predict, inspect, plot) on the 402-row reference store: refit against stored
hyperparameters.

    git show 3b6a7d1:benchmarks/data/reference-pbe.h5 > /tmp/reference-v2.h5
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.read_verbs --store /tmp/reference-v2.h5 [--repeats 3]

It needs a store without stored hyperparameters: the reference store as it shipped before it was migrated
(schema 2, every one of the 402 configurations computed with gpaw-pbe-pw; the shipped copy is in the current
schema now and holds them). Its read verbs optimise the GP's hyperparameters every time ("before": what
every read verb did until store schema 5). The script copies it into a temporary folder, times each verb on
the copy as it is, then lets the campaign's own Learner write one snapshot, as the loop does after every
result (the store is migrated on that open; ``benchmarks.ship_store.write_snapshot``), and times each verb
again ("after": the model rebuilt from the snapshot's hyperparameters, nothing optimised), and with
``--refit``. Each figure is the best of ``--repeats`` runs of the command line in a fresh process, so
Python's imports are included: what a user waits for. Nothing is written outside the temporary folder except
benchmarks/results/read_verbs.json.
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

from benchmarks.common import save
from benchmarks.ship_store import write_snapshot


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="a store without stored hyperparameters (see above)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from activemat.store.read import read_store

    if read_store(args.store).snapshots["hyperparameters"][-1]:
        parser.error(f"{args.store} already stores its model's hyperparameters: give the store from before"
                     " (git show 3b6a7d1:benchmarks/data/reference-pbe.h5 > /tmp/reference-v2.h5)")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "reference.h5"
        shutil.copy(args.store, store)
        fill = {"store": str(store), "out": str(Path(tmp) / "figures")}

        def run(verb: str, *extra: str) -> float:
            return wall([a.format(**fill) for a in VERBS[verb]] + list(extra), args.repeats)

        for verb in VERBS:
            rows[verb] = {"before": run(verb)}
        model = write_snapshot(store)["model"]
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
