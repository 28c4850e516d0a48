"""activemat.store.query and activemat.store.export on real stores written by the loop (ReplayOracle, no DFT)."""

from __future__ import annotations

import csv
import io
import json

import ase.io
import h5py
import numpy as np
import pytest

from activemat.store import schema as S
from activemat.errors import InputError
from activemat.store.export import export_store
from activemat.campaign.setup import build_campaign_pool
from activemat.campaign.stored import open_campaign
from activemat.compute.records import CalculationRecord
from activemat.store.write import CampaignStore
from activemat.analysis.tables import run_query
from activemat.store.query import parse_range
from activemat.store.read import read_store
from activemat.space.features import structure_features
from activemat.space.lattice import LATTICE_CONSTANTS
from test_query_stores import FAILING, stores


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


# -- ranges -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind, expected", [
    ("0.2:0.5", float, (0.2, 0.5)), ("0.2:", float, (0.2, None)), (":0.5", float, (None, 0.5)),
    ("4", int, (4, 4)), ("4:12", int, (4, 12)), ((1, 2), int, (1, 2)), (3, int, (3, 3)),
])
def test_parse_range(text, kind, expected):
    assert parse_range(text, "x", kind) == expected


@pytest.mark.parametrize("text, kind, message", [
    ("0.5:0.2", float, "empty range"), ("a:b", float, "must be numbers"), ("1.5:3", int, "must be integers"),
    ("1:2:3", float, "not a range"), (":", float, "not a range"), ("nan:1", float, "not be nan"),
])
def test_parse_range_rejects(text, kind, message):
    with pytest.raises(InputError, match=message):
        parse_range(text, "gap", kind)


# -- the table ----------------------------------------------------------------------------
def test_table_joins_each_row_with_its_candidate(store):
    view = read_store(store["configs"])
    pool = build_campaign_pool(open_campaign(view).config())
    t = view.table()
    calc = view.calculations
    assert len(t["row"]) == len(calc["candidate"]) > 10
    assert list(t["formula"]) == [pool.formula(c) for c in calc["candidate"]]
    np.testing.assert_array_equal(t["x_ge"], pool.x_b[calc["candidate"]])
    np.testing.assert_array_equal(t["multiplicity"], pool.multiplicity[calc["candidate"]])
    np.testing.assert_allclose(t["wall_time"], calc["finished"] - calc["started"])
    assert set(t["status"]) == {"ok", "failed"}
    assert set(t["candidate"][t["status"] == "failed"]) == set(FAILING)
    # the stored pool is the campaign's pool
    np.testing.assert_array_equal(view.pool().decorations, pool.decorations)
    np.testing.assert_array_equal(view.pool().features, pool.features)


def test_filters_match_manual_masks(store):
    view = read_store(store["configs"])
    t = view.table()
    ok = t["status"] == "ok"
    cases = [
        (dict(status="ok"), ok),
        (dict(status="failed,ok"), np.ones(len(ok), bool)),
        (dict(composition="Si16"), t["n_ge"] == 0),
        (dict(composition="Si8Ge8,Ge16"), np.isin(t["n_ge"], [8, 16])),
        (dict(n_b="4:8"), (t["n_ge"] >= 4) & (t["n_ge"] <= 8)),
        (dict(x_b="0.5:"), t["x_ge"] >= 0.5),
        (dict(gap="0.3:0.55"), ok & (t["gap"] >= 0.3) & (t["gap"] <= 0.55)),
        (dict(iteration=":2"), t["iteration"] <= 2),
        (dict(preset="gpaw-fast", status="ok", x_b=":0.5"), ok & (t["x_ge"] <= 0.5)),
    ]
    for filters, expected in cases:
        got = view.select(**filters)
        np.testing.assert_array_equal(got["row"], np.flatnonzero(expected), err_msg=str(filters))
    assert 0 < len(view.select(gap="0.3:0.55")["row"]) < ok.sum()


def test_sort_columns_and_limit(store):
    view = read_store(store["configs"])
    rows = view.select(sort="gap", reverse=True, limit=3, columns="formula,gap")
    assert list(rows) == ["formula", "gap"]
    gaps = view.select(status="ok")["gap"]
    np.testing.assert_allclose(rows["gap"], np.sort(gaps)[::-1][:3])
    rows = view.select(sort="gap")
    n_ok = int((rows["status"] == "ok").sum())
    assert 0 < n_ok < len(rows["gap"])
    assert not np.any(np.isnan(rows["gap"][:n_ok])) and np.all(np.isnan(rows["gap"][n_ok:]))  # missing last


@pytest.mark.parametrize("filters, message", [
    (dict(composition="Si4Ge13"), "17 atoms but the supercell has 16 sites"),
    (dict(composition="Si4Sn12"), "element 'Sn'"),
    (dict(composition="si4ge12"), "cannot parse formula"),
    (dict(status="done"), "unknown status done"),
    (dict(preset="gpaw-slow"), "preset gpaw-slow was not used"),
    (dict(gap="0.5:0.1"), "empty range"),
    (dict(x_b="a:"), "must be numbers"),
    (dict(columns="formula,nope"), "unknown column nope"),
    (dict(sort="nope"), "unknown column nope for --sort"),
    (dict(limit=-1), "--limit -1 is negative"),
])
def test_bad_filters_say_what_to_fix(store, filters, message):
    with pytest.raises(InputError, match=message):
        read_store(store["configs"]).select(**filters)


