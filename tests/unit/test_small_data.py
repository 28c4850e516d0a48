"""Issue 28 part 6: the default GP's prior mean is the linear baseline in x, so at a handful of results it does not
lose to that baseline; its std includes the fitted mean's uncertainty; stored campaigns keep their constant mean;
``inspect`` says when the baseline wins.

Stores are written by the real loop (ReplayOracle answering from the shipped gpaw-fast dataset or a table, no DFT).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from activemat.analysis.model import fit_store_model
from activemat.analysis.modelcard import linear_baseline_mae, model_card
from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.sections import ModelSection
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.oracle import ReplayOracle
from activemat.learn.gp import GPRegressor
from activemat.space.matching import load_labels
from tests.conftest import campaign_toml, cli

FAST = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "sige16-fast.extxyz"
# the demo's campaign (campaigns/demo.toml): 16-atom configurations, default [model], 4 seeds, 10 results
DEMO = {"campaign": {"name": "demo", "seed": 0}, "space": {"supercell": [2, 2, 2], "mode": "configurations"},
        "calculator": {"preset": "gpaw-fast"}, "strategy": {"kind": "max_std", "n_seed": 4},
        "cluster": {"workers": 2, "dashboard": False}}


def _run(text: str, gaps: dict) -> None:
    from distributed import Client, LocalCluster

    config = parse_campaign(text)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        run_campaign(config, text, client=client, report=Reporter(config.stop.budget, Console(file=io.StringIO())),
                     task=ReplayOracle(gaps, delay=0.01))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 10-result demo store on the gpaw-fast gaps of the 16-atom cell."""
    text = campaign_toml(DEMO, store=tmp_path_factory.mktemp("demo") / "demo.h5", stop={"budget": 10})
    gaps = load_labels(FAST, build_campaign_pool(parse_campaign(text))).gaps
    _run(text, gaps)
    return parse_campaign(text).campaign.store


def test_the_demo_default_is_no_worse_than_the_linear_baseline_in_x(demo):
    card = model_card(demo)
    assert card["n_train"] == 10 and card["cv_scheme"] == "leave-one-out"
    assert card["cv_mae"] <= card["linear_baseline_mae"] and card["baseline_wins"] is None
    sm = fit_store_model(demo)
    assert sm.model.mean == "linear" and sm.stored  # the loop's model, rebuilt from its snapshot
    assert json.loads(str(sm.view.snapshots["hyperparameters"][-1]))["mean"] == "linear"
    # the linear baseline by hand: leave-one-out least squares on x
    x, y = sm.X[:, 0], sm.y
    loo = [np.polyval(np.polyfit(np.delete(x, i), np.delete(y, i), 1), x[i]) for i in range(len(y))]
    assert card["linear_baseline_mae"] == pytest.approx(np.mean(np.abs(np.array(loo) - y)), abs=1e-12)


def test_inspect_says_when_the_linear_baseline_wins(tmp_path):
    # gaps exactly linear in x: the least-squares line has no error, a GP around a constant mean does
    text = campaign_toml(DEMO, store=tmp_path / "line.h5", model={"mean": "constant", "restarts": 0},
                         stop={"budget": 8})
    pool = build_campaign_pool(parse_campaign(text))
    _run(text, {i: 0.6 - 0.45 * float(x) for i, x in enumerate(pool.x_b)})
    card = model_card(tmp_path / "line.h5")
    assert card["linear_baseline_mae"] < 1e-9 < card["cv_mae"]
    assert card["baseline_wins"].startswith("the linear baseline in x wins: CV MAE 0.0000 eV against the model's")
    code, out, _ = cli("inspect", tmp_path / "line.h5")
    lines = [line for line in out.splitlines() if "baseline wins" in line]
    assert code == 0 and len(lines) == 1 and "the linear baseline in x wins" in lines[0]
    code, out, _ = cli("inspect", tmp_path / "line.h5", "--json")
    assert json.loads(out)["baseline_wins"] == card["baseline_wins"]


def test_the_demo_card_has_no_baseline_line(demo):
    code, out, _ = cli("inspect", demo)
    assert code == 0 and "baseline MAE (linear in x)" in out and "baseline wins" not in out


