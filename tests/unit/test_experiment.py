"""Comparison with experiment (Weber and Alonso, Phys. Rev. B 40, 5683 (1989)) on real stores written by
the loop with the ReplayOracle (no DFT): the measured curve, the deviations, the figure and the CLI."""

from __future__ import annotations

import doctest
import re

import matplotlib.image
import numpy as np
import pytest
from test_query_stores import _run, campaign_text, stores

import activemat.analysis.experiment as experiment
from activemat.analysis.experiment import (
    CORRECTION_NAMES,
    CORRECTIONS,
    CROSSOVER_X,
    comparable_gap,
    correction_shift,
    describe_corrections,
    deviations,
    ge_like_gap,
    parse_corrections,
    si_like_gap,
    weber_alonso_gap,
)
from activemat.analysis.experiment_figure import compare_experiment
from activemat.analysis.plots import FIGURES, plot_store
from activemat.analysis.curve import composition_average
from activemat.analysis.model import fit_store_model
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.cli import main
from activemat.compute.oracle import ReplayOracle
from activemat.errors import InputError
from activemat.store.read import read_store

SHIFT = -0.5  # eV: the "low" fidelity answers the measured gap shifted by this much


def test_measured_curve_values_and_crossover():
    assert float(weber_alonso_gap(0.0)) == pytest.approx(1.155)
    assert float(si_like_gap(1.0)) == pytest.approx(0.931)
    assert float(ge_like_gap(1.0)) == pytest.approx(0.740)
    assert float(weber_alonso_gap(1.0)) == pytest.approx(0.740)
    assert float(weber_alonso_gap(0.5)) == pytest.approx(1.155 - 0.215 + 0.0515)  # Si-like below the crossover
    assert 0.83 < CROSSOVER_X < 0.86
    assert float(si_like_gap(CROSSOVER_X)) == pytest.approx(float(ge_like_gap(CROSSOVER_X)), abs=1e-12)
    x = np.linspace(0, 1, 101)
    below = x < CROSSOVER_X
    assert np.array_equal(weber_alonso_gap(x)[below], si_like_gap(x)[below])
    assert np.array_equal(weber_alonso_gap(x)[~below], ge_like_gap(x)[~below])
    assert doctest.testmod(experiment).failed == 0


def test_deviations_of_a_given_curve():
    x = np.arange(17) / 16
    d = deviations(x, weber_alonso_gap(x) - 0.3)
    assert d["mean_signed"] == pytest.approx(-0.3) and d["mean_abs"] == pytest.approx(0.3)
    assert d["at_0"] == pytest.approx(-0.3) and d["at_1"] == pytest.approx(-0.3) and d["n_compositions"] == 17
    assert np.isnan(deviations(x[1:-1], weber_alonso_gap(x[1:-1]))["at_0"])


# (term, its quantity at x=0 and x=1 in eV, the sign of that quantity, which way it moves the reference)
TERMS = (("exciton", 0.0147, 0.00415, +1, +1), ("zpr", -0.059, -0.050, -1, +1),
         ("soc", 0.044 / 3, 0.29 / 3, +1, +1))


@pytest.mark.parametrize("name, si, ge, sign, up", TERMS)
def test_each_term_sign_and_size_at_the_end_members(name, si, ge, sign, up):
    c = CORRECTIONS[name]
    assert float(c.value(0.0)) == pytest.approx(si) and float(c.value(1.0)) == pytest.approx(ge)
    assert np.sign(c.at_0) == np.sign(c.at_1) == sign
    # every term raises the reference a static-lattice, scalar-relativistic DFT gap is compared with
    assert np.sign(float(c.shift(0.0))) == np.sign(float(c.shift(1.0))) == up
    assert float(comparable_gap(0.0, name) - weber_alonso_gap(0.0)) == pytest.approx(abs(si))
    assert float(comparable_gap(1.0, name) - weber_alonso_gap(1.0)) == pytest.approx(abs(ge))
    # linear in x between the end members
    assert float(c.value(0.5)) == pytest.approx((si + ge) / 2)
    assert float(c.shift(0.25)) == pytest.approx(up * abs(0.75 * si + 0.25 * ge))
    assert float(c.uncertainty(0.5)) == pytest.approx((c.uncertainty_0 + c.uncertainty_1) / 2)
    assert c.uncertainty_0 > 0 and c.uncertainty_1 > 0 and c.citation and c.convention


