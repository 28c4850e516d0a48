"""activemat.analysis.predict on real stores written by the loop (ReplayOracle, no DFT)."""

from __future__ import annotations

import dataclasses
import io
import math

import ase.io
import numpy as np
import pytest
from test_query_stores import stores, tutorial_gap

from activemat.analysis.curve import gap_curve
from activemat.analysis.curve import composition_average
from activemat.analysis.model import fit_store_model
from activemat.analysis.predict import predict, render
from activemat.errors import InputError, NotEnoughData
from activemat.store.read import read_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def test_seed_tutorial_prediction_is_ordinary_least_squares(store):
    """Si4Ge12 from the six-composition fixed design: OLS mean, and the standard error of the fitted line
    there (the composition's gap, not a new noisy measurement of it: no residual term)."""
    x = np.array([14, 10, 8, 6, 4, 2]) / 16
    y = tutorial_gap(x)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    s = math.sqrt(np.sum(resid ** 2) / (len(x) - 2))
    design = np.column_stack([np.ones(6), x])
    x0 = np.array([1.0, 0.75])
    leverage = x0 @ np.linalg.inv(design.T @ design) @ x0

    result = predict(store["tutorial"], "Si4Ge12")
    assert result["model"] == "linear" and result["n_train"] == 6
    (p,) = result["predictions"]
    assert p["formula"] == "Si4Ge12" and p["x_ge"] == 0.75 and p["n_ge"] == 12
    assert p["gap"] == pytest.approx(intercept + slope * 0.75, abs=1e-12)
    assert p["model_std"] == pytest.approx(s * math.sqrt(leverage), rel=1e-9)
    assert p["model_std"] < s * math.sqrt(1 + leverage)  # the prediction std of one new measurement
    assert p["model_std_kind"] == "joint posterior"
    assert p["config_spread"] == 0.0 and p["n_configurations"] == p["n_used"] == 1  # one cell per composition
    assert p["computed"] == [] and not p["extrapolation"]


def test_computed_compositions_and_extrapolation_are_flagged(store):
    items = {p["spec"]: p for p in predict(store["tutorial"], ["Si8Ge8", "Ge16"])["predictions"]}
    assert [c["gap"] for c in items["Si8Ge8"]["computed"]] == pytest.approx([tutorial_gap(0.5)])
    assert items["Ge16"]["extrapolation"] and not items["Si8Ge8"]["extrapolation"]
    out = io.StringIO()
    render(predict(store["tutorial"], ["Si8Ge8", "Ge16"]), out)
    text = out.getvalue()
    assert "Si8Ge8: x_ge = 0.5000, predicted gap" in text and f"computed: {tutorial_gap(0.5):.3f} eV" in text
    assert "extrapolation" in text.split("Ge16:")[1]


def test_composition_average_is_multiplicity_weighted_with_the_joint_posterior_std(store):
    """The model std of a composition is sqrt(w' Cov w) from the GP's joint posterior of the configurations
    averaged, not the fully correlated w @ std (which it stays strictly below: their errors are not all equal)."""
    sm = fit_store_model(store["configs"])
    pool = sm.pool
    idx = np.flatnonzero(pool.n_b == 8)
    mean, std = sm.model.predict(pool.features[idx], return_std=True)
    _, cov = sm.model.latent_cov(pool.features[idx])
    w = pool.multiplicity[idx] / pool.multiplicity[idx].sum()
    assert pool.multiplicity[idx].sum() == math.comb(16, 8)
    (p,) = predict(store["configs"], "Si8Ge8")["predictions"]
    assert p["n_configurations"] == p["n_used"] == len(idx) > 10
    assert p["gap"] == pytest.approx(w @ mean, abs=1e-12)
    assert p["model_std"] == pytest.approx(math.sqrt(w @ cov @ w), rel=1e-9)
    assert p["model_std_kind"] == "joint posterior"
    assert p["model_std"] < 0.9 * (w @ std)  # the old, fully correlated bound
    assert p["config_spread"] == pytest.approx(math.sqrt(w @ (mean - w @ mean) ** 2), abs=1e-12)
    assert p["config_spread"] > 1e-3  # configurations differ; kept apart from the model std
    # the same number as that composition's point of the curve
    row = next(r for r in gap_curve(sm)["compositions"] if r["n_b"] == 8)
    assert p["model_std"] == pytest.approx(row["model_std"], rel=1e-6) and p["gap"] == pytest.approx(row["mean"])
    out = io.StringIO()
    render(predict(store["configs"], "Si8Ge8"), out)
    assert f"+/- {p['model_std']:.3f} eV (model std of the average, joint posterior)" in out.getvalue()


def test_a_model_without_joint_covariance_reports_the_bound(store):
    """Co-kriging models have no latent_cov yet: their composition std is the fully correlated bound, labelled."""
    sm = fit_store_model(store["configs"])

    class NoJoint:  # predict only, as CoKriging
        def __init__(self, model):
            self.model = model

        def predict(self, X, return_std=False):
            return self.model.predict(X, return_std=return_std)

    avg = composition_average(dataclasses.replace(sm, model=NoJoint(sm.model)), 8)
    assert avg["model_std_kind"] == "fully correlated bound"
    assert avg["model_std"] == avg["model_std_bound"] == pytest.approx(
        composition_average(sm, 8)["model_std_bound"], abs=1e-12)
    with pytest.raises(InputError, match="no configuration with 17 Ge atoms"):
        composition_average(sm, 17)


