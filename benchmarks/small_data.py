"""Small data: the campaign's Gaussian process against the linear baseline in x, at 5 to 40 results (no DFT).

For each labelled dataset, each training size and each repeat, a random training set holding the two end
members (as a campaign's space-filling seeds do) plus random others; each model is fitted on it as the loop
fits it (a full hyperparameter search, features scaled by the whole pool) and scored by the cross-validation
the snapshots and ``activemat inspect`` report (leave-one-out up to 20 points, 20-fold above:
:func:`activemat.learn.cross_validation.cross_validate`) and on every labelled candidate left out (MAE and the
fraction within 2 predicted std). Medians over the repeats.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.small_data

Prints one table per dataset and writes benchmarks/results/small_data.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activemat.analysis.replay import labelled_pool
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import model_factory
from activemat.learn.cross_validation import cross_validate
from activemat.learn.linear import LinearModel
from benchmarks.common import command, save

DATA = "benchmarks/data/"
#: name -> (labelled file, [space] of the campaign file): the default features (shells), as the demo's.
DATASETS = {
    "16-atom gpaw-fast": (DATA + "sige16-fast.extxyz", 'supercell = [2, 2, 2]\nmode = "configurations"'),
    "16-atom gpaw-pbe-pw": (DATA + "sige16-pbe.extxyz", 'supercell = [2, 2, 2]\nmode = "configurations"'),
    "32-atom gpaw-fast": (DATA + "sige32-fast.extxyz", 'supercell = [2, 2, 4]\nmode = "sampled"'),
}

#: label -> [model] keys of a GP (None: least squares in the listed powers of x, the baselines).
MODELS = {
    "linear in x (baseline)": ("x",),
    "quadratic in x": ("x", "x2"),
    "GP, constant mean (old default)": {"mean": "constant"},
    "GP, bowing mean": {"mean": "bowing"},
    "GP, linear mean (default)": {"mean": "linear"},
}


def campaign(space: str):
    return parse_campaign(f'[campaign]\nname = "small-data"\nstore = "unused.h5"\n[space]\n{space}\n')


def powers(X: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The columns x, x^2 of a least-squares baseline (x: the first feature, the composition)."""
    x = X[:, 0]
    return np.column_stack([x if n == "x" else x ** 2 for n in names])


def training_sets(x: np.ndarray, n: int, repeats: int) -> list[np.ndarray]:
    """``repeats`` random training sets of ``n`` candidates holding both end members (x = 0 and x = 1)."""
    ends = np.array([np.flatnonzero(x == 0.0)[0], np.flatnonzero(x == 1.0)[0]])
    rest = np.setdiff1d(np.arange(len(x)), ends)
    return [np.concatenate([ends, np.random.default_rng([r, n]).choice(rest, n - 2, replace=False)])
            for r in range(repeats)]


def score(model, X: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int) -> dict:
    """CV MAE, held-out MAE and 2-std coverage of ``model`` (a [model] dict or baseline powers) on ``train``."""
    rest = np.setdiff1d(np.arange(len(y)), train)
    if isinstance(model, tuple):
        Z = powers(X, model)
        fitted = LinearModel().fit(Z[train], y[train])
        cv = cross_validate(fitted, Z[train], y[train])
        mean, std = fitted.predict(Z[rest], return_std=True)
    else:
        fitted = model(seed).fit(X[train], y[train])
        cv = cross_validate(fitted, X[train], y[train])
        mean, std = fitted.predict(X[rest], return_std=True)
    err = np.abs(mean - y[rest])
    return {"cv_mae": cv["cv_mae"], "test_mae": float(err.mean()), "within_2sd": float(np.mean(err < 2 * std))}


def run_dataset(name: str, sizes: list[int], repeats: int) -> dict:
    path, space = DATASETS[name]
    config = campaign(space)
    full, _, pool, y = labelled_pool(config, path)
    X = pool.features
    models = {label: (spec if isinstance(spec, tuple) else
                      (lambda seed, spec=spec: model_factory(config.model.model_copy(update=spec), seed, full)()))
              for label, spec in MODELS.items()}
    out = {"oracle": path, "labelled": len(y), "features": list(pool.feature_names), "sizes": {}}
    for n in sizes:
        sets = training_sets(pool.x_b, n, repeats)
        row = {}
        for label, model in models.items():
            t0 = time.perf_counter()
            draws = [score(model, X, y, train, config.campaign.seed + r) for r, train in enumerate(sets)]
            row[label] = {k: float(np.median([d[k] for d in draws])) for k in draws[0]}
            row[label]["cv_wins_over_baseline"] = None
            row[label]["seconds"] = time.perf_counter() - t0
            row[label]["cv_mae_draws"] = [d["cv_mae"] for d in draws]
            row[label]["test_mae_draws"] = [d["test_mae"] for d in draws]
        base = row["linear in x (baseline)"]
        for label, r in row.items():  # repeats in which the model's CV MAE is at most the baseline's
            r["cv_wins_over_baseline"] = int(sum(a <= b + 1e-12 for a, b in zip(r["cv_mae_draws"], base["cv_mae_draws"])))
        out["sizes"][n] = row
    return out


def table(name: str, result: dict) -> list[str]:
    """One dataset's rows: CV MAE / held-out MAE / within 2 std per model and size."""
    sizes = list(result["sizes"])
    lines = [f"{name} ({result['labelled']} labelled; median over repeats: CV MAE / held-out MAE (eV) / "
             "held-out within 2 std)",
             f"{'model':34s}" + "".join(f"{'n = ' + str(n):>26s}" for n in sizes)]
    for label in MODELS:
        cells = [result["sizes"][n][label] for n in sizes]
        lines.append(f"{label:34s}" + "".join(f"{c['cv_mae']:8.4f} / {c['test_mae']:.4f} / {c['within_2sd']:.2f}"
                                             for c in cells))
    return lines


def summary(result: dict) -> list[str]:
    """Markdown: one table per dataset; per model and size the CV MAE, the held-out MAE, the held-out fraction within
    2 predicted std and in how many training sets the CV MAE was no worse than the baseline's."""
    out = [f"Median over {result['repeats']} random training sets holding both end members; each cell: CV MAE / "
           "held-out MAE (eV) / held-out fraction within 2 predicted std / training sets in which the CV MAE was no "
           f"worse than the linear baseline's. Command: `{result['command']}`.", ""]
    for name, d in result["datasets"].items():
        sizes = list(d["sizes"])
        out += [f"{name} ({d['labelled']} labelled candidates)", "",
                "| model | " + " | ".join(f"{n} results" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for label in MODELS:
            cells = [d["sizes"][n][label] for n in sizes]
            out.append(f"| {label} | " + " | ".join(
                f"{c['cv_mae']:.4f} / {c['test_mae']:.4f} / {c['within_2sd']:.2f} / {c['cv_wins_over_baseline']}"
                for c in cells) + " |")
        out.append("")
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 40], help="training-set sizes")
    p.add_argument("--repeats", type=int, default=10, help="random training sets per size")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = p.parse_args(argv)
    result = {"repeats": args.repeats, "command": command("small_data", argv), "models": MODELS, "datasets": {}}
    for name in args.datasets:
        result["datasets"][name] = run_dataset(name, args.sizes, args.repeats)
        print("\n".join(table(name, result["datasets"][name])) + "\n", flush=True)
    save("small_data", result)
    return result


if __name__ == "__main__":
    main()
