"""Cell-size convergence of the gap curve: the same preset's random-alloy curve from a small and a large cell,
compared at the compositions both cells have (issue 27).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.cell_size \\
        benchmarks/data/sige16-accurate.h5:pbe-fast benchmarks/data/sige32-pbe-fast.h5

Each curve is the tool's own (:func:`activemat.analysis.curve.gap_curve`, the curve ``activemat predict STORE
--curve --bowing fixed-ends [--preset NAME]`` prints): the composition average over the cell's decorations with
its joint-posterior std, the end points fixed to the computed end members. ``STORE:PRESET`` takes one level of
a multi-fidelity store alone. The difference at each shared composition comes with the two stds combined
(the two models are independent). Writes benchmarks/results/cell_size.json, docs/figures/cell-size.png and the
page fragment docs/results/cell-size.md that docs/results.md includes.
"""

from __future__ import annotations

import argparse
import math
import time
from fractions import Fraction
from pathlib import Path

from activemat.analysis import canvas
from activemat.analysis.curve import gap_curve
from benchmarks.common import command
from benchmarks.production import FIGURES, FRAGMENTS, publish

TARGET = 0.02  # eV: issue 27's agreement between cell sizes


def curve_of(spec: str, samples: int) -> dict:
    """``STORE`` or ``STORE:PRESET``: its curve (one level alone with a preset)."""
    store, _, preset = spec.partition(":")
    curve = gap_curve(store, bowing="fixed-ends", n_samples=samples, preset=preset or None)
    sites = curve["compositions"][-1]["n_b"]
    return {"spec": spec, "store": store, "preset": preset or None, "sites": sites, "n_train": curve["n_train"],
            "hyperparameters": curve["hyperparameters"], "bowing": curve["bowing"],
            "compositions": curve["compositions"]}


def compare(small: dict, large: dict) -> dict:
    """Large minus small at every composition both cells have, with the two stds combined."""
    by_x = {Fraction(c["n_b"], large["sites"]): c for c in large["compositions"]}
    rows = []
    for c in small["compositions"]:
        other = by_x.get(Fraction(c["n_b"], small["sites"]))
        if other is None:
            continue
        rows.append({"x": c["x"], "small": c["mean"], "large": other["mean"], "small_std": c["model_std"],
                     "large_std": other["model_std"], "difference": other["mean"] - c["mean"],
                     "std": math.hypot(c["model_std"], other["model_std"])})
    worst = max(rows, key=lambda r: abs(r["difference"]))
    return {"rows": rows, "max_abs": abs(worst["difference"]), "at_x": worst["x"],
            "mean_abs": sum(abs(r["difference"]) for r in rows) / len(rows),
            "within_target": all(abs(r["difference"]) <= TARGET for r in rows)}


def figure(small: dict, large: dict, path: Path) -> None:
    fig, ax = canvas.figure(6, 4)
    for curve, colour in zip((small, large), canvas.COLOURS):
        x = [c["x"] for c in curve["compositions"]]
        mean = [c["mean"] for c in curve["compositions"]]
        std = [c["model_std"] for c in curve["compositions"]]
        ax.fill_between(x, [m - 2 * s for m, s in zip(mean, std)], [m + 2 * s for m, s in zip(mean, std)],
                        color=colour, alpha=0.25, lw=0)
        ax.plot(x, mean, color=colour, label=f"{curve['sites']}-atom cell, {curve['n_train']} results")
    ax.set_xlabel("x (Ge fraction)")
    ax.set_ylabel("random-alloy gap (eV)")
    ax.set_title(f"{small['preset'] or 'campaign preset'}: cell size (bands: ±2 joint std)", fontsize=10)
    ax.legend()
    fig.savefig(path, dpi=110)


def fragment(r: dict) -> str:
    small, large, cmp_ = r["small"], r["large"], r["comparison"]
    verdict = ("within" if cmp_["within_target"] else "**not within**") + f" the {TARGET} eV target"
    lines = [f"<!-- made by `{r['command']}` on {r['machine']['date']}; do not edit -->", "",
             f"The {small['sites']}-atom curve ({small['n_train']} results, `{small['spec']}`) against the "
             f"{large['sites']}-atom one ({large['n_train']} results, `{large['spec']}`) at the compositions both "
             f"cells have: largest difference {cmp_['max_abs']:.3f} eV at x = {cmp_['at_x']:.3f}, mean absolute "
             f"{cmp_['mean_abs']:.3f} eV, {verdict}. Bowing with the end points fixed: b = "
             f"{small['bowing']['b']:.3f} ± {small['bowing']['b_std']:.3f} eV ({small['sites']} atoms), "
             f"{large['bowing']['b']:.3f} ± {large['bowing']['b_std']:.3f} eV ({large['sites']} atoms).", "",
             f"![{small['sites']}- against {large['sites']}-atom curve](figures/{r['figure']})", "",
             f"| x | {small['sites']} atoms (eV) | {large['sites']} atoms (eV) | difference (eV) | "
             "combined joint std (eV) |", "|---|---|---|---|---|"]
    lines += [f"| {row['x']:.4f} | {row['small']:.3f} ± {row['small_std']:.3f} | {row['large']:.3f} ± "
              f"{row['large_std']:.3f} | {row['difference']:+.3f} | {row['std']:.3f} |" for row in cmp_["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("small", help="STORE or STORE:PRESET of the smaller cell")
    p.add_argument("large", help="STORE or STORE:PRESET of the larger cell")
    p.add_argument("--samples", type=int, default=4000, help="joint posterior draws for the bowing fit")
    p.add_argument("--out", type=Path, help="write the JSON, figure and fragment into this folder instead of "
                                            "benchmarks/results, docs/figures and docs/results")
    a = p.parse_args(argv)
    results, figures, fragments = (a.out, a.out, a.out) if a.out else (None, FIGURES, FRAGMENTS)
    figures.mkdir(parents=True, exist_ok=True)
    start = time.time()
    small, large = curve_of(a.small, a.samples), curve_of(a.large, a.samples)
    figure(small, large, figures / "cell-size.png")
    result = {"command": command("cell_size", argv), "small": small, "large": large,
              "comparison": compare(small, large), "figure": "cell-size.png", "target": TARGET}
    saved = publish("cell_size", result, results, fragment, fragments / "cell-size.md")
    print(f"written {saved}, {fragments / 'cell-size.md'} in {time.time() - start:.0f} s")
    return result


if __name__ == "__main__":
    main()
