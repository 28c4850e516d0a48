"""Real campaigns whose workers are SLURM jobs, on the local single-node SLURM.

Each test runs a tiny real campaign (4-atom cells, gpaw-fast, seconds per
calculation) with at most one single-core worker job at a time, everything on
127.0.0.1 and TLS-secured. Evidence that the work went through SLURM: the
jobs seen in `squeue` while it ran, their log files, and the worker names
(SLURMCluster-N) the store recorded for every calculation.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil

from activemat.campaign.config import ClusterSection
from activemat.dispatch.clusters import JOB_NAME, connect, worker_slots
from activemat.store.read import read_store
from tests.conftest import cli_process
from tests.slurm.conftest import ACTIVEMAT, ROOT, QueueWatcher, slurm_campaign, squeue, wait_until_gone


def job_log(store: Path, job: str) -> str:
    """What a worker job wrote (dask logs to stderr), from <store>.jobs/."""
    return (Path(f"{store}.jobs") / f"{JOB_NAME}-{job}.err").read_text()


def ok_rows(store: Path) -> dict:
    calc = read_store(store).calculations
    ok = calc["status"] == "ok"
    return {"gap": np.asarray(calc["gap"])[ok], "worker": [str(w) for w in np.asarray(calc["worker"])[ok]],
            "status": [str(s) for s in calc["status"]], "error": [str(e) for e in calc["error"]]}


def _listening_hosts(job_ids) -> set[str]:
    """Addresses that the processes of these SLURM jobs listen on."""
    hosts = set()
    for proc in psutil.process_iter(["environ"]):
        try:
            if (proc.info["environ"] or {}).get("SLURM_JOB_ID") in job_ids:
                hosts |= {c.laddr.ip for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return hosts


def test_connect_submits_tls_workers_as_slurm_jobs(slurm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section = ClusterSection(kind="slurm", partition="debug", interface="lo", walltime="00:05:00", memory="1GB",
                             minimum_jobs=1, maximum_jobs=2, dashboard=False)
    lines = []
    with connect(section, log=lines.append, store=tmp_path / "c.h5") as client:
        assert worker_slots(client) == 2  # the adaptive maximum: the loop fills it and jobs follow
        client.wait_for_workers(1, timeout=120)
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        info = client.run(lambda: (os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_JOB_NAME"),
                                   os.environ.get("OMP_NUM_THREADS")))
        assert all(addr.startswith("tls://127.0.0.1:") for addr in info)
        job_ids = {job for job, _, _ in info.values()}
        assert {name for _, name, _ in info.values()} == {JOB_NAME} and {t for *_, t in info.values()} == {"1"}
        queued = {job: (name, state) for job, name, state in squeue()}
        assert all(queued[job] == (JOB_NAME, "RUNNING") for job in job_ids)
        assert _listening_hosts(job_ids) == {"127.0.0.1"}  # nanny, worker, its HTTP server: loopback only
    assert any(line.startswith("slurm: 1-2 job(s)") for line in lines)
    certs = tmp_path / "c.h5.tls"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700 and (certs / "worker.key").is_file()
    for job in job_ids:
        log = (tmp_path / "c.h5.jobs" / f"{JOB_NAME}-{job}.err").read_text()
        assert "Registered to:      tls://127.0.0.1:" in log
    wait_until_gone(job_ids, timeout=60)  # closing the cluster cancels its jobs


def test_cli_campaign_runs_on_slurm_workers(slurm, tmp_path):
    (tmp_path / "tiny.toml").write_text(slurm_campaign(maximum_jobs=2))
    with QueueWatcher(tmp_path) as queue:
        result = cli_process("run", "tiny.toml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["completed"] == 4 and summary["stop_reason"] == "budget reached"
    rows = ok_rows(tmp_path / "runs" / "tiny.h5")
    assert len(rows["gap"]) == 4 and np.all((rows["gap"] > 0) & (rows["gap"] < 1.5))
    assert all(w.startswith("SLURMCluster-") for w in rows["worker"]), rows["worker"]
    jobs = queue.jobs(JOB_NAME)
    assert jobs, f"no worker job seen in squeue: {queue.seen}"
    # each job's log, beside the store, names the workers that computed the rows and their TLS scheduler
    logs = [job_log(tmp_path / "runs" / "tiny.h5", job) for job in jobs]
    names = {line.split()[-1] for log in logs for line in log.splitlines() if "Worker name:" in line}
    assert set(rows["worker"]) <= names
    assert all("Registered to:      tls://127.0.0.1:" in log for log in logs)
    certs = tmp_path / "runs" / "tiny.h5.tls"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700 and (certs / "ca.pem").is_file()
    wait_until_gone(jobs, timeout=60)


def test_workers_retire_before_walltime_and_are_replaced(slurm, tmp_path):
    """A 15 s worker lifetime in a 5 min job: workers retire mid-campaign, new jobs replace them, nothing is lost.

    A tiny calculation takes about 3 s and a worker 2-4 s to start, so each worker computes a few of the 7 before it
    retires. (With 5 s, a loaded machine never finished one: Dask moves the cut-off task to the next worker, which
    retires in turn, and the run spun until the test's timeout.)
    """
    # Dask's own --lifetime (drain = false): draining workers are tests/slurm/test_walltime.py's subject
    (tmp_path / "life.toml").write_text(slurm_campaign(walltime="00:05:00", lifetime="15s", lifetime_stagger="2s",
                                                       drain=False))
    with QueueWatcher(tmp_path) as queue:
        result = cli_process("run", "life.toml", "--budget", "7", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["completed"] == 7
    jobs = queue.jobs(JOB_NAME)
    assert len(jobs) >= 2, f"expected a replacement job: {queue.seen}"
    retired = [job for job in jobs if "worker-lifetime-reached" in job_log(tmp_path / "runs" / "tiny.h5", job)]
    assert retired, "a worker retired at its lifetime"
    rows = ok_rows(tmp_path / "runs" / "tiny.h5")
    assert len(rows["gap"]) == 7
    # a calculation cut off by a retiring worker is a 'worker lost' attempt the loop ran again
    lost = [e for s, e in zip(rows["status"], rows["error"]) if s != "ok"]
    assert all("KilledWorker" in e or "worker" in e.lower() for e in lost), lost
    wait_until_gone(jobs, timeout=60)


def test_driver_runs_as_a_batch_job_and_resubmits_itself(slurm, tmp_path):
    """slurm/campaign.sbatch: the driver is a job; at its time-limit signal it chains a job that resumes."""
    (tmp_path / "tiny.toml").write_text(slurm_campaign())
    env = {**os.environ, "ACTIVEMAT": ACTIVEMAT}
    # a time limit well beyond the script's USR1 warning (600 s before the end), so only the test signals
    submit = subprocess.run(["sbatch", "--parsable", "--time=00:30:00", str(ROOT / "slurm" / "campaign.sbatch"),
                             "tiny.toml", "--budget", "6"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert submit.returncode == 0, submit.stderr
    first = submit.stdout.strip().split(";")[0]
    jobs = [first]
    try:
        out = tmp_path / f"activemat-driver-{first}.out"
        deadline = time.monotonic() + 300
        while "2/6" not in (out.read_text() if out.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "2/6" in out.read_text(), out.read_text() if out.exists() else f"no output; queue {squeue()}"
        # what SLURM sends before the time limit (#SBATCH --signal=B:USR1@600), sent now
        subprocess.run(["scancel", "--signal=USR1", "--batch", first], check=True)
        deadline = time.monotonic() + 30
        while "resubmitted as job" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = out.read_text().split("resubmitted as job ")[1].split()[0].rstrip(",")
        jobs.append(second)
        wait_until_gone(jobs, timeout=400)
    finally:  # a failed test must not leave drivers (and through them, workers) in the queue
        subprocess.run(["scancel", *jobs], capture_output=True)
    first_log, second_log = out.read_text(), (tmp_path / f"activemat-driver-{second}.out").read_text()
    assert first_log.count("resubmitted as job") == 1
    assert "SIGTERM" in first_log and "driver exited with status 0" in first_log and "6/6" not in first_log
    assert f"job {second} on" in second_log and "1/6" not in second_log and "6/6" in second_log  # resumed
    assert "stopped: budget reached; 6 completed" in second_log and "driver exited with status 0" in second_log
    rows = ok_rows(tmp_path / "runs" / "tiny.h5")
    assert len(rows["gap"]) == 6 and all(w.startswith("SLURMCluster-") for w in rows["worker"])
