"""Multi-fidelity: error of a model of the accurate (TB09) gap at equal compute cost, four ways (replay, no DFT).

Replays labelled datasets at two fidelities, cheap (PBE, ``--cheap``) and
accurate (TB09, ``--accurate``), each an extxyz written by `activemat export`.
The evaluation pool is the candidates that have BOTH labels; errors (MAE and
max abs error of the accurate-level prediction over that pool) are recorded
after every calculation against the cumulative compute cost spent.

Methods (all use a GP, restarts=1, on features standardised over the whole
candidate pool of the campaign's [space]):

* ``single``   GP on accurate labels only; picks by integrated variance
               reduction (`activemat.learn.strategies.ivr_scores`), refitted each step.
* ``random``   GP on accurate labels only; random picks.
* ``multi``    `activemat.learn.cokriging.CoKriging` over [cheap, accurate];
               `select_fidelity` picks candidate and level each step. The seeds
               are computed at both levels (nested), cheap first. As in a
               campaign, cheap picks may be any candidate of the cheap dataset,
               accurate picks any of the evaluation subset.
* ``transfer`` level 0 pretrained on ALL cheap labels of the cheap dataset
               (a previous campaign: its cost is sunk, reported separately, not
               on the cost axis); the accurate level is fine-tuned on the
               accurate labels picked so far; `select_fidelity` picks among
               accurate candidates only.

Every method starts from the same 3 seed candidates in a repeat. Repeat 0
uses the campaign's rule, space-filling seeds
(`activemat.learn.strategies.space_filling`); repeat r > 0 draws 3 distinct seeds
at random with ``np.random.default_rng(r)`` (otherwise the deterministic
methods would repeat one run). Random picks use ``default_rng([r, 1])``,
the GP optimiser restarts ``random_state=r``.

Costs are measured, not assumed: the median ``wall_time`` (s, one core per
calculation) of each dataset's frames. The cost axis is in accurate
calculations ("accurate-equivalents", 1 = the median accurate wall time). A
model is evaluated once each level it fits has at least 2 results (NaN
before). Curves are put on a common cost grid (step 0.5) by taking, at each
grid cost, the last state whose cumulative cost is at or below it; repeats
are summarised by median, mean and 10-90 % percentiles. Runs stop once the
cost reaches ``--budget`` accurate-equivalents (default: the pool size) or
nothing is left to pick.

    .venv/bin/activemat export runs/reference-pbe.h5 --status ok -o /tmp/pbe.extxyz
    .venv/bin/activemat export runs/reference-tb09.h5 --status ok -o /tmp/tb09.extxyz
    .venv/bin/python benchmarks/fidelity.py --cheap /tmp/pbe.extxyz --accurate /tmp/tb09.extxyz \\
        --campaign campaigns/reference-tb09.toml --repeats 10

Writes benchmarks/results/fidelity.json, benchmarks/results/fidelity.md and
docs/figures/fidelity.png (see --name, --results-dir, --out-figure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from activemat.analysis.replay import subpool  # noqa: E402
from activemat.campaign.config import (
    ModelSection,  # noqa: E402
    load_campaign,  # noqa: E402
)
from activemat.campaign.setup import (
    build_campaign_pool,  # noqa: E402
    model_factory,  # noqa: E402
)
from activemat.learn.cokriging import CoKriging, select_fidelity  # noqa: E402
from activemat.learn.refit import RefitSchedule  # noqa: E402
from activemat.learn.strategies import best_available, ivr_scores, space_filling  # noqa: E402
from activemat.space.matching import load_labels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("single", "random", "multi", "transfer")
LABELS = {"single": "single fidelity, IVR", "random": "single fidelity, random",
          "multi": "multi-fidelity co-kriging", "transfer": "transfer (pretrained on cheap)"}
COLORS = {"single": "tab:blue", "random": "tab:gray", "multi": "tab:red", "transfer": "tab:green"}
N_SEED = 3
MIN_POINTS = 2  # results per fitted level before a model is evaluated
RESTARTS = 1
GRID_STEP = 0.5  # accurate-equivalents
TABLE_COSTS = (3, 5, 10, 15, 20)
TARGETS = (0.02, 0.01)  # eV, MAE
TARGET_MAX = 0.05  # eV, max error
EPS = 1e-9


# -- inputs -----------------------------------------------------------------------------

def read_dataset(path: str | Path, pool) -> dict:
    """Gaps per candidate (matched by symmetry), wall times and presets of an extxyz from `activemat export`."""
    import ase.io

    labels = load_labels(path, pool)
    times, presets = [], set()
    for atoms in ase.io.read(path, ":", format="extxyz"):
        gap = atoms.info.get("gap")
        if gap is None or not np.isfinite(float(gap)) or atoms.info.get("status", "ok") != "ok":
            continue
        presets.add(str(atoms.info.get("preset", "?")))
        if "wall_time" in atoms.info:
            times.append(float(atoms.info["wall_time"]))
    if not times:
        raise SystemExit(f"{path}: no frame has info['wall_time']; export the store with `activemat export`")
    return {"path": str(path), "gaps": labels.gaps, "wall_times": np.array(times), "presets": sorted(presets),
            "frames": labels.frames, "matched": len(labels.gaps), "unmatched": len(labels.unmatched),
            "duplicates": labels.duplicates}


# -- one run ----------------------------------------------------------------------------

class _Run:
    """Cumulative cost (accurate-equivalents) and errors after each calculation; state 0 = nothing spent."""

    def __init__(self, X: np.ndarray, y: np.ndarray, start: float = 0.0):
        self.X, self.y = X, y
        self.cost, self.mae, self.max = [float(start)], [np.nan], [np.nan]
        self.picks: list[tuple[int, int]] = []  # (pool index, level)

    def spent(self) -> float:
        return self.cost[-1]

    def record(self, pick: int, level: int, cost: float, model) -> None:
        self.picks.append((int(pick), int(level)))
        self.cost.append(self.cost[-1] + cost)
        if model is None:
            self.mae.append(np.nan)
            self.max.append(np.nan)
        else:
            err = np.abs(model.predict(self.X) - self.y)
            self.mae.append(float(err.mean()))
            self.max.append(float(err.max()))

    def result(self) -> dict:
        return {"cost": np.array(self.cost), "mae": np.array(self.mae), "max": np.array(self.max),
                "picks": self.picks}


def _done(run: "_Run", stop: bool) -> bool:
    """With ``stop`` (--stop-at-targets): both targets (MAE 0.01 eV, max TARGET_MAX) reached at least once."""
    if not stop:
        return False
    mae, mx = np.array(run.mae, float), np.array(run.max, float)
    return bool(np.any(mae <= min(TARGETS)) and np.any(mx <= TARGET_MAX))  # NaN (no model yet) compares False


def run_single(X, y_acc, seeds, budget, make_gp, rng=None, stop=False) -> dict:
    """GP on accurate labels: seeds, then IVR picks (``rng`` None) or random picks."""
    run = _Run(X, y_acc)
    free, picks, model, schedule = np.ones(len(X), bool), [], None, RefitSchedule()
    while run.spent() < budget - EPS and free.any() and not _done(run, stop):
        if len(picks) < len(seeds):
            pick = seeds[len(picks)]
        elif rng is not None:
            pick = int(rng.choice(np.flatnonzero(free)))
        else:
            pick = best_available(ivr_scores(model, X, free), free)[0]
        picks.append(pick)
        free[pick] = False
        model = make_gp(schedule.start(model, len(picks))).fit(
            X[picks], y_acc[picks]) if len(picks) >= MIN_POINTS else None
        run.record(pick, 1, 1.0, model)
    return run.result()


def run_multi(X_all, y_cheap_all, in_sub, y_acc, seeds, budget, make_gp, costs, stop=False,
              cheap_share: float = 1.0) -> dict:
    """Co-kriging over [cheap, accurate]: seeds at both levels (cheap first), then select_fidelity.

    As in a campaign, the cheap level may pick any candidate the cheap dataset labels (``X_all``); the
    accurate level only the evaluation subset (``in_sub``: indices of the subset in ``X_all``, whose
    accurate gaps are ``y_acc``). Errors are over the subset.
    """
    run = _Run(X_all[in_sub], y_acc)
    y_acc_all = np.full(len(X_all), np.nan)
    y_acc_all[in_sub] = y_acc
    ys, rel = (y_cheap_all, y_acc_all), (costs[0] / costs[1], 1.0)
    free = [np.ones(len(X_all), bool), np.zeros(len(X_all), bool)]
    free[1][in_sub] = True
    picked: list[list[int]] = [[], []]
    queue = [(in_sub[s], 0) for s in seeds] + [(in_sub[s], 1) for s in seeds]
    model = None
    while run.spent() < budget - EPS and not _done(run, stop):
        if queue:
            pick, level = queue.pop(0)
        else:
            chosen = select_fidelity(model, X_all, free, costs=list(costs), max_cheap_share=cheap_share)
            if chosen is None:
                break
            pick, level = chosen.candidate, chosen.level
        picked[level].append(pick)
        free[level][pick] = False
        fit = all(len(p) >= MIN_POINTS for p in picked)
        model = (CoKriging(make_gp, warm=model).fit([(X_all[p], y[p]) for p, y in zip(picked, ys)])
                 if fit else None)
        run.record(pick, level, rel[level], model)
    return run.result()


def run_transfer(X, y_acc, seeds, budget, make_gp, costs, pretrained: CoKriging, stop=False,
                 pretraining_cost: float = 0.0) -> dict:
    """Pretrained cheap level (frozen), accurate level fine-tuned; picks among accurate candidates only.

    ``pretraining_cost`` (accurate-equivalents): where the cost axis starts (the cheap labels, if counted).
    """
    run = _Run(X, y_acc, start=pretraining_cost)
    free = [np.zeros(len(X), bool), np.ones(len(X), bool)]
    picks, model = [], None
    while run.spent() < budget - EPS and free[1].any() and not _done(run, stop):
        if len(picks) < len(seeds):
            pick = seeds[len(picks)]
        else:
            chosen = select_fidelity(model, X, free, costs=list(costs))
            if chosen is None:
                break
            pick = chosen.candidate
        picks.append(pick)
        free[1][pick] = False
        model = (CoKriging(make_gp, frozen=pretrained, warm=model).fit([(X[picks], y_acc[picks])])
                 if len(picks) >= MIN_POINTS else None)
        run.record(pick, 1, 1.0, model)
    return run.result()


# -- curves -----------------------------------------------------------------------------

def on_grid(cost: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """At each grid cost, the value of the last state whose cumulative cost is at or below it.

    >>> on_grid(np.array([0, 1, 1.4, 2.4]), np.array([np.nan, 3., 2., 1.]), np.array([0, .5, 1, 1.5, 2, 2.5]))
    array([nan, nan,  3.,  2.,  2.,  1.])
    """
    k = np.searchsorted(cost, grid + EPS, side="right") - 1
    return values[k]


def cost_to_reach(cost: np.ndarray, mae: np.ndarray, target: float) -> float | None:
    """Cumulative cost of the first state with MAE at or below ``target`` (None if never)."""
    hit = np.flatnonzero(np.nan_to_num(mae, nan=np.inf) <= target)
    return float(cost[hit[0]]) if len(hit) else None


def _median_or_none(values: list[float | None]) -> float | None:
    """Median over repeats counting never-reached as +inf; None if the median did not reach."""
    m = float(np.median([np.inf if v is None else v for v in values]))
    return m if np.isfinite(m) else None


def _summary(rows: np.ndarray) -> dict[str, list]:
    """Per grid point over repeats (rows); NaN where no repeat has a model yet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first fit
        return {"median": np.nanmedian(rows, 0).tolist(), "mean": np.nanmean(rows, 0).tolist(),
                "p10": np.nanpercentile(rows, 10, 0).tolist(), "p90": np.nanpercentile(rows, 90, 0).tolist(),
                "n": np.sum(np.isfinite(rows), 0).tolist()}


