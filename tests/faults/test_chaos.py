"""A short seeded chaos run (benchmarks/chaos.py): faults of every kind over one campaign, nothing lost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"


def _load():
    spec = importlib.util.spec_from_file_location("chaos_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeded_faults_lose_nothing_and_the_campaign_completes(tmp_path):
    chaos = _load()
    result = chaos.run(tmp_path / "chaos", seed=3, faults=12, budget=150, delay=0.2, progress=print)
    assert result["violations"] == []
    assert result["completed"] == 150 and result["lost"] == 0 and result["reported"] >= 100
    assert result["trials"] >= 10 and result["killed_workers"] >= 1
    # every kind of fault that can run here was injected at least once
    kinds = {k for k, n in result["injected"].items() if n}
    assert {"kill_driver", "kill_worker", "sigint_group", "sigterm", "alias_driver"} <= kinds
    assert ("full_disk" in kinds) == result["disk_faults"]
