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
beside the same campaign by other routes to the accurate map, at the same cost (``routes``):

- ``multi``: the campaign as it is;
- ``accurate``: its accurate preset alone, with its [strategy];
- ``random``: its accurate preset alone, picked at random;
- ``transfer``: its accurate preset alone on a frozen model of the cheaper presets, as a campaign with
  ``[model] transfer_from`` runs: the loop's :class:`~activemat.campaign.model.CampaignModel` with that
  pretrained level, a co-kriging of the cheaper presets fitted (with the campaign's [model]) on ``pretrain_n``
  random candidates of the pool, drawn per repeat, labelled at every cheaper preset. Those labels were a
  previous campaign's: their cost is where the run's cost axis starts, and counts against the budget.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from activemat.analysis.replay import CurveTruth, median_labels, subpool
from activemat.campaign.config import CampaignConfig
from activemat.campaign.learner import Learner
from activemat.campaign.ledger import Ledger
from activemat.campaign.model import CampaignModel
from activemat.campaign.selector import Selector
from activemat.campaign.setup import build_campaign_pool, model_factory
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.learn.cokriging import CoKriging
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


def replay_levels_run(config: CampaignConfig, data: LevelData, *, budget: float,
                      pretrained: CoKriging | None = None, spent: float = 0.0,
                      stop_at: dict[str, float] | None = None) -> dict:
    """One campaign replayed to ``budget`` (accurate-calculation equivalents); errors after each result.

    ``pretrained``: the frozen level of a transfer campaign (``config`` names one in ``[model] transfer_from``);
    ``spent``: the cost already spent when the run starts (its pretraining); ``stop_at``: targets (eV) by error
    name (``mae``, ``max``, ``curve_mae``, ``curve_max``): the run ends once each has been reached.

    Returns ``cost`` (cumulative, accurate equivalents), ``level`` of each result, ``mae`` and ``max`` of the
    accurate prediction over the pool, ``curve_mae`` and ``curve_max`` of its composition curve (the
    multiplicity-weighted average per composition) against the accurate labels' curve (NaN before a model
    exists), and the final counts per level.
    """
    pool, levels = data.pool, len(data.gaps)
    costs = config.calculator.costs
    learner = Learner(CampaignModel.of(config, pool, pretrained=pretrained), pool)
    ledger = Ledger(np.zeros(len(pool), bool), levels, config.faults.max_attempts)
    selector = Selector(config, pool, learner, [])
    truth = data.gaps[-1]
    curve = CurveTruth.of(pool, truth)
    out: dict = {"cost": [], "level": [], "mae": [], "max": [], "curve_mae": [], "curve_max": []}
    spent = float(spent)
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
        curve_err = np.abs(curve.weights @ learner.mean - curve.gap) if fitted else np.full(len(curve.x), np.nan)
        out["cost"].append(spent)
        out["level"].append(key.fidelity)
        for name, e in (("mae", err.mean()), ("max", err.max()), ("curve_mae", curve_err.mean()),
                        ("curve_max", curve_err.max())):
            out[name].append(float(e))
        if stop_at and all(cost_to_reach(out, target, name) is not None for name, target in stop_at.items()):
            break
    out["counts"] = [ledger.completed(f) for f in range(levels)]
    return out


def cost_to_reach(run: dict, target: float, error: str = "mae") -> float | None:
    """Cost (accurate equivalents) at which the ``error`` (``mae``, ``max``, ``curve_mae`` or ``curve_max``)
    first reaches ``target``; None if never.

    >>> cost_to_reach({"cost": [1.0, 2.0, 3.0], "mae": [float("nan"), 0.02, 0.008]}, 0.01)
    3.0
    """
    for c, m in zip(run["cost"], run[error]):
        if not math.isnan(m) and m <= target:
            return float(c)
    return None


ROUTES = ("multi", "accurate", "random", "transfer")
PRETRAIN_DRAWS = 1  # the random stream of transfer's pretraining draws (beside the selector's own)


def route_config(config: CampaignConfig, route: str, *, transfer_from: str = "") -> CampaignConfig:
    """The campaign a route replays (:data:`ROUTES`): ``multi`` the campaign itself, the others its accurate
    preset alone (``random``: picked at random; ``transfer``: on a frozen level, named by ``transfer_from``)."""
    if route == "multi":
        return config
    update: dict = {"calculator": config.calculator.model_copy(update={"cheaper": [], "cost": None})}
    if route == "random":
        update["strategy"] = config.strategy.model_copy(update={"kind": "random"})
    if route == "transfer":
        update["model"] = config.model.model_copy(update={"transfer_from": transfer_from})
    return config.model_copy(update=update)


def pretrained_level(config: CampaignConfig, data: LevelData, idx: np.ndarray) -> CoKriging:
    """A transfer campaign's frozen level: a co-kriging of the cheaper presets on the pool's candidates ``idx``
    (each labelled at every cheaper preset), with the campaign's [model] over the pool, as the loop fits one on
    a ``transfer_from`` store (:func:`activemat.campaign.setup.pretrain`)."""
    make = model_factory(config.model, config.campaign.seed, data.pool)
    X = data.pool.features[idx]
    return CoKriging(make).fit([(X, gaps[idx]) for gaps in data.gaps[:-1]])


def route_run(config: CampaignConfig, route: str, data: LevelData, *, budget: float, pretrain_n: int,
              transfer_from: str = "", stop_at: dict[str, float] | None = None) -> dict:
    """One run of ``route`` (:data:`ROUTES`) for the campaign ``config`` (seeded for this run) on ``data``, ended
    at ``budget`` or once the ``stop_at`` targets are reached (:func:`replay_levels_run`)."""
    if route == "multi":
        return replay_levels_run(config, data, budget=budget, stop_at=stop_at)
    accurate = LevelData(data.pool, data.gaps[-1:], 0)
    routed = route_config(config, route, transfer_from=transfer_from)
    if route != "transfer":
        return replay_levels_run(routed, accurate, budget=budget, stop_at=stop_at)
    rng = np.random.default_rng([config.campaign.seed, PRETRAIN_DRAWS])
    idx = np.sort(rng.choice(len(data.pool), pretrain_n, replace=False))
    costs = config.calculator.costs
    return replay_levels_run(routed, accurate, budget=budget, pretrained=pretrained_level(config, data, idx),
                             spent=pretrain_n * sum(costs[:-1]) / costs[-1], stop_at=stop_at)


def _route_summary(runs: list[dict], target_mae: float, target_max: float) -> dict:
    """Costs to each target per run and their medians (a run that never reached one counts as infinite)."""
    mae = [cost_to_reach(run, target_mae) for run in runs]
    mx = [cost_to_reach(run, target_max, "max") for run in runs]
    both = [None if a is None or b is None else max(a, b) for a, b in zip(mae, mx)]
    last = [{k: (run[k][-1] if run[k] else math.nan) for k in ("mae", "max")} for run in runs]
    return {"cost_to_mae": mae, "median_cost_to_mae": median_labels(mae),
            "cost_to_max": mx, "median_cost_to_max": median_labels(mx),
            "cost_to_both": both, "median_cost_to_both": median_labels(both),
            "final_mae": [e["mae"] for e in last], "final_max": [e["max"] for e in last],
            "counts": [run["counts"] for run in runs],
            "runs": [{k: run[k] for k in ("cost", "level", "mae", "max", "curve_mae", "curve_max")} for run in runs]}


def seeded(config: CampaignConfig, seed: int) -> CampaignConfig:
    """``config`` with its campaign seed set to ``seed`` (one replay run's picks and model draws)."""
    return config.model_copy(update={"campaign": config.campaign.model_copy(update={"seed": seed})})


def replay_levels(config: CampaignConfig, oracles: dict[str, str], *, repeats: int = 3, budget: float | None = None,
                  target_mae: float = 0.01, target_max: float = 0.05, routes: tuple[str, ...] = ("multi", "accurate"),
                  pretrain_n: int | None = None, stop_at: dict[str, float] | None = None, progress=None) -> dict:
    """The campaign against its oracles by each of ``routes`` (:data:`ROUTES`), ``repeats`` times (seeds seed,
    seed + 1, ...) to the same cost; a JSON-ready result with each run's costs to ``target_mae`` and
    ``target_max`` (and to both) and their medians. ``pretrain_n``: the labels ``transfer`` pretrains on
    (default: the whole pool); ``stop_at``: end each run once these targets are reached
    (:func:`replay_levels_run`)."""
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    if len(config.calculator.presets) < 2:
        raise InputError("--oracle PRESET=FILE is for a campaign with [[calculator.cheaper]] presets; give a "
                         "single-fidelity campaign one labelled file (--oracle FILE)")
    unknown = [r for r in routes if r not in ROUTES]
    if unknown or not routes:
        raise InputError(f"--routes {' '.join(unknown)}: choose among {', '.join(ROUTES)}")
    data = level_data(config, oracles)
    budget = float(budget or len(data.pool) / 2)
    costs = config.calculator.costs
    pretrain_n = len(data.pool) if pretrain_n is None else int(pretrain_n)
    pretraining_cost = pretrain_n * sum(costs[:-1]) / costs[-1]
    if "transfer" in routes and not (2 <= pretrain_n <= len(data.pool) and pretraining_cost < budget):
        raise InputError(f"--pretrain-n {pretrain_n}: transfer pretrains on 2 to {len(data.pool)} candidates and "
                         f"their cost ({pretraining_cost:g} accurate equivalents) must stay below the budget "
                         f"({budget:g})")
    cheap = ", ".join(oracles[p] for p in config.calculator.presets[:-1])
    runs: dict[str, list[dict]] = {route: [] for route in routes}
    for r in range(repeats):
        repeat = seeded(config, config.campaign.seed + r)
        for route in routes:
            run = route_run(repeat, route, data, budget=budget, pretrain_n=pretrain_n, transfer_from=cheap,
                            stop_at=stop_at)
            runs[route].append(run)
            if progress:
                final = f"{run['mae'][-1]:.4f} eV" if run["mae"] else "none"
                progress(f"{route}: run {r + 1} done, cost {run['cost'][-1] if run['cost'] else 0:.1f}, "
                         f"final MAE {final}")
    transfer = {"pretrain_n": pretrain_n, "pretraining_cost": pretraining_cost} if "transfer" in routes else {}
    return {"campaign": config.campaign.name, "presets": config.calculator.presets, "oracles": oracles,
            "costs": costs, "pool": len(data.pool), "dropped": data.dropped, "budget": budget,
            "repeats": repeats, "target_mae": target_mae, "target_max": target_max, "routes": list(routes),
            **transfer, **{route: _route_summary(rs, target_mae, target_max) for route, rs in runs.items()}}


def route_label(result: dict, route: str) -> str:
    """How a route of a :func:`replay_levels` result reads."""
    top = result["presets"][-1]
    return {"multi": "multi-fidelity", "accurate": f"{top} alone", "random": f"{top} alone, random",
            "transfer": f"transfer ({result.get('pretrain_n')} cheap labels first)"}[route]


def render(result: dict, file=None) -> None:
    """Human-readable lines for :func:`replay_levels`."""
    file = file or sys.stdout
    presets = " -> ".join(f"{p} (cost {c:g})" for p, c in zip(result["presets"], result["costs"]))
    dropped = f" ({result['dropped']} labelled at some presets only, left out)" if result["dropped"] else ""
    print(f"{result['campaign']}: {presets}; {result['pool']} candidates labelled by every oracle"
          f"{dropped};"
          f" budget {result['budget']:g} accurate-calculation equivalents, {result['repeats']} repeats", file=file)
    if "pretraining_cost" in result:
        print(f"  transfer pretrains on {result['pretrain_n']} candidates labelled at every cheaper preset: "
              f"cost {result['pretraining_cost']:.1f} before its first result", file=file)
    mae, mx = result["target_mae"], result["target_max"]
    for route in result["routes"]:
        s = result[route]
        reach = [("not reached" if v is None else f"{v:.1f}")
                 for v in (s["median_cost_to_mae"], s["median_cost_to_max"], s["median_cost_to_both"])]
        finals = ", ".join("-" if m is None or math.isnan(m) else f"{m:.4f}" for m in s["final_mae"])
        counts = "; ".join("/".join(map(str, c)) for c in s["counts"])
        print(f"  {route_label(result, route):>32}: median cost to MAE {mae:g} eV: {reach[0]}, to max {mx:g} eV: "
              f"{reach[1]}, to both: {reach[2]}; final MAE {finals} eV; results per preset {counts}", file=file)
