"""Predict band gaps from a store: the campaign's model, refitted on its results.

The model is rebuilt exactly as the loop builds it: the campaign's ``[model]``
(kind from the latest snapshot when a later run changed it), a
``StandardScaler`` fitted on the whole pool's features, the campaign seed,
and every successful calculation except held-out test candidates.

A composition is predicted as the multiplicity-weighted average over all its
configurations in the pool (a disorder average,
:func:`activemat.analysis.curve.composition_average`). Two uncertainties are
kept apart: the model std of that average, ``sqrt(w' Cov w)`` from the joint
posterior covariance of the latent (noise-free) gap over the composition's
configurations (never a sum of per-configuration stds; co-kriging models,
which have no joint covariance yet, report the fully correlated bound and
say so), and the configurational spread (the weighted std of the
per-configuration means), which is physics, not model error. A structure
file's ``model_std`` is the per-configuration predictive std, with the
fitted noise term (how far a new DFT result for it may scatter).
:mod:`activemat.analysis.curve` gives the whole curve E_g(x) with the same
per-composition model std (``predict --curve``), and the bowing parameter.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np

from activemat.campaign.config import ModelSection
from activemat.campaign.setup import MIN_TRAIN, model_factory, pretrain
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData
from activemat.learn.cokriging import CoKriging
from activemat.learn import MODEL_KINDS
from activemat.space.matching import Matcher
from activemat.store import schema as S

_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d*)+$")


@dataclass
class StoreModel:
    """A campaign's model refitted on a store's results.

    Attributes
    ----------
    kind : ``"gp"`` or ``"linear"``.
    model : the fitted regressor (scikit-learn contract, ``predict(X, return_std=True)``).
    train, y : training candidates and their gaps (eV).
    """

    view: CampaignView
    pool: object
    kind: str
    model: object
    train: np.ndarray
    y: np.ndarray

    @property
    def X(self) -> np.ndarray:
        return self.pool.features[self.train]

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.model.predict(np.atleast_2d(X), return_std=True)
        return np.asarray(mean, float), np.asarray(std, float)

    def x_range(self) -> tuple[float, float]:
        x = self.pool.x_b[self.train]
        return float(x.min()), float(x.max())


def model_settings(view: CampaignView, kind: str | None = None) -> ModelSection:
    """The [model] section to refit with: the campaign's, or ``kind`` instead (then without ARD, default
    restarts)."""
    config = view.config()
    latest = view.data.snapshots.get("model", np.array([], dtype=object))
    stored = str(latest[-1]).split(":")[0] if len(latest) else ""
    campaign_kind = stored if stored in MODEL_KINDS else config.model.kind
    kind = kind or campaign_kind
    if kind not in MODEL_KINDS:
        raise InputError(f"unknown model kind {kind!r}; use one of {', '.join(MODEL_KINDS)}")
    if kind == config.model.kind:
        return config.model
    return ModelSection(kind=kind)


def fit_store_model(store: str | Path | CampaignView, kind: str | None = None) -> StoreModel:
    """Refit the campaign's model on the store's successful calculations.

    Raises
    ------
    NotEnoughData
        Fewer than two successful (non-test) calculations.
    """
    view = open_campaign(store)
    section = model_settings(view, kind)
    train, y = view.training_set()
    if len(train) < MIN_TRAIN:
        raise NotEnoughData(f"{view.path} has {len(train)} successful calculation(s) to train on; a model needs at "
                            f"least {MIN_TRAIN}: run the campaign further (activemat run)")
    pool = view.pool()
    config = view.config()
    make_model = model_factory(section, config.campaign.seed, pool)
    if section.kind == "gp" and (config.calculator.cheaper or config.model.transfer_from):
        return StoreModel(view, pool, "co-kriging", _cokriging(view, config, pool, make_model), train, y)
    return StoreModel(view, pool, section.kind, make_model().fit(pool.features[train], y), train, y)


def _cokriging(view: CampaignView, config, pool, make_gp):
    """The loop's multi-fidelity or transfer model: cheaper presets' results (or the pretraining store) below,
    the campaign's preset on top."""
    if config.model.transfer_from:
        frozen, names = pretrain(config.model.transfer_from, pool, make_gp), [config.calculator.preset]
    else:
        frozen, names = None, config.calculator.presets
    levels = []
    for name in names:
        idx, gaps = view.results(name)
        if len(idx) < MIN_TRAIN:
            raise NotEnoughData(f"{view.path} has {len(idx)} successful {name} calculation(s); its co-kriging "
                                f"model needs {MIN_TRAIN} per preset: run the campaign further (activemat run)")
        levels.append((pool.features[idx], gaps))
    return CoKriging(make_gp, frozen=frozen).fit(levels)


