"""activemat.analysis.curve: the random alloy's gap curve, its joint-posterior std and the bowing fit.

Stores are written by the real loop with a ReplayOracle (no DFT), as in test_predict.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_query_stores import _run, campaign_text, stores

from activemat.analysis.curve import (
    MAX_CONFIGURATIONS,
    bowing_design,
    composition_average,
    composition_subsets,
    fit_bowing,
    gap_curve,
    render,
)
from activemat.analysis.model import fit_store_model
from activemat.cli import main

E_A, E_B, B_TRUE = 0.6, 0.1, 0.2  # the bowed synthetic alloy: E(x) = (1-x) E_A + x E_B - b x(1-x)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


@pytest.fixture(scope="module")
def bowed(tmp_path_factory):
    """A GP campaign (random picks, 40 labels) on gaps with a known bowing plus 5 meV noise."""
    from distributed import Client, LocalCluster

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle

    path = tmp_path_factory.mktemp("bowed") / "bowed.h5"
    text = campaign_text("bowed", path, kind="random", budget=40)
    pool = build_campaign_pool(parse_campaign(text))
    x = pool.x_b
    gaps = (1 - x) * E_A + x * E_B - B_TRUE * x * (1 - x) + 0.005 * np.random.default_rng(7).standard_normal(len(x))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        _run(client, text, ReplayOracle(dict(enumerate(gaps.tolist())), delay=0.0))
    return path


def _latent_posterior_cov(model, X):
    """The GP's posterior covariance of the noise-free function, from its training data and noise-free kernel."""
    gp = model.gp_
    k = gp.kernel_.k1  # C * Matern, without the WhiteKernel
    Z, T = model.scaler_.transform(X), gp.X_train_
    K = gp.kernel_(T) + gp.alpha * np.eye(len(T))
    cross = k(Z, T)
    cov = k(Z) - cross @ np.linalg.solve(K, cross.T)
    if model.mean != "constant":  # plus the least-squares mean's uncertainty: R P K P' R', R = H* - K*' K^-1 H
        x = model.scaler_.inverse_transform(T)[:, 0]
        p = max(min({"linear": 2, "bowing": 3}[model.mean], len(np.unique(x)) - 1), 1)
        H, H_star = np.vander(x, p, increasing=True), np.vander(X[:, 0], p, increasing=True)
        P = np.linalg.pinv(H)
        R = H_star - cross @ np.linalg.solve(K, H)
        cov = cov + R @ P @ K @ P.T @ R.T
    return cov * model.y_std_ ** 2


def test_model_std_is_the_joint_posterior_std_of_the_average(store):
    sm = fit_store_model(store["configs"])
    curve = gap_curve(sm)
    rows = {r["n_b"]: r for r in curve["compositions"]}
    assert sorted(rows) == list(range(17)) and curve["model"] == "gp"
    for r in rows.values():
        assert 0 < r["model_std"] <= r["model_std_bound"] + 1e-12
        assert r["n_used"] == r["n_configurations"]  # 16-atom pool: below the cap everywhere
    pool = sm.pool
    idx = np.flatnonzero(pool.n_b == 8)
    w = pool.multiplicity[idx] / pool.multiplicity[idx].sum()
    mean, std = sm.model.predict(pool.features[idx], return_std=True)
    cov = _latent_posterior_cov(sm.model, pool.features[idx])
    r = rows[8]
    assert r["n_configurations"] == len(idx) > 10 and pool.multiplicity[idx].sum() == math.comb(16, 8)
    assert r["model_std"] == pytest.approx(math.sqrt(w @ cov @ w), rel=1e-6)
    assert r["mean"] == pytest.approx(w @ mean, abs=1e-12)
    assert r["model_std_bound"] == pytest.approx(w @ std, abs=1e-12)  # the old, fully correlated figure
    assert r["spread"] == pytest.approx(math.sqrt(w @ (mean - w @ mean) ** 2), abs=1e-12)
    assert r["model_std"] < r["model_std_bound"]  # averaging over partly independent errors helps