# -- the benchmark ------------------------------------------------------------------------

def run_benchmark(pool, cheap: dict[int, float], accurate: dict[int, float], costs: tuple[float, float], *,
                  repeats: int = 10, budget: float | None = None, progress=None, section: ModelSection | None = None,
                  methods: tuple[str, ...] = METHODS, n_seed: int = N_SEED, stop_at_targets: bool = False,
                  results_path: Path | None = None, pretrain_n: int | None = None,
                  cheap_share: float = 1.0) -> dict:
    """Replay the four methods; a JSON-ready result (numpy arrays as lists).

    Parameters
    ----------
    pool : the campaign's whole candidate pool (its features standardise the models' inputs).
    cheap, accurate : gap (eV) per pool candidate at each fidelity.
    costs : (cheap, accurate) CPU-seconds per calculation.
    budget : accurate-equivalents per run (default: the number of candidates with both labels).
    section : the [model] every level's GP uses (default: an isotropic GP with RESTARTS restarts).
    methods : which of METHODS to run; n_seed: seed candidates per run (both levels for ``multi``).
    stop_at_targets : end a run once MAE <= 0.01 eV and max error <= TARGET_MAX have both been reached.
    results_path : if given, the runs so far are written there (JSON) after every repeat.
    pretrain_n : ``transfer`` pretrains on ``pretrain_n`` cheap labels drawn at random per repeat
        (``default_rng([r, 2])``) instead of all of them, and its cost axis starts at their cost (their number
        times the cost ratio) instead of treating the cheap campaign as sunk.
    """
    idx = np.array(sorted(set(cheap) & set(accurate)), int)
    if len(idx) <= n_seed:
        raise SystemExit(f"only {len(idx)} candidates have both a cheap and an accurate label; need more than {n_seed}")
    if repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {repeats}")
    sub = subpool(pool, idx)
    X = sub.features
    y_cheap = np.array([cheap[i] for i in idx])
    y_acc = np.array([accurate[i] for i in idx])
    cheap_idx = np.array(sorted(cheap), int)
    X_cheap, y_cheap_all = pool.features[cheap_idx], np.array([cheap[i] for i in cheap_idx])
    in_sub = np.searchsorted(cheap_idx, idx)  # the subset's rows in the cheap dataset
    section = section or ModelSection(restarts=RESTARTS)

    def gp_factory(seed: int):  # the campaign's model, features scaled by the whole pool
        return model_factory(section, seed, pool)

    budget = float(budget if budget is not None else len(idx))
    pretraining_cost = pretrain_n * costs[0] / costs[1] if pretrain_n else 0.0
    grid = GRID_STEP * np.arange(int(np.floor(budget / GRID_STEP + EPS)) + 1)
    started = time.perf_counter()
    pretrained = CoKriging(gp_factory(0)).fit([(X_cheap, y_cheap_all)])
    pretrain_seconds = time.perf_counter() - started

    runs: dict[str, list[dict]] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    seed_sets = []
    for r in range(repeats):
        if r == 0:
            seeds = space_filling(sub, n_seed, np.zeros(len(sub), bool))
        else:
            seeds = [int(i) for i in np.random.default_rng(r).choice(len(sub), n_seed, replace=False)]
        seed_sets.append([int(idx[s]) for s in seeds])
        make_gp = gp_factory(r)
        stop = stop_at_targets
        for m in methods:
            t0 = time.perf_counter()
            if m == "single":
                out = run_single(X, y_acc, seeds, budget, make_gp, stop=stop)
            elif m == "random":
                out = run_single(X, y_acc, seeds, budget, make_gp, rng=np.random.default_rng([r, 1]), stop=stop)
            elif m == "multi":
                out = run_multi(X_cheap, y_cheap_all, in_sub, y_acc, seeds, budget, make_gp, costs, stop=stop,
                                cheap_share=cheap_share)
            else:
                frozen = pretrained
                if pretrain_n:
                    some = np.random.default_rng([r, 2]).choice(len(cheap_idx), pretrain_n, replace=False)
                    frozen = CoKriging(make_gp).fit([(X_cheap[some], y_cheap_all[some])])
                out = run_transfer(X, y_acc, seeds, budget, make_gp, costs, frozen, stop=stop,
                                   pretraining_cost=pretraining_cost)
            seconds[m] += time.perf_counter() - t0
            runs[m].append(out)
            if progress:
                levels = np.array([lv for _, lv in out["picks"]], int)
                progress(f"repeat {r}: {m:8s} {np.sum(levels == 0):3d} cheap + {np.sum(levels == 1):3d} accurate, "
                         f"cost {out['cost'][-1]:.1f}, final MAE {out['mae'][-1]:.4f} eV, cost to MAE 0.01 "
                         f"{cost_to_reach(out['cost'], out['mae'], 0.01)}, to max {TARGET_MAX} "
                         f"{cost_to_reach(out['cost'], out['max'], TARGET_MAX)}")
        if results_path is not None:  # a crash loses nothing finished
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(_common._clean({"partial": True, "repeats_done": r + 1, "runs": {
                m: [{"cost_to_mae": cost_to_reach(o["cost"], o["mae"], 0.01),
                     "cost_to_max": cost_to_reach(o["cost"], o["max"], TARGET_MAX),
                     "n_cheap": sum(lv == 0 for _, lv in o["picks"]),
                     "n_accurate": sum(lv == 1 for _, lv in o["picks"])} for o in runs[m]] for m in methods}})))

    chosen, methods = methods, {}
    for m in chosen:
        mae = np.array([on_grid(o["cost"], o["mae"], grid) for o in runs[m]])
        mx = np.array([on_grid(o["cost"], o["max"], grid) for o in runs[m]])
        reach = {f"{t:g}": [cost_to_reach(o["cost"], o["mae"], t) for o in runs[m]] for t in TARGETS}
        reach_max = [cost_to_reach(o["cost"], o["max"], TARGET_MAX) for o in runs[m]]
        methods[m] = {
            "cost_to_max": reach_max, "median_cost_to_max": _median_or_none(reach_max),
            "label": LABELS[m], "seconds": round(seconds[m], 2),
            "mae": _summary(mae), "max": _summary(mx),
            "cost_to_mae": reach, "median_cost_to_mae": {t: _median_or_none(v) for t, v in reach.items()},
            "final_mae": [float(o["mae"][-1]) for o in runs[m]], "final_cost": [float(o["cost"][-1]) for o in runs[m]],
            "n_cheap": [sum(lv == 0 for _, lv in o["picks"]) for o in runs[m]],
            "n_accurate": [sum(lv == 1 for _, lv in o["picks"]) for o in runs[m]],
            "picks": [[[int((cheap_idx if m == "multi" else idx)[p]), lv] for p, lv in o["picks"]]
                      for o in runs[m]]}
    table = {}
    for m in chosen:
        row = {}
        for c in TABLE_COSTS:
            if c <= grid[-1] + EPS:
                k = int(round(c / GRID_STEP))
                row[f"{c:g}"] = {"mae": methods[m]["mae"]["median"][k], "max": methods[m]["max"]["median"][k]}
        reach = methods[m]["cost_to_mae"]
        table[m] = {"at_cost": row, "cost_to_mae": methods[m]["median_cost_to_mae"],
                    "reached": {t: sum(v is not None for v in reach[t]) for t in reach},
                    "cost_to_max": methods[m]["median_cost_to_max"],
                    "reached_max": sum(v is not None for v in methods[m]["cost_to_max"])}
    return {
        "pool_size": len(pool), "n_both": len(idx), "n_cheap_labels": len(cheap), "n_accurate_labels": len(accurate),
        "costs_s": {"cheap": float(costs[0]), "accurate": float(costs[1])},
        "cost_ratio": float(costs[0] / costs[1]), "budget": budget, "repeats": repeats, "n_seed": n_seed,
        "gp_restarts": section.restarts, "model": section.model_dump(mode="json"), "stop_at_targets": stop_at_targets,
        "transfer_pretraining_cost": pretraining_cost, "transfer_pretrain_n": pretrain_n,
        "cheap_share": cheap_share, "min_points_per_level": MIN_POINTS, "grid_step": GRID_STEP,
        "grid": grid.tolist(), "targets_mae": list(TARGETS), "seeds": seed_sets,
        "pretrain": {"n": len(cheap_idx), "seconds": round(pretrain_seconds, 2), "model": pretrained.describe()},
        "gap_range": {"cheap": [float(y_cheap.min()), float(y_cheap.max())],
                      "accurate": [float(y_acc.min()), float(y_acc.max())]},
        "methods": methods, "table": table}


