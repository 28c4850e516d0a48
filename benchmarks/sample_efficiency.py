"""Sample efficiency: labels each strategy needs to reach a pool-wide MAE / max error (replay, no DFT).

Replays a campaign's selection against labelled structures with
`activemat.analysis.replay` (the project's own model and selection functions) and
compares max_std, ivr and random sampling (all with the campaign's model) with
the seed tutorial's fixed design plus linear regression.

    # complete real data available now: the 17 compositions (gpaw-fast)
    .venv/bin/python -m benchmarks.sample_efficiency --name seed-compositions \
        --campaign campaigns/seed-tutorial-active.toml --store runs/seed-tutorial-all.h5 --repeats 10
    # the 402-configuration reference dataset (gpaw-pbe-pw)
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.sample_efficiency --name reference-pbe \
        --campaign campaigns/sige16-pbe.toml --oracle benchmarks/data/sige16-pbe.extxyz --repeats 10 --budget 200 \
        --jobs 2 --stop-at-targets
"""

from __future__ import annotations

import argparse
import tempfile
import tomllib
from pathlib import Path

import numpy as np

from activemat.analysis.replay import main_progress, replay
from activemat.campaign.config import load_campaign
from activemat.store.export import export_store
from benchmarks.common import Route, command, or_never, save


def summarise(result: dict) -> dict:
    """Headline figures: median labels to each target and the ratio of active to random."""
    s = result["strategies"]
    out = {}
    for name, r in s.items():
        out[name] = {"median_labels_to_mae": r["median_labels_to_mae"], "median_labels_to_max": r["median_labels_to_max"],
                     "reached_mae": sum(v is not None for v in r["labels_to_mae"]),
                     "reached_max": sum(v is not None for v in r["labels_to_max"]), "repeats": r["repeats"],
                     "final_mae": float(np.median(r["final_mae"])), "final_max": float(np.median(r["final_max"])),
                     "seconds": r["seconds"]}
    for target in ("mae", "max"):
        rnd = out.get("random", {}).get(f"median_labels_to_{target}")
        for name, v in out.items():
            a = v[f"median_labels_to_{target}"]
            # random never getting there within the budget bounds the ratio from above
            v[f"{target}_labels_vs_random"] = None if a is None else a / (rnd or result["budget"])
            v[f"{target}_ratio_is_bound"] = a is not None and rnd is None
    return out


def parse_set(items: list[str]) -> dict:
    """``--set section.key=value`` (value in TOML syntax, bare words as strings) as load_campaign overrides.

    >>> parse_set(["model.ard=classes", "model.noise=0.001", "model.prior_from='a.extxyz'"])["model.ard"]
    ('classes', '--set model.ard=classes')
    """
    out = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key.strip()] = (value, f"--set {item}")
    return out


def _ratio(summary: dict, target: str) -> str:
    """Median labels to a target over random's; '<' when random never got there (the budget bounds it)."""
    v = summary.get(f"{target}_labels_vs_random")
    if v is None:
        return "-"
    return ("<" if summary.get(f"{target}_ratio_is_bound") else "") + f"{v:.2f}"


def _first(curve: list, target: float) -> int | None:
    """Labels at which a learning curve first reaches ``target`` (None: never)."""
    for n, v in enumerate(curve):
        if v is not None and v <= target:
            return n
    return None


