"""Selection strategies: one class per strategy, registered by name.

A strategy answers one question, "which candidate next?", through
:meth:`Strategy.select`, from a :class:`Context` holding the pool, the
candidates still free, the fitted model and the calculations still running.
Everything that names a strategy reads this registry: the campaign file's
``[strategy] kind`` choices, the ``replay --strategy`` choices, plot labels
and the ``reason`` values written to the store. Adding a strategy is one
class here, decorated with :func:`register`.

The steps every strategy shares (space-filling seeds before the model
steers, the stop on a small enough posterior std) live in :func:`choose`, so
the campaign loop and replay pick the same way.

>>> sorted(campaign_kinds())
['ei', 'fixed', 'ivr', 'max_std', 'pi', 'random', 'ucb']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from activemat.learn.acquisition import (
    believer_batch,
    believer_model,
    best_available,
    curve_ivr_scores,
    ivr_scores,
    kriging_believer,
    space_filling,
)
from activemat.learn.cokriging import select_fidelity

SEED = "seed"  # the reason stored for the space-filling picks made before a model steers


@dataclass
class Context:
    """What a strategy sees when it picks.

    Attributes
    ----------
    pool
        The candidate pool (``features``, ``n_b``, ``multiplicity``, ``n_sites``).
    free
        (levels, candidates) bool: what may be picked at each model level, cheap
        to accurate; a single-fidelity campaign has one level.
    rng
        The campaign's random generator (seeded).
    model
        The fitted model (a :class:`~activemat.learn.cokriging.CoKriging` for
        several levels), or None before the first fit.
    X_train, y_train
        Training data of the top level.
    running
        Features of calculations still running, one array per level.
    predictions
        (mean, std) of ``model`` over the pool without the running ones, when
        already computed.
    fixed
        Candidates of a fixed list, in order.
    costs
        CPU-seconds of one calculation per level.
    unfitted
        Features of top-level results already in ``X_train`` that ``model`` was not fitted on (its refit is
        still running): a batch counts them as believed, like running calculations.
    """

    pool: object
    free: np.ndarray
    rng: np.random.Generator
    model: object = None
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    running: list[np.ndarray] = field(default_factory=list)
    predictions: tuple[np.ndarray, np.ndarray] | None = None
    fixed: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    unfitted: np.ndarray | None = None  # features of training results the model was not fitted on yet

    @property
    def top_free(self) -> np.ndarray:
        return self.free[-1]

    @property
    def top_running(self) -> np.ndarray:
        return self.running[-1] if self.running else np.empty((0, self.pool.features.shape[1]))


@dataclass(frozen=True)
class Pick:
    """A selection: the candidate, its model level (-1: the top), why, and its acquisition score."""

    candidate: int
    reason: str
    score: float = float("nan")
    level: int = -1


class Strategy(ABC):
    """One way of picking the next calculation.

    Class attributes say what the strategy needs; ``settings`` is the
    campaign's [strategy] section (``target_gap``, ``beta``, ``tradeoff``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    uses_model: ClassVar[bool] = True  # False: picks without the model, so a small posterior std never stops it
    seeds: ClassVar[bool] = True  # space-filling seeds come first, and until a model is fitted
    needs_target_gap: ClassVar[bool] = False
    multi_fidelity: ClassVar[bool] = False  # picks a fidelity level as well as a candidate
    in_campaigns: ClassVar[bool] = True  # a campaign file may name it as [strategy] kind
    done: ClassVar[str] = "pool exhausted"  # the stop reason when select() returns None

    def __init__(self, settings=None):
        self.settings = settings

    @abstractmethod
    def select(self, ctx: Context) -> Pick | None:
        """The next pick, or None when nothing is left to pick."""

    def select_batch(self, ctx: Context, n: int) -> list[Pick]:
        """Up to ``n`` picks for as many free workers, each made as if the earlier ones were running.

        This default picks one at a time (each pick refits the believer model); strategies that can do better
        override it.
        """
        picks: list[Pick] = []
        free, running = ctx.top_free.copy(), ctx.top_running
        for _ in range(n):
            step = replace(ctx, free=np.vstack([ctx.free[:-1], free[None]]),
                           running=[*ctx.running[:-1], running])
            pick = self.select(step)
            if pick is None:
                break
            picks.append(pick)
            free[pick.candidate] = False
            running = np.vstack([running, ctx.pool.features[pick.candidate][None]])
        return picks


