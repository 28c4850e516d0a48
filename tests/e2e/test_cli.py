"""The CLI in a subprocess: a small real campaign (real GPAW, real LocalCluster)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY, campaign_toml


def activemat(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "activemat.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """One real tiny campaign shared by the tests below."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "tiny.toml").write_text(campaign_toml(TINY))
    result = activemat("run", "tiny.toml", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_run_then_status_json(campaign):
    result = activemat("status", "runs/tiny.h5", "--json", cwd=campaign)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["completed"] == 4 and status["failed"] == 0 and status["running"] == 0
    assert 0 < status["gap_min"] <= status["gap_max"] < 1.5
    assert status["n_train"] == 4 and status["max_std"] is not None
    assert status["cv_mae"] is not None and status["baseline_mae"] is not None


def test_status_table_is_human_readable(campaign):
    result = activemat("status", "runs/tiny.h5", cwd=campaign)
    assert result.returncode == 0 and "completed" in result.stdout and "cv mae" in result.stdout


def test_second_run_recomputes_nothing(campaign):
    result = activemat("run", "tiny.toml", "--json", cwd=campaign)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["completed"] == 4
    status = json.loads(activemat("status", "runs/tiny.h5", "--json", cwd=campaign).stdout)
    assert status["attempts"] == 4, "no calculation was submitted again"


@pytest.mark.parametrize("edit, expected", [
    ({"stop": {"budget": None, "budgett": 4}}, "stop.budgett: unknown key"),
    ({"calculator": {"preset": "gpaw-nonexistent"}}, "unknown calculator preset 'gpaw-nonexistent'"),
    ({"space": {"elements": ["Si", "Xx"]}}, "unknown element 'Xx'"),
    ({"space": {"supercell": [2, 1, 2]}}, "different campaign definition"),
    ({"calculator": {"cost": 5, "cheaper": [{"preset": "gpaw-pbe-pw", "cost": 1}]}}, 'set [strategy] kind = "ivr"'),
    ({"model": {"transfer_from": "nowhere.h5"}, "strategy": {"kind": "ivr"}}, "store not found: nowhere.h5"),
    ({"strategy": {"kind": "fixed", "fixed": ["Si2Ge2", "picks.extxyz"]}}, "structure file not found: picks.extxyz"),
])
def test_bad_input_exits_2_with_one_line_and_store_untouched(campaign, edit, expected):
    bad = campaign / "bad.toml"
    bad.write_text(campaign_toml(TINY, **edit))
    before = sha(campaign / "runs/tiny.h5")
    result = activemat("run", "bad.toml", cwd=campaign)
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sha(campaign / "runs/tiny.h5") == before


@pytest.mark.parametrize("override, expected", [
    (("--budget", "0"), "--budget 0: stop.budget: Input should be greater than or equal to 1"),
    (("--budget", "-1"), "--budget -1: stop.budget"),
    (("--workers", "0"), "--workers 0: cluster.workers: Input should be greater than or equal to 1"),
    (("--workers", "-1"), "--workers -1: cluster.workers"),
    (("--store", ""), "--store : campaign.store: String should have at least 1 character"),
])
def test_command_line_overrides_are_validated_like_the_file(campaign, override, expected):
    """An override passes the campaign file's checks: refused with one line, exit 2, no store created or touched."""
    (campaign / "over.toml").write_text(campaign_toml(TINY, store="runs/over.h5"))
    before = sha(campaign / "runs/tiny.h5")
    result = activemat("run", "over.toml", *override, cwd=campaign)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (campaign / "runs/over.h5").exists() and sha(campaign / "runs/tiny.h5") == before


def test_status_of_missing_store_exits_2(tmp_path):
    result = activemat("status", "nope.h5", cwd=tmp_path)
    assert result.returncode == 2 and "store not found: nope.h5" in result.stderr