def summary(result: dict) -> list[str]:
    """The report's section on one result: the data, labels to each target per strategy, the learning curves."""
    d, t = result, result["targets"]
    out = [f"Data: `{d['oracle']}` ({d['labelled_pool']} of {d['pool_size']} candidates labelled"
           + ("" if d["complete"] else ", **incomplete: errors over the labelled candidates only**")
           + f"), campaign `{d['campaign']}`, model {d['model']['kind']} ({d.get('features', 'shells')} features"
           + (", ARD" if d["model"].get("ard") else "") + f", restarts {d['model']['restarts']}), "
           f"{d['n_seed']} space-filling seeds, {d['repeats']} repeats, budget {d['budget']} labels. "
           f"Gaps span {d['gap_range'][0]:.3f}-{d['gap_range'][1]:.3f} eV. Command: `{d['command']}`.", "",
           f"| strategy | model | labels to MAE <= {t['mae']:g} eV (median; reached) | labels to max <= {t['max']:g} eV "
           "(median; reached) | labels vs random, MAE / max | labels to MAE <= 0.02 eV (mean curve) "
           "| MAE / max at the end (eV) |",
           "|---|---|---|---|---|---|---|"]
    for s, r in d["strategies"].items():
        sm = d["summary"][s]
        out.append(f"| {s} | {r['model']} | {or_never(sm['median_labels_to_mae'])}; {sm['reached_mae']}/{sm['repeats']} "
                   f"| {or_never(sm['median_labels_to_max'])}; {sm['reached_max']}/{sm['repeats']} "
                   f"| {_ratio(sm, 'mae')} / {_ratio(sm, 'max')} "
                   f"| {or_never(_first(r['mae']['mean'], 0.02))} | {sm['final_mae']:.4f} / {sm['final_max']:.4f} |")
    out += ["", "Learning curve, pool MAE in eV (mean ± std over repeats):", ""]
    names = list(d["strategies"])
    out += ["| labels | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    length = max(len(r["mae"]["mean"]) for r in d["strategies"].values())
    for n in [k for k in (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 402) if k < length]:
        cells = []
        for s in names:
            m = d["strategies"][s]["mae"]
            ok = n < len(m["mean"]) and m["mean"][n] is not None
            cells.append(f"{m['mean'][n]:.4f} ± {m['std'][n]:.4f}" if ok else "")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return out + [""]


def routes(result: dict) -> list[Route]:
    """Labels to each target per strategy (the seed tutorial's ``fixed`` design left out), for the report's table
    of routes."""
    return [Route(s, r["labels_to_mae"], r["labels_to_max"], r["median_labels_to_mae"], r["median_labels_to_max"],
                  r["repeats"], result["command"]) for s, r in result["strategies"].items() if s != "fixed"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="results/sample_efficiency_<name>.json")
    p.add_argument("--campaign", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="labelled store; its ok calculations are exported to a temporary extxyz")
    src.add_argument("--oracle", help="labelled extxyz")
    p.add_argument("--strategy", nargs="+", default=["max_std", "ivr", "random", "fixed"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=int)
    p.add_argument("--random-start", action="store_true")
    p.add_argument("--stop-at-targets", action="store_true", help="end each run once both targets are reached")
    p.add_argument("--jobs", type=int, default=1, help="processes to spread the runs over")
    p.add_argument("--target-mae", type=float, default=0.01)
    p.add_argument("--target-max", type=float, default=0.05)
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override campaign keys, e.g. --set model.ard=classes model.mean=bowing")
    p.add_argument("--batch", type=int, default=1, help="picks per refit (kriging believer), as q workers")
    args = p.parse_args()
    config, _ = load_campaign(args.campaign, parse_set(args.set))
    with tempfile.TemporaryDirectory() as tmp:
        oracle = args.oracle
        if args.store:
            oracle = Path(tmp) / "labels.extxyz"
            export_store(args.store, oracle, status="ok")
        result = replay(config, oracle, args.strategy, repeats=args.repeats, budget=args.budget,
                        target_mae=args.target_mae, target_max=args.target_max, random_start=args.random_start,
                        stop_at_targets=args.stop_at_targets, jobs=args.jobs, batch=args.batch,
                        progress=main_progress)
    result["oracle"] = args.store or args.oracle
    result["summary"] = summarise(result)
    result["command"] = command("sample_efficiency")
    result["overrides"] = args.set
    path = save(f"sample_efficiency_{args.name}", result)
    print(f"{result['labelled_pool']}/{result['pool_size']} labelled candidates, {result['repeats']} repeats, "
          f"targets MAE {args.target_mae} eV, max {args.target_max} eV  -> {path}")
    for name, v in result["summary"].items():
        print(f"  {name:8s} labels to MAE: {v['median_labels_to_mae']} ({v['reached_mae']}/{v['repeats']} reached), "
              f"to max: {v['median_labels_to_max']} ({v['reached_max']}/{v['repeats']}), "
              f"final MAE {v['final_mae']:.4f} eV, final max {v['final_max']:.4f} eV, labels vs random: "
              + ", ".join(f"{t} {'<' if v[f'{t}_ratio_is_bound'] else ''}{v[f'{t}_labels_vs_random']:.2f}"
                          if v[f"{t}_labels_vs_random"] is not None else f"{t} -" for t in ("mae", "max")))


if __name__ == "__main__":
    main()
