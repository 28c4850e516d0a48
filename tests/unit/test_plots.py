"""activemat.analysis.plots (``activemat plot``) on real stores written by the loop (ReplayOracle, no DFT)."""

from __future__ import annotations

import matplotlib.image
import pytest
from test_query_stores import stores, with_test_set

from activemat.analysis.modelcard import model_card
from activemat.analysis.plots import FIGURES, plot_parity, plot_store
from activemat.analysis.predict import fit_store_model
from activemat.campaign.stored import open_campaign as open_store
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
    view = open_store(store["tutorial"])
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
