"""benchmarks.fidelity over the library's replay (activemat.analysis.replay_levels), on a small synthetic
two-fidelity set where accurate = 0.6 * cheap + 0.55 exactly; and the results of its former engine, still read."""

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest

from activemat.analysis.replay_levels import cost_to_reach, parse_oracles, replay_levels
from activemat.campaign.config import load_campaign
from activemat.errors import InputError
from activemat.space.pool import build_pool
from benchmarks import fidelity
from benchmarks.common import RESULTS
from tests.conftest import campaign_toml, synthetic_gaps

BUDGET = 6.0
CAMPAIGN = campaign_toml({}, name="t", store="t.h5", space={"supercell": [2, 2, 2], "mode": "configurations"},
                         calculator={"preset": "gpaw-pbe-pw", "cost": 150.0,
                                     "cheaper": [{"preset": "gpaw-fast", "cost": 10.0}]},
                         strategy={"kind": "ivr", "n_seed": 3})


def _write(path, pool, idx, gaps, preset):
    frames = []
    for i in idx:
        atoms = pool.atoms(int(i))
        atoms.info.update(gap=float(gaps[i]), preset=preset, status="ok")
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """30 candidates labelled at both presets, 30 more at the cheap one only; a campaign over them."""
    tmp = tmp_path_factory.mktemp("fidelity")
    pool = build_pool()
    rng = np.random.default_rng(0)
    both = np.sort(rng.choice(len(pool), 30, replace=False))
    extra = np.sort(rng.choice(np.setdiff1d(np.arange(len(pool)), both), 30, replace=False))
    cheap = synthetic_gaps(pool)
    accurate = {i: 0.6 * g + 0.55 for i, g in cheap.items()}
    _write(tmp / "cheap.extxyz", pool, np.concatenate([both, extra]), cheap, "gpaw-fast")
    _write(tmp / "accurate.extxyz", pool, both, accurate, "gpaw-pbe-pw")
    (tmp / "c.toml").write_text(CAMPAIGN)
    return tmp


@pytest.fixture(scope="module")
def run(files):
    """The benchmark script end to end: every route, 2 repeats, transfer pretrained on 15 cheap labels."""
    tmp = files
    return fidelity.main(["--campaign", str(tmp / "c.toml"), "--oracle", f"gpaw-fast={tmp / 'cheap.extxyz'}",
                          "--oracle", f"gpaw-pbe-pw={tmp / 'accurate.extxyz'}", "--repeats", "2", "--budget",
                          str(BUDGET), "--routes", "multi", "accurate", "random", "transfer", "--pretrain-n", "15",
                          "--results-dir", str(tmp), "--out-figure", str(tmp / "fig.png"), "--name", "f"])


def _mae_at(result, route, cost):
    return fidelity.curves(result, route)["mae"]["median"][int(round(cost / fidelity.GRID_STEP))]


def test_every_route_runs_on_one_cost_axis_with_the_campaigns_costs(run):
    result = run
    assert result["pool"] == 30 and result["dropped"] == 30  # the candidates both files label
    assert result["costs"] == [10.0, 150.0] and result["budget"] == BUDGET
    assert result["pretraining_cost"] == pytest.approx(15 * 10 / 150)
    for route in ("multi", "accurate", "random", "transfer"):
        for r in result[route]["runs"]:
            cost = np.array(r["cost"])
            assert np.all(np.diff(cost) > 0) and cost[-1] <= BUDGET + 1e-9 and cost[-1] > BUDGET - 1
            # the cost of each result is its preset's declared cost, in accurate calculations
            steps = np.diff(np.concatenate([[result["pretraining_cost"] if route == "transfer" else 0], cost]))
            assert np.allclose(steps, np.where(np.array(r["level"]) == 0, 1 / 15, 1) if route == "multi" else 1)
    multi = result["multi"]["runs"][0]
    assert set(multi["level"]) == {0, 1} and all(c[0] > 3 for c in result["multi"]["counts"])
    assert set(result["accurate"]["runs"][0]["level"]) == {0}  # the accurate preset alone: its only fidelity
    transfer = result["transfer"]["runs"][0]
    assert transfer["cost"][0] == pytest.approx(result["pretraining_cost"] + 1)


def test_cheap_labels_beat_the_accurate_preset_alone_at_equal_cost(run):
    result = run
    # the same space-filling seeds: the accurate preset alone, by ivr or at random, agree until the model picks
    assert _mae_at(result, "accurate", 3.0) == _mae_at(result, "random", 3.0)
    # the exact linear relation is learned from cheap results: far below the accurate preset alone
    assert _mae_at(result, "multi", 5.0) < 0.2 * _mae_at(result, "accurate", 5.0)
    assert _mae_at(result, "transfer", BUDGET) < 0.2 * _mae_at(result, "accurate", BUDGET)
    reach = result["multi"]["median_cost_to_mae"]
    assert reach is not None and reach < BUDGET
    for route in result["routes"]:  # the medians are of the per-run costs the library found
        s = result[route]
        assert s["cost_to_mae"] == [cost_to_reach(r, 0.01) for r in s["runs"]]
        assert s["cost_to_both"] == [None if a is None or b is None else max(a, b)
                                     for a, b in zip(s["cost_to_mae"], s["cost_to_max"])]


