"""Refitting the campaign's model after every result, and the snapshot each refit leaves in the store.

A single-fidelity campaign fits its [model] on the campaign preset's
results, with a full hyperparameter search when
:class:`activemat.learn.scalable.RefitSchedule` says (the training set grew
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

import numpy as np

from activemat.campaign.ledger import Ledger
from activemat.campaign.setup import MIN_TRAIN
from activemat.learn.cokriging import CoKriging
from activemat.learn.models import cross_validate, state_json
from activemat.learn.scalable import RefitSchedule, predict_chunked
from activemat.store import schema as S

CV_ALWAYS_BELOW = 200  # training points below which every snapshot is cross-validated


def stored_state(model) -> str:
    """The model's exact hyperparameters as a snapshot stores them (JSON); empty if longer than the column
    (the read verbs then refit that model rather than read a cut text)."""
    text = state_json(model)
    return text if len(text) <= S.SNAPSHOTS["hyperparameters"].width else ""


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
        pool std summary is over them.
        """
        top = self.levels - 1
        if self.multi:
            fitted = [f for f in self.model_levels() if f is not None]
            data = [ledger.training_set(f) for f in fitted]
            if min(len(y) for _, y in data) < MIN_TRAIN:
                return False
            levels = [(self.pool.features[idx], y) for idx, y in data]
            self.model = CoKriging(self.make_model, frozen=self.pretrained).fit(levels)
        else:
            idx, y = ledger.training_set(top)
            if len(y) < MIN_TRAIN:
                return False
            self.model = self._make(len(y)).fit(self.pool.features[idx], y)
        self.fits += 1
        self.mean, self.std = predict_chunked(self.model, self.pool.features)
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        self.mean_std = float(self.std[free].mean()) if free.any() else 0.0
        return True

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

    _n_last = 0

    def _factory(self, warm, n: int):
        return self.make_model(warm, n_train=n) if hasattr(self.make_model, "kind") else self.make_model(warm)

    def snapshot(self, ledger: Ledger) -> dict:
        """What the current fit says, as a snapshot row (written by the caller)."""
        idx, y = ledger.training_set(self.levels - 1)
        snap = {"iteration": self.iteration, "time": time.time(), "n_train": len(y), "max_std": self.max_std,
                "mean_std": self.mean_std, "model": self.model.describe()[:300],
                "hyperparameters": stored_state(self.model)}
        if not self.multi and self.cv_schedule.full(len(y)):  # closed form for single GPs and linear models
            self.cv_schedule.done(len(y))
            snap.update(cross_validate(self.model, self.pool.features[idx], y))
        if ledger.tested:
            held = np.array([k.candidate for k in ledger.tested], int)
            snap["test_mae"] = float(np.mean(np.abs(self.mean[held] - np.fromiter(ledger.tested.values(), float))))
        self.iteration += 1
        return snap
