"""Dask's messages go to ``<store>.dask.log``, not between the driver's lines (issue 29, item 7).

A disk-full exit printed a 9-line worker traceback (a heartbeat to a scheduler already closing) before its one
``activemat: error:`` line. Which message Dask logs while a cluster shuts down under load is a race; what
decides whether any of it reaches the terminal is where a worker process's standard error and the driver's Dask
loggers go. A driver process here starts the campaign's real local cluster (worker processes, TLS), runs a
function on a worker that writes to its standard error three ways (the file descriptor, ``sys.stderr``,
Dask's own logger) and logs a Dask error in the driver: its standard error must stay empty, the log must hold
all four.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from activemat.dispatch.logs import log_path_for, open_log
from tests.conftest import campaign_toml

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
    import logging, os, sys
    from activemat.campaign.config import parse_campaign
    from activemat.dispatch.clusters import connect

    def noisy():
        import logging, os, sys
        os.write(2, b"Traceback (most recent call last): WORKER-FD\\n")
        print("WORKER-SYS-STDERR", file=sys.stderr, flush=True)
        logging.getLogger("distributed.worker").error("WORKER-DASK-ERROR")
        return os.getpid()

    store, text = sys.argv[1:3]
    with connect(parse_campaign(text).cluster, store=store) as client:
        pid = client.submit(noisy, pure=False).result()
        logging.getLogger("distributed.scheduler").error("DRIVER-DASK-ERROR")
    logging.getLogger("distributed.scheduler").error("AFTER-THE-CLUSTER")  # the terminal's again
    print("WORKER", pid, os.getpid())
"""


def test_worker_and_driver_dask_messages_go_to_the_log_not_the_terminal(tmp_path):
    store = tmp_path / "runs" / "logs.h5"
    store.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(DRIVER), str(store), campaign_toml()],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    worker, driver = map(int, proc.stdout.split()[1:3])
    assert worker != driver, "the function ran in the driver, not a worker process"
    assert proc.stderr.strip().splitlines() == [line for line in proc.stderr.strip().splitlines()
                                                if "AFTER-THE-CLUSTER" in line], proc.stderr[-3000:]
    log = log_path_for(store)
    assert log == Path(f"{store.resolve()}.dask.log") and log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    for marker in ("WORKER-FD", "WORKER-SYS-STDERR", "WORKER-DASK-ERROR", "DRIVER-DASK-ERROR"):
        assert marker in text, (marker, text[-2000:])
    assert "AFTER-THE-CLUSTER" not in text


def test_the_log_is_never_opened_through_a_planted_link(tmp_path):
    target = tmp_path / "victim"
    target.write_text("untouched\n")
    log = tmp_path / "camp.h5.dask.log"
    log.symlink_to(target)
    with pytest.raises(OSError):
        open_log(log)
    os.mkfifo(tmp_path / "fifo.log")
    with pytest.raises(OSError):
        open_log(tmp_path / "fifo.log")
    assert target.read_text() == "untouched\n"
