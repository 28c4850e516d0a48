"""The experiment figure and its numbers: model gap curves of one or more stores against the measured gap.

Each store (one fidelity and one cell size, e.g. 16- against 32-atom cells) gives
:func:`experiment_curve`: its composition-averaged model gap with the joint-posterior model std
(:func:`activemat.analysis.curve.gap_curve`), its bowing parameter b with its std, the averages of
its computed gaps, and its deviations from the measured SiGe gap of Weber and Alonso, Phys. Rev. B
40, 5683 (1989). :func:`compare_experiment` fits each store's model, draws ``experiment.png``
(:func:`plot_experiment`: the curves with 2-sigma bands over the measured branches, and below,
model minus experiment) and returns the numbers, which :func:`render_comparison` prints
(``activemat plot --figures experiment``). Named correction terms (exciton binding, zero-point
renormalisation, spin-orbit; :data:`activemat.analysis.experiment.CORRECTIONS`) add a second
reference curve, the measured one corrected to what a static-lattice, scalar-relativistic DFT gap
is compared with, and the deviations are then taken from it; none are applied unless named.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np

from activemat.analysis.canvas import COLOURS, canvas
from activemat.analysis.experiment import (
    CITATION,
    CITATION_SHORT,
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
from activemat.analysis.curve import bowing_label, gap_curve
from activemat.analysis.model import fit_store_model
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData
from activemat.store import schema as S

#: characters per legend line: the legend sits below the panels and must fit the figure's width
LEGEND_WIDTH = 110


def fidelity_label(view: CampaignView) -> str:
    """The store's calculator preset(s) with their functional, e.g. ``gpaw-fast (PBE)``."""
    t = view.table()
    names = sorted(set(t["preset"][t["status"] == S.OK].tolist()) - {""}) or sorted(view.presets)
    labels = []
    for name in names:
        xc = view.presets.get(name, {}).get("gpaw", {}).get("xc", "")
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
    done = view.completed(view.preset)
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
    fig = canvas(7.2, 9.0)
    ax, dev = fig.subplots(2, 1, sharex=True, height_ratios=(2.1, 1.0))
    _draw_measured(ax, dev, corrections)
    dev_lo, dev_hi = [], []  # the deviation panel is zoomed to the curves (0, experiment, may be off it)
    what = "reference" if corrections else "experiment"
    for i, c in enumerate(curves):
        lo, hi = _draw_store(ax, dev, c, COLOURS[i % len(COLOURS)], corrections)
        dev_lo += lo
        dev_hi += hi
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
    handles, labels = ax.get_legend_handles_labels()
    labels = [textwrap.fill(label, LEGEND_WIDTH) for label in labels]  # long labels would run off the figure
    fig.legend(handles, labels, loc="outside lower center", ncol=1, fontsize=7.5, frameon=False, handlelength=2.5)
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


def _draw_measured(ax, dev, corrections: list[str]) -> None:
    """The measured gap (its two branches, their crossover) and, with ``corrections``, the corrected reference."""
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


def _draw_store(ax, dev, c: dict, colour: str, corrections: list[str]) -> tuple[list, list]:
    """One :func:`experiment_curve` on both panels; the low and high ends of what it drew on the lower one."""
    name = Path(c["store"]).name
    who = _store_label(c)
    what = "reference" if corrections else "experiment"
    measured_at = np.asarray(c["computed_x"], float)
    measured_dev = np.asarray(c["computed_gap"]) - comparable_gap(measured_at, corrections)
    dev.scatter(measured_at, measured_dev, s=16, color=colour, edgecolor="k", lw=0.4, zorder=5)
    lo, hi = list(measured_dev), list(measured_dev)
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
        lo += list(residual - 2 * std)
        hi += list(residual + 2 * std)
    else:
        ax.plot([], [], color=colour, lw=2, label=f"{who}: {name}, no model yet (needs 2 calculations)")
    ax.scatter(c["computed_x"], c["computed_gap"], s=34, color=colour, edgecolor="k", lw=0.6, zorder=5,
               label=f"{who}: computed, average of the computed configurations per composition "
                     f"({c['n_computed']} calculations)")
    return lo, hi


def check_comparable(view: CampaignView) -> None:
    """InputError unless ``view`` is a Si(1-x)Ge(x) store with at least one calculation (the measured curve's)."""
    if tuple(view.elements) != ELEMENTS:
        raise InputError(f"the experiment figure is for Si(1-x)Ge(x), but {view.path} is "
                         f"{view.elements[0]}(1-x){view.elements[1]}(x); compare SiGe stores only")
    if view.n_calculations == 0:
        raise InputError(f"nothing to compare: {view.path} has no calculations yet; run the campaign first")


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
        check_comparable(view)
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
