"""Learning an accurate gap from cheaper ones: recursive co-kriging and cost-aware selection.

Fidelities are ordered cheap to accurate, ``levels[0]`` the cheapest and
``levels[-1]`` the gap the campaign wants. Each level is the one below it,
scaled, plus a discrepancy learned from that level's own data
(Kennedy and O'Hagan, Biometrika 87, 1 (2000); recursive form of Le Gratiet
and Garnier, Int. J. Uncertain. Quantif. 4, 365 (2014)):

    f_0(x) = d_0(x)        f_l(x) = rho_l * f_{l-1}(x) + d_l(x)

with every d_l an independent GP. Prediction composes the levels:
mean_l = rho_l mean_{l-1} + mean(d_l), var_l = rho_l^2 var_{l-1} + var(d_l).
rho_l is the generalised-least-squares estimate under d_l's fitted kernel
(with a constant offset), bounded to RHO_BOUNDS; with fewer than
MIN_POINTS_FOR_RHO points at a level it is 1 (plain Delta-learning of the
difference), since two points cannot tell a scale from an offset.

The same model does transfer learning: a previous cheap campaign's results
are level 0 (pretraining), and the few accurate points fit only rho and the
discrepancy (fine-tuning).

Selection (:func:`select_fidelity`) scores each free (candidate, level) pair
by the integrated variance reduction it brings to the accurate level over
the whole pool (or over the composition curve), divided by that level's cost: a level-l result shrinks d_l's
variance, which reaches the top through the product of the rho^2 above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activemat.learn.acquisition import believer_model, curve_ivr_scores, ivr_scores
from activemat.learn.refit import RefitSchedule

RHO_BOUNDS = (0.0, 2.0)
MIN_POINTS_FOR_RHO = 4


class CoKriging:
    """Recursive multi-fidelity GP over levels cheap -> accurate.

    Parameters
    ----------
    make_gp : callable returning an unfitted regressor with ``fit``,
        ``predict(X, return_std=True)``, ``with_fixed_kernel`` and ``gp_``
        (e.g. ``lambda: make_model("gp", scaler=...)``). If it has a true attribute ``ties_levels``
        (:class:`activemat.campaign.setup.ModelFactory` with ``[model] discrepancy = "tied"``), a discrepancy
        level's GP is made by ``make_gp(warm_start, below=kernel)``, ``kernel`` the fitted kernel of the level
        below: its hyperprior is centred there, so a discrepancy seen at a handful of points keeps the
        roughness of the level below instead of looking smooth (and certain) everywhere.
    frozen : a fitted CoKriging whose levels are reused as they are (transfer:
        the pretrained cheap model); only the levels above it are fitted.
    fixed : the :meth:`state` of a fitted CoKriging (the levels it fits, counted
        from the first level of this model, frozen ones included): each level
        reuses that level's stored kernel and rho instead of optimising them,
        so a fit on the same data rebuilds that model exactly.
    warm : the previous fit of this model: each level's GP starts from that level's kernel (``make_gp(kernel)``)
        unless that level's :class:`~activemat.learn.refit.RefitSchedule` (carried from fit to fit in
        ``schedules_``) calls for a full search, the loop's own refit policy; the hyperparameter search is then
        several times shorter once a level holds hundreds of cheap labels. Dropped (set to None) once fitted.

    Attributes
    ----------
    gps_ : the fitted GP of each level's discrepancy, cheap to accurate (frozen levels first).
    rhos_ : each level's scale to the level below (0 for level 0).
    train_ : (X, discrepancy targets) of each level.
    schedules_ : the refit schedule of each level, shared with the next fit that is warm-started from this one.
    """

    def __init__(self, make_gp, frozen: "CoKriging | None" = None, fixed: dict | None = None,
                 warm: "CoKriging | None" = None):
        self.make_gp = make_gp
        self.frozen = frozen
        self.fixed = fixed
        self.warm = warm

    def fit(self, levels: list[tuple[np.ndarray, np.ndarray]]) -> "CoKriging":
        """Fit on ``[(X_0, y_0), ..., (X_top, y_top)]``; each level needs at least one point.

        With ``frozen``, ``levels`` lists only the levels above the frozen ones.
        """
        self.gps_ = list(self.frozen.gps_) if self.frozen else []
        self.rhos_ = list(self.frozen.rhos_) if self.frozen else []
        self.train_ = list(self.frozen.train_) if self.frozen else []  # (X, discrepancy targets) per level
        self.schedules_ = getattr(self.warm, "schedules_", None) or {}
        stored = (self.fixed or {}).get("levels")
        if stored is not None and len(stored) != len(self.gps_) + len(levels):
            raise ValueError(f"stored co-kriging hyperparameters have {len(stored)} levels; this model has "
                             f"{len(self.gps_) + len(levels)}")
        for X, y in levels:
            X, y = np.asarray(X, float), np.asarray(y, float)
            if not len(y):
                raise ValueError(f"fidelity level {len(self.gps_)} has no results to fit")
            if not self.gps_:
                rho, below = 0.0, np.zeros(len(y))
            else:
                below = self._predict(X, len(self.gps_) - 1)[0]
                rho = 1.0
            if stored is not None:  # the stored level as it was fitted: its rho and kernel, nothing optimised
                from activemat.learn.models import reuse_state  # scikit-learn: not for the CLI's parser (strategies)

                level = stored[len(self.gps_)]
                rho = float(level["rho"])
                gp = reuse_state(self.make_gp(), level).fit(X, y - rho * below)
            else:
                level = len(self.gps_)
                previous = self.warm.gps_[level] if self.warm is not None and level < self.warm.n_levels else None
                start = self.schedules_.setdefault(level, RefitSchedule()).start(previous, len(y))
                kwargs = {}
                if self.gps_ and getattr(self.make_gp, "ties_levels", False):
                    kwargs["below"] = self.gps_[-1].kernel_  # the discrepancy's hyperprior centre
                make = (lambda: self.make_gp()) if start is None and not kwargs else (
                    lambda: self.make_gp(start, **kwargs))
                gp = make().fit(X, y - rho * below)
                if self.gps_ and len(y) >= MIN_POINTS_FOR_RHO:
                    rho = _gls_rho(gp, X, y, below)
                    gp = make().fit(X, y - rho * below)
            self.gps_.append(gp)
            self.rhos_.append(float(rho))
            self.train_.append((X, y - rho * below))
        self.warm = None  # used; kept, every fit would hold the whole chain of earlier fits
        return self

    @property
    def n_levels(self) -> int:
        return len(self.gps_)

    def _predict(self, X, level: int) -> tuple[np.ndarray, np.ndarray]:
        mean, var = np.zeros(len(X)), np.zeros(len(X))
        for gp, rho in zip(self.gps_[:level + 1], self.rhos_[:level + 1]):
            m, s = gp.predict(X, return_std=True)
            mean, var = rho * mean + m, rho ** 2 * var + s ** 2
        return mean, var

    def predict(self, X, return_std: bool = False, level: int = -1):
        """Mean (and std) of level ``level`` (default: the most accurate)."""
        level = level % self.n_levels
        mean, var = self._predict(np.asarray(X, float), level)
        return (mean, np.sqrt(var)) if return_std else mean

    def latent_cov(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (eV) and joint covariance (eV^2) of the noise-free accurate gap at the rows of ``X``.

        The levels' discrepancies are independent GPs, so the recursion of the variance holds for the whole
        matrix: Cov_l = rho_l^2 Cov_{l-1} + Cov(d_l), each Cov(d_l) the latent (noise-free) posterior
        covariance of that level's GP (``latent_cov``). Its diagonal is :meth:`predict`'s variance without the
        levels' fitted noise terms.
        """
        X = np.asarray(X, float)
        mean, cov = np.zeros(len(X)), np.zeros((len(X), len(X)))
        for gp, rho in zip(self.gps_, self.rhos_):
            m, c = gp.latent_cov(X)
            mean, cov = rho * mean + m, rho ** 2 * cov + c
        return mean, cov

    def variance_weights(self) -> np.ndarray:
        """How much a unit of variance at each level counts at the top: the product of the rho^2 above it."""
        w = np.ones(self.n_levels)
        for level in range(self.n_levels - 2, -1, -1):
            w[level] = w[level + 1] * self.rhos_[level + 1] ** 2
        return w

    def with_running(self, running: list[np.ndarray]) -> "CoKriging":
        """A copy in which calculations still running (features per level) count as known at their
        predicted mean ("kriging believer"): it changes variances, and so the next pick, not the means."""
        out = CoKriging(self.make_gp, self.frozen, self.fixed, self.warm)
        out.gps_, out.rhos_, out.train_ = list(self.gps_), list(self.rhos_), list(self.train_)
        out.schedules_ = self.schedules_
        for level, X_run in enumerate(running):
            if len(X_run):
                X, r = self.train_[level]
                out.gps_[level] = believer_model(self.gps_[level], X, r, X_run)
                out.train_[level] = (np.vstack([X, X_run]), np.concatenate([r, self.gps_[level].predict(X_run)]))
        return out

    def state(self) -> dict:
        """Every level's fitted kernel and rho exactly, as plain data (``fixed=`` rebuilds the model)."""
        return {"kind": "co-kriging",
                "levels": [{**gp.state(), "rho": float(rho)} for gp, rho in zip(self.gps_, self.rhos_)]}

    def describe(self) -> str:
        parts = [f"level {i}: rho {rho:.3f}, {gp.describe()}" if i else f"level 0: {gp.describe()}"
                 for i, (gp, rho) in enumerate(zip(self.gps_, self.rhos_))]
        return "co-kriging; " + "; ".join(parts)


