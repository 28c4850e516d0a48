"""Real campaign driver processes for the fault tests (tests/faults/replay_driver.py: DFT by a ReplayOracle)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from activemat.store.read import read_store
from tests.conftest import campaign_toml

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "faults" / "replay_driver.py"
STORE = "runs/faults.h5"


def start_driver(root: Path, *, budget: int, delay: float, on_stop: str = "wait", store: str = STORE,
                 name: str = "campaign.toml", group: bool = False, scratch_bytes: int = 0) -> subprocess.Popen:
    """Write ``root/name`` (a campaign of the 402-candidate pool on ``store``) and start a driver on it, replaying
    gaps after ``delay`` seconds (each attempt writing ``scratch_bytes`` into its scratch folder). With ``group``
    it leads its own process group, as a terminal's foreground job does."""
    text = campaign_toml(store=store, seed=5, stop={"budget": budget}, faults={"on_stop": on_stop})
    (root / name).write_text(text)
    return subprocess.Popen([sys.executable, str(DRIVER), name, str(delay), str(scratch_bytes)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=group)


def completed(store: Path) -> list[int]:
    """Candidates of the store's successful rows (none if there is no store yet)."""
    if not store.exists():
        return []
    calc = read_store(store).calculations
    return calc["candidate"][calc["status"] == "ok"].tolist()


def reported(err: str) -> list[int]:
    """Candidates a driver reported as completed (its '  n/budget formula #candidate gap ...' lines)."""
    return [int(m.group(1)) for m in re.finditer(r"^\s*\d+/\d+ \S+\s+#(\d+)\s+gap ", err, re.M)]


def wait_for(predicate, timeout: float = 90.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def reap(proc: subprocess.Popen) -> None:
    """Kill a driver still running, wait for it and close its pipes. A test that fails mid-way must reap its
    driver: a Popen garbage-collected while running, or finished with its pipes open, fails a later test on
    pytest's unraisable check (an unclosed file)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()


def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    """Wait for a driver that must end by itself with exit 0."""
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return proc.returncode


@functools.cache
def _strace() -> str | None:
    """strace, if it is here and may trace (ptrace permitted)."""
    exe = shutil.which("strace")
    if exe is None or subprocess.run([exe, "-qq", "-o", "/dev/null", "true"], capture_output=True).returncode:
        return None
    return exe


def strace_eio(path: Path, every: int) -> list[str] | None:
    """A command prefix under which every ``every``th write to ``path`` fails with EIO, as a failing disk returns
    it (threads and child processes included); None where strace cannot trace."""
    exe = _strace()
    if exe is None:
        return None
    return [exe, "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-P", str(path), "-e", "trace=pwrite64,write",
            "-e", f"inject=pwrite64,write:error=EIO:when={every}+{every}"]
