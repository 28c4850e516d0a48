"""A dead node and missing PAW setups are infrastructure faults, not calculation failures (issue 29, item 1).

- Dead node: the only worker of a scheduler someone else runs (``dask worker --no-nanny``, no nanny to restart
  it) is killed mid-calculation. Dask keeps the task queued for a worker that never comes, and the driver used
  to wait in silence for ever. Now it says so, waits ``[faults] worker_wait`` seconds, then stops with one line
  naming the fault and the fix; nothing is given up, and a resume with a worker back completes the campaign.
- Missing setups: worker processes whose GPAW finds no PAW setup (no gpaw-data on the host: GPAW's own
  ``~/.gpaw/rc.py`` empties its setup paths, and ``GPAW_SETUP_PATH`` names an empty folder). Every calculation
  failed as the candidate's fault and was given up after its fallbacks; now the run stops at the first with
  one line naming the host, GPAW's setup paths and the fix, exit 2, and a resume with the setups back runs.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.faults import INFRASTRUCTURE, infrastructure_fault
from activemat.compute.oracle import ReplayOracle
from activemat.store import schema as S
from activemat.store.read import read_store
from tests.conftest import TINY, campaign_toml, synthetic_gaps
from tests.faults.drivers import reap

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
STORE = "runs/node.h5"


def _worker(address: str) -> subprocess.Popen:
    """One Dask worker process without a nanny: killed, it stays dead, as a node that is gone."""
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny",
                             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _run(client, budget: int, wait: float):
    text = campaign_toml(store=STORE, seed=3, stop={"budget": budget}, faults={"worker_wait": wait})
    config = parse_campaign(text)
    oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), delay=2.0)
    out = io.StringIO()
    summary = run_campaign(config, text, client=client, task=oracle,
                           report=Reporter(budget, Console(file=out, width=400)))
    return summary, out.getvalue()


def test_a_dead_node_stops_the_run_with_one_line_and_gives_up_nothing(in_tmp):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        node = _worker(cluster.scheduler_address)
        try:
            client.wait_for_workers(1, timeout=120)

            ended, rescue = threading.Event(), []

            def kill_mid_calculation():
                end = time.time() + 120
                store = in_tmp / STORE
                while time.time() < end:
                    if store.exists() and (read_store(store).calculations["status"] == S.RUNNING).any():
                        time.sleep(0.5)
                        node.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.1)
                if not ended.wait(60):  # a driver that waits in silence for ever: a worker ends the test
                    rescue.append(_worker(cluster.scheduler_address))

            killer = threading.Thread(target=kill_mid_calculation)
            killer.start()
            t0 = time.monotonic()
            summary, log = _run(client, budget=3, wait=4)
            ended.set()
            killer.join()
            for proc in rescue:
                reap(proc)
            print(log)
            assert not rescue, "the driver waited in silence for a worker that never came"
            assert node.wait(10) == -signal.SIGKILL
            assert time.monotonic() - t0 < 60
            fault = summary["fault"]
            assert fault.startswith(f"{INFRASTRUCTURE}: no Dask worker connected to {cluster.scheduler_address} "
                                    "for 4 s") and "start workers" in fault and "resume" in fault, fault
            assert sum("no Dask worker connected" in line and "waiting up to 4 s" in line
                       for line in log.splitlines()) == 1, log
            assert summary["given_up"] == 0 and summary["to_retry"] >= 1, summary
            calc = read_store(in_tmp / STORE).calculations
            stopped = calc["status"] != S.OK
            assert stopped.any() and set(calc["status"][stopped]) <= {S.INTERRUPTED, S.FAILED}
            hit = set(calc["candidate"][stopped].tolist())

            node = _worker(cluster.scheduler_address)  # the node is back: the resume completes the campaign
            client.wait_for_workers(1, timeout=120)
            summary, log = _run(client, budget=3, wait=4)
            assert "fault" not in summary and summary["completed"] == 3 and summary["given_up"] == 0, log
            calc = read_store(in_tmp / STORE).calculations
            assert hit <= set(calc["candidate"][calc["status"] == S.OK].tolist())
        finally:
            reap(node)


def test_gpaw_missing_setup_error_is_an_infrastructure_fault():
    """GPAW's own error (gpaw.setup_data.search_for_file) and activemat's both name the setup, host and fix."""
    gpaw_error = FileNotFoundError('Could not find required PAW dataset file "Ge.LDA".\n\nYou need to set ...')
    assert infrastructure_fault(FileNotFoundError(2, "No such file or directory", "input.traj")) is None
    try:
        try:
            raise gpaw_error
        except FileNotFoundError as exc:
            raise RuntimeError("GPAW failed") from exc
    except RuntimeError as exc:
        fault = infrastructure_fault(exc)
    assert fault.startswith(f"{INFRASTRUCTURE}: no PAW setup Ge.LDA on host ") and "GPAW_SETUP_PATH" in fault, fault
    assert "\n" not in fault


@pytest.mark.gpaw
def test_workers_without_paw_setups_stop_the_run_and_give_up_nothing(tmp_path):
    """Real `activemat run` (real GPAW, real worker processes) on hosts with no PAW setups, then with them."""
    pytest.importorskip("gpaw")
    home, empty = tmp_path / "home", tmp_path / "no-setups"
    (home / ".gpaw").mkdir(parents=True)
    empty.mkdir()
    (home / ".gpaw" / "rc.py").write_text("setup_paths[:] = []  # a host without gpaw-data\n")
    (tmp_path / "campaign.toml").write_text(campaign_toml(TINY, stop={"budget": 2}))
    bare = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home), "GPAW_SETUP_PATH": str(empty)}

    def run(env):
        proc = subprocess.Popen([sys.executable, "-m", "activemat.cli", "run", "campaign.toml"], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=600)
        finally:
            reap(proc)
        return proc.returncode, err

    code, err = run(bare)
    print(err[-3000:])
    lines = err.rstrip("\n").splitlines()
    assert code == 2, err[-3000:]
    assert re.match(rf"activemat: error: {INFRASTRUCTURE}: no PAW setup (Si|Ge)\.PBE on host ", lines[-1]), lines[-1]
    assert str(empty) in lines[-1] and "install gpaw-data there or set GPAW_SETUP_PATH" in lines[-1], lines[-1]
    assert "then resume" in lines[-1] and sum(line.startswith("activemat: error:") for line in lines) == 1
    assert "Traceback" not in err
    calc = read_store(tmp_path / "runs" / "tiny.h5").calculations
    assert len(calc["status"]) <= 2 and (calc["status"] == S.FAILED).all()
    assert all(e.startswith(f"{INFRASTRUCTURE}: no PAW setup") for e in calc["error"]), calc["error"]
    assert (calc["fallback"] == 0).all(), "missing setups are no reason for the preset's fallbacks"

    code, err = run({**os.environ, "PYTHONPATH": str(REPO)})  # the setups are back
    assert code == 0, err[-3000:]
    calc = read_store(tmp_path / "runs" / "tiny.h5").calculations
    ok = calc["status"] == S.OK
    assert ok.sum() == 2 and (calc["fallback"][ok] == 0).all()
