"""Predict band gaps from a store: the campaign's model, rebuilt on its results.

The model is rebuilt exactly as the loop builds it: the campaign's ``[model]``
(kind from the latest snapshot when a later run changed it), a
``StandardScaler`` fitted on the whole pool's features, the campaign seed,
and every successful calculation except held-out test candidates. Its
hyperparameters are the latest snapshot's, stored exactly
(``snapshots/hyperparameters``): the model is fitted with them fixed, no
marginal-likelihood optimisation (a Cholesky factorisation, milliseconds),
and so is the loop's own last model. They are optimised again only when
asked (``refit=True``, ``--refit``), for another model kind, or for a store
whose snapshots predate stored hyperparameters (schema < 5).

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

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np

from activemat.campaign.config import ModelSection
from activemat.campaign.setup import MIN_TRAIN, model_factory, pretrain
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData, SpaceError
from activemat.learn.cokriging import CoKriging
from activemat.learn import MODEL_KINDS
from activemat.learn.models import reuse_state
from activemat.space.matching import Matcher
from activemat.store import schema as S

# A formula as a user types it: counts may be missing (SiGe), integers or fractions (Si0.5Ge0.5).
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?(?:\d+\.?\d*|\.\d+)?)+$")


@dataclass
class StoreModel:
    """A campaign's model rebuilt on a store's results.

    Attributes
    ----------
    kind : ``"gp"``, ``"linear"`` or ``"co-kriging"``.
    model : the fitted regressor (scikit-learn contract, ``predict(X, return_std=True)``).
    train, y : training candidates and their gaps (eV).
    hyperparameters : how the hyperparameters were found, one line: those of a snapshot (``stored``), or
        optimised now, and why.
    snapshot : iteration of the snapshot whose hyperparameters were reused (None if optimised now).
    """

    view: CampaignView
    pool: object
    kind: str
    model: object
    train: np.ndarray
    y: np.ndarray
    hyperparameters: str = ""
    snapshot: int | None = None
    matcher: Matcher | None = field(default=None, repr=False)  # built on the first structure to match (orbits)

    @property
    def X(self) -> np.ndarray:
        return self.pool.features[self.train]

    @property
    def stored(self) -> bool:
        """Whether the hyperparameters are a snapshot's (nothing was optimised)."""
        return self.snapshot is not None

    def features(self, items) -> np.ndarray:
        """Feature rows of ``items``: an ``ase.Atoms``, a list of them, or feature rows already."""
        from ase import Atoms

        if isinstance(items, Atoms):
            items = [items]
        if isinstance(items, (list, tuple)) and items and all(isinstance(a, Atoms) for a in items):
            return np.array([_featurize(self, a, f"atoms[{i}]") for i, a in enumerate(items)])
        return np.atleast_2d(np.asarray(items, float))

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean and predictive std (eV) of feature rows ``X``, or of ``ase.Atoms`` (one or a list)."""
        mean, std = self.model.predict(self.features(X), return_std=True)
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


def stored_state(view: CampaignView, kind: str) -> tuple[dict | None, int | None, str]:
    """The latest snapshot's exact hyperparameters, if they are of a ``kind`` model.

    Returns
    -------
    state, iteration, why
        The state (:meth:`GPRegressor.state`, :meth:`CoKriging.state`) and its snapshot's iteration; or None,
        None and why they cannot be reused.
    """
    snaps = view.data.snapshots
    if not len(snaps["iteration"]):
        return None, None, "the store has no snapshot yet"
    text = str(snaps["hyperparameters"][-1])
    if not text:
        return None, None, ("its latest snapshot has no stored hyperparameters (written before store schema 5, "
                            "or too long to store)")
    try:
        state = json.loads(text)
    except ValueError:
        return None, None, "its latest snapshot's hyperparameters do not parse"
    if state.get("kind") != kind:
        return None, None, f"its latest snapshot is of a {state.get('kind')} model, not {kind}"
    return state, int(snaps["iteration"][-1]), ""


def fit_store_model(store: str | Path | CampaignView, kind: str | None = None, *, refit: bool = False) -> StoreModel:
    """The campaign's model on the store's successful calculations, with the latest snapshot's hyperparameters.

    Parameters
    ----------
    kind : a model kind instead of the campaign's (its hyperparameters are optimised now, unless the latest
        snapshot is of that kind).
    refit : optimise the hyperparameters again (the loop's full search with restarts) instead of reusing the
        stored ones.

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
    multi = section.kind == "gp" and bool(config.calculator.cheaper or config.model.transfer_from)
    model_kind = "co-kriging" if multi else section.kind
    state, snapshot, why = (None, None, "asked (--refit)") if refit else stored_state(view, model_kind)

    def build(state):
        if multi:
            return _cokriging(view, config, pool, make_model, state)
        model = make_model() if state is None else reuse_state(make_model(), state)
        return model.fit(pool.features[train], y)

    try:
        model = build(state)
    except ValueError as exc:
        if state is None:
            raise
        state, snapshot, why = None, None, f"its stored hyperparameters do not fit this model ({exc})"
        model = build(None)
    if model_kind == "linear":
        how = "least squares (no hyperparameters to optimise)"
    elif state is not None:
        how = f"hyperparameters of snapshot {snapshot} (stored, not optimised again)"
    else:
        how = f"hyperparameters optimised now: {why}"
    return StoreModel(view, pool, model_kind, model, train, y, hyperparameters=how, snapshot=snapshot)


def _cokriging(view: CampaignView, config, pool, make_gp, state: dict | None = None):
    """The loop's multi-fidelity or transfer model: cheaper presets' results (or the pretraining store) below,
    the campaign's preset on top; with ``state`` (:meth:`CoKriging.state`), every level's stored kernel and
    rho instead of optimised ones."""
    if config.model.transfer_from:
        first = {"kind": "co-kriging", "levels": state["levels"][:1]} if state else None
        frozen = pretrain(config.model.transfer_from, pool, make_gp, fixed=first)
        names = [config.calculator.preset]
    else:
        frozen, names = None, config.calculator.presets
    levels = []
    for name in names:
        idx, gaps = view.results(name)
        if len(idx) < MIN_TRAIN:
            raise NotEnoughData(f"{view.path} has {len(idx)} successful {name} calculation(s); its co-kriging "
                                f"model needs {MIN_TRAIN} per preset: run the campaign further (activemat run)")
        levels.append((pool.features[idx], gaps))
    return CoKriging(make_gp, frozen=frozen, fixed=state).fit(levels)


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


def _featurize(sm: StoreModel, atoms, where: str) -> np.ndarray:
    """Features of one structure: its pool row (orbit features, defined on the supercell's sites only), or its
    own features (defined on the parent lattice: any cell size)."""
    if sm.pool.feature_kind == "orbits":
        if sm.matcher is None:
            sm.matcher = Matcher(sm.pool)
        cand, why = sm.matcher.match(atoms)
        if cand is None:
            raise InputError(f"{where}: {why}; with space.features = \"orbits\" a structure must be a decoration "
                             "of the campaign's supercell")
        return sm.pool.features[cand]
    return sm.pool.featurize(atoms)


def _structure(sm: StoreModel, atoms, spec: str, frame: int) -> dict:
    view, b = sm.view, sm.view.b
    where = f"{spec}: frame {frame}" if spec and not spec.startswith("atoms[") else spec
    feats = _featurize(sm, atoms, where)
    mean, std = sm.model.predict(feats[None], return_std=True)
    symbols = np.array(atoms.get_chemical_symbols())
    n_b = int(np.sum(symbols == view.elements[1]))
    x = float(feats[0])
    lo, hi = sm.x_range()
    formula = "".join(f"{e}{k}" for e, k in zip(view.elements, (len(atoms) - n_b, n_b)) if k)
    return {"spec": spec, "type": "structure", "frame": frame, "formula": formula, "n_atoms": len(atoms),
            f"n_{b}": n_b, f"x_{b}": x, "gap": float(mean[0]), "model_std": float(std[0]),
            "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9),
            "features": dict(zip(view.feature_names, map(float, feats)))}


def _structures(sm: StoreModel, path: Path) -> list[dict]:
    return [_structure(sm, atoms, str(path), i) for i, atoms in enumerate(_read_frames(path))]


#: Suffixes that name a structure file even when it does not exist (a formula never has one).
_STRUCTURE_SUFFIXES = {".xyz", ".extxyz", ".cif", ".traj", ".vasp", ".json", ".db", ".pdb", ".xsf", ".in", ".out"}


def predict(store: str | Path | CampaignView | StoreModel, specs, kind: str | None = None, *,
            refit: bool = False) -> dict:
    """Predict gaps (eV) for compositions (``"Si4Ge12"``, ``"SiGe3"``, ``"Si0.25Ge0.75"``), structure files
    and ``ase.Atoms``.

    Parameters
    ----------
    store : a store (path or view), or a model already built (:func:`fit_store_model`; then ``kind`` and
        ``refit`` are ignored).
    specs : one or a list of: a formula (a composition of the campaign's cell, or one that scales to it);
        a structure file (anything ``ase.io.read`` reads, every frame); an ``ase.Atoms``.
    kind : a model kind instead of the campaign's.
    refit : optimise the hyperparameters again instead of reusing the latest snapshot's
        (:func:`fit_store_model`).

    Returns
    -------
    dict
        ``store``, ``model`` (kind), ``description`` (fitted hyperparameters),
        ``hyperparameters`` (whether they are a snapshot's or optimised now),
        ``n_train`` and ``predictions``: one dict per composition, structure
        or structure frame with ``gap`` and ``model_std`` and, for compositions,
        ``model_std_kind`` (``"joint posterior"``: the std of the average
        from the joint posterior covariance of its configurations; or
        ``"fully correlated bound"`` for co-kriging models),
        ``config_spread``, ``n_configurations`` and ``n_used`` (the
        configurations in that covariance, at most
        :data:`activemat.analysis.curve.MAX_CONFIGURATIONS`). A structure's
        ``model_std`` is its predictive std, fitted noise included.
    """
    from ase import Atoms

    specs = [specs] if isinstance(specs, (str, Path, Atoms)) else list(specs)
    if not specs:
        raise InputError("nothing to predict; give a composition such as Si4Ge12 or a structure file (or, for the "
                         "whole composition curve, activemat predict STORE --curve)")
    sm = store if isinstance(store, StoreModel) else fit_store_model(store, kind, refit=refit)
    items = []
    for i, spec in enumerate(specs):
        if isinstance(spec, Atoms):
            items.append(_structure(sm, spec, f"atoms[{i}]", 0))
            continue
        if not isinstance(spec, (str, Path)):
            raise InputError(f"cannot predict {type(spec).__name__} {str(spec)[:40]!r}; give a formula, a structure "
                             "file or an ase.Atoms")
        text = str(spec).strip()
        path = Path(text)
        if path.is_file():
            items += _structures(sm, path)
        elif isinstance(spec, str) and _FORMULA.match(text) and path.suffix.lower() not in _STRUCTURE_SUFFIXES:
            try:
                items.append(_composition(sm, text))
            except SpaceError as exc:
                if "not in space.elements" not in str(exc) or any(c.isdigit() for c in text):
                    raise
                # letters only, such as POSCAR: a missing file is as likely as a formula of other elements
                raise InputError(f"{exc}; or, if {text!r} is a structure file, it was not found: check the path"
                                 ) from None
        elif path.suffix or "/" in text:
            raise InputError(f"structure file not found: {text}; check the path")
        else:
            example = f"{sm.pool.elements[0]}4{sm.pool.elements[1]}{sm.view.n_sites - 4}"
            raise InputError(f"{text!r} is neither a composition nor a structure file; give a formula such as "
                             f"{example} or the path of a file ase.io.read can read")
    presets = sorted(set(sm.view.data.calculations["preset"][sm.view.data.status_mask(S.OK)].tolist()))
    return {"store": str(sm.view.path), "model": sm.kind, "description": sm.model.describe(),
            "hyperparameters": sm.hyperparameters, "n_train": int(len(sm.train)), "presets": presets,
            "predictions": items}


def render(result: dict, file=None) -> None:
    """Human-readable lines for :func:`predict`'s result."""
    file = file or sys.stdout
    print(f"{result['store']}: {result['model']} model on {result['n_train']} calculations "
          f"({', '.join(result['presets']) or 'no preset'}); {result['hyperparameters']}", file=file)
    for p in result["predictions"]:
        xkey = next(k for k in p if k.startswith("x_"))
        if p["type"] == "composition":
            where = p["spec"] if p["spec"] == p["formula"] else f"{p['spec']} ({p['formula']})"
        elif p["spec"].startswith("atoms["):
            where = f"{p['spec']} {p['formula']}"
        else:
            where = f"{p['spec']}[{p['frame']}] {p['formula']}"
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