def test_the_script_saves_what_the_library_returns(run, files):
    result, tmp = run, files
    config, _ = load_campaign(tmp / "c.toml")
    oracles = parse_oracles([f"gpaw-fast={tmp / 'cheap.extxyz'}", f"gpaw-pbe-pw={tmp / 'accurate.extxyz'}"], config)
    again = replay_levels(config, oracles, repeats=1, budget=3.0, routes=("multi",))
    assert again["multi"]["runs"][0]["cost"] == [c for c in result["multi"]["runs"][0]["cost"] if c <= 3.0 + 1e-9]
    saved = json.loads((tmp / "f.json").read_text())
    assert saved["routes"] == ["multi", "accurate", "random", "transfer"]
    assert saved["multi"]["cost_to_mae"] == result["multi"]["cost_to_mae"]
    assert saved["command"].startswith("python -m benchmarks.fidelity --campaign")
    md = (tmp / "f.md").read_text()
    assert "| multi-fidelity |" in md and "| transfer (15 cheap labels first) |" in md and "--budget 6.0" in md
    assert (tmp / "fig.png").stat().st_size > 10_000


def test_a_run_records_its_curve_error_and_stops_once_its_targets_are_reached(run, files):
    tmp = files
    config, _ = load_campaign(tmp / "c.toml")
    oracles = parse_oracles([f"gpaw-fast={tmp / 'cheap.extxyz'}", f"gpaw-pbe-pw={tmp / 'accurate.extxyz'}"], config)
    full = run["multi"]["runs"][0]
    # a composition's curve error is a weighted mean of signed errors: never above the pool's largest error
    assert all(c <= m + 1e-12 for c, m in zip(full["curve_max"], full["max"]) if c == c)
    assert any(c < m for c, m in zip(full["curve_max"], full["max"]) if c == c)
    target = full["mae"][6]
    stopped = replay_levels(config, oracles, repeats=1, budget=BUDGET, routes=("multi",), stop_at={"mae": target})
    cut = stopped["multi"]["runs"][0]
    reach = cost_to_reach(full, target)
    assert cut["cost"][-1] == reach < full["cost"][-1]  # ended at the first result that reached it
    n = len(cut["cost"])
    assert np.array_equal(cut["mae"], full["mae"][:n], equal_nan=True)  # NaN before the first model
    assert np.array_equal(cut["curve_max"], full["curve_max"][:n], equal_nan=True)


def test_the_report_reads_the_result_through_the_benchmarks_summary(run):
    result = run
    lines = fidelity.summary(result)
    assert any(line.startswith("| route | MAE / max at 5 |") for line in lines)
    routes = fidelity.routes(result)
    assert [r.strategy for r in routes] == ["ivr/cost", "ivr", "random", "ivr/cost"]
    assert routes[0].median_mae == result["multi"]["median_cost_to_mae"] and routes[0].repeats == 2
    assert routes[0].spend.startswith(", multi-fidelity; median ")


def test_results_of_the_former_engine_read_as_their_pages():
    for name in ("fidelity", "fidelity-fast", "fidelity-fast-pbe-multi-share50-tied"):
        result = json.loads((RESULTS / f"{name}.json").read_text())
        page = (RESULTS / f"{name}.md").read_text()
        assert fidelity.summary(result) == page.split("\n", 1)[1].replace("../../docs/", "../docs/").split("\n") + [""]
    tied = fidelity.routes(json.loads((RESULTS / "fidelity-fast-pbe-multi-share50-tied.json").read_text()))
    assert [(r.median_mae, r.median_max) for r in tied] == [(pytest.approx(22.5, abs=0.05),
                                                            pytest.approx(21.7, abs=0.05))]


def test_bad_routes_and_pretraining_are_input_errors(files):
    tmp = files
    config, _ = load_campaign(tmp / "c.toml")
    oracles = parse_oracles([f"gpaw-fast={tmp / 'cheap.extxyz'}", f"gpaw-pbe-pw={tmp / 'accurate.extxyz'}"], config)
    with pytest.raises(InputError, match="--routes bogus"):
        replay_levels(config, oracles, routes=("multi", "bogus"))
    with pytest.raises(InputError, match="--pretrain-n 1:"):
        replay_levels(config, oracles, routes=("transfer",), pretrain_n=1)
    with pytest.raises(InputError, match="below the budget"):  # 30 cheap labels cost 2 accurate ones
        replay_levels(config, oracles, routes=("transfer",), budget=2.0)


def test_grid_takes_the_last_state_within_each_cost():
    cost = np.array([0.2, 0.4, 1.4, 2.4])
    vals = np.array([np.nan, 3.0, 2.0, 1.0])
    assert np.allclose(fidelity.on_grid(cost, vals, np.array([0, 0.5, 1, 1.5, 2, 2.5])),
                       [np.nan, 3, 3, 2, 2, 1], equal_nan=True)
    assert cost_to_reach({"cost": list(cost), "mae": list(vals)}, 2.5) == 1.4
    assert cost_to_reach({"cost": list(cost), "max": list(vals)}, 0.5, "max") is None
    assert Path(fidelity.__file__).parent.name == "benchmarks"


def test_the_cli_replays_the_routes_it_is_given(files, capsys):
    from activemat.cli import main

    tmp = files
    oracles = ["--oracle", f"gpaw-fast={tmp / 'cheap.extxyz'}", "--oracle", f"gpaw-pbe-pw={tmp / 'accurate.extxyz'}"]
    assert main(["replay", str(tmp / "c.toml"), *oracles, "--routes", "accurate", "transfer", "--pretrain-n", "15",
                 "--budget", "3", "--repeats", "1", "--target-max", "0.2", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["routes"] == ["accurate", "transfer"] and "multi" not in result
    assert result["pretrain_n"] == 15 and result["target_max"] == 0.2
    assert result["transfer"]["runs"][0]["cost"] == [2.0, 3.0]  # 15 x 10/150 pretraining, then two results
    assert main(["replay", str(tmp / "c.toml"), *oracles, "--routes", "bogus"]) == 2
    assert "--routes bogus" in capsys.readouterr().err
