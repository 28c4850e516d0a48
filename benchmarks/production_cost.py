"""The cost evidence of a multi-fidelity production campaign: its own route against random sampling at the top
level, replayed, in CPU-hours and in top-level-calculation equivalents.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.production_cost runs/sige16-accurate.h5

Reads the store only. Both replays run through the tool's own multi-fidelity engine,
:func:`activemat.analysis.replay_levels.replay_levels` (what ``activemat replay CAMPAIGN --oracle PRESET=FILE ...
--routes multi random`` runs), with one oracle file per preset and every preset's cost set to the store's
measured median wall time per successful result (the loop's own measure; the campaign file's declared costs
where a preset has no measured time). Route ``multi`` is the campaign as it ran (its strategy, cheap share and
model); ``random`` is its top preset alone, random picks after the same space-filling seeds, with the same [model].

(a) real labels: each preset's successful rows exported (:func:`activemat.store.export.export_store`, as
    ``activemat export --preset P --status ok``). The replay pool is what every oracle labels: the
    configurations computed at every level. A campaign that stopped early leaves a handful; the replay then
    shows what the route does on them, not what it costs on the whole space.
(b) surrogate worlds, a FAKE oracle (no DFT): the store's campaign model
    (:func:`activemat.analysis.model.fit_store_model`) drawn ``--worlds`` times from its joint posterior over the
    whole pool at every level (each level's discrepancy from its GP's latent posterior mean and covariance,
    composed by the co-kriging recursion f_l = rho_l f_(l-1) + d_l), each draw written as per-preset oracle
    files and replayed by both routes until the curve and the pool-MAE targets are reached or the campaign's
    own cost budget is spent. In such a world the model class is right by construction.

Writes benchmarks/results/production-cost-<name>.json and the generated page fragment docs/results/<name>-cost.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from activemat.analysis.api import Store
from activemat.analysis.model import fit_store_model
from activemat.analysis.replay_levels import cost_to_reach, level_data, replay_levels, seeded
from activemat.learn.curve import curve_stds
from activemat.space.matching import load_labels
from activemat.store.export import export_store
from benchmarks.common import command, median_or_none, shell
from benchmarks.production import FRAGMENTS, ROOT, costs, publish

#: the measured complete set beside which the worlds' cheapest level is checked (PBE, 2x2x2, all 402 cells)
REFERENCE = ROOT / "benchmarks" / "data" / "sige16-pbe.extxyz"
ROUTES = ("multi", "random")
ERRORS = {"curve": "curve_max", "mae": "mae"}  # target name -> the error the replay records


def with_costs(config, seconds: list[float]):
    """``config`` with each preset's cost (CPU-seconds per calculation, cheap to accurate) set to ``seconds``."""
    calc = config.calculator
    cheaper = [c.model_copy(update={"cost": s}) for c, s in zip(calc.cheaper, seconds)]
    return config.model_copy(update={"calculator": calc.model_copy(update={"cheaper": cheaper, "cost": seconds[-1]})})


def per_result_seconds(store: Store) -> tuple[list[dict], list[float], list[str]]:
    """The cost rows of :func:`benchmarks.production.costs`, the seconds per result each replay charges (the
    measured median, else the campaign file's declared cost) and where each came from."""
    rows = costs(store)
    declared = store.config().calculator.costs
    seconds, source = [], []
    for row, cost in zip(rows, declared):
        ok = row["median_s"] is not None and math.isfinite(row["median_s"]) and row["median_s"] > 0
        seconds.append(float(row["median_s"]) if ok else float(cost))
        source.append("measured" if ok else "declared")
    return rows, seconds, source


def reached(run: dict, targets: dict[str, float], levels: int) -> dict:
    """Per target: the cost (top-level equivalents) at which the run first reached it, and the results at each
    of its ``levels`` presets it had then (None where it never did)."""
    out = {}
    for name, target in targets.items():
        cost = cost_to_reach(run, target, ERRORS[name])
        counts = None
        if cost is not None:
            n = run["cost"].index(cost) + 1
            counts = np.bincount(run["level"][:n], minlength=levels).tolist()
        out[name] = {"cost": cost, "results": counts}
    return out


