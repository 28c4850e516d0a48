"""Full and read-only file systems under a store, on small tmpfs mounts: one line naming the path and what to
do, every row written before kept, no partial files left behind.

Mounting needs root (or a mount permission): where it is refused, these tests skip and say why. Store
writes run in child processes, so a crash (HDF5 used to segfault after a failed flush) is seen as such.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from activemat.campaign.config import parse_campaign
from activemat.errors import StoreError
from activemat.store.read import read_store
from activemat.store.status import driver_running
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml
from tests.faults.drivers import completed, reap, reported, start_driver

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
PROGRESS = re.compile(r"^\s*\d+/\d+ \S+\s+#\d+\s+gap ")  # a completed calculation's progress line

CAMPAIGN = campaign_toml({}, name="disk", space={"supercell": [2, 2, 2]}, calculator={"preset": "gpaw-fast"})

# A child process: opens (or creates) a store, optionally fills the disk, writes rows until the store refuses,
# printing what it wrote; "race" pretends the free-space check saw plenty (as when another process fills the
# disk between the check and the write), so HDF5 itself runs out of space.
WRITER = """
    import os, sys
    import numpy as np
    from activemat.campaign.config import parse_campaign
    from activemat.compute.presets import load_preset
    from activemat.compute.records import CalculationRecord
    from activemat.errors import StoreError
    from activemat.space.pool import build_pool
    from activemat.store import room
    from activemat.store.write import CampaignStore

    path, text, action, before, leave, race, kill = sys.argv[1:8]
    before, leave, kill = int(before), int(leave), int(kill)
    pool = build_pool(supercell=(2, 2, 2))
    def fill(leave):
        filler = os.path.join(os.path.dirname(path), "filler")
        with open(filler, "ab") as fh:
            free = os.statvfs(filler).f_bavail * os.statvfs(filler).f_frsize
            if free > leave:
                os.posix_fallocate(fh.fileno(), os.fstat(fh.fileno()).st_size, free - leave)
    try:
        if action == "create":
            if leave >= 0 and before == 0:
                fill(leave)
            s = CampaignStore.create(path, campaign_text=text, identity=parse_campaign(text).identity(), pool=pool,
                                     presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")})
        else:
            if race == "race":
                room.free_space = lambda directory: 1 << 50
            s = CampaignStore.open(path, parse_campaign(text).identity())
        print("OPENED", flush=True)
        if kill == 0:
            os.kill(os.getpid(), 9)
        rng = np.random.default_rng(0)
        i = 0
        while i < 20000:
            if i == before and leave >= 0 and action == "create":
                fill(leave)
                print("FILLED", flush=True)
            if i == before and race == "race":
                room.free_space = lambda directory: 1 << 50
            c = i % len(pool)
            row = s.add_attempt(c, i // len(pool), "gpaw-fast", i, "seed")
            s.finish_attempt(row, CalculationRecord(candidate=c, attempt=i // len(pool), preset="gpaw-fast",
                                                    status="ok", gap=0.001 * i, error="x" * (i % 300),
                                                    parameters={"xc": "PBE", "ecut": 200 + i % 7}))
            print("ROW", row, c, flush=True)
            s.add_snapshot({"iteration": i, "n_train": i + 1, "model": "gp"},
                           rng.random(len(pool)).astype("f4"), rng.random(len(pool)).astype("f4"))
            print("SNAPSHOT", i, flush=True)
            i += 1
            if i == kill:
                os.kill(os.getpid(), 9)
        print("NEVER-FULL", flush=True)
        s.close()
    except StoreError as exc:
        print("ERROR", str(exc), flush=True)
"""


def run_writer(path: Path, action: str, *, before: int = 0, leave: int = -1, race: bool = False,
               kill: int = -1, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(WRITER), str(path), CAMPAIGN, action, str(before),
                           str(leave), "race" if race else "checked", str(kill)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"the writer crashed (rc {proc.returncode}): {proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert errors and lines[-1] == errors[0], proc.stdout[-2000:] + proc.stderr[-2000:]
    return errors[0][len("ERROR "):]


def written(proc: subprocess.CompletedProcess) -> tuple[list[int], int]:
    """Candidates of the rows the writer finished, and the number of snapshots it wrote."""
    rows = [int(line.split()[2]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]
    snaps = sum(line.startswith("SNAPSHOT ") for line in proc.stdout.splitlines())
    return rows, snaps


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free(fs: Path) -> int:
    return shutil.disk_usage(fs).free


def fill(fs: Path, leave: int) -> Path:
    """Take all but `leave` bytes of the file system's free space with one filler file."""
    filler = fs / "filler"
    with open(filler, "ab") as fh:
        for _ in range(5):  # a driver writing meanwhile can take space between measuring and allocating
            if free(fs) <= leave:
                break
            try:
                os.posix_fallocate(fh.fileno(), os.fstat(fh.fileno()).st_size, free(fs) - leave)
                break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    assert free(fs) <= leave + 8192
    return filler


@pytest.fixture
def small_fs(tmp_path):
    """mount(size_kib, where) -> a fresh tmpfs of that size mounted at `where` (under tmp_path), unmounted after."""
    mounted: list[Path] = []

    def mount(size_kib: int, where: Path | None = None) -> Path:
        where = where or tmp_path / "fs"
        where.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root; these disk-fault tests run where that is allowed")
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
                                  capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            pytest.skip("no mount command here")
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".new", ".rewrite")))


