"""Lost workers, calculations past their time limit, GPAW failures with fallback, bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import threading
import time

import h5py
import numpy as np
import psutil
import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.oracle import ReplayOracle
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import TINY, campaign_toml, cli_process, synthetic_gaps


def _run_replay(budget, oracle_kwargs, faults=None):
    text = campaign_toml(store="runs/faults.h5", seed=2, stop={"budget": budget}, faults=faults or {})
    config = parse_campaign(text)
    oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), **oracle_kwargs)
    report = Reporter(budget, Console(file=io.StringIO()))
    summary = run_campaign(config, text, task=oracle, report=report)
    return summary, read_store("runs/faults.h5").calculations


def _worker_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def test_a_worker_killed_mid_calculation_is_retried_elsewhere(in_tmp):
    def kill_one_worker():
        end = time.time() + 120
        while time.time() < end:
            store = in_tmp / "runs/faults.h5"
            if store.exists() and (read_store(store).calculations["status"] == "running").any():
                time.sleep(0.5)  # mid-calculation
                workers = _worker_processes()
                if workers:
                    workers[0].send_signal(signal.SIGKILL)
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    summary, calc = _run_replay(6, {"delay": 2.0})
    killer.join()
    lost = np.flatnonzero(np.char.startswith(calc["error"].astype(str), S.LOST))
    assert len(lost) >= 1
    for row in lost:
        cand = calc["candidate"][row]
        retries = (calc["candidate"] == cand) & (calc["attempt"] > calc["attempt"][row])
        assert (calc["status"][retries] == "ok").any() and set(calc["reason"][retries]) == {"retry"}
        assert calc["fallback"][retries].max() == 0, "a lost worker is no reason for gentler settings"
    assert summary["completed"] == 6 and summary["given_up"] == 0 and summary["failed"] == len(lost)


def test_a_calculation_past_its_time_limit_is_stopped_and_retried(in_tmp):
    t0 = time.time()
    summary, calc = _run_replay(5, {"delay": 0.2, "hang_attempts": {0: 1}, "hang_seconds": 300},
                                faults={"time_limit": 3})
    assert time.time() - t0 < 120, "the hung calculation was not abandoned"
    first = (calc["candidate"] == 0) & (calc["attempt"] == 0)
    assert calc["status"][first][0] == "failed" and calc["error"][first][0].startswith(S.TIMEOUT)
    retry = (calc["candidate"] == 0) & (calc["attempt"] == 1)
    assert calc["status"][retry][0] == "ok" and calc["fallback"][retry][0] == 1
    assert summary["completed"] == 5


FLAKY_PRESET = """
description = "gpaw-fast that cannot converge in 2 SCF steps; its fallback can"
[gpaw]
ecut = 200.0
kpts_density = 0.9
maxiter = 2
[[fallbacks]]
maxiter = 200
mixer = [0.1, 5, 50.0]
"""


@pytest.mark.gpaw
def test_gpaw_failure_is_recorded_then_fixed_by_the_fallback_settings(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets/flaky.toml").write_text(FLAKY_PRESET)
    campaign = campaign_toml(TINY, calculator={"preset": "flaky"}, stop={"budget": 2})
    (tmp_path / "flaky.toml").write_text(campaign)
    env = {"ACTIVEMAT_CALCULATORS": str(tmp_path / "presets")}
    result = cli_process("run", "flaky.toml", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    status = json.loads(cli_process("status", "runs/tiny.h5", "--json", cwd=tmp_path).stdout)
    assert status["completed"] == 2 and status["failed"] == 2 and status["retried"] == 2
    assert status["failed_candidates"] == 0
    for failure in status["failures"]:
        assert failure["attempt"] == 0 and failure["fallback"] == 0
        assert "converge" in failure["error"].lower()
        assert os.path.exists(os.path.join(failure["scratch"], "gpaw.txt"))
    calc = read_store(tmp_path / "runs/tiny.h5").calculations
    assert set(calc["fallback"][calc["status"] == "ok"]) == {1}


# -- bad input: one line, exit 2, store bytes unchanged -----------------------------

def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_store(tmp_path):
    """A real (empty) store of the TINY campaign, made without running anything."""
    text = campaign_toml(TINY)
    config = parse_campaign(text)
    (tmp_path / "runs").mkdir()
    (tmp_path / "tiny.toml").write_text(text)
    store = CampaignStore.create(tmp_path / "runs/tiny.h5", campaign_text=text,
                                 identity=config.identity(), pool=build_campaign_pool(config), presets={})
    store.close()
    return tmp_path / "runs/tiny.h5"


def _newer(path):
    with h5py.File(path, "r+") as f:
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION + 1


def _truncated(path):
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _garbage(path):
    path.write_bytes(np.random.default_rng(1).bytes(4096))


@pytest.mark.parametrize("damage, expected", [(_newer, "newer than this activemat"),
                                              (_truncated, "truncated or corrupt"),
                                              (_garbage, "truncated or corrupt")])
@pytest.mark.parametrize("command", ["run", "status"])
def test_bad_store_exits_2_with_one_line_and_is_left_as_it_was(tiny_store, damage, expected, command):
    damage(tiny_store)
    before = _sha(tiny_store)
    args = ["run", "tiny.toml"] if command == "run" else ["status", "runs/tiny.h5"]
    result = cli_process(*args, cwd=tiny_store.parent.parent)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _sha(tiny_store) == before


def test_impossible_composition_exits_2(tmp_path):
    bad = campaign_toml(TINY, strategy={"kind": "fixed", "fixed": ["Si3Ge14"]})
    (tmp_path / "bad.toml").write_text(bad)
    result = cli_process("run", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Si3Ge14" in result.stderr
    assert not (tmp_path / "runs").exists(), "nothing is created on bad input"


def test_malformed_toml_exits_2(tmp_path):
    (tmp_path / "bad.toml").write_text("[stop\nbudget = 3\n")
    result = cli_process("run", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2 and "not valid TOML" in result.stderr
