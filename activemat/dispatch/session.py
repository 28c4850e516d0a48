"""A Dask worker preload: the worker process leaves the driver's session.

A terminal sends Ctrl-C to its whole foreground process group, and
``timeout`` and many batch systems signal a job's group, not its leader.
Worker processes that stayed in the driver's group would die mid-calculation
while the driver, which handles the signal, waits for them. In a session of
their own they receive only what the driver (through Dask) tells them.
"""

from __future__ import annotations

import os


def detach() -> None:
    """Move this process into a new session (and process group), unless it already leads one."""
    if os.getpgrp() != os.getpid():
        os.setsid()


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process as it starts."""
    detach()
