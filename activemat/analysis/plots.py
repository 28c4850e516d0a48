"""Figures of a store (``activemat plot``): PNGs drawn with matplotlib's Agg canvas.

- ``gap_vs_x.png``: computed gaps against the alloying fraction, the model's
  composition average (:func:`activemat.analysis.curve.gap_curve`) with a
  2-sigma band of its joint-posterior model std, the bowing parameter b with
  its std in the title, and (for configuration pools) the model mean of
  every configuration;
- ``learning_curve.png``: cross-validated MAE against the number of DFT
  calculations, with the mean-value baseline (and test MAE when reserved);
- ``parity.png``: out-of-fold predictions against DFT;
- ``selection.png``: what was computed, in order, and why;
- ``experiment.png`` (only on request, ``--figures experiment``): the
  composition-averaged model gap of one or more stores (each one fidelity
  and cell size, e.g. 16- against 32-atom cells) with 2-sigma bands of its
  joint-posterior model std and its bowing parameter b with its std,
  against the measured SiGe gap of Weber and Alonso, Phys. Rev. B 40, 5683
  (1989); a lower panel shows each store's model minus experiment. Named
  correction terms (exciton binding, zero-point renormalisation, spin-orbit;
  :data:`activemat.analysis.experiment.CORRECTIONS`) add a second reference
  curve, the measured one corrected to what a static-lattice,
  scalar-relativistic DFT gap is compared with, and the deviations are then
  taken from it; none are applied unless named.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never
through pyplot, so no global backend or state is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from activemat.analysis.experiment import (
    CITATION,
    CITATION_SHORT,
    CORRECTIONS,
    CROSSOVER_X,
    ELEMENTS,
    comparable_gap,
    describe_corrections,
    deviations,
    ge_like_gap,
    parse_corrections,
    si_like_gap,
    weber_alonso_gap,
)
from activemat.analysis.curve import bowing_label, gap_curve, has_joint_covariance
from activemat.analysis.modelcard import open_reference, preset_warning
from activemat.analysis.model import fit_store_model
from activemat.campaign.ledger import RETRY, TEST
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData
from activemat.learn.cross_validation import MAX_FOLDS, cv_predictions
from activemat.learn.strategies import reasons
from activemat.store import schema as S

FIGURES = ("gap_vs_x", "learning_curve", "parity", "selection")  # the default set
EXTRA_FIGURES = ("experiment",)  # drawn only when asked for by name
REASON_ORDER = (*reasons(), RETRY, TEST)  # every reason the loop writes; a reason keeps its colour
_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def _canvas(width: float, height: float):
    """An empty figure on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _figure(width: float = 6.4, height: float = 4.4):
    fig = _canvas(width, height)
    return fig, fig.add_subplot()


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="0.35", wrap=True)


