"""The [cluster] section for SLURM and the job script dask-jobqueue generates from it.

These need dask-jobqueue but no running SLURM: building a SLURMCluster starts
only its scheduler (on 127.0.0.1); nothing is submitted until it scales.
"""

from __future__ import annotations

from pathlib import Path

import dask
import pytest
import yaml

from activemat.campaign.config import ClusterSection, parse_campaign
from activemat.dispatch.clusters import cluster_walltime, slurm_cluster, worker_slots
from activemat.dispatch.security import security_for
from activemat.dispatch.times import slurm_time_seconds, worker_lifetime
from activemat.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def script_for(section: ClusterSection, **kwargs) -> str:
    with slurm_cluster(section, **kwargs) as cluster:
        return cluster.job_script()


def test_job_script_carries_the_campaign_settings(tmp_path):
    section = ClusterSection(kind="slurm", partition="debug", account="chem42", walltime="02:00:00", cores=4,
                             memory="8GB", processes=2, mpi_ranks=2, lifetime="100m", lifetime_stagger="5m", drain=False,
                             job_prologue=["module load GPAW/24.1", "source /opt/venv/bin/activate"],
                             job_directives=["--qos=short", "--constraint=avx2"], interface="lo")
    script = script_for(section, security=security_for(tmp_path / "c.h5.tls"), log_directory=str(tmp_path / "jobs"))
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in ["#SBATCH -J activemat-worker", "#SBATCH -p debug", "#SBATCH -A chem42", "#SBATCH -t 02:00:00",
                      "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --qos=short",
                      "#SBATCH --constraint=avx2", f"#SBATCH -o {tmp_path}/jobs/activemat-worker-%J.out"]:
        assert directive in lines, directive
    # the prologue runs, in order, after the directives and before the worker starts
    prologue = ["export OMP_NUM_THREADS=1", "module load GPAW/24.1", "source /opt/venv/bin/activate"]
    positions = [lines.index(p) for p in prologue]
    last_directive = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    assert positions == sorted(positions) and positions[0] > last_directive
    worker = lines[-1]
    assert positions[-1] < len(lines) - 1 and "distributed.cli.dask_worker tls://127.0.0.1:" in worker
    # 2 workers of 1 thread each; 2 MPI ranks per calculation fill the 4 booked cores
    assert "--nworkers 2" in worker and "--nthreads 1" in worker
    assert "--lifetime 6000s --lifetime-stagger 300s" in worker
    assert "--interface lo" in worker and "--protocol tls://" in worker
    for flag in (f"--tls-ca-file {tmp_path}/c.h5.tls/ca.pem", f"--tls-cert {tmp_path}/c.h5.tls/worker.pem",
                 f"--tls-key {tmp_path}/c.h5.tls/worker.key"):
        assert flag in worker


def test_default_lifetime_leaves_a_margin_before_the_walltime():
    section = ClusterSection(kind="slurm", walltime="01:00:00", interface="lo", tls=False)
    script = script_for(section)
    # draining workers (the default): the campaign's plugin retires them, Dask's --lifetime would cut work off
    assert "--lifetime" not in script
    assert worker_lifetime(cluster_walltime(section), None, "2m") == (3120, 120)  # 60 min - 6 min - 2 min stagger
    old = script_for(section.model_copy(update={"drain": False}))
    assert "--lifetime 3120s --lifetime-stagger 120s" in old
    assert "#SBATCH -p" not in script and "#SBATCH -A" not in script  # site defaults unless given
    assert "tcp://127.0.0.1:" in script


