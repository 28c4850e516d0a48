"""query / export / predict / inspect / plot in a subprocess on a real tiny GPAW store."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from tests.conftest import TINY, campaign_toml, cli_process


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A real 3-calculation campaign (GPAW, 4-atom cells, 2 local workers)."""
    root = tmp_path_factory.mktemp("e2e-query")
    (root / "tiny.toml").write_text(campaign_toml(TINY))
    result = cli_process("run", "tiny.toml", "--budget", "3", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_query_and_export_agree_with_the_store(campaign):
    result = cli_process("query", "runs/tiny.h5", "--format", "json", "--status", "ok", cwd=campaign)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and all(0 < r["gap"] < 1.5 and r["energy"] < 0 for r in rows)
    assert {r["preset"] for r in rows} == {"gpaw-fast"}
    result = cli_process("export", "runs/tiny.h5", "-o", "tiny.extxyz", cwd=campaign)
    assert result.returncode == 0 and "wrote 3 calculations" in result.stderr
    frames = ase.io.read(campaign / "tiny.extxyz", ":")
    assert [f.info["candidate"] for f in frames] == [r["candidate"] for r in rows]
    np.testing.assert_allclose([f.info["gap"] for f in frames], [r["gap"] for r in rows])
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], [r["energy"] for r in rows])
    assert [f.get_chemical_symbols().count("Ge") for f in frames] == [r["n_ge"] for r in rows]
    formula = rows[0]["formula"]
    table = cli_process("query", "runs/tiny.h5", "--composition", formula, cwd=campaign)
    assert table.returncode == 0 and formula in table.stdout and "gap (eV)" in table.stdout


def test_predict_inspect_plot(campaign):
    assert cli_process("export", "runs/tiny.h5", "-o", "ok.xyz", "--status", "ok", cwd=campaign).returncode == 0
    result = cli_process("predict", "runs/tiny.h5", "Si2Ge2", "ok.xyz", "--json", cwd=campaign)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    comp, *frames = out["predictions"]
    assert out["n_train"] == 3 and comp["formula"] == "Si2Ge2" and comp["n_configurations"] >= 2
    assert 0 < comp["gap"] < 1.5 and comp["model_std"] > 0 and comp["config_spread"] >= 0
    assert len(frames) == 3 and all(np.isfinite(f["gap"]) for f in frames)

    text = cli_process("predict", "runs/tiny.h5", "Si2Ge2", cwd=campaign)
    assert text.returncode == 0 and "Si2Ge2: x_ge = 0.5000, predicted gap" in text.stdout

    card = cli_process("inspect", "runs/tiny.h5", "--json", cwd=campaign)
    assert card.returncode == 0, card.stderr
    card = json.loads(card.stdout)
    assert card["kind"] == "gp" and card["n_train"] == 3 and card["cv_scheme"] == "leave-one-out"
    assert card["cv_mae"] > 0 and card["baseline_mae"] > 0

    plot = cli_process("plot", "runs/tiny.h5", "-o", "figs", cwd=campaign)
    assert plot.returncode == 0, plot.stderr
    assert sorted(p.name for p in (campaign / "figs").iterdir()) == [
        "gap_vs_x.png", "learning_curve.png", "parity.png", "selection.png"]


@pytest.mark.parametrize("args, expected", [
    (("query", "runs/tiny.h5", "--gap", "1:0"), "empty range"),
    (("query", "runs/tiny.h5", "--columns", "gap,nope"), "unknown column nope"),
    (("query", "runs/tiny.h5", "--composition", "Si2Sn2"), "element 'Sn'"),
    (("query", "missing.h5"), "store not found: missing.h5"),
    (("export", "runs/tiny.h5", "-o", "x.pdb"), "unknown file type .pdb"),
    (("predict", "runs/tiny.h5", "Si4Ge12"), "has 16 atoms but the supercell has 4 sites"),
    (("plot", "runs/tiny.h5", "-o", "tiny.toml"), "is a file"),
])
def test_bad_arguments_exit_2_with_one_line(campaign, args, expected):
    result = cli_process(*args, cwd=campaign)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
