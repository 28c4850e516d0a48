"""A store's model, as every reader sees it: the campaign's model rebuilt on the store's results.

The model is the loop's own (:class:`activemat.campaign.model.CampaignModel`):
the campaign's ``[model]`` (its kind as the latest snapshot's stored state
names it, when a later run changed it), a ``StandardScaler`` fitted on the
whole pool's features, the campaign seed, every successful calculation
except held-out test candidates, per level for a co-kriging. Its
hyperparameters are the latest snapshot's, stored exactly
(``snapshots/hyperparameters``): the model is fitted with them fixed, no
marginal-likelihood optimisation (a Cholesky factorisation, milliseconds),
so it is the loop's last model to rounding. They are optimised again only
when asked (``refit=True``, ``--refit``), for another model kind, or for a
store whose snapshots predate stored hyperparameters (schema < 5).
``predict``, ``curve``, ``inspect``, ``plot``, ``view`` and
:class:`activemat.Store` all read through :func:`fit_store_model`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from activemat.campaign.config import ModelSection
from activemat.campaign.model import COKRIGING, CampaignModel, model_kind, state_kind, stored_model_state
from activemat.campaign.setup import MIN_TRAIN
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.errors import InputError, NotEnoughData
from activemat.learn import MODEL_KINDS
from activemat.space.matching import Matcher


@dataclass
class StoreModel:
    """A campaign's model rebuilt on a store's results.

    Attributes
    ----------
    kind : ``"gp"``, ``"linear"`` or ``"co-kriging"``.
    model : the fitted regressor (scikit-learn contract, ``predict(X, return_std=True)``; ``latent_cov`` for
        the joint posterior).
    train, y : training candidates and their gaps (eV) at the campaign's own preset.
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
            return np.array([self.featurize(a, f"atoms[{i}]") for i, a in enumerate(items)])
        return np.atleast_2d(np.asarray(items, float))

    def featurize(self, atoms, where: str) -> np.ndarray:
        """Features of one structure: its pool row (orbit features, defined on the supercell's sites only), or
        its own features (defined on the parent lattice: any cell size). InputError names ``where``."""
        if self.pool.feature_kind == "orbits":
            if self.matcher is None:
                self.matcher = Matcher(self.pool)
            cand, why = self.matcher.match(atoms)
            if cand is None:
                raise InputError(f"{where}: {why}; with space.features = \"orbits\" a structure must be a "
                                 "decoration of the campaign's supercell")
            return self.pool.features[cand]
        return self.pool.featurize(atoms)

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean and predictive std (eV) of feature rows ``X``, or of ``ase.Atoms`` (one or a list)."""
        mean, std = self.model.predict(self.features(X), return_std=True)
        return np.asarray(mean, float), np.asarray(std, float)

    def x_range(self) -> tuple[float, float]:
        x = self.pool.x_b[self.train]
        return float(x.min()), float(x.max())


def latest_state(view: CampaignView) -> tuple[dict | None, int | None, str]:
    """The latest snapshot's exact hyperparameters.

    Returns
    -------
    state, iteration, why
        The state (:meth:`GPRegressor.state`, :meth:`CoKriging.state`) and its snapshot's iteration; or None,
        None and why there is none to reuse.
    """
    snaps = view.snapshots
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
    return state, int(snaps["iteration"][-1]), ""


def model_settings(view: CampaignView, kind: str | None = None) -> ModelSection:
    """The [model] section to rebuild with: the campaign's (of the kind its latest snapshot's state names, when
    a later run changed it), or ``kind`` instead (then without ARD, default restarts)."""
    return _section(view.config(), latest_state(view)[0], kind, stored_model_state(view))


def _section(config, state: dict | None, kind: str | None, stored: dict | None = None) -> ModelSection:
    """:func:`model_settings` of a parsed campaign file and its latest stored ``state`` (whose prior mean a file
    without ``mean`` keeps)."""
    last = state_kind(state)
    kind = kind or (last if last in MODEL_KINDS else config.model.kind)
    if kind not in MODEL_KINDS:
        raise InputError(f"unknown model kind {kind!r}; use one of {', '.join(MODEL_KINDS)}")
    section = config.model if kind == config.model.kind else ModelSection(kind=kind)
    # a file without ``mean`` keeps the mean of the stored model (constant before the linear default)
    return section.settled(multi=model_kind(config, section) == COKRIGING, stored=stored)


def _levels(view: CampaignView, cm: CampaignModel, pool) -> tuple[list, list]:
    """Features and gaps of each fitted level's preset; NotEnoughData below MIN_TRAIN results at a co-kriging
    level (the campaign's own preset is checked before, by :func:`fit_store_model`)."""
    X_levels, y_levels = [], []
    for name in cm.presets:
        idx, gaps = view.results(name)
        if len(idx) < MIN_TRAIN:
            raise NotEnoughData(f"{view.path} has {len(idx)} successful {name} calculation(s); its co-kriging "
                                f"model needs {MIN_TRAIN} per preset: run the campaign further (activemat run)")
        X_levels.append(pool.features[idx])
        y_levels.append(gaps)
    return X_levels, y_levels


def fit_store_model(store: str | Path | CampaignView, kind: str | None = None, *, refit: bool = False,
                    preset: str | None = None) -> StoreModel:
    """The campaign's model on the store's successful calculations, with the latest snapshot's hyperparameters.

    Parameters
    ----------
    kind : a model kind instead of the campaign's (its hyperparameters are optimised now, unless the latest
        snapshot is of that kind).
    refit : optimise the hyperparameters again (the loop's full search with restarts) instead of reusing the
        stored ones.
    preset : of a multi-fidelity or transfer store, one level alone: a single-level model (the campaign's kind,
        or ``kind``) on that preset's results, its hyperparameters optimised now; of a single-level store, its
        own preset (InputError for any other).

    Raises
    ------
    NotEnoughData
        Fewer than two successful (non-test) calculations (at any level of a co-kriging).
    """
    view = open_campaign(store)
    config, pool = view.config(), view.pool()
    if preset is not None:
        presets = config.calculator.presets
        if preset not in presets:
            raise InputError(f"{view.path}: the campaign has no preset {preset!r}; its presets: {', '.join(presets)}")
        if model_kind(config) == COKRIGING:
            return _fit_level(view, config, pool, preset, kind)
    latest = latest_state(view)
    section = _section(config, latest[0], kind, stored_model_state(view))
    train, y = view.training_set()
    if len(train) < MIN_TRAIN:
        raise NotEnoughData(f"{view.path} has {len(train)} successful calculation(s) to train on; a model needs at "
                            f"least {MIN_TRAIN}: run the campaign further (activemat run)")
    state, snapshot, why = (None, None, "asked (--refit)") if refit else latest
    wanted = model_kind(config, section)
    if state is not None and state_kind(state) != wanted:
        state, snapshot, why = None, None, f"its latest snapshot is of a {state.get('kind')} model, not {wanted}"
    try:
        cm = CampaignModel.of(config, pool, section=section, pretrained_state=state)
        model = cm.fit(*_levels(view, cm, pool), state=state)
    except ValueError as exc:
        if state is None:
            raise
        state, snapshot, why = None, None, f"its stored hyperparameters do not fit this model ({exc})"
        cm = CampaignModel.of(config, pool, section=section)
        model = cm.fit(*_levels(view, cm, pool))
    if cm.kind == "linear":
        how = "least squares (no hyperparameters to optimise)"
    elif state is not None:
        how = f"hyperparameters of snapshot {snapshot} (stored, not optimised again)"
    else:
        how = f"hyperparameters optimised now: {why}"
    return StoreModel(view, pool, cm.kind, model, train, y, hyperparameters=how, snapshot=snapshot)


def _fit_level(view: CampaignView, config, pool, preset: str, kind: str | None) -> StoreModel:
    """:func:`fit_store_model` of one level of a multi-fidelity store, as a single-level model."""
    section = ModelSection(kind=kind) if kind and kind != config.model.kind else config.model
    cm = CampaignModel.level(config, pool, preset, section)
    idx, gaps = view.results(preset)
    if len(idx) < MIN_TRAIN:
        raise NotEnoughData(f"{view.path} has {len(idx)} successful {preset} calculation(s); a model of that level "
                            f"needs at least {MIN_TRAIN}: run the campaign further (activemat run)")
    model = cm.fit([pool.features[idx]], [gaps])
    return StoreModel(view, pool, cm.kind, model, idx, gaps,
                      hyperparameters=f"hyperparameters optimised now: the {preset} level alone of a multi-fidelity "
                                      "store")