def route_summary(runs: list[dict], targets: dict[str, float], top_seconds: float, levels: int) -> dict:
    """Per target: each run's cost to it, the median (a run that never got there counts as infinite) in
    equivalents and CPU-hours, and the results per preset (``levels`` of them) at it in each run; the runs'
    final errors."""
    out = {}
    per_run = [reached(run, targets, levels) for run in runs]
    for name in targets:
        hits = [r[name] for r in per_run]
        med = median_or_none([h["cost"] for h in hits])
        out[name] = {"costs": [h["cost"] for h in hits], "median": med,
                     "median_cpu_hours": None if med is None else med * top_seconds / 3600,
                     "results": [h["results"] for h in hits], "reached": sum(h["cost"] is not None for h in hits)}
    for key in ("mae", "curve_max"):
        out[f"final_{key}"] = [run[key][-1] if run[key] else None for run in runs]
    out["spent"] = [run["cost"][-1] if run["cost"] else 0.0 for run in runs]
    return out


def real_replay(view, config, folder: Path, *, repeats: int, targets: dict[str, float], top_seconds: float) -> dict:
    """(a): each preset's successful results as its oracle; both routes to the cost of labelling the whole
    replay pool at every level."""
    oracles, labelled = {}, []
    for preset in config.calculator.presets:
        oracles[preset] = str(folder / f"real-{preset}.extxyz")
        export_store(view.path, oracles[preset], preset=preset, status="ok")
        labelled.append(set(view.results(preset)[0].tolist()))
    data = level_data(config, oracles)
    compositions = len(np.unique(data.pool.n_b))
    budget = len(data.pool) * sum(config.calculator.costs) / config.calculator.costs[-1]  # all of it, every level
    result = replay_levels(config, oracles, repeats=repeats, budget=budget, routes=ROUTES,
                           target_mae=targets["mae"], target_max=math.inf)
    return {"pool": result["pool"], "compositions": compositions, "dropped": result["dropped"], "budget": budget,
            "repeats": repeats,
            "pool_candidates": sorted(set.intersection(*labelled)),
            **{r: route_summary(result[r]["runs"], targets, top_seconds, _levels(r, config)) for r in ROUTES}}


def _levels(route: str, config) -> int:
    """Presets a route computes: all of the campaign's for ``multi``, the top one alone otherwise."""
    return len(config.calculator.presets) if route == "multi" else 1


def draw_worlds(model, X: np.ndarray, n: int, seed: int) -> list[list[np.ndarray]]:
    """``n`` joint posterior draws of every level's latent gap (eV) at the rows of ``X``, cheap to accurate.

    Each level's discrepancy is drawn from its GP's latent posterior (``latent_cov``: mean and covariance, a
    root by eigendecomposition with round-off negatives clipped) and composed by the co-kriging recursion
    f_l = rho_l f_(l-1) + d_l, as :meth:`~activemat.learn.cokriging.CoKriging.latent_cov` composes the top level.
    """
    rng = np.random.default_rng(seed)
    roots = []
    for gp in model.gps_:
        mean, cov = gp.latent_cov(X)
        w, v = np.linalg.eigh((cov + cov.T) / 2)
        roots.append((mean, v * np.sqrt(np.clip(w, 0.0, None))))
    worlds = []
    for _ in range(n):
        below, levels = np.zeros(len(X)), []
        for rho, (mean, root) in zip(model.rhos_, roots):
            below = rho * below + mean + root @ rng.standard_normal(root.shape[1])
            levels.append(below)
        worlds.append(levels)
    return worlds


def write_world(pool, presets: list[str], levels: list[np.ndarray], folder: Path) -> dict[str, str]:
    """One world as per-preset oracle files (extended XYZ, every candidate's ideal structure with its drawn gap)."""
    import ase.io

    folder.mkdir(parents=True, exist_ok=True)
    oracles = {}
    for preset, gaps in zip(presets, levels):
        frames = []
        for i in range(len(pool)):
            atoms = pool.atoms(i)
            atoms.info.update(candidate=i, gap=float(gaps[i]), status="ok", preset=preset,
                              oracle="surrogate: a joint posterior draw of the store's model, not DFT")
            frames.append(atoms)
        oracles[preset] = str(folder / f"{preset}.extxyz")
        ase.io.write(oracles[preset], frames, format="extxyz")
    return oracles