class ScoredStrategy(Strategy):
    """A strategy that scores every candidate and picks the best free one (first on ties), as modAL's
    utility-plus-selector functions do."""

    @abstractmethod
    def scores(self, ctx: Context) -> np.ndarray:
        """Acquisition value of every candidate of the pool (higher is better)."""

    def select(self, ctx: Context) -> Pick | None:
        best = best_available(self.scores(ctx), ctx.top_free)
        return None if best is None else Pick(best[0], self.name, best[1])


class BelievedScores(ScoredStrategy):
    """A strategy whose score is a function of the believed mean and std alone, never higher for a smaller
    std: a batch is picked in one step (:func:`activemat.learn.acquisition.believer_batch`)."""

    def scores(self, ctx):
        return self.score(*_believed(ctx), ctx)

    @abstractmethod
    def score(self, mean: np.ndarray, std: np.ndarray, ctx: Context) -> np.ndarray:
        """Acquisition value from mean and std (eV), higher is better."""

    def select_batch(self, ctx: Context, n: int) -> list[Pick]:
        if n <= 1 or ctx.model is None or not hasattr(ctx.model, "latent_cov"):
            return super().select_batch(ctx, n)
        if ctx.predictions is not None:
            mean, std = ctx.predictions
        else:
            from activemat.learn.scalable import predict_chunked  # deferred: scikit-learn (the CLI's parser)

            mean, std = predict_chunked(ctx.model, ctx.pool.features)
        believed = ctx.top_running
        if ctx.unfitted is not None and len(ctx.unfitted):
            believed = np.vstack([believed, ctx.unfitted])
        picks = believer_batch(ctx.model, ctx.pool.features, mean, std, ctx.top_free, believed, n,
                               lambda m, s: self.score(m, s, ctx))
        return [Pick(i, self.name, score) for i, score in picks]


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy known by its ``name``."""
    STRATEGIES[cls.name] = cls
    return cls


def campaign_kinds() -> tuple[str, ...]:
    """Strategy names a campaign file may give as ``[strategy] kind``."""
    return tuple(name for name, cls in STRATEGIES.items() if cls.in_campaigns)


def reasons() -> tuple[str, ...]:
    """Every ``reason`` a selection writes to the store, in display order."""
    return (SEED, *STRATEGIES)


def make_strategy(kind: str, settings=None) -> Strategy:
    try:
        return STRATEGIES[kind](settings)
    except KeyError:
        raise ValueError(f"unknown strategy {kind!r}; known: {', '.join(STRATEGIES)}") from None


def _believed(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Pool mean and std, with running calculations counted as known at their predicted mean."""
    if ctx.predictions is not None and not len(ctx.top_running):
        return ctx.predictions
    return kriging_believer(ctx.model, ctx.X_train, ctx.y_train, ctx.top_running, ctx.pool.features)


@register
class MaxStd(BelievedScores):
    name = "max_std"
    description = "largest posterior std: map the whole space"

    def score(self, mean, std, ctx):
        return std


@register
class IntegratedVarianceReduction(ScoredStrategy):
    name = "ivr"
    description = "largest reduction of the pool's summed posterior variance"

    def scores(self, ctx):
        model = believer_model(ctx.model, ctx.X_train, ctx.y_train, ctx.top_running)
        return ivr_scores(model, ctx.pool.features, ctx.top_free)


