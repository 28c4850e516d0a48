"""Replay a campaign against labelled structures instead of DFT: learning curves per strategy.

``activemat replay CAMPAIGN.toml --oracle LABELED.extxyz`` answers every
"calculation" from an extended-XYZ file whose frames carry the band gap in
``atoms.info["gap"]`` (eV), as written by ``activemat export``. Steps:

1. match : each frame is mapped onto the campaign's candidates by symmetry,
           whatever its site order, origin or (Vegard-scaled) lattice
           constant: atoms are assigned to the reference supercell's sites by
           fractional position modulo lattice translations, and the
           decoration is reduced with the supercell's space group
           (:func:`activemat.space.symmetry.canonical_codes`). Frames that match no
           candidate are reported, with the reason.
   A ``sampled`` space cannot hold every labelled structure, so there the
           oracle's own structures (decorations of the campaign's cell, one row
           per symmetry class, duplicates' gaps averaged) are the pool: any
           labelled set of that cell can be replayed.
2. replay: the labelled candidates form the pool; the campaign's own
           selection rule (:func:`activemat.learn.strategies.choose`) and model
           (:func:`activemat.learn.models.make_model`) run one label at a time, and
           after each label the model's MAE and max error over the whole
           labelled pool (training points included) are recorded. With
           ``held_out`` a random fraction of the pool is never offered: the
           errors on it are the held-out errors, and the targets apply to them.
           The random alloy's gap curve (multiplicity-weighted average per
           composition) and its bowing parameter b are tracked too, against
           the same averages of the labels.
3. repeat: each strategy runs ``repeats`` times with seeds
           ``seed, seed + 1, ...`` (random picks, GP optimiser restarts); the
           curves are summarised by mean, spread and the number of labels
           needed to reach the target MAE and max error.

This is a lean sequential loop (one label at a time, no Dask, no store, no
cross-validation): its picks are the ones a one-worker campaign would make.
The strategy ``fixed`` is the seed tutorial's design: a fixed list of
compositions (the campaign's ``[strategy] fixed`` list, or the tutorial's six)
with a linear regression on the alloying fraction alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from activemat.campaign.config import ModelSection
from activemat.campaign.setup import build_campaign_pool, model_factory, pretrain
from activemat.errors import InputError
from activemat.learn.acquisition import composition_weights, representative
from activemat.learn.cokriging import CoKriging
from activemat.learn.refit import RefitSchedule
from activemat.learn.strategies import STRATEGIES, Context, campaign_kinds, choose, make_strategy
from activemat.analysis.curve import bowing_design
from activemat.space.formula import parse_formula
from activemat.space.matching import Labels, load_labelled_pool, load_labels
from activemat.space.pool import CandidatePool

__all__ = ["labelled_pool", "replay_curve", "replay", "render", "labels_to_reach", "SEED_TUTORIAL_FIXED"]

#: The seed tutorial's fixed design (16-atom cell): six compositions, then linear regression on x.
SEED_TUTORIAL_FIXED = ("Si2Ge14", "Si6Ge10", "Si8Ge8", "Si10Ge6", "Si12Ge4", "Si14Ge2")


# -- 1. one replay run ----------------------------------------------------------------

def subpool(pool: CandidatePool, idx: np.ndarray) -> CandidatePool:
    """The candidates ``idx`` of a pool, as a pool of their own."""
    return dataclasses.replace(pool, decorations=pool.decorations[idx], multiplicity=pool.multiplicity[idx],
                               features=pool.features[idx])


def fixed_design(pool: CandidatePool, formulas) -> list[int]:
    """The most probable candidate of each listed composition that the pool holds, in order."""
    picks = []
    for f in formulas:
        i = representative(pool, parse_formula(f, pool.parent, pool.n_sites))
        if i is not None:
            picks.append(i)
    return picks


def tutorial_formulas(pool: CandidatePool) -> list[str]:
    """The seed tutorial's six compositions, rescaled to the pool's cell size."""
    out = []
    for f in SEED_TUTORIAL_FIXED:
        k = round(parse_formula(f, ("Si", "Ge"), 16) * pool.n_sites / 16)
        out.append("".join(f"{e}{c}" for e, c in zip(pool.elements, (pool.n_sites - k, k)) if c))
    return out


@dataclasses.dataclass(frozen=True)
class CurveTruth:
    """The labels' composition-averaged gap curve: weights (compositions, pool), x, the curve and its b (eV)."""

    weights: np.ndarray
    x: np.ndarray
    gap: np.ndarray
    b: float

    @classmethod
    def of(cls, pool: CandidatePool, y: np.ndarray) -> CurveTruth:
        ref, w = composition_weights(pool.n_b, pool.multiplicity)  # every configuration, grouped by composition
        weights = np.zeros((len(w), len(pool)))
        weights[:, ref] = w  # columns in pool order, as the model's predictions are
        x = np.unique(pool.n_b) / pool.n_sites
        gap = weights @ y
        return cls(weights, x, gap, bowing(x, gap))


