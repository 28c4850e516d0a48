"""Refitting the campaign's model after every result, and the snapshot each refit leaves in the store.

The model is the campaign's (:class:`activemat.campaign.model.CampaignModel`:
its [model] on the campaign preset's results, or a recursive co-kriging over
a multi-fidelity or transfer campaign's levels, cheap to accurate), with a
full hyperparameter search when :class:`activemat.learn.refit.RefitSchedule`
says (the training set grew by 10 % since the last one; a co-kriging keeps
one schedule per level) and a warm start from the last fit between. Each refit predicts over the whole pool and
writes a snapshot: training size, CV and baseline errors, the held-out test
error, the pool's posterior std, the pool's mean and std themselves, and
the fitted hyperparameters exactly (JSON), from which the read verbs rebuild
the model without optimising it again. Predictions over the pool go in
blocks of rows (:func:`activemat.learn.scalable.predict_chunked`), and
cross-validation runs on the same growth schedule (every refit below
:data:`CV_ALWAYS_BELOW` training points; NaN in the snapshots between).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from activemat.campaign.ledger import Ledger
from activemat.campaign.model import CampaignModel
from activemat.campaign.setup import MIN_TRAIN
from activemat.learn.cross_validation import MAX_FOLDS, cross_validate
from activemat.learn.curve import curve_stds
from activemat.learn.models import state_json
from activemat.learn.refit import RefitSchedule
from activemat.learn.scalable import predict_chunked
from activemat.store import schema as S

CV_ALWAYS_BELOW = 200  # training points below which every snapshot is cross-validated
CV_FEW_FOLDS_ABOVE, CV_FEW_FOLDS = 2000, 5  # above this many training points, 5-fold instead of 20-fold


def stored_state(model) -> str:
    """The model's exact hyperparameters as a snapshot stores them (JSON); empty if longer than the column
    (the read verbs then refit that model rather than read a cut text)."""
    text = state_json(model)
    return text if len(text) <= S.SNAPSHOTS["hyperparameters"].width else ""


@dataclass
class FitJob:
    """One refit, from what it trains on to what it gives (:meth:`Learner.prepare`, ``compute``, ``apply``)."""

    idx: np.ndarray  # candidates of the top fidelity's training set
    y: np.ndarray
    free: np.ndarray  # candidates free to pick when it was prepared (the pool std summary is over them)
    model: object = None  # the fitted model
    cv: bool = False
    levels: list = field(default_factory=list)  # (X, y) per fitted model level, cheap to accurate
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    scores: dict = field(default_factory=dict)  # cross-validation
    curve_std: float = float("inf")  # the composition curve's largest joint-posterior std (eV), if asked for


class Learner:
    """Holds the current model and its predictions over the pool.

    Parameters
    ----------
    model : how the campaign's model is built (:class:`~activemat.campaign.model.CampaignModel`).
    pool : the candidate pool.
    iteration : snapshots already in the store (a resumed campaign continues the count).
    curve : also compute, on every refit, the composition curve's largest joint-posterior std
        (``curve_std``; a ``[stop] target_curve_std`` needs it).
    """

    def __init__(self, model: CampaignModel, pool, *, iteration: int = 0, curve: bool = False):
        self.campaign_model, self.pool = model, pool
        self.iteration, self.curve = iteration, curve
        self.model = self.mean = self.std = None
        self.max_std = self.mean_std = self.curve_std = float("inf")
        self.schedule = RefitSchedule()  # full hyperparameter searches (a co-kriging keeps one per level)
        self.cv_schedule = RefitSchedule(warm_min=CV_ALWAYS_BELOW)  # cross-validation in snapshots
        self.fits = 0
        self.fitted_idx = np.array([], int)  # candidates the current model was fitted on (top fidelity)
        self.scores: dict = {}  # the current model's cross-validation, if this refit ran one

    @property
    def multi(self) -> bool:
        """Whether the model is a co-kriging (several fidelities, or a pretrained cheap level)."""
        return self.campaign_model.multi

    def model_levels(self) -> list[int | None]:
        """The campaign fidelity of each model level; None for a frozen, pretrained level."""
        return self.campaign_model.model_levels()

    def fit(self, ledger: Ledger, free: np.ndarray) -> bool:
        """Refit on every successful training result; False while there are too few.

        ``free`` marks the candidates still free at the campaign's fidelity: the
        pool std summary is over them. The same as :meth:`apply` of :meth:`compute` of :meth:`prepare`, the
        three steps a driver can spread over threads (:class:`~activemat.campaign.loop.CampaignLoop`).
        """
        job = self.prepare(ledger, free)
        if job is None:
            return False
        self.apply(self.compute(job))
        return True

    def prepare(self, ledger: Ledger, free: np.ndarray) -> FitJob | None:
        """What the next refit needs, taken from the ledger now (None while there are too few results): its
        training data per model level and whether to cross-validate. Runs where the ledger changes (the
        driver's thread)."""
        data = [ledger.training_set(f) for f in self.campaign_model.fidelities]
        if min(len(y) for _, y in data) < MIN_TRAIN:
            return None
        idx, y = data[-1]
        cv = not self.multi and self.cv_schedule.full(len(y)) and self.cv_schedule.done(len(y))
        return FitJob(idx, y, free.copy(), cv=cv, levels=[(self.pool.features[i], v) for i, v in data])

    def compute(self, job: FitJob) -> FitJob:
        """Fit (warm-started from the current model, on the refit schedule), predict over the pool (in blocks)
        and cross-validate as ``job`` says; changes nothing of this Learner's state but the refit schedules, so
        it may run in another thread while the driver collects and submits (one refit at a time)."""
        X_levels, y_levels = [X for X, _ in job.levels], [y for _, y in job.levels]
        job.model = self.campaign_model.fit(X_levels, y_levels, previous=self.model, schedule=self.schedule)
        if job.cv:  # closed form for single GPs and linear models
            folds = CV_FEW_FOLDS if len(job.y) > CV_FEW_FOLDS_ABOVE else MAX_FOLDS
            job.scores = cross_validate(job.model, X_levels[-1], job.y, max_folds=folds)
        job.mean, job.std = predict_chunked(job.model, self.pool.features)
        if self.curve:
            job.curve_std = float(curve_stds(job.model, self.pool).max())
        return job

    def apply(self, job: FitJob) -> None:
        """Make a computed refit the current model."""
        self.model, self.mean, self.std = job.model, job.mean, job.std
        free = job.free
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        self.mean_std = float(self.std[free].mean()) if free.any() else 0.0
        self.fitted_idx, self.scores, self.curve_std = job.idx, job.scores, job.curve_std
        self.fits += 1

    def snapshot(self, ledger: Ledger) -> dict:
        """What the current fit says, as a snapshot row (written by the caller)."""
        snap = {"iteration": self.iteration, "time": time.time(), "n_train": len(self.fitted_idx),
                "max_std": self.max_std, "mean_std": self.mean_std, "model": self.model.describe()[:300],
                "hyperparameters": stored_state(self.model), **self.scores}
        if ledger.tested:
            held = np.array([k.candidate for k in ledger.tested], int)
            snap["test_mae"] = float(np.mean(np.abs(self.mean[held] - np.fromiter(ledger.tested.values(), float))))
        self.iteration += 1
        return snap