def composition_average(sm: StoreModel, n_b: int) -> dict:
    """Multiplicity-weighted prediction over all pool configurations with ``n_b`` alloying atoms.

    :func:`activemat.analysis.curve.composition_average` with its defaults:
    ``model_std`` is the joint-posterior std of the average, equal to that
    composition's ``model_std`` in :func:`activemat.analysis.curve.gap_curve`.
    """
    from activemat.analysis.curve import composition_average as average  # curve imports this module

    return average(sm, n_b)


def _composition(sm: StoreModel, formula: str) -> dict:
    view, b = sm.view, sm.view.b
    n_b = view.n_b_of(formula)
    avg = composition_average(sm, n_b)
    x = n_b / view.n_sites
    done = view.data.completed(view.preset)
    computed = [(c, g) for c, g in done.items() if sm.pool.n_b[c] == n_b]
    lo, hi = sm.x_range()
    item = {"spec": formula, "type": "composition", "formula": sm.pool.formula(int(avg["configurations"][0])),
            f"n_{b}": int(n_b), f"x_{b}": x,
            **{k: avg[k] for k in ("gap", "model_std", "model_std_kind", "config_spread", "n_configurations",
                                   "n_used")},
            "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9),
            "computed": [{"candidate": int(c), "gap": float(g), "multiplicity": int(sm.pool.multiplicity[c])}
                         for c, g in computed]}
    return item


def _read_frames(path: Path) -> list:
    try:
        frames = ase.io.read(path, index=":")
    except Exception as exc:  # ASE raises many types for unreadable files; keep the cause chained
        raise InputError(f"cannot read structure file {path} with ase.io.read ({type(exc).__name__}: {exc}); "
                         "give a file ASE can read, e.g. .extxyz, .cif or a POSCAR") from exc
    if not frames:
        raise InputError(f"structure file {path} holds no structure; give a file with at least one frame")
    return frames


def _structures(sm: StoreModel, path: Path) -> list[dict]:
    view, b = sm.view, sm.view.b
    names = view.feature_names
    items = []
    frames = _read_frames(path)
    lo, hi = sm.x_range()
    matcher = None
    for i, atoms in enumerate(frames):
        if sm.pool.feature_kind == "orbits":  # defined on the supercell's sites only
            matcher = matcher or Matcher(sm.pool)
            cand, why = matcher.match(atoms)
            if cand is None:
                raise InputError(f"{path}: frame {i}: {why}; with space.features = \"orbits\" a structure must be "
                                 "a decoration of the campaign's supercell")
            feats = sm.pool.features[cand]
        else:  # defined on the parent lattice: a structure of any cell size is featurised as it is
            feats = sm.pool.featurize(atoms)
        mean, std = sm.predict(feats[None])
        symbols = np.array(atoms.get_chemical_symbols())
        n_b = int(np.sum(symbols == view.elements[1]))
        x = float(feats[0])
        formula = "".join(f"{e}{k}" for e, k in zip(view.elements, (len(atoms) - n_b, n_b)) if k)
        items.append({"spec": str(path), "type": "structure", "frame": i, "formula": formula,
                      "n_atoms": len(atoms), f"n_{b}": n_b, f"x_{b}": x, "gap": float(mean[0]),
                      "model_std": float(std[0]), "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9),
                      "features": dict(zip(names, map(float, feats)))})
    return items


