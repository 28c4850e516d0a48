"""The layers' one-way imports, written as import-linter contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    run = _lint(ROOT, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "7 kept, 0 broken" in run.stdout


@pytest.mark.parametrize("module, line, named", [
    ("store/query.py", "from activemat.campaign.loop import run_campaign",
     "activemat.store.query -> activemat.campaign.loop"),
    ("space/features.py", "from activemat.space.pool import CandidatePool",
     "activemat.space.features -> activemat.space.pool"),
    ("analysis/tables.py", "import h5py", "activemat.analysis.tables -> h5py"),
    ("learn/kernels.py", "from activemat.learn.gp import GPRegressor",
     "activemat.learn.kernels -> activemat.learn.gp"),
], ids=["store imports the loop", "features import the pool", "a reader opens HDF5 itself",
        "kernels import the regressor"])
def test_an_upward_import_breaks_the_contract(tmp_path, module, line, named):
    """A copy of the package with one upward import must fail the check, naming the import."""
    shutil.copytree(ROOT / "activemat", tmp_path / "activemat", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "activemat" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    run = _lint(tmp_path, tmp_path)
    assert run.returncode != 0
    assert named in run.stdout