# -- outputs ------------------------------------------------------------------------------

def _fmt(v, spec=".4f") -> str:
    return "-" if v is None or not np.isfinite(v) else format(v, spec)


def table_lines(result: dict, markdown: bool = False) -> list[str]:
    """The headline table: median MAE / max error at fixed costs and the cost to reach the MAE targets."""
    costs = list(next(iter(result["table"].values()))["at_cost"])
    targets = [f"{t:g}" for t in result["targets_mae"]]
    head = (["method"] + [f"MAE / max at {c}" for c in costs]
            + [f"cost to MAE <= {t} eV" for t in targets] + [f"cost to max <= {TARGET_MAX:g} eV"])
    rows = []
    for m, t in result["table"].items():
        cells = [m]
        for c in costs:
            cells.append(f"{_fmt(t['at_cost'][c]['mae'])} / {_fmt(t['at_cost'][c]['max'], '.3f')}")
        for tg in targets:
            cells.append(f"{_fmt(t['cost_to_mae'][tg], '.1f')} ({t['reached'][tg]}/{result['repeats']})")
        if "cost_to_max" in t:
            cells.append(f"{_fmt(t['cost_to_max'], '.1f')} ({t['reached_max']}/{result['repeats']})")
        else:
            cells.append("-")
        rows.append(cells)
    if markdown:
        return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    return ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in [head] + rows]


