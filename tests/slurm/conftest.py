"""The local single-node SLURM for the slurm tier, started by slurm/local-slurm.sh.

`make test` starts it before pytest; run as plain pytest, the `slurm` fixture
starts it when the Debian packages are installed and we are root, and leaves
it running (`make slurm-down` stops it). Otherwise the tests that need it skip, saying why.
Its state lives in $ACTIVEMAT_SLURM_STATE (default /tmp/activemat-slurm),
never in the work tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, campaign_toml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "slurm" / "local-slurm.sh"
STATE = Path(os.environ.get("ACTIVEMAT_SLURM_STATE", "/tmp/activemat-slurm"))
ACTIVEMAT = str(Path(sys.executable).parent / "activemat")


def _local_slurm(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action, str(STATE)], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="session")
def slurm():
    """A running single-node SLURM (partition 'debug') on this machine; skip when it cannot run here."""
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed: apt-get install slurmctld slurmd slurm-client munge "
                    "(`make test` installs and starts it)")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM needs root (munged runs as munge, slurmd as root); run `make test` as root")
    if _local_slurm("status").returncode != 0:
        started = _local_slurm("start")
        if started.returncode == 3:  # the script's "cannot run here" code (missing tools, foreign slurm.conf, ...)
            pytest.skip(f"local SLURM cannot start here: {started.stderr.strip()}")
        assert started.returncode == 0, f"slurm/local-slurm.sh start failed:\n{started.stderr}"
    # Left running, as `make test` leaves it: another test session may be using it (`make slurm-down` stops it).
    return STATE


def squeue(workdir: Path | None = None) -> list[tuple[str, str, str]]:
    """(job id, name, state) of the jobs in the queue, only those submitted from `workdir` if given.

    Other test sessions may share the local SLURM: the working directory tells their jobs apart.
    Empty if squeue fails (e.g. while slurmctld is busy).
    """
    result = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T|%Z"], capture_output=True, text=True, timeout=60)
    rows = [line.split("|") for line in result.stdout.splitlines() if line.count("|") == 3]
    return [(job, name, state) for job, name, state, cwd in rows
            if workdir is None or Path(cwd).resolve() == Path(workdir).resolve()]


class QueueWatcher:
    """Polls squeue in a thread while a campaign runs: which jobs (submitted from `workdir`) ran, by name."""

    def __init__(self, workdir: Path, interval: float = 0.5):
        self.workdir = workdir
        self.seen: dict[str, tuple[str, set[str]]] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for job, name, state in squeue(self.workdir):
                self.seen.setdefault(job, (name, set()))[1].add(state)
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def jobs(self, name: str, state: str = "RUNNING") -> list[str]:
        return sorted((j for j, (n, states) in self.seen.items() if n == name and state in states), key=int)


def wait_until_gone(job_ids, timeout: float = 300) -> None:
    """Wait until none of the jobs is in the queue any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not {job for job, _, _ in squeue()} & set(job_ids):
            return
        time.sleep(1)
    raise AssertionError(f"jobs {sorted(job_ids)} still queued after {timeout} s: {squeue()}")


def slurm_campaign(**cluster) -> str:
    """TINY (4-atom cells, gpaw-fast) with its workers as single-core SLURM jobs on loopback."""
    settings = {"kind": "slurm", "partition": "debug", "interface": "lo", "walltime": "00:10:00", "cores": 1,
                "memory": "1GB", "maximum_jobs": 1, "dashboard": False, **cluster}
    return campaign_toml({**TINY, "cluster": settings})
