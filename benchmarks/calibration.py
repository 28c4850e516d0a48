"""Calibration of the model's uncertainty: is the true gap within the predicted 2 sigma as often as it should be?

For each [model] variant, trains the campaign's own model (`model_factory`,
features scaled by the whole pool) on random training sets of each size and
scores every labelled candidate left out: the fraction within 1 and 2
predicted standard deviations (a calibrated Gaussian gives 0.68 and 0.95),
the mean squared z-score (1 if calibrated; above 1, overconfident) and the
MAE. Medians over the draws. No DFT: the labels come from an extxyz.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.calibration --name calibration-16 \
        --campaign campaigns/sige16-pbe.toml --oracle benchmarks/data/sige16-pbe.extxyz --sizes 10 20 40 80
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.calibration --name calibration-32 \
        --campaign campaigns/sige32-fast.toml --oracle benchmarks/data/sige32-fast.extxyz --sizes 10 20 40 80
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.calibration --name calibration-compositions \
        --campaign campaigns/seed-tutorial-active.toml --oracle benchmarks/data/sige16-compositions-fast.extxyz \
        --sizes 4 6 10
"""

from __future__ import annotations

import argparse

import numpy as np

from activemat.analysis.replay import labelled_pool
from activemat.campaign.config import load_campaign
from activemat.campaign.setup import model_factory
from benchmarks.common import command, save

#: The [model] variants compared: (label, ard, prior). The package default is ("classes", "weak").
VARIANTS = (("one length scale, max. likelihood", False, "none"),
            ("per feature, max. likelihood", True, "none"),
            ("per class, max. likelihood", "classes", "none"),
            ("one length scale, weak prior", False, "weak"),
            ("per feature, weak prior", True, "weak"),
            ("per class, weak prior (default)", "classes", "weak"))


def scores(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict:
    """Coverage within 1 and 2 sigma, mean squared z-score and MAE of predictions of ``y``."""
    z = (y - mean) / std
    return {"within_1sd": float(np.mean(np.abs(z) < 1)), "within_2sd": float(np.mean(np.abs(z) < 2)),
            "mean_z2": float(np.mean(z ** 2)), "mae": float(np.mean(np.abs(y - mean)))}


def summary(result: dict) -> list[str]:
    """The report's section on one result: fraction within 2 predicted sd, mean squared z-score and MAE per
    [model] variant and training size."""
    d = result
    sizes = list(next(iter(d["variants"].values()))["sizes"])
    out = [f"({d['draws']} random training sets per size). Command: `{d['command']}`", "",
           "| model | " + " | ".join(f"{n} labels: within 2 sd / mean z^2 / MAE (eV)" for n in sizes) + " |",
           "|---" * (len(sizes) + 1) + "|"]
    for label, v in d["variants"].items():
        out.append(f"| {label} | " + " | ".join(
            f"{r['within_2sd']:.2f} / {r['mean_z2']:.1f} / {r['mae']:.4f}" for r in v["sizes"].values()) + " |")
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="results/<name>.json")
    p.add_argument("--campaign", required=True, help="campaign file: its [space] and [model] (kind, restarts, ...)")
    p.add_argument("--oracle", required=True, help="labelled structures (extxyz) of the campaign's pool")
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40, 80], help="training-set sizes")
    p.add_argument("--draws", type=int, default=10, help="random training sets per size")
    args = p.parse_args()
    config, _ = load_campaign(args.campaign)
    full, _, pool, y = labelled_pool(config, args.oracle)
    result = {"campaign": args.campaign, "oracle": args.oracle, "labelled": len(pool), "draws": args.draws,
              "command": command("calibration"), "variants": {}}
    print(f"{len(pool)} labelled candidates, {args.draws} random training sets per size; median over draws of: "
          "fraction within 2 sd / mean z^2 / MAE (eV)")
    for label, ard, prior in VARIANTS:
        section = config.model.model_copy(update={"kind": "gp", "ard": ard, "prior": prior})
        rows = {}
        for n in args.sizes:
            if n > len(pool) - 3:
                continue
            draws = []
            for d in range(args.draws):
                train = np.random.default_rng([d, n]).choice(len(pool), n, replace=False)
                rest = np.setdiff1d(np.arange(len(pool)), train)
                model = model_factory(section, config.campaign.seed + d, full)().fit(pool.features[train], y[train])
                mean, std = model.predict(pool.features[rest], return_std=True)
                draws.append(scores(y[rest], mean, std))
            rows[n] = {k: float(np.median([s[k] for s in draws])) for k in draws[0]}
        result["variants"][label] = {"ard": ard, "prior": prior, "sizes": rows}
        print(f"{label:36s} " + " | ".join(f"n={n}: {r['within_2sd']:.2f} / {r['mean_z2']:.1f} / {r['mae']:.4f}"
                                             for n, r in rows.items()), flush=True)
    print("->", save(args.name, result))


if __name__ == "__main__":
    main()