# -- full disk ----------------------------------------------------------------------------------

def test_full_disk_at_creation(small_fs):
    fs = small_fs(8 * 1024)
    path = fs / "camp.h5"
    proc = run_writer(path, "create", leave=48 * 1024)
    msg = error_line(proc)
    print("MESSAGE:", msg)
    assert msg.startswith(f"{path}: no space left") and "free" in msg and re.search(r"\d+(\.\d+)? [KM]B", msg), msg
    assert not path.exists() and leftovers(fs) == []
    (fs / "filler").unlink()
    proc = run_writer(path, "create", kill=0)  # enough room now: created (then killed before writing rows)
    assert proc.stdout.startswith("OPENED") and proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert read_store(path).n_calculations == 0


@pytest.mark.parametrize("race", [False, True], ids=["checked", "race"])
def test_full_disk_during_writes_keeps_every_row(small_fs, race):
    fs = small_fs(12 * 1024)
    path = fs / "camp.h5"
    proc = run_writer(path, "create", before=5, leave=(0 if race else 1 * MiB), race=race)
    msg = error_line(proc)
    print("MESSAGE:", msg)
    assert "FILLED" in proc.stdout
    assert msg.startswith(f"{path}: no space left on device") and "free" in msg and "resume" in msg, msg
    rows, snaps = written(proc)
    assert len(rows) >= 5
    data = read_store(path)  # every row the writer finished is there, complete
    c = data.calculations
    assert c["candidate"][: len(rows)].tolist() == rows
    assert (c["status"][: len(rows)] == "ok").all()
    assert c["gap"][: len(rows)].tolist() == pytest.approx([0.001 * i for i in range(len(rows))])
    assert len(data.snapshots["iteration"]) >= snaps
    assert not driver_running(path) and leftovers(fs) == []
    (fs / "filler").unlink()
    with CampaignStore.open(path, parse_campaign(CAMPAIGN).identity()) as store:  # resume after freeing space
        store.interrupt_running()
        store.add_attempt(1, 9, "gpaw-fast", 99, "retry")
    assert read_store(path).calculations["candidate"][: len(rows)].tolist() == rows


