"""A second campaign driver that reaches a live store through another name (a symlink or a hard link) is
refused with one line, and the first driver loses nothing (real driver processes, ReplayOracle for DFT)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from activemat.store.read import read_store
from tests.faults import drivers
from tests.faults.drivers import completed, reap, reported, wait_for

pytestmark = pytest.mark.faults

BUDGET = 24
# seconds per replayed result of the first driver: it must outlive the second driver's start-up, which took over
# 12 s (24 results at 1 s on 2 workers) at load 6
FIRST_DELAY = 3.0


def start_driver(root: Path, name: str, store: str, budget: int, delay: float) -> subprocess.Popen:
    return drivers.start_driver(root, budget=budget, delay=delay, store=store, name=name)


def refused_while_first_runs(root: Path, first: subprocess.Popen, real: Path, second_store: str) -> str:
    """Start a second driver on `second_store` while `first` writes `real`; return its one error line."""
    assert wait_for(lambda: real.exists() and len(completed(real)) >= 2), "the first driver never got going"
    second = start_driver(root, "second.toml", second_store, BUDGET, 0.05)
    _, err = second.communicate(timeout=120)
    assert first.poll() is None, "the first driver finished before the second one tried: the test proves nothing"
    assert second.returncode == 2, f"second driver not refused (rc {second.returncode}): {err[-3000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("activemat: error: "), err
    print("MESSAGE:", lines[0])
    return lines[0]


def first_finishes_with_nothing_lost(first: subprocess.Popen, real: Path) -> None:
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    done = reported(err)
    assert len(done) == BUDGET, err[-3000:]
    stored = completed(real)
    assert sorted(stored) == sorted(done), "a result the first driver reported is missing from the store"
    assert len(stored) == len(set(stored)) == BUDGET
    assert "running" not in set(read_store(real).calculations["status"])
    leftovers = [p.name for p in real.parent.iterdir() if p.suffix in (".rewrite", ".new")]
    assert not leftovers


def test_second_driver_through_a_symlink_is_refused_and_nothing_is_lost(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    link, real = runs / "link.h5", runs / "real.h5"
    link.symlink_to("real.h5")  # dangling until the first driver creates the store through it
    first = start_driver(tmp_path, "first.toml", "runs/link.h5", BUDGET, FIRST_DELAY)
    try:
        assert wait_for(lambda: real.exists() or not link.is_symlink()), "no store appeared"
        assert link.is_symlink(), "creating the store through the symlink replaced the link by a regular file"
        line = refused_while_first_runs(tmp_path, first, real, "runs/real.h5")
        assert "runs/real.h5" in line and "in use" in line and "link.h5" in line, line
        assert link.is_symlink() and os.readlink(link) == "real.h5"
        first_finishes_with_nothing_lost(first, real)
    finally:
        reap(first)
    assert link.is_symlink() and os.readlink(link) == "real.h5"


def test_second_driver_through_a_hard_link_is_refused_and_nothing_is_lost(tmp_path):
    runs = tmp_path / "runs"
    real, hard = runs / "real.h5", runs / "hard.h5"
    first = start_driver(tmp_path, "first.toml", "runs/real.h5", BUDGET, FIRST_DELAY)
    try:
        assert wait_for(lambda: real.exists())
        hard.hardlink_to(real)
        line = refused_while_first_runs(tmp_path, first, real, "runs/hard.h5")
        assert "runs/hard.h5" in line and "in use" in line, line
        assert hard.stat().st_ino == real.stat().st_ino
        first_finishes_with_nothing_lost(first, real)
    finally:
        reap(first)
    assert hard.stat().st_ino == real.stat().st_ino and real.stat().st_nlink == 2
