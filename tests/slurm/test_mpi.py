"""MPI per calculation ([cluster] mpi_ranks): one GPAW calculation on several cores.

The real MPI tests need GPAW built with MPI (`make setup` builds it against
Debian's Open MPI: `gpaw info` says "MPI enabled yes") and an `mpiexec`;
they skip, saying why, where either is missing. As root they need Open
MPI's OMPI_ALLOW_RUN_AS_ROOT variables (the `mpi_env` fixture). The launch plumbing (arguments out, record back, failure
as data) is tested everywhere with a launcher that is not MPI.
"""

from __future__ import annotations

import shutil

import pytest
from ase.build import bulk

from activemat.campaign.config import ClusterSection
from activemat.compute.bandgap import compute_gap
from activemat.compute.faults import INFRASTRUCTURE
from activemat.compute.mpi import MpiTask, mpi_backend
from activemat.compute.presets import load_preset
from activemat.dispatch.clusters import connect, task_for
from activemat.errors import InputError

HAVE_MPI = mpi_backend() is not None and shutil.which("mpiexec") is not None


def si():
    return bulk("Si", "diamond", a=5.431)


def test_one_rank_is_the_plain_task():
    assert task_for(ClusterSection()) is compute_gap


def test_mpi_ranks_without_mpi_is_a_clear_input_error(monkeypatch):
    monkeypatch.setattr("activemat.dispatch.clusters.mpi_backend", lambda: None)  # as on a machine without MPI
    section = ClusterSection(mpi_ranks=2, cores=2)
    with pytest.raises(InputError, match="mpi_ranks = 2 needs GPAW built with MPI.*Set mpi_ranks = 1"):
        task_for(section)
    with pytest.raises(InputError, match="needs GPAW built with MPI"):  # before any cluster starts
        with connect(section, log=print):
            pass


def test_launched_task_returns_the_record_from_the_ranks(tmp_path):
    """The launcher here is `env` (one process, serial GPAW): the record makes the round trip."""
    task = MpiTask(ranks=2, launcher="env ACTIVEMAT_TEST_RANKS={ranks}", backend="serial")
    assert task.command("in", "out")[:2] == ["env", "ACTIVEMAT_TEST_RANKS=2"]
    record = task(0, 0, si(), load_preset("gpaw-fast"), str(tmp_path))
    assert record.ok and 0.3 < record.gap < 1.0 and record.worker == ""  # no Dask worker: dispatch names it
    assert not list(tmp_path.iterdir()), "inputs and outputs are cleaned up after success"


def test_failed_launch_is_a_failed_record_with_its_output_kept(tmp_path):
    record = MpiTask(ranks=2, launcher="false {ranks}")(3, 1, si(), load_preset("gpaw-fast"), str(tmp_path))
    assert record.status == "failed" and record.candidate == 3 and record.attempt == 1
    assert record.error.startswith("MPI launch failed (exit 1)")
    assert "$ false 2" in (tmp_path / "mpi-cand000003-try1" / "launcher.txt").read_text()


@pytest.mark.skipif(not HAVE_MPI, reason="no MPI here: GPAW is built without MPI (gpaw info: 'MPI enabled no'), "
                                         "no mpi4py, or no mpiexec on PATH")
def test_two_ranks_give_the_serial_gap(tmp_path, mpi_env):
    preset = load_preset("gpaw-fast")
    serial = compute_gap(0, 0, si(), preset, str(tmp_path))
    parallel = task_for(ClusterSection(mpi_ranks=2, cores=2))(0, 1, si(), preset, str(tmp_path))
    assert parallel.ok, parallel.error
    assert (serial.ranks, parallel.ranks) == (1, 2)
    assert abs(parallel.gap - serial.gap) < 1e-3


@pytest.mark.skipif(not HAVE_MPI, reason="no MPI here: GPAW is built without MPI (gpaw info: 'MPI enabled no'), "
                                         "no mpi4py, or no mpiexec on PATH")
def test_missing_setups_under_mpi_are_an_infrastructure_fault(tmp_path, monkeypatch, mpi_env):
    """Issue 29: ranks on a host without PAW setups (GPAW's rc.py empties its setup paths, GPAW_SETUP_PATH names
    an empty folder) return the same one-line fault as a serial calculation, not a calculation failure."""
    home, empty = tmp_path / "home", tmp_path / "no-setups"
    (home / ".gpaw").mkdir(parents=True)
    empty.mkdir()
    (home / ".gpaw" / "rc.py").write_text("setup_paths[:] = []  # a host without gpaw-data\n")
    monkeypatch.setenv("HOME", str(home))  # the ranks are new processes: they read this environment
    monkeypatch.setenv("GPAW_SETUP_PATH", str(empty))
    record = task_for(ClusterSection(mpi_ranks=2, cores=2))(4, 0, si(), load_preset("gpaw-fast"),
                                                            str(tmp_path / "scratch"))
    assert record.status == "failed" and record.ranks == 2, record
    assert record.error.startswith(f"{INFRASTRUCTURE}: no PAW setup Si.PBE on host "), record.error
    assert str(empty) in record.error and "\n" not in record.error


@pytest.mark.skipif(not HAVE_MPI, reason="no MPI here: GPAW is built without MPI (gpaw info: 'MPI enabled no'), "
                                         "no mpi4py, or no mpiexec on PATH")
def test_two_rank_relaxed_campaign_on_the_local_cluster(tmp_path, monkeypatch, mpi_env):
    """[cluster] mpi_ranks = 2 on a LocalCluster, end to end, relaxing: every calculation ran on 2 ranks, and
    rank 0 alone wrote each relaxation trajectory (the relaxed structures are in the store)."""
    import numpy as np

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.loop import run_campaign
    from activemat.store.read import read_store
    from tests.conftest import TINY, campaign_toml

    monkeypatch.chdir(tmp_path)
    text = campaign_toml(TINY, stop={"budget": 3}, calculator={"relax": "positions"},
                         cluster={"workers": 1, "mpi_ranks": 2})
    summary = run_campaign(parse_campaign(text), text)
    assert summary["completed"] == 3 and summary["failed"] == 0, summary
    calc = read_store(tmp_path / "runs" / "tiny.h5").calculations
    ok = calc["status"] == "ok"
    assert ok.sum() == 3 and (calc["ranks"][ok] == 2).all()
    assert set(calc["relax"][ok].tolist()) == {"positions"} and (calc["relax_fmax"][ok] < 0.05).all()
    assert np.isfinite(calc["positions"][ok]).all()


@pytest.mark.skipif(not HAVE_MPI, reason="no MPI here: GPAW is built without MPI (gpaw info: 'MPI enabled no'), "
                                         "no mpi4py, or no mpiexec on PATH")
def test_a_gamma_only_cell_splits_over_two_ranks(tmp_path, mpi_env):
    """Gamma-only (gpaw-fast's 8-atom cubic cell): GPAW's new calculator cannot split it without ScaLAPACK,
    so the task runs the legacy one there; same gap as one rank."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms[1].symbol = "Ge"
    preset = load_preset("gpaw-fast")
    preset = preset.model_copy(update={"gpaw": preset.gpaw.model_copy(update={"kpts_density": 0.1})})
    serial = compute_gap(0, 0, atoms, preset, str(tmp_path))
    parallel = task_for(ClusterSection(mpi_ranks=2, cores=2))(0, 1, atoms, preset, str(tmp_path))
    assert parallel.ok, parallel.error
    assert serial.kpts == parallel.kpts == (1, 1, 1) and parallel.parameters.get("legacy_gpaw") is True
    assert abs(parallel.gap - serial.gap) < 2e-3