@pytest.mark.parametrize("race", [False, True], ids=["checked", "race"])
def test_full_disk_during_recovery(small_fs, race):
    fs = small_fs(16 * 1024)
    path = fs / "camp.h5"
    proc = run_writer(path, "create", kill=300)  # a killed writer: recovery must copy the file
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    rows, _ = written(proc)
    size = path.stat().st_size
    assert size > MiB
    fill(fs, leave=size - 256 * 1024)  # room for the writer's small reserve, not for a copy
    before = sha(path)
    proc = run_writer(path, "open", race=race)
    msg = error_line(proc)
    print("MESSAGE:", msg)
    assert msg.startswith(f"{path}: ") and "free" in msg and "resume" in msg, msg
    if not race:  # checked first: says how much it needs
        assert re.search(r"needs? (about )?\d+(\.\d+)? MB free", msg) and "killed" in msg, msg
    assert sha(path) == before and leftovers(fs) == []
    (fs / "filler").unlink()
    identity = parse_campaign(CAMPAIGN).identity()
    with CampaignStore.open(path, identity) as store:
        store.interrupt_running()
    data = read_store(path)
    assert data.calculations["candidate"][: len(rows)].tolist() == rows
    assert (data.calculations["status"][: len(rows)] == "ok").all()
    assert leftovers(fs) == []


def test_campaign_driver_out_of_disk_exits_2_and_resumes(small_fs, tmp_path):
    runs = small_fs(24 * 1024, tmp_path / "runs")
    store = runs / "faults.h5"

    def driver(delay):
        return start_driver(tmp_path, budget=30, delay=delay)

    first = driver(0.5)
    try:
        end = time.time() + 90
        while time.time() < end and not (store.exists() and len(completed(store)) >= 3):
            time.sleep(0.1)
        fill(runs, leave=0)
        _, err = first.communicate(timeout=120)
    finally:
        reap(first)
    assert first.returncode == 2, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("activemat: error: ")]
    assert len(errors) == 1 and errors[0] == err.rstrip("\n").splitlines()[-1], err[-3000:]
    assert f"{Path('runs/faults.h5')}: no space left on device" in errors[0] and "resume" in errors[0], errors[0]
    # the one line alone: besides it only the progress lines of completed calculations (a traceback Dask logs
    # while the cluster shuts down under load goes to <store>.dask.log: tests/faults/test_worker_logs.py)
    others = [line for line in err.splitlines() if line.strip() and line != errors[0] and not PROGRESS.match(line)]
    assert others == [], err[-3000:]
    print("MESSAGE:", errors[0])
    told = reported(err)
    kept = completed(store)
    assert told and set(told) <= set(kept) and len(kept) == len(set(kept))
    (runs / "filler").unlink()
    second = driver(0.05)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    final = completed(store)
    assert len(final) == 30 == len(set(final)) and set(final) >= set(kept)
    assert leftovers(runs) == []


# -- read-only and not permitted -----------------------------------------------------------------

def test_read_only_file_system(small_fs, tmp_path):
    fs = small_fs(8 * 1024)
    path = fs / "camp.h5"
    proc = run_writer(path, "create", kill=3)
    assert proc.returncode == -signal.SIGKILL  # a killed writer's store: resuming it would need a rewrite
    done = read_store(path).n_calculations
    if subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount the tmpfs read-only here")
    identity = parse_campaign(CAMPAIGN).identity()
    for target, action in ((fs / "new.h5", "create"), (path, "open")):
        with pytest.raises(StoreError) as exc:
            if action == "create":
                from activemat.space.pool import build_pool

                CampaignStore.create(target, campaign_text=CAMPAIGN, identity=identity,
                                     pool=build_pool(supercell=(2, 2, 2)), presets={})
            else:
                CampaignStore.open(target, identity)
        msg = str(exc.value)
        print("MESSAGE:", msg)
        assert "\n" not in msg and msg.startswith(f"{target}: ") and "read-only" in msg, msg
        assert "writable" in msg, msg
    assert read_store(path).n_calculations == done  # readers still work
    assert not driver_running(path)
    # the whole driver: one line, exit 2
    proc = start_driver(tmp_path, budget=4, delay=0.05, store="fs/sub/new.h5")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    print("MESSAGE:", lines[0])
    assert len(lines) == 1 and lines[0].startswith("activemat: error: fs/sub/new.h5: ") and "read-only" in lines[0]