def bowing(x: np.ndarray, gap: np.ndarray) -> float:
    """Least-squares b of E_g(x) = (1-x) E_A + x E_B - b x(1-x) (NaN with fewer than 3 compositions)."""
    if len(x) < 3:
        return float("nan")
    return float(np.linalg.lstsq(bowing_design(x), gap, rcond=None)[0][2])


def replay_curve(pool: CandidatePool, y: np.ndarray, strategy, make_model, *, seed: int, budget: int,
                 fixed: list[int] | None = None, random_start: bool = False,
                 stop_at: tuple[float, float] | None = None, test: np.ndarray | None = None,
                 truth: CurveTruth | None = None, pretrained=None, batch: int = 1) -> dict:
    """Run one strategy on a fully labelled pool; errors over the whole pool after each label.

    Parameters
    ----------
    pool : labelled candidates only; ``y`` holds their gaps (eV).
    strategy : a [strategy] section (its ``kind`` is used; ``fixed`` means the
        fixed list ``fixed`` with a linear model on the first feature, x).
    make_model : the campaign's model factory (:func:`activemat.campaign.setup.model_factory`).
    seed : seed of the random picks.
    random_start : the first ``n_seed`` picks at random instead of space-filling.
    stop_at : (MAE, max error) in eV: stop once both have been reached at least once (held-out errors with
        ``test``).
    test : bool mask of held-out candidates, never offered.
    truth : the labels' gap curve, to track the model's curve error and b.
    pretrained : a fitted CoKriging of other data ([model] transfer_from): the model is then a co-kriging
        with it as the frozen cheap level, fine-tuned on the labels.
    batch : picks per refit (q workers whose results arrive together): each batch is chosen one pick at a time
        from the same fit, the picks already in it counted as running ("kriging believer"), then all q labels
        arrive and the model is refitted once. Errors are recorded after each refit only (NaN in between).

    Returns
    -------
    dict with ``picks`` and ``mae``/``max`` over the pool (index n = after n labels; NaN before a model
    exists); with ``test`` also ``test_mae``/``test_max``; with ``truth`` ``curve_mae`` (mean absolute error
    of the composition-averaged curve, eV) and ``b`` (the model curve's bowing parameter, eV).
    """
    rng = np.random.default_rng(seed)
    n = len(pool)
    is_fixed = strategy.kind == "fixed"
    if test is not None and fixed:
        fixed = [c for c in fixed if not test[c]]
    X = pool.features[:, :1] if is_fixed else pool.features
    if is_fixed:  # the seed tutorial's model: least squares on x alone, scaled by its own data
        make_model = model_factory(ModelSection(kind="linear"), seed)
    chooser = make_strategy(strategy.kind, strategy)
    free = np.ones(n, bool) if test is None else ~test
    budget = min(budget, int(free.sum()))
    names = ["mae", "max"] + (["test_mae", "test_max"] if test is not None else []) + (
        ["curve_mae", "b"] if truth is not None else [])
    curves = {k: np.full(budget + 1, np.nan) for k in names}
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    picks: list[int] = []
    model = mean = std = None
    schedule = RefitSchedule()  # the loop's refit policy: full searches as the training set grows by 10 %
    while len(picks) < budget:
        pending: list[int] = []
        while len(pending) < batch and len(picks) + len(pending) < budget:
            if random_start and len(picks) + len(pending) < strategy.n_seed and not is_fixed:
                pick = int(rng.choice(np.flatnonzero(free)))
            else:
                ctx = Context(pool=pool, free=free[None], rng=rng, model=model, X_train=pool.features[picks],
                              y_train=y[picks], running=[pool.features[pending]] if pending else [],
                              predictions=(mean, std) if model is not None else None, fixed=fixed or [])
                chosen, _ = choose(chooser, ctx, n_seed=strategy.n_seed, n_started=len(picks) + len(pending))
                if chosen is None:
                    break
                pick = chosen.candidate
            pending.append(pick)
            free[pick] = False
        if not pending:
            break
        picks += pending
        if len(picks) >= 2:
            model = _refit(make_model, pretrained, model, X[picks], y[picks], schedule)
            mean, std = model.predict(X, return_std=True)
            _record(curves, len(picks), mean, y, test, truth)
            mae, mx = (curves["mae"], curves["max"]) if test is None else (curves["test_mae"], curves["test_max"])
            if stop_at and np.nanmin(mae) <= stop_at[0] and np.nanmin(mx) <= stop_at[1]:
                break
    return {"picks": picks, **{k: v[:len(picks) + 1] for k, v in curves.items()}}


