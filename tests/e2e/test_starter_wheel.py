"""The starter kit ships in the wheel: templates, SLURM files and LICENSE, and the installed ``activemat init`` and
``activemat run --dry-run`` work outside the repository.

Built as tests/e2e/test_install.py builds (``pip wheel`` from a copy of the repository, so the build writes
nothing into the work tree) and installed without dependencies into a fresh venv that reaches the test venv's
packages through a .pth file. Nothing here computes a gap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from activemat.campaign.starter import SLURM_FILES, TEMPLATES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCES = (".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "runs", ".make",
               "dask-worker-space", ".import_linter_cache", "*.h5", "_build", "generated")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "ACTIVEMAT_CALCULATORS",
                        "DASK_CONFIG")}
    env.update(extra)
    return env


def ok(*cmd, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{result.args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    src, dist, venv, work = root / "src", root / "dist", root / "venv", root / "work"
    work.mkdir()
    created = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True,
                             text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {created.stderr.strip()}")
    # The copy follows the symbolic links of campaigns/ and slurm/: the package's own files are what is built.
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    ok(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, src, cwd=root)
    [wheel] = dist.glob("activemat-*.whl")
    python = venv / "bin" / "python"
    ok(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=root)
    site = Path(ok(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work).strip())
    outer = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (site / "_activemat_test_dependencies.pth").write_text("".join(f"{p}\n" for p in outer))
    return SimpleNamespace(wheel=wheel, activemat=venv / "bin" / "activemat", site=site, work=work)


def test_wheel_holds_the_starter_kit_and_the_licence(kit):
    with zipfile.ZipFile(kit.wheel) as wheel:
        names = set(wheel.namelist())
        for name in (*(f"{t}.toml" for t in TEMPLATES), *SLURM_FILES):
            assert f"activemat/templates/{name}" in names, name
            assert wheel.read(f"activemat/templates/{name}") == (REPO / "activemat" / "templates" / name).read_bytes()
        licences = [n for n in names if ".dist-info/" in n and "LICENSE" in n]
        assert licences and wheel.read(licences[0]) == (REPO / "LICENSE").read_bytes()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in wheel.read(metadata).decode()


def test_installed_init_and_dry_run_outside_the_repository(kit, tmp_path):
    assert ok(kit.activemat, "--version", cwd=tmp_path).strip() == "activemat 0.1.0"
    out = ok(kit.activemat, "init", "demo", cwd=tmp_path)
    assert out.startswith("wrote demo.toml")
    assert (tmp_path / "demo.toml").read_text() == (REPO / "campaigns" / "demo.toml").read_text()
    ok(kit.activemat, "init", "sige16-accurate", "cluster", "--slurm", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == sorted(["sige16-accurate.toml", *SLURM_FILES])
    plan = json.loads(ok(kit.activemat, "run", "--dry-run", "demo.toml", "--json", cwd=tmp_path))
    assert plan["space"]["candidates"] == 402 and plan["presets"][0]["name"] == "gpaw-fast"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster", "demo.toml"], "a dry run creates nothing"
    where = ok(kit.activemat.parent / "python", "-c", "import activemat; print(activemat.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(kit.site), "the installed copy ran, not the repository"
