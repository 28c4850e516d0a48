"""Acquisition maths as plain functions: space-filling seeds, integrated variance reduction, the best free
candidate, and "kriging believer" fantasies for calculations still running.

The strategies (:mod:`activemat.learn.strategies`) are built from these.
"""

from __future__ import annotations

import numpy as np


def representative(pool, n_b: int, excluded: np.ndarray | None = None) -> int | None:
    """A composition's seed: its special quasirandom structure if the pool has one (and it is not excluded),
    else the most probable configuration class (largest multiplicity)."""
    mask = pool.n_b == n_b
    if excluded is not None:
        mask &= ~excluded
    idx = np.flatnonzero(mask)
    if not len(idx):
        return None
    sqs = getattr(pool, "sqs", None)  # pools without SQS need not carry the attribute
    if sqs is not None and sqs[idx].any():
        return int(idx[sqs[idx]][0])
    return int(idx[np.argmax(pool.multiplicity[idx])])


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
    return believer_model(model, X_train, y_train, X_running).predict(X_pool, return_std=True)


def believer_model(model, X_train: np.ndarray, y_train: np.ndarray, X_running: np.ndarray):
    """The model refitted (hyperparameters fixed) as if running calculations had returned their predicted mean."""
    if not len(X_running):
        return model
    believed = model.predict(X_running)
    return model.with_fixed_kernel().fit(np.vstack([X_train, X_running]), np.concatenate([y_train, believed]))


IVR_REFERENCE_POINTS = 512  # pool points over which the variance is integrated (all, up to this many)
_IVR_CHUNK = 4096  # candidates per block: bounds memory for 10^5-candidate pools


def ivr_scores(model, X_pool: np.ndarray, candidates: np.ndarray | None = None,
               n_reference: int = IVR_REFERENCE_POINTS) -> np.ndarray:
    """Integrated variance reduction: how much labelling each candidate lowers the pool's summed posterior variance.

    For a candidate c the reduction is sum_j cov(j, c)^2 / (var(c) + noise),
    in closed form from the fitted posterior (GP kernel, or the OLS
    covariance of :class:`activemat.learn.linear.LinearModel`). The sum runs over the
    whole pool, or over ``n_reference`` evenly spaced pool points when it is
    larger (pools are ordered by composition, so these spread over it).
    Scores are in the model's units up to a constant factor; only their order
    matters. Candidates outside ``candidates`` (a bool mask) score -inf.
    """
    n = len(X_pool)
    ref = np.arange(n) if n <= n_reference else np.unique(np.linspace(0, n - 1, n_reference).round().astype(int))
    return _variance_reduction(model, X_pool, ref, None, candidates, "ivr")


CURVE_REFERENCE_POINTS = 64  # configurations per composition the curve's averages run over (all, up to this many)


def curve_ivr_scores(model, pool, candidates: np.ndarray | None = None,
                     per_composition: int = CURVE_REFERENCE_POINTS) -> np.ndarray:
    """Curve variance reduction: how much labelling each candidate lowers the summed posterior variance of the
    composition-averaged gap curve.

    The curve at composition k is the multiplicity-weighted average
    m_k = sum_i w_ki f_i over the pool's configurations with k B atoms (up
    to ``per_composition`` of them, evenly spaced, weights renormalised). For
    a candidate c the reduction is sum_k cov(m_k, f_c)^2 / (var(c) + noise)
    with cov(m_k, f_c) = sum_i w_ki cov(i, c) from the joint posterior: a
    label that pins down one composition's average, or several at once,
    scores high; one that only resolves configurational detail averaged
    away scores low. Same conventions as :func:`ivr_scores`.
    """
    ref, weights = composition_weights(pool.n_b, pool.multiplicity, per_composition)
    return _variance_reduction(model, pool.features, ref, weights, candidates, "ivr_curve")


