"""Recursive co-kriging and cost-aware fidelity selection on a synthetic two-fidelity gap table."""

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from activemat.learn.acquisition import CURVE_REFERENCE_POINTS, composition_weights
from activemat.learn.cokriging import CoKriging, fidelity_scores, select_fidelity
from activemat.learn.models import make_model
from activemat.space.pool import build_pool
from tests.conftest import synthetic_gaps


@pytest.fixture(scope="module")
def two_fidelities():
    """402 configurations; 'accurate' = 0.6 * cheap + 0.55 + 0.1 x (a scaled, shifted, tilted copy)."""
    pool = build_pool()
    cheap = np.array(list(synthetic_gaps(pool).values()))
    accurate = 0.6 * cheap + 0.55 + 0.1 * pool.x_b
    return pool, cheap, accurate


def _make_gp(pool):
    scaler = StandardScaler().fit(pool.features)
    return lambda: make_model("gp", restarts=1, scaler=scaler)


def test_cokriging_recovers_the_scale_and_beats_accurate_points_alone(two_fidelities):
    pool, cheap, accurate = two_fidelities
    X = pool.features
    hi = np.random.default_rng(0).choice(len(pool), 12, replace=False)
    model = CoKriging(_make_gp(pool)).fit([(X, cheap), (X[hi], accurate[hi])])
    # 0.1 x is itself nearly linear in the cheap gap, so any rho in between describes the data
    assert model.rhos_[0] == 0.0 and 0.3 < model.rhos_[1] < 0.8
    mae_multi = np.abs(model.predict(X) - accurate).mean()
    alone = _make_gp(pool)().fit(X[hi], accurate[hi])
    mae_alone = np.abs(alone.predict(X) - accurate).mean()
    assert mae_multi < 0.005
    assert mae_multi < mae_alone / 2
    # the cheap level is still there, unchanged
    assert np.abs(model.predict(X, level=0) - cheap).mean() < 0.005


def test_few_accurate_points_learn_the_difference_only(two_fidelities):
    pool, cheap, accurate = two_fidelities
    X = pool.features
    model = CoKriging(_make_gp(pool)).fit([(X[::4], cheap[::4]), (X[[0, -1]], accurate[[0, -1]])])
    assert model.rhos_[1] == 1.0  # two points cannot tell a scale from an offset
    assert np.allclose(model.variance_weights(), [1.0, 1.0])


def test_variance_composes_through_the_levels(two_fidelities):
    pool, cheap, accurate = two_fidelities
    X = pool.features
    hi = np.arange(0, len(pool), 40)
    model = CoKriging(_make_gp(pool)).fit([(X[::3], cheap[::3]), (X[hi], accurate[hi])])
    _, s_top = model.predict(X, return_std=True)
    _, s_low = model.gps_[0].predict(X, return_std=True)
    _, s_d = model.gps_[1].predict(X, return_std=True)
    assert np.allclose(s_top ** 2, model.rhos_[1] ** 2 * s_low ** 2 + s_d ** 2)
    assert np.allclose(model.variance_weights(), [model.rhos_[1] ** 2, 1.0])


def test_joint_covariance_composes_through_the_levels_and_matches_the_variance(two_fidelities):
    """CoKriging.latent_cov: rho^2 Cov_cheap + Cov_d over any rows; its diagonal is predict's variance without
    the levels' fitted noise; symmetric and positive semi-definite, so curve stds and bowing draws exist."""
    from activemat.learn.kernels import white_noise_level

    pool, cheap, accurate = two_fidelities
    X = pool.features
    hi = np.arange(0, len(pool), 40)
    model = CoKriging(_make_gp(pool)).fit([(X[::3], cheap[::3]), (X[hi], accurate[hi])])
    rows = X[::5]
    mean, cov = model.latent_cov(rows)
    rho = model.rhos_[1]
    c_low, c_d = model.gps_[0].latent_cov(rows)[1], model.gps_[1].latent_cov(rows)[1]
    np.testing.assert_allclose(cov, rho ** 2 * c_low + c_d, atol=1e-15)
    np.testing.assert_allclose(mean, model.predict(rows), atol=1e-12)
    _, std = model.predict(rows, return_std=True)
    noise = [white_noise_level(gp.kernel_) * gp.y_std_ ** 2 for gp in model.gps_]
    np.testing.assert_allclose(np.diag(cov), std ** 2 - rho ** 2 * noise[0] - noise[1], atol=1e-9)
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > -1e-10
    # an average over many rows is far more certain than the fully correlated bound (the mean of the stds)
    w = np.full(len(rows), 1 / len(rows))
    assert np.sqrt(w @ cov @ w) < 0.5 * (w @ np.sqrt(np.diag(cov)))


