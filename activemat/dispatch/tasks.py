"""What runs on a Dask worker around a calculation: the start announcement and the worker's name.

The compute layer knows no cluster, so the record it returns has no worker
name; :func:`on_worker` stamps it, and, when the campaign enforces a time
limit, first tells the driver that the calculation started (an event on
:data:`STARTED_TOPIC`, read with ``client.get_events``).
"""

from __future__ import annotations

import time

from distributed import get_worker

STARTED_TOPIC = "activemat-started"


def on_worker(task, tag: str, announce: bool, *args):
    """Run ``task(*args)`` inside a Dask worker; return its record with the worker's name."""
    worker = get_worker()
    if announce:
        worker.log_event(STARTED_TOPIC, {"tag": tag, "worker": worker.address, "time": time.time()})
    record = task(*args)
    record.worker = str(worker.name)
    return record
