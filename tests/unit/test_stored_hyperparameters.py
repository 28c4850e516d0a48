"""The read verbs rebuild the loop's model from the hyperparameters its snapshots store, without optimising.

Stores written by the real loop (ReplayOracle, no DFT): a single GP, a linear model, a multi-fidelity and a
transfer co-kriging. The marginal-likelihood optimiser is replaced by one that fails, so any optimisation
shows; the rebuilt model must predict what the loop's last snapshot stored over the whole pool.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from rich.console import Console
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from test_query_stores import stores

from activemat.analysis.modelcard import model_card
from activemat.analysis.model import fit_store_model
from activemat.analysis.predict import predict
from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.cli import main
from activemat.compute.oracle import ReplayOracle
from activemat.learn import gp as gp_module
from activemat.learn.gp import GPRegressor
from activemat.learn.kernels import kernel_from_dict, kernel_to_dict
from activemat.store import schema as S
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps

V2 = __import__("pathlib").Path(__file__).resolve().parents[2] / "tests" / "data" / "reference-pbe-v2.h5"  # schema 2

# The 16-atom pool (no [space]), seed 1, 3 space-filling picks, two workers (the dashboard as by default).
BASE = {"campaign": {"seed": 1}, "strategy": {"n_seed": 3}, "cluster": {"workers": 2}}
MULTI = campaign_toml(BASE, store="mf.h5", strategy={"kind": "ivr"}, stop={"budget": 14}, calculator={
    "preset": "gpaw-tb09", "cost": 20.0, "cheaper": [{"preset": "gpaw-pbe-pw", "cost": 1.0}]})


def single(store: str, preset: str, budget: int, **model) -> str:
    return campaign_toml(BASE, store=store, calculator={"preset": preset}, model=model,
                         strategy={"kind": "max_std"}, stop={"budget": budget})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


@pytest.fixture
def no_optimiser(monkeypatch):
    """Every hyperparameter optimisation fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the marginal likelihood was optimised")

    monkeypatch.setattr(gp_module, "lbfgs", refuse)


def _same_as_last_snapshot(sm, atol=2e-6):
    mean, std = sm.predict(sm.pool.features)
    snaps = sm.view.snapshots
    assert len(sm.train) == snaps["n_train"][-1]
    np.testing.assert_allclose(mean, snaps["pool_mean"][-1], rtol=0, atol=atol)  # float32 in the store
    np.testing.assert_allclose(std, snaps["pool_std"][-1], rtol=0, atol=atol)


def test_kernel_round_trips_exactly_through_json():
    kernel = ConstantKernel(0.734, (1e-3, 1e2)) * Matern([1.1, 2.345678901234, 7.0], (0.3, 1e3), nu=2.5) \
        + WhiteKernel(3.3e-5, (1e-8, 1e-1))
    again = kernel_from_dict(json.loads(json.dumps(kernel_to_dict(kernel))))
    assert again == kernel and np.array_equal(again.theta, kernel.theta) and np.array_equal(again.bounds,
                                                                                             kernel.bounds)
    with pytest.raises(ValueError, match="not a scikit-learn kernel"):
        kernel_from_dict({"kernel": "Hyperparameter", "params": {}})


def test_snapshots_store_the_exact_hyperparameters(store):
    data = read_store(store["configs"])
    state = json.loads(data.snapshots["hyperparameters"][-1])
    assert state["kind"] == "gp" and state["kernel"]["kernel"] == "Sum"
    assert all(data.snapshots["hyperparameters"])  # every refit wrote its own
    assert json.loads(read_store(store["tutorial"]).snapshots["hyperparameters"][-1]) == {"kind": "linear"}


def test_read_verbs_rebuild_the_loops_model_without_optimising(store, no_optimiser):
    sm = fit_store_model(store["configs"])
    assert sm.stored and sm.snapshot == read_store(store["configs"]).snapshots["iteration"][-1]
    assert "snapshot" in sm.hyperparameters and "not optimised" in sm.hyperparameters
    _same_as_last_snapshot(sm)
    result = predict(store["configs"], "Si8Ge8")
    assert "stored" in result["hyperparameters"]
    card = model_card(store["configs"])
    assert card["fitted"] == sm.hyperparameters
    linear = fit_store_model(store["tutorial"])
    assert linear.kind == "linear" and "least squares" in linear.hyperparameters
    _same_as_last_snapshot(linear)


def test_refit_optimises_again_when_asked(store, monkeypatch):
    calls = []
    real = gp_module.lbfgs

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gp_module, "lbfgs", counting)
    sm = fit_store_model(store["configs"], refit=True)
    assert calls and not sm.stored and "optimised now" in sm.hyperparameters and "--refit" in sm.hyperparameters
    calls.clear()
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["predict", str(store["configs"]), "Si8Ge8", "--refit", "--json"]) == 0
    assert calls and "optimised now" in json.loads(out.getvalue())["hyperparameters"]


def test_a_store_without_stored_hyperparameters_is_refitted_and_says_why(tmp_path):
    path = tmp_path / "reference-pbe.h5"
    shutil.copy(V2, path)
    assert int(read_store(path).attrs[S.ATTR_SCHEMA]) < 5
    sm = fit_store_model(path)
    assert not sm.stored and "no stored hyperparameters" in sm.hyperparameters
    assert isinstance(sm.model, GPRegressor) and len(sm.train) == 12


def _run(client, text, oracle):
    config = parse_campaign(text)
    run_campaign(config, text, client=client, task=oracle, report=Reporter(10, Console(file=io.StringIO())))


def test_co_kriging_models_are_rebuilt_from_every_levels_stored_kernel(in_tmp, client, monkeypatch):
    pool = build_campaign_pool(parse_campaign(MULTI))
    cheap = synthetic_gaps(pool)
    accurate = {i: 0.6 * g + 0.55 + 0.1 * pool.x_b[i] for i, g in cheap.items()}
    oracle = ReplayOracle(accurate, delay=0.01, preset_gaps={"gpaw-pbe-pw": cheap})
    _run(client, MULTI, oracle)
    _run(client, single("cheap.h5", "gpaw-pbe-pw", 12), oracle)
    _run(client, single("tuned.h5", "gpaw-tb09", 6, transfer_from="cheap.h5"), oracle)

    def refuse(*args, **kwargs):
        raise AssertionError("the marginal likelihood was optimised")

    monkeypatch.setattr(gp_module, "lbfgs", refuse)
    for name, levels in (("mf.h5", 2), ("tuned.h5", 2)):
        state = json.loads(read_store(name).snapshots["hyperparameters"][-1])
        assert state["kind"] == "co-kriging" and len(state["levels"]) == levels
        sm = fit_store_model(name)
        assert sm.kind == "co-kriging" and sm.stored
        assert [lvl["rho"] for lvl in sm.model.state()["levels"]] == [lvl["rho"] for lvl in state["levels"]]
        _same_as_last_snapshot(sm, atol=1e-5)