def test_term_magnitudes_are_the_cited_ones():
    # meV: E_x Si 14.7, Ge 4.15; ZPR Si -59 (-57 to -64), Ge about -50; Delta_so/3 Si 44/3, Ge 290/3
    assert 14 < 1000 * CORRECTIONS["exciton"].at_0 < 15.5 and 4 < 1000 * CORRECTIONS["exciton"].at_1 < 4.5
    assert -64 <= 1000 * CORRECTIONS["zpr"].at_0 <= -57 and -60 <= 1000 * CORRECTIONS["zpr"].at_1 <= -40
    assert 1000 * CORRECTIONS["soc"].at_1 == pytest.approx(96.7, abs=0.1)
    # Delta_so/3 with the uncertainties the citation states (1 and 3 meV)
    assert (CORRECTIONS["soc"].uncertainty_0, CORRECTIONS["soc"].uncertainty_1) == pytest.approx((0.001, 0.003))
    for c in CORRECTIONS.values():
        assert re.search(r"\b(19|20)\d\d\)", c.citation)  # a year: every number has a source


def test_no_terms_is_the_measured_curve():
    x = np.linspace(0, 1, 41)
    for nothing in ((), None, "", "none", []):
        assert np.array_equal(comparable_gap(x, nothing), weber_alonso_gap(x))
        assert np.array_equal(correction_shift(x, nothing), np.zeros_like(x))
    assert np.array_equal(comparable_gap(x), weber_alonso_gap(x))  # the default applies nothing
    d = deviations(x, weber_alonso_gap(x))
    assert d["mean_abs"] == 0.0 and d["corrections"] == []


def test_terms_add_up_and_all_means_every_term():
    x = np.array([0.0, 0.5, 1.0])
    assert parse_corrections("all") == CORRECTION_NAMES == ("exciton", "zpr", "soc")
    assert parse_corrections(" SOC , exciton ") == ("exciton", "soc")  # the registry's order, whatever was typed
    assert parse_corrections(["zpr", "zpr"]) == ("zpr",)
    total = sum(CORRECTIONS[n].shift(x) for n in CORRECTION_NAMES)
    assert comparable_gap(x, "all") == pytest.approx(weber_alonso_gap(x) + total)
    # Si: 14.7 + 59 + 14.67 meV; Ge: 4.15 + 50 + 96.67 meV; x = 0.5 the mean of the two
    assert total == pytest.approx([0.08837, 0.119593, 0.15082], abs=1e-5)
    d = deviations(x, comparable_gap(x, ["exciton", "soc"]), ["soc", "exciton"])
    assert d["mean_abs"] == pytest.approx(0.0, abs=1e-12) and d["corrections"] == ["exciton", "soc"]
    rows = describe_corrections("all")
    assert [r["name"] for r in rows] == list(CORRECTION_NAMES)
    assert rows[1]["value_at_0"] == -0.059 and rows[1]["shift_at_0"] == pytest.approx(0.059)


def test_unknown_term_is_an_input_error_naming_the_valid_ones():
    for bad in ("excitons", "zpr,phonons", ["spin-orbit"]):
        with pytest.raises(InputError, match="unknown correction .*; choose from exciton, zpr, soc, all or none"):
            comparable_gap(0.5, bad)


@pytest.fixture(scope="module")
def fidelities(tmp_path_factory):
    """exact: configurations pool, GP, oracle = the measured gap at each candidate's x;
    low: compositions pool, GP, oracle = the measured gap + SHIFT."""
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("experiment")
    paths = {"exact": root / "exact.h5", "low": root / "low.h5"}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        for name, mode, budget, shift in (("exact", "configurations", 12, 0.0), ("low", "compositions", 8, SHIFT)):
            text = campaign_text(name, paths[name], mode=mode, budget=budget)
            pool = build_campaign_pool(parse_campaign(text))
            gaps = weber_alonso_gap(pool.x_b) + shift
            _run(client, text, ReplayOracle(dict(enumerate(gaps.tolist())), delay=0.0))
    return paths


