"""The starter kit (issue 28): ``activemat init``, ``activemat run --dry-run``, ``--version``, LICENSE and CITATION.cff.

``init`` writes package data (activemat/templates), which the repository's campaigns/ and slurm/ link to: one copy
of each file. ``run --dry-run`` checks a campaign as ``run`` does and prints what would run, creating nothing and
starting nothing; for SLURM, the job script is dask-jobqueue's own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tomllib
from pathlib import Path

import dask
import dask_jobqueue  # noqa: F401  (registers jobqueue.* defaults before any dask.config.set below)
import pytest
import yaml
from test_query_stores import campaign_text, stores

from activemat.campaign.config import ClusterSection, load_campaign, parse_campaign
from activemat.campaign.starter import SLURM_FILES, TEMPLATES, profile_name, with_slurm_cluster, write_starter
from activemat.cli import main
from activemat.errors import InputError
from activemat.version import __version__
from tests.conftest import campaign_toml, cli, one_line_error

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "activemat" / "templates"


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


# -- one source of truth ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_is_a_shipped_campaign_that_the_repository_links_to(name):
    shipped = KIT / f"{name}.toml"
    config, _ = load_campaign(shipped)
    assert config.campaign.name == name and config.campaign.store == f"runs/{name}.h5"
    linked = ROOT / "campaigns" / f"{name}.toml"
    assert linked.is_symlink() and linked.resolve() == shipped.resolve(), "campaigns/ links to the package's file"


def test_slurm_files_are_shipped_and_linked():
    for name in SLURM_FILES:
        linked = ROOT / "slurm" / name
        assert linked.is_symlink() and linked.resolve() == (KIT / name).resolve()
    assert os.access(KIT / "campaign.sbatch", os.X_OK)
    assert profile_name() in yaml.safe_load((KIT / "jobqueue.yaml").read_text())["jobqueue"]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "activemat.templates" in declared["packages"]
    assert set(declared["package-data"]["activemat.templates"]) == {"*.toml", *SLURM_FILES}


# -- activemat init -----------------------------------------------------------------------------------

def test_init_writes_the_template_and_says_what_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("init", "demo")
    assert code == 0 and err == "", err
    assert (tmp_path / "demo.toml").read_text() == (KIT / "demo.toml").read_text()
    assert tree(tmp_path) == {"demo.toml"}
    assert out.splitlines()[0] == "wrote demo.toml" and "cd " not in out
    assert "activemat run --dry-run demo.toml" in out and "its store: runs/demo.h5" in out

    code, out, _ = cli("init", "sige16-pbe", "new/folder")  # a missing folder is created
    assert code == 0 and (tmp_path / "new/folder/sige16-pbe.toml").is_file()
    assert "  cd new/folder" in out.splitlines()


def test_init_never_overwrites(tmp_path):
    (tmp_path / "demo.toml").write_text("mine\n")
    line = one_line_error(*cli("init", "demo", tmp_path)[::2])
    assert f"{tmp_path / 'demo.toml'} already exists" in line and "never overwrites" in line
    assert (tmp_path / "demo.toml").read_text() == "mine\n"
    # with --slurm, one existing file of the kit stops all of it
    (tmp_path / "jobqueue.yaml").write_text("mine\n")
    line = one_line_error(*cli("init", "seed-tutorial", tmp_path, "--slurm")[::2])
    assert "jobqueue.yaml already exists" in line
    assert tree(tmp_path) == {"demo.toml", "jobqueue.yaml"}
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert "it is a file; give a folder" in one_line_error(*cli("init", "demo", blocker)[::2])


def test_init_names_the_templates(tmp_path):
    code, out, _ = cli("init", "--list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == list(TEMPLATES)
    for args in (["init", "nope", tmp_path], ["init"]):
        line = one_line_error(*cli(*args)[::2])
        assert all(name in line for name in TEMPLATES) and "activemat init --list" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", TEMPLATES)
def test_init_slurm_writes_the_job_script_the_profile_and_a_slurm_cluster(tmp_path, name):
    paths = write_starter(name, tmp_path, slurm=True)
    assert [p.name for p in paths] == [f"{name}.toml", *SLURM_FILES]
    for f in SLURM_FILES:
        assert (tmp_path / f).read_bytes() == (KIT / f).read_bytes()
    assert os.access(tmp_path / "campaign.sbatch", os.X_OK)
    template, _ = load_campaign(KIT / f"{name}.toml")
    config, text = load_campaign(tmp_path / f"{name}.toml")
    assert config.cluster.kind == "slurm" and config.cluster.profile == profile_name()
    # everything else as the template says, and the [cluster] keys that mean the same on SLURM
    assert config.model_dump(exclude={"cluster"}) == template.model_dump(exclude={"cluster"})
    assert (config.cluster.prefetch, config.cluster.dashboard) == (template.cluster.prefetch, template.cluster.dashboard)
    assert "workers =" not in text.split("[cluster]")[1].split("\n[")[0]
    assert f"sbatch campaign.sbatch {name}.toml" in text


def test_slurm_section_is_added_where_a_file_has_none():
    text = with_slurm_cluster('[stop]\nbudget = 4\n', "x.toml")
    config = parse_campaign(text)
    assert config.cluster.kind == "slurm" and config.stop.budget == 4 and text.count("[cluster]") == 1


# -- activemat run --dry-run -------------------------------------------------------------------------

def test_dry_run_of_a_local_campaign_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_starter("demo", ".")
    code, out, err = cli("run", "--dry-run", "demo.toml")
    assert code == 0, err
    text = " ".join(out.split())
    for expected in ("dry run of campaign demo (demo.toml): nothing is computed, started, submitted or created",
                     "store: runs/demo.h5 (new); run would create it",
                     "402 candidates over 17 compositions", "gpaw-fast: PBE, 200 eV",
                     "strategy max_std after 4 space-filling seeds", "stop: budget 10",
                     "local, 2 worker processes of 1 thread on 127.0.0.1"):
        assert expected in text, (expected, out)
    assert tree(tmp_path) == {"demo.toml"}, "no store, folder, certificate or scratch"

    code, out, _ = cli("run", "--dry-run", "demo.toml", "--json", "--workers", "3", "--store", "elsewhere/x.h5")
    plan = json.loads(out)
    assert plan["store"] == {"path": "elsewhere/x.h5", "exists": False, "action": "create it (and any missing folders)"}
    assert plan["space"]["candidates"] == 402 and plan["cluster"]["workers"] == 3
    assert [p["name"] for p in plan["presets"]] == ["gpaw-fast"] and plan["stop"] == {"budget": 10}
    assert tree(tmp_path) == {"demo.toml"}


def test_dry_run_of_a_multi_fidelity_campaign_lists_its_levels(tmp_path):
    code, out, err = cli("run", "--dry-run", KIT / "sige16-accurate.toml", "--json", "--store", tmp_path / "s.h5")
    plan = json.loads(out)
    assert code == 0 and plan["multi_fidelity"], err
    assert [(p["name"], p["cost"]) for p in plan["presets"]] == [("pbe-fast", 150), ("pbe-relaxed", 1500),
                                                                 ("tb09-relaxed", 2500)]
    assert plan["presets"][-1]["relax"] == "positions" and plan["space"]["features"] == "orbits"
    assert not list(tmp_path.iterdir())


def test_dry_run_of_an_existing_store_says_it_resumes(tmp_path_factory, tmp_path):
    path = stores(tmp_path_factory)["configs"]
    before = path.read_bytes()
    campaign = tmp_path / "configs.toml"
    campaign.write_text(campaign_text("configs", path, budget=10))  # the text the store was made with
    code, out, err = cli("run", "--dry-run", campaign, "--json")
    plan = json.loads(out)
    assert code == 0 and plan["store"]["exists"] and plan["store"]["action"] == "resume it", err
    status = json.loads(cli("status", path, "--json")[1])
    assert plan["store"]["completed"] == status["completed"] and plan["store"]["attempts"] == status["attempts"]
    code, out, _ = cli("run", "--dry-run", campaign)
    assert f"(exists: {status['completed']} completed of {status['attempts']} attempts); run would resume it" in out
    # another campaign on the same store: refused as run refuses it
    campaign.write_text(campaign_text("configs", path, budget=10, space={"supercell": [1, 1, 2]}))
    line = one_line_error(*cli("run", "--dry-run", campaign)[::2])
    assert "holds another campaign" in line and "--store" in line
    assert path.read_bytes() == before


def _slurm_campaign(tmp_path: Path, **cluster) -> Path:
    path = tmp_path / "on-slurm.toml"
    path.write_text(campaign_toml({}, name="on-slurm", store=tmp_path / "runs" / "on-slurm.h5",
                                  calculator={"preset": "gpaw-fast"}, cluster={"kind": "slurm", **cluster}))
    return path


def test_dry_run_prints_the_job_script_dask_jobqueue_would_submit(tmp_path):
    profiles = yaml.safe_load((KIT / "jobqueue.yaml").read_text())
    campaign = _slurm_campaign(tmp_path, profile=profile_name(), account="chem42", maximum_jobs=3,
                               job_prologue=["echo campaign"])
    with dask.config.set({f"jobqueue.{profile_name()}": profiles["jobqueue"][profile_name()]}):
        code, out, err = cli("run", "--dry-run", campaign)
        plan = json.loads(cli("run", "--dry-run", campaign, "--json")[1])
    assert code == 0, err
    store = tmp_path / "runs" / "on-slurm.h5"
    c = plan["cluster"]
    assert (c["maximum_jobs"], c["workers_per_job"], c["slots"], c["walltime"]) == (3, 8, 24, "04:00:00")
    lines = c["script"].splitlines()
    for directive in ("#SBATCH -J activemat-worker", "#SBATCH -p compute", "#SBATCH -A chem42", "#SBATCH -t 04:00:00",
                      "#SBATCH --cpus-per-task=8", "#SBATCH --qos=normal",
                      f"#SBATCH -o {store}.jobs/activemat-worker-%J.out"):
        assert directive in lines, directive
    assert lines.index("module load GPAW") < lines.index("export OMP_NUM_THREADS=1") < lines.index("echo campaign")
    worker = c["worker_command"]
    assert worker == lines[-1] and "distributed.cli.dask_worker tls://SCHEDULER-HOST:PORT" in worker
    assert "--nworkers 8" in worker and "--nthreads 1" in worker and "--interface ib0" in worker
    assert f"--tls-ca-file {store}.tls/ca.pem" in worker and f"--tls-key {store}.tls/worker.key" in worker
    assert "#SBATCH -p compute" in out and "worker command (the script's last line):" in out and worker in out
    assert "3h34m" in out  # workers drain and retire before the 4-h walltime: 240 min - 24 - 2 (stagger)
    assert tree(tmp_path) == {"on-slurm.toml"}, "no store, certificates, job-log folder or runs/"


def test_dry_run_script_is_the_one_slurmcluster_writes(tmp_path):
    """The same script as dask-jobqueue's own SLURMCluster(...).job_script(), but for the scheduler's address."""
    from activemat.dispatch.clusters import slurm_cluster
    from activemat.dispatch.preview import SCHEDULER, worker_job_script
    from activemat.dispatch.security import security_for

    section = ClusterSection(kind="slurm", partition="debug", cores=4, processes=2, mpi_ranks=2, memory="8GB",
                             interface="lo", tls_dir=str(tmp_path / "tls"), job_directives=["--qos=short"])
    preview = worker_job_script(section, tmp_path / "x.h5")
    with slurm_cluster(section, security=security_for(tmp_path / "tls"),
                       log_directory=f"{tmp_path / 'x.h5'}.jobs") as cluster:
        real = cluster.job_script()
        address = cluster.scheduler_address
    assert preview["script"] == real.replace(address, f"tls://{SCHEDULER}")


@pytest.mark.parametrize("cluster, message", [
    ({"profile": "nowhere"}, "profile 'nowhere': no jobqueue.nowhere in the Dask config; `activemat init TEMPLATE "
                             "--slurm` writes an example jobqueue.yaml"),
    ({"memory": "lots", "interface": "lo"}, "[cluster]: dask-jobqueue refuses these SLURM settings"),
])
def test_dry_run_errors_are_one_line(tmp_path, cluster, message):
    line = one_line_error(*cli("run", "--dry-run", _slurm_campaign(tmp_path, **cluster))[::2])
    assert message in line, line
    assert tree(tmp_path) == {"on-slurm.toml"}


def test_dry_run_of_an_address_cluster_contacts_nothing(tmp_path, campaign_file):
    path = campaign_file("address.toml", {}, store=tmp_path / "a.h5",
                         cluster={"kind": "address", "address": "tls://127.0.0.1:9", "tls_dir": "nowhere"})
    code, out, err = cli("run", "--dry-run", path)
    assert code == 0 and "the running scheduler at tls://127.0.0.1:9 (not contacted by a dry run)" in out, err


# -- version, licence, citation, and messages that name the starter kit ---------------------------------

def test_version():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and out.getvalue() == f"activemat {__version__}\n"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__


def test_license_and_citation():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert project["license"] == "MIT" and licence.startswith("MIT License\n")
    assert "Copyright (c) 2026 the activemat developers" in licence
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["message"]
    assert cff["version"] == __version__ and cff["license"] == "MIT"
    assert cff["authors"] == [{"name": "the activemat developers"}] and cff["title"].startswith("activemat")


def test_missing_campaign_file_names_the_starter_kit(tmp_path):
    with pytest.raises(InputError) as exc:
        load_campaign(tmp_path / "nope.toml")
    assert "activemat init demo" in str(exc.value) and "see campaigns/" not in str(exc.value)
    line = one_line_error(*cli("run", "--dry-run", tmp_path / "nope.toml")[::2])
    assert "campaign file not found" in line
