"""Where calculations run: a dask.distributed Client for the campaign's [cluster].

Three kinds, one interface (`connect` yields a Client):

- ``local``: a LocalCluster of single-threaded worker processes on 127.0.0.1.
- ``slurm``: a ``dask_jobqueue.SLURMCluster``. Workers are SLURM jobs submitted
  with ``sbatch``; the cluster scales adaptively between ``minimum_jobs`` and
  ``maximum_jobs``. Workers retire before the job's walltime (``--lifetime``,
  ``--lifetime-stagger``) and are replaced; Dask reruns a retiring worker's
  calculation elsewhere. Scheduler, workers and client talk over TLS with the
  campaign's certificates (`activemat.dispatch.security`).
- ``address``: a scheduler someone already runs (TLS when its address is ``tls://``).

What to compute stays in :mod:`activemat.compute`; :func:`task_for` only picks how a
calculation is launched (``mpi_ranks`` cores under an MPI launcher: :class:`activemat.compute.mpi.MpiTask`).
"""

from __future__ import annotations

import logging
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from activemat.compute.bandgap import SINGLE_THREAD_ENV, compute_gap
from activemat.compute.mpi import MpiTask, mpi_backend
from activemat.dispatch.security import security_for, tls_dir_for
from activemat.dispatch.times import worker_lifetime
from activemat.errors import InputError

JOB_NAME = "activemat-worker"

# dask-jobqueue profile keys that slurm_cluster() sets from the [cluster] section (merging the profile's).
_DECIDED = {"queue", "account", "walltime", "cores", "job-cpu", "processes", "memory", "interface", "name",
            "worker-extra-args", "job-script-prologue", "job-extra-directives", "scheduler-options"}

# Calculations an adaptive cluster can run once it has scaled up (see worker_slots).
_CAPACITY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# -- connecting ------------------------------------------------------------------

def _security(section, store, stack: ExitStack):
    """A distributed Security for the section, or None without TLS."""
    if not section.use_tls:
        return None
    if section.tls_dir:
        directory = Path(section.tls_dir)
    elif store is not None:
        directory = tls_dir_for(store)
    elif section.kind == "address":
        raise InputError("[cluster] kind 'address' with TLS needs tls_dir: the directory holding the "
                         "certificates the scheduler was started with")
    else:
        # No store to sit beside: certificates for this run only, in a private folder of the
        # working directory (shared with the compute nodes on a cluster), removed afterwards.
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=".activemat-tls-", dir=os.getcwd()))
        directory = Path(tmp) / "tls"
    return security_for(directory, create=section.kind != "address")