def test_deviations_from_stores(fidelities, tmp_path):
    result = compare_experiment([fidelities["exact"], fidelities["low"]], tmp_path / "experiment.png")
    assert result["reference"] == "Weber and Alonso, Phys. Rev. B 40, 5683 (1989)"
    exact, low = result["fidelities"]
    assert exact["label"] == low["label"] == "gpaw-fast (PBE)"  # the campaigns' preset, from the store
    for curve, shift in ((exact, 0.0), (low, SHIFT)):
        d, std = curve["deviation"], np.array(curve["model_std"])
        assert curve["x"] == pytest.approx(np.arange(17) / 16) and d["n_compositions"] == 17
        # the model reproduces the oracle's curve within its own 2-sigma error
        assert abs(d["mean_signed"] - shift) < 2 * std.mean()
        assert d["mean_abs"] == pytest.approx(abs(shift), abs=2 * std.mean())
        assert abs(d["at_0"] - shift) < 2 * std[0] + 0.01 and abs(d["at_1"] - shift) < 2 * std[-1] + 0.01
    assert abs(exact["deviation"]["mean_signed"]) < 0.05 and exact["deviation"]["mean_abs"] < 0.05
    assert low["deviation"]["mean_signed"] == pytest.approx(SHIFT, abs=0.05)
    # computed points: multiplicity-weighted averages of what the oracle answered, per composition
    assert np.allclose(low["computed_gap"], weber_alonso_gap(np.array(low["computed_x"])) + SHIFT)
    assert np.allclose(exact["computed_gap"], weber_alonso_gap(np.array(exact["computed_x"])))
    assert exact["n_computed"] == 12 and low["n_computed"] == 8
    # the model curve is predict's multiplicity-weighted composition average
    sm = fit_store_model(fidelities["exact"])
    avg = composition_average(sm, 8)
    assert exact["gap"][8] == pytest.approx(avg["gap"]) and exact["model_std"][8] == pytest.approx(avg["model_std"])
    path = tmp_path / "experiment.png"
    image = matplotlib.image.imread(path)
    assert path.stat().st_size > 10_000 and image.shape[0] > 600 and image[..., :3].std() > 0.05