def test_each_level_refits_on_its_own_schedule_when_warm_started(two_fidelities):
    """The loop's one refit policy for co-kriging levels: a warm-started fit starts every level from the
    previous fit's kernel except where that level's RefitSchedule calls for a full search."""
    pool, cheap, accurate = two_fidelities
    X = pool.features
    scaler = StandardScaler().fit(X)

    def make(warm_start=None):
        return make_model("gp", restarts=1, scaler=scaler, warm_start=warm_start)

    def levels(n):
        return [(X[:n], cheap[:n]), (X[:6], accurate[:6])]

    first = CoKriging(make).fit(levels(40))
    assert set(first.schedules_) == {0, 1} and first.schedules_[0].last == 40  # a first fit is a full search
    warm = CoKriging(make, warm=first).fit(levels(41))
    assert warm.schedules_ is first.schedules_ and warm.schedules_[0].last == 40  # 41: warm-started
    assert warm.warm is None
    again = CoKriging(make, warm=warm).fit(levels(50))
    assert again.schedules_[0].last == 50  # grew by 10 labels and 10 %: a full search
    assert again.schedules_[1].last == 6  # below 20 labels every refit of a level is a full search


@pytest.fixture(scope="module")
def sparse(two_fidelities):
    """Cheap results at every 50th candidate, accurate ones at every 100th, and the co-kriging fit to them."""
    pool, cheap, accurate = two_fidelities
    X = pool.features
    lo, hi = np.arange(0, len(pool), 50), np.arange(0, len(pool), 100)
    return pool, lo, hi, CoKriging(_make_gp(pool)).fit([(X[lo], cheap[lo]), (X[hi], accurate[hi])])


def test_selection_weighs_information_against_cost(sparse):
    pool, lo, hi, model = sparse
    X = pool.features
    free = [np.ones(len(pool), bool), np.ones(len(pool), bool)]
    free[0][lo] = free[1][hi] = False
    assert select_fidelity(model, X, free, costs=[1.0, 1e6]).level == 0
    assert select_fidelity(model, X, free, costs=[1e6, 1.0]).level == 1
    pick = select_fidelity(model, X, free, costs=[1.0, 3.0])
    assert free[pick.level][pick.candidate] and np.isfinite(pick.score)
    none_free = [np.zeros(len(pool), bool)] * 2
    assert select_fidelity(model, X, none_free, costs=[1.0, 3.0]) is None


def test_curve_target_scores_the_curve_variance_a_pick_removes_per_cost(sparse):
    """With the curve as target, a (candidate, level) score is the composition curve's summed posterior variance
    that the result removes, divided by the level's cost: Gaussian conditioning of that level's latent
    covariance on one noisy result, reaching the top through the rho^2 above it. So the curve-targeted pick
    removes at least as much curve variance per cost as the pool-targeted one."""
    pool, lo, hi, model = sparse
    X = pool.features
    ref, weights = composition_weights(pool.n_b, pool.multiplicity, CURVE_REFERENCE_POINTS)

    def removed_per_cost(level: int, candidate: int) -> float:
        gp = model.gps_[level]
        _, cov = gp.latent_cov(X[np.append(ref, candidate)])
        noisy_var = gp.predict(X[[candidate]], return_std=True)[1][0] ** 2
        a = weights @ cov[:-1, -1]
        return model.variance_weights()[level] * float(a @ a) / noisy_var / costs[level]

    free = [np.ones(len(pool), bool), np.ones(len(pool), bool)]
    free[0][lo] = free[1][hi] = False
    costs = [1.0, 3.0]
    scores = fidelity_scores(model, X, free, costs, curve_pool=pool)
    for level in (0, 1):
        best = int(np.argmax(scores[level]))
        worst = int(np.argmin(np.where(free[level], scores[level], np.inf)))
        for c in (best, worst):
            assert scores[level, c] == pytest.approx(removed_per_cost(level, c), rel=1e-6, abs=1e-15)
    by_curve = select_fidelity(model, X, free, costs, curve_pool=pool)
    by_pool = select_fidelity(model, X, free, costs)
    assert removed_per_cost(by_curve.level, by_curve.candidate) >= removed_per_cost(by_pool.level, by_pool.candidate)


