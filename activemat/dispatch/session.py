"""A Dask worker preload: the worker process leaves the driver's session, and its standard error the terminal.

A terminal sends Ctrl-C to its whole foreground process group, and
``timeout`` and many batch systems signal a job's group, not its leader.
Worker processes that stayed in the driver's group would die mid-calculation
while the driver, which handles the signal, waits for them. In a session of
their own they receive only what the driver (through Dask) tells them.

A local cluster's workers also write their standard error into the store's
Dask log (:mod:`activemat.dispatch.logs`), so a traceback Dask logs while the
cluster shuts down never lands between the driver's lines.
"""

from __future__ import annotations

import os

from activemat.dispatch.logs import redirect_stderr


def detach() -> None:
    """Move this process into a new session (and process group), unless it already leads one."""
    if os.getpgrp() != os.getpid():
        os.setsid()


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process as it starts."""
    detach()
    redirect_stderr()