def _gls_rho(gp, X: np.ndarray, y: np.ndarray, below: np.ndarray) -> float:
    """Generalised least squares for y = b + rho * below + d under d's fitted kernel; rho clipped to RHO_BOUNDS."""
    Z = gp.scaler_.transform(X)
    K = gp.gp_.kernel_(Z)  # includes the white noise; its overall scale cancels in GLS
    H = np.column_stack([np.ones(len(y)), below])
    Ki_H = np.linalg.solve(K, H)
    try:
        beta = np.linalg.solve(H.T @ Ki_H, Ki_H.T @ y)
    except np.linalg.LinAlgError:  # all cheap values equal: no scale to estimate
        return 1.0
    return float(np.clip(beta[1], *RHO_BOUNDS))


@dataclass(frozen=True)
class Pick:
    candidate: int
    level: int
    score: float  # top-level variance reduction per unit cost


def fidelity_scores(model: CoKriging, X_pool: np.ndarray, free: list[np.ndarray], costs,
                    curve_pool=None) -> np.ndarray:
    """Scores (levels x candidates): top-level variance reduction per unit cost; -inf if not free.

    The variance reduced is the pool's summed posterior variance, or with ``curve_pool`` (the candidate pool,
    with ``n_b`` and ``multiplicity``) that of the composition-averaged gap curve (:func:`curve_ivr_scores`).
    """
    weights = model.variance_weights()
    out = np.full((model.n_levels, len(X_pool)), -np.inf)
    for level in range(model.n_levels):
        if free[level].any():
            gp = model.gps_[level]
            # the scores are in the GP's normalised units: back to eV^2 so levels compare
            red = (ivr_scores(gp, X_pool, free[level]) if curve_pool is None
                   else curve_ivr_scores(gp, curve_pool, free[level])) * gp.y_std_ ** 2
            out[level] = np.where(free[level], weights[level] * red / float(costs[level]), -np.inf)
    return out


