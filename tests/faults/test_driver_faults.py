"""Real driver processes killed and signalled at random moments (ReplayOracle for DFT, real LocalCluster)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from activemat.store.read import read_store
from tests.faults import drivers
from tests.faults.drivers import finish, wait_for

STORE = "runs/faults.h5"


def start_driver(root: Path, budget: int, delay: float, on_stop: str = "wait"):
    return drivers.start_driver(root, budget=budget, delay=delay, on_stop=on_stop)


def completed(root: Path) -> list[int]:
    return drivers.completed(root / STORE)


def test_kill9_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path):
    rng = np.random.default_rng(2026)
    # The budget stays out of reach of the ten kill trials (about 10 results each on a fast machine), so every
    # trial ends by the kill and not by the campaign finishing.
    budget, trials = 200, 10
    before: set[int] = set()
    kills = 0
    store = tmp_path / "runs/faults.h5"
    for trial in range(trials):
        driver = start_driver(tmp_path, budget, delay=0.15)
        if trial % 3 == 0:  # during start-up: store creation, recovery, cluster start
            time.sleep(float(rng.uniform(0.5, 6.0)))
        else:  # mid-campaign, at a random moment after this run's first new result
            wait_for(lambda: store.exists() and len(completed(tmp_path)) > len(before), timeout=90)
            time.sleep(float(rng.uniform(0.0, 2.0)))
        driver.kill()
        _, err = driver.communicate()
        assert driver.returncode == -signal.SIGKILL, f"trial {trial}: driver ended by itself: {err[-2000:]}"
        kills += 1
        if not (tmp_path / "runs/faults.h5").exists():
            continue  # killed before the store was created
        now = completed(tmp_path)  # readable right after SIGKILL
        print(f"trial {trial}: {len(now)} completed")
        assert set(now) >= before, f"trial {trial}: completed calculations lost"
        assert len(now) == len(set(now)), f"trial {trial}: a candidate was completed twice"
        before = set(now)
    assert kills == trials
    driver = start_driver(tmp_path, budget, delay=0.05)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    final = completed(tmp_path)
    assert len(final) == budget == len(set(final)) and set(final) >= before
    calc = read_store(tmp_path / "runs/faults.h5").calculations
    assert "running" not in set(calc["status"])
    # the report's figures: trials, lost = 0, duplicates = 0
    print(f"kill-9 trials {trials}, completed before final run {len(before)}, lost 0, duplicates 0,"
          f" interrupted rows {int(np.sum(calc['status'] == 'interrupted'))}")


def _signal_after_first_results(tmp_path, on_stop, sig):
    driver = start_driver(tmp_path, budget=40, delay=1.0, on_stop=on_stop)
    assert wait_for(lambda: (tmp_path / "runs/faults.h5").exists() and len(completed(tmp_path)) >= 3)
    driver.send_signal(sig)
    out, err = driver.communicate(timeout=60)
    return driver, err


def test_sigterm_waits_for_running_calculations_and_exits_0(tmp_path):
    driver, err = _signal_after_first_results(tmp_path, "wait", signal.SIGTERM)
    assert driver.returncode == 0, err
    assert "SIGTERM: waiting" in err and "stopped by SIGTERM" in err
    calc = read_store(tmp_path / "runs/faults.h5").calculations
    assert set(calc["status"]) == {"ok"}  # everything that was running finished and was stored
    n = len(calc["status"])
    assert n < 40
    resumed = start_driver(tmp_path, budget=n + 2, delay=0.05)
    assert finish(resumed) == 0
    assert len(completed(tmp_path)) == n + 2


def test_sigint_with_cancel_marks_running_as_interrupted_then_resume_reruns_them(tmp_path):
    driver, err = _signal_after_first_results(tmp_path, "cancel", signal.SIGINT)
    assert driver.returncode == 0, err
    calc = read_store(tmp_path / "runs/faults.h5").calculations
    interrupted = calc["candidate"][calc["status"] == "interrupted"].tolist()
    assert interrupted and "running" not in set(calc["status"])
    done = completed(tmp_path)
    resumed = start_driver(tmp_path, budget=len(done) + len(interrupted), delay=0.05)
    assert finish(resumed) == 0
    calc = read_store(tmp_path / "runs/faults.h5").calculations
    rerun = calc["reason"] == "retry"
    assert set(calc["candidate"][rerun].tolist()) == set(interrupted)
    assert set(completed(tmp_path)) == set(done) | set(interrupted)


def test_status_reads_the_store_while_the_campaign_writes_it(tmp_path):
    # 1.5 s per result: a `status` process took seconds at load 6, and 0.3 s let the campaign end in 2 reads
    driver = start_driver(tmp_path, budget=16, delay=1.5)
    assert wait_for(lambda: (tmp_path / "runs/faults.h5").exists())
    seen, live = [], []
    while driver.poll() is None:
        result = subprocess.run([sys.executable, "-m", "activemat.cli", "status", "runs/faults.h5", "--json"],
                                cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        seen.append(status["completed"])
        live.append(status["driver_running"])
    finish(driver)
    assert len(seen) >= 3 and seen == sorted(seen), "counts only grow while the campaign runs"
    assert any(live), "status saw the driver holding the store"
    assert seen[0] < 16 and any(0 < n < 16 for n in seen), "status read partial results mid-campaign"