def test_blocks_and_subsampling(store):
    sm = fit_store_model(store["configs"])
    whole = gap_curve(sm)
    blocks = gap_curve(sm, joint_max=60)  # cross-covariances from pairs of blocks of compositions
    np.testing.assert_allclose([r["model_std"] for r in blocks["compositions"]],
                               [r["model_std"] for r in whole["compositions"]], rtol=1e-6)
    # the fit to the mean is the same; the sampled b agrees within its Monte Carlo error (the draws go through
    # an eigenbasis of the covariance, which tiny differences may rotate where eigenvalues nearly coincide)
    assert blocks["bowing"]["b_fit_of_mean"] == pytest.approx(whole["bowing"]["b_fit_of_mean"], abs=1e-9)
    mc_error = whole["bowing"]["b_std"] / np.sqrt(whole["bowing"]["n_samples"])
    assert blocks["bowing"]["b"] == pytest.approx(whole["bowing"]["b"], abs=4 * mc_error)
    capped = gap_curve(sm, max_configurations=5, seed=3)
    assert max(r["n_used"] for r in capped["compositions"]) == 5
    assert any("at most 5 configurations" in n for n in capped["notes"])
    for a, b in zip(capped["compositions"], whole["compositions"]):
        assert a["mean"] == b["mean"] and a["spread"] == b["spread"]  # mean and spread use every configuration
        assert a["model_std"] > 0
    # Fewer configurations average out less of the independent part of the errors: in expectation over
    # subsamples the std is larger than the whole composition's (conservative). Over several subsamples: the part
    # shared by a composition's configurations (with a linear mean, the fitted line's) leaves a small margin.
    subsampled = [np.mean([r["model_std"] for r in gap_curve(sm, max_configurations=5, seed=s)["compositions"]])
                  for s in range(3, 8)]
    assert np.mean(subsampled) > np.mean([r["model_std"] for r in whole["compositions"]])
    assert gap_curve(sm, max_configurations=5, seed=3) == capped  # seeded


def test_one_composition_is_its_point_of_the_curve(store):
    """curve.composition_average (what predict reports for Si8Ge8) draws the same subsample as gap_curve,
    so with and without the cap it gives that composition's mean, joint std, bound and spread."""
    sm = fit_store_model(store["configs"])
    for cap, seed in ((MAX_CONFIGURATIONS, 0), (5, 3)):
        curve = gap_curve(sm, max_configurations=cap, seed=seed)
        for r in curve["compositions"]:
            avg = composition_average(sm, r["n_b"], max_configurations=cap, seed=seed)
            assert avg["gap"] == pytest.approx(r["mean"], abs=1e-9)
            assert avg["model_std"] == pytest.approx(r["model_std"], rel=1e-6, abs=1e-8)  # rounding
            assert avg["model_std_bound"] == pytest.approx(r["model_std_bound"], rel=1e-6, abs=1e-8)
            assert avg["config_spread"] == pytest.approx(r["spread"], abs=1e-9)
            assert (avg["n_configurations"], avg["n_used"]) == (r["n_configurations"], r["n_used"])
    capped = composition_average(sm, 8, max_configurations=5, seed=3)
    idx = np.flatnonzero(sm.pool.n_b == 8)
    assert capped["n_used"] == 5 < capped["n_configurations"] == len(idx)
    used = [c for c in composition_subsets(sm.pool, max_configurations=5, seed=3) if c[0] == 8][0][3]
    assert set(used) <= set(idx) and len(used) == 5


def test_bowing_is_recovered_with_its_joint_uncertainty(bowed):
    curve = gap_curve(bowed)
    fit = curve["bowing"]
    assert curve["n_train"] == 40 and fit["n_samples"] > 1000
    assert fit["b_std"] > 0 and fit["E_Si_std"] > 0 and fit["E_Ge_std"] > 0
    assert abs(fit["b"] - B_TRUE) < 4 * fit["b_std"] + 0.01
    assert abs(fit["E_Si"] - E_A) < 4 * fit["E_Si_std"] + 0.01
    assert abs(fit["E_Ge"] - E_B) < 4 * fit["E_Ge_std"] + 0.01
    assert fit["b_std"] < 0.1  # 40 labels pin the curve down
    # The samples' std is the linear propagation of the curve's covariance, p' (A Cov A') p.
    sm = fit_store_model(bowed)
    from activemat.analysis.curve import curve_covariance

    pool = sm.pool
    subsets = [np.flatnonzero(pool.n_b == k) for k in range(17)]
    weights = [pool.multiplicity[s] / pool.multiplicity[s].sum() for s in subsets]
    cov = curve_covariance(sm.model, pool.features, subsets, weights)
    x = np.arange(17) / 16
    p = np.linalg.pinv(bowing_design(x))[2]
    assert fit["b_std"] == pytest.approx(math.sqrt(p @ cov @ p), rel=0.06)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [r["model_std"] for r in curve["compositions"]], rtol=1e-9)


