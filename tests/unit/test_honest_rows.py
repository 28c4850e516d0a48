"""A calculation without a result shows no result: empty values, never the store's fill values as data.

The store fills a row with -1 SCF iterations, a 0x0x0 k-point grid, direct = 0 and fallback 0 until its
result arrives; the table, JSON, CSV and extended XYZ must show those as empty (None, null, blank, a key
left out), and ``status`` must count an attempt as interrupted only while no later attempt exists.
"""

from __future__ import annotations

import csv
import io
import json

import ase.io
import numpy as np
import pytest

from activemat.analysis.tables import run_query, write_rows
from activemat.campaign.config import parse_campaign
from activemat.campaign.stored import open_campaign
from activemat.compute.presets import load_preset
from activemat.compute.records import CalculationRecord
from activemat.space.pool import build_pool
from activemat.store.export import export_store
from activemat.store.read import read_store
from activemat.store.status import summarize
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

CAMPAIGN = campaign_toml({}, name="rows", space={"supercell": [1, 1, 2]}, calculator={"preset": "gpaw-fast"})
OK, FAILED, INTERRUPTED, RETRIED, RUNNING = range(5)  # the rows of the store below


@pytest.fixture
def store(tmp_path):
    """Rows: 0 ok; 1 failed before GPAW ran; 2 interrupted, then 3 its successful retry; 4 interrupted and never
    retried (the driver stopped: a running row of a dead driver)."""
    pool = build_pool(supercell=(1, 1, 2))
    path = tmp_path / "rows.h5"
    with CampaignStore.create(path, campaign_text=CAMPAIGN, identity=parse_campaign(CAMPAIGN).identity(),
                              pool=pool, presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")}) as s:
        s.finish_attempt(s.add_attempt(0, 0, "gpaw-fast", 0, "seed"), CalculationRecord(
            0, 0, "gpaw-fast", "ok", gap=0.6, direct=True, scf_iterations=14, kpts=(2, 2, 2), started=1.7e9,
            finished=1.7e9 + 9, parameters={"xc": "PBE"}))
        s.finish_attempt(s.add_attempt(1, 0, "gpaw-fast", 0, "seed"), CalculationRecord(
            1, 0, "gpaw-fast", "failed", error="worker lost: killed"))
        s.mark_interrupted([s.add_attempt(2, 0, "gpaw-fast", 1, "max_std")])
        s.finish_attempt(s.add_attempt(2, 1, "gpaw-fast", 1, "retry"), CalculationRecord(
            2, 1, "gpaw-fast", "ok", gap=0.4, direct=False, scf_iterations=11, kpts=(2, 2, 2), fallback=1,
            started=1.7e9, finished=1.7e9 + 8, parameters={"xc": "PBE"}))
        s.add_attempt(3, 0, "gpaw-fast", 2, "max_std")  # left running: the driver is gone once the store closes
    return path


def test_rows_without_a_result_show_empty_values_in_the_table(store):
    t = read_store(store).table()
    assert t["kpts"].tolist() == ["2x2x2", None, None, "2x2x2", None]
    assert t["scf_iterations"].tolist() == [14, None, None, 11, None]
    assert t["direct"].tolist() == [True, None, None, False, None]  # never "indirect" for a gap never computed
    assert t["fallback"].tolist() == [0, 0, None, 1, None]  # the failed attempt did run, as written
    out = io.StringIO()
    run_query(store, columns="row,status,direct,scf_iterations,kpts", file=out)
    lines = [line for line in out.getvalue().splitlines() if "interrupted" in line]
    assert lines and all("no" not in line and "-1" not in line and "0x0x0" not in line for line in lines)
    assert "-" in lines[0]


def test_json_and_csv_give_null_and_blank(store):
    out = io.StringIO()
    run_query(store, fmt="json", file=out)
    records = json.loads(out.getvalue())
    for r in records[1:3] + records[4:]:
        assert r["kpts"] is None and r["scf_iterations"] is None and r["direct"] is None, r
    assert records[0]["direct"] is True and records[0]["kpts"] == "2x2x2" and records[0]["scf_iterations"] == 14
    out = io.StringIO()
    run_query(store, fmt="csv", file=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    for r in rows[1:3] + rows[4:]:
        assert r["kpts"] == r["scf_iterations"] == r["direct"] == "", r
    assert rows[3]["direct"] == "0" and rows[0]["direct"] == "1"


def test_extxyz_leaves_missing_values_out(store, tmp_path):
    export_store(store, tmp_path / "all.extxyz")
    frames = ase.io.read(tmp_path / "all.extxyz", ":")
    for i in (FAILED, INTERRUPTED, RUNNING):
        assert not {"kpts", "scf_iterations", "direct"} & set(frames[i].info), frames[i].info
    assert frames[OK].info["direct"] is True and frames[OK].info["scf_iterations"] == 14
    assert frames[RETRIED].info["direct"] is False and frames[RETRIED].info["kpts"] == "2x2x2"


def test_sorting_puts_missing_values_last(store):
    rows = read_store(store).select(columns="row,scf_iterations", sort="scf_iterations")
    assert rows["scf_iterations"].tolist() == [11, 14, None, None, None]
    rows = read_store(store).select(columns="row,scf_iterations", sort="scf_iterations", reverse=True)
    assert rows["scf_iterations"].tolist()[:2] == [14, 11]
    out = io.StringIO()
    write_rows(rows, "table", out)
    assert "None" not in out.getvalue()


def test_status_counts_an_interrupted_attempt_only_until_it_is_retried(store):
    summary = summarize(read_store(store))
    # row 2 was retried (row 3, ok); only the dead driver's running row 4 is still interrupted
    assert summary["interrupted"] == 1 and summary["running"] == 0
    assert open_campaign(store).status()["interrupted"] == 1
    view = read_store(store)
    status = view.calculations["status"]
    assert np.sum(status == "interrupted") == 1  # the store itself keeps the interrupted row as it was
