"""Write benchmarks/REPORT.md from the JSON results the other scripts left in benchmarks/results/.

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, load  # noqa: E402

REFERENCE_COMMAND = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_efficiency.py --name reference-pbe "
                     "--campaign campaigns/sige16-pbe.toml --oracle benchmarks/data/sige16-pbe.extxyz --repeats 10 "
                     "--budget 200 --jobs 2 --stop-at-targets --set model.prior=none")


def _n(v, fmt="{:g}"):
    return "not reached" if v is None else fmt.format(v)


def _ratio(summary: dict, target: str) -> str:
    """Median labels to a target over random's; '<' when random never got there (the budget bounds it)."""
    v = summary.get(f"{target}_labels_vs_random")
    if v is None:
        return "-"
    return ("<" if summary.get(f"{target}_ratio_is_bound") else "") + f"{v:.2f}"


def _first(curve, target):
    for n, v in enumerate(curve):
        if v is not None and v <= target:
            return n
    return None


def sample_efficiency(name: str) -> list[str]:
    d = load(f"sample_efficiency_{name}")
    if d is None:
        return [f"_No results for `{name}` yet._", ""]
    t = d["targets"]
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
        out.append(f"| {s} | {r['model']} | {_n(sm['median_labels_to_mae'])}; {sm['reached_mae']}/{sm['repeats']} "
                   f"| {_n(sm['median_labels_to_max'])}; {sm['reached_max']}/{sm['repeats']} "
                   f"| {_ratio(sm, 'mae')} / {_ratio(sm, 'max')} "
                   f"| {_n(_first(r['mae']['mean'], 0.02))} | {sm['final_mae']:.4f} / {sm['final_max']:.4f} |")
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


#: Issue 16's single-fidelity routes: (results name, what the run changes in campaigns/sige16-pbe.toml's [model]).
ISSUE16_SINGLE = (
    ("reference-pbe", "ard = true, maximum likelihood (issue 6's model)"),
    ("i16-ard", "ard = true (re-run with this branch)"),
    ("i16-classes", "ard = \"classes\""),
    ("i16-iso-none", "ard = false (one length scale), maximum likelihood (the package default before the "
                     "defaults became ard = \"classes\", prior = \"weak\")"),
    ("i16-iso-weak", "ard = false, prior = \"weak\""),
    ("i16-ard-weak", "ard = true, prior = \"weak\""),
    ("i16-classes-weak", "ard = \"classes\", prior = \"weak\""),
    ("i16-ard-weak-noise", "ard = true, prior = \"weak\", noise = 0.002"),
    ("i16-ard-weak-bowing", "ard = true, prior = \"weak\", mean = \"bowing\""),
    ("i16-classes-weak-bowing", "ard = \"classes\", prior = \"weak\", mean = \"bowing\""),
    ("i16-ard-weak-from100", "ard = true, prior = \"weak\", prior_from = 100 random gpaw-fast labels (+11.8 cost, "
                             "not included in the labels)"),
    ("i16-ard-rs", "ard = true, random seeds (--random-start)"),
    ("i16-ard-weak-rs", "ard = true, prior = \"weak\", random seeds (--random-start)"),
)
ISSUE16_BATCH = tuple((f"i16-ard-weak-q{q}", q) for q in (2, 8, 32))
#: Issue 16's cheap-data routes: (results name, description).
ISSUE16_FIDELITY = (
    ("fidelity-fast-pbe-multi-share100", "multi-fidelity co-kriging, uncapped (cheap_share = 1)"),
    ("fidelity-fast-pbe-multi-share50", "multi-fidelity co-kriging, cheap_share = 0.5"),
    ("fidelity-fast-pbe-multi-share50-tied", "multi-fidelity co-kriging, cheap_share = 0.5, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-multi-share30-tied", "multi-fidelity co-kriging, cheap_share = 0.3, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-multi-share70-tied", "multi-fidelity co-kriging, cheap_share = 0.7, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-transfer40", "transfer: 40 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer80", "transfer: 80 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer120", "transfer: 120 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer80-tied", "transfer: 80 random gpaw-fast labels first, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-transfer200", "transfer: 200 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer402", "transfer: all 402 gpaw-fast labels first"),
)


def _med(values: list) -> float | None:
    import numpy as np

    v = np.array([np.inf if x is None else x for x in values], float)
    m = float(np.median(v)) if len(v) else float("inf")
    return m if np.isfinite(m) else None