def test_profile_fills_what_the_campaign_does_not_set(tmp_path):
    profiles = yaml.safe_load((ROOT / "slurm" / "jobqueue.yaml").read_text())
    section = parse_campaign('[cluster]\nkind = "slurm"\nprofile = "mycluster"\naccount = "override"\n'
                             'interface = "lo"\njob_prologue = ["echo campaign"]\n').cluster
    with dask.config.set({"jobqueue.mycluster": profiles["jobqueue"]["mycluster"]}):
        script = script_for(section)
    lines = script.splitlines()
    assert "#SBATCH -p compute" in lines and "#SBATCH -A override" in lines  # file beats profile
    assert "#SBATCH -t 04:00:00" in lines and "#SBATCH --cpus-per-task=8" in lines and "#SBATCH --mem=15G" in lines
    assert "#SBATCH --qos=normal" in lines
    assert lines.index("module load GPAW") < lines.index("echo campaign")
    assert "--nworkers 8 --nanny --death-timeout 120" in lines[-1] and "--nthreads 1" in lines[-1]
    assert "--lifetime" not in lines[-1]
    with dask.config.set({"jobqueue.mycluster": profiles["jobqueue"]["mycluster"]}):
        walltime = cluster_walltime(section)
    assert worker_lifetime(walltime, None, "2m")[0] == 12840  # from the profile's 4 h walltime: 240 min - 24 - 2
    assert "--local-directory $TMPDIR" in lines[-1]


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError, match="profile 'nowhere'.*jobqueue.yaml"):
        slurm_cluster(ClusterSection(kind="slurm", profile="nowhere"))


@pytest.mark.parametrize("cluster, message", [
    ('kind = "address"', "kind 'address' needs address"),
    ('kind = "address"\naddress = "127.0.0.1:8786"', "must start with tcp:// or tls://"),
    ('kind = "address"\naddress = "tcp://127.0.0.1:8786"\ntls = true', "contradicts address"),
    ('address = "tls://127.0.0.1:8786"', "only used with kind = 'address'"),
    ('kind = "slurm"\nwalltime = "00:02:00"', "shorter than walltime 00:02:00"),
    ('kind = "slurm"\nwalltime = "00:30:00"\nlifetime = "40m"', "shorter than walltime"),
    ('kind = "slurm"\nwalltime = "half an hour"', "not a SLURM time"),
    ('kind = "slurm"\ncores = 2\nmpi_ranks = 4', "raise cores"),
    ('kind = "slurm"\nminimum_jobs = 3\nmaximum_jobs = 2', "exceeds maximum_jobs"),
    ('kind = "slurm"\njob_directives = ["#SBATCH --qos=x"]', "give the sbatch option only"),
    ('kind = "slurm"\nmpi_launcher = "mpiexec"', "must contain '{ranks}'"),
    ('kind = "slurm"\nqueue = "debug"', "cluster.queue: unknown key"),
])
def test_bad_cluster_section_is_a_one_line_error(cluster, message):
    with pytest.raises(InputError, match=message) as exc:
        parse_campaign(f"[cluster]\n{cluster}\n", "c.toml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("c.toml: cluster")


def test_tls_defaults_follow_the_kind():
    assert ClusterSection(kind="slurm").use_tls and ClusterSection().use_tls and not ClusterSection(tls=False).use_tls
    assert ClusterSection(kind="address", address="tls://10.0.0.1:8786").use_tls
    assert not ClusterSection(kind="address", address="tcp://127.0.0.1:8786").use_tls
    assert not ClusterSection(kind="slurm", tls=False).use_tls


def test_slurm_time_formats():
    assert [slurm_time_seconds(t) for t in ("90", "10:30", "01:00:00", "2-00", "1-01:30", "1-00:00:10")] == \
        [5400, 630, 3600, 172800, 91800, 86410]
    assert worker_lifetime("00:10:00", "5m", "30s") == (300, 30)


def test_short_walltime_keeps_every_deadline_well_after_the_start():
    # a 5-min walltime with the default 2-min stagger once gave lifetime 60 s +- 120 s: workers retired on arrival
    for walltime, lifetime, stagger in [("00:05:00", None, "2m"), ("00:03:00", None, "2m"), ("01:00:00", "1m", "2m"),
                                        ("2-00", None, "2m")]:
        life, spread = worker_lifetime(walltime, lifetime, stagger)
        assert life - spread >= 0.75 * life > 0
        assert life + spread < slurm_time_seconds(walltime)


def test_worker_slots_without_workers_is_one(tmp_path):
    """A cluster not made adaptive by connect(), with no workers yet: one slot (connect's adaptive case: see
    tests/slurm/test_local_slurm.py, where the slots are the adaptive maximum)."""
    from distributed import Client

    section = ClusterSection(kind="slurm", interface="lo", tls=False, cores=2, maximum_jobs=3)
    with slurm_cluster(section) as cluster, Client(cluster) as client:
        assert worker_slots(client) == 1
