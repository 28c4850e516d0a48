"""Feature sets against labelled data: leave-one-out CV MAE of the campaign GP, shells vs orbits vs icet cluster
vectors (several cutoffs), with and without ARD; then the marginal-likelihood optimiser's stopping rule against
scipy's default (no DFT; minutes).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.features_cv benchmarks/data/reference-pbe.h5
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.features_cv --oracle benchmarks/data/sige32-fast.extxyz \
        --supercell 2 2 4 --cutoffs 7,4.5,4 7,6,5 9,6,5 10,7,6

Uses every successful calculation of the store at its campaign preset; prints two tables and writes
benchmarks/results/features_cv.json. With --oracle, the labelled structures of a file in the given cell (one per
symmetry class, duplicates' gaps averaged: the replay pool of a sampled space) and icet features only; writes
benchmarks/results/features_cv_<n>atoms.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activemat.campaign.config import ModelSection
from activemat.campaign.setup import model_factory
from activemat.campaign.stored import open_campaign
from activemat.learn.cross_validation import cross_validate
from activemat.space.features import DEFAULT_CUTOFFS
from activemat.space.pool import build_pool
from benchmarks.common import command, save


def summary(result: dict) -> list[str]:
    """The report's section: leave-one-out CV per feature kind and ARD, and the optimiser's stopping rule."""
    d = result
    recorded = d.get("command") or f"benchmarks/features_cv.py {d['store']}"  # the first result recorded none
    out = [f"Leave-one-out CV of the campaign GP on `{d['store']}` ({d['n_labels']} labels, {d['restarts']} optimiser "
           f"restart). Command: `{recorded}` (load average {d['machine']['load_1min']} on "
           f"{d['machine']['cpus']} cores: times are upper bounds; evaluation counts do not depend on load).", "",
           "| features | ARD | LOO MAE (eV) | training MAE (eV) | fit (s) | warm-started refit (s) |",
           "|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['features']} ({r['n_features']}) | {'yes' if r['ard'] else 'no'} | {r['cv_mae']:.4f} | "
                   f"{r['fit_mae']:.4f} | {r['fit_seconds']:.1f} | {r['warm_refit_seconds']:.1f} |")
    if d.get("optimiser"):
        out += ["", "Marginal-likelihood optimiser, orbits + ARD: scipy's default stopping rule against the "
                "project's (`LML_FTOL` in `activemat/learn/gp.py`):", "",
                "| labels | stopping rule | likelihood evaluations | log marginal likelihood | LOO MAE (eV) | fit (s) |",
                "|---|---|---|---|---|---|"]
        for r in d["optimiser"]:
            out.append(f"| {r['n']} | {r['stopping']} | {r['evaluations']} | {r['log_marginal_likelihood']:.2f} | "
                       f"{r['loo_mae']:.4f} | {r['seconds']:.1f} |")
    return out + [""]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", nargs="?", help="a labelled store over a configurations space (e.g. runs/reference-pbe.h5)")
    p.add_argument("--oracle", help="instead of a store: a labelled extended-XYZ file of cells of --supercell")
    p.add_argument("--supercell", type=int, nargs=3, default=[2, 2, 4], help="with --oracle: the cell's repeats of "
                                                                              "the primitive cell")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--cutoffs", nargs="*", default=["7,4.5,4", "7,4.5,5", "7,6,5", "8,6,5"],
                   help="icet cutoff sets (pairs,triplets,quadruplets in Angstrom) to compare; 7,6,5 is the "
                        "campaign default")
    args = p.parse_args(argv)
    from sklearn.preprocessing import StandardScaler

    if args.oracle:
        return oracle_rows(args)
    if not args.store:
        p.error("give a store or --oracle")
    view = open_campaign(args.store)
    space = view.config().space
    idx, y = view.training_set()
    rows = []
    scaled = {}  # features -> (X, pool-wide scaler)
    sets = [("shells", None), ("orbits", None)]
    sets += [("icet", tuple(float(c) for c in text.split(","))) for text in args.cutoffs]
    for features, cutoffs in sets:
        pool = build_pool(space.elements, space.supercell, space.mode, space.samples_per_composition,
                          features=features, cutoffs=cutoffs or DEFAULT_CUTOFFS)
        label = features if cutoffs is None else f"icet {','.join(f'{c:g}' for c in cutoffs)}"
        if not np.array_equal(pool.decorations, view.candidates["decoration"]):
            raise SystemExit(f"{args.store}: its candidates differ from build_pool's; give a configurations store")
        X = pool.features
        scaler = StandardScaler().fit(X)
        scaled[label] = X, scaler
        for ard in (False, True):
            make = model_factory(ModelSection(ard=ard, restarts=args.restarts), 0, pool)  # the campaign's model
            t0 = time.perf_counter()
            model = make().fit(X[idx], y)
            seconds = time.perf_counter() - t0
            cv = cross_validate(model, X[idx], y, max_folds=len(y))  # leave-one-out (closed form)
            fit = float(np.mean(np.abs(model.predict(X[idx]) - y)))
            # the loop's refit after one more label: warm-started from the fit without it
            before = make().fit(X[idx[:-1]], y[:-1])
            t0 = time.perf_counter()
            make(warm_start=before.kernel_).fit(X[idx], y)
            warm = time.perf_counter() - t0
            rows.append({"features": features, "cutoffs": cutoffs, "n_features": X.shape[1], "ard": ard,
                         "cv_mae": cv["cv_mae"],
                         "cv_rmse": cv["cv_rmse"], "fit_mae": fit, "fit_seconds": seconds,
                         "warm_refit_seconds": warm, "kernel": str(model.kernel_)})
            print(f"{label:13s} ({X.shape[1]:2d})  ard={ard!s:5s}  LOO CV MAE {cv['cv_mae']:.4f} eV  "
                  f"fit MAE {fit:.4f} eV  fit {seconds:.1f} s, warm-started refit {warm:.1f} s")
    X, scaler = scaled["orbits"]
    out = {"store": str(args.store), "n_labels": int(len(y)), "restarts": args.restarts, "rows": rows,
           "optimiser": compare_tolerance(X[idx], y, scaler, args.restarts), "command": command("features_cv", argv)}
    save("features_cv", out)
    return out


def oracle_rows(args) -> dict:
    """LOO CV MAE of the campaign GP on the labelled structures of a file, icet features at each cutoff set."""
    from activemat.space.matching import load_labelled_pool

    rows = []
    for text in args.cutoffs:
        cutoffs = tuple(float(c) for c in text.split(","))
        pool, labels = load_labelled_pool(args.oracle, ("Si", "Ge"), tuple(args.supercell), features="icet",
                                          cutoffs=cutoffs)
        y = np.array([labels.gaps[i] for i in range(len(pool))])
        for ard in (False, True):
            model = model_factory(ModelSection(ard=ard, restarts=args.restarts), 0, pool)().fit(pool.features, y)
            cv = cross_validate(model, pool.features, y, max_folds=len(y))
            rows.append({"cutoffs": cutoffs, "n_features": pool.features.shape[1], "ard": ard,
                         "cv_mae": cv["cv_mae"], "cv_rmse": cv["cv_rmse"]})
            print(f"icet {text:10s} ({pool.features.shape[1]:2d})  ard={ard!s:5s}  LOO CV MAE {cv['cv_mae']:.4f} eV  "
                  f"RMSE {cv['cv_rmse']:.4f} eV", flush=True)
    out = {"oracle": str(args.oracle), "supercell": list(args.supercell), "n_sites": int(pool.n_sites),
           "n_labels": int(len(y)), "restarts": args.restarts, "rows": rows}
    save(f"features_cv_{pool.n_sites}atoms", out)
    return out


def compare_tolerance(X: np.ndarray, y: np.ndarray, scaler, restarts: int) -> list[dict]:
    """Orbits + ARD fits on the first half and on all labels, with scipy's default stopping rule and with ours."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from activemat.learn import models as gp_model

    rows = []
    for n in (len(y) // 2, len(y)):
        for name, ftol in (("scipy default", None), (f"ftol {gp_model.LML_FTOL:g}", gp_model.LML_FTOL)):
            evaluations = [0]
            fitted = gp_model.GPRegressor(ard=True, restarts=restarts, random_state=0, scaler=scaler)

            def counting(obj, theta, bounds, ftol=ftol):
                def counted(t):
                    evaluations[0] += 1
                    return obj(t, eval_gradient=True)
                return gp_model.lbfgs(counted, theta, bounds, ftol=ftol)  # ftol None: scikit-learn's own search

            fitted.scaler_ = scaler
            fitted.gp_ = gp_model.GaussianProcessRegressor(
                fitted._default_kernel(X.shape[1]), optimizer=counting, n_restarts_optimizer=restarts,
                normalize_y=True, random_state=0)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted.gp_.fit(scaler.transform(X[:n]), y[:n])
            seconds = time.perf_counter() - t0
            fitted.kernel_ = fitted.gp_.kernel_
            cv = cross_validate(fitted, X[:n], y[:n], max_folds=n)
            rows.append({"n": n, "stopping": name, "seconds": seconds, "evaluations": evaluations[0],
                         "log_marginal_likelihood": fitted.gp_.log_marginal_likelihood_value_,
                         "loo_mae": cv["cv_mae"]})
            print(f"orbits+ARD n={n:3d}  {name:13s}  {seconds:5.1f} s  {evaluations[0]:4d} evaluations  "
                  f"log ML {fitted.gp_.log_marginal_likelihood_value_:8.2f}  LOO MAE {cv['cv_mae']:.4f} eV")
    return rows


if __name__ == "__main__":
    main()
