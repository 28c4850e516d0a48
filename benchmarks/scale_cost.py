"""Driver cost of one refit + selection of a batch at scale: 10^5 candidates, 2000-10^4 training points.

What the campaign loop does once per batch of results (activemat.campaign.loop.CampaignLoop):
refit the model (activemat.campaign.learner.Learner: a full search when the schedule says, else a
warm refit), predict mean and std over the whole pool in blocks (activemat.learn.scalable.predict_chunked),
cross-validate (on the growth schedule; 5-fold above 2000 points), then pick one candidate per free worker in one step
(activemat.learn.strategies.choose_batch, kriging believer with the running calculations).
Pool: sampled decorations of the 54-site 3x3x3 cell, "shells" features (as benchmarks/simcluster.py);
labels: a smooth synthetic function plus 5 meV noise (timing only). Models: the scalable
nystroem model (256 components) and, for reference, the exact GP where it is feasible.
Single-threaded BLAS, as the driver runs next to the workers.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.scale_cost
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import model_factory
from activemat.campaign.learner import CV_FEW_FOLDS, CV_FEW_FOLDS_ABOVE
from activemat.learn.cross_validation import MAX_FOLDS, cross_validate
from activemat.learn.scalable import predict_chunked
from activemat.learn.strategies import Context, choose_batch, make_strategy
from activemat.space.pool import build_pool
from benchmarks.common import command, save, shell, synthetic_gap


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one(pool, n_train: int, batch: int, running: int, kind: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    X = pool.features
    y = synthetic_gap(X) + 0.005 * rng.normal(size=len(X))
    order = rng.permutation(len(X))
    train, run = order[:n_train], order[n_train:n_train + running]
    section = parse_campaign(f"[model]\nkind = '{kind}'\n").model
    make = model_factory(section, seed, pool)
    full, t_full = timed(lambda: make(None, n_train=n_train).fit(X[train], y[train]))
    model, t_warm = timed(lambda: make(full.kernel_, n_train=n_train).fit(X[train], y[train]))
    (mean, std), t_pred = timed(lambda: predict_chunked(model, X))
    folds = CV_FEW_FOLDS if n_train > CV_FEW_FOLDS_ABOVE else MAX_FOLDS  # as the Learner
    _, t_cv = timed(lambda: cross_validate(model, X[train], y[train], max_folds=folds))
    free = np.ones(len(X), bool)
    free[train] = free[run] = False
    ctx = Context(pool=pool, free=free[None], rng=rng, model=model, X_train=X[train], y_train=y[train],
                  running=[X[run]], predictions=(mean, std))
    (picks, _), t_sel = timed(lambda: choose_batch(make_strategy("max_std"), ctx, batch, n_seed=4,
                                                   n_started=n_train + running))
    assert len({p.candidate for p in picks}) == batch
    return {"pool": len(X), "n_train": n_train, "model": kind, "batch": batch, "running": running,
            "full_search_s": t_full, "warm_refit_s": t_warm, "predict_pool_s": t_pred, "cv_s": t_cv,
            "select_batch_s": t_sel, "refit_and_select_s": t_warm + t_pred + t_sel,
            "with_cv_s": t_warm + t_pred + t_sel + t_cv, "load_1min": round(os.getloadavg()[0], 2)}


def summary(result: dict) -> list[str]:
    """The report's section: full search, warm refit, pool prediction and batch selection per size and model."""
    d = result
    recorded = d.get("command", "benchmarks/scale_cost.py --gp-upto 500")  # the first result recorded none
    out = [f"Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 {shell(recorded)}` ({d['rows'][0]['running']} "
           "running calculations).", "",
           "| pool | training points | model | batch | full search (s) | warm refit (s) | predict pool (s) | "
           "select batch (s) | **refit + select (s)** | CV (s) | load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['pool']} | {r['n_train']} | {r['model']} | {r['batch']} | {r['full_search_s']:.2f} | "
                   f"{r['warm_refit_s']:.2f} | {r['predict_pool_s']:.2f} | {r['select_batch_s']:.2f} | "
                   f"**{r['refit_and_select_s']:.2f}** | {r['cv_s']:.2f} | {r['load_1min']} |")
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=2400, help="random decorations per composition (55 compositions; symmetry-distinct ones kept)")
    p.add_argument("--train", type=int, nargs="+", default=[2000, 10000])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    p.add_argument("--running", type=int, default=256)
    p.add_argument("--gp-upto", type=int, default=1000, help="also time the exact GP at training sizes up to this")
    args = p.parse_args()
    pool, t_build = timed(lambda: build_pool(("Si", "Ge"), (3, 3, 3), mode="sampled",
                                             samples_per_composition=args.draws, seed=0))
    rows = []
    sizes = sorted(set(args.train) | ({args.gp_upto} if args.gp_upto else set()))
    for n in sizes:
        for kind in ("nystroem", "gp"):
            if kind == "gp" and n > args.gp_upto:
                continue
            for batch in args.batch:
                r = one(pool, n, batch, args.running, kind)
                r["pool_build_s"] = t_build
                rows.append(r)
                print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
                save("scale_cost", {"rows": rows, "command": command("scale_cost")})


if __name__ == "__main__":
    main()
