"""The model card of a store (``activemat inspect``): what the model is and how good it is.

Model type and fitted hyperparameters, training size, cross-validated MAE,
RMSE and R^2 (leave-one-out, or 20-fold above 20 points, as the loop), the
mean-value baseline and the linear baseline in x (least squares on the
composition) cross-validated the same way, with one line when the linear
baseline beats the model (:func:`baseline_wins`), the held-out test error
when the campaign reserved a test set, and for linear models the
coefficients per feature with importances (``|coefficient|`` x the feature's std
over the pool: the gap change, in eV, of a typical feature change).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from activemat.analysis.model import fit_store_model, model_settings
from activemat.campaign.setup import MIN_TRAIN
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError
from activemat.learn.cross_validation import MAX_FOLDS, cross_validate
from activemat.learn.linear import LinearModel
from activemat.space.features import class_names
from activemat.store import schema as S


def _nan_to_none(value):
    return None if value is None or value != value else float(value)


#: The unit of each hyperparameter the card shows (``card["hyperparameters"]["units"]``). The GP is fitted to
#: gaps divided by their std over the training set (``normalize_y``): its amplitude is in units of that std and
#: its noise level in units of its square; ``amplitude_ev`` and ``noise_std_ev`` are the same in eV.
UNITS = {
    "intercept": "eV", "residual_std": "eV",
    "rho": "eV per eV (scale of each level onto the next)", "levels": "",
    "gap_std": "eV (std of the training gaps: the GP's unit of gap)",
    "amplitude": "std(gap)", "amplitude_ev": "eV",
    "length_scale": "pool-standardised feature units",
    "nu": "Matern smoothness (dimensionless)",
    "noise_level": "var(gap)", "noise_std_ev": "eV (std of the fitted noise)",
    "log_marginal_likelihood": "nats",
}


def _hyperparameters(sm) -> dict:
    model = sm.model
    if sm.kind == "linear":
        out = {"intercept": float(model.intercept_), "residual_std": float(model.sigma_)}
    elif sm.kind == "co-kriging":
        out = {"rho": model.rhos_[1:], "levels": model.n_levels,
               "note": "rho: scale of each level onto the next (level 0 the cheapest)"}
    else:
        params = model.kernel_.get_params()
        out = {}
        for key, value in params.items():
            if key.endswith(("constant_value", "length_scale", "noise_level", "nu")) and "bounds" not in key:
                name = key.split("__")[-1]
                value = np.asarray(value, float)
                out[name] = float(value) if value.ndim == 0 else value.tolist()
        if any(key.endswith("__groups") and value is not None for key, value in params.items()):
            # ard = "classes": one length scale per cluster class, named by class
            scales = np.atleast_1d(out["length_scale"]).tolist()  # a float when every feature is of one class
            out["length_scale"] = dict(zip(class_names(sm.view.feature_names), scales))
        scale = float(model.y_std_)
        out["gap_std"] = scale
        if "constant_value" in out:
            out["amplitude"] = float(np.sqrt(out.pop("constant_value")))
            out["amplitude_ev"] = out["amplitude"] * scale
        if "noise_level" in out:
            out["noise_std_ev"] = float(np.sqrt(out["noise_level"])) * scale
        out["log_marginal_likelihood"] = float(model.gp_.log_marginal_likelihood_value_)
        out["note"] = ("length scales in pool-standardised feature units; amplitude in units of std(gap),"
                       " noise level in units of var(gap) (normalize_y)")
    out["units"] = {k: UNITS[k] for k in out if k in UNITS}
    return out


def _with_unit(name: str, value, unit: str, features) -> str:
    """One hyperparameter as the card prints it: the value, then its unit."""
    if isinstance(value, dict):
        shown = ", ".join(f"{k} {x:.4g}" for k, x in value.items())
    elif isinstance(value, list):
        shown = ", ".join(f"{x:.4g}" for x in value)
        if name == "length_scale" and len(value) == len(features):
            shown = ", ".join(f"{f} {x:.4g}" for f, x in zip(features, value))
    else:
        shown = f"{value:+.4f}" if name == "intercept" else f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{shown} {unit}".strip()


def linear_baseline_mae(X: np.ndarray, y: np.ndarray) -> float:
    """Cross-validated MAE (eV) of the linear baseline in x: least squares on the composition (the first feature)
    alone, with the splits of :func:`~activemat.learn.cross_validation.cross_validate`."""
    x = X[:, :1]
    return cross_validate(LinearModel().fit(x, y), x, y)["cv_mae"]


def baseline_wins(card: dict) -> str | None:
    """One line when the linear baseline in x cross-validates better than the model (None otherwise)."""
    model, base = card.get("cv_mae"), card.get("linear_baseline_mae")
    if model is None or base is None or not base < model:
        return None
    return (f"the linear baseline in x wins: CV MAE {base:.4f} eV against the model's {model:.4f} eV; a straight "
            "line in x predicts these results better than the model until more are computed")


def _coefficients(sm) -> list[dict]:
    names = sm.view.feature_names
    spread = sm.pool.features.std(axis=0)
    rows = [{"feature": n, "coef": float(c), "feature_std": float(s), "importance": float(abs(c) * s)}
            for n, c, s in zip(names, sm.model.coef_, spread)]
    return sorted(rows, key=lambda r: -r["importance"])


def open_reference(view: CampaignView, reference: str | Path | CampaignView) -> CampaignView:
    """Open a reference store and check it holds the same candidate pool as ``view``."""
    ref = open_campaign(reference)
    same = (ref.elements == view.elements and ref.supercell == view.supercell
            and np.array_equal(ref.candidates["decoration"], view.candidates["decoration"]))
    if not same:
        raise InputError(f"reference {ref.path} has a different candidate pool from {view.path}; "
                         "give a reference store of the same [space]")
    return ref


def preset_warning(view: CampaignView, ref: CampaignView) -> str | None:
    """One line if a reference store's gaps come from another calculator preset than the ones its model
    learns (their difference then shows up as model error); None if the presets agree."""
    if ref.preset == view.preset:
        return None
    return (f"reference {ref.path} holds {ref.preset} gaps but the model of {view.path} learns {view.preset} gaps: "
            "the comparison includes the difference between the two presets' settings, not only the model's error"
            f"; give a reference computed with {view.preset} to score the model alone")


def reference_errors(sm, reference: str | Path | CampaignView) -> dict:
    """Errors of a store model against every successful calculation of a reference store.

    The reference must hold the same candidate pool (same ``[space]``), e.g.
    a store that computed every candidate. ``unseen`` rows are the
    reference candidates the model was not trained on. The reference is
    scored at its own preset (``preset``); when that is not the model's
    (``model_preset``), ``warning`` says so (``activemat inspect`` prints it).
    """
    ref = open_reference(sm.view, reference)
    done = ref.completed(ref.preset)
    if not done:
        raise InputError(f"reference {ref.path} has no successful calculations; give a store with results")
    idx = np.fromiter(done, dtype=np.int64, count=len(done))
    y = np.fromiter(done.values(), dtype=float, count=len(done))
    mean, std = sm.predict(sm.pool.features[idx])
    err = mean - y
    unseen = ~np.isin(idx, sm.train)
    out = {"store": str(ref.path), "presets": sorted(set(ref.calculations["preset"][ref.status_mask(S.OK)])),
           "preset": ref.preset, "model_preset": sm.view.preset, "warning": preset_warning(sm.view, ref),
           "n": int(len(idx)), "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
           "max_error": float(np.max(np.abs(err))), "n_unseen": int(unseen.sum()),
           "mae_unseen": None, "coverage_2sigma_unseen": None}
    if unseen.any():
        out["mae_unseen"] = float(np.mean(np.abs(err[unseen])))
        out["coverage_2sigma_unseen"] = float(np.mean(np.abs(err[unseen]) <= 2 * std[unseen]))
    return out


def model_card(store: str | Path | CampaignView, kind: str | None = None,
               reference: str | Path | CampaignView | None = None, *, refit: bool = False) -> dict:
    """Everything ``activemat inspect`` shows, as a JSON-ready dict.

    A store with fewer than two successful calculations gives a card with
    ``model`` None and the reason in ``note``. ``reference`` adds the errors
    against another store of the same space (see :func:`reference_errors`).
    """
    view = open_campaign(store)
    snaps = view.snapshots
    train, y = view.training_set()
    test_idx, test_y = view.test_set()
    settings = model_settings(view, kind)
    card = {"store": str(view.path), "model": None, "kind": settings.kind, "features": list(view.feature_names),
            "n_train": int(len(train)), "n_candidates": int(len(view.candidates["n_b"])),
            "n_test": int(len(test_idx)), "n_test_reserved": int(view.test.sum()),
            "latest_snapshot": _latest_snapshot(snaps)}
    if len(train) < MIN_TRAIN:
        card["note"] = (f"no model yet: {len(train)} successful calculation(s), a model needs {MIN_TRAIN}; "
                        "run the campaign further")
        return card
    sm = fit_store_model(view, kind, refit=refit)
    X = sm.X
    # co-kriging: no closed-form cross-validation (each fold would refit every level)
    cv = {} if sm.kind == "co-kriging" else cross_validate(sm.model, X, y)
    if cv:
        cv["linear_baseline_mae"] = linear_baseline_mae(X, y)
    fit = sm.model.predict(X)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    card.update({
        "model": sm.model.describe(),
        "fitted": sm.hyperparameters,
        "hyperparameters": _hyperparameters(sm),
        "cv_scheme": None if sm.kind == "co-kriging" else "leave-one-out" if len(y) <= MAX_FOLDS else f"{MAX_FOLDS}-fold",
        **{k: _nan_to_none(v) for k, v in cv.items()},
        "fit_mae": float(np.mean(np.abs(fit - y))),
        "fit_r2": 1.0 - float(np.sum((fit - y) ** 2)) / ss_tot if ss_tot > 0 else None,
        "gap_range": [float(y.min()), float(y.max())],
    })
    card["baseline_wins"] = baseline_wins(card)
    if sm.kind == "linear":
        card["coefficients"] = _coefficients(sm)
    if len(test_idx):
        pred = sm.model.predict(sm.pool.features[test_idx])
        card["test_mae"] = float(np.mean(np.abs(pred - test_y)))
        card["test_rmse"] = float(np.sqrt(np.mean((pred - test_y) ** 2)))
    if reference is not None:
        card["reference"] = reference_errors(sm, reference)
    return card


def _latest_snapshot(snaps: dict) -> dict | None:
    if not len(snaps.get("iteration", [])):
        return None
    keys = ("iteration", "n_train", "cv_mae", "cv_rmse", "cv_r2", "baseline_mae", "max_std", "test_mae", "model")
    out = {}
    for k in keys:
        if k not in snaps:
            continue
        v = snaps[k][-1]
        out[k] = str(v) if k == "model" else int(v) if k in ("iteration", "n_train") else _nan_to_none(v)
    return out


def _ev(value) -> str:
    return "-" if value is None else f"{value:.4f} eV"


def render(card: dict, file=None) -> None:
    """Print a model card as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=None if (file or sys.stdout).isatty() else 120)
    t = Table(title=f"model card: {card['store']}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("model", card["model"] or f"{card['kind']} (not fitted)")
    t.add_row("training size", f"{card['n_train']} calculations of {card['n_candidates']} candidates")
    if card.get("fitted"):
        t.add_row("fitted", card["fitted"])
    t.add_row("features", ", ".join(card["features"]))
    if card["model"] is None:
        t.add_row("note", card["note"])
        console.print(t)
        return
    hp = card["hyperparameters"]
    units = hp.get("units", {})
    for k, v in hp.items():
        if k not in ("note", "units"):
            label = k.replace("_ev", " (eV)").replace("_", " ")
            t.add_row(f"  {label}", _with_unit(k, v, units.get(k, ""), card["features"]))
    if card["cv_scheme"]:
        t.add_row(f"CV ({card['cv_scheme']}) MAE", _ev(card["cv_mae"]))
        t.add_row("CV RMSE", _ev(card["cv_rmse"]))
        t.add_row("CV R^2", "-" if card["cv_r2"] is None else f"{card['cv_r2']:.3f}")
        t.add_row("baseline MAE (training mean)", _ev(card["baseline_mae"]))
        t.add_row("baseline MAE (linear in x)", _ev(card.get("linear_baseline_mae")))
        if card.get("baseline_wins"):
            t.add_row("[bold red]baseline wins[/]", card["baseline_wins"])
    t.add_row("fit R^2 (training)", "-" if card["fit_r2"] is None else f"{card['fit_r2']:.3f}")
    t.add_row("fit MAE (training)", _ev(card["fit_mae"]))
    if card["n_test_reserved"]:
        t.add_row("held-out test", f"{card['n_test']} computed of {card['n_test_reserved']} reserved")
        t.add_row("test MAE", _ev(card.get("test_mae")))
        snap_test = (card["latest_snapshot"] or {}).get("test_mae")
        if snap_test is not None:
            t.add_row("test MAE (latest snapshot)", _ev(snap_test))
    else:
        t.add_row("held-out test", "none reserved")
    ref = card.get("reference")
    if ref:
        t.add_row("reference", f"{ref['store']} ({ref.get('preset') or ', '.join(ref['presets'])}): {ref['n']} "
                  f"calculations, {ref['n_unseen']} not trained on")
        if ref.get("warning"):
            t.add_row("[bold red]warning[/]", f"[bold red]presets differ:[/] reference {ref['preset']}, model "
                      f"{ref['model_preset']}; the errors below include the difference between the presets")
        t.add_row("reference MAE / RMSE / max", f"{ref['mae']:.4f} / {ref['rmse']:.4f} / {ref['max_error']:.4f} eV")
        if ref["n_unseen"]:
            t.add_row("reference MAE (not trained on)", _ev(ref["mae_unseen"]))
            t.add_row("within 2 sigma (not trained on)", f"{100 * ref['coverage_2sigma_unseen']:.0f} %")
    if card["n_train"] < 3:
        t.add_row("note", "cross-validation needs at least 3 calculations")
    console.print(t)
    if "coefficients" in card:
        c = Table(title="linear coefficients; importance = |coef| x feature std (pool)")
        for name in ("feature", "coef (eV per unit)", "feature std", "importance (eV)"):
            c.add_column(name, justify="left" if name == "feature" else "right")
        c.add_row("intercept", f"{card['hyperparameters']['intercept']:+.4f}", "", "")
        for r in card["coefficients"]:
            c.add_row(r["feature"], f"{r['coef']:+.4f}", f"{r['feature_std']:.4f}", f"{r['importance']:.4f}")
        console.print(c)
