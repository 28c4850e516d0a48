"""What the live page shows, computed from a store alone: plain columns for each plot and table.

A :class:`Frame` is one reading of a store, built by :func:`read_frame`
from the store as :func:`activemat.store.read.read_store` reads it (read-only,
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
- ``experiment``: the measured gap of the store's system where a file is shipped (Si-Ge: Weber and Alonso);
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

from activemat.analysis.experiment import measured_for_parent
from activemat.campaign.ledger import TEST
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import StoreError
from activemat.store import schema as S
from activemat.space.formula import composition_label

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

    snaps = view.snapshots
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


@dataclass(frozen=True)
class _Reading:
    """The columns of one reading that every source is computed from: candidates, the latest model's mean and
    std over the pool, and the calculations with their candidate, status and preset."""

    view: CampaignView
    snaps: dict
    calc: dict
    presets: list
    top: str
    live: bool
    n_pool: int
    x_b: np.ndarray
    n_b: np.ndarray
    multiplicity: np.ndarray
    formulas: np.ndarray
    test: np.ndarray
    have_model: bool
    mean: np.ndarray
    std: np.ndarray
    x_plot: np.ndarray
    rows: np.ndarray
    c: np.ndarray
    known: np.ndarray
    st: np.ndarray
    preset_col: np.ndarray
    ok: np.ndarray
    is_test: np.ndarray


def _reading(view: CampaignView, presets: list, live: bool) -> _Reading:
    """The store's candidates, latest model and calculations as the columns of a reading."""
    snaps, cand, calc = view.snapshots, view.candidates, view.calculations
    n_pool = len(cand["n_b"])
    x_b, n_b = cand["x_b"].astype(float), cand["n_b"].astype(int)
    formulas, test = view.formulas(), view.test
    have_model = len(snaps.get("pool_mean", [])) > 0
    mean = snaps["pool_mean"][-1].astype(float) if have_model else np.full(n_pool, np.nan)
    std = snaps["pool_std"][-1].astype(float) if have_model else np.full(n_pool, np.nan)
    rows = np.arange(len(calc["candidate"]))
    c = calc["candidate"].astype(int)
    known = (c >= 0) & (c < n_pool)
    st = calc["status"]
    x_plot = _spread_x(x_b, n_b, np.nan_to_num(mean, nan=0.0) if have_model else np.arange(n_pool, dtype=float),
                       1.0 / view.n_sites)
    is_test = np.zeros(len(rows), bool)
    is_test[known] = test[c[known]]
    return _Reading(view=view, snaps=snaps, calc=calc, presets=presets, top=view.preset, live=live, n_pool=n_pool,
                    x_b=x_b, n_b=n_b, multiplicity=cand["multiplicity"], formulas=formulas, test=test,
                    have_model=have_model, mean=mean, std=std, x_plot=x_plot, rows=rows, c=c, known=known, st=st,
                    preset_col=calc["preset"], ok=st == S.OK, is_test=is_test)


def _configs(r: _Reading) -> tuple[dict, np.ndarray]:
    """The ``configs`` source and the candidates it shows."""
    c, st, preset_col, mean, std = r.c, r.st, r.preset_col, r.mean, r.std
    shown = _shown(r.n_pool, np.unique(c[r.known]))
    state = np.full(r.n_pool, "not computed", dtype=object)
    gap_of = np.full(r.n_pool, np.nan)
    for i in r.rows[r.known]:  # row order: the last attempt's state wins
        state[c[i]] = st[i] if st[i] != S.OK else f"{S.OK} ({preset_col[i]})"
        if st[i] == S.OK and preset_col[i] == r.top:
            gap_of[c[i]] = r.calc["gap"][i]
    configs = {"x": r.x_b[shown], "x_plot": r.x_plot[shown], "mean": mean[shown], "std": std[shown],
               "lower": (mean - 2 * std)[shown], "upper": (mean + 2 * std)[shown],
               "formula": _text(r.formulas[shown]), "candidate": shown, "state": _text(state[shown]),
               "gap": gap_of[shown], "test": r.test[shown].astype(int)}
    return configs, shown


def _curve(r: _Reading, joint: dict[int, float] | None) -> dict:
    """The ``curve`` source, with the band of the joint posterior where ``joint`` has it."""
    curve = {"x": [], "mean": [], "bound": [], "lower": [], "upper": [], "formula": [], "n": []}
    if not r.have_model:
        return curve
    for k in np.unique(r.n_b):
        idx = np.flatnonzero(r.n_b == k)
        w = r.multiplicity[idx].astype(float)
        w /= w.sum()
        mu, bound = float(w @ r.mean[idx]), float(w @ r.std[idx])
        band = joint.get(int(k), bound) if joint else bound
        for key, value in (("x", k / r.view.n_sites), ("mean", mu), ("bound", bound), ("lower", mu - 2 * band),
                           ("upper", mu + 2 * band), ("formula", str(r.formulas[idx[0]])), ("n", len(idx))):
            curve[key].append(value)
    return curve


