"""The starter kit ships in the wheel: templates, SLURM files and LICENSE, and the installed ``activemat init`` and
``activemat run --dry-run`` work outside the repository.

Built once per session and installed without dependencies into a fresh venv that reaches the test venv's packages
through a .pth file (tests/e2e/conftest.py). Nothing here computes a gap.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from activemat.campaign.starter import SLURM_FILES, TEMPLATES
from tests.e2e.conftest import REPO, fresh_venv, ok, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kit(tmp_path_factory, built_wheel):
    venv = fresh_venv(tmp_path_factory.mktemp("kit"), built_wheel.wheel)
    venv.wheel = built_wheel.wheel
    return venv


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
    assert ok(run(kit.activemat, "--version", cwd=tmp_path)).strip() == "activemat 0.1.0"
    out = ok(run(kit.activemat, "init", "demo", cwd=tmp_path))
    assert out.startswith("wrote demo.toml")
    assert (tmp_path / "demo.toml").read_text() == (REPO / "campaigns" / "demo.toml").read_text()
    ok(run(kit.activemat, "init", "sige16-accurate", "cluster", "--slurm", cwd=tmp_path))
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == sorted(["sige16-accurate.toml", *SLURM_FILES])
    plan = json.loads(ok(run(kit.activemat, "run", "--dry-run", "demo.toml", "--json", cwd=tmp_path)))
    assert plan["space"]["candidates"] == 402 and plan["presets"][0]["name"] == "gpaw-fast"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster", "demo.toml"], "a dry run creates nothing"
    where = ok(run(kit.activemat.parent / "python", "-c", "import activemat; print(activemat.__file__)", cwd=tmp_path))
    assert Path(where.strip()).is_relative_to(kit.site), "the installed copy ran, not the repository"
