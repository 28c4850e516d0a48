"""Stores written by earlier schemas open, read, query, migrate and resume (a real version-2 store included).

The real one is ``tests/data/reference-pbe-v2.h5``: the first 12 calculations of the PBE reference campaign as
activemat 0.1.0 wrote them (store schema 2; ``tests/data/README.md``). The shipped reference store itself is in
the current schema (``test_shipped_stores.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from activemat.analysis.tables import run_query
from activemat.campaign.config import parse_campaign
from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore

V2 = Path(__file__).resolve().parents[2] / "tests" / "data" / "reference-pbe-v2.h5"
PBE = {"mode": {"name": "pw", "ecut": 300.0}, "xc": "PBE", "kpts": {"size": [2, 2, 2], "gamma": True}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _contents(path: Path) -> dict:
    """Every dataset (dtype, shape, maxshape, values, attributes) and group attribute of a file, read raw."""
    out = {}
    with h5py.File(path, "r", locking=False) as f:
        out["/"] = dict(f.attrs)

        def visit(name, obj):
            attrs = dict(obj.attrs)
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype, obj.shape, obj.maxshape, obj[()], attrs)
            else:
                out[name] = attrs

        f.visititems(visit)
    return out


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return (a[:3] == b[:3] and _same(a[4], b[4])
                and np.array_equal(a[3], b[3], equal_nan=a[3].dtype.kind == "f"))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(a, b))


@pytest.fixture
def reference(tmp_path) -> Path:
    path = tmp_path / "reference-pbe.h5"
    shutil.copy(V2, path)
    return path


def test_the_fixture_is_a_version_2_store():
    with h5py.File(V2, "r", locking=False) as f:
        assert int(f.attrs[S.ATTR_SCHEMA]) == 2 < S.SCHEMA_VERSION
        assert "parameters" not in f[S.CALCULATIONS.path] and S.PARAMETERS.path not in f


def test_reference_v2_store_reads_and_queries_without_writing(reference):
    before = _sha(reference)
    data = read_store(reference)
    c = data.calculations
    assert data.attrs[S.ATTR_SCHEMA] == 2
    assert data.n_calculations == 12 and len(data.completed("gpaw-pbe-pw")) == 12
    assert len(data.candidates["n_b"]) == 402 and len(data.snapshots["iteration"]) == 11
    # the columns schema 3 added, filled in memory: parameters not recorded, no GLLB-SC results
    assert set(c["parameters"].tolist()) == {""} and data.parameters == {}
    assert np.isnan(c["ks_gap"]).all() and np.isnan(c["discontinuity"]).all()

    view = read_store(reference)
    ok = view.select(status="ok", columns="candidate,gap,parameters")
    assert len(ok["candidate"]) == 12 and set(ok["parameters"].tolist()) == {""}
    assert view.parameters_of(0) == {}
    out = io.StringIO()
    assert run_query(reference, fmt="json", file=out, composition="Si8Ge8", columns="candidate,gap,parameters") > 0
    records = json.loads(out.getvalue())
    assert records and all(r["parameters"] is None and r["gap"] > 0 for r in records)
    assert _sha(reference) == before  # readers never write


def test_reference_v2_store_migrates_on_open_losing_and_altering_nothing(reference, tmp_path):
    raw = _contents(reference)
    old = read_store(reference)
    identity = old.attrs[S.ATTR_IDENTITY]
    assert parse_campaign(old.attrs[S.ATTR_CAMPAIGN_TEXT]).identity() == identity  # the loop would resume it

    with CampaignStore.open(reference, identity):  # rewrite-and-swap to schema 3
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference-pbe.h5", "reference-pbe.h5.lock"]
    migrated = _contents(reference)
    # every dataset and attribute of the old file is still there, equal (only the version moved on)
    for name, value in raw.items():
        if name == "/":
            assert _same({k: v for k, v in migrated["/"].items() if k != S.ATTR_SCHEMA},
                         {k: v for k, v in value.items() if k != S.ATTR_SCHEMA})
        elif isinstance(value, tuple):  # a dataset: equal values, and its unit now in the CF attribute "units"
            assert _same(value[:4] + ({},), migrated[name][:4] + ({},)), name
            attrs = migrated[name][4]
            unit = {"s since epoch": S.TIME}.get(value[4].get("unit"), value[4].get("unit"))  # times: CF units
            assert attrs.get("units") == unit and "unit" not in attrs, name
        else:
            assert _same(value, migrated[name]), name
    assert migrated["/"][S.ATTR_SCHEMA] == S.SCHEMA_VERSION
    # and what later schemas added, as declared, filled with the empty value
    added = set(migrated) - set(raw)
    assert added == {S.PARAMETERS.path, *(S.PARAMETERS.path_of(n) for n in S.PARAMETERS.names),
                     *(S.CALCULATIONS.path_of(c.name) for c in S.CALCULATIONS.columns if c.since in (3, 6, 7, 8)),
                     *(S.CANDIDATES.path_of(c.name) for c in S.CANDIDATES.columns if c.since == 4),
                     *(S.SNAPSHOTS.path_of(c.name) for c in S.SNAPSHOTS.columns if c.since == 5),
                     *(f"{g.path}/{d}" for g in S.GROUPS for d in g.dimensions)}
    for column in S.CANDIDATES.columns:
        if column.since == 4:  # no SQS in a store written before they existed
            dtype, shape, maxshape, values, attrs = migrated[S.CANDIDATES.path_of(column.name)]
            assert dtype == np.dtype(column.dtype) and shape == (402,) and not values.any()
    for column in S.CALCULATIONS.columns:
        if column.since in (3, 6):
            dtype, shape, maxshape, values, attrs = migrated[S.CALCULATIONS.path_of(column.name)]
            entry = column.shape({S.SITE: 16})
            assert dtype == np.dtype(column.dtype) and shape == (12, *entry) and maxshape == (None, *entry)
            assert attrs.get("units", "") == column.unit
            assert np.array_equal(values, np.full((12, *entry), column.fill, column.dtype),
                                  equal_nan=values.dtype.kind == "f")
    for name in S.PARAMETERS.names:
        assert migrated[S.PARAMETERS.path_of(name)][1] == (0,)

    new = read_store(reference)
    assert new.attrs[S.ATTR_SCHEMA] == S.SCHEMA_VERSION
    for group in ("candidates", "calculations", "snapshots"):
        a, b = getattr(old, group), getattr(new, group)
        assert a.keys() == b.keys(), group
        for k in a:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
    assert new.presets == old.presets and new.parameters == {}


def test_migrated_reference_store_resumes(reference):
    identity = read_store(reference).attrs[S.ATTR_IDENTITY]
    old = read_store(reference).calculations
    with CampaignStore.open(reference, identity) as store:
        assert store.interrupt_running() == []
        row = store.add_attempt(7, 1, "gpaw-pbe-pw", 11, "retry")
        store.finish_attempt(row, CalculationRecord(candidate=7, attempt=1, preset="gpaw-pbe-pw", status="ok",
                                                    gap=0.5, kpts=(2, 2, 2), parameters=PBE))
    with CampaignStore.open(reference, identity) as store:  # a second resume: no migration any more
        store.finish_attempt(store.add_attempt(8, 1, "gpaw-pbe-pw", 12, "retry"), CalculationRecord(
            candidate=8, attempt=1, preset="gpaw-pbe-pw", status="failed", error="SCF did not converge"))
    data = read_store(reference)
    c = data.calculations
    assert row == 12 and data.n_calculations == 14
    for name in old:
        assert np.array_equal(c[name][:12], old[name], equal_nan=old[name].dtype.kind == "f"), name
    assert c["parameters"][12] != "" and data.parameters == {c["parameters"][12]: PBE}
    assert c["parameters"][13] == "" and c["status"][12:].tolist() == ["ok", "failed"]
    view = read_store(reference)
    assert view.parameters_of(12) == PBE and view.parameters_of(0) == {}
    assert json.loads(view.table()["parameters"][12]) == PBE
    assert view.records(columns="row,parameters", limit=None)[12]["parameters"] == PBE


def test_synthetic_v2_store_migrates(reference, tmp_path):
    """The same on a small version-2 file whose calculations have rows: the new columns are filled for them."""
    identity = read_store(reference).attrs[S.ATTR_IDENTITY]
    with CampaignStore.open(reference, identity) as store:
        store.finish_attempt(store.add_attempt(3, 1, "gpaw-pbe-pw", 0, "retry"), CalculationRecord(
            candidate=3, attempt=1, preset="gpaw-pbe-pw", status="ok", gap=0.4, parameters=PBE))
    with h5py.File(reference, "r+") as f:  # back to version 2, as an older activemat wrote it
        del f[S.PARAMETERS.path]
        for column in S.CALCULATIONS.columns:
            if column.since == 3:
                del f[S.CALCULATIONS.path_of(column.name)]
        f.attrs[S.ATTR_SCHEMA] = 2
    with CampaignStore.open(reference, identity):
        pass
    data = read_store(reference)
    assert data.attrs[S.ATTR_SCHEMA] == S.SCHEMA_VERSION and data.n_calculations == 13
    assert set(data.calculations["parameters"].tolist()) == {""} and data.parameters == {}
    assert math.isnan(data.calculations["ks_gap"][-1]) and data.calculations["gap"][-1] == 0.4


def test_v4_store_migrates_to_relaxation_columns_keeping_its_rows(reference):
    """Schema 6 added ranks and relaxation: a store without them gets them filled (unrelaxed), rows kept."""
    identity = read_store(reference).attrs[S.ATTR_IDENTITY]
    positions = np.arange(48, dtype=float).reshape(16, 3)
    with CampaignStore.open(reference, identity) as store:
        store.finish_attempt(store.add_attempt(3, 1, "gpaw-pbe-pw", 0, "retry"), CalculationRecord(
            candidate=3, attempt=1, preset="gpaw-pbe-pw", status="ok", gap=0.4, parameters=PBE, ranks=2,
            relax="positions", relax_steps=7, relax_fmax=0.01, unrelaxed_gap=0.5, positions=positions,
            cell=np.eye(3) * 10.0))
    data = read_store(reference)
    calc = data.calculations
    assert (calc["ranks"][-1], calc["relax"][-1], calc["relax_steps"][-1]) == (2, "positions", 7)
    assert np.array_equal(calc["positions"][-1], positions) and calc["cell"][-1][0, 0] == 10.0
    with h5py.File(reference, "r+") as f:  # back to version 4, as activemat before relaxation wrote it
        for column in S.CALCULATIONS.columns:
            if column.since >= 6:
                del f[S.CALCULATIONS.path_of(column.name)]
        f.attrs[S.ATTR_SCHEMA] = 4
    old = read_store(reference)  # readable as it is: the missing columns read as their fill
    assert np.isnan(old.calculations["positions"]).all() and set(old.calculations["relax"].tolist()) == {""}
    with CampaignStore.open(reference, identity):
        pass
    new = read_store(reference)
    assert new.attrs[S.ATTR_SCHEMA] == S.SCHEMA_VERSION and new.n_calculations == data.n_calculations
    assert new.calculations["positions"].shape == (data.n_calculations, 16, 3)
    assert (new.calculations["ranks"] == 0).all() and (new.calculations["relax_steps"] == -1).all()
    assert np.isnan(new.calculations["cell"]).all() and new.calculations["gap"][-1] == 0.4


def test_newer_store_still_refused(reference):
    with h5py.File(reference, "r+") as f:
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION + 1
    before = _sha(reference)
    for action in (lambda: read_store(reference),
                   lambda: CampaignStore.open(reference, "1d092257b858714a")):
        with pytest.raises(StoreError, match=f"schema {S.SCHEMA_VERSION + 1}, newer than this activemat's"):
            action()
    assert _sha(reference) == before


def test_failed_migration_leaves_the_store_and_no_temporary(reference, tmp_path, monkeypatch):
    identity = read_store(reference).attrs[S.ATTR_IDENTITY]
    before = _sha(reference)

    def broken(f):
        raise OSError("disk full")

    monkeypatch.setattr("activemat.store.migrate.add_missing", broken)
    with pytest.raises(StoreError, match="could not be copied to migrate it.*disk full.*unchanged"):
        CampaignStore.open(reference, identity)
    assert _sha(reference) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference-pbe.h5", "reference-pbe.h5.lock"]
    monkeypatch.undo()
    with CampaignStore.open(reference, identity):  # the lock was released: a later open migrates
        pass
    assert read_store(reference).attrs[S.ATTR_SCHEMA] == S.SCHEMA_VERSION
