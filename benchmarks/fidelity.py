"""Multi-fidelity and transfer at equal cost: the library's replay, saved as JSON and Markdown with a figure.

The runs are :func:`activemat.analysis.replay_levels.replay_levels`, the engine behind ``activemat replay
CAMPAIGN --oracle PRESET=FILE ...``: the campaign itself (its ledger, learner, refit policy and selector)
answered from one labelled file per preset, beside other routes to its accurate map at the same cost
(``--routes``): its accurate preset alone (with its strategy, or at random) and transfer (the accurate preset
on a frozen model of the cheaper ones, fitted on ``--pretrain-n`` random candidates whose cost counts). Costs
are the campaign's declared ``cost`` per preset, in accurate-calculation equivalents; errors are the accurate
prediction's MAE and max error over the candidates every file labels, after each result. This script parses
the arguments, puts the runs on a common cost grid (the last state at or below each grid cost) for its figure
and table, and saves them::

    OMP_NUM_THREADS=1 nice .venv/bin/python -m benchmarks.fidelity --campaign campaigns/sige16-pbe.toml \\
        --oracle gpaw-fast=benchmarks/data/sige16-fast.extxyz \\
        --oracle gpaw-pbe-pw=benchmarks/data/sige16-pbe.extxyz --repeats 10 --name fidelity-sige16-pbe

writes benchmarks/results/<name>.json and <name>.md and docs/figures/<name>.png (see --results-dir,
--out-figure).

This script had an engine of its own until the library's replay could do the same (results before
2026-12: fidelity.json, fidelity-fast.json, fidelity-fast-pbe-*.json; :func:`summary` and :func:`routes` still
read them). What that engine did and the library's does not, dropped rather than kept as a second engine:

- costs measured as the median ``wall_time`` of each file's frames: the campaign's declared costs are used
  (override them with ``--set calculator.cost=...``);
- random seed candidates in repeats after the first: every repeat starts, as a campaign does, from the
  space-filling seeds; repeats differ by their seed (the GP optimiser's starts, random picks, transfer's draws);
- ``--stop-at-targets``: every run goes on to the budget (the cost to each target is the same either way);
- transfer with the cheap campaign's cost sunk: transfer's pretraining always counts, from the start of its
  cost axis, and its labels are drawn from the candidates every file labels;
- the refit policy of its own (a full search every 10th refit until 2026-11): the loop's ``RefitSchedule``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

from activemat.analysis.replay import main_progress
from activemat.analysis.replay_levels import ROUTES, parse_oracles, replay_levels, route_label
from activemat.campaign.config import load_campaign
from benchmarks.common import RESULTS, Route, command, median_or_none, or_never, save
from benchmarks.sample_efficiency import parse_set

ROOT = Path(__file__).resolve().parent.parent
COLORS = {"multi": "tab:red", "accurate": "tab:blue", "random": "tab:gray", "transfer": "tab:green"}
GRID_STEP = 0.5  # accurate-equivalents
TABLE_COSTS = (5, 10, 20, 40)
EPS = 1e-9


# -- curves on one cost grid (for the figure and the table) ---------------------------------------------------

def on_grid(cost: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """At each grid cost, the value of the last state whose cumulative cost is at or below it (NaN before the
    first state).

    >>> on_grid(np.array([1, 1.4, 2.4]), np.array([3., 2., 1.]), np.array([0, .5, 1, 1.5, 2, 2.5]))
    array([nan, nan,  3.,  2.,  2.,  1.])
    """
    k = np.searchsorted(cost, grid + EPS, side="right") - 1
    return np.where(k >= 0, np.asarray(values, float)[np.maximum(k, 0)], np.nan)


def cost_grid(result: dict) -> np.ndarray:
    """0, 0.5, ... up to the budget."""
    return GRID_STEP * np.arange(int(np.floor(result["budget"] / GRID_STEP + EPS)) + 1)


def curves(result: dict, route: str) -> dict[str, dict[str, np.ndarray]]:
    """Median and 10-90 % percentiles over repeats of a route's MAE and max error on :func:`cost_grid`."""
    grid = cost_grid(result)
    out = {}
    for error in ("mae", "max"):
        rows = np.array([on_grid(np.array(run["cost"], float),
                                 np.array([np.nan if v is None else v for v in run[error]], float), grid)
                         for run in result[route]["runs"]])
        with warnings.catch_warnings():  # a benchmark script, never the refit thread: all-NaN grid columns
            warnings.simplefilter("ignore", RuntimeWarning)
            out[error] = {"median": np.nanmedian(rows, 0), "p10": np.nanpercentile(rows, 10, 0),
                          "p90": np.nanpercentile(rows, 90, 0)}
    return out


# -- outputs -------------------------------------------------------------------------------------------------

def _fmt(v, spec: str = ".4f") -> str:
    return "-" if v is None or not np.isfinite(v) else format(v, spec)