def spread(pool, gaps: np.ndarray) -> float:
    """Configurational spread (eV): the multiplicity-weighted std of the gaps within a composition, averaged
    over the compositions with more than one configuration."""
    out = []
    for k in np.unique(pool.n_b):
        idx = np.flatnonzero(pool.n_b == k)
        if len(idx) > 1:
            w = pool.multiplicity[idx] / pool.multiplicity[idx].sum()
            mean = w @ gaps[idx]
            out.append(math.sqrt(w @ (gaps[idx] - mean) ** 2))
    return float(np.mean(out))


def surrogate_replay(model, config, folder: Path, *, worlds: int, budget: float, targets: dict[str, float],
                     top_seconds: float, reference: Path | None, progress=print) -> dict:
    """(b): ``worlds`` posterior draws of the store's model, each replayed by both routes (seed = campaign seed
    + world) until both targets are reached or ``budget`` is spent."""
    pool, presets = model.pool, config.calculator.presets
    drawn = draw_worlds(model.model, pool.features, worlds, config.campaign.seed)
    runs: dict[str, list] = {r: [] for r in ROUTES}
    for w, levels in enumerate(drawn):
        oracles = write_world(pool, presets, levels, folder / f"world-{w}")
        result = replay_levels(seeded(config, config.campaign.seed + w), oracles, repeats=1, budget=budget,
                               routes=ROUTES, target_mae=targets["mae"], target_max=math.inf,
                               stop_at={ERRORS[k]: v for k, v in targets.items()})
        if result["pool"] != len(pool) or not np.allclose(_labels(oracles[presets[-1]], pool), levels[-1]):
            raise RuntimeError(f"world {w}: the oracle files did not match back onto the pool")
        for r in ROUTES:
            runs[r] += result[r]["runs"]
            hit = reached(runs[r][-1], targets, _levels(r, config))
            progress(f"world {w}, {r}: curve target at {hit['curve']['cost']}, MAE target at {hit['mae']['cost']} "
                     f"top-level equivalents")
    realism = {"world_spread": [[spread(pool, g) for g in levels] for levels in drawn]}
    if reference is not None and Path(reference).exists():
        labels = load_labels(reference, pool).gaps
        if len(labels) == len(pool):
            realism["reference"] = {"file": Path(reference).name,
                                    "spread": spread(pool, np.array([labels[i] for i in range(len(pool))]))}
    return {"pool": len(pool), "worlds": worlds, "budget": budget, "realism": realism,
            **{r: route_summary(runs[r], targets, top_seconds, _levels(r, config)) for r in ROUTES}}


def _labels(path: str, pool) -> np.ndarray:
    gaps = load_labels(path, pool).gaps
    return np.array([gaps.get(i, np.nan) for i in range(len(pool))])


def campaign_spend(store: Store, rows: list[dict], top_seconds: float, model) -> dict:
    """What the campaign itself spent to where it stopped: results per preset, CPU-hours of every attempt, the
    same in top-level equivalents, and its model's largest curve std there (its stop criterion)."""
    hours = sum(r["cpu_hours"] for r in rows)
    return {"results": [r["results"] for r in rows], "cpu_hours": hours, "equivalents": hours * 3600 / top_seconds,
            "curve_std": float(curve_stds(model.model, model.pool).max()),
            "target_curve_std": store.config().stop.target_curve_std}


def _f(v, fmt: str = "{:.1f}") -> str:
    return "not reached" if v is None else fmt.format(v)


def _results(counts: list | None, presets: list[str]) -> str:
    """Results per preset at a target, as ``22 pbe-fast + 7 pbe-relaxed + 8 tb09-relaxed``."""
    if counts is None:
        return "-"
    names = presets if len(counts) == len(presets) else presets[-1:]
    return " + ".join(f"{n} {p}" for n, p in zip(counts, names))