def _legend_below(ax, ncol: int = 2, **kw) -> None:
    """Legend under the axes, so it never hides data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False, **kw)


def _title(view: CampaignView, what: str) -> str:
    return f"{what} - {view.path.name}"


def _label_x(view: CampaignView) -> str:
    return f"{view.elements[1]} fraction x in {view.elements[0]}$_{{1-x}}${view.elements[1]}$_x$"


def plot_gap_vs_x(view: CampaignView, sm, path: Path, reference: CampaignView | None = None) -> None:
    fig, ax = _figure()
    pool = sm.pool if sm is not None else view.pool()
    bowing = ""
    if sm is not None:
        curve = gap_curve(sm)
        rows = curve["compositions"]
        x = np.array([r["x"] for r in rows])
        mean = np.array([r["mean"] for r in rows])
        std = np.array([r["model_std"] for r in rows])
        bowing = f", {bowing_label(curve)}"
        if len(pool) > len(rows):  # several configurations per composition: show each one's model mean
            allm, _ = sm.predict(pool.features)
            ax.scatter(pool.x_b, allm, s=8, color="0.6", alpha=0.6, lw=0, zorder=1,
                       label="model mean per configuration")
            avg_label = "model, multiplicity-weighted average"
        else:
            avg_label = "model mean"
        band = "model $\\pm 2\\sigma$ of the average (joint posterior)" if has_joint_covariance(sm.model) \
            else "model $\\pm 2\\sigma$ (fully correlated bound)"
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, color="#1f77b4", alpha=0.18, lw=0, label=band, zorder=0)
        ax.plot(x, mean, color="#1f77b4", lw=2, label=avg_label, zorder=2)
    if reference is not None:
        done = reference.data.completed(reference.preset)
        idx = np.fromiter(done, dtype=np.int64, count=len(done))
        ax.scatter(reference.data.candidates["x_b"][idx], list(done.values()), s=30, facecolor="none",
                   edgecolor="0.3", lw=1.0, zorder=2,
                   label=f"reference: {reference.path.name} ({reference.preset}, {len(idx)})")
    t = view.table()
    ok = (t["status"] == S.OK) & (t["preset"] == view.preset)  # the campaign's fidelity only
    xb = t[f"x_{view.b}"]
    test = t["test"]
    presets = ", ".join(sorted(set(t["preset"][ok].tolist()))) or "DFT"
    ax.scatter(xb[ok & ~test], t["gap"][ok & ~test], s=42, color="#d62728", edgecolor="k", lw=0.6, zorder=3,
               label=f"computed ({presets})")
    if np.any(ok & test):
        ax.scatter(xb[ok & test], t["gap"][ok & test], s=48, marker="s", facecolor="none", edgecolor="k", lw=1.2,
                   zorder=3, label="held-out test (not trained on)")
    ax.set_xlabel(_label_x(view))
    ax.set_ylabel("band gap (eV)")
    ax.set_xlim(-0.03, 1.03)
    model = f"{sm.kind} model, {len(sm.train)} calculations{bowing}" if sm is not None else "no model yet"
    ax.set_title(_title(view, f"band gap ({model})"), fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    fig.savefig(path, dpi=150)


def _per_n_train(snaps: dict) -> dict[str, np.ndarray]:
    """The last snapshot for each training size (a failure adds a snapshot without new data)."""
    n = snaps["n_train"]
    keep = np.array([i for i in range(len(n)) if i == len(n) - 1 or n[i + 1] != n[i]], dtype=int)
    return {k: np.asarray(v)[keep] for k, v in snaps.items() if np.ndim(v) == 1}


def plot_learning_curve(view: CampaignView, path: Path) -> None:
    fig, ax = _figure()
    snaps = view.data.snapshots
    if len(snaps.get("n_train", [])):
        s = _per_n_train(snaps)
        n = s["n_train"]
        ax.plot(n, s["max_std"], ls="--", color="0.5", marker=".", label="max posterior std (pool)")
        cv = np.isfinite(s["cv_mae"])
        if cv.any():
            ax.plot(n[cv], s["baseline_mae"][cv], color="0.2", marker="s", ms=4, ls=":",
                    label="baseline: training mean (CV MAE)")
            ax.plot(n[cv], s["cv_mae"][cv], color="#d62728", marker="o", ms=5, lw=2, label="model CV MAE")
        test = np.isfinite(s.get("test_mae", np.full(len(n), np.nan)))
        if test.any():
            ax.plot(n[test], s["test_mae"][test], color="#2ca02c", marker="^", ms=5, label="held-out test MAE")
        if not cv.any():
            _note(ax, "cross-validation needs at least 3 calculations")
        ax.set_ylim(bottom=0)
        _legend_below(ax)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        _note(ax, "no model snapshots yet (a model needs 2 calculations)")
    ax.set_xlabel("number of successful DFT calculations (training size)")
    ax.set_ylabel("error / std (eV)")
    ax.set_title(_title(view, "learning curve"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def plot_parity(view: CampaignView, sm, path: Path) -> dict:
    fig, ax = _figure(5.2, 5.0)
    stats = {}
    if sm is not None and len(sm.y) >= 3:
        pred, std = cv_predictions(sm.model, sm.X, sm.y)
        x = sm.pool.x_b[sm.train]
        ax.errorbar(sm.y, pred, yerr=std, fmt="none", ecolor="0.6", elinewidth=0.8, zorder=1)
        sc = ax.scatter(sm.y, pred, c=x, cmap="viridis", vmin=0, vmax=1, s=36, edgecolor="k", lw=0.5, zorder=2,
                        label="out-of-fold prediction $\\pm 1\\sigma$")
        fig.colorbar(sc, ax=ax, label=f"{view.elements[1]} fraction x", shrink=0.85)
        err = pred - sm.y
        ss = float(np.sum((sm.y - sm.y.mean()) ** 2))
        stats = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
                 "r2": 1 - float(np.sum(err ** 2)) / ss if ss > 0 else float("nan")}
        test_idx, test_y = view.test_set()
        everything = [sm.y, pred - std, pred + std]
        if len(test_idx):
            tp = sm.model.predict(sm.pool.features[test_idx])
            ax.scatter(test_y, tp, marker="s", facecolor="none", edgecolor="#d62728", s=40, lw=1.2, zorder=3,
                       label="held-out test (model on all training data)")
            everything += [test_y, tp]
        lo, hi = float(np.nanmin(np.concatenate(everything))), float(np.nanmax(np.concatenate(everything)))
        pad = 0.05 * (hi - lo or 1.0)
        lims = (lo - pad, hi + pad)
        ax.plot(lims, lims, color="k", lw=0.8, ls="--", zorder=0, label="y = x")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        ax.set_aspect("equal")
        scheme = "leave-one-out" if len(sm.y) <= MAX_FOLDS else f"{MAX_FOLDS}-fold CV"
        _legend_below(ax, ncol=1, title=f"{scheme}, n = {len(sm.y)}: MAE {stats['mae']:.3f} eV, "
                      f"RMSE {stats['rmse']:.3f} eV, $R^2$ {stats['r2']:.3f}", title_fontsize=9)
    else:
        _note(ax, "parity needs at least 3 successful calculations")
    ax.set_xlabel("DFT band gap (eV)")
    ax.set_ylabel("predicted band gap (eV)")
    ax.set_title(_title(view, f"parity ({sm.kind if sm is not None else 'no'} model)"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)
    return stats


def plot_selection(view: CampaignView, path: Path) -> None:
    fig, ax = _figure(6.4, 4.0)
    t = view.table()
    order = t["row"] + 1
    xb = t[f"x_{view.b}"]
    present = [r for r in REASON_ORDER if r in set(t["reason"].tolist())]
    present += sorted(set(t["reason"].tolist()) - set(present))
    failed = np.isin(t["status"], [S.FAILED, S.INTERRUPTED])
    for reason in present:
        m = (t["reason"] == reason) & ~failed
        # a reason keeps its colour from store to store
        colour = _COLOURS[(REASON_ORDER.index(reason) if reason in REASON_ORDER else len(REASON_ORDER))
                          % len(_COLOURS)]
        if m.any():
            ax.scatter(order[m], xb[m], s=40, color=colour, edgecolor="k", lw=0.5, label=reason or "(none)",
                       zorder=2)
    if 0 < len(order) <= 24:  # few enough to name each one
        for o, x, f in zip(order, xb, t["formula"]):
            ax.annotate(f, (o, x), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=6.5,
                        color="0.25")
    if failed.any():
        ax.scatter(order[failed], xb[failed], s=60, marker="X", color="#d62728", edgecolor="k", lw=0.5,
                   label="failed / interrupted", zorder=3)
    if len(order):
        ax.plot(order, xb, color="0.75", lw=0.8, zorder=1)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="picked by", fontsize=8, title_fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  framealpha=0.9)
    else:
        _note(ax, "no calculations yet")
    ax.set_ylim(-0.07, 1.1)
    ax.set_xlabel("calculation number (submission order)")
    ax.set_ylabel(f"{view.elements[1]} fraction x")
    ax.set_title(_title(view, "selection history"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def fidelity_label(view: CampaignView) -> str:
    """The store's calculator preset(s) with their functional, e.g. ``gpaw-fast (PBE)``."""
    t = view.table()
    names = sorted(set(t["preset"][t["status"] == S.OK].tolist()) - {""}) or sorted(view.data.presets)
    labels = []
    for name in names:
        xc = view.data.presets.get(name, {}).get("gpaw", {}).get("xc", "")
        xc = xc.get("name", "") if isinstance(xc, dict) else xc
        labels.append(f"{name} ({xc})" if xc else name)
    return ", ".join(labels) or "unknown preset"


