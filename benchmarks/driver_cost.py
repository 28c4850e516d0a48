"""Driver cost per result: refit, cross-validation, predictions over the pool and selection, timed.

What the campaign loop does after every result (activemat.campaign.loop.CampaignLoop.learn
and select): fit the GP (hyperparameters optimised, 2 restarts), cross-validate
it (activemat.learn.models.cross_validate), predict mean and std over the whole pool,
then pick with the campaign's selection rule (activemat.learn.strategies.choose;
with one calculation still running, i.e. 2 workers, the "kriging believer"
refit is included). Pools come from activemat.space.pool sampled mode on the
54-site 3x3x3 supercell; labels are a smooth synthetic function (timing only).
Single-threaded BLAS, as the driver runs next to the workers.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.driver_cost
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import model_factory
from activemat.learn.cross_validation import cross_validate
from activemat.learn.strategies import Context, choose, make_strategy
from activemat.space.pool import build_pool
from benchmarks.common import command, save, shell, synthetic_gap


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one(pool, n_train: int, kind: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    X = pool.features
    y = synthetic_gap(X) + 0.005 * rng.normal(size=len(X))
    train = rng.choice(len(X), n_train, replace=False)
    running = np.setdiff1d(rng.choice(len(X), 3, replace=False), train)[:1]
    config = parse_campaign(f"[strategy]\nkind = '{kind}'\nn_seed = 4\n[model]\nrestarts = 2\n")
    strategy = make_strategy(kind, config.strategy)
    make = model_factory(config.model, seed, pool)
    model, t_fit = timed(lambda: make().fit(X[train], y[train]))
    _, t_cv = timed(lambda: cross_validate(model, X[train], y[train]))
    (mean, std), t_pred = timed(lambda: model.predict(X, return_std=True))
    free = np.ones(len(X), bool)
    free[train] = False
    free[running] = False

    def select(X_running):
        ctx = Context(pool=pool, free=free[None], rng=rng, model=model, X_train=X[train], y_train=y[train],
                      running=[X_running], predictions=(mean, std))
        return choose(strategy, ctx, n_seed=4, n_started=n_train + 1)

    _, t_sel0 = timed(lambda: select(X[:0]))
    _, t_sel1 = timed(lambda: select(X[running]))
    return {"pool": len(X), "n_train": n_train, "strategy": kind, "fit_s": t_fit, "cv_s": t_cv, "predict_s": t_pred,
            "select_s": t_sel0, "select_1_running_s": t_sel1,
            "refit_and_select_s": t_fit + t_cv + t_pred + t_sel1}


def summary(result: dict) -> list[str]:
    """The report's section: fit, CV, prediction and selection time per pool size, training size and strategy."""
    d = result
    out = [f"Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 {shell(d['command'])}` "
           f"(load average {d['machine']['load_1min']} on {d['machine']['cpus']} cores).", "",
           "| pool | training points | strategy | fit (s) | CV (s) | predict mean+std (s) | select, 1 running (s) "
           "| total (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['pool']} | {r['n_train']} | {r['strategy']} | {r['fit_s']:.3f} | {r['cv_s']:.3f} | "
                   f"{r['predict_s']:.3f} | {r['select_1_running_s']:.3f} | **{r['refit_and_select_s']:.3f}** |")
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pools", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    p.add_argument("--train", type=int, nargs="+", default=[50, 100, 200, 500])
    p.add_argument("--strategies", nargs="+", default=["max_std", "ivr"])
    args = p.parse_args()
    rows = []
    for target in args.pools:
        per = max(1, round(target / 55))  # 55 compositions of the 54-site cell
        pool, t_build = timed(lambda: build_pool(("Si", "Ge"), (3, 3, 3), mode="sampled", samples_per_composition=per,
                                                 seed=0))
        sizes = args.train if target == 10000 else [min(200, len(pool) // 2)]
        for n in sizes:
            for kind in args.strategies:
                r = one(pool, n, kind)
                r["pool_build_s"] = t_build
                rows.append(r)
                print(f"pool {r['pool']:6d} train {n:3d} {kind:7s}: fit {r['fit_s']:.3f} s, cv {r['cv_s']:.3f} s, "
                      f"predict {r['predict_s']:.3f} s, select {r['select_s']:.3f} s "
                      f"({r['select_1_running_s']:.3f} s with 1 running) -> total {r['refit_and_select_s']:.3f} s",
                      flush=True)
    path = save("driver_cost", {"rows": rows, "command": command("driver_cost")})
    print(f"-> {path}")


if __name__ == "__main__":
    main()