def _refit(make_model, pretrained, model, X: np.ndarray, y: np.ndarray, schedule: RefitSchedule):
    """The model of labels (``X``, ``y``) as the loop fits it: a co-kriging with ``pretrained`` as its frozen
    cheap level (each level on its own schedule), else ``make_model``'s model, warm-started from the previous
    ``model`` between the full searches of ``schedule``."""
    if pretrained is not None:
        return CoKriging(make_model, frozen=pretrained, warm=model).fit([(X, y)])
    return make_model(schedule.start(model, len(y))).fit(X, y)


def _record(curves: dict, at: int, mean: np.ndarray, y: np.ndarray, test: np.ndarray | None,
            truth: CurveTruth | None) -> None:
    """Store the errors of the model mean ``mean`` after ``at`` labels in ``curves``: over the pool, the
    held-out ``test`` candidates, and the composition-averaged curve and its b against ``truth``."""
    err = np.abs(mean - y)
    curves["mae"][at], curves["max"][at] = err.mean(), err.max()
    if test is not None:
        curves["test_mae"][at], curves["test_max"][at] = err[test].mean(), err[test].max()
    if truth is not None:
        model_curve = truth.weights @ mean
        curves["curve_mae"][at] = np.abs(model_curve - truth.gap).mean()
        curves["b"][at] = bowing(truth.x, model_curve)


def labels_to_reach(curve: np.ndarray, target: float) -> int | None:
    """First number of labels at which the error is at or below ``target`` (None if never).

    >>> labels_to_reach(np.array([np.nan, np.nan, 0.3, 0.05, 0.02, 0.04]), 0.05)
    3
    """
    hit = np.flatnonzero(np.nan_to_num(curve, nan=np.inf) <= target)
    return int(hit[0]) if len(hit) else None


# -- 2. the benchmark ------------------------------------------------------------------

def _summary(curves: list[np.ndarray]) -> dict[str, list]:
    length = max(len(c) for c in curves)
    grid = np.full((len(curves), length), np.nan)
    for r, c in enumerate(curves):
        grid[r, :len(c)] = c
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first fit
            return {"mean": np.nanmean(grid, 0).tolist(), "std": np.nanstd(grid, 0).tolist(),
                    "median": np.nanmedian(grid, 0).tolist(), "min": np.nanmin(grid, 0).tolist(),
                    "max": np.nanmax(grid, 0).tolist()}


def median_labels(values: list[int | None]) -> float | None:
    """Median over repeats, counting a repeat that never reached the target as +inf (None if most never did)."""
    v = np.array([np.inf if x is None else x for x in values], float)
    m = float(np.median(v))
    return None if not np.isfinite(m) else m


