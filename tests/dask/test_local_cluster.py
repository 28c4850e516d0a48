"""A real LocalCluster of processes on loopback running real GPAW tasks."""

from __future__ import annotations

import os

import psutil
import pytest
from ase.build import bulk

from activemat.campaign.config import ClusterSection
from activemat.compute.bandgap import compute_gap
from activemat.compute.presets import load_preset
from activemat.dispatch.clusters import connect, worker_slots
from activemat.dispatch.tasks import on_worker


def _listening_hosts(pid: int) -> set[str]:
    hosts = set()
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                hosts.add(conn.laddr.ip)
    return hosts


def test_local_cluster_runs_gpaw_on_loopback_single_threaded(tmp_path):
    lines = []
    with connect(ClusterSection(workers=2), log=lines.append) as client:
        assert worker_slots(client) == 2
        assert client.scheduler.address.startswith("tls://127.0.0.1:")  # TLS by default (tests/dask/test_tls.py)
        assert all(addr.startswith("tls://127.0.0.1:") for addr in client.scheduler_info()["workers"])
        assert set(client.run(lambda: os.environ["OMP_NUM_THREADS"]).values()) == {"1"}
        assert _listening_hosts(os.getpid()) == {"127.0.0.1"}
        assert any(line.startswith("dashboard: http://127.0.0.1:") for line in lines)
        preset = load_preset("gpaw-fast")
        futures = [client.submit(on_worker, compute_gap, f"t{i}", False, i, 0, bulk(el, "diamond", a=a), preset,
                                 str(tmp_path), pure=False)
                   for i, (el, a) in enumerate([("Si", 5.431), ("Ge", 5.658)])]
        records = client.gather(futures)
    assert [r.ok for r in records] == [True, True]
    assert records[0].gap > records[1].gap  # Si's gap is larger than Ge's
    assert {r.worker for r in records} <= {"0", "1"} and all(r.worker != "driver" for r in records)
    assert all(r.host for r in records)


@pytest.mark.parametrize("workers", [1])
def test_worker_slots_follow_the_cluster(workers):
    with connect(ClusterSection(workers=workers, dashboard=False), log=lambda _: None) as client:
        assert worker_slots(client) == workers
