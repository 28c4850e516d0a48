"""Where calculations run: a Dask client for local processes, SLURM jobs or a running scheduler.

Clusters are built from the campaign's [cluster] section with dask-jobqueue
and distributed (TLS certificates per campaign, worker lifetimes inside the
SLURM walltime, everything bound to loopback in tests); a thin wrapper runs a
compute task on a worker and names the worker in its record. Nothing here
decides what to compute.
"""
