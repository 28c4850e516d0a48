"""The worker job script a SLURM campaign would submit, printed without submitting or starting anything.

dask-jobqueue writes the script: :func:`worker_job_script` builds the job
object ``SLURMCluster`` would build (``SLURMCluster.job_cls``, with the
keyword arguments :func:`activemat.dispatch.clusters.slurm_settings` gives
the cluster) and asks it for its ``job_script()``. Unlike
``SLURMCluster(...).job_script()`` this starts no scheduler, binds no port
and needs no network interface of the cluster on this machine. What only a
running driver knows is a placeholder: the scheduler's address. The TLS
certificate files and the job-log folder are named where the run would
create them (``<store>.tls/``, ``<store>.jobs/``), and neither is created.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from activemat.dispatch.clusters import slurm_settings
from activemat.dispatch.security import certificate_files, tls_dir_for
from activemat.errors import InputError

#: Stands for the scheduler's host and port, known only once the driver has started it.
SCHEDULER = "SCHEDULER-HOST:PORT"


def worker_job_script(section, store: str | os.PathLike) -> dict:
    """The job script and worker command dask-jobqueue would submit for a [cluster] section with kind 'slurm'.

    Parameters
    ----------
    section
        The campaign's ClusterSection (``kind = "slurm"``).
    store
        The campaign's store: it places the certificates and the job logs.

    Returns
    -------
    dict
        ``script`` (the whole job script), ``worker_command`` (its last line,
        the command that starts the job's Dask workers), ``scheduler`` (the
        placeholder address in it), ``log_directory`` and ``tls_directory``
        (None without TLS).

    Raises
    ------
    InputError
        A missing profile, or settings dask-jobqueue refuses (one line).
    """
    from dask_jobqueue import SLURMCluster
    from distributed.security import Security

    kwargs = slurm_settings(section)
    kwargs.pop("scheduler_options", None)  # the scheduler's, not the job's
    tls = None
    protocol = "tcp://"
    if section.use_tls:
        tls = Path(section.tls_dir).resolve() if section.tls_dir else tls_dir_for(store)
        kwargs.update(security=Security(require_encryption=True, **certificate_files(tls)), protocol="tls://")
        protocol = "tls://"
    logs = f"{Path(store).resolve()}.jobs"
    # dask-jobqueue creates the log folder when it makes the job: let it make a temporary one, then name the real one.
    with tempfile.TemporaryDirectory(prefix="activemat-dry-run-") as tmp:
        try:
            job = SLURMCluster.job_cls(scheduler=f"{protocol}{SCHEDULER}", name="dummy-name", log_directory=tmp,
                                       **kwargs)
            script = job.job_script().replace(tmp, logs)
        except (ValueError, TypeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"[cluster]: dask-jobqueue refuses these SLURM settings: {first}") from None
    return {"script": script, "worker_command": script.rstrip().splitlines()[-1].strip(),
            "scheduler": f"{protocol}{SCHEDULER}", "job_name": job.job_name,
            "log_directory": logs, "tls_directory": str(tls) if tls else None}
