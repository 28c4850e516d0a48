"""Where calculations run: a dask.distributed Client for the campaign's [cluster]."""

from __future__ import annotations

import logging
from contextlib import contextmanager

# GPAW's C code holds the GIL and BLAS threads fight over cores: one process per
# calculation, one thread each.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextmanager
def connect(section, log=print):
    """Yield a Client for the cluster section; everything binds to 127.0.0.1."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=section.workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0" if section.dashboard else None,
                           env=SINGLE_THREAD_ENV, silence_logs=logging.ERROR)
    try:
        with Client(cluster) as client:
            if section.dashboard:
                log(f"dashboard: {cluster.dashboard_link}")
            yield client
    finally:
        cluster.close()


def worker_slots(client) -> int:
    """Calculations the cluster can run at once (one per worker thread)."""
    return max(sum(client.nthreads().values()), 1)
