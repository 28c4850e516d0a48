"""The experiment figure and its numbers: model gap curves of one or more stores against the measured gap.

Each store (one fidelity and one cell size, e.g. 16- against 32-atom cells) gives
:func:`experiment_curve`: its composition-averaged model gap with the joint-posterior model std
(:func:`activemat.analysis.curve.gap_curve`), its bowing parameter b with its std, the averages of
its computed gaps, and its deviations from the measured gap of its system: the shipped
measured-gap file its mixing pair and fixed species select
(:func:`activemat.analysis.experiment.measured_for_parent`; Si-Ge: Weber and Alonso, Phys. Rev.
B 40, 5683 (1989); Al-Ga-As: Vurgaftman, Meyer and Ram-Mohan, J. Appl. Phys. 89, 5815 (2001)).
:func:`compare_experiment` fits each store's model, draws ``experiment.png``
(:func:`plot_experiment`: the curves with 2-sigma bands over the measured valley branches and
crossovers, and below, model minus experiment) and returns the numbers, which
:func:`render_comparison` prints (``activemat plot --figures experiment``). Named correction terms
of the system's file (Si-Ge: exciton binding, zero-point renormalisation, spin-orbit; Al-Ga-As:
spin-orbit) add a second reference curve, the measured one corrected to what a static-lattice,
scalar-relativistic DFT gap is compared with, and the deviations are then taken from it; none are
applied unless named.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np

from activemat.analysis.canvas import COLOURS, canvas
from activemat.analysis.experiment import Measured, measured_for_parent
from activemat.analysis.curve import bowing_label, gap_curve
from activemat.analysis.model import fit_store_model
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData
from activemat.space.formula import composition_label
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


def experiment_curve(view: CampaignView, sm, corrections=(), measured: Measured | None = None) -> dict:
    """One store (one fidelity, one cell size) against experiment.

    The model curve is :func:`activemat.analysis.curve.gap_curve`: at every
    composition of the pool the multiplicity-weighted disorder average
    (``activemat predict`` gives the same for one composition), its
    ``model_std`` from the joint posterior covariance of the configurations
    averaged, its configurational spread ``config_spread``, and the bowing
    fit ``bowing`` (``b``, ``b_std``, ``E_Si``, ``E_Si_std``, ``E_Ge``,
    ``E_Ge_std``, ``residual_rms``; empty without a model). ``deviation`` is
    :meth:`activemat.analysis.experiment.Measured.deviations` of that curve
    (``None`` without a model), against ``measured`` (default: the store's
    system's file) with the named ``corrections`` applied (default none:
    the measured gap). ``computed_x``/``computed_gap`` are the
    multiplicity-weighted averages of the computed gaps per composition;
    ``n_atoms`` is the supercell's atoms (fixed sublattices included), ``n_pool`` the pool's number of
    configurations, ``weighted`` whether they carry multiplicities (an
    enumerated pool; a sampled one averages uniformly), ``covariance`` says
    how ``model_std`` was obtained and ``notes`` are :func:`gap_curve`'s.
    """

    measured = measured or measured_for_parent(view.parent, required=True)
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
    sites = view.parent.mixing  # the store counts mixing sites; a fixed sublattice (As in AlGaAs) adds atoms
    curve = {"store": str(view.path), "label": fidelity_label(view), "n_atoms": view.n_sites * len(sites) // sum(sites),
             "elements": list(view.elements),
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
                     deviation=measured.deviations(x, mean, corrections))
    return curve


def _store_label(c: dict) -> str:
    return f"{c['n_atoms']}-atom cell, {c['label']}"


def _terms_label(corrections) -> str:
    """``exciton + zpr + soc`` for titles and legends: the terms named (parsed names), or that none is."""
    return " + ".join(corrections) if corrections else "no correction terms"


def plot_experiment(curves: list[dict], path: Path, measured: Measured, corrections=()) -> None:
    """Draw :func:`experiment_curve` results next to the measured gap, and below, model minus experiment.

    With ``corrections`` (names of the ``measured`` file's terms) the corrected reference is drawn as a
    second curve and the lower panel is model minus that reference; the curves' ``deviation`` must have been
    computed with the same terms.
    """
    corrections = measured.parse_corrections(corrections)
    fig = canvas(7.2, 9.0)
    ax, dev = fig.subplots(2, 1, sharex=True, height_ratios=(2.1, 1.0))
    _draw_measured(ax, dev, measured, corrections)
    dev_lo, dev_hi = [], []  # the deviation panel is zoomed to the curves (0, experiment, may be off it)
    what = "reference" if corrections else "experiment"
    for i, c in enumerate(curves):
        lo, hi = _draw_store(ax, dev, c, COLOURS[i % len(COLOURS)], measured, corrections)
        dev_lo += lo
        dev_hi += hi
    ax.set_ylabel("band gap (eV)")
    ax.set_xlim(-0.03, 1.03)
    highs = [float(np.max(np.add(c["gap"], 2 * np.array(c["model_std"])))) for c in curves if c["gap"]]
    highs += [max(c["computed_gap"]) for c in curves if c["computed_gap"]]
    top = max([float(np.max(measured.comparable_gap(np.linspace(0, 1, 101), corrections))) + 0.15] + highs) + 0.05
    ax.set_ylim(0, top)  # upper branches may run off the top; only the lowest branch is the gap
    ax.set_title(f"composition-averaged gap against experiment\nmeasured: {measured.short}; "
                 f"{'terms applied: ' + _terms_label(corrections) if corrections else 'no correction terms applied'}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    labels = [textwrap.fill(label, LEGEND_WIDTH) for label in labels]  # long labels would run off the figure
    fig.legend(handles, labels, loc="outside lower center", ncol=1, fontsize=7.5, frameon=False, handlelength=2.5)
    dev.set_xlabel(measured.axis)
    dev.set_ylabel(f"model $-$ {what} (eV)")
    dev.set_title(f"model $-$ {'(experiment + ' + _terms_label(corrections) + ')' if corrections else 'experiment'}:"
                  " model $\\pm 2\\sigma$ (lines and bands), computed averages (dots)", fontsize=9)
    if dev_lo:
        lo, hi = float(np.nanmin(dev_lo)), float(np.nanmax(dev_hi))
        pad = 0.08 * max(hi - lo, 0.05)
        dev.set_ylim(lo - pad, hi + pad)
    dev.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def _draw_measured(ax, dev, measured: Measured, corrections: tuple[str, ...]) -> None:
    """The measured gap (its valley branches, their crossover, a measured crossover) and, with ``corrections``,
    the corrected reference."""
    xs = np.linspace(0, 1, 201)
    valleys = [b.valley for b in measured.branches]
    lowest = f": the lowest of the {', '.join(valleys)} branches" if len(valleys) > 1 else ""
    temperature = f", {measured.temperature:g} K" if measured.temperature is not None else ""
    ax.plot(xs, measured.gap(xs), color="k", lw=2.2, zorder=4,
            label=f"experiment ({measured.short}{temperature}){lowest}\n  ({measured.quantity}, as measured)")
    if corrections:
        terms = measured.describe_corrections(corrections)
        shifts = ", ".join(f"{d['name']} {1000 * d['shift_at_0']:+.1f} / {1000 * d['shift_at_1']:+.1f}" for d in terms)
        ax.plot(xs, measured.comparable_gap(xs, corrections), color="0.35", lw=2.0, ls="--", zorder=4,
                label=f"reference: experiment + {_terms_label(corrections)}, for a static-lattice, "
                      f"scalar-relativistic DFT gap\n  ({'; '.join(d['name'] + ': ' + d['label'] for d in terms)})"
                      f"\n  meV added at x=0 / x=1: {shifts}")
    if len(measured.branches) > 1:
        for b in measured.branches:
            gaps = b.gap(xs)
            ax.plot(xs, gaps, color="k", lw=0.8, ls=":", zorder=3)
            at = int(np.argmin(np.abs(gaps - measured.gap(xs)) + (xs < 0.15) + (xs > 0.85)))
            ax.annotate(f"{b.valley}", (xs[at], float(gaps[at])), xytext=(2, 5), textcoords="offset points",
                        fontsize=8, color="0.2")
    x_branches = measured.crossover()
    if x_branches == x_branches:
        for a in (ax, dev):
            a.axvline(x_branches, color="0.6", lw=0.7, ls="--", zorder=0)
        lower, upper = measured.crossover_valleys() or ("", "")
        ax.annotate(f"{lower}-{upper} crossover of the branches, x = {x_branches:.2f}", (x_branches, 0.0),
                    xycoords=("data", "axes fraction"), xytext=(-3, 3), textcoords="offset points", ha="right",
                    va="bottom", fontsize=7, color="0.4")
    seen = measured.measured_crossover
    if seen:
        for a in (ax, dev):
            a.axvspan(seen["x"] - seen["uncertainty"], seen["x"] + seen["uncertainty"], color="0.5", alpha=0.15,
                      lw=0, zorder=0)
        ax.plot([], [], color="0.5", alpha=0.3, lw=6,
                label=f"measured {seen['lower']}-{seen['upper']} crossover x = {seen['x']:.3f} $\\pm$ "
                      f"{seen['uncertainty']:.3f} ({seen['reference'].split(':')[0]})")
    dev.axhline(0.0, color="k", lw=1.2, zorder=1)


def _draw_store(ax, dev, c: dict, colour: str, measured: Measured, corrections: tuple[str, ...]) -> tuple[list, list]:
    """One :func:`experiment_curve` on both panels; the low and high ends of what it drew on the lower one."""
    name = Path(c["store"]).name
    who = _store_label(c)
    what = "reference" if corrections else "experiment"
    measured_at = np.asarray(c["computed_x"], float)
    measured_dev = np.asarray(c["computed_gap"]) - measured.comparable_gap(measured_at, corrections)
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
        residual = mean - measured.comparable_gap(x, corrections)
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


def check_comparable(view: CampaignView, measured: Measured | None = None) -> Measured:
    """The measured gap of ``view``'s system; InputError when none is shipped, when ``measured`` (another
    store's) is of another system, or when ``view`` has no calculation."""
    own = measured_for_parent(view.parent, required=True)
    if measured is not None and own is not measured:
        raise InputError(f"{view.path} is {view.parent.name}, not {measured.system}: the experiment figure compares "
                         "stores of one system; leave it out")
    if view.n_calculations == 0:
        raise InputError(f"nothing to compare: {view.path} has no calculations yet; run the campaign first")
    return own


def compare_experiment(stores, path: str | Path, kind: str | None = None, models: dict | None = None, *,
                       refit: bool = False, corrections=None) -> dict:
    """Write ``path`` (PNG): each store's composition-averaged model gap next to experiment.

    Each store is one fidelity and one cell size, labelled by both (e.g. the
    16- and the 32-atom cell with the same preset); all are of one system,
    whose shipped measured-gap file is the experiment. Returns ``reference``
    (the citation), ``system``, ``axis`` (the composition axis, named by
    the mixing species), ``crossover`` (the branches' crossover x and the
    file's measured one), ``figure`` and ``fidelities``: one
    :func:`experiment_curve` dict per store, with its joint-posterior
    ``model_std`` per composition, its ``bowing`` fit (b with its std) and
    its ``deviation`` (``mean_signed``, ``mean_abs``, ``max_abs``, ``at_0``
    and ``at_1``, eV, model minus experiment), and ``corrections``: the
    file's terms applied to the measured curve before the deviations
    (``corrections``: names, ``"all"``, or none, the default).

    Raises
    ------
    InputError
        A store of a system with no measured-gap file, stores of different
        systems, a store with no calculation, or an unknown correction name.
    """

    models = models or {}
    views = [open_campaign(store) for store in stores]
    measured = None
    for view in views:
        measured = check_comparable(view, measured)
    corrections = measured.parse_corrections(corrections)
    curves = []
    for view in views:
        if str(view.path) in models:
            sm = models[str(view.path)]
        else:
            try:
                sm = fit_store_model(view, kind, refit=refit)
            except NotEnoughData:
                sm = None
        curves.append(experiment_curve(view, sm, corrections, measured))
    path = Path(path)
    plot_experiment(curves, path, measured, corrections)
    return {"reference": measured.reference, "system": measured.system, "axis": composition_label(views[0].parent),
            "crossover": {"valleys": measured.crossover_valleys(), "branches_x": measured.crossover(),
                          "measured": measured.measured_crossover},
            "figure": str(path), "fidelities": curves, "corrections": measured.describe_corrections(corrections)}


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
    for c in fitted:
        a, b = c["elements"]
        if c is fitted[0]:
            print(f"bowing fit E_g(x) = (1-x) E_{a} + x E_{b} - b x(1-x) of each model curve (mean +/- std over joint "
                  "posterior samples of the curve):", file=file)
        f = c["bowing"]
        print(f"  {c['n_atoms']}-atom cell, {c['label']} [{c['store']}]: b = {pm(f, 'b')}, E_{a} = {pm(f, f'E_{a}')}, "
              f"E_{b} = {pm(f, f'E_{b}')}; rms residual {f['residual_rms']:.3f} eV", file=file)
