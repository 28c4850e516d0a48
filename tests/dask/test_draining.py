"""Draining workers (activemat.dispatch.lifetime) on a real LocalCluster of processes: the mechanics, in seconds.

The SLURM tier measures the whole thing (tests/slurm/test_walltime.py); here one worker at a time shows
the two rules: a worker at its deadline finishes its running calculation before it retires, and a
calculation that cannot finish before the deadline is handed to another worker, never started.
"""

from __future__ import annotations

import time

import psutil
from distributed import Client, LocalCluster

from activemat.compute.oracle import ReplayOracle
from activemat.compute.presets import load_preset
from activemat.dispatch.lifetime import DrainingLifetime
from activemat.dispatch.tasks import on_worker


def _ages(client) -> dict[str, float]:
    """Seconds each worker process has lived, by worker name."""
    info = client.run(lambda dask_worker: (str(dask_worker.name), time.time() - psutil.Process().create_time()))
    return dict(info.values())


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _cluster():
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False})


def test_a_worker_at_its_lifetime_finishes_its_calculation_then_retires():
    preset = load_preset("gpaw-fast")
    with _cluster() as cluster, Client(cluster) as client:
        (age,) = _ages(client).values()
        client.register_plugin(DrainingLifetime(lifetime=age + 2.0))  # the deadline comes 2 s into the task
        started = time.time()
        future = client.submit(on_worker, ReplayOracle({0: 0.5}, delay=5.0), "t0", False, 0, 0, None, preset, "",
                               pure=False)
        record = future.result(timeout=60)
        assert record.ok and record.gap == 0.5 and record.finished - record.started >= 5.0
        assert record.finished > started + 2.0  # it ran through the deadline
        del future
        _wait_for(lambda: not client.scheduler_info()["workers"])  # then the worker closed


def test_a_calculation_that_cannot_finish_goes_to_a_worker_with_time_left():
    preset = load_preset("gpaw-fast")
    with _cluster() as cluster, Client(cluster) as client:
        (first,) = _ages(client)
        client.register_plugin(DrainingLifetime(lifetime=30.0))
        _wait_for(lambda: _ages(client)[first] > 14.0)  # < 16 s left: a 16 s calculation (x 1.25) does not fit
        future = client.submit(on_worker, ReplayOracle({0: 0.5}, delay=1.0), "t1", False, 0, 0, None, preset, "",
                               pure=False, expected=16.0)
        _wait_for(lambda: not client.scheduler_info()["workers"])  # the first worker drained and left
        assert future.status == "pending"  # handed back, not failed
        # a fresh worker, 30 s ahead of it (the retired one stays in the LocalCluster's spec: ask for one more)
        cluster.scale(len(cluster.worker_spec) + 1)
        record = future.result(timeout=60)
        assert record.ok and record.worker != first