def experiment_curve(view: CampaignView, sm, corrections=()) -> dict:
    """One store (one fidelity, one cell size) against experiment.

    The model curve is :func:`activemat.analysis.curve.gap_curve`: at every
    composition of the pool the multiplicity-weighted disorder average
    (``activemat predict`` gives the same for one composition), its
    ``model_std`` from the joint posterior covariance of the configurations
    averaged, its configurational spread ``config_spread``, and the bowing
    fit ``bowing`` (``b``, ``b_std``, ``E_Si``, ``E_Si_std``, ``E_Ge``,
    ``E_Ge_std``, ``residual_rms``; empty without a model). ``deviation`` is
    :func:`activemat.analysis.experiment.deviations` of that curve (``None``
    without a model), against the measured gap with the named
    ``corrections`` applied (default none: the measured gap). ``computed_x``/``computed_gap`` are the
    multiplicity-weighted averages of the computed gaps per composition;
    ``n_atoms`` is the supercell's size, ``n_pool`` the pool's number of
    configurations, ``weighted`` whether they carry multiplicities (an
    enumerated pool; a sampled one averages uniformly), ``covariance`` says
    how ``model_std`` was obtained and ``notes`` are :func:`gap_curve`'s.
    """

    pool = sm.pool if sm is not None else view.pool()
    done = view.data.completed(view.preset)
    idx = np.fromiter(done, dtype=np.int64, count=len(done))
    gaps = np.fromiter(done.values(), dtype=float, count=len(done))
    cx, cg = [], []
    for k in np.unique(pool.n_b[idx]):
        m = pool.n_b[idx] == k
        w = pool.multiplicity[idx[m]].astype(float)
        cx.append(float(k) / view.n_sites)
        cg.append(float(w @ gaps[m] / w.sum()))
    curve = {"store": str(view.path), "label": fidelity_label(view), "n_atoms": int(view.n_sites),
             "n_pool": int(len(pool)), "weighted": bool(np.any(pool.multiplicity != 1)),
             "n_computed": int(len(idx)), "computed_x": cx, "computed_gap": cg, "model": None, "n_train": 0,
             "x": [], "gap": [], "model_std": [], "config_spread": [], "covariance": None, "bowing": {},
             "notes": [], "deviation": None}
    if sm is not None:
        full = gap_curve(sm)
        rows = full["compositions"]
        x = np.array([r["x"] for r in rows])
        mean = np.array([r["mean"] for r in rows])
        curve.update(model=sm.kind, n_train=int(len(sm.train)), x=x.tolist(), gap=mean.tolist(),
                     model_std=[r["model_std"] for r in rows], config_spread=[r["spread"] for r in rows],
                     covariance=full["covariance"], bowing=full["bowing"], notes=full["notes"],
                     deviation=deviations(x, mean, corrections))
    return curve


