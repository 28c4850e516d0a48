"""Featurisation speed: icet cluster vectors of 10^5 random decorations of the 64-atom cell (2x2x2 cubic), on 1 and
2 processes side by side (issue 15's target: under 2 minutes on 2 cores).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/featurize.py [--samples 1540] [--processes 1 2]

Builds the sampled pool once with the cheap "shells" features (the decorations and the pool-building time), then
times activemat.space.pool.cluster_vectors, a plain loop over icet's public ClusterSpace.get_cluster_vector in
blocks (spawned worker processes import icet and build the cluster space themselves, inside the timing), on each
process count; checks that every run gives the same matrix. Writes benchmarks/results/featurize.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402

from activemat.space.pool import DEFAULT_CUTOFFS, build_pool, cluster_vectors, reference_sites  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="decorations to featurise (a seeded subset of the pool)")
    p.add_argument("--samples", type=int, default=1700, help="draws per composition (65 compositions; exact "
                                                               "duplicates are dropped)")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cutoffs", type=float, nargs="+", default=list(DEFAULT_CUTOFFS))
    args = p.parse_args(argv)
    elements, supercell, cell = ("Si", "Ge"), (2, 2, 2), "cubic"

    t0 = time.perf_counter()
    pool = build_pool(elements, supercell, mode="sampled", samples_per_composition=args.samples, seed=0, cell=cell)
    build = time.perf_counter() - t0
    sites = reference_sites(elements, supercell, cell)
    if len(pool) < args.n:
        raise SystemExit(f"the pool has {len(pool)} decorations, fewer than --n {args.n}; raise --samples")
    dec = pool.decorations[np.sort(np.random.default_rng(0).choice(len(pool), args.n, replace=False))]
    print(f"{len(dec)} of {len(pool)} decorations of the {pool.n_sites}-atom cell ({cell} {list(supercell)}; "
          f"pool built in {build:.1f} s)")
    cluster_vectors(dec[:1], elements, sites, cutoffs=args.cutoffs)  # import icet, build its space
    rows, first = [], None
    for n in args.processes:
        t0 = time.perf_counter()
        X = cluster_vectors(dec, elements, sites, cutoffs=args.cutoffs, processes=n)
        seconds = time.perf_counter() - t0
        if first is None:
            first = X
        same = bool(np.array_equal(X, first))
        rows.append({"processes": n, "seconds": seconds, "per_decoration_ms": 1e3 * seconds / len(dec),
                     "n_features": X.shape[1], "same_as_first": same})
    print(" ".join(f"{r['processes']} process(es)".rjust(16) for r in rows))
    print(" ".join(f"{r['seconds']:.1f} s".rjust(16) for r in rows))
    print(" ".join(f"{r['per_decoration_ms']:.3f} ms each".rjust(16) for r in rows))
    if not all(r["same_as_first"] for r in rows):
        raise SystemExit("process counts gave different feature matrices")
    out = {"n_decorations": len(dec), "pool_size": len(pool), "n_sites": pool.n_sites, "cell": cell, "supercell": list(supercell),
           "cutoffs": list(args.cutoffs), "pool_build_seconds": build, "rows": rows}
    save("featurize", out)
    return out


if __name__ == "__main__":
    main()
