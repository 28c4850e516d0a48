"""Experiment for a system other than Si-Ge (issue 30): the Al(x)Ga(1-x)As measured-gap file, and the curve
comparison, the experiment figure and the valley crossover on a store of *synthetic* valley gaps (a named fake
for the analysis logic: Vurgaftman et al.'s branches shifted down by a constant, plus a small configurational
term; no DFT)."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest

from activemat.analysis.crossover import crossover
from activemat.analysis.experiment import load_measured, measured_for
from activemat.analysis.experiment_figure import compare_experiment
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.presets import load_preset
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml, cli, one_line_error

SHIFT = -0.9  # eV: the synthetic "DFT" valley gaps are the measured branches shifted by this much


def _algaas(cation=("Ga", "Al"), name="algaas-synthetic") -> str:
    return campaign_toml({}, name=name, seed=0,
                         space={"lattice": "zincblende", "chemical_symbols": [list(cation), ["As"]],
                                "supercell": [2, 2, 2], "mode": "configurations", "features": "icet"},
                         calculator={"preset": "gpaw-fast"}, model={"restarts": 1})


def _store(path, campaign: str, every: int = 1) -> None:
    """Every ``every``-th candidate computed, with synthetic Gamma, X and L gaps: the AlGaAs file's branches
    + SHIFT + a configurational wiggle; the gap is the lowest, the character its valley."""
    config = parse_campaign(campaign)
    pool = build_campaign_pool(config)
    measured = measured_for(("Ga", "Al"), ("As",))
    wiggle = 0.01 * np.sin(7 * pool.features[:, 1])
    store = CampaignStore.create(path, campaign_text=campaign, identity=config.identity(), pool=pool,
                                 presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")})
    with store:
        for c in range(0, len(pool), every):
            valleys = {v: float(g) + SHIFT + wiggle[c] for v, g in measured.branch_gaps(pool.x_b[c]).items()}
            lowest = min(valleys, key=valleys.get)
            row = store.add_attempt(c, 0, "gpaw-fast", 0, "seed")
            store.finish_attempt(row, CalculationRecord(
                c, 0, "gpaw-fast", "ok", gap=valleys[lowest], gap_gamma=valleys["Gamma"], gap_x=valleys["X"],
                gap_l=valleys["L"], cbm_character=lowest))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 16-atom AlGaAs store with every symmetry-distinct cation decoration computed (synthetic gaps)."""
    path = tmp_path_factory.mktemp("algaas") / "algaas-synthetic.h5"
    _store(path, _algaas())
    return path


def test_algaas_file_is_vurgaftman_s_parameters_with_the_measured_crossover():
    m = measured_for(("Ga", "Al"), ("As",))
    assert m.system == "Al(x)Ga(1-x)As" and "J. Appl. Phys. 89, 5815 (2001)" in m.reference
    g = {b.valley: b for b in m.branches}
    # GaAs and AlAs at 0 K (eV), and the Gamma bowing -0.127 + 1.310 x: E(1/2) = 2.309 - 0.25 * 0.528
    assert [float(g[v].gap(0.0)) for v in ("Gamma", "X", "L")] == pytest.approx([1.519, 1.981, 1.815])
    assert [float(g[v].gap(1.0)) for v in ("Gamma", "X", "L")] == pytest.approx([3.099, 2.24, 2.46])
    assert float(g["Gamma"].gap(0.5)) == pytest.approx(2.309 - 0.25 * (-0.127 + 0.655))
    assert float(g["X"].gap(0.5)) == pytest.approx(2.1105 - 0.25 * 0.055)
    assert g["Gamma"].ends == (1.519, 3.099) and g["Gamma"].bowing == (-0.127, 1.310)
    assert all(b.uncertainty > 0 and b.note for b in m.branches)
    # direct (Gamma) below the crossover, indirect (X) above; the branches cross at 0.417, the measurement 0.37
    assert m.crossover() == pytest.approx(0.4167, abs=1e-3) and m.crossover_valleys() == ("Gamma", "X")
    assert m.measured_crossover["x"] == 0.37 and m.measured_crossover["uncertainty"] == 0.015
    assert float(m.gap(0.3)) == pytest.approx(float(g["Gamma"].gap(0.3)))
    assert float(m.gap(0.6)) == pytest.approx(float(g["X"].gap(0.6)))
    # its one term: Delta_so/3 of GaAs (0.341 eV) and AlAs (0.28 eV); no exciton term on band gaps
    assert m.correction_names == ("soc",)
    assert float(m.correction("soc").shift(0.0)) == pytest.approx(0.341 / 3)
    with pytest.raises(InputError, match=r"unknown correction exciton for Al\(x\)Ga\(1-x\)As \(AlGaAs.toml\); "
                                         "choose from soc, all or none"):
        m.parse_corrections("exciton")


