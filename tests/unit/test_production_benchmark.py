"""benchmarks.production end to end on a store written with synthetic valley gaps (the named fake of
tests/unit/test_crossover.py: no DFT): costs per preset, the curve against experiment, the crossover, the page."""

from __future__ import annotations

import pytest

from benchmarks import production
from tests.unit.test_crossover import MULTI, _store


def test_the_page_fragment_names_costs_curve_terms_and_crossover(tmp_path):
    _store(tmp_path / "m.h5", 40, text=MULTI, top=8)
    result = production.main([str(tmp_path / "m.h5"), "--name", "m", "--out", str(tmp_path), "--samples", "200"])
    costs = {c["preset"]: c for c in result["costs"]}
    assert list(costs) == ["pbe-fast", "pbe-relaxed"]  # cheap to accurate
    assert costs["pbe-fast"]["results"] > 30 and 5 <= costs["pbe-relaxed"]["results"] <= 10
    curve = result["curve"]
    assert [t["name"] for t in curve["corrections"]] == ["exciton", "zpr", "soc"]
    assert all(c["deviation"] == pytest.approx(c["mean"] - c["experiment"]) for c in curve["compositions"])
    assert result["crossover"]["x"] == pytest.approx(0.8, abs=0.05)
    text = (tmp_path / "m.md").read_text()
    assert "| pbe-relaxed |" in text and "Δ → L crossover from" in text and "measured x = 0.84" in text
    assert text.count("\n| 0.") + text.count("\n| 1.") == 17  # one row per composition of the 16-atom cell
    assert (tmp_path / "m-experiment.png").stat().st_size > 10_000 and (tmp_path / "production-m.json").exists()


def test_the_stop_line_says_whether_the_campaign_met_its_own_stop():
    curve = {"compositions": [{"model_std": 0.012}, {"model_std": 0.0199}]}
    costs = [{"cpu_hours": 1.0}, {"cpu_hours": 4.25}]
    met = production.stop_line({"stop": {"target_curve_std": 0.02, "cost_budget_cpu_hours": 20.0}, "curve": curve, "costs": costs})
    assert met == ("Stop: curve std target 0.020 eV reached (largest joint std here 0.0199 eV); "
                   "5.2 of a 20 CPU-hour budget spent.")
    missed = production.stop_line({"stop": {"target_curve_std": 0.01}, "curve": curve, "costs": costs})
    assert "not reached" in missed and "budget" not in missed
    assert production.stop_line({"stop": {"target_curve_std": None}, "curve": curve, "costs": costs}) == ""
