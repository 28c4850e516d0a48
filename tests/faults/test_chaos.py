"""A short seeded chaos run (benchmarks.chaos): faults of every kind over one campaign, nothing lost."""

from __future__ import annotations

import pytest

from benchmarks import chaos
from tests.faults import another_user
from tests.faults.drivers import strace_eio

pytestmark = pytest.mark.faults


def test_seeded_faults_lose_nothing_and_the_campaign_completes(tmp_path):
    result = chaos.run(tmp_path / "chaos", seed=3, faults=9, budget=150, delay=0.2, progress=print)
    assert result["violations"] == []
    assert result["completed"] == 150 and result["lost"] == 0 and result["reported"] >= 100
    assert result["trials"] == 9 and result["killed_workers"] >= 1
    # every kind of fault that can run here was injected (one round of the schedule holds each kind once)
    kinds = {k for k, n in result["injected"].items() if n}
    assert {"kill_driver", "kill_worker", "sigint_group", "sigterm", "alias_driver"} <= kinds
    assert ("full_disk" in kinds) == ("full_scratch" in kinds) == result["disk_faults"]
    assert ("io_error" in kinds) == (strace_eio(tmp_path, 1) is not None)
    if another_user.unavailable() is None:  # and every connection it tried was refused
        assert "another_user" in kinds and result["refused_connections"] >= 3
