"""Feature sets against labelled data: leave-one-out CV MAE of the campaign GP, shells vs orbits, with and
without ARD (no DFT; seconds).

    .venv/bin/python benchmarks/features_cv.py runs/reference-pbe.h5

Uses every successful calculation of the store at its campaign preset; prints a table and writes
benchmarks/results/features_cv.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402

from activemat.model import cross_validate, make_model  # noqa: E402
from activemat.query import open_store  # noqa: E402
from activemat.space import build_pool  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", help="a labelled store over a configurations space (e.g. runs/reference-pbe.h5)")
    p.add_argument("--restarts", type=int, default=1)
    args = p.parse_args(argv)
    from sklearn.preprocessing import StandardScaler

    view = open_store(args.store)
    space = view.config().space
    idx, y = view.training_set()
    rows = []
    for features in ("shells", "orbits"):
        pool = build_pool(space.elements, space.supercell, space.mode, space.samples_per_composition,
                          features=features)
        if not np.array_equal(pool.decorations, view.data.candidates["decoration"]):
            raise SystemExit(f"{args.store}: its candidates differ from build_pool's; give a configurations store")
        X = pool.features
        scaler = StandardScaler().fit(X)
        for ard in (False, True):
            t0 = time.perf_counter()
            model = make_model("gp", ard, args.restarts, 0, scaler).fit(X[idx], y)
            seconds = time.perf_counter() - t0
            cv = cross_validate(model, X[idx], y)
            fit = float(np.mean(np.abs(model.predict(X[idx]) - y)))
            # the loop's refit after one more label: warm-started from the fit without it
            before = make_model("gp", ard, args.restarts, 0, scaler).fit(X[idx[:-1]], y[:-1])
            t0 = time.perf_counter()
            make_model("gp", ard, args.restarts, 0, scaler, warm_start=before.kernel_).fit(X[idx], y)
            warm = time.perf_counter() - t0
            rows.append({"features": features, "n_features": X.shape[1], "ard": ard, "cv_mae": cv["cv_mae"],
                         "cv_rmse": cv["cv_rmse"], "fit_mae": fit, "fit_seconds": seconds,
                         "warm_refit_seconds": warm, "kernel": str(model.kernel_)})
            print(f"{features:7s} ({X.shape[1]:2d})  ard={ard!s:5s}  LOO CV MAE {cv['cv_mae']:.4f} eV  "
                  f"fit MAE {fit:.4f} eV  fit {seconds:.1f} s, warm-started refit {warm:.1f} s")
    out = {"store": str(args.store), "n_labels": int(len(y)), "restarts": args.restarts, "rows": rows}
    save("features_cv", out)
    return out


if __name__ == "__main__":
    main()
