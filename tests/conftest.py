"""Shared fixtures. Tests write only under tmp_path, never into the work tree."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

TIERS = ("unit", "gpaw", "dask", "e2e", "slurm", "faults")


def pytest_collection_modifyitems(items):
    # The folder names the tier: `pytest -m "not gpaw"` etc. select by it.
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS and tier != "unit":
            item.add_marker(getattr(pytest.mark, tier))


TINY_CAMPAIGN = """
[campaign]
name = "tiny"
store = "runs/tiny.h5"
seed = 1

[space]
elements = ["Si", "Ge"]
supercell = [1, 1, 2]
mode = "configurations"

[calculator]
preset = "gpaw-fast"

[strategy]
kind = "max_std"
n_seed = 2

[stop]
budget = 4

[cluster]
workers = 2
dashboard = false
"""


# A 402-candidate campaign for loop and fault tests (answers come from a ReplayOracle).
FAULT_CAMPAIGN = """
[campaign]
store = "runs/faults.h5"
seed = {seed}
[space]
supercell = [2, 2, 2]
[stop]
budget = {budget}
[cluster]
workers = 2
dashboard = false
[faults]
{faults}
"""


@pytest.fixture
def mpi_env(monkeypatch):
    """What the MPI tests need in their environment, set here in the open rather than in activemat.

    Open MPI's mpiexec refuses to start as root unless both variables are
    set; CI and these machines run the tests as root. On a machine with
    fewer cores than ranks, add ``--oversubscribe`` to ``mpi_launcher``
    (2 ranks on this 2-core machine need none).
    """
    if os.geteuid() == 0:
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


@pytest.fixture(scope="module")
def client():
    """A Dask client on two in-process workers (one thread each): real, asynchronous dispatch for loop
    tests against a ReplayOracle, without starting processes."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside its own empty directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def synthetic_gaps(pool) -> dict[int, float]:
    """A smooth, configuration-dependent gap table for replay tests (not physics)."""
    x = pool.x_b
    pair1 = pool.features[:, pool.feature_names.index("pair1")] if "pair1" in pool.feature_names else 0 * x
    gap = 0.60 - 0.55 * x + 0.05 * x**2 + 0.04 * (pair1 - (1 - 2 * x) ** 2)
    return {i: float(g) for i, g in enumerate(np.maximum(gap, 0.0))}