def plot(result: dict, path: Path) -> None:
    """MAE and max error vs compute cost, median with the 10-90 % band over repeats, log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    grid = np.array(result["grid"])
    c_acc = result["costs_s"]["accurate"]
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharex=True)
    for ax, key, name in zip(axes, ("mae", "max"), ("MAE", "max abs error")):
        for m in result["methods"]:
            s = result["methods"][m][key]
            med, lo, hi = (np.array(s[k], float) for k in ("median", "p10", "p90"))
            label = LABELS[m]
            if m == "transfer":
                label += f" (+ sunk cheap campaign: {result['cheap_campaign_cpu_s'] / 3600:.1f} CPU-h)"
            ax.plot(grid, med, color=COLORS[m], lw=2, label=label, drawstyle="steps-post")
            ax.fill_between(grid, lo, hi, color=COLORS[m], alpha=0.15, step="post", lw=0)
        if key == "mae":
            for t in result["targets_mae"]:
                ax.axhline(t, color="k", ls=":", lw=1)
                ax.annotate(f"{t:g} eV", (1, t), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                            textcoords="offset points", ha="right", va="bottom", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(bottom=2e-3)  # below this only exhausted pools (every label known) remain
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlim(0, grid[-1])
        ax.set_xlabel(f"compute cost spent (accurate calculations; 1 = {c_acc:.0f} CPU-s)")
        ax.set_ylabel(f"{name} of the accurate gap over the pool (eV)")
        ax.set_title(f"{name} (log scale)", fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        top = ax.secondary_xaxis("top", functions=(lambda v: v * c_acc / 3600, lambda h: h * 3600 / c_acc))
        top.set_xlabel("CPU-hours", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
    r = result
    fig.suptitle(f"Accurate gap ({r['accurate']['presets_label']}) learned at equal compute cost: "
                 f"{r['n_both']} candidates with both labels, errors over all of them\n"
                 f"cheap = {r['cheap']['presets_label']} at {r['costs_s']['cheap']:.0f} CPU-s per calculation "
                 f"({r['cost_ratio']:.2f} of an accurate one); median and 10-90 % band over {r['repeats']} repeats",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(result: dict) -> str:
    r = result
    c, a = r["cheap"], r["accurate"]
    lines = [
        "## Multi-fidelity: the accurate gap at equal compute cost",
        "",
        f"Accurate labels: `{a['path']}` ({a['matched']} candidates, presets {', '.join(a['presets'])}); "
        f"cheap labels: `{c['path']}` ({c['matched']} candidates, presets {', '.join(c['presets'])}). "
        f"{r['n_both']} of the {r['pool_size']} candidates have both; errors are over those.",
        "",
        f"Measured cost per calculation (median wall time, one core): cheap {r['costs_s']['cheap']:.1f} CPU-s, "
        f"accurate {r['costs_s']['accurate']:.1f} CPU-s (ratio {r['cost_ratio']:.3f}). "
        f"The cheap campaign cost {r['cheap_campaign_cpu_s']:.0f} CPU-s ({r['cheap_campaign_cpu_s'] / 3600:.2f} CPU-h, "
        f"{c['matched']} calculations); `transfer` pretrains on all of it and this cost is sunk, not on the cost axis.",
        "",
        f"Costs in accurate calculations; median over {r['repeats']} repeats (repeat 0: space-filling seeds, "
        f"the others {r['n_seed']} random seeds); GP restarts={r['gp_restarts']}; budget {r['budget']:g}. "
        "\"MAE / max at c\": median errors (eV) once c accurate-equivalents are spent; "
        "\"cost to MAE\": median cost over repeats (reached/repeats), `-` if the median run never got there.",
        "",
        *table_lines(r, markdown=True),
        "",
        f"![MAE and max error vs cost]({r['figure_from_results']})",
        "",
        "```",
        r["command"],
        "```",
        ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cheap", required=True, help="cheap (PBE) labels, extxyz from `activemat export`")
    p.add_argument("--accurate", required=True, help="accurate (TB09) labels, extxyz from `activemat export`")
    p.add_argument("--campaign", default="campaigns/reference-tb09.toml", help="campaign file: its [space]")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, help="accurate-equivalents per run (default: candidates with both labels)")
    p.add_argument("--name", default="fidelity", help="results/<name>.json and results/<name>.md")
    p.add_argument("--results-dir", type=Path, default=_common.RESULTS)
    p.add_argument("--out-figure", type=Path, default=ROOT / "docs" / "figures" / "fidelity.png")
    p.add_argument("--campaign-model", action="store_true",
                   help="every level's GP is the campaign's [model] (with --set) instead of an isotropic GP")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="override campaign keys")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--n-seed", type=int, default=N_SEED, help="seed candidates per run")
    p.add_argument("--pretrain-n", type=int, metavar="N",
                   help="transfer pretrains on N random cheap labels per repeat, counted at their cost (default: "
                        "all of them, cost sunk)")
    p.add_argument("--stop-at-targets", action="store_true",
                   help=f"end a run once MAE <= 0.01 eV and max error <= {TARGET_MAX:g} eV have been reached")
    args = p.parse_args(argv)
    from sample_efficiency import parse_set

    config, _ = load_campaign(args.campaign, parse_set(args.set))
    pool = build_campaign_pool(config)
    cheap, accurate = read_dataset(args.cheap, pool), read_dataset(args.accurate, pool)
    costs = (float(np.median(cheap["wall_times"])), float(np.median(accurate["wall_times"])))
    print(f"cheap    {args.cheap}: {cheap['matched']} candidates ({', '.join(cheap['presets'])}), "
          f"median wall time {costs[0]:.1f} s over {len(cheap['wall_times'])} frames")
    print(f"accurate {args.accurate}: {accurate['matched']} candidates ({', '.join(accurate['presets'])}), "
          f"median wall time {costs[1]:.1f} s over {len(accurate['wall_times'])} frames")
    print(f"cost ratio cheap/accurate {costs[0] / costs[1]:.3f}; the cheap campaign cost "
          f"{cheap['wall_times'].sum():.0f} CPU-s (sunk, pretrains `transfer`)")

    result = run_benchmark(pool, cheap["gaps"], accurate["gaps"], costs, repeats=args.repeats, budget=args.budget,
                           progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                           section=config.model if args.campaign_model else None, methods=tuple(args.methods),
                           n_seed=args.n_seed, stop_at_targets=args.stop_at_targets,
                           results_path=Path(args.results_dir) / f"{args.name}.json",
                           pretrain_n=args.pretrain_n, cheap_share=config.strategy.cheap_share)
    for key, d in (("cheap", cheap), ("accurate", accurate)):
        result[key] = {"path": d["path"], "presets": d["presets"], "presets_label": "/".join(d["presets"]),
                       "frames": d["frames"], "matched": d["matched"], "unmatched": d["unmatched"],
                       "duplicates": d["duplicates"], "wall_time_s": {
                           "median": float(np.median(d["wall_times"])), "min": float(d["wall_times"].min()),
                           "max": float(d["wall_times"].max()), "sum": float(d["wall_times"].sum()),
                           "n": len(d["wall_times"])}}
    result["cheap_campaign_cpu_s"] = float(cheap["wall_times"].sum())
    result["campaign"] = str(args.campaign)
    result["command"] = " ".join(["benchmarks/fidelity.py", *(sys.argv[1:] if argv is None else argv)])
    result["figure"] = str(args.out_figure)
    result["figure_from_results"] = os.path.relpath(args.out_figure.resolve(), Path(args.results_dir).resolve())
    plot(result, args.out_figure)

    print(f"\n{result['n_both']} candidates with both labels, {args.repeats} repeats, budget {result['budget']:g} "
          "accurate-equivalents; median MAE / max error (eV) at cost (accurate calculations):")
    for line in table_lines(result):
        print("  " + line)
    default, _common.RESULTS = _common.RESULTS, Path(args.results_dir)
    try:
        path = _common.save(args.name, result)
    finally:
        _common.RESULTS = default
    md = Path(args.results_dir) / f"{args.name}.md"
    md.write_text(markdown(result))
    print(f"-> {path}, {md}, {args.out_figure}")
    return result


if __name__ == "__main__":
    main()
