"""A production campaign's results as a scientist reads them: what was computed at what cost, the curve against
experiment with every correction named, and where the conduction-band minimum changes valley.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.production benchmarks/data/sige16-accurate.h5

Reads the store only (safe while its campaign runs) through the tool's own readers: the cost per preset from
the calculations table, :func:`activemat.analysis.curve.gap_curve` with the end points fixed to the computed end
members and every correction term (the curve ``activemat predict STORE --curve --bowing fixed-ends
--corrections all`` prints), :func:`activemat.analysis.crossover.crossover` (``predict --crossover``) and the
experiment figure (``activemat plot --figures experiment --corrections all``). Writes
benchmarks/results/production-<name>.json, docs/figures/<name>-experiment.png and the generated page fragment
docs/results/<name>.md that docs/results.md includes; rerun it as the campaign goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from activemat.analysis.api import Store
from activemat.analysis.crossover import bracket_text, crossover
from activemat.analysis.curve import gap_curve, with_experiment
from activemat.analysis.experiment import CROSSOVER_X
from activemat.analysis.experiment_figure import compare_experiment
from activemat.analysis.model import fit_store_model
from activemat.errors import InputError
from activemat.store import schema as S
from benchmarks.common import command, save

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
FRAGMENTS = ROOT / "docs" / "results"


def costs(store: Store) -> list[dict]:
    """Per preset, cheap to accurate: successful results, CPU-hours of every attempt and the median per result."""
    calc = store.calculations
    presets = list(store.config().calculator.presets)
    rows = []
    for preset in presets:
        mine = calc[calc["preset"] == preset]
        ok = mine[mine["status"] == S.OK]
        ranks = mine["ranks"].clip(lower=1) if "ranks" in mine else 1  # 0: not recorded, one core
        seconds = float((mine["wall_time"].fillna(0) * ranks).sum())
        rows.append({"preset": preset, "results": int(len(ok)), "attempts": int(len(mine)),
                     "cpu_hours": seconds / 3600,
                     "median_s": float(ok["wall_time"].median()) if len(ok) else math.nan})
    return rows


def summarise(path: Path, name: str, samples: int, figures: Path = FIGURES) -> dict:
    store = Store(path)
    status = store.status()
    model = fit_store_model(store.view)  # fitted once: the curve and the figure share it
    try:  # the end points at the computed end members when both are there
        curve = gap_curve(model, bowing="fixed-ends", n_samples=samples)
    except InputError:
        curve = gap_curve(model, n_samples=samples)
    curve = with_experiment(curve, "all")
    try:
        cross = crossover(path)
    except InputError as error:  # too few results with both valleys yet: say so on the page
        cross = {"error": str(error)}
    figure = figures / f"{name}-experiment.png"
    compare_experiment([path], figure, models={str(model.view.path): model}, corrections="all")
    stop = store.config().stop
    return {"command": command("production"), "store": str(path), "name": name, "status": status,
            "stop": {"target_curve_std": stop.target_curve_std, "cost_budget_cpu_hours":
                     stop.cost_budget / 3600 if stop.cost_budget else None, "budget": stop.budget},
            "costs": costs(store), "curve": curve, "crossover": cross, "figure": figure.name}


def stop_line(r: dict) -> str:
    """Where the campaign stands against its own stop: the curve's std target, then the cost budget."""
    stop, total = r.get("stop") or {}, sum(c["cpu_hours"] for c in r["costs"])
    worst = max(c["model_std"] for c in r["curve"]["compositions"])
    parts = []
    if stop.get("target_curve_std") is not None:
        reached = "reached" if worst <= stop["target_curve_std"] else "not reached"
        parts.append(f"curve std target {stop['target_curve_std']:.3f} eV {reached} "
                     f"(largest joint std here {worst:.4f} eV)")
    if stop.get("cost_budget_cpu_hours"):
        parts.append(f"{total:.1f} of a {stop['cost_budget_cpu_hours']:.0f} CPU-hour budget spent")
    return "Stop: " + "; ".join(parts) + "." if parts else ""


