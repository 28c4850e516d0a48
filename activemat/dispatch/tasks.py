"""What runs on a Dask worker around a calculation: the start announcement and the worker's name.

The compute layer knows no cluster, so the record it returns has no worker
name; :func:`on_worker` stamps it, and, when the campaign enforces a time
limit, first tells the driver that the calculation started (an event on
:data:`STARTED_TOPIC`, read with ``client.get_events``).
"""

from __future__ import annotations

import time

from distributed import Reschedule, get_worker
from distributed.utils import sync

from activemat.dispatch.lifetime import plugin_of

STARTED_TOPIC = "activemat-started"


def on_worker(task, tag: str, announce: bool, *args, expected: float | None = None):
    """Run ``task(*args)`` inside a Dask worker; return its record with the worker's name.

    On a worker with a lifetime (:class:`~activemat.dispatch.lifetime.DrainingLifetime`), a calculation
    expected to take ``expected`` seconds that would not finish before the worker retires is not started:
    the worker starts draining and the task goes back to the scheduler (``Reschedule``) for another worker.
    """
    worker = get_worker()
    lifetime = plugin_of(worker)
    if lifetime is not None and not lifetime.fits(expected):
        sync(worker.loop, lifetime.stop_taking_work,
             f"{tag} expected to take {expected:.0f} s, {lifetime.remaining():.0f} s left" if expected else tag)
        raise Reschedule()
    if announce:  # only now: a calculation handed back above never started
        worker.log_event(STARTED_TOPIC, {"tag": tag, "worker": worker.address, "time": time.time()})
    record = task(*args)
    record.worker = str(worker.name)
    return record