def test_running_calculations_steer_the_next_pick_away(sparse):
    pool, _, _, model = sparse
    X = pool.features
    free = [np.ones(len(pool), bool), np.ones(len(pool), bool)]
    first = select_fidelity(model, X, free, costs=[1.0, 1e6])
    running = [X[[first.candidate]], X[:0]]
    believer = model.with_running(running)
    assert np.allclose(believer.predict(X), model.predict(X), atol=1e-3)  # means (nearly) unchanged
    assert believer.predict(X[[first.candidate]], return_std=True)[1][0] < \
        model.predict(X[[first.candidate]], return_std=True)[1][0]
    free[0][first.candidate] = False
    second = select_fidelity(model, X, free, costs=[1.0, 1e6], running=running)
    assert second.candidate != first.candidate


def test_transfer_reuses_the_pretrained_cheap_level(two_fidelities):
    pool, cheap, accurate = two_fidelities
    X = pool.features
    pretrained = CoKriging(_make_gp(pool)).fit([(X, cheap)])
    hi = np.arange(0, len(pool), 30)
    tuned = CoKriging(_make_gp(pool), frozen=pretrained).fit([(X[hi], accurate[hi])])
    assert tuned.n_levels == 2 and tuned.gps_[0] is pretrained.gps_[0]
    assert np.abs(tuned.predict(X) - accurate).mean() < 0.01
    with pytest.raises(ValueError, match="level 1 has no results"):
        CoKriging(_make_gp(pool), frozen=pretrained).fit([(X[:0], accurate[:0])])


def test_a_level_without_an_estimated_scale_is_filled_first(two_fidelities):
    pool, cheap, accurate = two_fidelities
    X = pool.features
    lo, hi = np.arange(0, len(pool), 50), np.array([0, 200, 401])
    model = CoKriging(_make_gp(pool)).fit([(X[lo], cheap[lo]), (X[hi], accurate[hi])])
    assert model.rhos_[1] == 1.0
    free = [np.ones(len(pool), bool), np.ones(len(pool), bool)]
    free[0][lo] = free[1][hi] = False
    # even a 1000x dearer accurate result comes first while only 3 exist...
    assert select_fidelity(model, X, free, costs=[1.0, 1000.0]).level == 1
    # ...counting running ones: with a 4th running, cheap results win again
    running = [X[:0], X[[100]]]
    free[1][100] = False
    assert select_fidelity(model, X, free, costs=[1.0, 1000.0], running=running).level == 0


def test_cheap_share_caps_the_cheap_spend(sparse):
    """sparse holds 9 cheap and 5 accurate results; at costs (1, 3) the cheap share of the spend is 9/24."""
    pool, lo, hi, model = sparse
    X = pool.features
    free = [np.ones(len(pool), bool), np.ones(len(pool), bool)]
    free[0][lo] = free[1][hi] = False
    assert select_fidelity(model, X, free, costs=[1.0, 3.0]).level == 0  # information per cost: cheap
    assert select_fidelity(model, X, free, costs=[1.0, 3.0], max_cheap_share=0.4).level == 0  # 0.375 < 0.4
    assert select_fidelity(model, X, free, costs=[1.0, 3.0], max_cheap_share=0.35).level == 1  # capped
    assert select_fidelity(model, X, free, costs=[1.0, 3.0], max_cheap_share=1.0).level == 0


def test_tied_discrepancy_centres_its_prior_on_the_level_below(two_fidelities):
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import model_factory

    pool, cheap, accurate = two_fidelities
    X = pool.features
    hi = np.arange(0, len(pool), 40)
    calls = []

    for discrepancy in ("free", "tied"):
        section = parse_campaign(f'[model]\nrestarts = 0\nprior = "none"\ndiscrepancy = "{discrepancy}"\n').model
        factory = model_factory(section, 0, pool)

        def spy(*args, _factory=factory, **kwargs):
            calls.append((discrepancy, "below" in kwargs))
            return _factory(*args, **kwargs)

        spy.ties_levels = factory.ties_levels
        model = CoKriging(spy).fit([(X[::4], cheap[::4]), (X[hi], accurate[hi])])
        top = model.gps_[1]
        if discrepancy == "tied":
            assert top.prior == "weak" and top.prior_centre == model.gps_[0].kernel_
        else:
            assert top.prior is None and top.prior_centre is None
    assert ("tied", True) in calls and ("free", True) not in calls