def _f(v, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def fragment(r: dict) -> str:
    """The page fragment: state, cost, curve table, bowing, crossover, figure."""
    st, curve, cross = r["status"], r["curve"], r["crossover"]
    total = sum(c["cpu_hours"] for c in r["costs"])
    done = "running" if st.get("driver_running") else "not running"
    lines = [f"<!-- made by `{r['command']}` on {r['machine']['date']}; do not edit -->", "",
             f"State on {r['machine']['date']}: {st['completed']} results, campaign {done}; "
             f"{total:.1f} CPU-hours of DFT so far. {stop_line(r)}", "",
             "| preset | results | attempts | CPU-hours | median per result (s) |", "|---|---|---|---|---|"]
    lines += [f"| {c['preset']} | {c['results']} | {c['attempts']} | {c['cpu_hours']:.2f} | {_f(c['median_s'], 0)} |"
              for c in r["costs"]]
    dev = curve["deviations"]
    # the path is relative to docs/results.md, the page that includes the fragment
    lines += ["", f"![the curve against experiment](figures/{r['figure']})", "",
              "| x | composition | model gap (eV) | joint std (eV) | configurational spread (eV) | "
              "measured + terms (eV) | model - measured (eV) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['x']:.4f} | {c['formula']} | {c['mean']:.3f} | {c['model_std']:.3f} | {c['spread']:.3f} | "
              f"{c['experiment']:.3f} | {c['deviation']:+.3f} |" for c in curve["compositions"]]
    fit = curve["bowing"]
    if fit:
        lines += ["", f"Bowing ({fit['fit']}): b = {_f(fit['b'])} ± {_f(fit['b_std'])} eV. "
                      f"Model minus measured-plus-terms: mean {dev['mean_signed']:+.3f} eV, "
                      f"mean absolute {dev['mean_abs']:.3f} eV, largest {dev['max_abs']:.3f} eV; "
                      f"largest joint std {max(c['model_std'] for c in curve['compositions']):.3f} eV."]
    if "error" in cross:
        lines += ["", f"Crossover: not yet ({cross['error']})."]
    else:
        source = " + ".join(f"{level['n_results']} {level['preset']}" for level in cross["levels"])
        lines += ["", f"Δ → L crossover from {source} results (co-kriging of the valley separation): "
                      f"x = {_f(cross['x'], 2)} (16-84 %: {_f(cross['x_low'], 2)}-{_f(cross['x_high'], 2)}; "
                      f"{100 * cross['no_crossing']:.0f} % of the draws never cross{bracket_text(cross)}); "
                      f"measured x = {CROSSOVER_X:.2f}."]
    return "\n".join(lines) + "\n"


def publish(key: str, result: dict, results: Path | None, render, page: Path) -> Path:
    """Save ``result`` as benchmarks/results/<key>.json (or into ``results``), render the page fragment from what
    was saved (NaN as None, the machine's date added) into ``page``, and print it; returns the saved JSON."""
    saved = save(key, result, results)
    text = render(json.loads(saved.read_text()))
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    print(text)
    return saved


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", type=Path)
    p.add_argument("--name", help="default: the store's stem")
    p.add_argument("--samples", type=int, default=4000, help="joint posterior draws for the bowing fit")
    p.add_argument("--out", type=Path, help="write the JSON, figure and fragment into this folder instead of "
                                            "benchmarks/results, docs/figures and docs/results")
    a = p.parse_args(argv)
    name = a.name or a.store.stem
    results, figures, fragments = (a.out, a.out, a.out) if a.out else (None, FIGURES, FRAGMENTS)
    figures.mkdir(parents=True, exist_ok=True)
    start = time.time()
    result = summarise(a.store, name, a.samples, figures)
    saved = publish(f"production-{name}", result, results, fragment, fragments / f"{name}.md")
    print(f"written {saved}, {fragments / f'{name}.md'}, {figures / result['figure']} in {time.time() - start:.0f} s")
    return result


if __name__ == "__main__":
    main()
