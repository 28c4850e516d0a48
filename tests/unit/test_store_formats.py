"""The store as the field's standard tools read it: HDF5 1.10's h5dump and h5ls, and xarray through h5netcdf.

A fresh store and an older one migrated by activemat must both be readable by Debian's HDF5 1.10 tools
(hdf5-tools, installed by ``make test``), and xarray must see named dimensions with coordinates, text as
text and times as dates, without a warning (``filterwarnings = error``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from activemat.campaign.config import parse_campaign
from activemat.compute.presets import load_preset
from activemat.compute.records import CalculationRecord
from activemat.space.pool import build_pool
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

V2 = Path(__file__).resolve().parents[2] / "tests" / "data" / "reference-pbe-v2.h5"  # schema 2 (tests/data/README.md)
CAMPAIGN = campaign_toml({}, name="tiny", space={"supercell": [1, 1, 2]}, calculator={"preset": "gpaw-fast"})


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install Debian's hdf5-tools (make test does: APT_PACKAGES in the Makefile)"
    return path


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A new store with finished, failed and running rows, a parameter set and two snapshots."""
    pool = build_pool(supercell=(1, 1, 2))
    config = parse_campaign(CAMPAIGN)
    path = tmp_path / "fresh.h5"
    with CampaignStore.create(path, campaign_text=CAMPAIGN, identity=config.identity(), pool=pool,
                              presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")}) as store:
        for c in range(3):
            row = store.add_attempt(c, 0, "gpaw-fast", 0, "seed")
            store.finish_attempt(row, CalculationRecord(c, 0, "gpaw-fast", "ok", gap=0.5 + c / 10, kpts=(2, 2, 2),
                                                        started=1.7e9, finished=1.7e9 + 12,
                                                        worker="tcp://127.0.0.1:1", parameters={"xc": "PBE"}))
        row = store.add_attempt(3, 0, "gpaw-fast", 1, "max_std")
        store.finish_attempt(row, CalculationRecord(3, 0, "gpaw-fast", "failed", error="SCF: no convergence é"))
        store.add_attempt(4, 0, "gpaw-fast", 1, "max_std")
        for i in range(2):
            store.add_snapshot({"iteration": i, "n_train": 3, "model": "gp: test"},
                               np.full(len(pool), 0.5, "f4"), np.full(len(pool), 0.1, "f4"))
    return path


@pytest.fixture
def migrated(tmp_path) -> Path:
    """A real version-2 store (12 calculations of the PBE reference campaign, 402 candidates, 11 snapshots), migrated
    by a resume's open."""
    path = tmp_path / "reference-pbe.h5"
    shutil.copy(V2, path)
    with CampaignStore.open(path, read_store(path).attrs[S.ATTR_IDENTITY]):
        pass
    return path


ROOT = Path(__file__).resolve().parents[2]
#: Every store the repository ships (the fixtures in tests/data keep their old schemas on purpose).
SHIPPED = sorted(p for p in ROOT.glob("**/*.h5") if ROOT / "tests" / "data" not in p.parents
                 and not {".venv", "runs", "docs/_build"} & {part for part in p.relative_to(ROOT).parts[:2]})


def test_every_shipped_store_is_in_the_current_schema_with_its_model_stored():
    assert ROOT / "benchmarks" / "data" / "reference-pbe.h5" in SHIPPED
    for path in SHIPPED:
        data = read_store(path)
        assert int(data.attrs[S.ATTR_SCHEMA]) == S.SCHEMA_VERSION, f"{path}: python -m benchmarks.ship_store {path}"
        assert data.snapshots["hyperparameters"][-1], path  # read verbs rebuild its model without optimising
        assert not path.with_name(path.name + ".lock").exists()


def _store(store: str, request) -> Path:
    """The fixture of that name, or a copy of the shipped store of that name (as a user reads it)."""
    for shipped in SHIPPED:
        if store == str(shipped.relative_to(ROOT)):
            path = request.getfixturevalue("tmp_path") / shipped.name
            shutil.copy(shipped, path)
            return path
    return request.getfixturevalue(store)


STORES = ["fresh", "migrated", *(str(p.relative_to(ROOT)) for p in SHIPPED)]


@pytest.mark.parametrize("store", STORES)
def test_hdf5_1_10_tools_read_every_dataset(store, request):
    path = _store(store, request)
    header = subprocess.run([_tool("h5dump"), "-H", str(path)], capture_output=True, text=True, timeout=120)
    assert header.returncode == 0, header.stdout[-2000:] + header.stderr[-2000:]
    listing = subprocess.run([_tool("h5ls"), "-r", str(path)], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "ERROR" not in listing.stdout, listing.stdout
    for group in S.GROUPS:  # every dataset is listed, the pool predictions included
        for column in group.columns:
            assert f"/{group.path_of(column.name)} " in listing.stdout
    # and the values come out: the last snapshot's prediction of the first candidate
    n = len(read_store(path).snapshots["iteration"])
    values = subprocess.run([_tool("h5dump"), "-d", f"/{S.SNAPSHOTS.path_of('pool_mean')}", "-s", f"{n - 1},0",
                             "-c", "1,1", str(path)], capture_output=True, text=True, timeout=120)
    assert values.returncode == 0 and "DATA {" in values.stdout, values.stderr


@pytest.mark.parametrize("store", STORES)
def test_xarray_opens_every_group_with_named_dimensions(store, request):
    xr = pytest.importorskip("xarray")
    path = _store(store, request)
    data = read_store(path)
    root = xr.open_dataset(path, engine="h5netcdf")
    assert root.attrs[S.ATTR_CREATOR] == S.CREATOR and int(root.attrs[S.ATTR_SCHEMA]) == S.SCHEMA_VERSION
    for group in S.GROUPS:
        with xr.open_dataset(path, engine="h5netcdf", group=group.path) as ds:
            if not group.columns:  # presets: attributes only
                assert set(ds.attrs) == set(data.presets) and not ds.data_vars
                continue
            assert not [d for d in ds.dims if str(d).startswith("phony_dim")]
            assert set(ds.dims) == set(group.dimensions) and set(ds.coords) == set(group.dimensions)
            assert set(ds.data_vars) == set(group.names)
            rows = len(getattr(data, group.path)[group.names[0]]) if group.path != "parameters" else ds.sizes["part"]
            assert ds.sizes[group.row] == rows
            assert ds[group.row].values.tolist() == list(range(rows))
            for column in group.columns:
                var = ds[column.name]
                assert var.dims == group.dimensions_of(column), column.name
                if column.width:  # text, not bytes
                    assert all(isinstance(v, str) for v in var.values.ravel().tolist()), column.name
                if column.unit == S.TIME:
                    assert np.issubdtype(var.dtype, np.datetime64), column.name
                elif column.unit:
                    assert var.attrs["units"] == column.unit, column.name
    with xr.open_dataset(path, engine="h5netcdf", group="candidates") as ds:
        assert ds["feature"].values.tolist() == list(data.attrs[S.ATTR_FEATURE_NAMES])
        assert ds.sizes["site"] == data.candidates["decoration"].shape[1]
    with xr.open_dataset(path, engine="h5netcdf", group="calculations") as ds:
        assert ds["status"].values.tolist() == data.calculations["status"].tolist()
        assert ds.sizes["k_axis"] == 3
        ok = data.calculations["status"] == "ok"
        assert np.array_equal(ds["gap"].values[ok], data.calculations["gap"][ok])
        started = ds["started"].values[ok].astype("datetime64[ns]").astype(np.int64) / 1e9
        assert started == pytest.approx(data.calculations["started"][ok], abs=1e-6)
    with xr.open_dataset(path, engine="h5netcdf", group="snapshots") as ds:
        assert ds["pool_mean"].dims == ("snapshot", "candidate")
        assert np.array_equal(ds["pool_mean"].values, np.stack(data.snapshots["pool_mean"]), equal_nan=True)