def table_lines(result: dict) -> list[str]:
    """Markdown table: median errors at fixed costs, median cost to each target (reached/repeats), results per
    preset."""
    grid = cost_grid(result)
    costs = [c for c in TABLE_COSTS if c <= grid[-1] + EPS]
    head = (["route"] + [f"MAE / max at {c}" for c in costs]
            + [f"cost to MAE <= {result['target_mae']:g} eV", f"cost to max <= {result['target_max']:g} eV",
               "cost to both", f"results per preset ({' / '.join(result['presets'])}), median"])
    rows = []
    for route in result["routes"]:
        s, c = result[route], curves(result, route)
        cells = [route_label(result, route)]
        for cost in costs:
            k = int(round(cost / GRID_STEP))
            cells.append(f"{_fmt(c['mae']['median'][k])} / {_fmt(c['max']['median'][k], '.3f')}")
        for key in ("mae", "max", "both"):
            reached = sum(v is not None for v in s[f"cost_to_{key}"])
            cells.append(f"{or_never(s[f'median_cost_to_{key}'], '{:.1f}')} ({reached}/{result['repeats']})")
        counts = np.median(np.array(s["counts"], float), 0)
        cells.append(" / ".join(f"{n:g}" for n in counts))
        rows.append(cells)
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _body(result: dict, figure: str) -> list[str]:
    """The Markdown under the heading; ``figure``: the figure's path from where the text is read."""
    r = result
    files = "; ".join(f"`{r['oracles'][p]}` ({p}, cost {c:g} CPU-s)" for p, c in zip(r["presets"], r["costs"]))
    dropped = f" ({r['dropped']} labelled at some presets only, left out)" if r["dropped"] else ""
    pretrain = (f" Transfer pretrains on {r['pretrain_n']} random candidates labelled at every cheaper preset per "
                f"repeat; their cost, {r['pretraining_cost']:.1f}, is where its runs start."
                if "pretraining_cost" in r else "")
    return [f"Campaign `{r['campaign_file']}` (strategy {r['strategy']}) replayed by the library's engine "
            f"(`activemat.analysis.replay_levels`: the loop's ledger, learner, refit policy and selector) against "
            f"{files}: {r['pool']} candidates labelled by every file{dropped}, errors of the {r['presets'][-1]} "
            f"prediction over all of them.", "",
            f"Costs in {r['presets'][-1]} calculations (the campaign's declared costs); budget {r['budget']:g}; "
            f"{r['repeats']} repeats (the campaign's seed, then seed + 1, ...).{pretrain} \"MAE / max at c\": median "
            "errors (eV) once c is spent; \"cost to\": median cost over repeats (reached/repeats), a repeat that never got there "
            "counting as infinite.", "",
            *table_lines(r), "",
            f"![MAE and max error vs cost]({figure})", "",
            "```", r["command"], "```", ""]


def markdown(result: dict, results_dir: Path) -> str:
    """The result's Markdown page, read from ``results_dir``."""
    figure = os.path.relpath(ROOT / result["figure"], Path(results_dir).resolve())
    return "\n".join([f"## {result['campaign']}: the {result['presets'][-1]} map at equal cost, "
                      f"{' / '.join(result['routes'])}", "", *_body(result, figure)])


def plot(result: dict, path: Path) -> None:
    """MAE and max error vs cost, median with the 10-90 % band over repeats, log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    grid = cost_grid(result)
    top = result["presets"][-1]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharex=True)
    for ax, error, name, target in zip(axes, ("mae", "max"), ("MAE", "max abs error"),
                                       (result["target_mae"], result["target_max"])):
        for route in result["routes"]:
            s = curves(result, route)[error]
            ax.plot(grid, s["median"], color=COLORS[route], lw=2, label=route_label(result, route),
                    drawstyle="steps-post")
            ax.fill_between(grid, s["p10"], s["p90"], color=COLORS[route], alpha=0.15, step="post", lw=0)
        ax.axhline(target, color="k", ls=":", lw=1)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.set_xlim(0, grid[-1])
        ax.set_xlabel(f"cost spent ({top} calculations; 1 = {result['costs'][-1]:g} CPU-s)")
        ax.set_ylabel(f"{name} of the {top} gap over the pool (eV)")
        ax.grid(True, which="both", alpha=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(f"{result['campaign']}: {' -> '.join(result['presets'])}, {result['pool']} candidates; median and "
                 f"10-90 % band over {result['repeats']} repeats", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- what the report reads -----------------------------------------------------------------------------------

def summary(result: dict) -> list[str]:
    """The report's section on one result (benchmarks/REPORT.md; a result of the former engine as its page)."""
    if "methods" in result:
        return _legacy_markdown(result).split("\n", 1)[1].replace("../../docs/", "../docs/").split("\n") + [""]
    return _body(result, os.path.relpath(ROOT / result["figure"], ROOT / "benchmarks"))