def _both(a: list, b: list) -> float | None:
    """Median over repeats of the cost to reach both targets (the later of the two; never: infinite)."""
    return _med([None if x is None or y is None else max(x, y) for x, y in zip(a, b)])


def issue16() -> list[str]:
    """Labels (= cost, PBE only) and cost to both targets for every route of issue 16, against random."""
    ref = load("sample_efficiency_reference-pbe")
    if ref is None:
        return ["_Not run yet._", ""]
    rnd_mae = ref["summary"]["random"]["median_labels_to_mae"]
    rnd_max = ref["summary"]["random"]["median_labels_to_max"]

    def ratio(v, r):
        return "-" if v is None or r is None else f"{v / r:.2f}"

    out = ["Costs are in units of one gpaw-pbe-pw calculation: the median wall time of the 402 PBE frames "
           "(69.4 s, one core), gpaw-fast 8.2 s (median of its 402 frames), ratio 0.118. Targets: pool MAE <= "
           "0.01 eV and max error <= 0.05 eV, over all 402 configurations (training points included). Medians "
           f"over 10 repeats; a repeat that never reached a target counts as infinite. Random's reference "
           f"(issue 6's model, maximum likelihood): {rnd_mae:g} labels to MAE, {rnd_max:g} to max error; one "
           f"third is {rnd_mae / 3:.1f} and {rnd_max / 3:.1f}. Runs made before campaigns/sige16-pbe.toml set "
           "`prior = \"weak\"` (issue 6's and this section's commands without `model.prior` in `--set`) ran with "
           "maximum likelihood: add `model.prior=none` to `--set` to repeat them. Fidelity commands run from "
           "`benchmarks/`.", "",
           "| route | strategy | cost to MAE <= 0.01 eV (median; reached) | cost to max <= 0.05 eV (median; "
           "reached) | cost to both (median) | vs random, MAE / max | command |", "|---|---|---|---|---|---|---|"]
    for name, what in ISSUE16_SINGLE:
        d = load(f"sample_efficiency_{name}")
        if d is None:
            out.append(f"| {what} | - | not run | not run | - | - | - |")
            continue
        for s, r in d["strategies"].items():
            if s == "fixed":
                continue
            a, b = r["median_labels_to_mae"], r["median_labels_to_max"]
            ra = sum(v is not None for v in r["labels_to_mae"])
            rb = sum(v is not None for v in r["labels_to_max"])
            out.append(f"| {what} | {s} | {_n(a)}; {ra}/{r['repeats']} | {_n(b)}; {rb}/{r['repeats']} | "
                       f"{_n(_both(r['labels_to_mae'], r['labels_to_max']))} | "
                       f"{ratio(a, rnd_mae)} / {ratio(b, rnd_max)} | `{d['command']}` |")
    for name, q in ISSUE16_BATCH:
        d = load(f"sample_efficiency_{name}")
        if d is None:
            out.append(f"| batch q = {q} | - | not run | not run | - | - | - |")
            continue
        for s, r in d["strategies"].items():
            a, b = r["median_labels_to_mae"], r["median_labels_to_max"]
            ra = sum(v is not None for v in r["labels_to_mae"])
            rb = sum(v is not None for v in r["labels_to_max"])
            out.append(f"| ard = true, prior = \"weak\", batches of q = {q} (kriging believer) | {s} | {_n(a)}; "
                       f"{ra}/{r['repeats']} | {_n(b)}; {rb}/{r['repeats']} | "
                       f"{_n(_both(r['labels_to_mae'], r['labels_to_max']))} | {ratio(a, rnd_mae)} / "
                       f"{ratio(b, rnd_max)} | `{d['command']}` |")
    for name, what in ISSUE16_FIDELITY:
        d = load(name)
        if d is None or d.get("partial"):
            out.append(f"| {what} | - | not run | not run | - | - | - |")
            continue
        for m, r in d["methods"].items():
            a, b = _med(r["cost_to_mae"]["0.01"]), _med(r["cost_to_max"])
            ra = sum(v is not None for v in r["cost_to_mae"]["0.01"])
            rb = sum(v is not None for v in r["cost_to_max"])
            spend = (f"; median {_med(r['n_cheap']):g} gpaw-fast + {_med(r['n_accurate']):g} PBE labels"
                     if m == "multi" else f"; median {_med(r['n_accurate']):g} PBE labels")
            out.append(f"| {what}{spend} | ivr/cost | {_n(a, '{:.1f}')}; {ra}/{d['repeats']} | "
                       f"{_n(b, '{:.1f}')}; {rb}/{d['repeats']} | "
                       f"{_n(_both(r['cost_to_mae']['0.01'], r['cost_to_max']), '{:.1f}')} | "
                       f"{ratio(a, rnd_mae)} / {ratio(b, rnd_max)} | `{d['command']}` |")
    bound = load("design_bound_reference-pbe")
    if bound:
        ds = bound["designs"]
        out += ["", f"Limits with issue 6's model and its hyperparameters fitted on all 402 labels (no learning "
                f"cost; `benchmarks/design_bound.py`): sequential ivr {ds['sequential ivr']['labels_to_mae']}, "
                f"I-optimal {ds['I-optimal']['labels_to_mae']}, clairvoyant {ds['clairvoyant']['labels_to_mae']} "
                "labels to MAE 0.01 eV."]
    weak = load("design_bound_i16-ard-weak")
    if weak:
        ds = weak["designs"]
        out += [f"The same limits for the MAP model (`prior = \"weak\"`, hyperparameters fitted on all 402 "
                f"labels): sequential ivr {ds['sequential ivr']['labels_to_mae']}, I-optimal "
                f"{ds['I-optimal']['labels_to_mae']}, clairvoyant {ds['clairvoyant']['labels_to_mae']}, random "
                f"(median of 10) {_n(weak['random_median'])} (within `--budget` labels). Command: `{weak['command']}`."]
    return out + [""]