@register
class CurveVarianceReduction(ScoredStrategy):
    name = "ivr_curve"
    description = "largest reduction of the composition-averaged gap curve's summed posterior variance"

    def scores(self, ctx):
        model = believer_model(ctx.model, ctx.X_train, ctx.y_train, ctx.top_running)
        return curve_ivr_scores(model, ctx.pool, ctx.top_free)


class _TargetGap(BelievedScores):
    """Search for a target gap: acquisition on the closeness -|mean - target_gap|.

    The EI/PI/UCB maths is modAL's (its functions; its ActiveLearner is broken
    on current scikit-learn, modAL issue #196). modAL is imported when a pick
    is made: it pulls in SciPy's statistics (0.7 s), and the CLI imports this
    registry just to build its parser.
    """

    needs_target_gap = True

    def score(self, mean, std, ctx):
        target = self.settings.target_gap
        closeness = -np.abs(mean - target)
        y = ctx.y_train if ctx.y_train is not None else np.empty(0)
        best = float(np.max(-np.abs(y - target))) if len(y) else float(np.max(closeness))
        return np.asarray(self.acquisition(closeness, np.maximum(std, 1e-12), best))

    @abstractmethod
    def acquisition(self, closeness: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
        """Acquisition value of every candidate (higher is better)."""


@register
class ExpectedImprovement(_TargetGap):
    name = "ei"
    description = "expected improvement towards target_gap"

    def acquisition(self, closeness, std, best):
        from modAL.acquisition import EI  # deferred: heavy, see _TargetGap

        return EI(closeness, std, best, self.settings.tradeoff)


@register
class UpperConfidenceBound(_TargetGap):
    name = "ucb"
    description = "upper confidence bound of the closeness to target_gap"

    def acquisition(self, closeness, std, best):
        from modAL.acquisition import UCB  # deferred: heavy, see _TargetGap

        return UCB(closeness, std, self.settings.beta)


@register
class ProbabilityOfImprovement(_TargetGap):
    name = "pi"
    description = "probability of improvement towards target_gap"

    def select_batch(self, ctx, n):
        # PI can grow as the std shrinks (a mean already past the target): the one-step batch's bound fails
        return Strategy.select_batch(self, ctx, n)

    def acquisition(self, closeness, std, best):
        from modAL.acquisition import PI  # deferred: heavy, see _TargetGap

        return PI(closeness, std, best, self.settings.tradeoff)


@register
class Random(Strategy):
    name = "random"
    description = "uniformly at random: the baseline"
    uses_model = False

    def select(self, ctx):
        free = np.flatnonzero(ctx.top_free)
        return Pick(int(ctx.rng.choice(free)), self.name) if len(free) else None

    def select_batch(self, ctx, n):
        free = np.flatnonzero(ctx.top_free)
        if n == 1:  # the same draws as one pick at a time
            return [Pick(int(ctx.rng.choice(free)), self.name)] if len(free) else []
        return [Pick(int(i), self.name) for i in ctx.rng.choice(free, min(n, len(free)), replace=False)]


@register
class FixedList(Strategy):
    name = "fixed"
    description = "the [strategy] fixed list, in order (e.g. the seed tutorial's six compositions)"
    uses_model = False
    seeds = False
    done = "fixed list done"

    def select(self, ctx):
        left = [i for i in ctx.fixed if ctx.top_free[i]]
        return Pick(left[0], self.name) if left else None


@register
class CostAwareIVR(Strategy):
    name = "ivr/cost"
    description = "multi-fidelity: the (candidate, fidelity) with the most variance reduction per CPU-second"
    multi_fidelity = True
    in_campaigns = False  # chosen by a multi-fidelity campaign with kind = "ivr"
    curve = False  # reduce the pool's summed variance (True: the composition curve's)

    def select(self, ctx):
        pick = select_fidelity(ctx.model, ctx.pool.features, free=list(ctx.free), costs=ctx.costs,
                               running=ctx.running, max_cheap_share=getattr(self.settings, "cheap_share", 1.0),
                               curve_pool=ctx.pool if self.curve else None)
        return None if pick is None else Pick(pick.candidate, self.name, pick.score, pick.level)


@register
class CostAwareCurveIVR(CostAwareIVR):
    name = "ivr_curve/cost"
    description = ("multi-fidelity: the (candidate, fidelity) with the most reduction of the composition curve's "
                   "variance per CPU-second")
    in_campaigns = False  # chosen by a multi-fidelity campaign with kind = "ivr_curve"
    curve = True


#: The cost-aware strategy a multi-fidelity campaign uses for each [strategy] kind it accepts.
COST_AWARE = {"ivr": CostAwareIVR.name, "ivr_curve": CostAwareCurveIVR.name}


def choose(strategy: Strategy, ctx: Context, *, n_seed: int, n_started: int, max_std: float = float("inf"),
           target_std: float | None = None) -> tuple[Pick | None, str]:
    """The next pick of a single-fidelity campaign, or None and why selection stops.

    Space-filling seeds over compositions come first (``n_seed`` of them, and
    more while there is no model); then the strategy picks, unless the
    pool's max posterior std is already below ``target_std``.

    Parameters
    ----------
    n_started : calculations trained on, running or given up on.
    max_std : the pool's largest posterior std among free candidates (eV).
    """
    free = ctx.top_free
    if not free.any():
        return None, "pool exhausted"
    if strategy.seeds:
        seeds = [i for i in space_filling(ctx.pool, n_seed, np.zeros(len(free), bool)) if free[i]]
        if seeds and n_started < n_seed or ctx.model is None:
            return Pick(seeds[0] if seeds else space_filling(ctx.pool, 1, ~free)[0], SEED), ""
        if strategy.uses_model and target_std is not None and max_std < target_std:
            return None, f"max std {max_std:.4f} eV below target"
    pick = strategy.select(ctx)
    return pick, "" if pick is not None else strategy.done


def choose_batch(strategy: Strategy, ctx: Context, n: int, *, n_seed: int, n_started: int,
                 max_std: float = float("inf"), target_std: float | None = None) -> tuple[list[Pick], str]:
    """Up to ``n`` picks of a single-fidelity campaign in one step (one per free worker), and why selection
    stops if it gives fewer.

    The same rules as :func:`choose` applied ``n`` times, each pick made as if the earlier ones were
    running: seeds first, then :meth:`Strategy.select_batch`.
    """
    picks: list[Pick] = []
    free = ctx.top_free.copy()
    if strategy.seeds:
        wanted = [i for i in space_filling(ctx.pool, n_seed, np.zeros(len(free), bool)) if free[i]]
        while len(picks) < n and free.any():
            seeds = [i for i in wanted if free[i]]
            if not (seeds and n_started + len(picks) < n_seed or ctx.model is None and seeds):
                break
            picks.append(Pick(seeds[0], SEED))
            free[seeds[0]] = False
        if ctx.model is None and len(picks) < n and free.any():  # no model yet: spread the rest over compositions
            more = space_filling(ctx.pool, n - len(picks), ~free)
            picks += [Pick(i, SEED) for i in more]
            free[more] = False
        if len(picks) < n and free.any() and strategy.uses_model and target_std is not None and max_std < target_std:
            return picks, f"max std {max_std:.4f} eV below target"
    if len(picks) < n and free.any():
        running = ctx.top_running
        if picks:
            running = np.vstack([running, ctx.pool.features[[p.candidate for p in picks]]])
        rest = replace(ctx, free=np.vstack([ctx.free[:-1], free[None]]), running=[*ctx.running[:-1], running])
        more = strategy.select_batch(rest, n - len(picks))
        free[[p.candidate for p in more]] = False
        picks += more
    if len(picks) == n:
        return picks, ""
    return picks, "pool exhausted" if not free.any() else strategy.done