def _store_label(c: dict) -> str:
    return f"{c['n_atoms']}-atom cell, {c['label']}"


def _terms_label(corrections) -> str:
    """``exciton + zpr + soc`` for titles and legends: the terms named, or that none is."""
    names = parse_corrections(corrections)
    return " + ".join(names) if names else "no correction terms"


def plot_experiment(curves: list[dict], path: Path, corrections=()) -> None:
    """Draw :func:`experiment_curve` results next to the Weber-Alonso curve, and below, model minus experiment.

    With ``corrections`` (names of :data:`activemat.analysis.experiment.CORRECTIONS`) the corrected reference
    is drawn as a second curve and the lower panel is model minus that reference; the curves' ``deviation``
    must have been computed with the same terms.
    """
    corrections = parse_corrections(corrections)
    fig = _canvas(7.2, 9.0)
    ax, dev = fig.subplots(2, 1, sharex=True, height_ratios=(2.1, 1.0))
    xs = np.linspace(0, 1, 201)
    ax.plot(xs, weber_alonso_gap(xs), color="k", lw=2.2, zorder=4,
            label="experiment, low temperature (Weber & Alonso 1989): the lower of the Si-like and Ge-like branches"
                  "\n  (4.2 K photoluminescence: the excitonic gap, as measured)")
    if corrections:
        terms = describe_corrections(corrections)
        shifts = ", ".join(f"{d['name']} {1000 * d['shift_at_0']:+.1f} / {1000 * d['shift_at_1']:+.1f}" for d in terms)
        ax.plot(xs, comparable_gap(xs, corrections), color="0.35", lw=2.0, ls="--", zorder=4,
                label=f"reference: experiment + {_terms_label(corrections)}, for a static-lattice, "
                      f"scalar-relativistic DFT gap\n  ({'; '.join(d['name'] + ': ' + d['label'] for d in terms)})"
                      f"\n  meV added at x=0 / x=1: {shifts}")
    ax.plot(xs, si_like_gap(xs), color="k", lw=0.8, ls=":", zorder=3)
    ax.plot(xs, ge_like_gap(xs), color="k", lw=0.8, ls=":", zorder=3)
    ax.annotate("Si-like ($\\Delta$)", (0.30, float(si_like_gap(0.30))), xytext=(0, 6), textcoords="offset points",
                fontsize=8, color="0.2")
    ax.annotate("Ge-like (L)", (0.74, float(ge_like_gap(0.74))), xytext=(4, 2), textcoords="offset points",
                fontsize=8, color="0.2")
    for a in (ax, dev):
        a.axvline(CROSSOVER_X, color="0.6", lw=0.7, ls="--", zorder=0)
    ax.annotate(f"measured $\\Delta$-L crossover, x = {CROSSOVER_X:.2f}", (CROSSOVER_X, 0.0),
                xycoords=("data", "axes fraction"), xytext=(-3, 3), textcoords="offset points", ha="right",
                va="bottom", fontsize=7, color="0.4")
    dev.axhline(0.0, color="k", lw=1.2, zorder=1)
    dev_lo, dev_hi = [], []  # the deviation panel is zoomed to the curves (0, experiment, may be off it)
    what = "reference" if corrections else "experiment"
    for i, c in enumerate(curves):
        colour = _COLOURS[i % len(_COLOURS)]
        name = Path(c["store"]).name
        who = _store_label(c)
        measured_at = np.asarray(c["computed_x"], float)
        measured_dev = np.asarray(c["computed_gap"]) - comparable_gap(measured_at, corrections)
        dev.scatter(measured_at, measured_dev, s=16, color=colour, edgecolor="k", lw=0.4, zorder=5)
        dev_lo += list(measured_dev)
        dev_hi += list(measured_dev)
        if c["deviation"] is not None:
            d = c["deviation"]
            x, mean, std = np.array(c["x"]), np.array(c["gap"]), np.array(c["model_std"])
            joint = "joint posterior" if c["covariance"].startswith("joint") else "fully correlated bound"
            ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=colour, alpha=0.25, lw=0, zorder=1)
            over = f"all {c['n_pool']} configurations, multiplicity-weighted" if c["weighted"] \
                else f"the pool's {c['n_pool']} configurations"
            ax.plot(x, mean, color=colour, lw=2, zorder=2,
                    label=f"{who}: {c['model']} model on {c['n_train']} calculations ({name})\n"
                          f"  average over {over}, $\\pm 2\\sigma$ ({joint})\n"
                          f"  bowing {bowing_label(c)}; model $-$ {what}: mean {d['mean_signed']:+.3f} eV, "
                          f"x=0 {d['at_0']:+.3f} eV, x=1 {d['at_1']:+.3f} eV")
            residual = mean - comparable_gap(x, corrections)
            dev.fill_between(x, residual - 2 * std, residual + 2 * std, color=colour, alpha=0.25, lw=0, zorder=2)
            dev.plot(x, residual, color=colour, lw=1.6, zorder=3)
            dev_lo += list(residual - 2 * std)
            dev_hi += list(residual + 2 * std)
        else:
            ax.plot([], [], color=colour, lw=2, label=f"{who}: {name}, no model yet (needs 2 calculations)")
        ax.scatter(c["computed_x"], c["computed_gap"], s=34, color=colour, edgecolor="k", lw=0.6, zorder=5,
                   label=f"{who}: computed, average of the computed configurations per composition "
                         f"({c['n_computed']} calculations)")
    ax.set_ylabel("band gap (eV)")
    ax.set_xlim(-0.03, 1.03)
    highs = [float(np.max(np.add(c["gap"], 2 * np.array(c["model_std"])))) for c in curves if c["gap"]]
    highs += [max(c["computed_gap"]) for c in curves if c["computed_gap"]]
    top = max([1.3] + highs) + 0.05
    ax.set_ylim(0, top)  # the Ge-like branch runs off the top at small x; only the lower branch is the gap
    ax.set_title(f"composition-averaged gap against experiment\nmeasured: {CITATION_SHORT}; "
                 f"{'terms applied: ' + _terms_label(corrections) if corrections else 'no correction terms applied'}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=1, fontsize=7.5, frameon=False,
               handlelength=2.5)
    dev.set_xlabel("Ge fraction x in Si$_{1-x}$Ge$_x$")
    dev.set_ylabel(f"model $-$ {what} (eV)")
    dev.set_title(f"model $-$ {'(experiment + ' + _terms_label(corrections) + ')' if corrections else 'experiment'}:"
                  " model $\\pm 2\\sigma$ (lines and bands), computed averages (dots)", fontsize=9)
    if dev_lo:
        lo, hi = float(np.nanmin(dev_lo)), float(np.nanmax(dev_hi))
        pad = 0.08 * max(hi - lo, 0.05)
        dev.set_ylim(lo - pad, hi + pad)
    dev.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def compare_experiment(stores, path: str | Path, kind: str | None = None, models: dict | None = None, *,
                       refit: bool = False, corrections=None) -> dict:
    """Write ``path`` (PNG): each store's composition-averaged model gap next to experiment.

    Each store is one fidelity and one cell size, labelled by both (e.g. the
    16- and the 32-atom cell with the same preset). Returns ``reference``
    (the citation), ``figure`` and ``fidelities``: one
    :func:`experiment_curve` dict per store, with its joint-posterior
    ``model_std`` per composition, its ``bowing`` fit (b with its std) and
    its ``deviation`` (``mean_signed``, ``mean_abs``, ``max_abs``, ``at_0``
    and ``at_1``, eV, model minus experiment), and ``corrections``:
    :func:`activemat.analysis.experiment.describe_corrections` of the terms
    applied to the measured curve before the deviations (``corrections``:
    names, ``"all"``, or none, the default).

    Raises
    ------
    InputError
        A store that is not Si(1-x)Ge(x) or has no calculation, or an
        unknown correction name.
    """

    corrections = parse_corrections(corrections)
    models = models or {}
    curves = []
    for store in stores:
        view = open_campaign(store)
        if tuple(view.elements) != ELEMENTS:
            raise InputError(f"the experimental curve is for Si(1-x)Ge(x), but {view.path} is "
                             f"{view.elements[0]}(1-x){view.elements[1]}(x); compare SiGe stores only")
        if view.data.n_calculations == 0:
            raise InputError(f"nothing to compare: {view.path} has no calculations yet; run the campaign first")
        if str(view.path) in models:
            sm = models[str(view.path)]
        else:
            try:
                sm = fit_store_model(view, kind, refit=refit)
            except NotEnoughData:
                sm = None
        curves.append(experiment_curve(view, sm, corrections))
    path = Path(path)
    plot_experiment(curves, path, corrections)
    return {"reference": CITATION, "figure": str(path), "fidelities": curves,
            "corrections": describe_corrections(corrections)}


