"""Batched store writes (issue 19): many rows in one write and one flush, the same rows as one at a time."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from activemat.compute.records import CalculationRecord
from activemat.store import rows as rows_module
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import Attempt, CampaignStore
from tests.unit.test_store import CAMPAIGN, config, make_store, pool, presets  # noqa: F401  (fixtures)

PBE = {"xc": "PBE", "ecut": 300}
FAST = {"xc": "PBE", "ecut": 200}


def _records(n: int) -> list[CalculationRecord]:
    out = []
    for k in range(n):
        ok = k % 3 != 2
        out.append(CalculationRecord(
            candidate=k, attempt=k % 2, preset="gpaw-fast", status="ok" if ok else "failed",
            gap=0.1 * k if ok else float("nan"), energy=-60.0 - k, started=100.0 + k, finished=110.0 + 2 * k,
            host=f"node{k}", worker=f"w{k}", kpts=(k, 1, 2), direct=bool(k % 2), scf_iterations=k,
            error="" if ok else "SCF did not converge", parameters=PBE if k % 2 else FAST))
    return out


def _comparable(data):
    calc = dict(data.calculations)
    calc.pop("submitted")  # a time stamp: one per batch
    return calc, data.parameters


def test_batched_writes_give_the_same_rows_as_single_writes(make_store):
    records = _records(7)
    single = make_store("single.h5")
    rows = [single.add_attempt(r.candidate, r.attempt, "gpaw-fast", 3, "max_std", 0.5 * k)
            for k, r in enumerate(records)]
    for row, record in reversed(list(zip(rows, records))):  # finishing order does not matter
        single.finish_attempt(row, record)
    single.close()

    batched = make_store("batched.h5")
    rows = batched.add_attempts([Attempt(r.candidate, r.attempt, "gpaw-fast", 3, "max_std", 0.5 * k)
                                 for k, r in enumerate(records)])
    assert rows == list(range(7))
    batched.finish_attempts([(rows[k], records[k]) for k in (4, 0, 6)])  # results landing together, any order
    batched.finish_attempts([(rows[k], records[k]) for k in (1, 2, 3, 5)])
    batched.close()

    a, b = read_store(single.path), read_store(batched.path)
    calc_a, params_a = _comparable(a)
    calc_b, params_b = _comparable(b)
    assert calc_a.keys() == calc_b.keys()
    for name in calc_a:
        np.testing.assert_array_equal(calc_a[name], calc_b[name], err_msg=name)
    assert params_a == params_b and len(params_b) == 2
    assert calc_b["status"].tolist() == ["ok", "ok", "failed", "ok", "ok", "failed", "ok"]
    # the same file format: every column as the schema declares it, the row coordinate as long as the rows
    with h5py.File(batched.path, "r") as f:
        assert {f[S.CALCULATIONS.path_of(n)].shape[0] for n in S.CALCULATIONS.names} == {7}
        assert f[S.CALCULATIONS.path][S.CALCULATION][()].tolist() == list(range(7))


def test_a_batch_is_two_flushes_whatever_its_size(make_store, monkeypatch):
    """The rows (or results), then their statuses: a kill that tears a chunk mid-flush leaves no row whose status
    is on disk without its values (store/salvage.py)."""
    store = make_store()
    flushes = []
    real = store._f.flush
    monkeypatch.setattr(store._f, "flush", lambda: (flushes.append(1), real())[1])
    rows = store.add_attempts([Attempt(c, 0, "gpaw-fast", 0, "seed") for c in range(5)])
    assert len(flushes) == 2
    store.finish_attempts([(row, CalculationRecord(candidate=row, attempt=0, preset="gpaw-fast", status="ok",
                                                   gap=0.2)) for row in rows])
    assert len(flushes) == 4


def test_status_of_a_batch_is_written_after_all_its_results(make_store, monkeypatch):
    """A writer killed mid-batch leaves rows running (rerun on resume), never finished without results."""
    store = make_store()
    rows = store.add_attempts([Attempt(c, 0, "gpaw-fast", 0, "seed") for c in range(3)])
    seen = []
    real = rows_module.stored  # every value a write puts in a row goes through it, in the order written

    def spy(column, value):
        seen.append(column.name)
        return real(column, value)

    monkeypatch.setattr(rows_module, "stored", spy)
    store.finish_attempts([(row, CalculationRecord(candidate=row, attempt=0, preset="gpaw-fast", status="ok",
                                                   gap=0.2)) for row in rows])
    assert seen[-3:] == ["status"] * 3 and "status" not in seen[:-3]


def test_a_row_finished_twice_in_one_batch_is_refused(make_store):
    store = make_store()
    row = store.add_attempt(0, 0, "gpaw-fast", 0, "seed")
    record = CalculationRecord(candidate=0, attempt=0, preset="gpaw-fast", status="ok", gap=0.2)
    with pytest.raises(ValueError, match="twice"):
        store.finish_attempts([(row, record), (row, record)])


def test_swmr_reader_sees_a_batch_while_the_writer_is_open(make_store):
    store = make_store()
    rows = store.add_attempts([Attempt(c, 0, "gpaw-fast", 0, "seed") for c in range(4)])
    store.finish_attempts([(row, CalculationRecord(candidate=row, attempt=0, preset="gpaw-fast", status="ok",
                                                   gap=0.1 * row)) for row in rows[:2]])
    data = read_store(store.path)  # the writer is still open (SWMR)
    assert data.calculations["status"].tolist() == ["ok", "ok", "running", "running"]
    assert data.completed() == {0: 0.0, 1: pytest.approx(0.1)}
