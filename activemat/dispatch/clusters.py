"""Where calculations run: a dask.distributed Client for the campaign's [cluster].

Three kinds, one interface (`connect` yields a Client):

- ``local``: a LocalCluster of single-threaded worker processes on 127.0.0.1, over
  TLS with a certificate made for the run and held in memory: loopback is open to
  every local user, and a Dask scheduler runs code for whoever connects.
- ``slurm``: a ``dask_jobqueue.SLURMCluster``. Workers are SLURM jobs submitted
  with ``sbatch``; the cluster scales adaptively between ``minimum_jobs`` and
  ``maximum_jobs``. Workers retire before the job's walltime and are
  replaced: by default they drain first (finish the running calculation,
  start none that cannot finish; :mod:`activemat.dispatch.lifetime`); with
  ``drain = false`` Dask's ``--lifetime`` retires them and reruns a cut-off
  calculation elsewhere. Scheduler, workers and client talk over TLS with the
  campaign's certificates (`activemat.dispatch.security`).
- ``address``: a scheduler someone already runs (TLS when its address is ``tls://``).

What to compute stays in :mod:`activemat.compute`; :func:`task_for` only picks how a
calculation is launched (``mpi_ranks`` cores under an MPI launcher: :class:`activemat.compute.mpi.MpiTask`).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import tempfile
import weakref
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dask

from activemat.compute.bandgap import SINGLE_THREAD_ENV, compute_gap
from activemat.compute.mpi import MpiTask, mpi_backend
from activemat.dispatch import session
from activemat.dispatch.lifetime import DrainingLifetime
from activemat.dispatch.logs import LOG_ENV, driver_log, log_path_for
from activemat.dispatch.security import security_for, tls_dir_for
from activemat.dispatch.times import worker_lifetime
from activemat.errors import InputError

JOB_NAME = "activemat-worker"

# Calculations an adaptive cluster can run once it has scaled up (see worker_slots).
_CAPACITY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Profile name -> (the profile as completed in the Dask config, the profile as found): settings read twice agree.
_COMPLETED: dict[str, tuple[dict, dict]] = {}


# -- connecting ------------------------------------------------------------------

def _security(section, store, stack: ExitStack):
    """A distributed Security for the section, or None without TLS.

    A local cluster by default gets a certificate made for this run alone and held in memory
    (``Security.temporary``): the driver hands it to the worker processes it starts, nothing is written to
    disk, and a process without it (another user's, or this user's) cannot connect to the scheduler or a
    worker. ``tls = true`` or ``tls_dir`` instead uses the campaign's certificates on disk, with which a
    client of your own can connect.
    """
    if not section.use_tls:
        return None
    if section.kind == "local" and section.tls is None and not section.tls_dir:
        from distributed.security import Security

        return Security.temporary()
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


def _profile(name: str) -> dict:
    """The dask-jobqueue profile ``jobqueue.<name>``, completed from dask-jobqueue's ``jobqueue.slurm`` defaults.

    dask-jobqueue reads every setting from ``jobqueue.<config_name>`` itself
    (also when it starts jobs later), so a short profile that names only what
    it changes is completed in the Dask config, with dask's own merge.
    """
    import dask_jobqueue  # noqa: F401  (its import registers the jobqueue.slurm defaults a profile is completed from)

    profile = dask.config.get(f"jobqueue.{name}", None)
    if not isinstance(profile, dict):
        raise InputError(f"[cluster] profile '{name}': no jobqueue.{name} in the Dask config; `activemat init "
                         "TEMPLATE --slurm` writes an example jobqueue.yaml: edit it, then copy it to ~/.config/dask/ "
                         "or point DASK_CONFIG at its folder")
    completed = _COMPLETED.get(name)
    if completed is not None and completed[0] == profile:
        return completed[1]  # completed by an earlier call: the keys the profile itself gave are those it had then
    merged = dask.config.merge(dask.config.get("jobqueue.slurm"), profile)
    dask.config.set({f"jobqueue.{name}": merged})
    _COMPLETED[name] = (merged, profile)
    return profile


def slurm_settings(section) -> dict:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` for a [cluster] section with kind 'slurm'.

    With a ``profile``, dask-jobqueue looks its settings up itself
    (``config_name``); keys set in the campaign file override it, and the
    campaign's prologue and directives are appended to the profile's. Without
    one, the section's values (and defaults) apply. Every worker process runs
    one thread; a job books ``cores`` CPUs for its ``processes`` x
    ``mpi_ranks`` cores.

    ``processes`` in the result is the number of Dask workers per job.
    """
    name = section.profile
    profile = _profile(name) if name else {}
    given = section.model_fields_set if name else set(type(section).model_fields)  # what overrides the profile

    def setting(field: str, key: str):
        """The campaign file's value, else the profile's (None if neither sets it)."""
        return getattr(section, field) if field in given else profile.get(key)

    def listed(key: str) -> list:
        return list(profile.get(key) or [])

    cores = int(setting("cores", "job-cpu") or setting("cores", "cores") or section.cores)
    processes = int(setting("processes", "processes") or max(cores // section.mpi_ranks, 1))
    walltime = setting("walltime", "walltime") or section.walltime
    try:
        life, spread = worker_lifetime(walltime, section.lifetime, section.lifetime_stagger)
    except ValueError as exc:
        raise InputError(f"[cluster] {exc}") from None
    # drain (default): the campaign's DrainingLifetime plugin retires workers (see connect); else Dask's --lifetime
    lifetime = [] if section.drain else ["--lifetime", f"{life}s", "--lifetime-stagger", f"{spread}s"]
    kwargs = dict(cores=processes, processes=processes, job_cpu=cores, walltime=walltime,
                  worker_extra_args=[*listed("worker-extra-args"), *lifetime, "--dashboard-address", "127.0.0.1:0"],
                  job_script_prologue=[*listed("job-script-prologue"),
                                       *(f"export {k}={v}" for k, v in SINGLE_THREAD_ENV.items()),
                                       *section.job_prologue],
                  job_extra_directives=[*listed("job-extra-directives"), *section.job_directives],
                  # the scheduler's HTTP server (dashboard, health) stays on loopback: reach it by ssh -L
                  scheduler_options={**(profile.get("scheduler-options") or {}),
                                     "dashboard_address": "127.0.0.1:0", "dashboard": section.dashboard})
    if "name" not in profile:
        kwargs["job_name"] = JOB_NAME
    for field, key in [("memory", "memory"), ("partition", "queue"), ("account", "account"),
                       ("interface", "interface")]:
        # the file's value, or the section's default where the profile has none (dask-jobqueue reads the rest)
        if (field in given or profile.get(key) is None) and getattr(section, field) is not None:
            kwargs[key] = getattr(section, field)
    if name:
        kwargs["config_name"] = name
    return kwargs


def cluster_walltime(section) -> str:
    """The walltime of a SLURM section's worker jobs: the campaign file's, else its profile's."""
    return slurm_settings(section)["walltime"]


def slurm_cluster(section, *, security=None, log_directory: str | None = None):
    """A dask_jobqueue.SLURMCluster for a [cluster] section with kind 'slurm' (no jobs submitted yet)."""
    from dask_jobqueue import SLURMCluster  # deferred: only SLURM campaigns need it

    kwargs = slurm_settings(section)
    if log_directory:
        kwargs["log_directory"] = log_directory
    if security is not None:
        kwargs.update(security=security, protocol="tls://")
    return SLURMCluster(silence_logs=logging.ERROR, **kwargs)


def _local_cluster(section, security, log: Path | None = None):
    from distributed import LocalCluster

    extra = {"security": security, "protocol": "tls://"} if security is not None else {}
    env = {**SINGLE_THREAD_ENV, LOG_ENV: str(log)} if log is not None else SINGLE_THREAD_ENV
    # The scheduler's HTTP server runs even without a dashboard: a free port on loopback, never 8787.
    # Worker processes leave the driver's process group and write their standard error into the store's Dask log
    # (activemat.dispatch.session, .logs): Ctrl-C reaches the driver only, and Dask's tracebacks never the terminal.
    return LocalCluster(n_workers=section.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": section.dashboard},
                        env=env, silence_logs=logging.ERROR, preload=[session.__name__], **extra)


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
        The campaign's store: TLS certificates go to ``<store>.tls/``, SLURM
        job logs to ``<store>.jobs/`` and Dask's messages (the driver's and a
        local cluster's workers') to ``<store>.dask.log``
        (:mod:`activemat.dispatch.logs`). Without it, certificates live in a
        private temporary folder of the working directory for this run only.
    """
    from distributed import Client

    if section.mpi_ranks > 1:
        task_for(section)  # refuse mpi_ranks > 1 here, before any job is submitted, when MPI is missing
    with ExitStack() as stack:
        dask_log = log_path_for(store) if store is not None else None
        stack.enter_context(driver_log(dask_log))  # entered first, left last: covers the cluster's shutdown
        security = _security(section, store, stack)
        if section.kind == "address":
            client = stack.enter_context(Client(section.address, security=security))
            log(f"scheduler: {section.address} ({len(client.nthreads())} workers)")
            yield client
            return
        if section.kind == "slurm":
            jobs = f"{Path(store).resolve()}.jobs" if store is not None else None
            per_job = slurm_settings(section)["processes"]
            cluster = stack.enter_context(slurm_cluster(section, security=security, log_directory=jobs))
            if section.minimum_jobs:
                # Submit the minimum at once rather than on the adaptive loop's first tick,
                # which was seen to submit nothing for minutes on a busy machine.
                cluster.scale(jobs=section.minimum_jobs)
            cluster.adapt(minimum_jobs=section.minimum_jobs, maximum_jobs=section.maximum_jobs)
            log(f"slurm: {section.minimum_jobs}-{section.maximum_jobs} job(s) of {per_job}"
                f" worker(s), scheduler {cluster.scheduler_address}" + (f", job logs in {jobs}" if jobs else ""))
        else:
            cluster = stack.enter_context(_local_cluster(section, security, dask_log))
        client = stack.enter_context(Client(cluster, security=security))
        if section.kind == "slurm":
            _CAPACITY[client] = section.maximum_jobs * per_job
            if section.drain:  # every worker, present and future, drains before its walltime (dispatch.lifetime)
                client.register_plugin(DrainingLifetime(*worker_lifetime(cluster_walltime(section),
                                                                         section.lifetime, section.lifetime_stagger)))
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
