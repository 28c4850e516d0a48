"""Refitting the campaign's model after every result, and the snapshot each refit leaves in the store.

A single-fidelity campaign fits its [model] on the campaign preset's
results, with a full hyperparameter search when
:class:`activemat.learn.models.RefitSchedule` says (the training set grew
by 10 % since the last one) and a warm start from the last fit between; a
multi-fidelity or transfer campaign fits a recursive co-kriging over its
levels, cheap to accurate. Each refit predicts over the whole pool and
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
from activemat.campaign.setup import MIN_TRAIN
from activemat.learn.cokriging import CoKriging
from activemat.learn.models import MAX_FOLDS, RefitSchedule, cross_validate, state_json
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
    model: object = None  # unfitted, then fitted
    cv: bool = False
    levels: list | None = None  # co-kriging: (X, y) per level
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    scores: dict = field(default_factory=dict)  # cross-validation


class Learner:
    """Holds the current model and its predictions over the pool.

    Parameters
    ----------
    make_model : the campaign's model factory (:func:`activemat.campaign.setup.model_factory`).
    pool : the candidate pool.
    levels : number of fidelities computed by this campaign.
    pretrained : a fitted CoKriging of a previous campaign ([model] transfer_from), or None.
    iteration : snapshots already in the store (a resumed campaign continues the count).
    """

    def __init__(self, make_model, pool, *, levels: int, pretrained=None, iteration: int = 0):
        self.make_model, self.pool = make_model, pool
        self.levels, self.pretrained = levels, pretrained
        self.iteration = iteration
        self.model = self.mean = self.std = None
        self.max_std = self.mean_std = float("inf")
        self.schedule = RefitSchedule()  # full hyperparameter searches
        self.cv_schedule = RefitSchedule(warm_min=CV_ALWAYS_BELOW)  # cross-validation in snapshots
        self.fits = self.full_searches = 0
        self.fitted_idx = np.array([], int)  # candidates the current model was fitted on (top fidelity)
        self._n_last = 0  # training size of the last refit (a model kind switch forces a full search)
        self.scores: dict = {}  # the current model's cross-validation, if this refit ran one

    @property
    def multi(self) -> bool:
        """Whether the model is a co-kriging (several fidelities, or a pretrained cheap level)."""
        return self.levels > 1 or self.pretrained is not None

    def model_levels(self) -> list[int | None]:
        """The campaign fidelity of each model level; None for a frozen, pretrained level."""
        if self.pretrained is not None:
            return [None] * self.pretrained.n_levels + [self.levels - 1]
        return list(range(self.levels))

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
        training data, the model to fit (full search or warm start, by the schedule) and whether to
        cross-validate. Runs where the ledger changes (the driver's thread)."""
        top = self.levels - 1
        if self.multi:
            fitted = [f for f in self.model_levels() if f is not None]
            data = [ledger.training_set(f) for f in fitted]
            if min(len(y) for _, y in data) < MIN_TRAIN:
                return None
            idx, y = ledger.training_set(top) if top in fitted else (np.array([], int), np.array([]))
            return FitJob(idx, y, free.copy(), levels=[(self.pool.features[i], v) for i, v in data])
        idx, y = ledger.training_set(top)
        if len(y) < MIN_TRAIN:
            return None
        cv = self.cv_schedule.full(len(y)) and self.cv_schedule.done(len(y))
        return FitJob(idx, y, free.copy(), model=self._make(len(y)), cv=cv)

    def compute(self, job: FitJob) -> FitJob:
        """Fit, predict over the pool (in blocks) and cross-validate as ``job`` says; touches nothing of this
        Learner's state, so it may run in another thread while the driver collects and submits."""
        if job.levels is not None:
            job.model = CoKriging(self.make_model, frozen=self.pretrained).fit(job.levels)
        else:
            X = self.pool.features[job.idx]
            job.model = job.model.fit(X, job.y)
            if job.cv:  # closed form for single GPs and linear models
                folds = CV_FEW_FOLDS if len(job.y) > CV_FEW_FOLDS_ABOVE else MAX_FOLDS
                job.scores = cross_validate(job.model, X, job.y, max_folds=folds)
        job.mean, job.std = predict_chunked(job.model, self.pool.features)
        return job

    def apply(self, job: FitJob) -> None:
        """Make a computed refit the current model."""
        self.model, self.mean, self.std = job.model, job.mean, job.std
        free = job.free
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        self.mean_std = float(self.std[free].mean()) if free.any() else 0.0
        self.fitted_idx, self.scores = job.idx, job.scores
        self.fits += 1

    def _make(self, n: int):
        """The unfitted model of a refit on ``n`` results: a full search on the schedule (or when the factory
        switches model kind at this size), else warm-started from the last fit."""
        kind = getattr(self.make_model, "kind", None)
        switched = kind is not None and self.model is not None and kind(n) != kind(self._n_last)
        self._n_last = n
        if not hasattr(self.model, "kernel_") or switched or self.schedule.full(n):
            self.schedule.done(n)
            self.full_searches += 1
            return self._factory(None, n)
        return self._factory(self.model.kernel_, n)

    def _factory(self, warm, n: int):
        return self.make_model(warm, n_train=n) if hasattr(self.make_model, "kind") else self.make_model(warm)

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
