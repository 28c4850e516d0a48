"""Pool building, featurisation and selection on 10^5 random decorations of the 64-atom cell (2x2x2 cubic):
icet cluster vectors on 1 and 2 processes side by side (issue 15's target: under 2 minutes on 2 cores), then
one selection step over them, and icet's SQS for all 65 compositions.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.featurize [--samples 2000] [--processes 1 2] [--no-sqs]

Builds the sampled pool once with the cheap "shells" features (the decorations and the pool-building time), then
times activemat.space.features.cluster_vectors, a plain loop over icet's public ClusterSpace.get_cluster_vector in
blocks (spawned worker processes import icet and build the cluster space themselves, inside the timing), on each
process count; checks that every run gives the same matrix. Then times one selection step over the 10^5
featurised candidates, as the loop makes it: the pool's posterior mean and std from a GP with one length scale
per feature fitted on 200 rows (labels: a smooth synthetic function of the features, for timing only), and the
max_std, ivr and ivr_curve scores. Writes benchmarks/results/featurize.json.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
from sklearn.preprocessing import StandardScaler

from activemat.learn.acquisition import curve_ivr_scores, ivr_scores
from activemat.learn.models import make_model
from activemat.space.features import DEFAULT_CUTOFFS, cluster_vectors
from activemat.space.lattice import reference_sites
from activemat.space.pool import build_pool
from activemat.space.sampling import sqs_decorations
from benchmarks.common import save, synthetic_gap


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="decorations to featurise (a seeded subset of the pool)")
    p.add_argument("--samples", type=int, default=2000, help="draws per composition (65 compositions; symmetry-"
                                                               "equivalent draws are one candidate)")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cutoffs", type=float, nargs="+", default=list(DEFAULT_CUTOFFS))
    p.add_argument("--train", type=int, default=200, help="training rows of the GP timed in the selection step")
    p.add_argument("--no-sqs", action="store_true", help="skip the SQS generation (about 2 s per composition)")
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
    selection = _selection(first, dec, args.train)
    print("selection over the 10^5 candidates: " + ", ".join(f"{k} {v:.2f} s" for k, v in selection.items()
                                                             if k.endswith("_s")))
    sqs = None
    if not args.no_sqs:
        t0 = time.perf_counter()
        sqs_decorations(elements, supercell, cell, cutoffs=args.cutoffs)
        sqs = {"compositions": pool.n_sites - 1, "seconds": time.perf_counter() - t0}
        print(f"icet SQS of the {sqs['compositions']} mixed compositions: {sqs['seconds']:.0f} s on one process")
    out = {"n_decorations": len(dec), "pool_size": len(pool), "n_sites": pool.n_sites, "cell": cell, "supercell": list(supercell),
           "cutoffs": list(args.cutoffs), "pool_build_seconds": build, "rows": rows, "selection": selection,
           "sqs": sqs}
    save("featurize", out)
    return out


def _selection(X: np.ndarray, dec: np.ndarray, n_train: int) -> dict:
    """Seconds of one selection step over every row of X: fit, mean and std, max_std / ivr / ivr_curve scores."""
    rng = np.random.default_rng(1)
    train = rng.choice(len(X), n_train, replace=False)
    y = synthetic_gap(X)
    free = np.ones(len(X), bool)
    free[train] = False
    t0 = time.perf_counter()
    model = make_model("gp", ard=True, restarts=0, scaler=StandardScaler().fit(X)).fit(X[train], y[train])
    t1 = time.perf_counter()
    mean, std = model.predict(X, return_std=True)
    t2 = time.perf_counter()
    ivr_scores(model, X, free)
    t3 = time.perf_counter()
    pool = SimpleNamespace(features=X, n_b=dec.sum(axis=1), multiplicity=np.ones(len(X), np.int64))
    curve_ivr_scores(model, pool, free)
    t4 = time.perf_counter()
    return {"n_candidates": len(X), "n_train": n_train, "n_features": X.shape[1], "fit_s": t1 - t0,
            "mean_std_s": t2 - t1, "max_std_s": t2 - t1, "ivr_s": t3 - t2, "ivr_curve_s": t4 - t3}


if __name__ == "__main__":
    main()