def test_linear_mean_std_is_the_std_of_the_predictors_error():
    """Brute force: the predictor is linear in the labels; its error's variance under the GP (kernel and scale
    fixed, any line) must be what predict reports, the fitted line's uncertainty included."""
    rng = np.random.default_rng(3)
    X = np.column_stack([np.linspace(0, 1, 9), rng.normal(size=(9, 2))])
    y = 0.6 - 0.4 * X[:, 0] + 0.03 * np.sin(3 * X[:, 1])
    gp = GPRegressor(mean="linear", restarts=0).fit(X, y)
    Xs = np.column_stack([[0.3, 1.4, -0.5], rng.normal(size=(3, 2))])
    # weights: predictions from unit labels with the fitted kernel (the mean is a linear map of the labels)
    W = np.array([gp.with_fixed_kernel().fit(X, e).predict(Xs) for e in np.eye(len(y))])
    Z, Zs = gp.scaler_.transform(X), gp.scaler_.transform(Xs)
    K = gp.kernel_(Z) + gp.gp_.alpha * np.eye(len(y))
    Ks, Kss = gp.kernel_(Z, Zs), gp.kernel_(Zs)  # Kss with the white noise: a new noisy observation
    var = (np.einsum("ij,ik,kj->j", W, K, W) - 2 * np.einsum("ij,ij->j", W, Ks) + np.diag(Kss)) * gp.y_std_ ** 2
    _, std = gp.predict(Xs, return_std=True)
    assert np.allclose(std ** 2, var, rtol=1e-6, atol=1e-12)
    # the line's uncertainty is there: more than the GP's own std on the residuals, most outside [0, 1]
    _, gp_std = gp.gp_.predict(Zs, return_std=True)
    extra = std ** 2 - gp_std ** 2
    assert np.all(extra > 0) and extra[1] > extra[0]


def test_a_stored_campaign_keeps_its_mean():
    stored_gp = {"kind": "gp", "kernel": {}}
    assert ModelSection().mean == "linear"
    assert ModelSection().settled(stored=None).mean == "linear"  # a new campaign
    assert ModelSection().settled(stored=stored_gp).mean == "constant"  # a model stored before the default
    assert ModelSection().settled(stored={}).mean == "constant"  # snapshots without stored hyperparameters
    assert ModelSection().settled(stored={**stored_gp, "mean": "linear"}).mean == "linear"
    assert ModelSection(mean="bowing").settled(stored=stored_gp).mean == "bowing"  # the file says
    assert ModelSection().settled(multi=True).mean == "constant"  # co-kriging levels
    assert ModelSection().settled(stored={"kind": "linear"}).mean == "linear"


def test_a_store_written_before_the_linear_default_resumes_and_reads_with_its_constant_mean(tmp_path, monkeypatch):
    text = campaign_toml(DEMO, store=tmp_path / "old.h5", model={"restarts": 0}, stop={"budget": 6})
    gaps = load_labels(FAST, build_campaign_pool(parse_campaign(text))).gaps
    # the campaign as the code before the linear default ran it: a constant mean, states without "mean"
    with monkeypatch.context() as m:
        m.setattr(ModelSection, "settled", lambda self, **kw: self.model_copy(update={"mean": "constant"}))
        state = GPRegressor.state
        m.setattr(GPRegressor, "state", lambda self: {k: v for k, v in state(self).items() if k != "mean"})
        _run(text, gaps)
    sm = fit_store_model(tmp_path / "old.h5")
    assert sm.model.mean == "constant" and sm.stored
    np.testing.assert_allclose(sm.predict(sm.pool.features)[0], sm.view.snapshots["pool_mean"][-1], atol=2e-6)
    _run(text.replace("budget = 6", "budget = 8"), gaps)  # resumed by today's code, same file
    snaps = fit_store_model(tmp_path / "old.h5").view.snapshots
    assert snaps["n_train"][-1] == 8 and json.loads(str(snaps["hyperparameters"][-1]))["mean"] == "constant"
    assert linear_baseline_mae(sm.X, sm.y) > 0
