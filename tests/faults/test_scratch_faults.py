"""A full scratch disk is an infrastructure fault, not a calculation failure (issue 29, item 1).

The scratch folder sits on a small tmpfs that fills up mid-campaign (or is full from the start). The attempts it
stops are booked as ``infrastructure fault: ...`` rows that count against no candidate: nothing is given up, the
run stops submitting and names the full disk and the fix, and a resume after freeing space retries every
affected candidate (the seeds Si16 and Ge16 among them). Answers come from a ReplayOracle (named fake) that
writes a GPAW-sized log into each attempt's scratch folder, so the disk refuses it as it would refuse GPAW.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.faults import INFRASTRUCTURE
from activemat.compute.oracle import ReplayOracle
from activemat.store import schema as S
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps
from tests.faults.drivers import completed, reap, start_driver
from tests.faults.test_disk_faults import fill, small_fs  # noqa: F401  (small_fs: the tmpfs fixture)

pytestmark = pytest.mark.faults

KiB = 1024
STORE = "runs/scratch.h5"


def _run(client, scratch: Path, budget: int):
    text = campaign_toml(store=STORE, seed=2, scratch=scratch, stop={"budget": budget})
    config = parse_campaign(text)
    pool = build_campaign_pool(config)
    oracle = ReplayOracle(synthetic_gaps(pool), delay=0.2, scratch_bytes=64 * KiB)
    out = io.StringIO()
    summary = run_campaign(config, text, client=client, report=Reporter(budget, Console(file=out, width=400)),
                           task=oracle)
    return summary, out.getvalue(), pool


def _fill_after(scratch: Path, store: Path, results: int) -> threading.Thread:
    """Fill the scratch file system once the store holds ``results`` completed calculations."""
    def filler():
        end = time.time() + 120
        while time.time() < end and len(completed(store)) < results:
            time.sleep(0.05)
        fill(scratch, leave=0)

    thread = threading.Thread(target=filler)
    thread.start()
    return thread


@pytest.mark.parametrize("results", [0, 3], ids=["full-from-start", "fills-mid-campaign"])
def test_full_scratch_disk_gives_up_nothing_and_resume_retries(small_fs, in_tmp, client, results):
    scratch = small_fs(2 * 1024, in_tmp / "scratch")
    store = in_tmp / STORE
    if results:
        filler = _fill_after(scratch, store, results)
    else:
        fill(scratch, leave=0)
    summary, log, pool = _run(client, scratch, budget=12)
    if results:
        filler.join()
    print(log[-1500:])
    calc = read_store(store).calculations
    faulted = calc["status"] == S.FAILED
    assert faulted.any(), "the full disk stopped no attempt"
    # every failed attempt is a fault naming the disk and the fix, none a calculation failure or a lost worker
    for error in calc["error"][faulted]:
        assert error.startswith(f"{INFRASTRUCTURE}: no space left on device (errno 28) "), error
        assert f"{scratch}/cand" in error and "free space there" in error, error
    # the run stopped at once: a few faulted attempts (those already submitted), not hundreds
    assert faulted.sum() <= 6, calc["error"][faulted]
    assert summary["given_up"] == 0 and summary["completed"] < 12
    assert summary["fault"].startswith(f"{INFRASTRUCTURE}: no space left on device") and "resume" in summary["fault"]
    assert summary["to_retry"] == len(set(calc["candidate"][faulted]) - set(calc["candidate"][~faulted & (calc["status"] == S.OK)]))
    closing = [line for line in log.splitlines() if line.startswith("stopped: ")]
    assert len(closing) == 1 and "no space left on device" in closing[0] and "0 given up" in closing[0], log
    if not results:  # the first picks are the seeds: the end members among them
        assert {0, 16} <= set(pool.n_b[calc["candidate"][faulted]])
    hit = set(calc["candidate"][faulted].tolist())

    (scratch / "filler").unlink()
    summary, log, _ = _run(client, scratch, budget=12)
    calc = read_store(store).calculations
    ok = calc["status"] == S.OK
    assert summary["completed"] == 12 and summary["given_up"] == 0 and "fault" not in summary, log[-2000:]
    assert hit <= set(calc["candidate"][ok].tolist()), "a candidate the fault stopped was not retried"
    assert len(set(calc["candidate"][ok].tolist())) == ok.sum() == 12
    # the retries ran with the same settings: the disk was no reason for the preset's fallbacks
    for cand in hit:
        rows = (calc["candidate"] == cand) & ok
        assert calc["fallback"][rows].tolist() == [0] and calc["reason"][rows].tolist()[0] in ("retry", "test")
    # successful attempts leave no scratch behind; faulted ones keep theirs (a relaxation resumes from it)
    kept = {f"cand{c:06d}-try{a}" for c, a in zip(calc["candidate"][~ok], calc["attempt"][~ok])}
    assert {p.name for p in scratch.iterdir()} == kept


def test_a_driver_stops_on_a_full_scratch_disk_with_one_line(small_fs, tmp_path):
    """A real driver process with worker processes: exit 2 and one line naming the disk; then a resume."""
    scratch = small_fs(2 * 1024, tmp_path / "runs" / "faults.h5.scratch")  # the default scratch folder
    fill(scratch, leave=0)
    proc = start_driver(tmp_path, budget=6, delay=0.05, scratch_bytes=64 * KiB)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        reap(proc)
    print(err[-3000:])
    assert proc.returncode == 2, err[-3000:]
    lines = err.rstrip("\n").splitlines()
    assert lines[-1].startswith("activemat: error: infrastructure fault: no space left on device (errno 28) ")
    assert f"{scratch.resolve()}/cand" in lines[-1] and "free space there, then resume" in lines[-1], lines[-1]
    assert sum(line.startswith("activemat: error:") for line in lines) == 1
    assert "Traceback" not in err and not any(" - ERROR - " in line for line in lines), err[-3000:]  # Dask's: its log
    calc = read_store(tmp_path / "runs" / "faults.h5").calculations
    assert (calc["status"] != S.OK).all() and len(calc["candidate"]) <= 4
    (scratch / "filler").unlink()
    proc = start_driver(tmp_path, budget=6, delay=0.05, scratch_bytes=64 * KiB)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        reap(proc)
    assert proc.returncode == 0, err[-3000:]
    done = completed(tmp_path / "runs" / "faults.h5")
    assert len(done) == 6 == len(set(done))
    assert np.isin(np.unique(calc["candidate"]), done).all()


@pytest.mark.gpaw
def test_real_gpaw_on_a_full_scratch_disk_is_a_fault_not_a_failure(small_fs, tmp_path):
    """GPAW itself on a full scratch file system: its log cannot be written, and neither can error.txt (which
    once escaped compute_gap's own handler, booked as a lost worker). The task returns a fault record."""
    pytest.importorskip("gpaw")
    from ase.build import bulk

    from activemat.compute.bandgap import compute_gap
    from activemat.compute.presets import load_preset

    scratch = small_fs(512, tmp_path / "scratch")
    fill(scratch, leave=0)
    record = compute_gap(3, 0, bulk("Si", "diamond", a=5.431), load_preset("gpaw-fast"), str(scratch / "c"))
    assert record.status == "failed"
    assert record.error.startswith(f"{INFRASTRUCTURE}: no space left on device (errno 28) "), record.error
    assert f"{scratch}/c/cand000003-try0" in record.error and record.wall_time < 60
    (scratch / "filler").unlink()
    record = compute_gap(3, 1, bulk("Si", "diamond", a=5.431), load_preset("gpaw-fast"), str(scratch / "c"))
    assert record.ok, record.error