def test_a_file_with_end_members_and_bowing_and_a_bad_one(tmp_path):
    path = tmp_path / "AB.toml"
    path.write_text('system = "A(1-x)B(x)C"\nelements = ["A", "B"]\nfixed = ["C"]\nreference = "r"\n'
                    '[[branch]]\nvalley = "Gamma"\nends = [1.0, 2.0]\nbowing = [0.5]\n'
                    '[[branch]]\nvalley = "X"\ncoefficients = [1.4, 0.2]\n'
                    '[[correction]]\nname = "zpr"\nlabel = "z"\nvalues = [-0.06, -0.04]\nuncertainties = [0.01, 0.01]\n'
                    'direction = -1\nconvention = "c"\ncitation = "c (2000)"\n')
    m = load_measured(path)
    assert float(m.branches[0].gap(0.5)) == pytest.approx(1.5 - 0.125)
    assert m.crossover_valleys() == ("Gamma", "X") and m.measured_crossover is None
    assert float(m.comparable_gap(0.0, "all")) == pytest.approx(1.06)
    path.write_text(path.read_text().replace("direction = -1", "direction = 2"))
    with pytest.raises(InputError, match="lacks or mistypes 'direction'"):
        load_measured(path)


def test_predict_curve_against_the_algaas_experiment(synthetic, capsys):
    code, out, _ = cli("predict", str(synthetic), "--curve", "--corrections", "soc", "--json")
    assert code == 0
    curve = json.loads(out)
    m = measured_for(("Ga", "Al"), ("As",))
    rows = curve["compositions"]
    assert curve["elements"] == ["Ga", "Al"] and [t["name"] for t in curve["corrections"]] == ["soc"]
    assert curve["experiment"]["reference"] == m.reference and curve["experiment"]["temperature"] == 0
    for r in rows:
        assert r["experiment"] == pytest.approx(float(m.gap(r["x"]) + (1 - r["x"]) * 0.341 / 3 + r["x"] * 0.28 / 3))
    # the synthetic data sit SHIFT below the measured gap, so below the soc-raised reference by more
    assert curve["deviations"]["mean_signed"] == pytest.approx(SHIFT - (0.341 + 0.28) / 6, abs=0.03)
    code, out, _ = cli("predict", str(synthetic), "--curve", "--corrections", "none")
    words = " ".join(out.split())  # rich wraps long lines
    assert code == 0 and "experiment: Vurgaftman, Meyer and Ram-Mohan" in words and "x_Al" in words
    code, out, err = cli("predict", str(synthetic), "--curve", "--corrections", "exciton")
    one_line_error(code, err)
    assert "unknown correction exciton for Al(x)Ga(1-x)As" in err


def test_experiment_figure_of_an_algaas_store(synthetic, tmp_path):
    result = compare_experiment([synthetic], tmp_path / "e.png", corrections="all")
    assert result["system"] == "Al(x)Ga(1-x)As" and result["axis"] == "Al fraction x in Ga(1-x)Al(x)As"
    assert result["crossover"]["valleys"] == ("Gamma", "X") and result["crossover"]["measured"]["x"] == 0.37
    (c,) = result["fidelities"]
    assert c["deviation"]["mean_signed"] == pytest.approx(SHIFT - (0.341 + 0.28) / 6, abs=0.03)
    assert "E_Ga" in c["bowing"] and "E_Al" in c["bowing"]
    assert c["n_atoms"] == 16  # 8 mixing cation sites and 8 As: the label says 16-atom cell, not 8
    assert matplotlib.image.imread(tmp_path / "e.png").shape[0] > 500
    code, out, _ = cli("plot", str(synthetic), "-o", str(tmp_path / "figs"), "--figures", "experiment",
                       "--corrections", "soc")
    assert code == 0 and (tmp_path / "figs" / "experiment.png").exists()
    assert "Vurgaftman" in out and "E_Ga = " in out and "E_Al = " in out and "16-atom cell" in out


def test_crossover_defaults_to_gamma_x_for_algaas(synthetic):
    out = crossover(synthetic)
    assert out["valleys"] == ("Gamma", "X")
    # the synthetic valleys share one shift, so they cross where the measured branches do
    assert out["x"] == pytest.approx(0.417, abs=0.04) and out["x_low"] <= out["x"] <= out["x_high"]
    assert out["measured"]["x"] == 0.37 and out["measured"]["branches_x"] == pytest.approx(0.4167, abs=1e-3)
    shares = {round(c["x"], 4): c["share_upper"] for c in out["characters"]}
    assert shares[0.0] == 0.0 and shares[1.0] == 1.0
    assert crossover(synthetic, lower="Gamma", upper="L")["measured"] is None  # not the measured pair
    code, text, _ = cli("predict", str(synthetic), "--crossover")
    assert code == 0 and "Gamma -> X crossover" in text and "x = 0.370 +/- 0.015" in text


def test_a_system_without_an_experiment_file_is_one_line(tmp_path):
    path = tmp_path / "ingaas-synthetic.h5"
    _store(path, _algaas(("In", "Ga"), "ingaas-synthetic"), every=2)
    for args in (("predict", str(path), "--curve", "--corrections", "none"),
                 ("plot", str(path), "-o", str(tmp_path / "figs"), "--figures", "experiment")):
        code, _, err = cli(*args)
        one_line_error(code, err)
        assert "no measured gap is shipped for In(1-x)Ga(x)As" in err and "experiments/" in err
    assert not (tmp_path / "figs").exists()
    code, _, err = cli("predict", str(path), "--crossover")
    one_line_error(code, err)
    assert "no measured-gap file for In(1-x)Ga(x)As is shipped: give the valleys, --crossover LOWER,UPPER" in err
    assert cli("predict", str(path), "--crossover", "Gamma,X")[0] == 0
