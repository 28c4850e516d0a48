"""The starter kit ``activemat init`` writes (package data; see :mod:`activemat.campaign.starter`).

Campaign templates (``*.toml``), the SLURM driver job script (``campaign.sbatch``) and an example
dask-jobqueue profile (``jobqueue.yaml``). These files are the only copies: the repository's
``campaigns/`` and ``slurm/`` folders hold symbolic links to them.
"""
