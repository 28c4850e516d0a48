"""Store writes in batches: milliseconds per calculation row, one row per flush against many.

Appends through activemat.store.write.CampaignStore as the loop writes them: each batch is one
add_attempts (rows, then their running status: two flushes) and one finish_attempts (results, statuses
last: two flushes), on a store over the 402-configuration 16-atom pool that already holds
--existing rows. Batch size 1 is what the loop wrote per result before issue 19
(add_attempt + finish_attempt).

    .venv/bin/python -m benchmarks.store_batches
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import create_or_open
from activemat.campaign.setup import prepare
from activemat.compute.records import CalculationRecord
from activemat.store.read import read_store
from activemat.store.write import Attempt
from benchmarks.common import command, save, shell


def write(store, n: int, batch: int, rng) -> None:
    for start in range(0, n, batch):
        k = min(batch, n - start)
        cands = rng.integers(402, size=k)
        rows = store.add_attempts([Attempt(int(c), 0, "gpaw-fast", 1, "max_std", 0.1) for c in cands])
        store.finish_attempts([(row, CalculationRecord(candidate=int(c), attempt=0, preset="gpaw-fast", status="ok",
                                                       gap=float(rng.uniform(0, 0.6)), energy=-60.0, started=1.0,
                                                       finished=11.0, host="bench", worker="w0"))
                               for row, c in zip(rows, cands)])


def summary(result: dict) -> list[str]:
    """The report's section: milliseconds per row by rows per flush."""
    d = result
    return ([f"Command: `{shell(d['command'])}` (load average {d['machine']['load_1min']}; "
             f"store already holding {d['existing']} rows).", "", "| rows per batch (one flush) | ms per row |",
             "|---|---|"]
            + [f"| {r['batch']} | {r['ms_per_row']:.2f} |" for r in d["rows"]] + [""])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 10, 100, 1000])
    p.add_argument("--rows", type=int, default=2000, help="rows written per batch size")
    p.add_argument("--existing", type=int, default=10000)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        text = f'[campaign]\nstore = "{tmp}/b.h5"\n'
        config = parse_campaign(text)
        pool, presets, _ = prepare(config)
        with create_or_open(config, text, pool, presets) as store:
            write(store, args.existing, 1000, rng)
            for batch in args.batches:
                n = min(args.rows, 200) if batch == 1 else args.rows
                t = time.perf_counter()
                write(store, n, batch, rng)
                ms = 1000 * (time.perf_counter() - t) / n
                out.append({"batch": batch, "rows": n, "ms_per_row": ms})
                print(f"batch {batch}: {ms:.2f} ms/row ({n} rows)", flush=True)
        assert read_store(f"{tmp}/b.h5").n_calculations == args.existing + sum(r["rows"] for r in out)
    save("store_batches", {"command": command("store_batches"), "existing": args.existing, "rows": out})


if __name__ == "__main__":
    main()
