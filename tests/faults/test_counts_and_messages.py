"""Counts and messages that disagreed (issue 29, item 7).

- after a second SIGTERM the closing line and ``run --json`` said ``to_retry 0`` while ``status`` said 2 (the
  cancelled calculations were marked interrupted in the store but not queued in the run's ledger);
- a refusal through a hard link named the refused driver's own PID instead of the running driver's;
- a row lost with its worker recorded 0 s and no worker (starts were announced only under a time limit).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.campaign.signals import StopRequested
from activemat.campaign.stored import open_campaign
from activemat.compute.oracle import ReplayOracle
from activemat.errors import StoreLocked
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml, synthetic_gaps
from tests.faults.drivers import completed

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]


def _run(client, budget: int, oracle_kwargs: dict, stop: StopRequested | None = None):
    text = campaign_toml(store="runs/counts.h5", seed=4, stop={"budget": budget},
                         cluster={"prefetch": 0, "dashboard": None})  # the dashboard as by default
    config = parse_campaign(text)
    oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), **oracle_kwargs)
    out = io.StringIO()
    summary = run_campaign(config, text, client=client, task=oracle, stop=stop,
                           report=Reporter(budget, Console(file=out, width=300)))
    return summary, out.getvalue()


def test_a_second_signal_counts_the_cancelled_calculations_to_retry(in_tmp, client):
    stop = StopRequested()
    store = in_tmp / "runs/counts.h5"

    def signal_twice():
        end = time.time() + 120
        # two results in, and a calculation running (both seeds may land together, and the next picks come a
        # refit later: a signal in between would find nothing to cancel)
        while time.time() < end and not (len(completed(store)) >= 2
                                         and (read_store(store).calculations["status"] == S.RUNNING).any()):
            time.sleep(0.05)
        stop(signal.SIGTERM, None)  # the first waits for running calculations ...
        stop(signal.SIGTERM, None)  # ... the second cancels them

    thread = threading.Thread(target=signal_twice)
    thread.start()
    summary, log = _run(client, 20, {"delay": 1.0}, stop)
    thread.join()
    print(log[-1200:])
    calc = read_store(store).calculations
    interrupted = int((calc["status"] == S.INTERRUPTED).sum())
    assert interrupted >= 1, "nothing was running when the second signal came: the test proves nothing"
    status = open_campaign(store).status()
    assert summary["to_retry"] == status["to_retry"] == interrupted, (summary, status)
    closing = [line for line in log.splitlines() if line.startswith("stopped: ")]
    assert closing and f"{interrupted} to retry" in closing[-1], closing


def test_a_lost_attempt_keeps_when_and_where_it_ran(in_tmp, client):
    """A task that dies with its worker (here: raises) is a 'worker lost' row with its start and worker."""
    summary, _ = _run(client, 4, {"delay": 0.3, "raise_attempts": {0: 1, 401: 1}})
    calc = read_store(in_tmp / "runs/counts.h5").calculations
    lost = np.char.startswith(calc["error"].astype(str), S.LOST)
    assert lost.sum() == 2 and summary["given_up"] == 0
    assert (calc["finished"][lost] > calc["started"][lost]).all(), "a lost attempt recorded 0 s"
    assert all(calc["worker"][lost]), "a lost attempt recorded no worker"


HOLDER = """
import sys, time
from activemat.campaign.config import parse_campaign
from activemat.space.pool import build_pool
from activemat.store.write import CampaignStore
text = sys.argv[2]
s = CampaignStore.create(sys.argv[1], campaign_text=text, identity=parse_campaign(text).identity(),
                         pool=build_pool(supercell=(1, 1, 2)), presets={})
print("READY", flush=True)
time.sleep(120)
"""


def test_a_refusal_through_a_hard_link_names_the_running_driver(tmp_path):
    text = campaign_toml({}, name="held", space={"supercell": [1, 1, 2]})
    real = tmp_path / "real.h5"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(real), text], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "READY"
        # several names: the lock files beside them come in directory order, which put the refused driver's own
        # lock file before the holder's for some of them
        for name in ("hard.h5", "a.h5", "b.h5", "link.h5", "x.h5", "zz.h5"):
            hard = tmp_path / name
            hard.hardlink_to(real)
            for _ in range(2):  # the second time our own <name>.lock exists from the first attempt
                with pytest.raises(StoreLocked) as exc:
                    CampaignStore.open(hard, parse_campaign(text).identity())
                msg = str(exc.value)
                print("MESSAGE:", msg)
                assert f"pid {holder.pid} " in msg and f"opened as {real}" in msg, msg
                assert f"pid {os.getpid()} " not in msg, msg
            hard.unlink()
    finally:
        holder.kill()
        holder.communicate()
