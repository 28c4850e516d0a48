"""The composition curve's averaging operator and joint posterior covariance, shared by the campaign's
curve-std stop (:class:`activemat.campaign.learner.Learner`) and the readers' curve
(:mod:`activemat.analysis.curve`), so both report the same std.

At each composition the curve is the multiplicity-weighted average of the
latent gap over the pool's configurations with that many B atoms; its
covariance uses at most ``max_configurations`` of them per composition (a
seeded random subsample, weights renormalised).
"""

from __future__ import annotations

import numpy as np

#: Configurations per composition at most in the joint covariance (subsampled above).
MAX_CONFIGURATIONS = 200
#: Configurations at most in one covariance matrix; more are covered by blocks of compositions.
JOINT_MAX = 3000


def _subsample(idx: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(idx) <= cap:
        return idx
    return np.sort(rng.choice(idx, cap, replace=False))


def composition_subsets(pool, *, max_configurations: int = MAX_CONFIGURATIONS, seed: int = 0):
    """Per composition of ``pool`` (in order of ``n_b``): its rows and weights, and the rows the covariance uses.

    Yields ``(n_b, idx, w, used, w_used)``: every configuration of the
    composition with its multiplicity weights (summing to one), and at most
    ``max_configurations`` of them (a random subsample, drawn composition by
    composition from one generator seeded by ``seed``) with their weights
    renormalised. The same seed gives the same subsample to
    :func:`gap_curve` and :func:`composition_average`.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    for k in np.unique(pool.n_b):
        idx = np.flatnonzero(pool.n_b == k)
        w = pool.multiplicity[idx].astype(float)
        used = _subsample(idx, max_configurations, rng)
        wu = pool.multiplicity[used].astype(float)
        yield int(k), idx, w / w.sum(), used, wu / wu.sum()


def has_joint_covariance(model) -> bool:
    """Whether ``model`` gives the joint posterior covariance of the latent gap (``latent_cov``)."""
    return hasattr(model, "latent_cov")


def _groups(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive compositions in groups of at most ``limit`` configurations (a larger one stands alone)."""
    groups, current, n = [], [], 0
    for i, size in enumerate(sizes):
        if current and n + size > limit:
            groups.append(current)
            current, n = [], 0
        current.append(i)
        n += size
    return groups + [current] if current else groups


def curve_covariance(model, X: np.ndarray, subsets: list[np.ndarray], weights: list[np.ndarray],
                     joint_max: int = JOINT_MAX) -> np.ndarray:
    """``A Cov A'``: the joint posterior covariance (eV^2) of the weighted averages over ``subsets``.

    Parameters
    ----------
    model : a fitted regressor with ``latent_cov(X) -> (mean, cov)``.
    X : feature matrix the subsets index.
    subsets : row indices of ``X`` per composition.
    weights : weights of those rows per composition (each summing to one).
    joint_max : rows at most in one ``latent_cov`` call; with more, pairs of
        blocks of compositions (each at most half of it) give the
        cross-covariances, so memory stays bounded.
    """
    k = len(subsets)
    out = np.zeros((k, k))
    groups = _groups([len(s) for s in subsets], max(joint_max // 2, 1)) if sum(map(len, subsets)) > joint_max \
        else [list(range(k))]
    for gi, a in enumerate(groups):
        for b in groups[gi:]:
            members = a if a is b else a + b
            rows = np.concatenate([subsets[i] for i in members])
            _, cov = model.latent_cov(X[rows])
            starts = np.cumsum([0] + [len(subsets[i]) for i in members])
            for p, i in enumerate(members):
                for q, j in enumerate(members):
                    block = cov[starts[p]:starts[p + 1], starts[q]:starts[q + 1]]
                    out[i, j] = weights[i] @ block @ weights[j]
    return (out + out.T) / 2


def curve_stds(model, pool, *, max_configurations: int = MAX_CONFIGURATIONS, seed: int = 0) -> np.ndarray:
    """The curve's joint-posterior std (eV) at every composition of ``pool`` (in order of ``n_b``): the
    ``model_std`` column of :func:`activemat.analysis.curve.gap_curve` with the same subsample."""
    subsets = list(composition_subsets(pool, max_configurations=max_configurations, seed=seed))
    cov = curve_covariance(model, pool.features, [c[3] for c in subsets], [c[4] for c in subsets])
    return np.sqrt(np.clip(np.diag(cov), 0.0, None))
