"""An I/O error at every Nth write to the store (issue 29, item 8): one line, exit 2, and the store resumes.

The faults are real: ``strace`` injects ``EIO`` into every Nth ``pwrite``/``write`` system call on the store's
path (``-P``), as a failing disk returns it, into an unmodified Python running the writer or a whole campaign
driver. HDF5 could then neither flush nor close the file, and freeing its objects afterwards crashed the process
(exit 139, a segmentation fault after the one-line error). Every row the writer reported written must be in
the store after a resume, once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from activemat.campaign.config import parse_campaign
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml
from tests.faults.drivers import REPO, STORE, completed, reap, reported, start_driver, strace_eio

pytestmark = pytest.mark.faults

CAMPAIGN = campaign_toml({}, name="io", space={"supercell": [1, 1, 2], "mode": "configurations"},
                         calculator={"preset": "gpaw-fast"})

WRITER = """
    import sys
    from activemat.campaign.config import parse_campaign
    from activemat.compute.records import CalculationRecord
    from activemat.errors import StoreError
    from activemat.space.pool import build_pool
    from activemat.store.write import CampaignStore

    path, text = sys.argv[1], sys.argv[2]
    try:
        identity = parse_campaign(text).identity()
        if sys.argv[3] == "create":
            s = CampaignStore.create(path, campaign_text=text, identity=identity, pool=build_pool(supercell=(1, 1, 2)),
                                     presets={})
        else:
            s = CampaignStore.open(path, identity)
        for i in range(int(sys.argv[4])):
            row = s.add_attempt(i % 7, i, "gpaw-fast", 0, "seed")
            s.finish_attempt(row, CalculationRecord(candidate=i % 7, attempt=i, preset="gpaw-fast", status="ok",
                                                    gap=0.01 * i, started=1.0, finished=2.0))
            print("ROW", row, flush=True)
        s.close()
    except StoreError as exc:
        print(f"activemat: error: {exc}", file=sys.stderr)
        sys.exit(2)
"""


def failing_every(n: int, path: Path, argv: list[str], **kw) -> list[str]:
    """``argv`` under strace, every ``n``th write to ``path`` failing with EIO (:func:`drivers.strace_eio`)."""
    prefix = strace_eio(path, n)
    if prefix is None:
        pytest.skip("needs strace with ptrace permitted (apt-get install strace) to inject I/O errors")
    return [*prefix, *argv]


def _writer(path: Path, action: str, rows: int, every: int | None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", textwrap.dedent(WRITER), str(path), CAMPAIGN, action, str(rows)]
    if every:
        argv = failing_every(every, path, argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("every", [3, 40, 700])
def test_a_store_failing_every_nth_write_stops_with_one_line_and_resumes(tmp_path, every):
    path = tmp_path / "c.h5"
    assert _writer(path, "create", 0, None).returncode == 0
    proc = _writer(path, "open", 40, every)
    print(proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
    assert lines[0].startswith(f"activemat: error: {path}: writing the store failed") and "Input/output" in lines[0]
    written = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("ROW")]
    if every == 700:  # a row is about 150 writes (every column's chunk, two flushes each for rows and results)
        assert len(written) >= 2, proc.stdout  # some rows made it before the first error
    CampaignStore.open(path, parse_campaign(CAMPAIGN).identity()).close()  # the resume: recovered, no error
    calc = read_store(path).calculations
    ok = np.flatnonzero(calc["status"] == "ok").tolist()
    assert set(written) <= set(ok), (written, ok)
    assert np.allclose(calc["gap"][written], 0.01 * np.array(written))
    resumed = _writer(path, "open", 3, None)
    assert resumed.returncode == 0, resumed.stderr


def test_a_campaign_driver_failing_every_nth_store_write_loses_nothing(tmp_path):
    """A real driver (ReplayOracle DFT, real Dask workers) whose store fails every 500th write: one line, exit 2;
    a resume without faults completes, every result the driver reported stored once."""
    store = tmp_path / STORE
    (tmp_path / "campaign.toml").write_text(campaign_toml(store=STORE, seed=5, stop={"budget": 20}))
    proc = subprocess.Popen(failing_every(500, store, [sys.executable, str(REPO / "tests/faults/replay_driver.py"),
                                                      "campaign.toml", "0.05"]),
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        reap(proc)
    print(err)
    errors = [line for line in err.splitlines() if line.strip() and not reported(line + "\n")]
    assert proc.returncode == 2, err
    assert len(errors) == 1 and errors[0].startswith("activemat: error:") and "Input/output" in errors[0], errors
    got = reported(err)
    proc = start_driver(tmp_path, budget=20, delay=0.02)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    done = completed(store)
    assert len(done) == len(set(done)) == 20, err[-3000:]  # once at load 6: 14 of 20, exit 0 (not understood)
    assert set(got) <= set(done)
