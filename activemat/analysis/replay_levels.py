"""Replay a multi-fidelity campaign against labelled structures, one oracle file per preset: the loop's own
selection, model and refit policy, no DFT.

``activemat replay CAMPAIGN.toml --oracle gpaw-fast=fast.extxyz --oracle gpaw-pbe-pw=pbe.extxyz`` answers every
calculation at a preset from that preset's file. The run is the campaign itself, synchronously and one
result at a time (a one-worker campaign): its :class:`~activemat.campaign.ledger.Ledger`, its
:class:`~activemat.campaign.learner.Learner` (the campaign's co-kriging, warm-started on the refit schedule of
every level) and its :class:`~activemat.campaign.selector.Selector` (seeds at every level, then cost-aware
variance reduction with the campaign's ``max_cheap_share``). Costs are the campaign's declared ``cost`` per
preset (a replay has no wall times to measure). The replay pool is the candidates every oracle labels
(structures labelled at a cheaper preset only are left out, and counted). After each result the model's
error over the pool's accurate labels is recorded on a cost axis (accurate-calculation equivalents),
beside a baseline: the same campaign with the accurate preset alone, at the same cost.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from activemat.analysis.replay import median_labels, subpool
from activemat.campaign.config import CampaignConfig
from activemat.campaign.learner import Learner
from activemat.campaign.ledger import Ledger
from activemat.campaign.model import CampaignModel
from activemat.campaign.selector import Selector
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.space.matching import load_labels
from activemat.store import schema as S


def parse_oracles(items: list[str], config: CampaignConfig) -> dict[str, str]:
    """``PRESET=FILE`` items as {preset: file}, one for each of the campaign's presets (InputError otherwise)."""
    presets = config.calculator.presets
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--oracle {item!r}: a multi-fidelity campaign takes one --oracle PRESET=FILE per "
                             f"preset ({', '.join(presets)})")
        if name not in presets:
            raise InputError(f"--oracle {item!r}: {name} is not a preset of this campaign; use one of "
                             f"{', '.join(presets)}")
        out[name] = path
    missing = [p for p in presets if p not in out]
    if missing:
        raise InputError(f"--oracle: no labelled file for {', '.join(missing)}; give --oracle PRESET=FILE for each "
                         f"of {', '.join(presets)}")
    return out


@dataclasses.dataclass
class LevelData:
    """The replay pool (candidates every oracle labels) and their gaps per preset, cheap to accurate."""

    pool: object
    gaps: list[np.ndarray]
    dropped: int  # candidates labelled at some presets only


def level_data(config: CampaignConfig, oracles: dict[str, str]) -> LevelData:
    """Every preset's labels matched onto the campaign's pool, restricted to the candidates all of them label."""
    if config.space.mode == "sampled":
        raise InputError("multi-fidelity replay needs an enumerated [space] (mode = \"configurations\" or "
                         "\"compositions\"): a sampled pool differs between the oracle files")
    full = build_campaign_pool(config)
    labels = [load_labels(oracles[p], full).gaps for p in config.calculator.presets]
    every = sorted(set.intersection(*(set(g) for g in labels)))
    if len(every) < 4:
        raise InputError(f"only {len(every)} candidate(s) are labelled by every oracle file; a multi-fidelity "
                         "replay needs at least 4 (check the files and the campaign's [space])")
    union = set.union(*(set(g) for g in labels))
    idx = np.array(every)
    return LevelData(subpool(full, idx), [np.array([g[i] for i in every]) for g in labels], len(union) - len(idx))


def replay_levels_run(config: CampaignConfig, data: LevelData, *, budget: float) -> dict:
    """One campaign replayed to ``budget`` (accurate-calculation equivalents); errors after each result.

    Returns ``cost`` (cumulative, accurate equivalents), ``level`` of each result, ``mae`` and ``max`` of the
    accurate prediction over the pool (NaN before a model exists) and the final counts per level.
    """
    pool, levels = data.pool, len(data.gaps)
    costs = config.calculator.costs
    learner = Learner(CampaignModel.of(config, pool), pool)
    ledger = Ledger(np.zeros(len(pool), bool), levels, config.faults.max_attempts)
    selector = Selector(config, pool, learner, [])
    truth = data.gaps[-1]
    out = {"cost": [], "level": [], "mae": [], "max": []}
    spent = 0.0
    while True:
        pick = selector.next(ledger, [])
        if pick is None:
            break
        key = pick[0]
        step = costs[key.fidelity] / costs[-1]
        if spent + step > budget + 1e-9:
            break
        record = CalculationRecord(candidate=key.candidate, attempt=0, preset=config.calculator.presets[key.fidelity],
                                   status=S.OK, gap=float(data.gaps[key.fidelity][key.candidate]),
                                   started=0.0, finished=float(costs[key.fidelity]))
        ledger.record(key, record)
        spent += step
        free = ~ledger.busy([])[-1]
        fitted = learner.fit(ledger, free)
        err = np.abs(learner.mean - truth) if fitted else np.full(len(pool), np.nan)
        out["cost"].append(spent)
        out["level"].append(key.fidelity)
        out["mae"].append(float(err.mean()))
        out["max"].append(float(err.max()))
    out["counts"] = [ledger.completed(f) for f in range(levels)]
    return out