def labelled_pool(config, oracle: str | Path) -> tuple[CandidatePool, Labels, CandidatePool, np.ndarray]:
    """The campaign's candidate pool, the oracle's labels, the labelled candidates and their gaps (eV).

    For a ``sampled`` space the pool is the oracle's own structures in the campaign's cell
    (:func:`activemat.space.matching.load_labelled_pool`), so the labelled candidates are the whole pool.
    """
    sp = config.space
    if sp.mode == "sampled":
        full, labels = load_labelled_pool(oracle, sp.parent(), sp.supercell, cell=sp.cell, features=sp.features,
                                          cutoffs=sp.cutoffs)
    else:
        full = build_campaign_pool(config)
        labels = load_labels(oracle, full)
    if len(labels.gaps) < 3:
        raise InputError(f"{oracle}: only {len(labels.gaps)} structure(s) matched a candidate of this campaign's "
                         "[space]; replay needs at least 3 (check the campaign file's [space])")
    idx = np.array(sorted(labels.gaps))
    return full, labels, subpool(full, idx), np.array([labels.gaps[i] for i in idx])


def replay(config, oracle: str | Path, strategies=("max_std", "ivr", "random", "fixed"), *, repeats: int = 10,
           budget: int | None = None, target_mae: float = 0.01, target_max: float = 0.05,
           stop_at_targets: bool = False, random_start: bool = False, jobs: int = 1, held_out: float = 0.0,
           batch: int = 1, progress=None) -> dict:
    """Replay a campaign's strategies against labelled structures; a JSON-ready result.

    ``budget`` caps the labels per run (default: the whole labelled pool).
    ``held_out`` (0 to 0.9) holds that fraction of the labelled pool out of
    every run, drawn per repeat (the same for every strategy): the targets
    then apply to the error on it.
    ``stop_at_targets`` ends a run once both targets are reached (faster; the
    curve then stops there). ``jobs`` > 1 spreads the runs over that many
    processes; the result is the same as with one. ``batch`` picks are chosen per refit
    (:func:`replay_curve`).
    """
    _check_options(config, strategies, repeats=repeats, jobs=jobs, batch=batch, held_out=held_out)
    full, labels, pool, y = labelled_pool(config, oracle)
    n_test = int(round(held_out * len(pool)))
    budget = min(budget or len(pool), len(pool) - n_test)
    truth = CurveTruth.of(pool, y)
    transfer = config.model.transfer_from
    for s in strategies if transfer else ():
        if STRATEGIES[s].uses_model and s != "max_std":
            raise InputError(f"replay with [model] transfer_from fits a co-kriging model; strategy {s!r} needs a "
                             "single Gaussian process: use max_std or random")
    # fitted once: the previous campaign's data do not change between repeats
    pretrained = pretrain(transfer, full, model_factory(config.model, config.campaign.seed, full)) if transfer else None
    formulas = list(config.strategy.fixed) or tutorial_formulas(pool)
    result = {
        "campaign": config.campaign.name, "oracle": str(oracle), "frames": labels.frames,
        "matched": len(labels.gaps), "matched_by": labels.how, "duplicates": labels.duplicates,
        "skipped": len(labels.skipped), "unmatched": labels.unmatched, "pool_size": len(full),
        "labelled_pool": len(pool), "complete": len(pool) == len(full), "budget": budget, "repeats": repeats,
        "model": config.model.model_dump(mode="json"), "features": config.space.features,
        "transfer_from": transfer,
        "n_seed": config.strategy.n_seed, "held_out": n_test, "batch": batch,
        "random_start": random_start, "targets": {"mae": target_mae, "max": target_max},
        "gap_range": [float(y.min()), float(y.max())], "b": truth.b, "strategies": {}}
    tasks = []  # (strategy, repeat, replay_curve arguments)
    for s in strategies:
        strat = config.strategy.model_copy(update={"kind": s})
        fixed = fixed_design(pool, formulas) if s == "fixed" else []
        for r in range(1 if s == "fixed" else repeats):  # the fixed design is deterministic
            seed = config.campaign.seed + r
            test = None
            if n_test:  # its own stream per repeat, the same for every strategy
                test = np.zeros(len(pool), bool)
                test[np.random.default_rng([config.campaign.seed, r, 11]).choice(len(pool), n_test, replace=False)] = True
            kwargs = dict(seed=seed, budget=budget, fixed=fixed, random_start=random_start, test=test, truth=truth,
                          batch=1 if s == "fixed" else batch,
                          stop_at=(target_mae, target_max) if stop_at_targets else None)
            # the loop's model, its features scaled by the whole pool (known before any label)
            make_model = model_factory(config.model, seed, full)
            if transfer and s != "fixed":
                kwargs["pretrained"] = pretrained
            tasks.append((s, r, (pool, y, strat, make_model), kwargs))
    runs: dict[str, list[dict]] = {s: [] for s in strategies}
    for (s, r, _, _), run in zip(tasks, _run_all(tasks, jobs)):
        runs[s].append(run)
        if progress:
            progress(f"{s}: run {r + 1} done, {len(run['picks'])} labels, final MAE {run['mae'][-1]:.4f} eV")
    err = ("test_mae", "test_max") if n_test else ("mae", "max")  # what the targets apply to
    for s in strategies:
        tutorial = s == "fixed"
        result["strategies"][s] = _strategy_result(
            runs[s], err, (target_mae, target_max), design=formulas if tutorial else None,
            model="linear on x (seed tutorial)" if tutorial else config.model.kind)
    return result


