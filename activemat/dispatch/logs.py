"""Dask's own messages go to a log file beside the store, not to the terminal.

A campaign's standard error carries its progress lines and, when it stops on a
fault, one ``activemat: error:`` line. Dask adds to it: a worker process
inherits the driver's standard error, and while a cluster shuts down under
load a worker can log a 9-line traceback (a heartbeat to a scheduler already
gone) just before the driver's one line. Such messages are Dask's, not the
campaign's: with a store, the local cluster's worker processes write their
standard error (Dask's log, GPAW's or MPI's complaints, Python's ``Exception
ignored`` traces) into ``<store>.dask.log``, and the driver's own Dask loggers
(scheduler, nanny, client) send their errors there too while the cluster runs.

The log file is appended to, never opened through a symbolic link, and a full
disk under it loses the message, never the campaign (nothing is printed about
a failed log write). SLURM workers keep their job logs (``<store>.jobs/``).
"""

from __future__ import annotations

import logging
import os
import stat
from contextlib import contextmanager
from pathlib import Path

#: Environment variable naming the log file a local worker process writes its standard error into.
LOG_ENV = "ACTIVEMAT_DASK_LOG"

#: The driver-side loggers whose errors go to the log file while a cluster runs.
DRIVER_LOGGERS = ("distributed", "tornado", "asyncio")


def log_path_for(store: str | os.PathLike) -> Path:
    """The Dask log file of a store: ``<store>.dask.log``."""
    return Path(f"{os.path.realpath(store)}.dask.log")


def open_log(path: str | os.PathLike) -> int:
    """Open ``path`` for appending (created if missing, mode 0600): a regular file of this user, never through a
    symbolic link. An OSError if it cannot be, or if a link, FIFO, device or someone else's file sits there."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{path}: not a regular file of this user; remove it")
    os.set_blocking(fd, True)
    return fd


def redirect_stderr() -> None:
    """In a worker process: point file descriptor 2 (and so ``sys.stderr`` and every child's) at the log file
    named by :data:`LOG_ENV`. Without it, or if the file cannot be opened, standard error stays as it is."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    try:
        fd = open_log(path)
    except OSError:
        return  # a worker that cannot log still computes; its messages then reach the terminal
    os.dup2(fd, 2)  # the copy on 2 is inherited by the worker's own children (an MPI launcher)
    os.close(fd)


class _QuietHandler(logging.StreamHandler):
    """A handler whose failed writes (a full disk) are dropped: logging would print them to standard error."""

    def handleError(self, record):  # noqa: N802 (logging's name)
        pass


@contextmanager
def driver_log(path: str | os.PathLike | None):
    """While the block runs, the driver's Dask loggers write their errors to ``path`` and nothing to the terminal.

    With ``path`` None (no store), or a file that cannot be opened, nothing changes.
    """
    if path is None:
        yield
        return
    try:
        stream = os.fdopen(open_log(path), "a", encoding="utf-8", errors="replace")
    except OSError:
        yield
        return
    handler = _QuietHandler(stream)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(asctime)s driver %(name)s %(levelname)s %(message)s"))
    # A filter, not a level: LocalCluster's silence_logs sets the stream handlers' level itself while it runs.
    def mute(record) -> bool:
        return False

    muted = [h for name in DRIVER_LOGGERS for h in logging.getLogger(name).handlers
             if isinstance(h, logging.StreamHandler) and not isinstance(h, _QuietHandler)]
    loggers = {name: logging.getLogger(name) for name in DRIVER_LOGGERS}
    propagate = {name: logger.propagate for name, logger in loggers.items()}
    try:
        for h in muted:
            h.addFilter(mute)
        for logger in loggers.values():
            logger.addHandler(handler)
            logger.propagate = False  # not on to the root logger's handlers (or logging's last resort on stderr)
        yield
    finally:
        for name, logger in loggers.items():
            logger.removeHandler(handler)
            logger.propagate = propagate[name]
        for h in muted:
            h.removeFilter(mute)
        try:
            stream.close()
        except OSError:
            pass