def features() -> list[str]:
    d = load("features_cv")
    if d is None:
        return ["_Not run yet: `benchmarks/features_cv.py STORE`._", ""]
    out = [f"Leave-one-out CV of the campaign GP on `{d['store']}` ({d['n_labels']} labels, {d['restarts']} optimiser "
           f"restart). Command: `benchmarks/features_cv.py {d['store']}` (load average {d['machine']['load_1min']} on "
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


def design_bound(name: str) -> list[str]:
    d = load(f"design_bound_{name}")
    if d is None:
        return ["_Not run yet: `benchmarks/design_bound.py` (command in its docstring)._", ""]
    t = d["target_mae"]
    third = d["campaign_random_median"] / 3 if d["campaign_random_median"] else None
    at = int(third) if third else None  # the largest design within a third of random's labels
    out = [f"The campaign's GP fitted once on all {d['labels']} labels ({d['fit_seconds']:.0f} s), hyperparameters "
           f"then fixed: the best a campaign could learn. Command: `{d['command']}`.", "",
           f"| design of N labels | labels to pool MAE <= {t:g} eV | pool MAE at N = {at} (eV) "
           "| pool MAE / max at the largest N tried (eV) |", "|---|---|---|---|"]
    reached = [v for v in d["random_labels_to_mae"] if v is not None]
    out.append(f"| random, these hyperparameters (median of {len(d['random_labels_to_mae'])}) | "
               f"{_n(d['random_median'])} (range {min(reached)}-{max(reached)}) | - | - |" if reached else
               "| random, these hyperparameters | not reached | - | - |")
    for k, v in d["designs"].items():
        last = max(v["curve"], key=int)
        mae, mx = v["curve"][last]
        mae_at = (f"{v['curve'][str(at)][0]:.4f}" if str(at) in v["curve"]
                  else f"<= {t:g} (reached at {last})" if at and int(last) < at else "-")
        out.append(f"| {k} | {_n(v['labels_to_mae'])} | {mae_at} | {mae:.4f} / {mx:.4f} at N = {last} |")
    if third:
        out += ["", f"One third of the campaign replay's random median ({d['campaign_random_median']:g} labels) is "
                f"{third:.1f} labels."]
    return out + [""]


def dispatch() -> list[str]:
    d = load("dispatch")
    if d is None:
        return ["_Not run yet._", ""]
    out = [f"Command: `{d['command']}` (load average {d['machine']['load_1min']} on {d['machine']['cpus']} cores).", "",
           "| tasks | workers | tasks run | wall (s) | utilisation | overhead per task (s) | median submit->start (s) |",
           "|---|---|---|---|---|---|---|"]
    for r in d["synthetic"]:
        out.append(f"| synthetic {r['task_s']:g} s | {r['workers']} | {r['calculations']} | {r['wall_s']} | "
                   f"{100 * r['utilisation']:.1f} % | {r['overhead_per_task_s']} | {r['median_submit_to_start_s']} |")
    for r in d["real"]:
        out.append(f"| real GPAW `{r['store']}` ({r['mean_task_s']} s mean) | {r['workers']} | {r['calculations']} | "
                   f"{r['wall_s']} | {100 * r['utilisation']:.1f} % | {r['overhead_per_task_s']} | "
                   f"{r['median_submit_to_start_s']} |")
    return out + [""]


def driver() -> list[str]:
    d = load("driver_cost")
    if d is None:
        return ["_Not run yet._", ""]
    out = [f"Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python {d['command'].strip()}` "
           f"(load average {d['machine']['load_1min']} on {d['machine']['cpus']} cores).", "",
           "| pool | training points | strategy | fit (s) | CV (s) | predict mean+std (s) | select, 1 running (s) "
           "| total (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['pool']} | {r['n_train']} | {r['strategy']} | {r['fit_s']:.3f} | {r['cv_s']:.3f} | "
                   f"{r['predict_s']:.3f} | {r['select_1_running_s']:.3f} | **{r['refit_and_select_s']:.3f}** |")
    return out + [""]


def store() -> list[str]:
    d = load("store_throughput")
    if d is None:
        return ["_Not run yet._", ""]
    q = "status=ok, gap 0.2:0.4, ge-count 4:12"
    out = [f"Command: `.venv/bin/python {d['command'].strip()}`.", "",
           "| rows | append, as the loop writes (ms/row) | file size (MB) | bytes/row | read whole store (s) "
           f"| filtered query `{q}` (s) |", "|---|---|---|---|---|---|"]
    for r in d["rows"]:
        out.append(f"| {r['rows']} | {r['flushed_ms_per_row']:.1f} | {r['file_mb']:.1f} | {r['bytes_per_row']:.0f} | "
                   f"{r['query']['read all']['seconds']:.3f} | {r['query'][q]['seconds']:.3f} |")
    return out + [""]


def _simcluster_rows(name: str) -> list[str]:
    d = load(name)
    if d is None:
        return ["_Not run yet._", ""]
    setup = d["setup"]
    out = [f"Pool {setup['pool']} candidates ({setup['features']} features); calculation times mean "
           f"{setup['wall_mean_s']:.1f} s (median {setup['wall_median_s']:.1f}, 10-90 % {setup['wall_p10_s']:.1f}-"
           f"{setup['wall_p90_s']:.1f} s), the measured PBE times x {setup['time_scale']:.3f}.", "",
           "| workers (processes x threads) | prefetch | results | training points | steady utilisation | whole run | "
           "results/s | driver s/result (own thread) | with the refit thread | refits | results per refit | "
           "lost / rerun / duplicates | load average before -> after |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        dr = r["driver"]
        both = dr.get("with_refits_per_result_s")
        out.append(
            f"| {r['workers']} ({r['processes']} x {r['threads_per_process']}) | {r.get('prefetch', 0)} | {dr['results']} | "
            f"{r['preload']} -> {r['summary']['completed']} | **{100 * r['utilisation_steady']:.1f} %** | "
            f"{100 * r['utilisation_whole']:.1f} % | {r['results_per_s']:.2f} | {dr['per_result_s']:.3f} | "
            f"{'-' if both is None else f'{both:.3f}'} | {dr['refits']} | {dr['results'] / max(dr['refits'], 1):.1f} | "
            f"{r['lost']} / {r['lost_rerun_ok']} / {r['duplicate_results']} | "
            f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |")
    return out + [""]


def scale() -> list[str]:
    out = ["Simulated cluster (`benchmarks/simcluster.py`): the real driver (`run_campaign`), store and Dask "
           "scheduler; workers are threads of a few worker processes that sleep for each candidate's duration and "
           "answer from a table (`TableOracle`). The store starts with 2000 results. Steady utilisation is the "
           "calculation time inside [first, last submission] over workers x that window; the whole run adds the "
           "drain after the last submission. Driver s/result: the driver thread's busy time (store, select, "
           "submit, snapshot) per result; with the refit thread: plus the refits computed beside it.", "",
           "### Mean 30 s calculations", "",
           "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 64 256 1024 "
           "--mean-seconds 30`", ""]
    out += _simcluster_rows("simcluster")
    out += ["The 256-worker run again (`--workers 256 --mean-seconds 30 --name simcluster-quiet`):", ""]
    out += _simcluster_rows("simcluster-quiet")
    out += ["On a nearly idle machine (`--workers 256 1024 --mean-seconds 30 --name simcluster-low-load`):", ""]
    out += _simcluster_rows("simcluster-low-load")
    out += ["### The defaults (prefetch \"auto\": workers/16) and, run beside them, no prefetch", "",
            "Commands: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 256 --mean-seconds 30 "
            "--name simcluster-auto-prefetch`, then the same with `--prefetch 0 --name simcluster-no-prefetch`. The "
            "runs above ran before prefetch = \"auto\" existed, with none.", ""]
    out += _simcluster_rows("simcluster-auto-prefetch") + _simcluster_rows("simcluster-no-prefetch")
    out += ["### Mean 30 s calculations, prefetch workers/16, Dask scheduler in its own process", "",
            "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 64 256 1024 "
            "--mean-seconds 30 --prefetch 0.0625 --scheduler-process --name simcluster-prefetch`", ""]
    out += _simcluster_rows("simcluster-prefetch")
    out += ["### Mean 30 s calculations, Dask scheduler in its own process, no prefetch", "",
            "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 1024 "
            "--mean-seconds 30 --scheduler-process --name simcluster-scheduler-process`", ""]
    out += _simcluster_rows("simcluster-scheduler-process")
    out += ["### Mean 3 s calculations (where it breaks down)", "",
            "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 256 1024 "
            "--mean-seconds 3 --rounds 10 --name simcluster-fast`", ""]
    out += _simcluster_rows("simcluster-fast")
    out += ["### A tenth of the workers killed", "",
            "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simcluster.py --workers 260 --processes 20 "
            "--kill 0.1 --name simcluster-faults` (2 of 20 worker processes, 13 threads each, SIGKILL at random "
            "moments; their nannies restart them).", ""]
    out += _simcluster_rows("simcluster-faults")
    d = load("simcluster-faults")
    if d is not None:
        for r in d["rows"]:
            out += [f"Kills: {r['kills']}; calculations lost with their worker: {r['lost']}, rerun to a result: "
                    f"{r['lost_rerun_ok']}, never rerun: {r['lost_not_rerun']}; duplicate results: "
                    f"{r['duplicate_results']}; completed {r['completed_total']} of a budget of {r['budget']}; "
                    f"rows left running: {r['still_running']}.", ""]
    out += ["### Before the refit thread (refit, then fill; same command, earlier commit)", ""]
    out += _simcluster_rows("simcluster-synchronous")
    d = load("scale_cost")
    out += ["### Refit and selection of a batch at 10^5 candidates", ""]
    if d is None:
        out += ["_Not run yet._", ""]
    else:
        out += ["Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/scale_cost.py "
                "--gp-upto 500` (256 running calculations).", "",
                "| pool | training points | model | batch | full search (s) | warm refit (s) | predict pool (s) | "
                "select batch (s) | **refit + select (s)** | CV (s) | load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in d["rows"]:
            out.append(f"| {r['pool']} | {r['n_train']} | {r['model']} | {r['batch']} | {r['full_search_s']:.2f} | "
                       f"{r['warm_refit_s']:.2f} | {r['predict_pool_s']:.2f} | {r['select_batch_s']:.2f} | "
                       f"**{r['refit_and_select_s']:.2f}** | {r['cv_s']:.2f} | {r['load_1min']} |")
        out.append("")
    d = load("store_batches")
    out += ["### Store writes in batches", ""]
    if d is None:
        out += ["_Not run yet._", ""]
    else:
        out += [f"Command: `.venv/bin/python benchmarks/store_batches.py` (load average {d['machine']['load_1min']}; "
                f"store already holding {d['existing']} rows).", "",
                "| rows per batch (one flush) | ms per row |", "|---|---|"]
        out += [f"| {r['batch']} | {r['ms_per_row']:.2f} |" for r in d["rows"]] + [""]
    out += ["### Scalable model on the 402 PBE labels (replay)", "",
            "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_efficiency.py --name reference-pbe-nystroem "
            "--campaign campaigns/sige16-pbe-nystroem.toml --oracle benchmarks/data/sige16-pbe.extxyz --repeats 10 "
            "--budget 200 --stop-at-targets --strategy max_std ivr`; the exact GP side by side: the same with "
            "`--name reference-pbe-nystroem-exact --set model.kind=gp`.", ""]
    out += ["The weak prior (the package default) with the scalable model: the same command with "
            "`--name reference-pbe-nystroem-weak --set model.prior=weak`; its exact-GP counterpart is "
            "`i16-ard-weak` above.", ""]
    for name in ("reference-pbe-nystroem", "reference-pbe-nystroem-exact", "reference-pbe-nystroem-weak"):
        out += sample_efficiency(name)
    return out


def calibration() -> list[str]:
    """Fraction within 2 predicted sd, mean squared z-score and MAE per [model] variant and training size."""
    out = []
    for name, what in (("calibration-16", "16 atoms, 402 PBE labels"), ("calibration-32", "32 atoms, 256 gpaw-fast "
                       "labels"), ("calibration-compositions", "17 compositions, gpaw-fast")):
        d = load(name)
        if d is None:
            out += [f"_{what}: not run yet._", ""]
            continue
        sizes = list(next(iter(d["variants"].values()))["sizes"])
        out += [f"**{what}** ({d['draws']} random training sets per size). Command: `{d['command']}`", "",
                "| model | " + " | ".join(f"{n} labels: within 2 sd / mean z^2 / MAE (eV)" for n in sizes) + " |",
                "|---" * (len(sizes) + 1) + "|"]
        for label, v in d["variants"].items():
            out.append(f"| {label} | " + " | ".join(
                f"{r['within_2sd']:.2f} / {r['mean_z2']:.1f} / {r['mae']:.4f}" for r in v["sizes"].values()) + " |")
        out.append("")
    return out


def main() -> None:
    text = ["# activemat benchmarks", "",
            "Generated by `benchmarks/report.py` from `benchmarks/results/*.json`; every figure below names the "
            "command that produced it. The machine is a shared 2-core VM, and reference DFT campaigns ran "
            "beside most of these measurements, so timings are upper bounds.", "",
            "## Sample efficiency (replay, no DFT)", "",
            "`activemat replay` answers the campaign's picks from labelled structures and records, after every "
            "label, the model's MAE and max error over the whole labelled pool (training points included). "
            "`fixed` is the seed tutorial's design: six compositions, linear regression on x.", "",
            "### 17 compositions, gpaw-fast (complete, real)", ""]
    text += sample_efficiency("seed-compositions")
    text += ["### 402 configurations, gpaw-pbe-pw (the reference dataset)", ""]
    if (RESULTS / "sample_efficiency_reference-pbe.json").exists() and load("sample_efficiency_reference-pbe")["complete"]:
        text += sample_efficiency("reference-pbe")
    else:
        text += ["**Not run yet**: `runs/reference-pbe.h5` is still being computed. When it is complete, run", "",
                 f"    {REFERENCE_COMMAND}", "    .venv/bin/python benchmarks/report.py", ""]
        if (RESULTS / "sample_efficiency_reference-pbe-partial.json").exists():
            text += ["Preview on the labels that exist so far (a small, random subset of the pool: NOT the "
                     "benchmark, and no conclusion about targets can be drawn from it):", ""]
            text += sample_efficiency("reference-pbe-partial")
    text += ["### What any strategy could reach with this model (no DFT)", ""] + design_bound("reference-pbe")
    text += ["## Data efficiency near the limit: every route of issue 16 (replay, no DFT)", ""] + issue16()
    text += ["### Features and model (no DFT)", ""] + features()
    text += ["### Calibration of the model's uncertainty (no DFT)", ""] + calibration()
    text += ["## Multi-fidelity and transfer at equal cost (replay, no DFT)", ""]
    for name, cheap in (("fidelity", "gpaw-pbe-pw"), ("fidelity-fast", "gpaw-fast")):
        fidelity = RESULTS / f"{name}.md"
        text += [f"### Cheap fidelity {cheap}", ""]
        body = fidelity.read_text().split("\n", 1)[1].replace("../../docs/", "../docs/") if fidelity.exists() else ""
        text += [body, ""] if fidelity.exists() else [
            "_Not run yet: `benchmarks/fidelity.py` (command in its docstring)._", ""]
    text += ["## Dispatch", ""] + dispatch()
    text += ["## Driver cost per result", ""] + driver()
    text += ["## Store", ""] + store()
    text += ["## Scale: simulated cluster, 10^5 candidates (issue 19)", ""] + scale()
    notes = (Path(__file__).resolve().parent / "NOTES.md")
    if notes.exists():
        text += [notes.read_text()]
    out = Path(__file__).resolve().parent / "REPORT.md"
    out.write_text("\n".join(text))
    print(out)


if __name__ == "__main__":
    main()
