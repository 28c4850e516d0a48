"""benchmarks.design_bound: fixed-hyperparameter GP maths and the exchange search, on the synthetic gap table."""

import numpy as np
import pytest

from activemat.learn.gp import GPRegressor
from activemat.space.pool import build_pool
from benchmarks import design_bound
from tests.conftest import synthetic_gaps

@pytest.fixture(scope="module")
def bound():
    return design_bound


@pytest.fixture(scope="module")
def fitted():
    pool = build_pool()
    gaps = synthetic_gaps(pool)
    y = np.array([gaps[i] for i in range(len(pool))])
    rng = np.random.default_rng(0)
    y = y + rng.normal(0, 0.005, len(y))  # configuration noise, so that the GP has something to get wrong
    model = GPRegressor(ard=False, restarts=0).fit(pool.features, y)
    return pool.features, y, model


def test_fixed_gp_predicts_as_the_project_model_with_fixed_hyperparameters(bound, fitted):
    X, y, model = fitted
    gp = bound.FixedGP(model, X, y)
    picks = [0, 5, 17, 40, 99, 200, 350, 401]
    reference = model.with_fixed_kernel().fit(X[picks], y[picks]).predict(X)
    assert np.allclose(gp.predict(picks), reference, atol=1e-8)
    _, std = model.with_fixed_kernel().fit(X[picks], y[picks]).predict(X, return_std=True)
    # the GP's std is of the noisy target; the integrated variance is of f, in normalised units
    noise = model.kernel_.k2.noise_level
    assert gp.integrated_variance(picks) == pytest.approx(np.sum(std**2 / y[picks].std() ** 2 - noise), rel=1e-6)


def test_exchange_never_makes_a_design_worse_and_finds_a_better_one(bound, fitted):
    X, y, model = fitted
    gp = bound.FixedGP(model, X, y)
    start = list(range(0, 402, 50))  # 9 labels by index order: a poor design
    better = bound.exchange(start, len(y), gp.integrated_variance, np.random.default_rng(0))
    assert len(set(better)) == len(start)
    assert gp.integrated_variance(better) < 0.9 * gp.integrated_variance(start)


def test_clairvoyant_design_is_at_least_as_good_as_random(bound, fitted):
    X, y, model = fitted
    gp = bound.FixedGP(model, X, y)
    rng = np.random.default_rng(0)
    c = bound.curve(gp, len(y), gp.mae, range(6, 9), rng, True, target=0.0)
    randoms = [gp.mae(list(np.random.default_rng(s).permutation(len(y))[:8])) for s in range(5)]
    assert sorted(c) == [6, 7, 8]
    assert c[8][0] < min(randoms)
    assert bound.first_reaching(c, c[7][0]) in (7, 8) and bound.first_reaching(c, -1.0) is None


def test_near_ties_go_to_the_lowest_index_whatever_the_round_off(bound):
    # symmetric candidates tie up to round-off, which BLAS thread counts change
    noise = {0: 1.0 + 3e-13, 1: 1.0, 2: 1.0 - 2e-13, 3: 2.0}
    assert bound.greedy_add([], 4, lambda picks: noise[picks[-1]]) == [0]
    assert bound.exchange([3], 4, lambda picks: noise[picks[0]], np.random.default_rng(0)) == [0]