def test_refit_reproduces_the_loops_last_model(store):
    for name in ("configs", "tutorial"):
        view = read_store(store[name])
        sm = fit_store_model(view)
        mean, std = sm.predict(sm.pool.features)
        snaps = view.snapshots
        assert sm.kind == str(snaps["model"][-1]).split(":")[0]
        assert len(sm.train) == snaps["n_train"][-1]
        np.testing.assert_allclose(mean, snaps["pool_mean"][-1], atol=2e-4)  # stored as float32
        np.testing.assert_allclose(std, snaps["pool_std"][-1], atol=2e-4)


def test_model_kind_can_be_overridden(store):
    gp = predict(store["tutorial"], "Si4Ge12", kind="gp")
    assert gp["model"] == "gp" and gp["description"].startswith("gp:")
    assert gp["predictions"][0]["gap"] != predict(store["tutorial"], "Si4Ge12")["predictions"][0]["gap"]


def test_structure_files_are_featurised(store, tmp_path):
    sm = fit_store_model(store["configs"])
    i = int(np.flatnonzero(sm.pool.n_b == 5)[3])
    atoms = sm.pool.atoms(i)
    bigger = atoms.repeat((1, 1, 2))
    bigger = bigger[np.random.default_rng(0).permutation(len(bigger))]  # any cell and site order
    ase.io.write(tmp_path / "one.cif", atoms)
    ase.io.write(tmp_path / "two.extxyz", [atoms, bigger])
    mean, std = sm.predict(sm.pool.features[[i]])
    for name, n in (("one.cif", 1), ("two.extxyz", 2)):
        items = predict(store["configs"], str(tmp_path / name))["predictions"]
        assert len(items) == n
        for p in items:
            assert p["type"] == "structure" and p["formula"] in ("Si11Ge5", "Si22Ge10") and p["x_ge"] == pytest.approx(5 / 16)
            assert p["gap"] == pytest.approx(mean[0], abs=1e-9) and p["model_std"] == pytest.approx(std[0], abs=1e-9)
    # a compositions-mode store uses only x of the structure
    (p,) = predict(store["tutorial"], str(tmp_path / "one.cif"))["predictions"]
    assert p["gap"] == pytest.approx(predict(store["tutorial"], "Si11Ge5")["predictions"][0]["gap"], abs=1e-12)


@pytest.mark.parametrize("spec, message", [
    ("Si4Ge13", "17 atoms but the supercell has 16 sites"),
    ("Si4Sn12", "element 'Sn'"),
    ("hello", "neither a composition nor a structure file"),
    ("missing.cif", "structure file not found: missing.cif"),
])
def test_bad_specs(store, spec, message):
    with pytest.raises(InputError, match=message):
        predict(store["tutorial"], spec)


def test_bad_structure_files(store, tmp_path):
    (tmp_path / "junk.xyz").write_text("this is not\nan xyz file\n")
    with pytest.raises(InputError, match="cannot read structure file .*junk.xyz"):
        predict(store["tutorial"], str(tmp_path / "junk.xyz"))
    from ase.build import bulk

    ase.io.write(tmp_path / "sn.cif", bulk("Sn", "diamond", a=6.489))
    with pytest.raises(InputError, match="contains Sn"):
        predict(store["tutorial"], str(tmp_path / "sn.cif"))
    ase.io.write(tmp_path / "fcc.cif", bulk("Si", "fcc", a=5.4))
    with pytest.raises(InputError, match="not a diamond lattice"):
        predict(store["tutorial"], str(tmp_path / "fcc.cif"))


def test_too_little_data(store):
    for name, n in (("empty", 0), ("single", 1)):
        with pytest.raises(NotEnoughData, match=f"has {n} successful calculation.*at least 2"):
            predict(store[name], "Si8Ge8")


def test_orbit_feature_stores_predict_structures_that_sit_on_the_supercell(tmp_path):
    """features = "orbits" are defined on the supercell's sites: a structure is matched to its candidate
    (any site order), and a structure off those sites is a clear input error."""
    from distributed import Client, LocalCluster
    from test_query_stores import _run, campaign_text

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from tests.conftest import synthetic_gaps

    text = campaign_text("orbits", tmp_path / "orbits.h5", space={"features": "orbits"}, budget=6)
    pool = build_campaign_pool(parse_campaign(text))
    assert pool.features.shape[1] == 30
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        _run(client, text, ReplayOracle(synthetic_gaps(pool)))
    sm = fit_store_model(tmp_path / "orbits.h5")
    i = int(np.flatnonzero(pool.n_b == 5)[3])
    atoms = pool.atoms(i)
    ase.io.write(tmp_path / "one.extxyz", atoms[np.random.default_rng(1).permutation(len(atoms))])
    (p,) = predict(tmp_path / "orbits.h5", str(tmp_path / "one.extxyz"))["predictions"]
    mean, std = sm.predict(pool.features[[i]])
    assert p["gap"] == pytest.approx(mean[0], abs=1e-9) and len(p["features"]) == 30
    ase.io.write(tmp_path / "big.extxyz", atoms.repeat((1, 1, 2)))
    with pytest.raises(InputError, match="orbits"):
        predict(tmp_path / "orbits.h5", str(tmp_path / "big.extxyz"))