def predict(store: str | Path | CampaignView, specs: list[str] | str, kind: str | None = None) -> dict:
    """Predict gaps (eV) for compositions (``"Si4Ge12"``) and/or structure files.

    Returns
    -------
    dict
        ``store``, ``model`` (kind), ``description`` (fitted hyperparameters),
        ``n_train`` and ``predictions``: one dict per composition or structure
        frame with ``gap`` and ``model_std`` and, for compositions,
        ``model_std_kind`` (``"joint posterior"``: the std of the average
        from the joint posterior covariance of its configurations; or
        ``"fully correlated bound"`` for co-kriging models),
        ``config_spread``, ``n_configurations`` and ``n_used`` (the
        configurations in that covariance, at most
        :data:`activemat.analysis.curve.MAX_CONFIGURATIONS`). A structure's
        ``model_std`` is its predictive std, fitted noise included.
    """
    specs = [specs] if isinstance(specs, str) else list(specs)
    if not specs:
        raise InputError("nothing to predict; give a composition such as Si4Ge12 or a structure file (or, for the "
                         "whole composition curve, activemat predict STORE --curve)")
    sm = fit_store_model(store, kind)
    items = []
    for spec in specs:
        path = Path(spec)
        if path.is_file():
            items += _structures(sm, path)
        elif _FORMULA.match(spec.strip()) and not path.suffix:
            items.append(_composition(sm, spec.strip()))
        elif path.suffix or "/" in spec:
            raise InputError(f"structure file not found: {spec}; check the path")
        else:
            example = f"{sm.pool.elements[0]}4{sm.pool.elements[1]}{sm.view.n_sites - 4}"
            raise InputError(f"{spec!r} is neither a composition nor a structure file; give a formula such as "
                             f"{example} or the path of a file ase.io.read can read")
    presets = sorted(set(sm.view.data.calculations["preset"][sm.view.data.status_mask(S.OK)].tolist()))
    return {"store": str(sm.view.path), "model": sm.kind, "description": sm.model.describe(),
            "n_train": int(len(sm.train)), "presets": presets, "predictions": items}


def render(result: dict, file=None) -> None:
    """Human-readable lines for :func:`predict`'s result."""
    file = file or sys.stdout
    print(f"{result['store']}: {result['model']} model refitted on {result['n_train']} calculations "
          f"({', '.join(result['presets']) or 'no preset'})", file=file)
    for p in result["predictions"]:
        xkey = next(k for k in p if k.startswith("x_"))
        where = p["spec"] if p["type"] == "composition" else f"{p['spec']}[{p['frame']}] {p['formula']}"
        if p["type"] == "composition":
            kind = "model std of the average, " + p["model_std_kind"]
            if p["n_used"] < p["n_configurations"]:
                kind += f" over {p['n_used']} sampled configurations"
        else:
            kind = "model std"
        line = (f"{where}: {xkey} = {p[xkey]:.4f}, predicted gap {p['gap']:.3f} eV"
                f" +/- {p['model_std']:.3f} eV ({kind})")
        if p["type"] == "composition":
            n = p["n_configurations"]
            line += (f", configurational spread {p['config_spread']:.3f} eV over {n} configuration"
                     f"{'s' if n != 1 else ''} (multiplicity-weighted)")
            if p["computed"]:
                gaps = ", ".join(f"{c['gap']:.3f}" for c in p["computed"])
                line += f"; computed: {gaps} eV"
        if p["extrapolation"]:
            line += f"; extrapolation: {xkey} outside the trained range"
        print(line, file=file)