def render_comparison(result: dict, file=None) -> None:
    """Per fidelity: deviation of the composition-averaged model from experiment, then its bowing fit."""
    file = file or sys.stdout
    terms = result.get("corrections") or []
    if terms:
        print(f"model - (experiment + {' + '.join(t['name'] for t in terms)}) ({result['reference']}, corrected by "
              "the terms below), composition-averaged:", file=file)
        for t in terms:
            print(f"  term {t['name']} ({t['label']}): {t['shift_at_0'] * 1000:+.1f} meV at x=0, "
                  f"{t['shift_at_1'] * 1000:+.1f} meV at x=1 added to the measured gap "
                  f"(+/- {t['uncertainty_at_0'] * 1000:.1f} / {t['uncertainty_at_1'] * 1000:.1f} meV); "
                  f"{t['convention']}", file=file)
        print(f"  total: {sum(t['shift_at_0'] for t in terms) * 1000:+.1f} meV at x=0, "
              f"{sum(t['shift_at_1'] for t in terms) * 1000:+.1f} meV at x=1", file=file)
    else:
        print(f"model - experiment ({result['reference']}, as measured: no correction terms applied), "
              "composition-averaged:", file=file)
    for c in result["fidelities"]:
        d = c["deviation"]
        where = f"{c['label']} [{c['n_atoms']}-atom cell, {c['store']}, {c['n_train']} calculations]"
        if d is None:
            print(f"  {where}: no model yet (needs 2 successful calculations)", file=file)
        else:
            print(f"  {where}: mean {d['mean_signed']:+.3f} eV, mean |dev| {d['mean_abs']:.3f} eV "
                  f"over {d['n_compositions']} compositions in [0, 1]; x=0 {d['at_0']:+.3f} eV, "
                  f"x=1 {d['at_1']:+.3f} eV", file=file)
    def pm(fit: dict, key: str) -> str:
        std = fit[f"{key}_std"]
        return f"{fit[key]:.3f}" + ("" if std is None else f" +/- {std:.3f}") + " eV"

    fitted = [c for c in result["fidelities"] if c["bowing"]]
    if fitted:
        print("bowing fit E_g(x) = (1-x) E_Si + x E_Ge - b x(1-x) of each model curve (mean +/- std over joint "
              "posterior samples of the curve):", file=file)
    for c in fitted:
        f = c["bowing"]
        print(f"  {c['n_atoms']}-atom cell, {c['label']} [{c['store']}]: b = {pm(f, 'b')}, E_Si = {pm(f, 'E_Si')}, "
              f"E_Ge = {pm(f, 'E_Ge')}; rms residual {f['residual_rms']:.3f} eV", file=file)