def _check_options(config, strategies, *, repeats: int, jobs: int, batch: int, held_out: float) -> None:
    """Refuse strategies the campaign cannot run and out-of-range replay options (InputError)."""
    for s in strategies:
        if s not in campaign_kinds():
            raise InputError(f"unknown strategy {s!r}; use some of {', '.join(campaign_kinds())}")
        if STRATEGIES[s].needs_target_gap and config.strategy.target_gap is None:
            raise InputError(f"strategy {s!r} needs [strategy] target_gap in the campaign file")
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    if not 0 <= held_out <= 0.9:
        raise InputError(f"--held-out is the fraction of labelled structures never offered, 0 to 0.9; got {held_out}")


def _strategy_result(runs: list[dict], err: tuple[str, str], targets: tuple[float, float], *, model: str,
                     design: list[str] | None) -> dict:
    """One strategy's part of the replay result from its runs; ``err`` names the (MAE, max) curves the
    ``targets`` apply to."""
    to_mae = [labels_to_reach(run[err[0]], targets[0]) for run in runs]
    to_max = [labels_to_reach(run[err[1]], targets[1]) for run in runs]
    return {
        "model": model, "design": design,
        "repeats": len(runs), "seconds": round(sum(run["seconds"] for run in runs), 2),
        "mae": _summary([run["mae"] for run in runs]), "max": _summary([run["max"] for run in runs]),
        "labels_to_mae": to_mae, "labels_to_max": to_max,
        "median_labels_to_mae": median_labels(to_mae), "median_labels_to_max": median_labels(to_max),
        **{k: _summary([run[k] for run in runs]) for k in ("test_mae", "test_max", "curve_mae", "b")
           if k in runs[0]},
        "runs": {k: [run[k].tolist() for run in runs] for k in runs[0] if k not in ("picks", "seconds")},
        "final_mae": [float(run[err[0]][-1]) for run in runs],
        "final_max": [float(run[err[1]][-1]) for run in runs],
        "picks": [run["picks"] for run in runs]}


def _timed_curve(args, kwargs) -> dict:
    started = time.perf_counter()
    run = replay_curve(*args, **kwargs)
    run["seconds"] = time.perf_counter() - started
    return run


def _run_all(tasks: list, jobs: int):
    """Every replay run, in task order: in this process, or spread over ``jobs`` processes (runs are independent)."""
    if jobs <= 1 or len(tasks) <= 1:
        for *_, args, kwargs in tasks:
            yield _timed_curve(args, kwargs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(tasks))) as executor:
        yield from executor.map(_timed_curve, *zip(*[(args, kwargs) for *_, args, kwargs in tasks]))


