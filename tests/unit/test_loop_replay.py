"""Loop logic against a ReplayOracle (named fake: answers from a table, no DFT)
on an in-process Dask client, so dispatch is real and asynchronous."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.oracle import ReplayOracle
from activemat.learn.gp import GPRegressor
from activemat.learn.strategies import kriging_believer
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps

# The 16-atom pool on runs/replay.h5: seed 3, 4 space-filling picks, two workers (the dashboard as by default).
BASE = {"campaign": {"store": "runs/replay.h5", "seed": 3}, "space": {"supercell": [2, 2, 2]},
        "strategy": {"kind": "max_std", "n_seed": 4}, "cluster": {"workers": 2}}


def campaign(budget: int, *, stop: dict | None = None, **overrides) -> str:
    return campaign_toml(BASE, stop={"budget": budget, **(stop or {})}, **overrides)


def run(client, budget=10, oracle=None, **overrides):
    text = campaign(budget, **overrides)
    config = parse_campaign(text)
    pool = build_campaign_pool(config)
    oracle = oracle or ReplayOracle(synthetic_gaps(pool), delay=0.02)
    report = Reporter(budget, Console(file=io.StringIO()))
    summary = run_campaign(config, text, client=client, report=report, task=oracle)
    return summary, read_store("runs/replay.h5"), pool


def test_runs_to_budget_without_duplicates(in_tmp, client):
    summary, data, pool = run(client, budget=12)
    calc = data.calculations
    ok = calc["status"] == "ok"
    assert ok.sum() == 12 and summary["stop_reason"] == "budget reached"
    assert len(set(calc["candidate"][ok])) == 12
    gaps = synthetic_gaps(pool)
    assert all(abs(gaps[c] - g) < 1e-12 for c, g in zip(calc["candidate"][ok], calc["gap"][ok]))
    # seeds first, spread over compositions; then model-driven picks
    assert list(calc["reason"][:4]) == ["seed"] * 4
    assert set(calc["reason"][4:]) == {"max_std"}
    assert {0, 16} <= set(pool.n_b[calc["candidate"][:4]])
    snaps = data.snapshots
    # at most one per result from the second on: results that land during a refit share the next one
    assert 1 <= len(snaps["iteration"]) <= 11
    assert snaps["n_train"][-1] == 12  # the last refit took in every result
    assert np.isfinite(snaps["cv_mae"][-1]) and snaps["cv_mae"][-1] < snaps["baseline_mae"][-1]
    assert snaps["max_std"][-1] < snaps["max_std"][0]


def test_resume_recomputes_nothing_and_extends(in_tmp, client):
    run(client, budget=6)
    _, again, _ = run(client, budget=6)
    assert len(again.calculations["candidate"]) == 6
    _, more, _ = run(client, budget=9)
    calc = more.calculations
    assert (calc["status"] == "ok").sum() == 9 and len(set(calc["candidate"])) == 9


def test_failures_are_recorded_and_not_repicked(in_tmp, client):
    text = campaign(8)
    pool = build_campaign_pool(parse_campaign(text))
    gaps = synthetic_gaps(pool)
    missing = [0, 401]  # both end members: the first seeds
    oracle = ReplayOracle({k: v for k, v in gaps.items() if k not in missing}, delay=0.01)
    summary, data, _ = run(client, budget=8, oracle=oracle)
    calc = data.calculations
    failed = calc["status"] == "failed"
    # each is tried max_attempts = 3 times, with the preset's fallback settings, then given up
    assert sorted(calc["candidate"][failed]) == sorted(missing * 3)
    assert all("no answer" in e for e in calc["error"][failed])
    for cand in missing:
        rows = calc["candidate"] == cand
        assert list(calc["attempt"][rows]) == [0, 1, 2]
        assert list(calc["reason"][rows]) == ["seed", "retry", "retry"]
        assert list(calc["fallback"][rows]) == [0, 1, 2]
    assert (calc["status"] == "ok").sum() == 8 and summary["given_up"] == 2 and summary["failed"] == 6


def test_a_retry_that_succeeds_is_kept(in_tmp, client):
    text = campaign(6)
    pool = build_campaign_pool(parse_campaign(text))
    oracle = ReplayOracle(synthetic_gaps(pool), delay=0.01, fail_attempts={0: 1})
    _, data, _ = run(client, budget=6, oracle=oracle)
    calc = data.calculations
    rows = calc["candidate"] == 0
    assert list(calc["status"][rows]) == ["failed", "ok"] and list(calc["fallback"][rows]) == [0, 1]


def test_fixed_strategy_follows_the_list(in_tmp, client):
    strategy = {"kind": "fixed", "fixed": ["Si2Ge14", "Si14Ge2", "Si8Ge8"]}
    summary, data, pool = run(client, budget=10, strategy=strategy)
    formulas = [pool.formula(c) for c in data.calculations["candidate"]]
    assert sorted(formulas) == sorted(["Si2Ge14", "Si14Ge2", "Si8Ge8"])
    assert summary["stop_reason"] == "fixed list done"


def test_stops_on_target_std(in_tmp, client):
    summary, data, _ = run(client, budget=50, stop={"target_std": 0.2})
    assert "below target" in summary["stop_reason"]
    assert summary["completed"] < 50


def test_stops_on_target_curve_std_as_the_readers_curve_reports_it(in_tmp, client):
    """[stop] target_curve_std stops the campaign once the composition curve's joint-posterior std is below it
    at every composition, by the same rule as `activemat predict --curve` (the readers' curve)."""
    from activemat.analysis.curve import gap_curve
    from activemat.analysis.model import fit_store_model
    from activemat.campaign.learner import Learner
    from activemat.campaign.model import CampaignModel
    from activemat.campaign.stored import open_campaign

    summary, data, pool = run(client, budget=60, strategy={"kind": "ivr_curve"}, stop={"target_curve_std": 0.01})
    assert "curve std" in summary["stop_reason"] and "below target" in summary["stop_reason"]
    assert 4 < summary["completed"] < 60
    view = open_campaign("runs/replay.h5")
    learner = Learner(CampaignModel.of(view.config(), pool), pool, curve=True)
    assert learner.fit(view.ledger(), np.ones(len(pool), bool))
    assert learner.curve_std < 0.01
    curve = gap_curve(fit_store_model("runs/replay.h5"))
    assert max(c["model_std"] for c in curve["compositions"]) == pytest.approx(learner.curve_std, abs=1e-6)


def test_ei_finds_target_gap(in_tmp, client):
    # 12 model-driven picks: with the default weak prior the first few still explore (with 6, the median pick
    # missed the target by more than the pool's median in 3 runs of 4)
    summary, data, pool = run(client, budget=16, strategy={"kind": "ei", "target_gap": 0.3})
    picked = data.calculations["gap"][data.calculations["reason"] == "ei"]
    # model-driven picks concentrate near the target compared with the pool
    pool_gaps = np.array(list(synthetic_gaps(pool).values()))
    assert np.median(np.abs(picked - 0.3)) < np.median(np.abs(pool_gaps - 0.3))


def test_kriging_believer_moves_the_next_pick_away_from_running_ones():
    X_pool = np.linspace(0, 1, 41)[:, None]
    train = np.array([0, 40])
    model = GPRegressor(random_state=0).fit(X_pool[train], 0.6 - 0.5 * X_pool[train, 0])
    _, std = model.predict(X_pool, return_std=True)
    first = int(np.argmax(std))
    _, std_b = kriging_believer(model, X_pool[train], 0.6 - 0.5 * X_pool[train, 0], X_pool[[first]], X_pool)
    assert std_b[first] < 0.3 * std[first]  # sklearn std includes the fitted white noise
    second = int(np.argmax(std_b))
    assert abs(second - first) >= 8  # not the same, not a neighbour


def test_held_out_test_set_is_computed_but_never_trained_on_or_selected(in_tmp, client):
    summary, data, pool = run(client, budget=8, test_size=5)
    test = data.candidates["test"].astype(bool)
    assert test.sum() == 5
    calc = data.calculations
    held = test[calc["candidate"]]
    assert set(calc["reason"][held]) == {"test"} and held.sum() == 5, "held-out candidates are never picked"
    assert (calc["status"][~held] == "ok").sum() == 8, "the budget counts training calculations only"
    snaps = data.snapshots
    assert snaps["n_train"][-1] == 8
    assert np.isfinite(snaps["test_mae"][-1]) and snaps["test_mae"][-1] < 0.2
    gaps = synthetic_gaps(pool)
    assert all(abs(gaps[c] - g) < 1e-12 for c, g in zip(calc["candidate"][held], calc["gap"][held]))
    _, again, _ = run(client, budget=8, test_size=5)
    assert np.array_equal(again.candidates["test"], data.candidates["test"]), "the test set never shifts"
    assert len(again.calculations["candidate"]) == 13, "resume recomputes nothing"


def test_lost_attempts_do_not_use_up_max_attempts_and_never_give_a_candidate_up(in_tmp, client):
    """A worker lost with its node is the infrastructure's fault (issue 29): a task lost over and over is held
    until the next run, counted to retry, never given up; the next run tries it again."""
    from activemat.campaign.ledger import MAX_LOST
    from activemat.campaign.stored import open_campaign

    text = campaign(6)
    pool = build_campaign_pool(parse_campaign(text))
    # candidate 0 is lost twice then succeeds; candidate 401 is lost every time
    oracle = ReplayOracle(synthetic_gaps(pool), delay=0.01, raise_attempts={0: 2, 401: 100})
    summary, data, _ = run(client, budget=6, faults={"max_attempts": 1}, oracle=oracle)
    calc = data.calculations
    first = calc["candidate"] == 0
    assert list(calc["status"][first]) == ["failed", "failed", "ok"], "lost attempts do not count toward max_attempts"
    assert all(e.startswith("worker lost") for e in calc["error"][first][:2])
    assert list(calc["fallback"][first]) == [0, 0, 0], "a lost attempt is retried with the same settings"
    hopeless = calc["candidate"] == 401
    assert hopeless.sum() == MAX_LOST and set(calc["status"][hopeless]) == {"failed"}
    assert summary["given_up"] == 0 and summary["to_retry"] == 1 and summary["completed"] == 6, summary
    status = open_campaign("runs/replay.h5").status()
    assert status["given_up"] == 0 and status["to_retry"] == 1, status
    # the next run (its node mended) tries it first, with the same settings
    summary, data, _ = run(client, budget=7, faults={"max_attempts": 1},
                           oracle=ReplayOracle(synthetic_gaps(pool), delay=0.01))
    calc = data.calculations
    again = (calc["candidate"] == 401) & (calc["attempt"] == MAX_LOST)
    assert calc["status"][again].tolist() == ["ok"] and calc["fallback"][again].tolist() == [0]
    assert summary["given_up"] == 0 and summary["to_retry"] == 0 and summary["completed"] == 7
