"""The figures of one store (``activemat plot``): PNGs of what a campaign computed and learnt.

- ``gap_vs_x.png``: computed gaps against the alloying fraction, the model's
  composition average (:func:`activemat.analysis.curve.gap_curve`) with a
  2-sigma band of its joint-posterior model std, the bowing parameter b with
  its std in the title, and (for configuration pools) the model mean of
  every configuration;
- ``learning_curve.png``: cross-validated MAE against the number of DFT
  calculations, with the mean-value baseline (and test MAE when reserved);
- ``parity.png``: out-of-fold predictions against DFT;
- ``selection.png``: what was computed, in order, and why;
- ``experiment.png`` (only on request, ``--figures experiment``): this and
  other stores' model gap curves against the measured SiGe gap, drawn by
  :mod:`activemat.analysis.experiment_figure`.

:func:`plot_store` checks the request, fits the store's model once and draws
the figures asked for, each on its own Agg canvas
(:mod:`activemat.analysis.canvas`), never through pyplot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activemat.analysis.canvas import COLOURS, figure, legend_below, note
from activemat.analysis.curve import bowing_label, gap_curve, has_joint_covariance
from activemat.analysis.experiment_figure import check_comparable, compare_experiment
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


def _title(view: CampaignView, what: str) -> str:
    return f"{what} - {view.path.name}"


def _label_x(view: CampaignView) -> str:
    return f"{view.elements[1]} fraction x in {view.elements[0]}$_{{1-x}}${view.elements[1]}$_x$"


def plot_gap_vs_x(view: CampaignView, sm, path: Path, reference: CampaignView | None = None) -> None:
    fig, ax = figure()
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
        done = reference.completed(reference.preset)
        idx = np.fromiter(done, dtype=np.int64, count=len(done))
        ax.scatter(reference.candidates["x_b"][idx], list(done.values()), s=30, facecolor="none",
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
    legend_below(ax)
    fig.savefig(path, dpi=150)


def _per_n_train(snaps: dict) -> dict[str, np.ndarray]:
    """The last snapshot for each training size (a failure adds a snapshot without new data)."""
    n = snaps["n_train"]
    keep = np.array([i for i in range(len(n)) if i == len(n) - 1 or n[i + 1] != n[i]], dtype=int)
    return {k: np.asarray(v)[keep] for k, v in snaps.items() if np.ndim(v) == 1}


def plot_learning_curve(view: CampaignView, path: Path) -> None:
    fig, ax = figure()
    snaps = view.snapshots
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
            note(ax, "cross-validation needs at least 3 calculations")
        ax.set_ylim(bottom=0)
        legend_below(ax)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        note(ax, "no model snapshots yet (a model needs 2 calculations)")
    ax.set_xlabel("number of successful DFT calculations (training size)")
    ax.set_ylabel("error / std (eV)")
    ax.set_title(_title(view, "learning curve"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def plot_parity(view: CampaignView, sm, path: Path) -> dict:
    fig, ax = figure(5.2, 5.0)
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
        legend_below(ax, ncol=1, title=f"{scheme}, n = {len(sm.y)}: MAE {stats['mae']:.3f} eV, "
                      f"RMSE {stats['rmse']:.3f} eV, $R^2$ {stats['r2']:.3f}", title_fontsize=9)
    else:
        note(ax, "parity needs at least 3 successful calculations")
    ax.set_xlabel("DFT band gap (eV)")
    ax.set_ylabel("predicted band gap (eV)")
    ax.set_title(_title(view, f"parity ({sm.kind if sm is not None else 'no'} model)"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)
    return stats


def plot_selection(view: CampaignView, path: Path) -> None:
    fig, ax = figure(6.4, 4.0)
    t = view.table()
    order = t["row"] + 1
    xb = t[f"x_{view.b}"]
    present = [r for r in REASON_ORDER if r in set(t["reason"].tolist())]
    present += sorted(set(t["reason"].tolist()) - set(present))
    failed = np.isin(t["status"], [S.FAILED, S.INTERRUPTED])
    for reason in present:
        m = (t["reason"] == reason) & ~failed
        # a reason keeps its colour from store to store
        colour = COLOURS[(REASON_ORDER.index(reason) if reason in REASON_ORDER else len(REASON_ORDER))
                          % len(COLOURS)]
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
        note(ax, "no calculations yet")
    ax.set_ylim(-0.07, 1.1)
    ax.set_xlabel("calculation number (submission order)")
    ax.set_ylabel(f"{view.elements[1]} fraction x")
    ax.set_title(_title(view, "selection history"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)


def plot_store(store: str | Path | CampaignView, out_dir: str | Path, kind: str | None = None,
               figures=None, reference: str | Path | CampaignView | None = None, compare=(),
               results: dict | None = None, refit: bool = False, corrections=None) -> dict[str, Path]:
    """Write the store's figures as PNGs into ``out_dir`` (created if missing); return name -> path.

    ``figures`` is a list or a comma-separated string of names from :data:`FIGURES`
    (the default set) and :data:`EXTRA_FIGURES`.
    ``reference``, a store of the same space, adds its gaps to ``gap_vs_x`` as open circles.
    ``compare``: more stores (other fidelities) for the ``experiment`` figure, drawn after this one.
    ``results``, if given, receives ``results["experiment"]``, the numbers of
    :func:`~activemat.analysis.experiment_figure.compare_experiment`, and
    ``results["warnings"]``: one line each, e.g. a reference computed with another preset than the model's.
    ``refit`` optimises the models' hyperparameters again instead of reusing the latest snapshots'.
    ``corrections``: terms applied to the measured curve in the ``experiment`` figure and its deviations
    (names of the terms in the system's measured-gap file, comma-separated, or ``"all"``; default none).

    Raises
    ------
    InputError
        Unknown figure name, an output folder that is a file, a store
        with no calculation at all, ``compare`` or ``corrections`` without
        the ``experiment`` figure, an unknown correction name, or
        ``experiment`` on a store whose system has no measured-gap file.
    """
    view = open_campaign(store)
    figures = figure_names(figures)
    named = [n for n in (corrections.split(",") if isinstance(corrections, str) else corrections or ())
             if n.strip() and n.strip().lower() != "none"]
    if named and "experiment" not in figures:
        raise InputError("correction terms are only used by the experiment figure; add --figures experiment "
                         "(or experiment,gap_vs_x,...)")
    compare = [open_campaign(c) for c in (compare or ())]
    if compare and "experiment" not in figures:
        raise InputError("more than one store is only used by the experiment figure; add --figures experiment "
                         "(or experiment,gap_vs_x,...)")
    if "experiment" in figures:
        measured = None
        for v in [view, *compare]:
            measured = check_comparable(v, measured)
        corrections = measured.parse_corrections(corrections)
    if reference is not None:
        reference = open_reference(view, reference)
        if results is not None and preset_warning(view, reference):
            results.setdefault("warnings", []).append(preset_warning(view, reference))
    if view.n_calculations == 0:
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


def figure_names(figures=None) -> list[str]:
    """The figures asked for: a list or a comma-separated string of names (None: :data:`FIGURES`).

    >>> figure_names("parity, experiment")
    ['parity', 'experiment']

    Raises
    ------
    InputError
        A name that is neither in :data:`FIGURES` nor in :data:`EXTRA_FIGURES`.
    """
    if figures is None:
        return list(FIGURES)
    names = [f.strip() for f in (figures.split(",") if isinstance(figures, str) else figures) if f.strip()]
    unknown = sorted(set(names) - set(FIGURES) - set(EXTRA_FIGURES))
    if unknown:
        raise InputError(f"unknown figure {', '.join(unknown)}; choose from {', '.join(FIGURES + EXTRA_FIGURES)}")
    return names
