"""Chaos: a seeded random sequence of faults over one campaign, then a final resume; what survived.

One campaign (a sampled 24-atom space of 2076 candidates, room for 100 faults; a linear model, whose
refits stay cheap as results grow (a GP's took minutes per driver start past 400 results); two local worker
processes) is driven by `tests/faults/replay_driver.py`, a real driver whose
DFT is a ReplayOracle (a named fake: loop logic, store and processes are
real, the gaps are a synthetic function). Each trial starts the driver,
waits until it is computing, injects one fault, and lets the driver end:

  kill_driver   kill -9 of the driver
  kill_worker   kill -9 of one Dask worker process (the driver retries its work), then SIGTERM
  sigint_group  Ctrl-C to the driver's whole process group (running work finishes and is stored)
  sigterm       SIGTERM to the driver
  alias_driver  a second driver on the same store through a symlink (refused, exit 2), then SIGTERM
  full_disk     the store's filesystem (a small tmpfs) fills up: the driver stops with one line, exit 2;
                the filler is removed before the next trial (only where a tmpfs can be mounted)
  full_scratch  the scratch filesystem (a second tmpfs; each attempt writes a GPAW-sized log there) fills up:
                an infrastructure fault, one line, exit 2, never a failed candidate; freed before the next trial
  io_error      the driver runs under strace, every Nth write to the store failing with EIO as a failing disk
                does (N drawn from 200-2000): one line, exit 2 (only where strace may trace)
  another_user  a process of uid 65534 tries every connection it can to the driver's scheduler and workers:
                all refused, the campaign unaffected, then SIGTERM (only as root with setpriv)

After every trial: every result a driver ever reported as completed is in the
store, once; the completed set never shrinks. At the end a fault-free resume
must reach the budget, `activemat status --json` must agree with the rows, and
no candidate may have been given up (an infrastructure fault never counts
against a candidate's retries).

    .venv/bin/python -m benchmarks.chaos --faults 100 --budget 400 --seed 1

The CI test (tests/faults/test_chaos.py) runs a short seeded version.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import psutil

from activemat.store.read import read_store
from benchmarks.common import command, save
from tests.faults import another_user
from tests.faults.drivers import strace_eio

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "faults" / "replay_driver.py"
FAULTS = ("kill_driver", "kill_worker", "sigint_group", "sigterm", "alias_driver", "full_disk", "full_scratch",
          "io_error", "another_user")
REPORTED = re.compile(r"^\s*\d+/\d+ \S+\s+#(\d+)\s+gap ", re.M)  # a completed calculation's progress line
TMPFS_KB = 131072  # the store (tens of MB after hundreds of refits: each snapshot predicts the whole pool) and
# room for its recovery copy; 16 MB filled up after 592 results, and every later driver stopped on it
SCRATCH_KB = 2048  # attempts in flight, each with its GPAW-sized log
SCRATCH_BYTES = 64 * 1024

CAMPAIGN = """
[campaign]
store = "{store}"
seed = 5
scratch = "{scratch}"
[space]
supercell = [2, 2, 3]
mode = "sampled"
samples_per_composition = 120
[model]
kind = "linear"
[stop]
budget = {budget}
[cluster]
workers = 2
dashboard = false
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def start(root: Path, campaign: str, delay: float, wrap: list[str] = ()) -> subprocess.Popen:
    """A driver leading its own process group, as a terminal's foreground job does (under ``wrap``, a command
    prefix such as strace's, if given). Each attempt writes a GPAW-sized log into its scratch folder."""
    return subprocess.Popen([*wrap, sys.executable, str(DRIVER), campaign, str(delay), str(SCRATCH_BYTES)],
                            cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def ok_rows(store: Path) -> list[int]:
    """Candidates of the store's successful rows (a reader never blocks the writer)."""
    if not store.exists():
        return []
    calc = read_store(store).calculations
    return calc["candidate"][calc["status"] == "ok"].tolist()


def wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def small_filesystem(path: Path, size_kb: int = TMPFS_KB):
    """A tmpfs of ``size_kb`` at ``path`` (root only); yields False where none can be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; return the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 16, 1):  # big blocks, then the last bytes
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def end(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, err


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # it ended by itself


def available_kinds(store_mounted: bool, scratch_mounted: bool, io_wrap: bool) -> list[str]:
    """The fault kinds that can run here: the disk ones need root (tmpfs), io_error strace, another_user setpriv."""
    possible = {"full_disk": store_mounted, "full_scratch": scratch_mounted, "io_error": io_wrap,
                "another_user": another_user.unavailable() is None}
    return [k for k in FAULTS if possible.get(k, True)]


def run(root: Path, *, seed: int, faults: int, budget: int, delay: float = 0.2, disk: bool = True,
        progress=None) -> dict:
    """Inject ``faults`` seeded faults into one campaign under ``root``; return what happened.

    The result lists every violation found (a reported result missing from the
    store, a candidate completed twice, a shrinking completed set, an
    unexpected exit code or error message, a connection another user got,
    status disagreeing with the rows, a candidate given up): none is the pass.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as mounts:
        store_mounted = disk and mounts.enter_context(small_filesystem(root / "fs"))
        scratch_mounted = disk and mounts.enter_context(small_filesystem(root / "scratch", SCRATCH_KB))
        store_dir = root / "fs" if store_mounted else root / "runs"
        store_dir.mkdir(parents=True, exist_ok=True)
        store = store_dir / "chaos.h5"
        scratch = root / "scratch"
        scratch.mkdir(exist_ok=True)
        (root / "campaign.toml").write_text(CAMPAIGN.format(store=store.relative_to(root), budget=budget,
                                                            scratch=scratch))
        (root / "link.h5").symlink_to(store.resolve())
        (root / "alias.toml").write_text(CAMPAIGN.format(store="link.h5", budget=budget, scratch=scratch))
        kinds = available_kinds(store_mounted, scratch_mounted, strace_eio(store, 1) is not None)
        reported: set[int] = set()
        before: set[int] = set()
        injected = {k: 0 for k in kinds}
        killed_workers = 0
        probes = 0
        probe_errors: list[str] = []
        exits: list[dict] = []
        violations: list[str] = []
        started = time.monotonic()

        def check(trial: int, kind: str, err: str) -> None:
            nonlocal before
            reported.update(int(c) for c in REPORTED.findall(err))
            rows = ok_rows(store)
            now = set(rows)
            if len(rows) != len(now):
                violations.append(f"trial {trial} ({kind}): a candidate completed twice")
            if not reported <= now:
                violations.append(f"trial {trial} ({kind}): reported results missing from the store: "
                                  f"{sorted(reported - now)[:10]}")
            if not before <= now:
                violations.append(f"trial {trial} ({kind}): completed results lost: {sorted(before - now)[:10]}")
            before = now

        def one_line(trial: int, kind: str, err: str, words: str) -> None:
            """A fault's exit: exactly one error line, and it names the fault."""
            errors = [line for line in err.splitlines() if line.startswith("activemat: error:")]
            if len(errors) != 1 or words not in errors[0] or "Traceback" in err:
                violations.append(f"trial {trial} ({kind}): expected one error line naming {words!r}: {err[-400:]}")

        # every kind equally often, in a seeded order: rounds of a shuffled list of all kinds
        schedule = [str(k) for _ in range(-(-faults // len(kinds))) for k in rng.permutation(kinds)][:faults]
        seen = 0  # violations already shown
        for trial, kind in enumerate(schedule):
            if len(before) >= budget - 5:
                break  # the campaign is nearly done: leave the rest to the final resume
            wrap = strace_eio(store, int(rng.integers(200, 2000))) if kind == "io_error" else []
            # the probe takes seconds: slower calculations leave the campaign's budget to the other faults
            driver = start(root, "campaign.toml", delay * 10 if kind == "another_user" else delay, wrap)
            n0 = len(before)
            wait_for(lambda: len(ok_rows(store)) > n0 or driver.poll() is not None, timeout=90)
            time.sleep(float(rng.uniform(0.0, 1.5)))
            expected = {0}
            extra = ""
            filler = None
            applied = True  # whether the fault met a running driver
            if kind == "kill_driver":
                driver.kill()
                expected = {-signal.SIGKILL}
            elif kind == "kill_worker":
                try:
                    workers = [p for p in psutil.Process(driver.pid).children(recursive=True)
                               if "multiprocessing" in " ".join(p.cmdline())]
                except psutil.NoSuchProcess:  # the driver has already ended
                    workers = []
                if workers:
                    try:
                        workers[int(rng.integers(len(workers)))].kill()
                        killed_workers += 1
                    except psutil.NoSuchProcess:
                        pass  # it ended by itself
                time.sleep(1.0)
                signal_group(driver, signal.SIGTERM)
            elif kind == "sigint_group":
                signal_group(driver, signal.SIGINT)
            elif kind == "sigterm":
                driver.send_signal(signal.SIGTERM)
            elif kind == "alias_driver":
                second = start(root, "alias.toml", delay)
                code, err2 = end(second)
                lines = err2.strip().splitlines()
                if code == 0 and (driver.poll() is not None or "budget reached" in err2):
                    # the first driver had finished (or was closing its cluster after its last write, its lock
                    # released): no second writer to refuse, and the second found nothing left to compute
                    applied = False
                elif code != 2 or len(lines) != 1 or "in use" not in err2:
                    violations.append(f"trial {trial} (alias_driver): second driver exit {code}: {err2[-300:]}")
                extra = err2
                signal_group(driver, signal.SIGTERM)
            elif kind in ("full_disk", "full_scratch"):
                filler = fill(store_dir if kind == "full_disk" else scratch)
                expected = {2}
            elif kind == "io_error":  # the store fails on its own; a driver that outlives 30 s is stopped
                if not wait_for(lambda: driver.poll() is not None, timeout=30):
                    signal_group(driver, signal.SIGTERM)
                expected = {0, 2}
            elif kind == "another_user":
                schedulers, listening = another_user.listeners(driver.pid)
                applied = False
                if schedulers and driver.poll() is None:
                    try:  # the driver's own listeners (scheduler, nannies) each get the scheduler probes
                        result = another_user.probe(schedulers, listening)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the probe itself broke: no fault
                        probe_errors.append(f"trial {trial}: {str(exc)[-300:]}")
                    else:
                        applied = True
                        probes += len(result) - 1
                        if breaches := another_user.breaches(result):
                            violations.append(f"trial {trial} (another_user): got in through {breaches}")
                signal_group(driver, signal.SIGTERM)
            code, err = end(driver)
            if filler is not None:
                filler.unlink()
                if code == 0:  # it finished (or stopped) before it next wrote: no fault happened
                    expected, applied = {0}, False
                else:
                    one_line(trial, kind, err, "no space left on device")
            if kind == "io_error":
                if code == 2:
                    one_line(trial, kind, err, "Input/output error")
                else:
                    applied = False  # stopped before its Nth write
            if driver.poll() is not None and code == 0 and "budget reached" in err:
                expected = {0}
            if code not in expected:
                violations.append(f"trial {trial} ({kind}): exit {code}, expected {sorted(expected)}: {err[-400:]}")
            injected[kind] += applied
            exits.append({"trial": trial, "fault": kind, "exit": code, "completed": len(ok_rows(store))})
            check(trial, kind, err + extra)
            if progress:
                progress(f"trial {trial}: {kind}, exit {code}, {len(before)} completed")
                for violation in violations[seen:]:  # as they happen: a run cut short still shows them
                    progress(f"  VIOLATION {violation}")
            seen = len(violations)
        final = start(root, "campaign.toml", delay=0.02)
        code, err = end(final, timeout=600)
        check(faults, "final resume", err)
        if code != 0 or len(before) != budget:
            violations.append(f"final resume: exit {code}, {len(before)} of {budget} completed: {err[-400:]}")
        status = json.loads(subprocess.run([sys.executable, "-m", "activemat.cli", "status", str(store), "--json"],
                                           cwd=root, env=_env(), capture_output=True, text=True).stdout or "{}")
        calc = read_store(store).calculations
        agree = {"completed": int(np.sum(calc["status"] == "ok")), "failed": int(np.sum(calc["status"] == "failed")),
                 "running": 0}
        for key, value in agree.items():
            if status.get(key) != value:
                violations.append(f"status {key} = {status.get(key)}, rows say {value}")
        if status.get("given_up"):
            violations.append(f"status says {status['given_up']} given up; no fault should exhaust the retries")
        return {"seed": seed, "faults_requested": faults, "trials": len(exits), "injected": injected,
                "disk_faults": bool(store_mounted and scratch_mounted), "killed_workers": killed_workers,
                "refused_connections": probes, "probe_errors": probe_errors, "budget": budget, "completed": len(before),
                "reported": len(reported), "lost": len(reported - before),
                "violations": violations, "exits": exits, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faults", type=int, default=100)
    p.add_argument("--budget", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--delay", type=float, default=0.2, help="seconds per replayed calculation")
    p.add_argument("--no-disk", action="store_true",
                   help="no full-disk or full-scratch faults (they need root to mount a tmpfs)")
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="activemat-chaos-"))
    try:
        result = run(root, seed=args.seed, faults=args.faults, budget=args.budget, delay=args.delay,
                     disk=not args.no_disk, progress=lambda m: print(m, flush=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"chaos: {result['trials']} trials, faults injected {result['injected']}, {result['completed']}/"
          f"{result['budget']} completed, {result['reported']} reported, lost {result['lost']}, "
          f"violations {len(result['violations'])} ({result['seconds']} s)")
    for v in result["violations"]:
        print("  VIOLATION", v)
    path = save("chaos", {**result, "command": command("chaos")})
    print(f"-> {path}")


if __name__ == "__main__":
    main()
