"""What the live page shows, computed from a store alone: plain columns for each plot and table.

A :class:`Frame` is one reading of a store, built by :func:`read_frame`
from :func:`activemat.campaign.stored.open_campaign` (a read-only reader,
safe while a campaign writes the store). It never refits a model: the
model's mean and std over the pool come from the store's latest snapshot,
which the campaign wrote after its last refit, so a frame costs a read and
some numpy, whatever the model.

What a frame holds (each source a dict of equal-length columns, ready for
a Bokeh ``ColumnDataSource``):

- ``configs``: every configuration's model mean and 2-sigma range, placed
  at its alloying fraction spread sideways within its composition, ordered
  by predicted gap, so each one is visible (``x_plot``);
- ``curve``: the multiplicity-weighted average of the model mean per
  composition, with a band of two model stds of that average: from the joint
  posterior (:func:`activemat.analysis.curve.gap_curve`) when the latest
  snapshot stores its model's hyperparameters (store schema 5 on; the model is
  rebuilt from them, not optimised, once per snapshot), else the weighted
  average of the stds, an upper bound that takes the configurations' errors as
  fully correlated (``Frame.curve_band`` says which);
- ``experiment``: the measured SiGe gap (Weber and Alonso) for Si-Ge stores;
- ``computed``: calculations by ``kind`` (:data:`KINDS`): results of each
  preset, held-out results, running ones and failed ones (placed at the
  model mean, as they have no gap);
- ``learning``: CV, baseline and test MAE and max posterior std against the
  number of results;
- ``parity``: each result against the model's prediction for it just before
  it was submitted (the latest snapshot older than the submission: a
  prediction made without that result);
- ``picks``, ``running``, ``failures``: the latest rows of each, newest first.

>>> _bar(3, 10)
'███░░░░░░░'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from activemat.analysis.experiment import CITATION_SHORT, ELEMENTS, weber_alonso_gap
from activemat.campaign.ledger import TEST
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import StoreError
from activemat.store import schema as S

#: ``kind`` values of the ``computed`` source besides one per preset (``"ok:<preset>"``).
TESTED, RUNNING, FAILED = "tested", "running", "failed"
#: Configurations drawn at most in the gap plot (a seeded subsample of larger pools; computed ones always).
MAX_CONFIGS = 4000
#: Rows in the picks and failures tables.
N_PICKS, N_FAILURES = 15, 10
#: Width of the sideways spread of a composition's configurations, as a fraction of the composition step.
SPREAD = 0.5


def ok_kind(preset: str) -> str:
    """The ``computed`` source's kind of a successful result at ``preset``.

    >>> ok_kind("gpaw-fast")
    'ok:gpaw-fast'
    """
    return f"ok:{preset}"


@dataclass
class Frame:
    """One reading of a store: the header's facts and every source's columns.

    Attributes
    ----------
    path
        The store.
    read_at
        When it was read (s since epoch).
    header
        Facts for the page's header: campaign name, presets (cheap to accurate), model and
        strategy kind, budget, the counts of ``activemat status`` (``completed``, ``running``,
        ``failed``, ``given_up``, ``to_retry``, ``interrupted``), ``driver_running``, the latest
        snapshot's errors, ``x_label`` and ``elements``.
    sources
        Source name -> column name -> values (numpy arrays or lists), as the module docstring lists.
    error
        Why the store could not be read (then ``sources`` is empty); None when it was.
    note
        Why a later reading failed while this one is still shown (e.g. a resume swapping the file in).
    """

    path: str
    read_at: float
    header: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    error: str | None = None
    note: str = ""


_JOINT: dict[tuple[str, int], dict[int, float] | None] = {}  # (store, snapshots) -> joint stds per n_b


def _joint_stds(view: CampaignView) -> dict[int, float] | None:
    """Joint-posterior std of each composition's average (by n_b), from the model the latest snapshot stores;
    None when it stores none (the page then shows the bound) or the model has no joint covariance.

    Computed once per snapshot (a GP fit with fixed hyperparameters and one covariance per composition),
    never by optimising hyperparameters.
    """
    from activemat.analysis.curve import gap_curve
    from activemat.analysis.model import fit_store_model

    snaps = view.data.snapshots
    key = (str(view.path), len(snaps["iteration"]))
    if key not in _JOINT:
        stored = len(snaps["iteration"]) and str(snaps.get("hyperparameters", [""])[-1])
        joint = None
        if stored:
            sm = fit_store_model(view)
            if sm.snapshot is not None:
                curve = gap_curve(sm, n_samples=200)
                if curve["covariance"].startswith("joint"):
                    joint = {int(c["n_b"]): float(c["model_std"]) for c in curve["compositions"]}
        _JOINT.clear()  # one store per page: keep the latest reading only
        _JOINT[key] = joint
    return _JOINT[key]


def _latest(snaps: dict, name: str) -> float:
    values = snaps.get(name, [])
    return float(values[-1]) if len(values) else float("nan")


def _spread_x(x: np.ndarray, n_b: np.ndarray, order_by: np.ndarray, step: float) -> np.ndarray:
    """Each configuration's x moved sideways within its composition, in order of ``order_by``."""
    out = x.astype(float).copy()
    for k in np.unique(n_b):
        idx = np.flatnonzero(n_b == k)
        if len(idx) > 1:
            rank = np.empty(len(idx))
            rank[np.argsort(order_by[idx], kind="stable")] = np.arange(len(idx))
            out[idx] += (rank / (len(idx) - 1) - 0.5) * SPREAD * step
    return out


