"""Selection strategies as plain functions: scores over the pool, then a pick.

The acquisition maths comes from modAL (EI, PI, UCB); its ActiveLearner is not
used (broken on current scikit-learn, modAL issue #196). Target-gap search
maximises the negated distance to the target, -|mean - target|.
"""

from __future__ import annotations

import numpy as np
from modAL.acquisition import EI, PI, UCB

MODEL_FREE = ("random", "fixed")


def representative(pool, n_b: int, excluded: np.ndarray | None = None) -> int | None:
    """The most probable configuration class at a composition (largest multiplicity)."""
    mask = pool.n_b == n_b
    if excluded is not None:
        mask &= ~excluded
    idx = np.flatnonzero(mask)
    return int(idx[np.argmax(pool.multiplicity[idx])]) if len(idx) else None


def space_filling(pool, n: int, excluded: np.ndarray) -> list[int]:
    """n picks spread evenly over compositions (end members first), one per composition."""
    picks: list[int] = []
    taken = excluded.copy()
    for target in _spread(pool.n_sites, n):
        # nearest composition that still has a free candidate
        for n_b in sorted(range(pool.n_sites + 1), key=lambda k: (abs(k - target), k)):
            i = representative(pool, n_b, taken)
            if i is not None:
                picks.append(i)
                taken[i] = True
                break
    return picks


def _spread(n_sites: int, n: int) -> list[int]:
    """Evenly spaced composition targets, in an order that keeps coverage even if cut short.

    >>> _spread(16, 5)
    [0, 16, 8, 4, 12]
    """
    targets = [int(round(v)) for v in np.linspace(0, n_sites, n)] if n > 1 else [n_sites // 2]
    order: list[int] = []
    # bisection order: ends, middle, quarters, ...
    remaining = list(range(len(targets)))
    if len(remaining) > 1:
        order += [remaining[0], remaining[-1]]
    queue = [(0, len(targets) - 1)]
    while queue:
        lo, hi = queue.pop(0)
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        queue += [(lo, mid), (mid, hi)]
    order += [i for i in remaining if i not in order]
    return [targets[i] for i in order]


def scores(kind: str, mean: np.ndarray, std: np.ndarray, y_train: np.ndarray, *, target_gap=None,
           beta: float = 2.0, tradeoff: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Acquisition value of every candidate (higher is better)."""
    if kind == "max_std":
        return std
    if kind == "random":
        return (rng or np.random.default_rng()).random(len(mean))
    closeness = -np.abs(mean - target_gap)
    best = float(np.max(-np.abs(y_train - target_gap))) if len(y_train) else float(np.max(closeness))
    std = np.maximum(std, 1e-12)
    if kind == "ei":
        return np.asarray(EI(closeness, std, best, tradeoff))
    if kind == "pi":
        return np.asarray(PI(closeness, std, best, tradeoff))
    if kind == "ucb":
        return np.asarray(UCB(closeness, std, beta))
    raise ValueError(f"unknown strategy {kind!r}")


def best_available(values: np.ndarray, available: np.ndarray) -> tuple[int, float] | None:
    """Index and value of the highest score among available candidates (first on ties)."""
    if not available.any():
        return None
    idx = np.flatnonzero(available)
    i = int(idx[np.argmax(values[idx])])
    return i, float(values[i])


def kriging_believer(model, X_train: np.ndarray, y_train: np.ndarray, X_running: np.ndarray,
                     X_pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool predictions as if running calculations had returned their predicted mean.

    The mean is unchanged near them but their uncertainty collapses, so the
    next pick goes elsewhere instead of repeating or crowding them.
    """
    if not len(X_running):
        return model.predict(X_pool, return_std=True)
    believed = model.predict(X_running)
    fantasy = model.with_fixed_kernel().fit(np.vstack([X_train, X_running]), np.concatenate([y_train, believed]))
    return fantasy.predict(X_pool, return_std=True)
