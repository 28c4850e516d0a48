"""The rough edges of issue 28, each as a user met it: the gap curve's table, ``--curve Si8Ge8``, ``status`` of a
campaign file, ``export`` into a missing folder, times in CSV/JSON, and which bowing fit was used.

Stores are written by the real loop with a ReplayOracle (no DFT), as in test_query_stores.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import hashlib
import io
import json

import numpy as np
import pytest
from test_query_stores import _run, campaign_text, stores

from activemat.analysis.curve import fit_bowing, gap_curve, render
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import build_campaign_pool
from activemat.cli import main
from activemat.store.read import read_store
from activemat.store.timestamps import TIME_COLUMNS, iso_utc, with_iso_times
from tests.conftest import cli, one_line_error, synthetic_gaps


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A GP store whose end members were computed (the space-filling seeds start with Si16 and Ge16)."""
    from distributed import Client, LocalCluster

    from activemat.compute.oracle import ReplayOracle

    path = tmp_path_factory.mktemp("whole") / "whole.h5"
    text = campaign_text("whole", path, budget=8)
    gaps = synthetic_gaps(build_campaign_pool(parse_campaign(text)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        _run(client, text, ReplayOracle(gaps, delay=0.0))
    return path, gaps


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _headers(text: str) -> list[str]:
    """Column headers of the first rich table in ``text`` (its header row)."""
    header = next(line for line in text.splitlines() if "formula" in line and "┃" in line)
    return [cell.strip() for cell in header.strip().strip("┃").split("┃")]


# -- predict --curve: every column labelled ----------------------------------------------------------

def test_curve_table_has_no_unlabelled_column(store, whole):
    # Si16 and Ge16 failed in the configs store: the end compositions are extrapolated, and a labelled column says so
    code, out, err = cli("predict", store["configs"], "--curve")
    assert code == 0, err
    headers = _headers(out)
    assert all(headers) and headers[-1] == "extrapolated", headers
    rows = [line for line in out.splitlines() if line.startswith("│") and ("Si16" in line or "Si8Ge8" in line)]
    assert "yes" in rows[0] and "yes" not in rows[1], rows
    assert "extrapolated: x outside the range of the computed compositions" in " ".join(out.split())
    # every composition inside the data: no such column at all
    code, out, err = cli("predict", whole[0], "--curve")
    assert code == 0 and all(_headers(out)) and "extrapolated" not in _headers(out), out


def test_curve_with_a_composition_says_how_to_predict_it(store):
    before = _sha(store["configs"])
    for args in (["--curve", "Si8Ge8"], ["Si8Ge8", "--curve"]):
        line = one_line_error(*cli("predict", store["configs"], *args)[::2])
        assert "--curve prints the whole composition curve" in line and "unrecognized" not in line, line
        assert f"activemat predict {store['configs']} Si8Ge8" in line, line
    # compositions after options are compositions, also without --curve
    code, out, err = cli("predict", store["configs"], "--json", "Si8Ge8")
    assert code == 0 and json.loads(out)["predictions"][0]["spec"] == "Si8Ge8", err
    assert _sha(store["configs"]) == before
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:  # unknown options are still argparse's
        main(["predict", str(store["configs"]), "--no-such-option"])
    assert exc.value.code == 2 and "unrecognized arguments: --no-such-option" in err.getvalue()


# -- status of a campaign file -------------------------------------------------------------------------

def test_status_of_a_campaign_file_names_its_store(tmp_path, campaign_file):
    campaign = campaign_file("demo.toml", {}, name="demo", store="runs/demo.h5", stop={"budget": 3})
    for verb in ("status", "query", "inspect"):
        line = one_line_error(*cli(verb, campaign)[::2])
        assert f"{campaign} is a campaign file, not a store: give the store it writes, runs/demo.h5" in line, line
        assert "corrupt" not in line and "backup" not in line
    bare = tmp_path / "bare.toml"  # no [campaign] store: the dry run prints the default
    bare.write_text("[stop]\nbudget = 3\n")
    line = one_line_error(*cli("status", bare)[::2])
    assert "is a campaign file, not a store" in line and f"activemat run --dry-run {bare}" in line
    junk = tmp_path / "junk.h5"  # anything else is still a damaged store
    junk.write_bytes(b"\x00not hdf5" * 10)
    assert "may be truncated or corrupt" in one_line_error(*cli("status", junk)[::2])


# -- export into a missing folder, as run creates its store's ----------------------------------------

def test_export_creates_the_missing_folder(store, tmp_path):
    out = tmp_path / "missing" / "deeper" / "x.csv"
    code, _, err = cli("export", store["configs"], "-o", out, "--status", "ok")
    assert code == 0 and out.is_file() and f"to {out}" in err
    assert not list(out.parent.glob("*.part"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line_error(*cli("export", store["configs"], "-o", blocker / "x.csv")[::2])
    assert f"cannot create folder {blocker}" in line


# -- times: ISO 8601 in UTC, Unix seconds beside them ---------------------------------------------------

def test_csv_and_json_times_are_iso_utc_with_unix_seconds(store, tmp_path):
    view = read_store(store["configs"])
    seconds = view.table()["submitted"]
    code, out, _ = cli("query", store["configs"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    header = list(rows[0])
    for name in TIME_COLUMNS:
        assert header.index(f"{name}_unix") == header.index(name) + 1
    for row, unix in zip(rows, seconds.tolist()):
        parsed = datetime.datetime.fromisoformat(row["submitted"])
        assert parsed.tzinfo == datetime.timezone.utc and row["submitted"].endswith("+00:00")
        assert float(row["submitted_unix"]) == unix  # full precision
        assert abs(parsed.timestamp() - unix) < 1e-3
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["finished"] and r["finished_unix"] for r in failed)

    code, out, _ = cli("query", store["configs"], "--format", "json")
    records = json.loads(out)
    assert [r["submitted_unix"] for r in records] == seconds.tolist()
    assert [r["submitted"] for r in records] == [iso_utc(s) for s in seconds.tolist()]

    # asked for by name: either form, and sorting by the seconds
    code, out, _ = cli("query", store["configs"], "--format", "json", "--columns", "row,started_unix,started",
                       "--sort", "started_unix")
    picked = json.loads(out)
    assert list(picked[0]) == ["row", "started_unix", "started"]
    starts = [r["started_unix"] for r in picked if r["started_unix"] is not None]
    assert starts == sorted(starts)
    code, out, _ = cli("query", store["configs"], "--columns", "row,submitted")  # the rich table: ISO, labelled UTC
    assert "submitted (UTC)" in out and "T" in out and "+00:00" in out

    export = tmp_path / "all.csv"  # export writes the same CSV
    assert cli("export", store["configs"], "-o", export)[0] == 0
    assert export.read_text() == cli("query", store["configs"], "--format", "csv")[1]


def test_a_time_never_recorded_is_empty_in_both_forms():
    table = {"row": np.arange(2), "submitted": np.array([1.7e9, 1.7e9]), "finished": np.array([1.7e9 + 5, np.nan])}
    out = with_iso_times(table)
    assert list(out) == ["row", "submitted", "submitted_unix", "finished", "finished_unix"]
    assert out["finished"].tolist() == ["2023-11-14T22:13:25.000+00:00", None]
    assert with_iso_times(out).keys() == out.keys()  # written once, never twice


# -- the bowing fit: free or fixed to the computed end members, and said which ---------------------------

def test_bowing_with_fixed_ends_uses_the_computed_end_members(whole):
    path, gaps = whole
    free = gap_curve(path)
    fixed = gap_curve(path, bowing="fixed-ends")
    assert free["bowing"]["ends"] == "free" and fixed["bowing"]["ends"] == "fixed"
    si, ge = gaps[0], gaps[401]  # Si16 and Ge16, computed by the seeds
    assert fixed["bowing"]["computed"] == {"Si16": pytest.approx(si), "Ge16": pytest.approx(ge)}
    assert fixed["bowing"]["E_Si"] == pytest.approx(si) and fixed["bowing"]["E_Ge"] == pytest.approx(ge)
    assert fixed["bowing"]["E_Si_std"] is None and fixed["bowing"]["b_std"] > 0
    assert free["bowing"]["E_Si_std"] > 0 and free["bowing"]["computed"] == fixed["bowing"]["computed"]
    # b from the mean curve with the ends fixed: least squares of the rest on -x(1-x)
    rows = fixed["compositions"]
    x = np.array([r["x"] for r in rows])
    rest = np.array([r["mean"] for r in rows]) - (1 - x) * si - x * ge
    assert fixed["bowing"]["b_fit_of_mean"] == pytest.approx(np.linalg.lstsq(-(x * (1 - x))[:, None], rest,
                                                                             rcond=None)[0][0])

    code, out, err = cli("predict", path, "--curve", "--bowing", "fixed-ends")
    text = " ".join(out.split())
    assert code == 0 and f"end points fixed to the computed end members Si16 ({si:.4f} eV) and Ge16" in text, err
    assert "(computed)" in text
    code, out, _ = cli("predict", path, "--curve")
    text = " ".join(out.split())
    assert "end points free: E_Si, E_Ge and b fitted together" in text
    assert f"computed end members: Si16 {si:.4f} eV, Ge16 {ge:.4f} eV" in text and "--bowing fixed-ends" in text
    code, out, _ = cli("predict", path, "--curve", "--bowing", "fixed-ends", "--json")
    assert json.loads(out)["bowing"]["ends"] == "fixed"


def test_fixed_ends_need_computed_end_members(store):
    line = one_line_error(*cli("predict", store["configs"], "--curve", "--bowing", "fixed-ends")[::2])
    assert "Si16 and Ge16 have no result" in line and "--bowing free" in line
    line = one_line_error(*cli("predict", store["configs"], "Si8Ge8", "--bowing", "fixed-ends")[::2])
    assert "add --curve" in line


def test_fit_bowing_with_fixed_ends_on_an_exact_curve():
    x = np.linspace(0, 1, 9)
    curve = (1 - x) * 1.1 + x * 0.7 - 0.3 * x * (1 - x)
    fit = fit_bowing(x, curve, None, ends=(1.1, 0.7))
    assert fit["b"] == pytest.approx(0.3) and fit["residual_rms"] == pytest.approx(0, abs=1e-12)
    # wrong ends: b absorbs what it can, and the residual shows the rest
    off = fit_bowing(x, curve, None, ends=(1.2, 0.7))
    assert off["E_A"] == 1.2 and off["residual_rms"] > 0.01
    cov = 1e-4 * np.exp(-np.subtract.outer(x, x) ** 2 / 0.1)
    sampled = fit_bowing(x, curve, cov, ends=(1.1, 0.7), n_samples=20000, seed=1)
    p = np.linalg.pinv(-(x * (1 - x))[:, None])[0]
    assert sampled["b_std"] == pytest.approx(np.sqrt(p @ cov @ p), rel=0.05) and sampled["E_A_std"] is None


def test_render_names_the_fit(whole):
    out = io.StringIO()
    render(gap_curve(whole[0], bowing="fixed-ends"), file=out)
    assert "b alone fitted" in " ".join(out.getvalue().split())
