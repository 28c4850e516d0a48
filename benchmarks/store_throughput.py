"""Store throughput: append rate, file size and filtered-query time up to 10^5 calculation rows.

Appends go through activemat.store.write.CampaignStore exactly as the loop writes
(add_attempt + finish_attempt, each flushed, SWMR). Filling 10^5 rows that way
takes ~30 min of CPU here (about 20 ms a row: each row resizes and writes
~30 datasets), so the bulk of the rows is written column-wise in blocks
through the schema's own column table (benchmark only, labelled "bulk"),
and the loop's real per-row rate is measured at each size.
Queries use activemat.store.read.read_store(...).select(...) (read the whole store
+ vectorised filters), as `activemat query` does.

    .venv/bin/python -m benchmarks.store_throughput
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from activemat.compute.records import CalculationRecord
from activemat.space.pool import build_pool
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from benchmarks.common import command, save, shell


def append(store: CampaignStore, start: int, n: int, n_cand: int, rng) -> None:
    for k in range(start, start + n):
        cand = int(rng.integers(n_cand))
        row = store.add_attempt(cand, 0, "gpaw-fast", k, "max_std", 0.1)
        ok = rng.random() > 0.05
        store.finish_attempt(row, CalculationRecord(
            candidate=cand, attempt=0, preset="gpaw-fast", status="ok" if ok else "failed",
            gap=float(rng.uniform(0, 0.6)) if ok else float("nan"), energy=-60.0, started=k, finished=k + 10.0,
            host="bench", worker="w0", error="" if ok else "SCF did not converge"))


def bulk_fill(store: CampaignStore, n: int, n_cand: int, rng) -> None:
    """Benchmark only: n finished rows at once, column by column, with the schema's dtypes and fill values."""
    group = store._f[S.CALCULATIONS.path]
    start = group["candidate"].shape[0]
    ok = rng.random(n) > 0.05
    now = np.arange(start, start + n, dtype=float)
    values = {"candidate": rng.integers(n_cand, size=n), "attempt": np.zeros(n), "status": np.where(ok, b"ok", b"failed"),
              "preset": np.full(n, b"gpaw-fast"), "iteration": np.arange(start, start + n), "reason": np.full(n, b"max_std"),
              "score": np.full(n, 0.1), "gap": np.where(ok, rng.uniform(0, 0.6, n), np.nan), "energy": np.full(n, -60.0),
              "submitted": now, "started": now, "finished": now + 10, "host": np.full(n, b"bench"),
              "worker": np.full(n, b"w0"), "error": np.where(ok, b"", b"SCF did not converge")}
    for col in S.CALCULATIONS.columns:
        ds = group[col.name]
        shape = ds.shape[1:]
        ds.resize((start + n, *shape))
        ds[start:] = np.asarray(values[col.name]).astype(col.dtype) if col.name in values else np.full(
            (n, *shape), col.fill, dtype=col.dtype)
    store._f.flush()


def summary(result: dict) -> list[str]:
    """The report's section: append cost, file size, whole reads and a filtered query per store size."""
    d = result
    q = "status=ok, gap 0.2:0.4, ge-count 4:12"
    out = [f"Command: `{shell(d['command'])}`.", "",
           "| rows | append, as the loop writes (ms/row) | file size (MB) | bytes/row | read whole store (s) "
           f"| filtered query `{q}` (s) |", "|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['rows']} | {r['flushed_ms_per_row']:.1f} | {r['file_mb']:.1f} | {r['bytes_per_row']:.0f} | "
                   f"{r['query']['read all']['seconds']:.3f} | {r['query'][q]['seconds']:.3f} |")
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--probe", type=int, default=200, help="flushed rows timed at each size")
    args = p.parse_args()
    pool = build_pool(("Si", "Ge"), (2, 2, 2))
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        store = CampaignStore.create(path, campaign_text="[campaign]\n", identity="bench", pool=pool, presets={})
        n = 0
        for size in args.sizes:
            bulk = size - args.probe - n
            t = time.perf_counter()
            if bulk > 0:
                bulk_fill(store, bulk, len(pool), rng)
                n += bulk
            t_bulk = time.perf_counter() - t
            t = time.perf_counter()
            append(store, n, args.probe, len(pool), rng)
            n += args.probe
            t_probe = time.perf_counter() - t
            size_mb = path.stat().st_size / 1e6
            timings = {}
            for label, filters in (("read all", {}),
                                   ("status=ok, gap 0.2:0.4, ge-count 4:12", dict(status="ok", gap="0.2:0.4",
                                                                                  n_b="4:12")),
                                   ("composition Si8Ge8, sort gap, limit 10", dict(composition="Si8Ge8", sort="gap",
                                                                                   limit=10))):
                best = np.inf
                for _ in range(3):
                    t = time.perf_counter()
                    got = read_store(path).select(**filters)
                    best = min(best, time.perf_counter() - t)
                timings[label] = {"seconds": best, "rows": len(got["row"])}
            r = {"rows": n, "flushed_ms_per_row": 1e3 * t_probe / args.probe, "bulk_rows": max(bulk, 0),
                 "bulk_rows_per_s": max(bulk, 0) / t_bulk if bulk > 0 else None, "file_mb": size_mb,
                 "bytes_per_row": path.stat().st_size / n, "query": timings}
            rows.append(r)
            q = timings["status=ok, gap 0.2:0.4, ge-count 4:12"]
            print(f"{n:7d} rows: append {r['flushed_ms_per_row']:.1f} ms/row flushed "
                  f"({1e3 / r['flushed_ms_per_row']:.0f} rows/s), file {size_mb:.1f} MB "
                  f"({r['bytes_per_row']:.0f} B/row), filtered query {q['seconds']:.3f} s ({q['rows']} rows), "
                  f"read all {timings['read all']['seconds']:.3f} s", flush=True)
        store.close()
    out = save("store_throughput", {"rows": rows, "command": command("store_throughput")})
    print(f"-> {out}")


if __name__ == "__main__":
    main()