def test_missing_store_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="store not found"):
        read_store(tmp_path / "nope.h5")


# -- output -------------------------------------------------------------------------------
def test_csv_and_json_round_trip(store):
    view = read_store(store["configs"])
    out = io.StringIO()
    n = run_query(store["configs"], fmt="csv", file=out, status="ok")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert n == len(rows) == (view.table()["status"] == "ok").sum()
    assert set(rows[0]) >= {"candidate", "formula", "x_ge", "gap", "status", "error", "kpts"}
    expected = view.select(status="ok")
    np.testing.assert_array_equal([float(r["gap"]) for r in rows], expected["gap"])  # repr keeps every digit
    assert [r["formula"] for r in rows] == list(expected["formula"])

    out = io.StringIO()
    run_query(store["configs"], fmt="json", file=out, status="failed", columns="candidate,gap,error")
    records = json.loads(out.getvalue())
    assert records and all(r["gap"] is None and "no answer" in r["error"] for r in records)
    assert records == view.records(status="failed", columns="candidate,gap,error")


def test_table_output_is_readable(store):
    out = io.StringIO()
    run_query(store["configs"], file=out, composition="Si8Ge8,Ge16")
    text = out.getvalue()
    assert "gap (eV)" in text and "Si8Ge8" in text and "Ge16" in text
    total = read_store(store["configs"]).n_calculations
    n = len(read_store(store["configs"]).select(composition="Si8Ge8,Ge16")["row"])
    assert f"{n} of {total} calculations match" in text
    assert "error" in text  # failed rows exist, so the error column is shown


def test_empty_store_queries_to_nothing(store):
    for fmt in ("table", "csv", "json"):
        out = io.StringIO()
        assert run_query(store["empty"], fmt=fmt, file=out, status="ok") == 0
        if fmt == "json":
            assert json.loads(out.getvalue()) == []
        elif fmt == "csv":
            assert out.getvalue().startswith("row,candidate,formula") and len(out.getvalue().splitlines()) == 1
        else:
            assert "0 of 0 calculations match" in out.getvalue()


def test_query_on_1e5_rows(store, tmp_path):
    """A synthetic store with the schema's columns and 10^5 rows filters correctly (timing: benchmarks/)."""
    path = tmp_path / "big.h5"
    path.write_bytes(store["empty"].read_bytes())
    n = 100_000
    rng = np.random.default_rng(0)
    cand = rng.integers(0, 402, n)
    status = rng.choice(np.array([b"ok", b"failed", b"interrupted"]), n, p=[0.8, 0.15, 0.05])
    gap = np.where(status == b"ok", rng.uniform(0, 0.7, n), np.nan)
    iteration = np.arange(n, dtype="i4") // 2
    with h5py.File(path, "r+") as f:
        g = f[S.CALCULATIONS.path]
        for column in S.CALCULATIONS.columns:
            g[column.name].resize((n, *g[column.name].shape[1:]))
        g["candidate"][:] = cand
        g["status"][:] = status
        g["gap"][:] = gap
        g["iteration"][:] = iteration
        g["preset"][:] = np.full(n, b"gpaw-fast")
        g["reason"][:] = np.full(n, b"max_std")
    view = read_store(path)
    n_b = view.candidates["n_b"][cand]
    rows = view.select(status="ok", n_b="4:12", gap="0.1:0.3", iteration="1000:", columns="row")["row"]
    expected = [i for i in range(n) if status[i] == b"ok" and 4 <= n_b[i] <= 12 and 0.1 <= gap[i] <= 0.3
                and iteration[i] >= 1000]
    assert len(expected) > 1000
    np.testing.assert_array_equal(rows, expected)
    out = io.StringIO()
    assert run_query(path, fmt="csv", file=out, composition="Si8Ge8", status="ok") == np.sum(
        (n_b == 8) & (status == b"ok"))


# -- export --------------------------------------------------------------------------------
def test_export_extxyz_rebuilds_every_structure(store, tmp_path):
    view = read_store(store["configs"])
    out = tmp_path / "all.extxyz"
    assert export_store(store["configs"], out) == view.n_calculations
    frames = ase.io.read(out, ":")
    t = view.table()
    assert len(frames) == len(t["row"])
    a_si, a_ge = LATTICE_CONSTANTS["Si"], LATTICE_CONSTANTS["Ge"]
    for atoms, i in zip(frames, range(len(frames))):
        c = int(t["candidate"][i])
        assert atoms.info["candidate"] == c and atoms.info["status"] == t["status"][i]
        assert atoms.info["formula"] == t["formula"][i] and atoms.info["multiplicity"] == t["multiplicity"][i]
        # the structure is the candidate: same features, Vegard lattice (16 atoms, 8 per cubic cell)
        np.testing.assert_allclose(structure_features(atoms, ("Si", "Ge")), view.candidates["features"][c],
                                   atol=1e-12)
        a = (8 * atoms.get_volume() / len(atoms)) ** (1 / 3)
        x = t["x_ge"][i]
        assert a == pytest.approx((1 - x) * a_si + x * a_ge, rel=1e-9)
        if t["status"][i] == "ok":
            assert atoms.info["gap"] == pytest.approx(t["gap"][i], abs=1e-12)
        else:
            assert "gap" not in atoms.info and "no answer" in atoms.info["error"]
        assert atoms.calc is None  # the replay oracle reports no energy: none is invented


