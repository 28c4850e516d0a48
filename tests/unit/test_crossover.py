"""Locating the valley crossover from stored valley gaps (activemat.analysis.crossover), on a store written with
synthetic valley gaps (a named fake for the analysis logic: no DFT)."""

from __future__ import annotations

import numpy as np
import pytest

from activemat.analysis.crossover import crossover, valley_gap
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.presets import load_preset
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

CAMPAIGN = campaign_toml({}, name="valleys", seed=0, space={"supercell": [2, 2, 2], "mode": "configurations"},
                         calculator={"preset": "pbe-fast"}, model={"restarts": 1})


#: the same space with a cheap level below: pbe-fast (fidelity 0) -> pbe-relaxed (fidelity 1)
MULTI = campaign_toml({}, name="valleys-multi", seed=0, space={"supercell": [2, 2, 2], "mode": "configurations"},
                      calculator={"preset": "pbe-relaxed", "cost": 1000.0,
                                  "cheaper": [{"preset": "pbe-fast", "cost": 100.0}]},
                      model={"restarts": 1}, strategy={"kind": "ivr"})


def _store(path, n: int, crossing: float = 0.8, *, text: str = CAMPAIGN, top: int = 0) -> None:
    """Delta 1.2 - 0.3 x and L = Delta + (crossing - x)(1 + 2 x), crossing at ``crossing`` (curved, so that a
    prior mean linear in x cannot pin it from a handful of results), each with a
    small configurational term; every 10th result has no L state in the window (NaN). With ``top``, ``text``
    is MULTI: the ``n`` results are pbe-fast's with their crossing 0.1 lower, and ``top`` of them are computed
    again with pbe-relaxed, whose crossing is ``crossing``."""
    config = parse_campaign(text)
    pool = build_campaign_pool(config)
    rng = np.random.default_rng(1)
    picks = np.unique(np.concatenate([[0, len(pool) - 1], rng.choice(len(pool), n, replace=False)]))
    wiggle = 0.01 * np.sin(7 * pool.features[:, 1])
    presets = config.calculator.presets
    store = CampaignStore.create(path, campaign_text=text, identity=config.identity(), pool=pool,
                                 presets={p: load_preset(p).model_dump(mode="json") for p in presets})
    levels = [(0, "pbe-fast", picks, crossing)] if not top else [
        (0, "pbe-fast", picks, crossing - 0.1), (1, "pbe-relaxed", np.unique(np.r_[picks[::max(1, len(picks) // top)], picks[-1]]), crossing)]
    with store:
        for fidelity, preset, chosen, at in levels:
            for i, c in enumerate(chosen.tolist()):
                x = pool.x_b[c]
                delta = 1.2 - 0.3 * x + wiggle[c]
                l_gap = delta + (at - x) * (1 + 2 * x) + wiggle[c] if i % 10 != 5 else float("nan")
                row = store.add_attempt(c, fidelity, preset, 0, "seed")
                store.finish_attempt(row, CalculationRecord(
                    c, fidelity, preset, "ok", gap=float(np.fmin(delta, l_gap)), gap_delta=delta,
                    gap_x=delta + 0.15, gap_l=l_gap, cbm_character="L" if l_gap < delta else "Delta"))


def test_the_crossover_is_where_the_averaged_valley_separation_changes_sign(tmp_path):
    _store(tmp_path / "v.h5", 60)
    out = crossover(tmp_path / "v.h5")
    assert out["valleys"] == ("Delta", "L") and out["preset"] == "pbe-fast"
    assert out["n_results"] < 62  # the results without an L state are left out
    assert out["x_low"] <= out["x"] <= out["x_high"] and out["x"] == pytest.approx(0.8, abs=0.02)
    assert out["x_high"] - out["x_low"] < 0.05 and out["no_crossing"] < 0.01
    # the cell's resolution: the two neighbouring compositions of its grid around the mean's sign change
    low, high = out["bracket"]
    assert low <= out["x"] <= high and high - low == pytest.approx(1 / 16)
    curve = out["curve"]
    assert curve[0]["separation"] == pytest.approx(0.8, abs=0.03) and curve[-1]["separation"] < 0
    assert all(c["std"] >= 0 for c in curve)
    # the model-free cross-check: Si-side cells hold Delta, Ge-side cells L
    shares = {round(c["x"], 4): c["share_upper"] for c in out["characters"]}
    assert shares[0.0] == 0.0 and shares[1.0] == 1.0


def test_few_results_give_a_wide_interval_and_too_few_a_clear_error(tmp_path):
    _store(tmp_path / "few.h5", 4)
    out = crossover(tmp_path / "few.h5", seed=1)
    _store(tmp_path / "many.h5", 60)
    many = crossover(tmp_path / "many.h5", seed=1)
    # six results leave the curve loose: many draws never cross, and those that do spread wider (or, below
    # half of the draws crossing, no figure is given at all)
    assert out["no_crossing"] > many["no_crossing"]
    assert np.isnan(out["x"]) or out["x_high"] - out["x_low"] > many["x_high"] - many["x_low"]
    with pytest.raises(InputError, match="needs 3"):
        crossover(tmp_path / "few.h5", preset="pbe-relaxed")
    with pytest.raises(InputError, match="unknown valley 'K'"):
        crossover(tmp_path / "few.h5", upper="K")


def test_the_si_like_valley_is_the_lower_of_delta_and_x():
    calc = {"gap_delta": np.array([1.1, 0.9, np.nan]), "gap_x": np.array([1.0, 1.2, 0.7])}
    assert valley_gap(calc, "Delta").tolist() == [1.0, 0.9, 0.7]


def test_predict_crossover_prints_the_figure_and_refuses_an_unknown_valley(tmp_path, capsys):
    import json

    from activemat.cli import main

    _store(tmp_path / "v.h5", 30)
    assert main(["predict", str(tmp_path / "v.h5"), "--crossover", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valleys"] == ["Delta", "L"] and 0.7 < out["x"] < 0.9
    assert main(["predict", str(tmp_path / "v.h5"), "--crossover", "Delta,K"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown valley 'K'" in err
    assert main(["predict", str(tmp_path / "v.h5"), "Si8Ge8", "--crossover"]) == 2


def test_a_multi_fidelity_campaign_locates_it_by_co_kriging_over_every_level(tmp_path):
    """Few accurate results and many cheap ones whose crossover is shifted: the co-kriging lands on the accurate
    crossing with a tighter interval than the accurate results alone give."""
    _store(tmp_path / "m.h5", 60, text=MULTI, top=6)
    both = crossover(tmp_path / "m.h5", seed=2)
    alone = crossover(tmp_path / "m.h5", preset="pbe-relaxed", seed=2)
    assert [level["preset"] for level in both["levels"]] == ["pbe-fast", "pbe-relaxed"]
    assert both["levels"][0]["n_results"] > 50 and both["n_results"] == both["levels"][1]["n_results"] < 10
    assert alone["levels"] == [{"preset": "pbe-relaxed", "n_results": both["n_results"]}]
    assert both["x"] == pytest.approx(0.8, abs=0.03)
    width = both["x_high"] - both["x_low"]
    assert np.isnan(alone["x"]) or width < alone["x_high"] - alone["x_low"]
