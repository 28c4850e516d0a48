"""The layers' one-way imports, written as import-linter contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    run = _lint(ROOT, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A copy of the package whose store imports the campaign loop must fail the check, naming the import."""
    shutil.copytree(ROOT / "activemat", tmp_path / "activemat", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    query = tmp_path / "activemat" / "store" / "query.py"
    query.write_text(query.read_text() + "\nfrom activemat.campaign.loop import run_campaign  # noqa\n")
    run = _lint(tmp_path, tmp_path)
    assert run.returncode != 0
    assert "activemat.store.query -> activemat.campaign.loop" in run.stdout