def cost_to_reach(run: dict, target: float) -> float | None:
    """Cost (accurate equivalents) at which the MAE first reaches ``target``; None if never."""
    for c, m in zip(run["cost"], run["mae"]):
        if not math.isnan(m) and m <= target:
            return float(c)
    return None


def replay_levels(config: CampaignConfig, oracles: dict[str, str], *, repeats: int = 3, budget: float | None = None,
                  target_mae: float = 0.01, progress=None) -> dict:
    """The campaign against its oracles, ``repeats`` times (seeds seed, seed + 1, ...), beside its accurate
    preset alone at the same cost; a JSON-ready result with the cost to reach ``target_mae`` per run."""
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    if len(config.calculator.presets) < 2:
        raise InputError("--oracle PRESET=FILE is for a campaign with [[calculator.cheaper]] presets; give a "
                         "single-fidelity campaign one labelled file (--oracle FILE)")
    data = level_data(config, oracles)
    budget = float(budget or len(data.pool) / 2)
    alone = config.model_copy(update={"calculator": config.calculator.model_copy(update={"cheaper": [],
                                                                                          "cost": None})})
    accurate = LevelData(data.pool, data.gaps[-1:], 0)
    runs = {"multi": [], "accurate": []}
    for r in range(repeats):
        for name, cfg, d in (("multi", config, data), ("accurate", alone, accurate)):
            seeded = cfg.model_copy(update={"campaign": cfg.campaign.model_copy(
                update={"seed": config.campaign.seed + r})})
            run = replay_levels_run(seeded, d, budget=budget)
            runs[name].append(run)
            if progress:
                progress(f"{name}: run {r + 1} done, cost {run['cost'][-1]:.1f}, final MAE {run['mae'][-1]:.4f} eV")
    summary = {}
    for name, rs in runs.items():
        reach = [cost_to_reach(run, target_mae) for run in rs]
        summary[name] = {"cost_to_mae": reach, "median_cost_to_mae": median_labels(reach),
                         "final_mae": [run["mae"][-1] for run in rs], "counts": [run["counts"] for run in rs],
                         "runs": [{k: run[k] for k in ("cost", "level", "mae", "max")} for run in rs]}
    return {"campaign": config.campaign.name, "presets": config.calculator.presets, "oracles": oracles,
            "costs": config.calculator.costs, "pool": len(data.pool), "dropped": data.dropped, "budget": budget,
            "repeats": repeats, "target_mae": target_mae, **summary}


def render(result: dict, file=None) -> None:
    """Human-readable lines for :func:`replay_levels`."""
    file = file or sys.stdout
    presets = " -> ".join(f"{p} (cost {c:g})" for p, c in zip(result["presets"], result["costs"]))
    dropped = f" ({result['dropped']} labelled at some presets only, left out)" if result["dropped"] else ""
    print(f"{result['campaign']}: {presets}; {result['pool']} candidates labelled by every oracle"
          f"{dropped};"
          f" budget {result['budget']:g} accurate-calculation equivalents, {result['repeats']} repeats", file=file)
    target = result["target_mae"]
    for name, label in (("multi", "multi-fidelity"), ("accurate", f"{result['presets'][-1]} alone")):
        s = result[name]
        med = s["median_cost_to_mae"]
        reach = "not reached" if med is None else f"{med:.1f}"
        finals = ", ".join(f"{m:.4f}" for m in s["final_mae"])
        counts = "; ".join("/".join(map(str, c)) for c in s["counts"])
        print(f"  {label:>24}: median cost to MAE {target:g} eV: {reach}; final MAE {finals} eV; "
              f"results per preset {counts}", file=file)
