"""benchmarks/fidelity.py on a small synthetic two-fidelity set: accurate = 0.6 * cheap + 0.55 exactly."""

import json

import ase.io
import numpy as np
import pytest

from activemat.space.pool import build_pool
from tests.conftest import load_benchmark, synthetic_gaps

BUDGET = 6.0


def _write(path, pool, idx, gaps, times, preset):
    frames = []
    for i, t in zip(idx, times):
        atoms = pool.atoms(int(i))
        atoms.info.update(gap=float(gaps[i]), wall_time=float(t), preset=preset, status="ok")
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """30 candidates with both labels, 30 more with a cheap label only (pretraining); cheap ~ 1/15 of the cost."""
    tmp = tmp_path_factory.mktemp("fidelity")
    pool = build_pool()
    rng = np.random.default_rng(0)
    both = np.sort(rng.choice(len(pool), 30, replace=False))
    extra = np.sort(rng.choice(np.setdiff1d(np.arange(len(pool)), both), 30, replace=False))
    cheap = synthetic_gaps(pool)
    accurate = {i: 0.6 * g + 0.55 for i, g in cheap.items()}
    t_cheap, t_acc = rng.uniform(8, 12, 60), rng.uniform(140, 160, 30)
    _write(tmp / "cheap.extxyz", pool, np.concatenate([both, extra]), cheap, t_cheap, "cheap-preset")
    _write(tmp / "accurate.extxyz", pool, both, accurate, t_acc, "accurate-preset")
    (tmp / "c.toml").write_text('[campaign]\nname = "t"\nstore = "t.h5"\n\n'
                                '[space]\nsupercell = [2, 2, 2]\nmode = "configurations"\n')
    result = load_benchmark("fidelity").main(["--cheap", str(tmp / "cheap.extxyz"), "--accurate", str(tmp / "accurate.extxyz"),
                           "--campaign", str(tmp / "c.toml"), "--repeats", "2", "--budget", str(BUDGET),
                           "--results-dir", str(tmp), "--out-figure", str(tmp / "fig.png")])
    return result, tmp, (float(np.median(t_cheap)), float(np.median(t_acc)))


def _mae_at(result, method, cost):
    return result["methods"][method]["mae"]["median"][result["grid"].index(cost)]


def test_costs_are_the_measured_median_wall_times(run):
    result, _, (c_cheap, c_acc) = run
    assert result["costs_s"] == {"cheap": pytest.approx(c_cheap), "accurate": pytest.approx(c_acc)}
    assert result["n_both"] == 30 and result["n_cheap_labels"] == 60 and result["pretrain"]["n"] == 60
    assert result["cheap_campaign_cpu_s"] == pytest.approx(result["cheap"]["wall_time_s"]["sum"])


def test_curves_share_one_cost_grid(run):
    result, _, _ = run
    grid = np.array(result["grid"])
    assert grid[0] == 0 and grid[-1] == BUDGET and np.all(np.diff(grid) == 0.5)
    for m in ("single", "random", "multi", "transfer"):
        s = result["methods"][m]
        for key in ("mae", "max"):
            assert all(len(s[key][k]) == len(grid) for k in ("median", "mean", "p10", "p90"))
        # no model before 2 accurate results; afterwards always one
        mae = np.array(s["mae"]["median"], float)
        assert np.all(np.isnan(mae[grid < 2])) and np.all(np.isfinite(mae[grid >= 3.5]))
        assert all(c >= BUDGET for c in s["final_cost"])  # runs go on until the budget is spent
    assert result["methods"]["single"]["n_cheap"] == [0, 0]
    assert all(n > 3 for n in result["methods"]["multi"]["n_cheap"])  # cheap results are worth buying here


def test_cheap_labels_beat_accurate_labels_alone_at_equal_cost(run):
    result, _, _ = run
    # same seeds, same model: IVR and random agree until the first model-driven pick
    assert _mae_at(result, "single", 3.0) == _mae_at(result, "random", 3.0)
    # pretrained on the cheap campaign, three accurate results go further than three alone
    assert _mae_at(result, "transfer", 3.0) < 0.8 * _mae_at(result, "single", 3.0)
    # the exact linear relation is learned once rho can be estimated: far below single fidelity
    assert _mae_at(result, "multi", 5.0) < 0.2 * _mae_at(result, "single", 5.0)
    assert _mae_at(result, "transfer", BUDGET) < 0.2 * _mae_at(result, "single", BUDGET)
    reach = result["table"]["multi"]["cost_to_mae"]["0.01"]
    assert reach is not None and reach < BUDGET


def test_outputs_are_written(run):
    result, tmp, _ = run
    saved = json.loads((tmp / "fidelity.json").read_text())
    assert saved["costs_s"] == pytest.approx(result["costs_s"])
    md = (tmp / "fidelity.md").read_text()
    assert "| multi |" in md and "cheap campaign cost" in md and "--budget 6.0" in md
    assert (tmp / "fig.png").stat().st_size > 10_000


def test_grid_takes_the_last_state_within_each_cost():
    bench = load_benchmark("fidelity")
    cost = np.array([0.0, 0.2, 0.4, 1.4, 2.4])
    vals = np.array([np.nan, np.nan, 3.0, 2.0, 1.0])
    assert np.allclose(bench.on_grid(cost, vals, np.array([0, 0.5, 1, 1.5, 2, 2.5])),
                       [np.nan, 3, 3, 2, 2, 1], equal_nan=True)
    assert bench.cost_to_reach(cost, vals, 2.5) == 1.4 and bench.cost_to_reach(cost, vals, 0.5) is None
