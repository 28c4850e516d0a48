"""Picking the next calculation: the campaign's strategy, given what is done, running and free.

Single fidelity: :func:`activemat.learn.strategies.choose` (space-filling
seeds, then the strategy). Multi-fidelity and transfer: seeds at every
fidelity computed here (the same candidates, cheap first), then the
strategy picks a (candidate, fidelity) pair from the co-kriging model.
Running calculations count as already known at their predicted mean
("kriging believer"), so picks made while others run neither repeat nor
crowd them.
"""

from __future__ import annotations

import numpy as np

from activemat.campaign.ledger import TaskKey
from activemat.learn.acquisition import space_filling
from activemat.learn.strategies import SEED, COST_AWARE, Context, Pick, choose, choose_batch, make_strategy


class Selector:
    """The campaign's selection rule.

    Parameters
    ----------
    config : the campaign's CampaignConfig ([strategy], [stop], [calculator] costs, seed).
    pool : the candidate pool.
    learner : the :class:`~activemat.campaign.learner.Learner` holding the current model.
    fixed : candidates of a fixed list, in order.
    """

    def __init__(self, config, pool, learner, fixed: list[int]):
        self.config, self.pool, self.learner, self.fixed = config, pool, learner, fixed
        self.rng = np.random.default_rng(config.campaign.seed)
        self.strategy = make_strategy(config.strategy.kind, config.strategy)
        if learner.multi and self.strategy.uses_model:
            # a co-kriging model picks candidate and fidelity together, by cost-aware variance reduction (of the
            # curve with kind = "ivr_curve"; a transfer campaign with another kind gets the pool's)
            self.strategy = make_strategy(COST_AWARE.get(config.strategy.kind, COST_AWARE["ivr"]), config.strategy)
        self.stop_reason = ""

    def next(self, ledger, running: list[TaskKey]) -> tuple[TaskKey, str, float] | None:
        """The next task, why, and its acquisition score; None (with ``stop_reason`` set) when selection stops."""
        busy = ledger.busy(running)
        if self.learner.multi:
            return self._next_multi(ledger, busy, running)
        return self._next_single(ledger, busy, running)

    def next_batch(self, ledger, running: list[TaskKey], n: int) -> list[tuple[TaskKey, str, float]]:
        """Up to ``n`` tasks picked in one step (one per free worker), each as if the earlier ones were running;
        empty (with ``stop_reason`` set) when selection stops. One at a time for multi-fidelity campaigns."""
        target = self.config.stop.target_curve_std
        if target is not None and self.learner.curve_std < target:  # inf until a model is fitted
            self.stop_reason = f"curve std {self.learner.curve_std:.4f} eV below target"
            return []
        if n <= 1 or self.learner.multi:
            pick = self.next(ledger, running)
            return [] if pick is None else [pick]
        busy = ledger.busy(running)
        running_top = self.pool.features[[k.candidate for k in running]]
        ctx = self._context(ledger, ~busy[-1:], [running_top])
        if self.learner.model is not None:  # results a refit in the background has not taken in yet
            unseen = np.setdiff1d(ledger.training_set(ledger.top)[0], self.learner.fitted_idx)
            ctx.unfitted = self.pool.features[unseen]
        picks, why = choose_batch(self.strategy, ctx, n, n_seed=self.config.strategy.n_seed,
                                  n_started=len(ledger.trained) + len(running) + len(ledger.failed),
                                  max_std=self.learner.max_std, target_std=self.config.stop.target_std)
        if not picks:
            self.stop_reason = why
        return [(TaskKey(ledger.top, p.candidate), p.reason, p.score) for p in picks]

    def _context(self, ledger, free: np.ndarray, running_by_level: list[np.ndarray], costs=()) -> Context:
        lr = self.learner
        idx, y = ledger.training_set(ledger.top)
        return Context(pool=self.pool, free=free, rng=self.rng, model=lr.model, X_train=self.pool.features[idx],
                       y_train=y, running=running_by_level, fixed=self.fixed, costs=list(costs),
                       predictions=(lr.mean, lr.std) if lr.model is not None else None)

    def _next_single(self, ledger, busy, running):
        running_top = self.pool.features[[k.candidate for k in running]]
        ctx = self._context(ledger, ~busy[-1:], [running_top])
        pick, why = choose(self.strategy, ctx, n_seed=self.config.strategy.n_seed,
                           n_started=len(ledger.trained) + len(running) + len(ledger.failed),
                           max_std=self.learner.max_std, target_std=self.config.stop.target_std)
        if pick is None:
            self.stop_reason = why
            return None
        return TaskKey(ledger.top, pick.candidate), pick.reason, pick.score

    def _next_multi(self, ledger, busy, running):
        top, n = ledger.top, len(self.pool)
        levels = self.learner.model_levels()
        computed = [f for f in levels if f is not None]
        free = np.array([~busy[f] if f in computed else np.zeros(n, bool) for f in range(ledger.levels)])
        if not free.any():
            return self._stop("pool exhausted")
        if self.strategy.seeds:
            seeds = space_filling(self.pool, self.config.strategy.n_seed, np.zeros(n, bool))
            for f in computed:
                for c in seeds:
                    if free[f][c]:
                        return TaskKey(f, c), SEED, float("nan")
            if self.learner.model is None:  # seeds failed or are still running: more space filling at the top
                if not free[top].any():
                    return self._stop("pool exhausted")
                return TaskKey(top, space_filling(self.pool, 1, ~free[top])[0]), SEED, float("nan")
            target = self.config.stop.target_std
            if target is not None and self.learner.max_std < target:
                return self._stop(f"max std {self.learner.max_std:.4f} eV below target")
        # per model level: a frozen, pretrained level is never picked
        none = np.zeros(n, bool)
        declared = self.config.calculator.costs
        ctx = self._context(
            ledger, np.array([none if f is None else free[f] for f in levels]),
            [self.pool.features[[k.candidate for k in running if k.fidelity == f]] for f in levels],
            costs=[1.0 if f is None else ledger.cost(f, declared[f]) for f in levels])
        pick: Pick | None = self.strategy.select(ctx)
        if pick is None:
            return self._stop(self.strategy.done)
        return TaskKey(levels[pick.level], pick.candidate), pick.reason, pick.score

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        return None
