"""Signals to the driver's whole process group (Ctrl-C in a terminal, `timeout`, batch systems), and signals
that arrive while the driver starts or finishes (ReplayOracle for DFT, real LocalCluster worker processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activemat.store.read import read_store
from tests.faults.drivers import REPO, STORE, start_driver, wait_for

pytestmark = pytest.mark.faults

def start_group(root: Path, budget: int, delay: float) -> subprocess.Popen:
    return start_driver(root, budget=budget, delay=delay, group=True)


def rows(root: Path) -> dict:
    path = root / STORE
    return read_store(path).calculations if path.exists() else {"status": [], "candidate": []}


def status(root: Path) -> dict:
    run = subprocess.run([sys.executable, "-m", "activemat.cli", "status", STORE, "--json"], cwd=root,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_lets_running_calculations_finish(tmp_path, sig):
    driver = start_group(tmp_path, budget=40, delay=1.5)
    try:
        assert wait_for(lambda: sum(s == "ok" for s in rows(tmp_path)["status"]) >= 3)
        os.killpg(driver.pid, sig)  # the whole group: what Ctrl-C in a terminal does
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, err
    name = signal.Signals(sig).name
    assert f"{name}: waiting for" in err and f"stopped by {name}" in err
    calc = rows(tmp_path)
    assert set(calc["status"]) == {"ok"}, "the running calculations finished and were stored"
    st = status(tmp_path)
    assert st["failed"] == 0 and st["given_up"] == 0 and st["completed"] == len(calc["status"])


def test_a_second_signal_to_the_group_cancels_the_running_ones_for_resume(tmp_path):
    driver = start_group(tmp_path, budget=40, delay=4.0)  # calculations long enough to still run at the 2nd signal
    try:
        def running_after_two_results():
            status = list(rows(tmp_path)["status"])
            return status.count("ok") >= 2 and "running" in status
        # signalled while a calculation runs: between two batches nothing may run, and the first signal would
        # then end the run before the second arrives (seen once at load 11)
        assert wait_for(running_after_two_results)
        os.killpg(driver.pid, signal.SIGINT)
        time.sleep(0.3)  # the first signal is being handled: waiting
        os.killpg(driver.pid, signal.SIGINT)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
    assert driver.returncode == 0, err
    assert "cancelled" in err and "they rerun on resume" in err
    calc = rows(tmp_path)
    assert "interrupted" in set(calc["status"]), "cancelled calculations are marked for resume"
    assert "running" not in set(calc["status"]) and "failed" not in set(calc["status"])
    st = status(tmp_path)
    assert st["given_up"] == 0 and st["failed"] == 0 and st["to_retry"] >= 1


@pytest.mark.parametrize("after", [0.3, 1.5, 3.0])
def test_a_stop_signal_during_start_up_ends_cleanly_with_a_message(tmp_path, after):
    """Before the loop runs (config, pool, store, cluster start), a stop request ends the run with a line
    saying so and exit 0; the store, if created, holds no running row."""
    driver = start_group(tmp_path, budget=40, delay=1.0)
    time.sleep(after)
    os.killpg(driver.pid, signal.SIGTERM)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    assert "stopped by SIGTERM" in err
    assert "running" not in set(rows(tmp_path)["status"])


def test_a_stop_signal_as_the_budget_is_reached_ends_cleanly(tmp_path):
    """The last result lands, the cluster shuts down: a SIGTERM then still ends with exit 0 and a message."""
    driver = start_group(tmp_path, budget=4, delay=0.5)
    try:
        assert wait_for(lambda: sum(s == "ok" for s in rows(tmp_path)["status"]) >= 4, timeout=120)
        try:
            os.killpg(driver.pid, signal.SIGTERM)  # while the cluster shuts down
        except ProcessLookupError:
            pass  # already gone: it ended by itself, which the assertions below check too
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, err
    assert "stopped" in err
    calc = rows(tmp_path)
    assert sum(s == "ok" for s in calc["status"]) == 4 and "running" not in set(calc["status"])