def plot_store(store: str | Path | CampaignView, out_dir: str | Path, kind: str | None = None,
               figures=None, reference: str | Path | CampaignView | None = None, compare=(),
               results: dict | None = None, refit: bool = False, corrections=None) -> dict[str, Path]:
    """Write the store's figures as PNGs into ``out_dir`` (created if missing); return name -> path.

    ``figures`` is a list or a comma-separated string of names from :data:`FIGURES`
    (the default set) and :data:`EXTRA_FIGURES`.
    ``reference``, a store of the same space, adds its gaps to ``gap_vs_x`` as open circles.
    ``compare``: more stores (other fidelities) for the ``experiment`` figure, drawn after this one.
    ``results``, if given, receives ``results["experiment"]``, :func:`compare_experiment`'s numbers, and
    ``results["warnings"]``: one line each, e.g. a reference computed with another preset than the model's.
    ``refit`` optimises the models' hyperparameters again instead of reusing the latest snapshots'.
    ``corrections``: terms applied to the measured curve in the ``experiment`` figure and its deviations
    (names of :data:`activemat.analysis.experiment.CORRECTIONS`, comma-separated, or ``"all"``; default none).

    Raises
    ------
    InputError
        Unknown figure name, an output folder that is a file, a store
        with no calculation at all, ``compare`` or ``corrections`` without
        the ``experiment`` figure, an unknown correction name, or
        ``experiment`` on a store that is not SiGe.
    """
    view = open_campaign(store)
    figures = FIGURES if figures is None else [f.strip() for f in (figures.split(",") if isinstance(figures, str)
                                                                    else figures) if f.strip()]
    unknown = sorted(set(figures) - set(FIGURES) - set(EXTRA_FIGURES))
    if unknown:
        raise InputError(f"unknown figure {', '.join(unknown)}; choose from {', '.join(FIGURES + EXTRA_FIGURES)}")
    corrections = parse_corrections(corrections)
    if corrections and "experiment" not in figures:
        raise InputError("correction terms are only used by the experiment figure; add --figures experiment "
                         "(or experiment,gap_vs_x,...)")
    compare = [open_campaign(c) for c in (compare or ())]
    if compare and "experiment" not in figures:
        raise InputError("more than one store is only used by the experiment figure; add --figures experiment "
                         "(or experiment,gap_vs_x,...)")
    if "experiment" in figures:
        for v in [view, *compare]:
            if tuple(v.elements) != ELEMENTS:
                raise InputError(f"the experiment figure is for Si(1-x)Ge(x), but {v.path} is "
                                 f"{v.elements[0]}(1-x){v.elements[1]}(x); leave out experiment for this store")
            if v.data.n_calculations == 0:
                raise InputError(f"nothing to compare: {v.path} has no calculations yet; run the campaign first")
    if reference is not None:
        reference = open_reference(view, reference)
        if results is not None and preset_warning(view, reference):
            results.setdefault("warnings", []).append(preset_warning(view, reference))
    if view.data.n_calculations == 0:
        raise InputError(f"nothing to plot: {view.path} has no calculations yet; run the campaign first")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"-o {out_dir} is a file; give a folder for the figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        sm = fit_store_model(view, kind, refit=refit)
    except NotEnoughData:
        sm = None  # figures still show what was computed
    paths = {name: out_dir / f"{name}.png" for name in figures}
    if "gap_vs_x" in paths:
        plot_gap_vs_x(view, sm, paths["gap_vs_x"], reference)
    if "learning_curve" in paths:
        plot_learning_curve(view, paths["learning_curve"])
    if "parity" in paths:
        plot_parity(view, sm, paths["parity"])
    if "selection" in paths:
        plot_selection(view, paths["selection"])
    if "experiment" in paths:
        comparison = compare_experiment([view, *compare], paths["experiment"], kind, models={str(view.path): sm},
                                        refit=refit, corrections=corrections)
        if results is not None:
            results["experiment"] = comparison
    return paths
