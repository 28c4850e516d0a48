"""When a refit searches the hyperparameters afresh and when it starts from the last ones.

:class:`RefitSchedule` is the refit policy of the campaign loop, of each co-kriging level and of
replay: a full search while labels are few and whenever the training set has grown by a tenth,
warm starts in between, so the searches of a whole campaign cost a constant factor of the last
one. It looks only at training sizes and at the previous model's ``kernel_``: no scikit-learn here.
"""

from __future__ import annotations


class RefitSchedule:
    """When a refit runs a full hyperparameter search: scheduled by the work done, not every N refits.

    A full search (optimiser restarts; for :class:`~activemat.learn.scalable.NystroemGP` the subsample GP) runs on the first fit and
    whenever the training set has grown by ``growth`` (relative) and at least ``min_new`` labels since the
    last one; refits in between start from (exact GP: warm-started optimiser) or reuse (NystroemGP) the last
    hyperparameters. With a geometric schedule the full searches of a whole campaign cost a constant factor
    of the last one, however many results arrive and however they are batched. Below ``warm_min`` labels every
    refit is a full search (one label can move the hyperparameters far).

    One result at a time, full searches run at these training sizes (then every 10 %):

    >>> s = RefitSchedule()
    >>> [n for n in range(2, 400) if s.full(n) and s.done(n)][16:]
    [18, 19, 29, 39, 49, 59, 69, 79, 89, 99, 109, 120, 132, 146, 161, 178, 196, 216, 238, 262, 289, 318, 350, 386]
    """

    def __init__(self, growth: float = 0.1, min_new: int = 10, warm_min: int = 20):
        self.growth, self.min_new, self.warm_min = growth, min_new, warm_min
        self.last: int | None = None  # training size of the last full search

    def full(self, n_labels: int) -> bool:
        """Whether a refit on ``n_labels`` results should run a full search."""
        if self.last is None or n_labels < self.warm_min:
            return True
        return n_labels >= max(self.last * (1 + self.growth), self.last + self.min_new)

    def done(self, n_labels: int) -> bool:
        """Record that a full search ran on ``n_labels`` results; returns True (for use in expressions)."""
        self.last = n_labels
        return True

    def start(self, previous, n_labels: int):
        """The kernel a refit on ``n_labels`` results starts from: ``previous.kernel_`` between full searches,
        None (a full search, recorded) when the schedule calls for one or there is no previous fit."""
        if not hasattr(previous, "kernel_") or self.full(n_labels):
            self.done(n_labels)
            return None
        return previous.kernel_