def test_fit_bowing_of_an_exact_curve():
    x = np.linspace(0, 1, 9)
    fit = fit_bowing(x, (1 - x) * 1.1 + x * 0.7 - 0.3 * x * (1 - x), None)
    assert (fit["E_A"], fit["E_B"], fit["b"]) == pytest.approx((1.1, 0.7, 0.3), abs=1e-12)
    assert fit["b_std"] is None and fit["residual_rms"] < 1e-12
    cov = np.diag(np.full(9, 1e-4))
    sampled = fit_bowing(x, (1 - x) * 1.1 + x * 0.7 - 0.3 * x * (1 - x), cov, n_samples=20000, seed=1)
    p = np.linalg.pinv(bowing_design(x))[2]
    assert sampled["b_std"] == pytest.approx(math.sqrt(p @ cov @ p), rel=0.03)


def test_linear_model_uses_the_covariance_of_the_fitted_line(store):
    """The seed tutorial's OLS on x: model std is s sqrt(d C d'), without the residual noise term."""
    curve = gap_curve(store["tutorial"])
    assert curve["model"] == "linear"
    assert any("one configuration per composition" in n for n in curve["notes"])
    sm = fit_store_model(store["tutorial"])
    m = sm.model
    for r in curve["compositions"]:
        d = np.array([1.0, r["x"]])
        assert r["n_configurations"] == 1 and r["spread"] == 0.0
        assert r["model_std"] == pytest.approx(m.sigma_ * math.sqrt(d @ m.cov_ @ d), rel=1e-9)
        assert r["model_std"] < r["model_std_bound"]
    assert curve["bowing"]["b"] == pytest.approx(0.0, abs=1e-9)  # a straight line has no bowing
    assert curve["bowing"]["b_std"] > 0
    # a configurations pool refitted with the linear model
    lin = gap_curve(store["configs"], kind="linear")
    assert lin["model"] == "linear"
    assert all(0 < r["model_std"] <= r["model_std_bound"] for r in lin["compositions"])


def test_cli_predict_curve(store, capsys):
    assert main(["predict", str(store["configs"]), "--curve", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"store", "model", "n_train", "elements", "covariance", "compositions", "bowing", "notes"} <= set(result)
    assert {"x", "mean", "model_std", "spread", "n_configurations", "n_used", "model_std_bound"} \
        <= set(result["compositions"][0])
    assert {"E_Si", "E_Si_std", "E_Ge", "E_Ge_std", "b", "b_std"} <= set(result["bowing"])
    assert main(["predict", str(store["configs"]), "--curve"]) == 0
    text = capsys.readouterr().out
    assert "Si8Ge8" in text and "b = " in text and "joint posterior" in text
    assert main(["predict", str(store["configs"]), "Si8Ge8", "--curve"]) == 2
    assert "leave out the compositions" in capsys.readouterr().err


def test_cli_predict_curve_against_experiment_with_named_terms(store, capsys):
    from activemat.analysis.experiment import comparable_gap, weber_alonso_gap

    assert main(["predict", str(store["configs"]), "--curve", "--corrections", "none", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    row = measured["compositions"][0]
    assert measured["corrections"] == [] and row["experiment"] == pytest.approx(float(weber_alonso_gap(row["x"])))
    assert row["deviation"] == pytest.approx(row["mean"] - row["experiment"])
    assert main(["predict", str(store["configs"]), "--curve", "--corrections", "exciton,soc", "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in named["corrections"]] == ["exciton", "soc"]
    assert named["compositions"][-1]["experiment"] == pytest.approx(
        float(comparable_gap(named["compositions"][-1]["x"], ("exciton", "soc"))))
    assert main(["predict", str(store["configs"]), "--curve", "--corrections", "all"]) == 0
    text = capsys.readouterr().out
    assert "model - exp." in text and "terms added: exciton" in text and "zpr" in text
    assert main(["predict", str(store["configs"]), "--curve", "--corrections", "phonons"]) == 2
    assert "phonons" in capsys.readouterr().err
    assert main(["predict", str(store["configs"]), "Si8Ge8", "--corrections", "all"]) == 2
    assert "add --curve" in capsys.readouterr().err


def test_render_names_a_compositions_pool(store, capsys):
    render(gap_curve(store["tutorial"]))
    assert "one configuration per composition" in capsys.readouterr().out


def test_doctests():
    import doctest

    from activemat.analysis import curve
    from activemat.learn import cross_validation, gp, kernels, linear, models, refit

    for module in (curve, kernels, gp, linear, refit, cross_validation, models):
        assert doctest.testmod(module).failed == 0, module.__name__
