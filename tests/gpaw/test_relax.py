"""Relaxation before the gap (real GPAW, 4-atom SiGe cells, seconds each)."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.compute.bandgap import compute_gap
from activemat.compute.presets import RelaxSettings, load_preset
from activemat.compute.relax import TRAJECTORY, last_geometry, scratch_folder
from activemat.space.pool import build_pool
from activemat.store.export import export_store
from activemat.store.read import read_store
from tests.conftest import TINY, campaign_toml


@pytest.fixture(scope="module")
def cell():
    pool = build_pool(supercell=(1, 1, 2))
    index = next(i for i in range(len(pool)) if pool.n_b[i] == 2)  # Si2Ge2: bonds of three lengths
    return index, pool.atoms(index)


def relaxing(kind="positions", steps=50, **gpaw):
    preset = load_preset("gpaw-fast")
    return preset.model_copy(update={"gpaw": preset.gpaw.model_copy(update=gpaw),
                                     "relax": RelaxSettings(kind=kind, fmax=0.05, steps=steps)})


def test_positions_relax_at_the_vegard_cell(cell, tmp_path):
    index, atoms = cell
    record = compute_gap(index, 0, atoms, relaxing(), str(tmp_path))
    assert record.ok, record.error
    assert record.relax == "positions" and record.relax_steps >= 1 and record.relax_fmax < 0.05
    assert record.relax_from == -1 and np.isfinite(record.unrelaxed_gap)
    assert np.allclose(record.cell, atoms.cell.array)  # the cell stays
    moved = np.linalg.norm(record.positions - atoms.positions, axis=1).max()
    assert 0.005 < moved < 0.2  # bonds relax by hundredths of an Angstrom
    assert record.gap != record.unrelaxed_gap
    assert not any(tmp_path.iterdir()), "scratch removed after success"


def test_an_interrupted_relaxation_continues_from_its_last_geometry(cell, tmp_path):
    index, atoms = cell
    first = compute_gap(index, 0, atoms, relaxing(steps=1), str(tmp_path))
    assert first.status == "failed" and first.error.startswith("RelaxationNotConverged")
    trajectory = scratch_folder(tmp_path, index, 0) / TRAJECTORY
    assert len(ase.io.read(trajectory, ":")) == 2  # the ideal structure and one step, kept for the retry
    number, last = last_geometry(tmp_path, index, 1)
    assert number == 0 and not np.allclose(last.positions, atoms.positions)
    assert last_geometry(tmp_path, index, 0) is None  # only earlier attempts count
    second = compute_gap(index, 1, atoms, relaxing(steps=1), str(tmp_path))  # interrupted again
    assert second.relax_from == 0 and np.isnan(second.unrelaxed_gap)
    frames = ase.io.read(scratch_folder(tmp_path, index, 1) / TRAJECTORY, ":")
    assert np.allclose(frames[0].positions, last.positions)  # it started where the first stopped
    third = compute_gap(index, 2, atoms, relaxing(), str(tmp_path))
    assert third.ok and third.relax_from == 1
    whole = compute_gap(index, 0, atoms, relaxing(), str(tmp_path / "fresh"))
    assert np.allclose(third.positions, whole.positions, atol=0.02) and abs(third.gap - whole.gap) < 0.01


def test_cell_relaxation_changes_the_cell(cell, tmp_path):
    """Cell relaxation needs stress-converged settings: 400 eV and a real k-grid (gpaw-fast's 200 eV and
    Gamma-like grid give a Pulay stress that drives the cell away)."""
    index, atoms = cell
    record = compute_gap(index, 0, atoms, relaxing("cell", ecut=400.0, kpts_density=2.0), str(tmp_path))
    assert record.ok, record.error
    assert record.relax == "cell" and record.relax_fmax < 0.05
    assert not np.allclose(record.cell, atoms.cell.array, atol=1e-4)


def test_relaxed_campaign_exports_the_relaxed_structures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = campaign_toml(TINY, stop={"budget": 3}, calculator={"relax": "positions", "relax_fmax": 0.05})
    config = parse_campaign(text)
    summary = run_campaign(config, text)
    assert summary["completed"] == 3
    store = tmp_path / "runs" / "tiny.h5"
    data = read_store(store)
    presets = data.presets["gpaw-fast"]
    assert presets["relax"]["kind"] == "positions"  # the store says how its gaps were made
    export_store(store, tmp_path / "relaxed.extxyz", status="ok")
    frames = ase.io.read(tmp_path / "relaxed.extxyz", ":")
    calc = data.calculations
    ok = np.flatnonzero(calc["status"] == "ok")
    assert len(frames) == len(ok) == 3
    for frame, row in zip(frames, ok):
        assert frame.info["relax"] == "positions" and frame.info["relax_fmax"] < 0.05
        assert np.allclose(frame.positions, calc["positions"][row]) and np.allclose(frame.cell, calc["cell"][row])
        assert frame.info["gap"] == pytest.approx(calc["gap"][row])
        assert np.isfinite(frame.info["unrelaxed_gap"])
    assert json.loads(frames[0].info["parameters"])["mode"]["name"] == "pw"
