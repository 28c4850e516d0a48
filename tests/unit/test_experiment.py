"""Comparison with experiment (Weber and Alonso, Phys. Rev. B 40, 5683 (1989)) on real stores written by
the loop with the ReplayOracle (no DFT): the measured curve, the deviations, the figure and the CLI."""

from __future__ import annotations

import doctest

import matplotlib.image
import numpy as np
import pytest
from test_query_stores import _run, campaign_text, stores

import activemat.analysis.experiment as experiment
from activemat.analysis.experiment import CROSSOVER_X, deviations, ge_like_gap, si_like_gap, weber_alonso_gap
from activemat.analysis.plots import FIGURES, compare_experiment, plot_store
from activemat.analysis.predict import composition_average, fit_store_model
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.cli import main
from activemat.compute.oracle import ReplayOracle
from activemat.errors import InputError
from activemat.store.query import open_store

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
    assert open_store(single).elements == ("Si", "Ge")