def _experiment(parent) -> dict:
    """The ``experiment`` source: the measured gap of the store's system, from its shipped measured-gap file
    (Weber-Alonso for Si-Ge); empty where none is shipped."""
    xs = np.linspace(0.0, 1.0, 201)
    measured = measured_for_parent(parent)
    return {"x": xs, "gap": measured.gap(xs)} if measured is not None else {"x": [], "gap": []}


def _computed(r: _Reading) -> dict:
    """The ``computed`` source, calculations by ``kind``."""
    st, preset_col, calc, ok = r.st, r.preset_col, r.calc, r.ok
    kind = np.full(len(r.rows), "", dtype=object)
    for p in r.presets:
        kind[ok & (preset_col == p)] = ok_kind(p)
    kind[ok & r.is_test & (preset_col == r.top)] = TESTED
    kind[(st == S.RUNNING) & r.live] = RUNNING
    kind[(st == S.FAILED) | (st == S.INTERRUPTED) | ((st == S.RUNNING) & (not r.live))] = FAILED
    sel = r.known & (kind != "")
    ci = r.c[sel]
    at_model = r.mean[ci]
    y = np.where(np.isfinite(calc["gap"][sel]) & ok[sel], calc["gap"][sel], at_model)
    return {"x": r.x_b[ci], "x_plot": r.x_plot[ci], "y": y, "kind": _text(kind[sel]), "row": r.rows[sel],
            "formula": _text(r.formulas[ci]), "candidate": ci, "preset": _text(preset_col[sel]),
            "status": _text(st[sel]), "reason": _text(calc["reason"][sel]),
            "gap": np.where(ok[sel], calc["gap"][sel], np.nan), "mean": at_model, "std": r.std[ci]}


def _learning(snaps: dict) -> dict:
    """The ``learning`` source, errors and max std against the number of results."""
    keep = _per_n_train(snaps)
    learning = {name: _positive(np.asarray(snaps[name], float)[keep]) if len(keep) else np.zeros(0)
                for name in ("cv_mae", "baseline_mae", "test_mae", "max_std")}
    learning["n"] = np.asarray(snaps.get("n_train", []), int)[keep] if len(keep) else np.zeros(0, int)
    return learning


def _parity(r: _Reading, snap_row: np.ndarray) -> dict:
    """The ``parity`` source, each result against the prediction of the snapshot in ``snap_row``."""
    snaps, calc = r.snaps, r.calc
    par = r.ok & r.known & (r.preset_col == r.top) & np.isfinite(calc["gap"]) & (snap_row >= 0)
    pr, pc = snap_row[par], r.c[par]
    predicted = snaps["pool_mean"][pr, pc].astype(float) if len(pr) else np.zeros(0)
    pred_std = snaps["pool_std"][pr, pc].astype(float) if len(pr) else np.zeros(0)
    return {"dft": calc["gap"][par].astype(float), "predicted": predicted, "lower": predicted - 2 * pred_std,
            "upper": predicted + 2 * pred_std, "x": r.x_b[pc], "formula": _text(r.formulas[pc]), "row": r.rows[par],
            "n_train": np.asarray(snaps.get("n_train", np.zeros(0)), int)[pr] if len(pr) else np.zeros(0, int),
            "test": r.is_test[par].astype(int)}


def _picks(r: _Reading, snap_row: np.ndarray) -> dict:
    """The ``picks`` table, the latest rows with the prediction at their pick."""
    snaps, calc, c, known = r.snaps, r.calc, r.c, r.known

    def at_pick(i: int) -> str:
        s = snap_row[i]
        if s < 0 or not known[i] or r.preset_col[i] != r.top:
            return ""
        return f"{snaps['pool_mean'][s][c[i]]:.3f} ± {snaps['pool_std'][s][c[i]]:.3f}"

    last = r.rows[::-1][:N_PICKS]
    return {"row": last, "formula": _text(np.where(known[last], r.formulas[np.where(known, c, 0)][last], "?")),
            "x": np.where(known[last], r.x_b[np.where(known, c, 0)][last], np.nan),
            "preset": _text(r.preset_col[last]), "reason": _text(calc["reason"][last]),
            "score": calc["score"][last].astype(float), "iteration": calc["iteration"][last].astype(int),
            "at_pick": [at_pick(i) for i in last], "status": _text(r.st[last]),
            "gap": calc["gap"][last].astype(float)}


def _expected(r: _Reading) -> dict:
    """Median wall time (s) of the successful calculations of each preset (NaN: none yet)."""
    wall = r.calc["finished"] - r.calc["started"]
    return {p: float(np.median(wall[r.ok & (r.preset_col == p)])) if np.any(r.ok & (r.preset_col == p)) else np.nan
            for p in r.presets}