def test_export_filters_and_csv(store, tmp_path):
    out = tmp_path / "ok.xyz"
    n = export_store(store["configs"], out, status="ok", x_b=":0.5")
    frames = ase.io.read(out, ":")
    assert len(frames) == n > 0 and all(f.info["status"] == "ok" and f.info["x_ge"] <= 0.5 for f in frames)
    csv_path = tmp_path / "ok.csv"
    assert export_store(store["configs"], csv_path, status="ok", x_b=":0.5") == n
    expected = io.StringIO()
    run_query(store["configs"], fmt="csv", file=expected, status="ok", x_b=":0.5")
    assert csv_path.read_text() == expected.getvalue()


def test_export_of_empty_store_and_bad_targets(store, tmp_path):
    out = tmp_path / "none.extxyz"
    assert export_store(store["empty"], out) == 0 and out.read_text() == ""
    with pytest.raises(InputError, match="unknown file type .pdb"):
        export_store(store["configs"], tmp_path / "x.pdb")
    assert export_store(store["configs"], tmp_path / "missing" / "x.csv") > 0  # the folder is created, as run does
    assert not list(tmp_path.glob("*.part"))


# -- GPAW parameters ---------------------------------------------------------------------------
PBE = {"mode": {"name": "pw", "ecut": 300.0}, "xc": "PBE", "kpts": {"size": [2, 2, 2], "gamma": True}}
FAST = {**PBE, "mode": {"name": "pw", "ecut": 200.0}, "kpts": {"size": [1, 1, 1], "gamma": True}}


@pytest.fixture
def with_parameters(store, tmp_path):
    """A copy of the empty store with three finished calculations: two parameter sets and one not recorded."""
    path = tmp_path / "params.h5"
    path.write_bytes(store["empty"].read_bytes())
    identity = read_store(path).attrs[S.ATTR_IDENTITY]
    with CampaignStore.open(path, identity) as s:
        for cand, params in ((5, PBE), (9, FAST), (11, PBE), (12, {})):
            s.finish_attempt(s.add_attempt(cand, 0, "gpaw-fast", 0, "seed"), CalculationRecord(
                candidate=cand, attempt=0, preset="gpaw-fast", status="ok", gap=0.3, kpts=(2, 2, 2),
                parameters=params))
    return path


def test_parameters_column_and_accessor(with_parameters):
    view = read_store(with_parameters)
    t = view.table()
    assert [json.loads(p) if p else None for p in t["parameters"]] == [PBE, FAST, PBE, None]
    assert t["parameters"][0] == S.parameters_json(PBE)  # canonical JSON text in the table
    assert [view.parameters_of(r) for r in range(4)] == [PBE, FAST, PBE, {}]
    assert len(view.parameters) == 2
    rows = view.select(columns="candidate,parameters", sort="parameters")  # text: sortable
    assert list(rows["candidate"]) == [12, 9, 5, 11]  # "" first, then by JSON text (FAST has kpts [1, ...])


def test_parameters_in_json_csv_and_records(with_parameters):
    out = io.StringIO()
    run_query(with_parameters, fmt="json", file=out, columns="candidate,parameters")
    assert json.loads(out.getvalue()) == [{"candidate": 5, "parameters": PBE}, {"candidate": 9, "parameters": FAST},
                                          {"candidate": 11, "parameters": PBE}, {"candidate": 12, "parameters": None}]
    assert read_store(with_parameters).records(columns="candidate,parameters") == json.loads(out.getvalue())
    out = io.StringIO()
    run_query(with_parameters, fmt="csv", file=out, columns="candidate,parameters")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [json.loads(r["parameters"]) if r["parameters"] else None for r in rows] == [PBE, FAST, PBE, None]
    out = io.StringIO()
    run_query(with_parameters, file=out, columns="candidate,parameters")  # the rich table shows the text
    assert '"ecut":200.0' in out.getvalue().replace("\n", "").replace(" ", "").replace("│", "")


def test_export_keeps_the_parameters(with_parameters, tmp_path):
    out = tmp_path / "p.extxyz"
    assert export_store(with_parameters, out) == 4
    frames = ase.io.read(out, ":")
    assert [json.loads(f.info["parameters"]) if "parameters" in f.info else None for f in frames] == \
           [PBE, FAST, PBE, None]


def test_doctests():
    import doctest

    from activemat.store import query

    assert doctest.testmod(query).failed == 0