def routes(result: dict) -> list[Route]:
    """Cost to each target per route, for the report's table of routes to the accurate map (none for a partial
    result of the former engine)."""
    if "methods" in result:
        return [] if result.get("partial") else _legacy_routes(result)
    out = []
    for route in result["routes"]:
        s = result[route]
        counts = np.median(np.array(s["counts"], float), 0)
        bought = " + ".join(f"{n:g} {p}" for n, p in zip(counts, result["presets"][-len(counts):]))
        strategy = {"multi": f"{result['strategy']}/cost", "accurate": result["strategy"], "random": "random",
                    "transfer": f"{result['strategy']}/cost"}[route]
        out.append(Route(strategy, s["cost_to_mae"], s["cost_to_max"], s["median_cost_to_mae"],
                         s["median_cost_to_max"], result["repeats"], result["command"],
                         spend=f", {route_label(result, route)}; median {bought} labels", fmt="{:.1f}"))
    return out


def _legacy_routes(result: dict) -> list[Route]:
    """:func:`routes` of a result of the former engine (sige16: gpaw-fast and PBE labels)."""
    out = []
    for m, r in result["methods"].items():
        spend = (f"; median {median_or_none(r['n_cheap']):g} gpaw-fast + {median_or_none(r['n_accurate']):g} PBE "
                 "labels" if m == "multi" else f"; median {median_or_none(r['n_accurate']):g} PBE labels")
        out.append(Route("ivr/cost", r["cost_to_mae"]["0.01"], r["cost_to_max"],
                         median_or_none(r["cost_to_mae"]["0.01"]), median_or_none(r["cost_to_max"]),
                         result["repeats"], result["command"], spend=spend, fmt="{:.1f}"))
    return out


def _legacy_table_lines(result: dict) -> list[str]:
    """The headline table of a result of the former engine, as its page showed it."""
    costs = list(next(iter(result["table"].values()))["at_cost"])
    targets = [f"{t:g}" for t in result["targets_mae"]]
    with_max = any("cost_to_max" in t for t in result["table"].values())  # recorded since late 2026
    head = (["method"] + [f"MAE / max at {c}" for c in costs] + [f"cost to MAE <= {t} eV" for t in targets]
            + (["cost to max <= 0.05 eV"] if with_max else []))
    rows = []
    for m, t in result["table"].items():
        cells = [m] + [f"{_fmt(t['at_cost'][c]['mae'])} / {_fmt(t['at_cost'][c]['max'], '.3f')}" for c in costs]
        cells += [f"{_fmt(t['cost_to_mae'][tg], '.1f')} ({t['reached'][tg]}/{result['repeats']})" for tg in targets]
        if with_max:
            cells.append(f"{_fmt(t['cost_to_max'], '.1f')} ({t['reached_max']}/{result['repeats']})"
                         if "cost_to_max" in t else "-")
        rows.append(cells)
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _legacy_markdown(result: dict) -> str:
    """The page of a result of the former engine, as it wrote it."""
    r = result
    c, a = r["cheap"], r["accurate"]
    return "\n".join([
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
        *_legacy_table_lines(r),
        "",
        f"![MAE and max error vs cost]({r['figure_from_results']})",
        "",
        "```",
        r["command"],
        "```",
        ""])


# -- the script ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--campaign", default="campaigns/sige16-pbe.toml", help="a campaign with [[calculator.cheaper]]")
    p.add_argument("--oracle", required=True, action="append", metavar="PRESET=FILE",
                   help="labelled extxyz of each preset (from `activemat export`), one --oracle per preset")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, help="accurate-calculation equivalents per run (default: half the pool)")
    p.add_argument("--routes", nargs="+", default=["multi", "accurate"], choices=ROUTES)
    p.add_argument("--pretrain-n", type=int, metavar="N", help="transfer: labels it pretrains on (default: all)")
    p.add_argument("--target-mae", type=float, default=0.01, help="eV")
    p.add_argument("--target-max", type=float, default=0.05, help="eV")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="override campaign keys")
    p.add_argument("--name", default="fidelity", help="results/<name>.json and results/<name>.md")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--out-figure", type=Path, help="default: docs/figures/<name>.png")
    args = p.parse_args(argv)
    config, _ = load_campaign(args.campaign, parse_set(args.set))
    result = replay_levels(config, parse_oracles(args.oracle, config), repeats=args.repeats, budget=args.budget,
                           target_mae=args.target_mae, target_max=args.target_max, routes=tuple(args.routes),
                           pretrain_n=args.pretrain_n, progress=main_progress)
    figure = (args.out_figure or ROOT / "docs" / "figures" / f"{args.name}.png").resolve()
    result.update(campaign_file=str(args.campaign), strategy=config.strategy.kind,
                  command=command("fidelity", argv), figure=os.path.relpath(figure, ROOT))
    path = save(args.name, result, args.results_dir)  # first: a failing figure loses no run
    plot(result, figure)
    md = Path(args.results_dir) / f"{args.name}.md"
    md.write_text(markdown(result, args.results_dir))
    print("\n".join(table_lines(result)))
    print(f"-> {path}, {md}, {figure}")
    return result


if __name__ == "__main__":
    main()