def composition_weights(n_b: np.ndarray, multiplicity: np.ndarray,
                        per_composition: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The averaging operator of the composition curve: rows ``ref`` of the pool and weights
    (compositions, len(ref)) with weights @ f[ref] the multiplicity-weighted average of f per composition,
    compositions in increasing n_b; at most ``per_composition`` configurations each (evenly spaced, weights
    renormalised), all without it.

    >>> ref, w = composition_weights(np.array([0, 1, 1]), np.array([1, 1, 3]))
    >>> ref.tolist(), w.tolist()
    ([0, 1, 2], [[1.0, 0.0, 0.0], [0.0, 0.25, 0.75]])
    """
    n_b, mult = np.asarray(n_b), np.asarray(multiplicity, float)
    ref, rows, cols, vals = [], [], [], []
    for row, k in enumerate(np.unique(n_b)):
        idx = np.flatnonzero(n_b == k)
        if per_composition is not None and len(idx) > per_composition:
            idx = idx[np.unique(np.linspace(0, len(idx) - 1, per_composition).round().astype(int))]
        rows += [row] * len(idx)
        cols += list(range(len(ref), len(ref) + len(idx)))
        vals += (mult[idx] / mult[idx].sum()).tolist()
        ref += idx.tolist()
    weights = np.zeros((rows[-1] + 1, len(ref)))
    weights[rows, cols] = vals
    return np.array(ref), weights


def _variance_reduction(model, X_pool: np.ndarray, ref: np.ndarray, weights: np.ndarray | None,
                        candidates: np.ndarray | None, name: str) -> np.ndarray:
    """sum_k cov(a_k, f_c)^2 / (var(c) + noise) for a_k = sum_j weights[k, j] f_ref[j] (identity: a = f_ref)."""
    X_pool = np.asarray(X_pool, float)
    n = len(X_pool)
    cand = np.flatnonzero(candidates) if candidates is not None else np.arange(n)
    out = np.full(n, -np.inf)

    def average(cov):  # (n_ref, n_cand) -> (n_averages, n_cand)
        return cov if weights is None else weights @ cov

    if hasattr(model, "gp_"):
        # deferred: SciPy's linalg costs 0.1 s, and the CLI imports the strategy registry to build its parser
        from scipy.linalg import solve_triangular

        gp, kernel = model.gp_, model.gp_.kernel_
        Z = model.scaler_.transform(X_pool)
        v_ref = solve_triangular(gp.L_, kernel(gp.X_train_, Z[ref]), lower=True)  # (n_train, n_ref)
        for s in range(0, len(cand), _IVR_CHUNK):
            c = cand[s:s + _IVR_CHUNK]
            v_c = solve_triangular(gp.L_, kernel(gp.X_train_, Z[c]), lower=True)
            cov = average(kernel(Z[ref], Z[c]) - v_ref.T @ v_c)  # latent posterior covariance (no white noise)
            var_noisy = kernel.diag(Z[c]) - np.einsum("ij,ij->j", v_c, v_c)  # diag includes the white noise
            out[c] = np.einsum("ij,ij->j", cov, cov) / np.maximum(var_noisy, 1e-300)
        return out
    if hasattr(model, "features") and hasattr(model, "weight_cov"):  # Bayesian linear model on kernel features
        sigma = model.weight_cov()
        p_ref = model.features(X_pool[ref]) @ sigma  # (n_ref, m)
        noise = model.noise_std() ** 2
        position = {int(i): j for j, i in enumerate(ref)}  # pool row -> row of p_ref
        for s in range(0, len(cand), _IVR_CHUNK):
            c = cand[s:s + _IVR_CHUNK]
            phi = model.features(X_pool[c])
            own = model.unexplained_variance(X_pool[c], phi)  # independent: enters cov(c, c) only
            cov = p_ref @ phi.T
            mine = [(position[int(i)], k) for k, i in enumerate(c) if int(i) in position]
            if mine:
                rows, cols = map(list, zip(*mine))
                cov[rows, cols] += own[cols]
            cov = average(cov)
            var_noisy = np.einsum("ij,jk,ik->i", phi, sigma, phi) + own + noise
            out[c] = np.einsum("ij,ij->j", cov, cov) / np.maximum(var_noisy, 1e-300)
        return out
    if hasattr(model, "cov_"):  # OLS: cov(j, c) = s^2 d_j C d_c', var(c) + noise = s^2 (1 + d_c C d_c')
        design = np.column_stack([np.ones(n), X_pool])
        proj = average(design[ref] @ model.cov_ @ design[cand].T)
        lev = np.einsum("ij,jk,ik->i", design[cand], model.cov_, design[cand])
        out[cand] = np.einsum("ij,ij->j", proj, proj) / (1.0 + lev)
        return out
    raise ValueError(f"strategy {name!r} needs a Gaussian process or linear model, not {type(model).__name__}")


BATCH_SHORTLIST = 512  # candidates a batch is first picked from (x4 while a pick may not be the pool's best) ...
BATCH_SHORTLIST_MAX = 2048  # ... up to this many (or 4 per pick): memory and time stay bounded on flat scores


def believer_batch(model, X_pool: np.ndarray, mean: np.ndarray, std: np.ndarray, free: np.ndarray,
                   X_running: np.ndarray, n: int, score, shortlist: int = BATCH_SHORTLIST) -> list[tuple[int, float]]:
    """``n`` picks in one step, each the best ``score(mean, std)`` as if the running calculations and the
    earlier picks had returned their predicted mean ("kriging believer", hyperparameters fixed).

    With fixed hyperparameters a believed result leaves the mean unchanged and conditions the covariance on
    one more noisy observation, which does not depend on its value: the picks come from the joint posterior
    covariance of a shortlist of candidates (:meth:`latent_cov` of the model), updated by one rank-one step
    per pick. ``score`` must never increase when the std decreases (max std, UCB, EI), so a candidate's score
    without any believer (``mean``, ``std``: the model's predictions over the pool) bounds its believed
    score: the shortlist holds the best ``max(shortlist, 4 n)`` free candidates by that score, and grows
    (x4) whenever a pick scores below the best candidate left out, so every pick is the pool's best, up to
    ``max(BATCH_SHORTLIST_MAX, 4 n)`` candidates; beyond that (scores so flat that thousands of candidates
    are within the believer's reach) the picks are the best of the shortlist. Memory is at most
    (that + running)^2, whatever the pool's size.

    Returns
    -------
    list of (candidate index, believed score), in pick order.
    """
    cand = np.flatnonzero(free)
    n = min(n, len(cand))
    if n == 0:
        return []
    base = np.asarray(score(mean, std), float)
    size, most = max(shortlist, 4 * n), max(BATCH_SHORTLIST_MAX, 4 * n, shortlist)
    while True:
        size = min(size, most)
        if size >= len(cand):
            short, bound = cand, -np.inf
        else:
            order = np.argpartition(-base[cand], size - 1)
            short = cand[order[:size]]
            bound = -np.inf if size == most else float(base[cand[order[size:]]].max())
        short = np.sort(short)  # first on ties, as best_available
        picks = _greedy_believer(model, X_pool[short], mean[short], X_running, n, score, bound)
        if picks is not None:
            return [(int(short[j]), s) for j, s in picks]
        size *= 4


def _greedy_believer(model, X: np.ndarray, mean: np.ndarray, X_running: np.ndarray, n: int, score,
                     bound: float) -> list[tuple[int, float]] | None:
    """Greedy believer picks among the rows of ``X``; None if one scores below ``bound`` (the shortlist is
    too short to be sure)."""
    from scipy.linalg import cho_factor, cho_solve  # deferred: see ivr_scores

    m, r = len(X), len(X_running)
    both = np.vstack([X, X_running]) if r else X
    _, cov = model.latent_cov(both)
    _, std = model.predict(both, return_std=True)
    noise = np.maximum(std ** 2 - np.diag(cov), 0.0)  # each point's observation noise
    cov_s = cov[:m, :m]
    if r:  # condition on the running calculations' (believed) results
        c_sr = cov[:m, m:]
        c_rr = cov[m:, m:] + np.diag(noise[m:]) + 1e-12 * np.eye(r)
        cov_s = cov_s - c_sr @ cho_solve(cho_factor(c_rr, lower=True), c_sr.T)
    noise_s = noise[:m]
    var = np.array(np.diag(cov_s), float)  # latent variances as the picks are believed
    tiny = 1e-12 * (max(float(var.max()), 0.0) + float(noise_s.max()) + 1e-300)
    taken = np.zeros(m, bool)
    factors = np.empty((n, m))  # row t: the rank-one update of pick t (a partial Cholesky factor)
    picks = []
    for t in range(n):
        values = np.asarray(score(mean, np.sqrt(np.maximum(var, 0.0) + noise_s)), float)
        values[taken] = -np.inf
        j = int(np.argmax(values))
        if values[j] < bound:
            return None
        picks.append((j, float(values[j])))
        taken[j] = True
        # covariance with j after the earlier picks, over the noisy variance at j
        v = cov_s[:, j] - factors[:t].T @ factors[:t, j]
        d = v[j] + noise_s[j]
        v = v / np.sqrt(d) if d > tiny else np.zeros_like(v)  # a pick already known (to rounding) teaches nothing
        factors[t] = v
        var -= v ** 2
    return picks