def slurm_cluster(section, *, security=None, log_directory: str | None = None):
    """A dask_jobqueue.SLURMCluster for a [cluster] section with kind 'slurm' (no jobs submitted yet).

    Keys set in the campaign file override the named ``profile`` (a section
    ``jobqueue.<profile>`` of the Dask config that needs only the keys it
    changes); without a profile the section's defaults apply. Every worker
    process runs one thread; a job books ``cores`` CPUs for its
    ``processes`` x ``mpi_ranks`` cores.
    """
    import dask
    from dask_jobqueue import SLURMCluster

    explicit = section.model_fields_set
    profile: dict = {}
    if section.profile:
        profile = dask.config.get(f"jobqueue.{section.profile}", None)
        if not isinstance(profile, dict):
            raise InputError(f"[cluster] profile '{section.profile}': no jobqueue.{section.profile} in the Dask "
                             "config; copy slurm/jobqueue.yaml to ~/.config/dask/ or point DASK_CONFIG at it")
    # Profile keys activemat does not decide itself pass straight through (dask-jobqueue's
    # jobqueue.slurm defaults fill whatever neither sets).
    passthrough = {("job_name" if k == "name" else k.replace("-", "_")): v for k, v in profile.items()
                   if v is not None and k not in _DECIDED}

    def pick(field: str, *keys: str):
        if field in explicit or not profile:
            return getattr(section, field)
        return next((profile[k] for k in keys if profile.get(k) is not None), getattr(section, field))

    cores = int(pick("cores", "job-cpu", "cores"))
    processes = int(pick("processes", "processes") or max(cores // section.mpi_ranks, 1))
    walltime = pick("walltime", "walltime")
    try:
        life, spread = worker_lifetime(walltime, section.lifetime, section.lifetime_stagger)
    except ValueError as exc:
        raise InputError(f"[cluster] {exc}") from None
    kwargs = dict(passthrough, cores=processes, processes=processes, job_cpu=cores, walltime=walltime,
                  memory=pick("memory", "memory"), job_name=passthrough.get("job_name", JOB_NAME),
                  worker_extra_args=[*(profile.get("worker-extra-args") or []),
                                     "--lifetime", f"{life}s", "--lifetime-stagger", f"{spread}s",
                                     "--dashboard-address", "127.0.0.1:0"],
                  job_script_prologue=[*(profile.get("job-script-prologue") or []),
                                       *(f"export {k}={v}" for k, v in SINGLE_THREAD_ENV.items()),
                                       *section.job_prologue],
                  job_extra_directives=[*(profile.get("job-extra-directives") or []), *section.job_directives],
                  # the scheduler's HTTP server (dashboard, health) stays on loopback: reach it by ssh -L
                  scheduler_options={**(profile.get("scheduler-options") or {}),
                                     "dashboard_address": "127.0.0.1:0", "dashboard": section.dashboard})
    for field, key, arg in [("partition", "queue", "queue"), ("account", "account", "account"),
                            ("interface", "interface", "interface")]:
        value = pick(field, key)
        if value is not None:
            kwargs[arg] = value
    if log_directory:
        kwargs["log_directory"] = log_directory
    if security is not None:
        kwargs.update(security=security, protocol="tls://")
    return SLURMCluster(silence_logs=logging.ERROR, **kwargs)


def _local_cluster(section, security):
    from distributed import LocalCluster

    extra = {"security": security, "protocol": "tls://"} if security is not None else {}
    # The scheduler's HTTP server runs even without a dashboard: a free port on loopback, never 8787.
    return LocalCluster(n_workers=section.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": section.dashboard},
                        env=SINGLE_THREAD_ENV, silence_logs=logging.ERROR, **extra)


@contextmanager
def connect(section, log=print, *, store: str | os.PathLike | None = None):
    """Yield a Client for the [cluster] section; close whatever was started on exit.

    Parameters
    ----------
    section
        The campaign's ClusterSection.
    log
        Called with one line each for the dashboard link and cluster details.
    store
        The campaign's store: TLS certificates go to ``<store>.tls/`` and SLURM
        job logs to ``<store>.jobs/``. Without it, certificates live in a
        private temporary folder of the working directory for this run only.
    """
    from distributed import Client

    if section.mpi_ranks > 1:
        task_for(section)  # refuse mpi_ranks > 1 here, before any job is submitted, when MPI is missing
    with ExitStack() as stack:
        security = _security(section, store, stack)
        if section.kind == "address":
            client = stack.enter_context(Client(section.address, security=security))
            log(f"scheduler: {section.address} ({len(client.nthreads())} workers)")
            yield client
            return
        if section.kind == "slurm":
            jobs = f"{Path(store).resolve()}.jobs" if store is not None else None
            cluster = stack.enter_context(slurm_cluster(section, security=security, log_directory=jobs))
            if section.minimum_jobs:
                # Submit the minimum at once rather than on the adaptive loop's first tick,
                # which was seen to submit nothing for minutes on a busy machine.
                cluster.scale(jobs=section.minimum_jobs)
            cluster.adapt(minimum_jobs=section.minimum_jobs, maximum_jobs=section.maximum_jobs)
            log(f"slurm: {section.minimum_jobs}-{section.maximum_jobs} job(s) of {cluster._dummy_job.worker_processes}"
                f" worker(s), scheduler {cluster.scheduler_address}" + (f", job logs in {jobs}" if jobs else ""))
        else:
            cluster = stack.enter_context(_local_cluster(section, security))
        client = stack.enter_context(Client(cluster, security=security))
        if section.kind == "slurm":
            _CAPACITY[client] = section.maximum_jobs * cluster._dummy_job.worker_processes
        if section.dashboard and cluster.dashboard_link:
            log(f"dashboard: {cluster.dashboard_link}")
        yield client


def worker_slots(client) -> int:
    """Calculations the cluster can run at once (one per worker thread).

    For an adaptive SLURM cluster this is what it can run once scaled up to
    ``maximum_jobs``: the loop submits that many, and adaptive scaling starts
    jobs for the queued ones (it never asks for more workers than tasks).
    """
    return max(sum(client.nthreads().values()), _CAPACITY.get(client, 0), 1)


def task_for(section, task=None):
    """The task to submit for a [cluster] section: `task` itself, or wrapped in MpiTask when mpi_ranks > 1."""
    task = task or compute_gap
    if section.mpi_ranks == 1:
        return task
    backend = mpi_backend()
    launcher = shlex.split(section.mpi_launcher)[0]
    if backend is None or not _which(launcher):
        raise InputError(f"[cluster] mpi_ranks = {section.mpi_ranks} needs GPAW built with MPI (`gpaw info`: "
                         f"MPI enabled) or mpi4py, and the launcher '{launcher}' on PATH; "
                         f"found backend {backend}, launcher {_which(launcher)}. Set mpi_ranks = 1 here")
    return MpiTask(section.mpi_ranks, section.mpi_launcher, backend, None if task is compute_gap else task)


def _which(program: str) -> str | None:
    return shutil.which(program)