def _shown(n: int, keep: np.ndarray, limit: int = MAX_CONFIGS) -> np.ndarray:
    """Indices of the configurations to draw: all up to ``limit``, else a seeded subsample plus ``keep``."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(0)
    return np.union1d(rng.choice(n, limit, replace=False), keep)


def _snapshot_for(snaps: dict, submitted: np.ndarray, iteration: np.ndarray) -> np.ndarray:
    """Row of the latest snapshot written before each submission (-1: none), by time, else by iteration."""
    times = np.asarray(snaps.get("time", []), float)
    if len(times) and np.all(np.isfinite(times)) and np.all(np.isfinite(submitted)):
        return np.searchsorted(times, submitted, side="right") - 1
    # a calculation picked at model iteration k was picked by the model of snapshot k - 1
    snap_iter = np.asarray(snaps.get("iteration", []), int)
    pos = {int(it): i for i, it in enumerate(snap_iter)}
    return np.array([pos.get(int(k) - 1, -1) for k in iteration], int)


def _per_n_train(snaps: dict) -> np.ndarray:
    """Snapshot rows to plot against training size: the last one of each size (a failure refits on the same
    data)."""
    n = np.asarray(snaps.get("n_train", []))
    return np.array([i for i in range(len(n)) if i == len(n) - 1 or n[i + 1] != n[i]], dtype=int)


def _positive(values: np.ndarray) -> np.ndarray:
    """Values for a log axis: NaN where not positive."""
    values = np.asarray(values, float)
    return np.where(values > 0, values, np.nan)


def _bar(done: int, total: int, width: int = 10) -> str:
    filled = int(round(width * min(done, total) / total)) if total else 0
    return "█" * filled + "░" * (width - filled)


def _text(values) -> list[str]:
    return [str(v) for v in values]


def read_frame(store: str | Path | CampaignView, *, assigned: dict | None = None, budget: int | None = None,
               now: float | None = None) -> Frame:
    """Read a store once and compute everything the page shows.

    Parameters
    ----------
    store : the store's path (read now, safe while a campaign writes it), or an open view.
    assigned : (preset, candidate, attempt) -> name of the Dask worker the calculation was sent to,
        for the running table (the store learns the worker only with the result); from
        :class:`activemat.analysis.view.server.DaskLink` when the page runs beside the driver.
    budget : the run's budget, when it is known to differ from the stored campaign file's (``run --budget``).
    now : the time the frame is for (default: now).

    Returns
    -------
    Frame
        With ``error`` set, and no sources, when the store cannot be read.
    """
    now = time.time() if now is None else now
    path = str(store.path if isinstance(store, CampaignView) else store)
    try:
        view = open_campaign(store)
    except StoreError as exc:
        return Frame(path, now, error=str(exc))
    assigned = assigned or {}
    data = view.data
    config = view.config()
    budget = int(config.stop.budget if budget is None else budget)
    status = view.status()
    live = bool(status["driver_running"])
    presets = list(config.calculator.presets)
    top = view.preset
    snaps = data.snapshots
    a, b = view.elements
    cand = data.candidates
    n_pool = len(cand["n_b"])
    x_b, n_b = cand["x_b"].astype(float), cand["n_b"].astype(int)
    formulas = view.formulas()
    test = view.test

    have_model = len(snaps.get("pool_mean", [])) > 0
    mean = snaps["pool_mean"][-1].astype(float) if have_model else np.full(n_pool, np.nan)
    std = snaps["pool_std"][-1].astype(float) if have_model else np.full(n_pool, np.nan)

    calc = data.calculations
    rows = np.arange(len(calc["candidate"]))
    c = calc["candidate"].astype(int)
    known = (c >= 0) & (c < n_pool)
    st = calc["status"]
    preset_col = calc["preset"]
    step = 1.0 / view.n_sites
    x_plot = _spread_x(x_b, n_b, np.nan_to_num(mean, nan=0.0) if have_model else np.arange(n_pool, dtype=float),
                       step)

    # -- the configurations and the composition average -----------------------------------------
    shown = _shown(n_pool, np.unique(c[known]))
    state = np.full(n_pool, "not computed", dtype=object)
    gap_of = np.full(n_pool, np.nan)
    for r in rows[known]:  # row order: the last attempt's state wins
        state[c[r]] = st[r] if st[r] != S.OK else f"{S.OK} ({preset_col[r]})"
        if st[r] == S.OK and preset_col[r] == top:
            gap_of[c[r]] = calc["gap"][r]
    configs = {"x": x_b[shown], "x_plot": x_plot[shown], "mean": mean[shown], "std": std[shown],
               "lower": (mean - 2 * std)[shown], "upper": (mean + 2 * std)[shown],
               "formula": _text(formulas[shown]), "candidate": shown, "state": _text(state[shown]),
               "gap": gap_of[shown], "test": test[shown].astype(int)}
    curve = {"x": [], "mean": [], "bound": [], "lower": [], "upper": [], "formula": [], "n": []}
    joint = _joint_stds(view) if have_model else None
    if have_model:
        for k in np.unique(n_b):
            idx = np.flatnonzero(n_b == k)
            w = cand["multiplicity"][idx].astype(float)
            w /= w.sum()
            mu, bound = float(w @ mean[idx]), float(w @ std[idx])
            band = joint.get(int(k), bound) if joint else bound
            for key, value in (("x", k / view.n_sites), ("mean", mu), ("bound", bound), ("lower", mu - 2 * band),
                               ("upper", mu + 2 * band), ("formula", str(formulas[idx[0]])), ("n", len(idx))):
                curve[key].append(value)
    experiment = {"x": [], "gap": []}
    if (a, b) == ELEMENTS:
        xs = np.linspace(0.0, 1.0, 201)
        experiment = {"x": xs, "gap": weber_alonso_gap(xs)}

    # -- the calculations by kind -----------------------------------------------------------------
    kind = np.full(len(rows), "", dtype=object)
    ok = st == S.OK
    for p in presets:
        kind[ok & (preset_col == p)] = ok_kind(p)
    is_test = np.zeros(len(rows), bool)
    is_test[known] = test[c[known]]
    kind[ok & is_test & (preset_col == top)] = TESTED
    kind[(st == S.RUNNING) & live] = RUNNING
    kind[(st == S.FAILED) | (st == S.INTERRUPTED) | ((st == S.RUNNING) & (not live))] = FAILED
    sel = known & (kind != "")
    ci = c[sel]
    at_model = mean[ci]
    y = np.where(np.isfinite(calc["gap"][sel]) & ok[sel], calc["gap"][sel], at_model)
    computed = {"x": x_b[ci], "x_plot": x_plot[ci], "y": y, "kind": _text(kind[sel]), "row": rows[sel],
                "formula": _text(formulas[ci]), "candidate": ci, "preset": _text(preset_col[sel]),
                "status": _text(st[sel]), "reason": _text(calc["reason"][sel]),
                "gap": np.where(ok[sel], calc["gap"][sel], np.nan), "mean": at_model, "std": std[ci]}

    # -- the learning curve -----------------------------------------------------------------------
    keep = _per_n_train(snaps)
    learning = {name: _positive(np.asarray(snaps[name], float)[keep]) if len(keep) else np.zeros(0)
                for name in ("cv_mae", "baseline_mae", "test_mae", "max_std")}
    learning["n"] = np.asarray(snaps.get("n_train", []), int)[keep] if len(keep) else np.zeros(0, int)

    # -- predictions made before each result --------------------------------------------------------
    snap_row = _snapshot_for(snaps, calc["submitted"].astype(float), calc["iteration"].astype(int))
    par = ok & known & (preset_col == top) & np.isfinite(calc["gap"]) & (snap_row >= 0)
    pr, pc = snap_row[par], c[par]
    predicted = snaps["pool_mean"][pr, pc].astype(float) if len(pr) else np.zeros(0)
    pred_std = snaps["pool_std"][pr, pc].astype(float) if len(pr) else np.zeros(0)
    dft = calc["gap"][par].astype(float)
    parity = {"dft": dft, "predicted": predicted, "lower": predicted - 2 * pred_std,
              "upper": predicted + 2 * pred_std, "x": x_b[pc], "formula": _text(formulas[pc]), "row": rows[par],
              "n_train": np.asarray(snaps.get("n_train", np.zeros(0)), int)[pr] if len(pr) else np.zeros(0, int),
              "test": is_test[par].astype(int)}
    parity_mae = float(np.mean(np.abs(predicted - dft))) if len(dft) else float("nan")

    # -- the tables ---------------------------------------------------------------------------------
    def at_pick(r: int) -> str:
        i = snap_row[r]
        if i < 0 or not known[r] or preset_col[r] != top:
            return ""
        return f"{snaps['pool_mean'][i][c[r]]:.3f} ± {snaps['pool_std'][i][c[r]]:.3f}"

    last = rows[::-1][:N_PICKS]
    picks = {"row": last, "formula": _text(np.where(known[last], formulas[np.where(known, c, 0)][last], "?")),
             "x": np.where(known[last], x_b[np.where(known, c, 0)][last], np.nan),
             "preset": _text(preset_col[last]), "reason": _text(calc["reason"][last]),
             "score": calc["score"][last].astype(float), "iteration": calc["iteration"][last].astype(int),
             "at_pick": [at_pick(r) for r in last], "status": _text(st[last]),
             "gap": calc["gap"][last].astype(float)}

    wall = calc["finished"] - calc["started"]
    expected = {p: float(np.median(wall[ok & (preset_col == p)])) if np.any(ok & (preset_col == p)) else np.nan
                for p in presets}
    run_rows = rows[(st == S.RUNNING) & live]
    running = {"row": run_rows, "candidate": c[run_rows], "formula": _text(formulas[c[run_rows]]),
               "preset": _text(preset_col[run_rows]),
               "attempt": calc["attempt"][run_rows].astype(int),
               "worker": [assigned.get((str(preset_col[r]), int(c[r]), int(calc["attempt"][r])), "")
                          for r in run_rows],
               "submitted": calc["submitted"][run_rows].astype(float),
               "expected": np.array([expected.get(p, np.nan) for p in preset_col[run_rows]], float)}

    bad = rows[(st == S.FAILED) | (st == S.INTERRUPTED) | ((st == S.RUNNING) & (not live))][::-1][:N_FAILURES]
    errors = [calc["error"][r] if st[r] == S.FAILED else "interrupted: the driver stopped before the result "
              "(a resumed run computes it again)" for r in bad]
    failures = {"row": bad, "formula": _text(formulas[np.where(known, c, 0)[bad]]),
                "preset": _text(preset_col[bad]), "attempt": calc["attempt"][bad].astype(int),
                "worker": _text(calc["worker"][bad]), "error": errors}

    header = {
        "store": path, "name": config.campaign.name, "presets": presets, "preset": top,
        "model": config.model.kind, "strategy": config.strategy.kind, "budget": budget,
        "elements": [a, b], "x_label": f"{b} fraction x in {a}(1-x){b}(x)", "n_candidates": int(n_pool),
        "n_shown": int(len(shown)), "driver_running": live, "curve_band": "joint" if joint else "bound",
        **{k: int(status[k]) for k in ("completed", "running", "failed", "given_up", "interrupted")},
        # status reads a running row as one a resumed run would redo; beside a live driver it is just running
        "to_retry": max(int(status["to_retry"]) - (int(status["running"]) if live else 0), 0),
        "trained": int(np.sum(ok & (preset_col == top) & ~is_test)),
        "tested": int(np.sum(ok & (preset_col == top) & is_test)),
        "n_train": int(status["n_train"]), "cv_mae": status["cv_mae"], "baseline_mae": status["baseline_mae"],
        "max_std": status["max_std"], "test_mae": _latest(snaps, "test_mae"), "model_text": status["model"],
        "parity_mae": parity_mae, "n_parity": int(len(dft)), "expected": expected,
        "last_row": float(np.nanmax(np.concatenate([calc["submitted"], calc["finished"]]))) if len(rows) else None,
        "progress": _bar(int(np.sum(ok & (preset_col == top) & ~is_test)), budget),
        "citation": CITATION_SHORT if (a, b) == ELEMENTS else "", "test_reason": TEST,
    }
    sources = {"configs": configs, "curve": curve, "experiment": experiment, "computed": computed,
               "learning": learning, "parity": parity, "picks": picks, "running": running, "failures": failures}
    return Frame(path, now, header=header, sources=sources)


def waiting_frame(path: str | Path, now: float | None = None) -> Frame:
    """The frame of a store that does not exist yet (a campaign creates it on its first run)."""
    return Frame(str(path), time.time() if now is None else now,
                 error=f"waiting for {path}: a campaign creates it when it starts")