def table_rows(r: dict) -> list[list[str]]:
    """One row per (replay, route) and the campaign's own: cost to the curve target (equivalents, CPU-hours),
    to the pool-MAE target, and the median results per preset at the curve target."""
    presets, camp = r["presets"], r["campaign"]
    rows = [["campaign itself (store)", f"{r['surrogate']['pool']} (its space)", "multi", "1",
             f"{camp['equivalents']:.1f} to its stop (curve std {camp['curve_std']:.4f} eV)",
             f"{camp['cpu_hours']:.2f}", "-", _results(camp["results"], presets)]]
    for key, label in (("surrogate", "surrogate worlds (fake oracle)"), ("real", "real labels")):
        rep = r[key]
        n = rep.get("worlds", rep.get("repeats"))
        for route in ROUTES:
            s = rep[route]
            counts = [c for c in s["curve"]["results"] if c is not None]
            med = np.median(np.array(counts), axis=0).round().astype(int).tolist() if counts else None
            rows.append([label, str(rep["pool"]), route, str(n),
                         f"{_f(s['curve']['median'])} ({s['curve']['reached']}/{n} reached)",
                         _f(s["curve"]["median_cpu_hours"], "{:.2f}"),
                         f"{_f(s['mae']['median'])} ({s['mae']['reached']}/{n})", _results(med, presets)])
    return rows


def _intro(r: dict) -> str:
    presets, t, sec = r["presets"], r["targets"], r["seconds"]
    per = ", ".join(f"{p} {s:.0f} s ({src})" for p, s, src in zip(presets, sec, r["seconds_from"]))
    return (f"Cost per result on one core: {per}; one top-level equivalent = one {presets[-1]} calculation "
            f"({sec[-1]:.0f} s). Routes replayed by `activemat replay`'s engine: multi (the campaign's own route: "
            f"its strategy, cheap share and model, each preset at the cost above) and random ({presets[-1]} alone, "
            "the same space-filling seeds then random picks, the same [model]). Targets: the model's composition "
            f"curve within {t['curve']:g} eV of the oracle's own curve at every composition (the campaign stops "
            f"when its curve's joint-posterior std is below {t['curve']:g} eV at every composition; here it is the "
            f"error itself), and the top level's MAE over the pool within {t['mae']:g} eV; a run's cost to a target "
            "is where its error first reaches it, medians over repeats with a repeat that never got there counting "
            f"as infinite; budget {r['surrogate']['budget']:.1f} equivalents per surrogate run ({r['budget_from']}).")


def _notes(r: dict) -> list[str]:
    """The ratio, the per-world costs, the campaign's spend at the medians, the pools and their limits."""
    presets, real, sur, camp = r["presets"], r["real"], r["surrogate"], r["campaign"]
    at_medians = sum(n * s for n, s in zip(camp["results"], r["seconds"])) / r["seconds"][-1]
    sm, sr = sur["multi"]["curve"]["median"], sur["random"]["curve"]["median"]
    lines = []
    if sm is not None and sr is not None:
        lines += [f"Surrogate worlds: multi reaches the curve target for {sm / sr:.2f} of random's cost "
                  f"({sm:.1f} against {sr:.1f} equivalents, median of {sur['worlds']} worlds; per world, multi "
                  f"{', '.join(_f(c) for c in sur['multi']['curve']['costs'])}; random "
                  f"{', '.join(_f(c, '{:.0f}') for c in sur['random']['curve']['costs'])})."
                  + (" A random run that never got there within the budget would get there above it, so its median "
                     "stands." if sur["random"]["curve"]["reached"] < sur["worlds"] else "")]
    lines += ["", f"The campaign itself: {sum(camp['results'])} results, {at_medians:.1f} equivalents at the median "
                  f"costs, {camp['equivalents']:.1f} counting every attempt's wall time; it stopped on its own "
                  f"model's curve std, not on an error measured against a known curve."]
    spread = np.median(np.array(sur["realism"]["world_spread"]), axis=0)
    ref = sur["realism"].get("reference")
    lines += ["", f"**Pools and limits.** Real labels: the replay pool is the {real['pool']} configurations "
                  f"computed at every level (candidates {', '.join(map(str, real['pool_candidates']))}; "
                  f"{real['dropped']} more labelled at some levels only are left out), over "
                  f"{real['compositions']} compositions: it shows the order in which each route labels them "
                  f"({_cheaper(real)} on so small a pool; multi first labels its seeds at every level), not a cost "
                  f"to a curve over the alloy's {sur['pool']} configurations. Surrogate worlds: a "
                  f"fake oracle, {sur['worlds']} joint posterior draws of the store's own co-kriging model over all "
                  f"{sur['pool']} configurations at every level, noise-free: the replay's model class is right by "
                  "construction, which flatters model-guided picks, and the worlds vary only as much as the model "
                  "believes; configurational spread within a composition in the worlds (median): " +
                  ", ".join(f"{p} {v:.3f} eV" for p, v in zip(presets, spread)) +
                  (f"; measured on all 402 configurations with PBE ({ref['file']}): {ref['spread']:.3f} eV"
                   if ref else "") +
                  ". Each preset costs its median everywhere: a relaxed top-level calculation on a cell the "
                  "relaxed cheap level has not relaxed first relaxes it itself and costs more."]
    return lines