def select_fidelity(model: CoKriging, X_pool: np.ndarray, free: list[np.ndarray], costs,
                    running: list[np.ndarray] | None = None, max_cheap_share: float = 1.0,
                    curve_pool=None) -> Pick | None:
    """The (candidate, level) pair with the most information about the accurate gap (or, with ``curve_pool``,
    its composition curve: :func:`fidelity_scores`) per unit cost.

    A level whose scale to the one below is not yet estimated (fewer than MIN_POINTS_FOR_RHO results,
    running ones included) is filled first: until then rho is 1 and its small discrepancy GP, fitted to a
    few nearly equal values, would make cheaper results look better than they are.

    ``max_cheap_share``: once the levels below the top hold this fraction of the cost spent (results and
    running calculations, each at its level's cost), only the top level is picked. Variance reduction per
    unit cost trusts the discrepancy GP's variance, and a discrepancy fitted to a handful of accurate
    results looks smooth and certain: on the 402 gpaw-fast/PBE pairs the uncapped rule bought a median 238
    gpaw-fast and 10 PBE results and needed 38.8 PBE-equivalents for both targets, 26.1 with a cap of one
    half (docs: explanation/data-efficiency).
    """
    if running is not None and any(len(r) for r in running):
        model = model.with_running(running)
    free = list(free)
    if max_cheap_share < 1.0 and model.n_levels > 1:
        spent = np.array([len(model.train_[lv][1]) * float(costs[lv]) for lv in range(model.n_levels)])
        if spent[:-1].sum() >= max_cheap_share * spent.sum():
            free = [f if lv == model.n_levels - 1 else np.zeros_like(f) for lv, f in enumerate(free)]
    for level in range(1, model.n_levels):
        if free[level].any() and len(model.train_[level][1]) < MIN_POINTS_FOR_RHO:
            free = [f if i == level else np.zeros_like(f) for i, f in enumerate(free)]
            break
    s = fidelity_scores(model, X_pool, free, costs, curve_pool)
    if not np.isfinite(s).any():
        return None
    level, cand = np.unravel_index(int(np.argmax(s)), s.shape)
    return Pick(int(cand), int(level), float(s[level, cand]))
