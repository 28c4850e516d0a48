"""activemat.analysis.modelcard (``activemat inspect``) on real stores written by the loop (ReplayOracle, no DFT)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from test_query_stores import stores, tutorial_gap, with_test_set

from activemat.analysis.modelcard import model_card, render
from activemat.analysis.model import fit_store_model
from activemat.campaign.stored import open_campaign
from activemat.learn.cross_validation import cross_validate, cv_predictions


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def test_linear_card_has_coefficients_importances_and_r2(store):
    card = model_card(store["tutorial"])
    x = np.array([14, 10, 8, 6, 4, 2]) / 16
    y = tutorial_gap(x)
    slope, intercept = np.polyfit(x, y, 1)
    fit = intercept + slope * x
    assert card["kind"] == "linear" and card["n_train"] == 6 and card["features"] == ["x_ge"]
    assert card["hyperparameters"]["intercept"] == pytest.approx(intercept, abs=1e-12)
    (coef,) = card["coefficients"]
    pool_x = np.arange(17) / 16
    assert coef["feature"] == "x_ge" and coef["coef"] == pytest.approx(slope, abs=1e-12)
    assert coef["importance"] == pytest.approx(abs(slope) * pool_x.std(), abs=1e-12)
    assert card["fit_r2"] == pytest.approx(1 - np.sum((fit - y) ** 2) / np.sum((y - y.mean()) ** 2), abs=1e-12)
    assert card["cv_scheme"] == "leave-one-out"
    # leave-one-out by hand
    loo = [np.polyval(np.polyfit(np.delete(x, i), np.delete(y, i), 1), x[i]) for i in range(6)]
    assert card["cv_mae"] == pytest.approx(np.mean(np.abs(np.array(loo) - y)), abs=1e-12)
    assert card["baseline_mae"] == pytest.approx(
        np.mean([abs(np.delete(y, i).mean() - y[i]) for i in range(6)]), abs=1e-12)
    assert card["cv_mae"] < card["baseline_mae"]
    # the loop's own last snapshot saw the same model
    assert card["latest_snapshot"]["cv_mae"] == pytest.approx(card["cv_mae"], abs=1e-12)
    assert card["n_test_reserved"] == 0 and "test_mae" not in card
    json.dumps(card)  # JSON-ready


def test_card_renders_coefficients(store):
    out = io.StringIO()
    render(model_card(store["tutorial"]), out)
    text = out.getvalue()
    for needle in ("linear: intercept", "CV (leave-one-out) MAE", "baseline MAE", "fit R^2", "x_ge",
                   "importance", "none reserved"):
        assert needle in text, needle


def test_gp_card_names_the_one_class_of_a_composition_space(store):
    # compositions mode has x_ge alone: one cluster class, whose length scale scikit-learn keeps as a float
    card = model_card(store["tutorial"], kind="gp")
    scales = card["hyperparameters"]["length_scale"]
    assert list(scales) == ["composition"] and scales["composition"] > 0
    out = io.StringIO()
    render(card, out)
    assert "composition " in out.getvalue()


def test_gp_card_and_cv_predictions(store):
    card = model_card(store["configs"])
    hp = card["hyperparameters"]
    assert card["kind"] == "gp" and card["model"].startswith("gp:")
    # the default ard = "classes": a length scale per cluster class of the shell features, named by class
    assert list(hp["length_scale"]) == ["composition", "pair", "triplet"]
    assert min(hp["length_scale"].values()) > 0 and hp["amplitude"] > 0
    assert np.isfinite(hp["log_marginal_likelihood"])
    out = io.StringIO()
    render(card, out)
    assert f"composition {hp['length_scale']['composition']:.4g}, pair" in out.getvalue()
    assert "coefficients" not in card and card["n_train"] == 10
    sm = fit_store_model(store["configs"])
    pred, std = cv_predictions(sm.model, sm.X, sm.y)
    cv = cross_validate(sm.model, sm.X, sm.y)
    assert np.mean(np.abs(pred - sm.y)) == pytest.approx(cv["cv_mae"], abs=1e-12) == card["cv_mae"]
    assert np.all(std > 0)


def test_empty_and_single_stores_have_no_model(store):
    for name, n in (("empty", 0), ("single", 1)):
        card = model_card(store[name])
        assert card["model"] is None and card["n_train"] == n and "no model yet" in card["note"]
        out = io.StringIO()
        render(card, out)
        assert "not fitted" in out.getvalue() and "no model yet" in out.getvalue()


def test_held_out_test_set_is_reported_and_never_trained_on(store, tmp_path):
    path, held = with_test_set(store["configs"], tmp_path / "test.h5", n=2)
    card = model_card(path)
    view = open_campaign(path)
    train, _ = view.training_set()
    assert card["n_train"] == 8 and card["n_test"] == 2 and card["n_test_reserved"] == 2
    assert not set(held) & set(train.tolist())
    sm = fit_store_model(view)
    gaps = view.completed()
    expected = np.mean(np.abs(sm.model.predict(sm.pool.features[held]) - [gaps[int(c)] for c in held]))
    assert card["test_mae"] == pytest.approx(expected, abs=1e-12)
    assert card["latest_snapshot"]["test_mae"] == pytest.approx(0.0123)
    out = io.StringIO()
    render(card, out)
    assert "2 computed of 2 reserved" in out.getvalue() and "test MAE (latest snapshot)" in out.getvalue()


def test_reference_store_scores_the_model(store, tmp_path):
    card = model_card(store["tutorial"], reference=store["tutorial"])
    ref = card["reference"]
    assert ref["n"] == 6 and ref["n_unseen"] == 0 and ref["mae_unseen"] is None
    assert ref["mae"] == pytest.approx(card["fit_mae"], abs=1e-12)  # its own training data
    # the GP store against a copy in which two computed candidates are held out: they are "unseen" there
    path, held = with_test_set(store["configs"], tmp_path / "held.h5", n=2)
    card = model_card(path, reference=store["configs"])
    assert card["reference"]["n"] == 10 and card["reference"]["n_unseen"] == 2
    assert card["reference"]["mae_unseen"] == pytest.approx(card["test_mae"], abs=1e-12)
    out = io.StringIO()
    render(card, out)
    assert "reference MAE (not trained on)" in out.getvalue()


def test_reference_must_share_the_pool(store):
    from activemat.errors import InputError

    with pytest.raises(InputError, match="different candidate pool"):
        model_card(store["tutorial"], reference=store["configs"])
    with pytest.raises(InputError, match="no successful calculations"):
        model_card(store["configs"], reference=store["empty"])
