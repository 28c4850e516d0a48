"""One level of a multi-fidelity store alone (``predict --preset``) and benchmarks.cell_size, on the shipped
16-atom production store and 32-atom check store (real DFT results, no new calculation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from activemat.analysis.model import fit_store_model
from activemat.store.read import read_store
from benchmarks import cell_size
from tests.conftest import cli, one_line_error

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
SMALL, LARGE = DATA / "sige16-accurate.h5", DATA / "sige32-pbe-fast.h5"


def _ok(store: Path, preset: str) -> int:
    """Candidates with a successful calculation at ``preset`` (these stores hold out no test candidates)."""
    calc = read_store(store).calculations
    return len(set(calc["candidate"][(calc["status"] == "ok") & (calc["preset"] == preset)].tolist()))


def test_a_preset_of_a_multi_fidelity_store_is_modelled_on_its_own_results():
    sm = fit_store_model(SMALL, preset="pbe-fast")
    assert sm.kind == "gp" and len(sm.train) == _ok(SMALL, "pbe-fast") > _ok(SMALL, "tb09-relaxed")
    assert "pbe-fast level alone" in sm.hyperparameters
    # it is that level's model: the pure cells predict their own pbe-fast gaps, not the top level's
    mean, _ = sm.predict(sm.X)
    assert np.abs(mean - sm.y).max() < 0.02
    top = fit_store_model(SMALL)
    assert top.kind == "co-kriging" and abs(top.predict(sm.X[:1])[0][0] - mean[0]) > 0.3  # TB09 vs PBE gaps


def test_predict_preset_on_the_command_line_and_its_errors():
    code, out, err = cli("predict", SMALL, "--curve", "--preset", "pbe-fast", "--json")
    assert code == 0, err
    curve = json.loads(out)
    assert curve["model"] == "gp" and curve["n_train"] == _ok(SMALL, "pbe-fast")
    assert curve["compositions"][0]["mean"] == pytest.approx(0.554, abs=0.005)  # PBE Si16 with the edge pass
    line = one_line_error(*cli("predict", SMALL, "--curve", "--preset", "tb09")[::2])
    assert "no preset 'tb09'" in line and "pbe-fast, pbe-relaxed, tb09-relaxed" in line
    assert "--preset" in one_line_error(*cli("predict", SMALL, "--crossover", "--preset", "pbe-fast")[::2])
    # a single-level store's own preset is its ordinary model
    code, out, _ = cli("predict", LARGE, "Si16Ge16", "--preset", "pbe-fast", "--json")
    assert code == 0 and "stored, not optimised" in out


def test_cell_size_compares_the_curves_at_the_shared_compositions(tmp_path):
    result = cell_size.main([f"{SMALL}:pbe-fast", str(LARGE), "--out", str(tmp_path), "--samples", "200"])
    rows = result["comparison"]["rows"]
    assert [r["x"] for r in rows] == [k / 16 for k in range(17)]  # every 16-atom composition is a 32-atom one
    assert all(r["difference"] == pytest.approx(r["large"] - r["small"]) for r in rows)
    assert rows[0]["difference"] == pytest.approx(0.0, abs=0.002)  # Si16 and Si32 at one k-point density
    worst = max(abs(r["difference"]) for r in rows)
    assert result["comparison"]["max_abs"] == worst
    assert result["comparison"]["within_target"] == (worst <= cell_size.TARGET)
    text = (tmp_path / "cell-size.md").read_text()
    assert "python -m benchmarks.cell_size" in text and text.count("\n| 0.") + text.count("\n| 1.") == 17
    assert (tmp_path / "cell-size.png").stat().st_size > 10_000 and (tmp_path / "cell_size.json").exists()
