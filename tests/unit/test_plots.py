"""``activemat plot`` (plots, experiment_figure) on real stores written by the loop (ReplayOracle, no DFT)."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest
from test_query_stores import stores, with_test_set

from activemat.analysis.curve import gap_curve
from activemat.analysis.modelcard import model_card
from activemat.analysis.experiment_figure import compare_experiment, render_comparison
from activemat.analysis.plots import FIGURES, plot_parity, plot_store
from activemat.analysis.model import fit_store_model
from activemat.campaign.stored import open_campaign
from activemat.errors import InputError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def _is_drawn(path) -> bool:
    image = matplotlib.image.imread(path)
    return image.shape[0] > 400 and image.shape[1] > 600 and image[..., :3].std() > 0.05


def test_all_figures_from_a_store_with_failures(store, tmp_path):
    paths = plot_store(store["configs"], tmp_path / "figs")
    assert set(paths) == set(FIGURES)
    for name, path in paths.items():
        assert path == tmp_path / "figs" / f"{name}.png" and _is_drawn(path), name


def test_parity_statistics_are_the_cross_validation(store, tmp_path):
    view = open_campaign(store["tutorial"])
    stats = plot_parity(view, fit_store_model(view), tmp_path / "parity.png")
    card = model_card(view)
    assert stats["mae"] == pytest.approx(card["cv_mae"], abs=1e-12)
    assert stats["rmse"] == pytest.approx(card["cv_rmse"], abs=1e-12)
    assert stats["r2"] == pytest.approx(card["cv_r2"], abs=1e-12)


def test_subset_and_test_set(store, tmp_path):
    path, _ = with_test_set(store["configs"], tmp_path / "test.h5")
    paths = plot_store(path, tmp_path / "sub", figures="parity,learning_curve")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["learning_curve.png", "parity.png"]
    assert all(_is_drawn(p) for p in paths.values())


def test_a_single_result_still_plots_without_a_model(store, tmp_path):
    paths = plot_store(store["single"], tmp_path / "one")
    assert all(_is_drawn(p) for p in paths.values())


def test_bad_plot_arguments(store, tmp_path):
    with pytest.raises(InputError, match="nothing to plot"):
        plot_store(store["empty"], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(InputError, match="unknown figure histogram"):
        plot_store(store["configs"], tmp_path / "x", figures="parity,histogram")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        plot_store(store["configs"], tmp_path / "file")
    with pytest.raises(InputError, match="store not found"):
        plot_store(tmp_path / "missing.h5", tmp_path / "x")



def test_reference_overlay(store, tmp_path):
    paths = plot_store(store["configs"], tmp_path / "ref", figures="gap_vs_x", reference=store["configs"])
    assert list(paths) == ["gap_vs_x"] and _is_drawn(paths["gap_vs_x"])
    with pytest.raises(InputError, match="different candidate pool"):
        plot_store(store["configs"], tmp_path / "ref", reference=store["tutorial"])


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """The same synthetic alloy in the 16-atom cell (enumerated configurations) and the 32-atom cell (2x2x4,
    two sampled decorations per composition), both GP campaigns with the ReplayOracle."""
    from distributed import Client, LocalCluster
    from test_query_stores import _run, campaign_text

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from tests.conftest import synthetic_gaps

    root = tmp_path_factory.mktemp("cells")
    texts = {"16": campaign_text("c16", root / "c16.h5", kind="random", budget=12),
             "32": campaign_text("c32", root / "c32.h5", mode="sampled", kind="random", budget=12,
                                 space={"supercell": [2, 2, 4], "samples_per_composition": 2})}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        for text in texts.values():
            pool = build_campaign_pool(parse_campaign(text))
            _run(client, text, ReplayOracle(synthetic_gaps(pool), delay=0.0))
    return {"16": root / "c16.h5", "32": root / "c32.h5"}


def test_experiment_figure_compares_cell_sizes_with_joint_posterior_bands(cells, tmp_path):
    """Each store's curve is gap_curve's (joint-posterior std, strictly below the old w @ std bound where the
    configurations averaged are not fully correlated), labelled with its cell size, with b +/- std."""
    result = compare_experiment([cells["16"], cells["32"]], tmp_path / "cells.png")
    c16, c32 = result["fidelities"]
    assert (c16["n_atoms"], c32["n_atoms"]) == (16, 32) and c16["label"] == c32["label"] == "gpaw-fast (PBE)"
    assert len(c16["x"]) == 17 and len(c32["x"]) == 33
    for c in (c16, c32):
        sm = fit_store_model(c["store"])
        curve = gap_curve(sm)
        assert c["model_std"] == pytest.approx([r["model_std"] for r in curve["compositions"]], rel=1e-9)
        assert c["config_spread"] == pytest.approx([r["spread"] for r in curve["compositions"]], abs=1e-12)
        assert c["bowing"]["b"] == pytest.approx(curve["bowing"]["b"]) and c["bowing"]["b_std"] > 0
        assert c["covariance"].startswith("joint posterior")
        bound = np.array([r["model_std_bound"] for r in curve["compositions"]])
        several = np.array([r["n_configurations"] > 1 for r in curve["compositions"]])
        assert np.all(np.array(c["model_std"])[several] < bound[several])
        # one composition by hand: sqrt(w' Cov w) from the model's joint covariance
        pool = sm.pool
        idx = np.flatnonzero(pool.n_b == pool.n_sites // 2)
        w = pool.multiplicity[idx] / pool.multiplicity[idx].sum()
        _, cov = sm.model.latent_cov(pool.features[idx])
        assert c["model_std"][pool.n_sites // 2] == pytest.approx(float(np.sqrt(w @ cov @ w)), rel=1e-6)
    out = io.StringIO()
    render_comparison(result, out)
    text = out.getvalue()
    assert f"16-atom cell, gpaw-fast (PBE) [{cells['16']}]: b = {c16['bowing']['b']:.3f} +/- " in text
    assert f"32-atom cell, gpaw-fast (PBE) [{cells['32']}]: b = {c32['bowing']['b']:.3f} +/- " in text
    assert _is_drawn(tmp_path / "cells.png")


def test_doctests():
    import doctest

    from activemat.analysis import canvas, experiment_figure, plots

    for module in (plots, experiment_figure, canvas):
        assert doctest.testmod(module).failed == 0, module.__name__
