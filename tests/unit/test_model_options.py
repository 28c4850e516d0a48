"""The GP options of issue 16: length scales per cluster class, a weak hyperprior (MAP), a bowing mean, a fixed
noise, a hyperprior centred on a cheaper fidelity's fit, and batch selection in replay."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import Matern

from activemat.analysis.replay import replay_curve
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import model_factory
from activemat.cli import main
from activemat.errors import InputError
from activemat.learn.gp import GPRegressor, bowing_mean
from activemat.learn.kernels import (
    GroupedMatern,
    LogNormalPrior,
    kernel_from_dict,
    kernel_to_dict,
    weak_prior,
    white_noise_level,
)
from activemat.learn.models import reuse_state
from activemat.space.features import feature_classes
from activemat.space.pool import build_pool
from tests.conftest import campaign_toml, synthetic_gaps


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 25)
    X = np.column_stack([x, rng.normal(size=(25, 5))])
    y = 0.6 - 0.3 * x - 0.4 * x ** 2 + 0.03 * np.sin(2 * X[:, 1]) + 0.01 * X[:, 2]
    return X, y


GROUPS = (0, 1, 1, 2, 2, 2)


# -- length scales per class ------------------------------------------------------------

def test_grouped_matern_is_matern_with_tied_length_scales_and_summed_gradients():
    X = np.random.default_rng(0).normal(size=(6, 6))
    k = GroupedMatern([0.7, 1.3, 2.9], groups=GROUPS, nu=2.5)
    K, grad = k(X, eval_gradient=True)
    assert np.allclose(K, Matern([0.7, 1.3, 1.3, 2.9, 2.9, 2.9], nu=2.5)(X))
    assert grad.shape == (6, 6, 3)
    eps = 1e-6  # finite differences in log length scale
    for g in range(3):
        theta = k.theta.copy()
        theta[g] += eps
        assert np.allclose((k.clone_with_theta(theta)(X) - K) / eps, grad[:, :, g], atol=1e-4)


def test_classes_give_one_length_scale_per_class(data):
    X, y = data
    gp = GPRegressor(groups=GROUPS, restarts=0).fit(X, y)
    ls = gp.kernel_.k1.k2.length_scale
    assert isinstance(gp.kernel_.k1.k2, GroupedMatern) and np.shape(ls) == (3,)
    # constant, three length scales, noise: five hyperparameters instead of eight with ARD
    assert len(gp.kernel_.theta) == 5
    assert len(GPRegressor(ard=True, restarts=0).fit(X, y).kernel_.theta) == 8


def test_groups_must_cover_every_feature(data):
    X, y = data
    with pytest.raises(ValueError, match="groups has 3 entries for 6 features"):
        GPRegressor(groups=(0, 1, 1), restarts=0).fit(X, y)


def test_grouped_kernel_round_trips_through_stored_state(data):
    X, y = data
    gp = GPRegressor(groups=GROUPS, restarts=0).fit(X, y)
    again = kernel_from_dict(json.loads(json.dumps(kernel_to_dict(gp.kernel_))))
    assert again == gp.kernel_ and np.array_equal(again.theta, gp.kernel_.theta)
    rebuilt = reuse_state(GPRegressor(groups=GROUPS), gp.state()).fit(X, y)
    assert np.allclose(rebuilt.predict(X), gp.predict(X))


def test_feature_classes_of_the_orbit_features():
    pool = build_pool(("Si", "Ge"), (2, 2, 2), features="orbits")
    classes = pool.feature_classes
    assert len(classes) == pool.features.shape[1] == 30
    assert [classes.count(c) for c in range(4)] == [1, 4, 6, 19]
    assert feature_classes(("x_ge", "pair1", "pair2", "pair3", "triplet1")) == (0, 1, 1, 1, 2)


def test_campaign_classes_key_builds_a_grouped_gp():
    pool = build_pool(("Si", "Ge"), (2, 2, 2), features="orbits")
    config = parse_campaign(campaign_toml({}, space={"features": "orbits"}, model={"ard": "classes", "restarts": 0}))
    gp = model_factory(config.model, 0, pool)()
    y = np.array(list(synthetic_gaps(pool).values()))
    gp.fit(pool.features[::10], y[::10])
    assert np.shape(gp.kernel_.k1.k2.length_scale) == (4,)


# -- MAP fit under a weak hyperprior ----------------------------------------------------------

def test_log_normal_prior_gradient_matches_finite_differences():
    p = LogNormalPrior(np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0]))
    theta = np.array([0.3, -0.2, 1.0])
    value, grad = p(theta)
    for i in range(3):
        t = theta.copy()
        t[i] += 1e-6
        assert (p(t)[0] - value) / 1e-6 == pytest.approx(grad[i], abs=1e-4)


def test_weak_prior_changes_the_fit_and_pulls_towards_its_centre(data):
    X, y = data
    ml = GPRegressor(ard=True, restarts=0).fit(X[:8], y[:8])
    gp_map = GPRegressor(ard=True, restarts=0, prior="weak").fit(X[:8], y[:8])
    assert not np.allclose(ml.kernel_.theta, gp_map.kernel_.theta)
    prior = weak_prior(ml.kernel_, X.shape[1])
    # the MAP fit has the higher posterior, the ML fit the higher likelihood
    post = [m.gp_.log_marginal_likelihood(m.kernel_.theta) + prior(m.kernel_.theta)[0] for m in (ml, gp_map)]
    assert post[1] > post[0]
    assert ml.gp_.log_marginal_likelihood_value_ >= gp_map.gp_.log_marginal_likelihood_value_ - 1e-6
    # every log-hyperparameter of the MAP fit is at least as close to the prior centre as the ML one, on average
    dist = [np.abs(m.kernel_.theta - prior.mean).mean() for m in (ml, gp_map)]
    assert dist[1] < dist[0]


def test_prior_centre_replaces_the_weak_centres_but_not_the_noise(data):
    X, y = data
    cheap = GPRegressor(groups=GROUPS, restarts=0).fit(X, y + 0.05)
    start = GPRegressor(groups=GROUPS)._default_kernel(X.shape[1])
    p = weak_prior(start, X.shape[1], centre=cheap.kernel_)
    assert np.allclose(p.mean[:4], cheap.kernel_.theta[:4]) and np.all(p.sd[:4] == 0.5)
    assert p.mean[4] == pytest.approx(np.log(1e-4))  # the noise keeps the weak prior
    tight = GPRegressor(groups=GROUPS, restarts=0, prior="weak", prior_centre=cheap.kernel_).fit(X[:6], y[:6])
    free = GPRegressor(groups=GROUPS, restarts=0, prior="weak").fit(X[:6], y[:6])
    gap = [np.abs(m.kernel_.theta[:4] - cheap.kernel_.theta[:4]).sum() for m in (tight, free)]
    assert gap[0] < gap[1]


# -- bowing mean and fixed noise ----------------------------------------------------------------

def test_bowing_mean_recovers_a_quadratic_and_the_gp_the_rest(data):
    X, y = data
    x = X[:, 0]
    quad = 0.6 - 0.3 * x - 0.4 * x ** 2
    assert np.allclose(bowing_mean(x, quad), [0.6, -0.3, -0.4])
    gp = GPRegressor(restarts=0, mean="bowing").fit(X, quad)
    assert np.allclose(gp.mean_coef_, [0.6, -0.3, -0.4])
    # far outside the data the GP reverts to its mean: the quadratic, not the labels' average
    far = np.column_stack([[2.0], np.full((1, 5), 30.0)])
    assert gp.predict(far)[0] == pytest.approx(0.6 - 0.6 - 1.6, abs=1e-6)
    assert GPRegressor(restarts=0).fit(X, quad).predict(far)[0] == pytest.approx(quad.mean(), abs=0.05)


def test_bowing_mean_keeps_predictions_std_and_latent_cov_consistent(data):
    X, y = data
    gp = GPRegressor(restarts=0, mean="bowing").fit(X, y)
    mean, std = gp.predict(X[:5], return_std=True)
    lat_mean, cov = gp.latent_cov(X[:5])
    assert np.allclose(mean, gp.predict(X[:5])) and np.allclose(lat_mean, mean)
    assert np.all(np.diag(cov) <= std ** 2 + 1e-12)
    loo = gp.with_fixed_kernel()
    assert loo.mean == "bowing" and np.allclose(loo.fit(X, y).predict(X[:5]), mean)


def test_fixed_noise_is_not_optimised(data):
    X, y = data
    gp = GPRegressor(restarts=0, noise=0.002).fit(X, y)
    assert white_noise_level(gp.kernel_) * gp.y_std_ ** 2 == pytest.approx(0.002 ** 2)
    assert all(h.fixed for h in gp.kernel_.hyperparameters if h.name.endswith("noise_level"))
    assert len(gp.kernel_.theta) == 2  # constant and one length scale


# -- campaign keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("model, expect", [
    ('ard = "clases"', "model.ard"),
    ('prior = "strong"', "model.prior"),
    ('noise = 0', "model.noise"),
    ('mean = "cubic"', "model.mean"),
    ('prior = "none"\nprior_from = "cheap.extxyz"', "prior_from centres the hyperprior"),
    ('kind = "linear"\nmean = "bowing"', "mean set a Gaussian process"),
])
def test_bad_model_keys_are_one_line_errors_with_exit_code_2(tmp_path, model, expect):
    path = tmp_path / "c.toml"
    path.write_text(f"[model]\n{model}\n")
    with pytest.raises(InputError, match=expect):
        parse_campaign(path.read_text(), path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["replay", str(path), "--oracle", str(tmp_path / "none.extxyz")])
    assert code == 2 and len(err.getvalue().strip().splitlines()) == 1 and expect in err.getvalue()


def test_good_model_keys_parse():
    m = parse_campaign('[model]\nard = "classes"\nprior = "weak"\nprior_from = "a.extxyz"\nnoise = 0.001\n'
                       'mean = "bowing"\n').model
    assert (m.ard, m.prior, m.noise, m.mean) == ("classes", "weak", 0.001, "bowing")
    assert parse_campaign("[model]\nmean = \"linear\"\n").model.mean == "linear"
    assert parse_campaign("[model]\nard = true\n").model.ard is True


def test_prior_from_a_missing_file_is_an_input_error():
    pool = build_pool(("Si", "Ge"), (2, 2, 2))
    config = parse_campaign('[model]\nprior = "weak"\nprior_from = "/nonexistent/cheap.extxyz"\n')
    with pytest.raises(InputError, match="prior_from = /nonexistent/cheap.extxyz: file not found"):
        model_factory(config.model, 0, pool)


# -- batches in replay ---------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 4])
def test_replay_batches_pick_distinct_candidates_and_refit_once_per_batch(batch):
    pool = build_pool(("Si", "Ge"), (2, 2, 2))
    y = np.array(list(synthetic_gaps(pool).values()))
    config = parse_campaign(campaign_toml({}, model={"restarts": 0}, strategy={"kind": "ivr", "n_seed": 3}))
    run = replay_curve(pool, y, config.strategy, model_factory(config.model, 0, pool), seed=0, budget=14,
                       batch=batch)
    assert len(run["picks"]) == 14 and len(set(run["picks"])) == 14
    fitted = np.flatnonzero(np.isfinite(run["mae"]))
    expect = np.arange(2, 15) if batch == 1 else np.array([4, 8, 12, 14])
    assert fitted.tolist() == expect.tolist()


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_cheap_share_is_a_fraction(value):
    with pytest.raises(InputError, match="strategy.cheap_share"):
        parse_campaign(f"[strategy]\ncheap_share = {value}\n")
    assert parse_campaign("[strategy]\ncheap_share = 0.5\n").strategy.cheap_share == 0.5


def test_the_multi_fidelity_strategy_passes_the_cap_on(monkeypatch):
    import activemat.learn.strategies as strategies

    seen = {}
    monkeypatch.setattr(strategies, "select_fidelity", lambda *a, **k: seen.update(k))  # None: no pick
    pool = type("Pool", (), {"features": np.zeros((3, 1))})()
    ctx = type("Ctx", (), {"model": None, "pool": pool, "free": [np.ones(3, bool)] * 2, "costs": [1.0, 8.0],
                           "running": []})()
    settings = parse_campaign("[strategy]\ncheap_share = 0.4\n").strategy
    assert strategies.CostAwareIVR(settings).select(ctx) is None
    assert seen["max_cheap_share"] == 0.4