def _running(r: _Reading, assigned: dict, expected: dict) -> dict:
    """The ``running`` table, with each calculation's worker from ``assigned``."""
    calc, c, preset_col = r.calc, r.c, r.preset_col
    run_rows = r.rows[(r.st == S.RUNNING) & r.live]
    return {"row": run_rows, "candidate": c[run_rows], "formula": _text(r.formulas[c[run_rows]]),
            "preset": _text(preset_col[run_rows]),
            "attempt": calc["attempt"][run_rows].astype(int),
            "worker": [assigned.get((str(preset_col[i]), int(c[i]), int(calc["attempt"][i])), "")
                       for i in run_rows],
            "submitted": calc["submitted"][run_rows].astype(float),
            "expected": np.array([expected.get(p, np.nan) for p in preset_col[run_rows]], float)}


def _failures(r: _Reading) -> dict:
    """The ``failures`` table, the latest failed or interrupted calculations."""
    st, calc = r.st, r.calc
    bad = r.rows[(st == S.FAILED) | (st == S.INTERRUPTED) | ((st == S.RUNNING) & (not r.live))][::-1][:N_FAILURES]
    errors = [calc["error"][i] if st[i] == S.FAILED else "interrupted: the driver stopped before the result "
              "(a resumed run computes it again)" for i in bad]
    return {"row": bad, "formula": _text(r.formulas[np.where(r.known, r.c, 0)[bad]]),
            "preset": _text(r.preset_col[bad]), "attempt": calc["attempt"][bad].astype(int),
            "worker": _text(calc["worker"][bad]), "error": errors}


def _header(r: _Reading, config, status: dict, *, path: str, budget: int, n_shown: int, joint: dict | None,
            parity: dict, expected: dict) -> dict:
    """The header's facts."""
    a, b = r.view.elements
    ok_top, calc = r.ok & (r.preset_col == r.top), r.calc
    dft, predicted = parity["dft"], parity["predicted"]
    return {
        "store": path, "name": config.campaign.name, "presets": r.presets, "preset": r.top,
        "model": config.model.kind, "strategy": config.strategy.kind, "budget": budget,
        "elements": [a, b], "x_label": composition_label(r.view.parent), "n_candidates": int(r.n_pool),
        "n_shown": n_shown, "driver_running": r.live, "curve_band": "joint" if joint else "bound",
        **{k: int(status[k]) for k in ("completed", "running", "failed", "given_up", "interrupted")},
        # status reads a running row as one a resumed run would redo; beside a live driver it is just running
        "to_retry": max(int(status["to_retry"]) - (int(status["running"]) if r.live else 0), 0),
        "trained": int(np.sum(ok_top & ~r.is_test)),
        "tested": int(np.sum(ok_top & r.is_test)),
        "n_train": int(status["n_train"]), "cv_mae": status["cv_mae"], "baseline_mae": status["baseline_mae"],
        "max_std": status["max_std"], "test_mae": _latest(r.snaps, "test_mae"), "model_text": status["model"],
        "parity_mae": float(np.mean(np.abs(predicted - dft))) if len(dft) else float("nan"),
        "n_parity": int(len(dft)), "expected": expected,
        "last_row": float(np.nanmax(np.concatenate([calc["submitted"], calc["finished"]]))) if len(r.rows) else None,
        "progress": _bar(int(np.sum(ok_top & ~r.is_test)), budget),
        "citation": getattr(measured_for_parent(r.view.parent), "short", ""), "test_reason": TEST,
    }


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
    config = view.config()
    budget = int(config.stop.budget if budget is None else budget)
    status = view.status()
    r = _reading(view, list(config.calculator.presets), live=bool(status["driver_running"]))
    configs, shown = _configs(r)
    joint = _joint_stds(view) if r.have_model else None
    # the latest snapshot written before each submission: its prediction was made without that result
    snap_row = _snapshot_for(r.snaps, r.calc["submitted"].astype(float), r.calc["iteration"].astype(int))
    parity, expected = _parity(r, snap_row), _expected(r)
    sources = {"configs": configs, "curve": _curve(r, joint), "experiment": _experiment(view.parent),
               "computed": _computed(r), "learning": _learning(r.snaps), "parity": parity,
               "picks": _picks(r, snap_row), "running": _running(r, assigned or {}, expected),
               "failures": _failures(r)}
    header = _header(r, config, status, path=path, budget=budget, n_shown=int(len(shown)), joint=joint,
                     parity=parity, expected=expected)
    return Frame(path, now, header=header, sources=sources)


def waiting_frame(path: str | Path, now: float | None = None) -> Frame:
    """The frame of a store that does not exist yet (a campaign creates it on its first run)."""
    return Frame(str(path), time.time() if now is None else now,
                 error=f"waiting for {path}: a campaign creates it when it starts")
