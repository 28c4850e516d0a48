"""benchmarks.calibration: the calibration scores, and the script end to end on the shipped composition labels."""

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import calibration as calibration_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def calibration():
    return calibration_module


def test_scores_of_a_calibrated_and_an_overconfident_gaussian(calibration):
    rng = np.random.default_rng(0)
    mean, std = rng.normal(0.5, 0.1, 20000), np.full(20000, 0.02)
    y = mean + std * rng.normal(size=20000)
    right = calibration.scores(y, mean, std)
    assert right["within_1sd"] == pytest.approx(0.683, abs=0.01)
    assert right["within_2sd"] == pytest.approx(0.954, abs=0.01)
    assert right["mean_z2"] == pytest.approx(1.0, abs=0.05)
    assert right["mae"] == pytest.approx(0.02 * np.sqrt(2 / np.pi), rel=0.02)
    sure = calibration.scores(y, mean, std / 2)  # claims half the real spread
    assert sure["mean_z2"] == pytest.approx(4.0, rel=0.05) and sure["within_2sd"] < 0.7


def test_the_script_scores_every_variant_on_real_labels(calibration, monkeypatch):
    saved = {}
    monkeypatch.setattr(calibration, "save", lambda name, data: saved.setdefault(name, data) and Path(name))
    monkeypatch.setattr(sys, "argv", ["calibration.py", "--name", "t", "--campaign",
                                      str(ROOT / "campaigns" / "seed-tutorial-active.toml"), "--oracle",
                                      str(ROOT / "benchmarks" / "data" / "sige16-compositions-fast.extxyz"),
                                      "--sizes", "5", "16", "--draws", "2"])
    calibration.main()
    result = saved["t"]
    assert result["labelled"] == 17 and len(result["variants"]) == len(calibration.VARIANTS)
    for variant in result["variants"].values():
        assert list(variant["sizes"]) == [5]  # 16 labels would leave fewer than 3 to score: skipped
        row = variant["sizes"][5]
        assert 0 <= row["within_1sd"] <= row["within_2sd"] <= 1 and row["mean_z2"] > 0 and 0 < row["mae"] < 0.2
