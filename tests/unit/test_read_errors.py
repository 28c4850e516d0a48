"""Every read verb opens a store one way (``read_store``), so each refuses a bad store the same way.

A missing, corrupt, truncated or newer-schema store is refused by ``status``,
``query``, ``export``, ``predict``, ``inspect`` and ``plot`` with one line on
standard error and exit code 2, and the store's folder is left as it was:
nothing written, locked or created beside it. ``activemat.Store`` raises the
same one-line StoreError.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import activemat
from activemat.cli import main
from activemat.errors import StoreError
from activemat.store import schema as S

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "reference-pbe.h5"

VERBS = {
    "status": lambda store, out: ["status", store],
    "status --json": lambda store, out: ["status", store, "--json"],
    "query": lambda store, out: ["query", store],
    "query --format json": lambda store, out: ["query", store, "--format", "json"],
    "export": lambda store, out: ["export", store, "-o", str(out / "rows.csv")],
    "predict": lambda store, out: ["predict", store, "Si8Ge8"],
    "predict --curve": lambda store, out: ["predict", store, "--curve"],
    "inspect": lambda store, out: ["inspect", store],
    "plot": lambda store, out: ["plot", store, "-o", str(out / "figures")],
}


def _missing(folder: Path) -> Path:
    return folder / "absent.h5"


def _noise(folder: Path) -> Path:
    path = folder / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    return path


def _truncated(folder: Path) -> Path:
    path = folder / "truncated.h5"
    path.write_bytes(REFERENCE.read_bytes()[: REFERENCE.stat().st_size // 2])
    return path


def _newer(folder: Path) -> Path:
    path = folder / "newer.h5"
    shutil.copy(REFERENCE, path)
    with h5py.File(path, "r+") as f:
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION + 1
    return path


STORES = {
    "missing": (_missing, "store not found: {path}"),
    "random bytes": (_noise, "{path} is not a readable HDF5 store"),
    "truncated": (_truncated, "{path} is not a readable HDF5 store"),
    "newer schema": (_newer, f"{{path}} has store schema {S.SCHEMA_VERSION + 1}, newer than this activemat's"),
}


def _folder_state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in the folder: its content hash and modification time."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.parametrize("kind", list(STORES))
@pytest.mark.parametrize("verb", list(VERBS))
def test_read_verbs_refuse_a_bad_store_in_one_line(tmp_path, capsys, verb, kind):
    folder, out = tmp_path / "runs", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    make, message = STORES[kind]
    path = make(folder)
    before = _folder_state(folder)
    assert main(VERBS[verb](str(path), out)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("activemat: error: ") and message.format(path=path) in lines[0]
    assert captured.out == ""
    assert _folder_state(folder) == before  # the store untouched, nothing created beside it
    assert not list(out.rglob("*.*"))  # no output written


@pytest.mark.parametrize("kind", list(STORES))
def test_the_python_api_refuses_a_bad_store_the_same_way(tmp_path, kind):
    make, message = STORES[kind]
    path = make(tmp_path)
    before = _folder_state(tmp_path)
    with pytest.raises(StoreError) as exc:
        activemat.Store(path)
    assert message.format(path=path) in str(exc.value) and "\n" not in str(exc.value)
    assert _folder_state(tmp_path) == before
