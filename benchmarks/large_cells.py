"""The 32-atom benchmark (issue 15): labels each strategy needs to a held-out error, and transfer from 16 atoms.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.large_cells [--repeats 5] [--budget 150] [--jobs 2] [--cutoffs 9 6 5]
        [--set model.ard=true --set model.prior=none --name large_cells_repeats10]  (the model before issue 16's options)

Replays campaigns/sige32-fast.toml (icet features with cutoffs 9/6/5 A, GP with a length scale per cluster class
by maximum likelihood; --set model.prior=weak gives the package default) against
benchmarks/data/sige32-fast.extxyz: its structures, one per symmetry class (duplicates' gaps averaged), are the
pool. In each repeat a fifth of them is held out (never offered; the same for every strategy); after every
label the script records the error on them, the error of the composition-averaged gap curve (multiplicity-
weighted average over the pool's structures at each composition, against the same average of the labels) and
the bowing parameter b fitted to the model's curve.

--cutoffs replaces the campaign file's icet cutoffs. Parts, each saved to benchmarks/results/large_cells.json (with
--cutoffs: large_cells_c<cutoffs>.json) as it finishes (a rerun skips parts already there with the same [model]):
  strategies : ivr, ivr_curve, max_std and random, the campaign's model trained on 32-atom labels only;
  transfer   : max_std and random with [model] transfer_from a 16-atom store (the PBE reference store, and
               the 16-atom gpaw-fast store runs/reference-fast.h5 if present), featurised in the same icet
               cluster space: a co-kriging model whose frozen cheap level is the 16-atom GP.
Prints median labels to held-out MAE 0.02, 0.015 and 0.01 eV per strategy and the ratio to random (random never
reaching a target within the budget makes the ratio a bound), and the curve and b errors at a few label counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from activemat.analysis.replay import labels_to_reach, main_progress, median_labels, replay
from activemat.campaign.config import load_campaign
from benchmarks.common import load, save

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = ROOT / "campaigns" / "sige32-fast.toml"
ORACLE = ROOT / "benchmarks" / "data" / "sige32-fast.extxyz"
PRETRAIN = {"16-atom PBE (402 labels)": ROOT / "benchmarks" / "data" / "reference-pbe.h5",
            "16-atom gpaw-fast": ROOT / "runs" / "reference-fast.h5"}
TARGETS = (0.02, 0.015, 0.01)
CHECKPOINTS = (10, 20, 40, 80, 120)


def summarise(result: dict) -> dict:
    """Per strategy: median labels to each held-out MAE target, curve MAE and |b error| at checkpoints."""
    out = {}
    b_true = result["b"]
    for name, s in result["strategies"].items():
        runs = s["runs"]
        row = {"repeats": s["repeats"], "seconds": s["seconds"]}
        for t in TARGETS:
            hits = [labels_to_reach(np.array(c, float), t) for c in runs["test_mae"]]
            row[f"labels_to_{t:g}"] = hits
            row[f"median_labels_to_{t:g}"] = median_labels(hits)
        for n in CHECKPOINTS:
            if n < len(runs["test_mae"][0]):
                row[f"at_{n}"] = {
                    "test_mae": float(np.median([c[n] for c in runs["test_mae"]])),
                    "curve_mae": float(np.median([c[n] for c in runs["curve_mae"]])),
                    "b_error": float(np.median([abs(c[n] - b_true) for c in runs["b"]]))}
        out[name] = row
    rnd = out.get("random", {})
    for name, row in out.items():
        for t in TARGETS:
            a, r = row[f"median_labels_to_{t:g}"], rnd.get(f"median_labels_to_{t:g}")
            row[f"vs_random_{t:g}"] = None if a is None else a / (r or result["budget"])
            row[f"vs_random_{t:g}_is_bound"] = a is not None and r is None
    return out


def show(title: str, result: dict, summary: dict) -> None:
    print(f"\n{title}: {result['labelled_pool']} structures ({result['held_out']} held out per repeat), budget "
          f"{result['budget']}, {result['repeats']} repeats; labels' curve b = {result['b']:.3f} eV", flush=True)
    head = "".join(f"  to {t:g} eV (vs random)" for t in TARGETS)
    print(f"{'strategy':<12}{head}  " + "  ".join(f"@{n}: test/curve MAE, |db|" for n in CHECKPOINTS[:3]))
    for name, row in summary.items():
        cells = []
        for t in TARGETS:
            m, ratio = row[f"median_labels_to_{t:g}"], row[f"vs_random_{t:g}"]
            bound = "<=" if row[f"vs_random_{t:g}_is_bound"] else ""
            cells.append(f"{'-' if m is None else f'{m:g}':>8} ({'-' if ratio is None else f'{bound}{ratio:.2f}'})")
        ats = []
        for n in CHECKPOINTS[:3]:
            a = row.get(f"at_{n}")
            ats.append("" if a is None else f"{a['test_mae']:.4f}/{a['curve_mae']:.4f}, {a['b_error']:.3f}")
        print(f"{name:<12}" + "".join(f"{c:>22}" for c in cells) + "  " + "  ".join(f"{a:>24}" for a in ats),
              flush=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=int, default=120)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--held-out", type=float, default=0.2)
    p.add_argument("--parts", nargs="+", default=["strategies", "transfer"])
    p.add_argument("--cutoffs", type=float, nargs="+", help="icet cutoffs (A) instead of the campaign file's")
    p.add_argument("--figure", help="write the held-out learning curves of every part to this PNG")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a campaign key, e.g. --set model.prior=weak (repeatable)")
    p.add_argument("--name", default="large_cells", help="results/<name>.json")
    args = p.parse_args(argv)
    from benchmarks.sample_efficiency import parse_set

    config, _ = load_campaign(CAMPAIGN, parse_set(args.set))
    name = args.name
    if args.cutoffs:
        config = config.model_copy(update={"space": config.space.model_copy(update={"cutoffs": tuple(args.cutoffs)})})
        name += "_c" + "-".join(f"{c:g}" for c in args.cutoffs)
    saved = load(name) or {}
    parts = saved.get("parts", {})
    plan = []
    if "strategies" in args.parts:
        plan.append(("32-atom labels only", config, ("ivr", "ivr_curve", "max_std", "random")))
    if "transfer" in args.parts:
        for label, store in PRETRAIN.items():
            if store.exists():
                model = config.model.model_copy(update={"transfer_from": str(store)})
                plan.append((f"pretrained on {label}", config.model_copy(update={"model": model}),
                             ("max_std", "random")))
    for title, cfg, strategies in plan:
        model = cfg.model.model_dump(mode="json")
        saved_part = parts.get(title, {})
        if (saved_part.get("model") == model and saved_part["repeats"] >= args.repeats
                and saved_part["budget"] >= args.budget):
            result = parts[title]["result"]
            summary = parts[title]["summary"] = summarise(result)  # cheap: from the saved curves
        else:
            result = replay(cfg, ORACLE, strategies, repeats=args.repeats, budget=args.budget,
                            held_out=args.held_out, jobs=args.jobs, progress=main_progress)
            for s in result["strategies"].values():
                s.pop("picks", None)
            summary = summarise(result)
            parts[title] = {"repeats": args.repeats, "budget": args.budget, "model": model, "result": result,
                            "summary": summary}
        save(name, {"campaign": str(CAMPAIGN.relative_to(ROOT)), "oracle": str(ORACLE.relative_to(ROOT)),
                    "overrides": args.set, "cutoffs": list(config.space.cutoffs), "parts": parts})
        show(title, result, summary)
    if args.figure:
        figure(parts, args.figure, config.space.cutoffs)
    return parts


def figure(parts: dict, path: str, cutoffs) -> None:
    """Median held-out MAE (and its spread over repeats) against labels, one panel per part, plus the curve MAE."""
    import warnings

    import matplotlib

    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first fit
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(parts) + 2) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(10, 3.6 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(parts) + 1:]:
        ax.set_visible(False)
    colours = {"ivr": "#1f77b4", "ivr_curve": "#9467bd", "max_std": "#2ca02c", "random": "#7f7f7f"}
    for ax, (title, part) in zip(axes, parts.items()):
        for name, s in part["result"]["strategies"].items():
            runs = np.array(s["runs"]["test_mae"], float)
            n = np.arange(runs.shape[1])
            med = np.nanmedian(runs, axis=0)
            ax.plot(n[2:], med[2:], color=colours.get(name), label=name)
            ax.fill_between(n[2:], np.nanmin(runs, 0)[2:], np.nanmax(runs, 0)[2:], color=colours.get(name),
                            alpha=0.12, lw=0)
        for t in TARGETS:
            ax.axhline(t, color="k", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(0.006, 0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("labels (32-atom DFT results)")
        ax.set_ylabel("held-out MAE (eV)")
        ax.legend(fontsize=7)
    ax = axes[-1]
    for title, part in parts.items():
        runs = np.array(part["result"]["strategies"]["max_std"]["runs"]["curve_mae"], float)
        ax.plot(np.arange(runs.shape[1])[2:], np.nanmedian(runs, 0)[2:], label=f"max_std, {title}")
    runs = np.array(next(iter(parts.values()))["result"]["strategies"]["random"]["runs"]["curve_mae"], float)
    ax.plot(np.arange(runs.shape[1])[2:], np.nanmedian(runs, 0)[2:], color="#7f7f7f", label="random, 32-atom only")
    ax.set_yscale("log")
    ax.set_title("error of the composition-averaged curve", fontsize=9)
    ax.set_xlabel("labels")
    ax.set_ylabel("curve MAE (eV)")
    ax.legend(fontsize=6)
    fig.suptitle(f"32-atom SiGe, gpaw-fast, icet cutoffs {'/'.join(f'{c:g}' for c in cutoffs)} A: median (lines) "
                 "and range (bands) of 5 repeats", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
