"""Damage that used to be served as data (issue 29, item 4).

One flipped byte in gap row 0 changed 0.5958 to 0.000107 eV and ``query`` returned it with exit 0; a store whose
``calculations`` group was deleted read as "0 attempts", exit 0, on 4 of 5 read commands. Every dataset a new
store writes now carries HDF5's Fletcher-32 checksum (verified by HDF5 on every read), and a missing group is
refused: each read command exits 2 with one line naming the dataset or group, and never changes the file.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from activemat import cli
from activemat.campaign.config import parse_campaign
from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError
from activemat.space.pool import build_pool
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

pytestmark = pytest.mark.faults

CAMPAIGN = campaign_toml({}, name="damage", space={"supercell": [1, 1, 2], "mode": "configurations"},
                         calculator={"preset": "gpaw-fast"})
READ_COMMANDS = {
    "status": ["status", "{store}"],
    "query": ["query", "{store}"],
    "export": ["export", "{store}", "-o", "{tmp}/out.csv"],
    "predict": ["predict", "{store}", "Si2Ge2"],
    "inspect": ["inspect", "{store}"],
    "plot": ["plot", "{store}", "-o", "{tmp}/plots"],
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path) -> Path:
    """A new store with three finished calculations (gap row 0: 0.5958 eV)."""
    path = tmp_path / "c.h5"
    with CampaignStore.create(path, campaign_text=CAMPAIGN, identity=parse_campaign(CAMPAIGN).identity(),
                              pool=build_pool(supercell=(1, 1, 2)), presets={}) as s:
        for i in range(3):
            row = s.add_attempt(i, 0, "gpaw-fast", 0, "seed")
            s.finish_attempt(row, CalculationRecord(candidate=i, attempt=0, preset="gpaw-fast", status="ok",
                                                    gap=0.5958 + 0.1 * i, started=1.0, finished=2.0))
    return path


def flip(path: Path, dataset: str, byte: int = 1) -> None:
    """Flip one bit of the first chunk of ``dataset``, at ``byte`` into its data."""
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + byte)
        value = fh.read(1)[0]
        fh.seek(offset + byte)
        fh.write(bytes([value ^ 0x10]))


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_every_dataset_of_a_new_store_is_checksummed(store):
    unchecked = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.size and not obj.fletcher32:
            unchecked.append(name)

    with h5py.File(store, "r") as f:
        f.visititems(visit)
    assert unchecked == []


def test_tools_still_read_a_checksummed_store(store):
    if shutil.which("h5dump"):
        proc = subprocess.run(["h5dump", "-d", "/calculations/gap", str(store)], capture_output=True, text=True)
        assert proc.returncode == 0 and "0.5958" in proc.stdout, proc.stderr
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(store, group="calculations", engine="h5netcdf") as ds:
        assert float(ds["gap"][0]) == pytest.approx(0.5958)


@pytest.mark.parametrize("dataset", ["calculations/gap", "calculations/candidate", "candidates/features",
                                     "calculations/calculation"])
def test_a_flipped_byte_is_an_error_naming_the_dataset(store, dataset, capsys):
    assert read_store(store).calculations["gap"][0] == pytest.approx(0.5958)
    flip(store, dataset)
    before = sha(store)
    if dataset != "calculations/calculation":  # a coordinate is not read as data: HDF5 finds it when h5dump does
        with pytest.raises(StoreError) as exc:
            read_store(store)
        msg = str(exc.value)
        print("MESSAGE:", msg)
        assert "\n" not in msg and msg.startswith(f"{store} is damaged ({dataset}: its Fletcher-32 checksum"), msg
        code, lines = run_cli(["query", str(store)], capsys)
        assert code == 2 and len(lines) == 1 and lines[0] == f"activemat: error: {msg}", lines
    proc = subprocess.run(["h5dump", "-d", f"/{dataset}", str(store)], capture_output=True, text=True)
    assert proc.returncode != 0, "h5dump verifies the checksum too"
    assert sha(store) == before


def test_without_the_checksum_the_flip_was_a_number(tmp_path, monkeypatch):
    """The failure the checksum catches: the same flip in a store written without it reads as another gap."""
    from activemat.store import layout

    monkeypatch.setattr(layout, "CHECKSUM", False)
    path = tmp_path / "plain.h5"
    with CampaignStore.create(path, campaign_text=CAMPAIGN, identity=parse_campaign(CAMPAIGN).identity(),
                              pool=build_pool(supercell=(1, 1, 2)), presets={}) as s:
        row = s.add_attempt(0, 0, "gpaw-fast", 0, "seed")
        s.finish_attempt(row, CalculationRecord(candidate=0, attempt=0, preset="gpaw-fast", status="ok",
                                                gap=0.5958))
    flip(path, "calculations/gap", byte=6)
    gap = read_store(path).calculations["gap"][0]
    assert np.isfinite(gap) and gap != pytest.approx(0.5958)


@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
def test_a_missing_calculations_group_is_refused_by_every_read_command(store, tmp_path, command, capsys):
    with h5py.File(store, "r+") as f:
        del f["calculations"]
    before = sha(store)
    argv = [a.format(store=store, tmp=tmp_path) for a in READ_COMMANDS[command]]
    code, lines = run_cli(argv, capsys)
    print("MESSAGE:", lines)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (f"activemat: error: {store} is damaged (group 'calculations' missing); restore it from a"
                        " backup or start a new store path"), lines
    assert sha(store) == before


@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
def test_a_damaged_parent_attribute_is_one_line_never_a_traceback(store, tmp_path, command, capsys):
    """The root attribute ``parent`` (JSON) with damaged text: every read command (each reads the parent) says so
    in one line, exit 2, and never changes the file."""
    with h5py.File(store, "r+") as f:
        f.attrs["parent"] = '{"lattice": "diamond", "chemical_symbols": [["Si", "Ge"]'  # cut short
    before = sha(store)
    argv = [a.format(store=store, tmp=tmp_path) for a in READ_COMMANDS[command]]
    code, lines = run_cli(argv, capsys)
    print("MESSAGE:", code, lines)
    assert code == 2 and lines == [f"activemat: error: {store} is damaged (root attribute 'parent' is not a "
                                   "parent structure); restore it from a backup or start a new store path"], lines
    assert sha(store) == before