def to_json(result: dict) -> str:
    """JSON with NaN and infinities as null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.floating):
            return clean(float(v))
        return v
    return json.dumps(clean(result))


#: Console width of :func:`render` when its output is not a terminal (a file, a pipe): wide enough for any table.
PIPED_WIDTH = 1000


def render(result: dict, console=None) -> None:
    """Print the matching summary, the labels each strategy needs, and the learning curves."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        # On a terminal, its width; piped or redirected, rich would assume 80 columns and cut or fold the
        # tables: give them all the width they need instead (one line per row, whatever reads the output).
        console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH, soft_wrap=not sys.stdout.isatty())
    console.print(f"oracle {result['oracle']}: {result['frames']} frames, {result['matched']} matched "
                  f"({', '.join(f'{v} by {k}' for k, v in result['matched_by'].items()) or 'none'}), "
                  f"{len(result['unmatched'])} unmatched, {result['skipped']} without a gap, "
                  f"{result['duplicates']} duplicates; labelled pool {result['labelled_pool']} of {result['pool_size']}"
                  + ("" if result["complete"] else " (INCOMPLETE: errors are over the labelled candidates only)"))
    for u in result["unmatched"][:10]:
        console.print(f"  unmatched frame {u['frame']} ({u['formula']}): {u['reason']}")
    if len(result["unmatched"]) > 10:
        console.print(f"  ... and {len(result['unmatched']) - 10} more")
    t, held = result["targets"], result.get("held_out", 0)
    on = f"held-out ({held} structures never offered)" if held else "pool"
    table = Table(title=f"labels needed to the {on} error (median over repeats; budget {result['budget']}); "
                        f"labels' curve b = {result['b']:.3f} eV")
    for col in ("strategy", "model", "repeats", f"MAE <= {t['mae']:g} eV", "reached", f"max <= {t['max']:g} eV",
                "reached", "final MAE (eV)", "final max (eV)", "final curve MAE (eV)", "final b (eV)"):
        table.add_column(col, justify="left" if col in ("strategy", "model") else "right")
    for name, s in result["strategies"].items():
        def med(v):
            return "-" if v is None else f"{v:g}"

        def last(key, fmt):
            values = [v for v in s[key]["median"] if v is not None and np.isfinite(v)] if key in s else []
            return format(values[-1], fmt) if values else "-"
        reached = sum(v is not None for v in s["labels_to_mae"]), sum(v is not None for v in s["labels_to_max"])
        table.add_row(name, s["model"], str(s["repeats"]), med(s["median_labels_to_mae"]),
                      f"{reached[0]}/{s['repeats']}", med(s["median_labels_to_max"]), f"{reached[1]}/{s['repeats']}",
                      f"{np.median(s['final_mae']):.4f}", f"{np.median(s['final_max']):.4f}",
                      last("curve_mae", ".4f"), last("b", ".3f"))
    console.print(table)
    key = "test_mae" if held else "mae"
    curve = Table(title=f"learning curve: {on} MAE / max error (eV), mean ± std over repeats")
    curve.add_column("labels", justify="right")
    names = list(result["strategies"])
    for name in names:
        curve.add_column(name, justify="right")
    length = max(len(s[key]["mean"]) for s in result["strategies"].values())
    mx = "test_max" if held else "max"
    for n in _checkpoints(length - 1):
        row = [str(n)]
        for name in names:
            s = result["strategies"][name]
            if n < len(s[key]["mean"]) and s[key]["mean"][n] is not None and np.isfinite(s[key]["mean"][n]):
                row.append(f"{s[key]['mean'][n]:.4f}±{s[key]['std'][n]:.4f} / {s[mx]['mean'][n]:.3f}")
            else:
                row.append("")
        curve.add_row(*row)
    console.print(curve)


def _checkpoints(last: int) -> list[int]:
    """Label counts shown in the curve table.

    >>> _checkpoints(12)
    [2, 3, 4, 5, 6, 8, 10, 12]
    """
    pts = [2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 350, 402]
    return [p for p in pts if p <= last] + ([last] if last > 1 and last not in pts else [])


def main_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
