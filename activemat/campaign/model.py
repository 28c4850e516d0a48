"""The campaign's model, one rule for the loop and every reader: which model a campaign fits, on what, and how.

A campaign file decides its model once (:func:`model_kind`): a recursive
co-kriging when it computes cheaper presets (``[calculator] cheaper``) or
pretrains on a previous campaign (``[model] transfer_from``), else its
``[model] kind``. :class:`CampaignModel` holds what every fit of that model
shares (the regressor factory of :func:`activemat.campaign.setup.model_factory`,
the presets its levels train on, the frozen pretrained level) and fits it on
results per level, in one of three ways:

- with a stored state (a snapshot's exact hyperparameters): nothing is optimised, so a reader rebuilds the
  loop's model on the same data to rounding (``predict``, ``curve``, ``inspect``, ``plot``, ``view``,
  :class:`activemat.Store`);
- warm-started from the previous fit, on the refit policy of
  :class:`activemat.learn.refit.RefitSchedule` (the loop; replay);
- from scratch (a full hyperparameter search).

The loop's :class:`~activemat.campaign.learner.Learner` and the readers'
:func:`activemat.analysis.model.fit_store_model` both call it, so the two
cannot disagree on what a campaign's model is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from activemat.campaign.config import CampaignConfig, ModelSection
from activemat.campaign.setup import ModelFactory, model_factory, pretrain
from activemat.campaign.stored import open_campaign
from activemat.learn.cokriging import CoKriging
from activemat.learn.models import reuse_state
from activemat.learn.refit import RefitSchedule

COKRIGING = "co-kriging"


def model_kind(config: CampaignConfig, section: ModelSection | None = None) -> str:
    """``"co-kriging"`` for a multi-fidelity or transfer campaign, else its ``[model] kind``; with ``section`` (a
    reader's [model] of another kind), that kind on the campaign's own preset."""
    if section is not None and section.kind != config.model.kind:
        return section.kind
    if len(config.calculator.presets) > 1 or config.model.transfer_from:
        return COKRIGING
    return config.model.kind


def stored_model_state(store) -> dict | None:
    """The model state (hyperparameters) of a store's latest snapshot, for
    :meth:`~activemat.campaign.sections.ModelSection.settled`: None if the store has no snapshot (a campaign
    that has fitted no model yet takes the defaults), ``{}`` if its latest snapshot has no readable state (written
    before store schema 5: a constant mean). ``store``: a path or an open view."""
    snaps = open_campaign(store).snapshots
    if not len(snaps.get("iteration", [])):
        return None
    try:
        state = json.loads(str(snaps["hyperparameters"][-1]) or "{}")
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def state_kind(state: dict | None) -> str | None:
    """The model kind a stored state describes, as :func:`model_kind` names it (a scalable GP's state is a
    ``gp`` campaign's; None for no state)."""
    if not state:
        return None
    kind = state.get("kind")
    return "gp" if kind == "nystroem" else kind


@dataclass
class CampaignModel:
    """How a campaign's model is built and fitted.

    Attributes
    ----------
    kind : :func:`model_kind` of the campaign (or of the reader's ``[model]`` override).
    make_model : the regressor factory (:class:`~activemat.campaign.setup.ModelFactory`).
    presets : the presets whose results the fitted levels train on, cheap to accurate; the campaign's own
        preset last (one entry for a single-level model).
    fidelities : the campaign fidelity (index in ``[calculator]`` presets, cheap to accurate) of each of them.
    pretrained : the frozen level of a transfer model (a fitted :class:`CoKriging`), or None.
    """

    kind: str
    make_model: ModelFactory
    presets: list[str]
    fidelities: list[int]
    pretrained: CoKriging | None = None

    @classmethod
    def of(cls, config: CampaignConfig, pool, *, section: ModelSection | None = None,
           pretrained_state: dict | None = None, pretrained: CoKriging | None = None,
           stored: dict | None = None) -> CampaignModel:
        """The model of ``config`` over ``pool``; ``section`` replaces its [model] (a reader's other kind).

        A transfer campaign's frozen level is ``pretrained`` if given, else fitted on the ``transfer_from``
        store now, with ``pretrained_state`` (a stored co-kriging state's first level) as its fixed
        hyperparameters when given. ``stored``: the store's latest model state, whose prior mean a file
        without ``mean`` keeps (:meth:`~activemat.campaign.sections.ModelSection.settled`).
        """
        kind = model_kind(config, section)
        section = (section or config.model).settled(multi=kind == COKRIGING, stored=stored)
        make = model_factory(section, config.campaign.seed, pool)
        every = config.calculator.presets
        if kind == COKRIGING and config.model.transfer_from:
            if pretrained is None:
                fixed = {"kind": COKRIGING, "levels": pretrained_state["levels"][:1]} if pretrained_state else None
                # the stored state's first level is the frozen one: reusing it rebuilds the loop's pretraining
                pretrained = pretrain(config.model.transfer_from, pool, make, fixed=fixed)
            return cls(kind, make, [every[-1]], [len(every) - 1], pretrained)
        if kind == COKRIGING:
            return cls(kind, make, list(every), list(range(len(every))))
        return cls(kind, make, [every[-1]], [len(every) - 1])

    @classmethod
    def level(cls, config: CampaignConfig, pool, preset: str, section: ModelSection | None = None) -> CampaignModel:
        """A single-level model of ``section`` (default the campaign's [model]) on one preset of a multi-fidelity
        campaign: that level's results alone, as if it were a campaign of its own."""
        section = section or config.model
        make = model_factory(section.settled(multi=True), config.campaign.seed, pool)  # a level's constant mean
        return cls(section.kind, make, [preset], [config.calculator.presets.index(preset)])

    @property
    def multi(self) -> bool:
        """Whether the model is a co-kriging (several fitted levels, or a frozen pretrained one below)."""
        return self.kind == COKRIGING

    def model_levels(self) -> list[int | None]:
        """The campaign fidelity of each level of the fitted model; None for a frozen, pretrained level."""
        return [None] * (self.pretrained.n_levels if self.pretrained else 0) + list(self.fidelities)

    def fit(self, X_levels: list[np.ndarray], y_levels: list[np.ndarray], *, state: dict | None = None,
            previous=None, schedule: RefitSchedule | None = None):
        """The fitted model on features and gaps per level (one level for a single model).

        Parameters
        ----------
        state : stored hyperparameters (:meth:`GPRegressor.state`, :meth:`CoKriging.state`) reused as they are:
            nothing optimised. ValueError if they do not fit this model.
        previous : the previous fit, to warm-start from between full searches (the loop, replay).
        schedule : the single model's refit schedule (a co-kriging carries one per level in the model); without
            it, and without ``previous``, a full search.
        """
        if self.multi:
            return CoKriging(self.make_model, frozen=self.pretrained, fixed=state,
                             warm=previous if state is None else None).fit(list(zip(X_levels, y_levels)))
        (X,), (y,) = X_levels, y_levels
        n = len(y)
        if state is not None:
            return reuse_state(self.make_model(n_train=n), state).fit(X, y)
        start = None
        if schedule is not None:
            switched = previous is not None and _kind_of(previous) != self.make_model.kind(n)
            # a switch of model kind (exact to scalable) is a full search
            start = schedule.start(None if switched else previous, n)
        return self.make_model(start, n_train=n).fit(X, y)


def _kind_of(model) -> str | None:
    """The kind a fitted regressor's state names (``gp``, ``nystroem``, ``linear``)."""
    return model.state().get("kind") if hasattr(model, "state") else None