def test_plot_cli_prints_the_deviations(fidelities, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["plot", str(fidelities["exact"]), str(fidelities["low"]), "-o", str(out),
                 "--figures", "experiment,gap_vs_x"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["experiment.png", "gap_vs_x.png"]
    lines = capsys.readouterr().out.splitlines()
    assert "Weber and Alonso, Phys. Rev. B 40, 5683 (1989)" in lines[2]
    assert lines[3].startswith("  gpaw-fast (PBE) [") and "exact.h5, 12 calculations]: mean " in lines[3]
    assert "low.h5, 8 calculations]: mean -0.5" in lines[4] and "x=0 " in lines[4] and "x=1 " in lines[4]
    results = {}
    plot_store(fidelities["low"], tmp_path / "one", figures=["experiment"], results=results)
    assert [c["store"] for c in results["experiment"]["fidelities"]] == [str(fidelities["low"])]


def test_experiment_is_opt_in_and_checked(fidelities, tmp_path, capsys):
    assert "experiment" not in FIGURES  # the default set stays the four diagnostics of one store
    with pytest.raises(InputError, match="only used by the experiment figure"):
        plot_store(fidelities["exact"], tmp_path / "x", compare=[fidelities["low"]])
    assert not (tmp_path / "x").exists()
    assert main(["plot", str(fidelities["exact"]), str(fidelities["low"]), "-o", str(tmp_path / "y")]) == 2
    assert "add --figures experiment" in capsys.readouterr().err


def test_experiment_without_a_model(tmp_path_factory, tmp_path):
    single = stores(tmp_path_factory)["single"]
    results = {}
    paths = plot_store(single, tmp_path / "one", figures="experiment", results=results)
    (curve,) = results["experiment"]["fidelities"]
    assert curve["deviation"] is None and curve["n_computed"] == 1
    assert paths["experiment"].stat().st_size > 10_000
    empty = stores(tmp_path_factory)["empty"]
    with pytest.raises(InputError, match="no calculations yet"):
        plot_store(single, tmp_path / "z", figures="experiment", compare=[empty])
    assert read_store(single).elements == ("Si", "Ge")


def test_plot_cli_applies_named_corrections(fidelities, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["plot", str(fidelities["exact"]), "-o", str(out), "--figures", "experiment",
                 "--corrections", "zpr,exciton"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("experiment.png")
    assert lines[1].startswith("model - (experiment + exciton + zpr) (Weber and Alonso")
    assert lines[2].startswith("  term exciton (free-exciton binding): +14.7 meV at x=0, +4.2 meV at x=1")
    assert lines[3].startswith("  term zpr (zero-point renormalisation): +59.0 meV at x=0, +50.0 meV at x=1")
    assert lines[4] == "  total: +73.7 meV at x=0, +54.2 meV at x=1"
    # the oracle answered the measured gap, so against the corrected reference the model is low by the terms
    results = {}
    plot_store(fidelities["exact"], tmp_path / "all", figures="experiment", corrections="all", results=results)
    (curve,) = results["experiment"]["fidelities"]
    d, std = curve["deviation"], np.array(curve["model_std"])
    assert d["corrections"] == ["exciton", "zpr", "soc"]
    assert abs(d["at_0"] + 0.08837) < 2 * std[0] + 0.01 and abs(d["at_1"] + 0.15082) < 2 * std[-1] + 0.01
    assert [t["name"] for t in results["experiment"]["corrections"]] == ["exciton", "zpr", "soc"]
    image = matplotlib.image.imread(tmp_path / "all" / "experiment.png")
    assert image[..., :3].std() > 0.05
    # without the option nothing is applied, and the output says so
    assert main(["plot", str(fidelities["exact"]), "-o", str(tmp_path / "none"), "--figures", "experiment"]) == 0
    text = capsys.readouterr().out
    assert "as measured: no correction terms applied" in text and "term " not in text


def test_plot_cli_rejects_unknown_corrections(fidelities, tmp_path, capsys):
    assert main(["plot", str(fidelities["exact"]), "-o", str(tmp_path / "x"), "--figures", "experiment",
                 "--corrections", "exciton,phonon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown correction phonon for Si(1-x)Ge(x) (SiGe.toml); choose from exciton, zpr, soc, all or none" in err[0]
    assert not (tmp_path / "x").exists()
    assert main(["plot", str(fidelities["exact"]), "-o", str(tmp_path / "y"), "--corrections", "all"]) == 2
    assert "correction terms are only used by the experiment figure" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_sige_measured_gap_file_is_the_weber_alonso_curve():
    # issue 30: measured gaps are data files, one per system; SiGe's is the first and keeps every number
    from activemat.analysis.experiment import (CITATION, CITATION_SHORT, CROSSOVER_X, ELEMENTS, GE_BRANCH,
                                               SI_BRANCH, measured_for, weber_alonso_gap)

    m = measured_for(ELEMENTS)
    assert m.reference == CITATION and m.short == CITATION_SHORT and m.temperature == 4.2
    assert {b.valley: b.coefficients for b in m.branches} == {"Delta": SI_BRANCH, "L": GE_BRANCH}
    x = np.linspace(0, 1, 101)
    np.testing.assert_allclose(m.gap(x), weber_alonso_gap(x), rtol=0, atol=1e-12)
    assert m.crossover() == pytest.approx(CROSSOVER_X, abs=1e-9)
    assert m.crossover_valleys() == ("Delta", "L") and m.measured_crossover is None
    assert measured_for(("Ga", "Al"), ("As",)).system == "Al(x)Ga(1-x)As"
    assert measured_for(("In", "Ga"), ("N",)) is None  # not shipped


def test_measured_gap_file_of_points(tmp_path):
    from activemat.analysis.experiment import load_measured

    path = tmp_path / "AB.toml"
    path.write_text('system = "A(1-x)B(x)"\nelements = ["Ga", "Al"]\nfixed = ["As"]\nreference = "r"\n'
                    '[[point]]\nx = 0.0\ngap = 1.5\n[[point]]\nx = 1.0\ngap = 2.2\nreference = "other"\n')
    m = load_measured(path)
    assert float(m.gap(0.5)) == pytest.approx(1.85) and m.points[1][2] == "other" and np.isnan(m.crossover())
    path.write_text('system = "x"\n')
    with pytest.raises(InputError, match="measured-gap file lacks or mistypes"):
        load_measured(path)
