"""benchmarks.production_cost end to end on a store written with synthetic valley gaps (the named fake of
tests/unit/test_crossover.py: no DFT), and its surrogate worlds against the model they are drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from activemat.analysis.model import fit_store_model
from activemat.analysis.replay_levels import level_data
from benchmarks import production_cost
from tests.unit.test_crossover import MULTI, _store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cost") / "m.h5"
    _store(path, 40, text=MULTI, top=8)
    return path


def test_worlds_are_draws_of_the_models_joint_posterior_and_round_trip_through_oracle_files(store, tmp_path):
    model = fit_store_model(store)
    X = model.pool.features[::20]  # 21 configurations
    worlds = production_cost.draw_worlds(model.model, X, 3000, seed=0)
    top = np.array([w[-1] for w in worlds])
    mean, cov = model.model.latent_cov(X)  # the model's own composition of the levels, for the top only
    sd = np.sqrt(np.diag(cov))
    assert np.abs(top.mean(0) - mean).max() < 4 * sd.max() / np.sqrt(3000)
    assert np.allclose(top.std(0), sd, rtol=0.1)
    assert np.allclose(np.cov(top.T), cov, atol=0.1 * sd.max() ** 2)
    # the cheap level is a draw of its own posterior, and the top one holds rho times it: Cov(f_1, f_0) = rho Cov(f_0)
    cheap = np.array([w[0] for w in worlds])
    cheap_mean, cheap_cov = model.model.gps_[0].latent_cov(X)
    assert np.abs(cheap.mean(0) - cheap_mean).max() < 4 * np.sqrt(np.diag(cheap_cov)).max() / np.sqrt(3000)
    cross = np.cov(cheap.T, top.T)[:len(X), len(X):]
    rho = model.model.rhos_[1]
    assert rho > 0.5 and np.allclose(cross, rho * cheap_cov, atol=0.1 * rho * np.diag(cheap_cov).max())
    # written as per-preset oracle files, the replay engine matches every frame back onto its candidate
    config = model.view.config()
    one = production_cost.draw_worlds(model.model, model.pool.features, 1, seed=1)[0]
    oracles = production_cost.write_world(model.pool, config.calculator.presets, one, tmp_path / "w")
    data = level_data(config, oracles)
    assert len(data.pool) == len(model.pool) and data.dropped == 0
    assert all(np.allclose(g, w) for g, w in zip(data.gaps, one))


def test_the_cost_page_compares_the_campaigns_route_with_random_in_equivalents_and_cpu_hours(store, tmp_path):
    result = production_cost.main([str(store), "--name", "m", "--out", str(tmp_path), "--worlds", "2",
                                   "--repeats", "2", "--budget", "6", "--target-curve", "0.05"])
    assert result["presets"] == ["pbe-fast", "pbe-relaxed"]
    assert result["seconds"] == [100.0, 1000.0] and result["seconds_from"] == ["declared", "declared"]
    real = result["real"]
    assert real["pool"] == len(real["pool_candidates"]) == 10 and real["dropped"] == 32  # 42 cheap, 10 at both
    assert real["budget"] == pytest.approx(10 * 1.1)
    for replay in (real, result["surrogate"]):
        for route in ("multi", "random"):
            s = replay[route]["curve"]
            assert len(s["costs"]) == 2
            for cost, counts in zip(s["costs"], s["results"]):
                if cost is not None:  # a cost to the target is what the results by then cost, in top equivalents
                    charged = [100.0, 1000.0] if route == "multi" else [1000.0]
                    assert cost == pytest.approx(np.dot(counts, charged) / 1000.0)
            if s["median"] is not None:
                assert s["median_cpu_hours"] == pytest.approx(s["median"] * 1000.0 / 3600)
        assert max(replay["random"]["spent"]) <= replay["budget"] + 1e-9
    assert result["surrogate"]["pool"] == 402 and len(result["surrogate"]["realism"]["world_spread"]) == 2
    text = (tmp_path / "m-cost.md").read_text()
    assert "| surrogate worlds (fake oracle) | 402 | multi | 2 |" in text and "| real labels | 10 | random | 2 |" in text
    assert "campaign itself (store)" in text and "fake oracle" in text
    assert "python -m benchmarks.production_cost " + str(store) in text
    assert (tmp_path / "production-cost-m.json").exists()