def _cheaper(replay: dict) -> str:
    """Which route of a replay reached the curve target for less, as a phrase."""
    m, r = replay["multi"]["curve"]["median"], replay["random"]["curve"]["median"]
    if m is None or r is None:
        return "the curve target is not reached by both routes"
    return "the top level alone is cheaper" if r < m else "multi is cheaper" if m < r else "both cost the same"


def fragment(r: dict) -> str:
    """The page fragment: what was replayed, the cost table, the ratio, the pools and their limits, the command."""
    t = r["targets"]
    head = ["replay", "pool", "route", "repeats", f"cost to curve within {t['curve']:g} eV (top-level equiv.)",
            "CPU-hours", f"cost to pool MAE {t['mae']:g} eV", "results at the curve target (median)"]
    lines = [f"<!-- made by `{r['command']}` on {r['machine']['date']}; do not edit -->", "", _intro(r), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(r)]
    lines += ["", *_notes(r), "", "```", "OMP_NUM_THREADS=1 " + shell(r["command"]), "```"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", type=Path)
    p.add_argument("--name", help="default: the store's stem")
    p.add_argument("--worlds", type=int, default=10, help="surrogate worlds (posterior draws), one run per route each")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the real-label replay")
    p.add_argument("--target-curve", type=float, default=None,
                   help="eV, largest curve error to reach (default: the campaign's target_curve_std, else 0.02)")
    p.add_argument("--target-mae", type=float, default=0.02, help="eV, pool MAE of the top level to reach")
    p.add_argument("--budget", type=float, help="top-level equivalents per surrogate run (default: the campaign's "
                                                "cost_budget, else 100)")
    p.add_argument("--out", type=Path, help="write the JSON and the fragment into this folder instead of "
                                            "benchmarks/results and docs/results")
    a = p.parse_args(argv)
    start = time.time()
    name = a.name or a.store.stem
    store = Store(a.store)
    rows, seconds, source = per_result_seconds(store)
    config = with_costs(store.config(), seconds)
    stop = config.stop
    targets = {"curve": a.target_curve or stop.target_curve_std or 0.02, "mae": a.target_mae}
    budget = a.budget or (stop.cost_budget / seconds[-1] if stop.cost_budget else 100.0)
    budget_from = "--budget" if a.budget else ("the campaign's cost budget" if stop.cost_budget else "default")
    model = fit_store_model(store.view)
    result = {"command": command("production_cost", None if argv is None else list(argv)), "store": str(a.store),
              "name": name, "presets": config.calculator.presets, "costs": rows, "seconds": seconds,
              "seconds_from": source, "targets": targets, "budget_from": budget_from,
              "campaign": campaign_spend(store, rows, seconds[-1], model)}
    with tempfile.TemporaryDirectory(prefix="production-cost-") as tmp:
        result["real"] = real_replay(store.view, config, Path(tmp), repeats=a.repeats, targets=targets,
                                     top_seconds=seconds[-1])
        result["surrogate"] = surrogate_replay(model, config, Path(tmp), worlds=a.worlds, budget=budget,
                                               targets=targets, top_seconds=seconds[-1], reference=REFERENCE)
    results, fragments = (a.out, a.out) if a.out else (None, FRAGMENTS)
    result["elapsed_s"] = time.time() - start
    saved = publish(f"production-cost-{name}", result, results, fragment, fragments / f"{name}-cost.md")
    print(f"written {saved}, {fragments / f'{name}-cost.md'} in {time.time() - start:.0f} s")
    return result


if __name__ == "__main__":
    main()
