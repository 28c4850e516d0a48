"""A non-editable install works: the wheel, a fresh venv, the shipped presets and a real campaign.

The wheel is built once per session and installed into a fresh venv under tmp_path that reaches the test venv's
dependencies through a .pth file (tests/e2e/conftest.py says how, and why the editable activemat of the test venv
stays invisible): the tests check that the installed copy is the one imported.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.e2e.conftest import REPO, clean_env, fresh_venv, ok, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(tmp_path_factory, built_wheel):
    """activemat built into a wheel and installed, non-editable, into a fresh venv."""
    venv = fresh_venv(tmp_path_factory.mktemp("install"), built_wheel.wheel)
    venv.wheel, venv.src = built_wheel.wheel, built_wheel.src
    return venv


def installed_python(installed, code: str, env: dict[str, str] | None = None) -> str:
    """Run code with the fresh venv's python from a directory outside the repository."""
    return ok(run(installed.python, "-c", code, cwd=installed.work, env=env))


def test_wheel_holds_every_module_the_presets_and_the_console_script(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    sources = {p.relative_to(installed.src).as_posix() for p in (installed.src / "activemat").rglob("*.py")}
    assert sources and not sources - names, f"modules missing from the wheel: {sorted(sources - names)}"
    presets = {f"activemat/calculators/{p.name}" for p in (installed.src / "calculators").iterdir()
               if p.suffix in (".toml", ".py")}
    assert "activemat/calculators/gpaw-fast.toml" in presets and "activemat/calculators/gpaw-pbe-pw.toml" in presets
    assert not presets - names, f"presets missing from the wheel: {sorted(presets - names)}"
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "activemat = activemat.cli:console_main" in zipfile.ZipFile(installed.wheel).read(entry_points).decode()


def test_fresh_venv_imports_the_installed_copy_not_the_repository(installed):
    out = installed_python(installed, "import json, activemat, gpaw\n"
                                      "from activemat.compute.presets import available_presets, preset_dirs\n"
                                      "print(json.dumps([activemat.__file__, [str(d) for d in preset_dirs()],"
                                      " available_presets(), gpaw.__file__]))")
    module, dirs, presets, gpaw_file = json.loads(out)
    assert Path(module).is_relative_to(installed.site), f"activemat imported from {module}, not the fresh venv"
    assert not Path(module).is_relative_to(REPO)
    assert dirs == [str(installed.site / "activemat" / "calculators")], "shipped presets come from the installed tree"
    assert (installed.site / "activemat" / "calculators" / "gpaw-fast.toml").is_file()
    assert {"gpaw-fast", "gpaw-pbe-pw"} <= set(presets)
    assert not Path(gpaw_file).is_relative_to(installed.venv), "dependencies come from the test venv, via the .pth"


def test_user_presets_from_the_environment_variable(installed, tmp_path):
    mine = tmp_path / "my-presets"
    mine.mkdir()
    shutil.copy(installed.site / "activemat" / "calculators" / "gpaw-fast.toml", mine / "my-fast.toml")
    env = clean_env(ACTIVEMAT_CALCULATORS=f"{tmp_path / 'nowhere'}:{mine}")
    out = installed_python(installed, "import json\n"
                                      "from activemat.compute.presets import available_presets, load_preset\n"
                                      "p = load_preset('my-fast')\n"
                                      "print(json.dumps([available_presets(), p.name, p.gpaw.ecut]))", env=env)
    presets, name, ecut = json.loads(out)
    assert {"my-fast", "gpaw-fast", "gpaw-pbe-pw"} <= set(presets)
    assert name == "my-fast" and ecut > 0


@pytest.mark.gpaw
def test_console_script_runs_a_real_campaign(installed, tmp_path, campaign_file):
    """bin/activemat of the fresh venv, outside the repository, on the shipped gpaw-fast preset."""
    assert str(installed.python) in installed.activemat.read_text(), "the script runs the fresh venv's python"
    campaign_file("installed.toml", TINY, name="installed", store="runs/installed.h5", model={"restarts": 0},
                  space={"supercell": [1, 1, 1], "mode": "compositions"},  # Si2, SiGe, Ge2
                  stop={"budget": 3}, cluster={"workers": 1})
    out = ok(run(installed.activemat, "run", "installed.toml", "--json", cwd=tmp_path, timeout=600))
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["completed"] == 3 and summary["failed"] == summary["given_up"] == 0

    status = json.loads(ok(run(installed.activemat, "status", "runs/installed.h5", "--json", cwd=tmp_path)))
    assert status["candidates"] == 3 and status["completed"] == 3
    assert status["failed"] == 0 and status["running"] == 0
    assert status["presets"]["gpaw-fast"]["completed"] == 3

    rows = json.loads(ok(run(installed.activemat, "query", "runs/installed.h5", "--format", "json", cwd=tmp_path)))
    gaps = {r["formula"]: r["gap"] for r in rows if r["status"] == "ok"}
    assert set(gaps) == {"Si2", "Si1Ge1", "Ge2"}
    # PBE, 200 eV, 2x2x2 k-points on the 2-atom cells (0.60, 0.53, 0.12 eV here): loose physical bounds.
    assert 0.3 < gaps["Si2"] < 1.0, "PBE silicon: an indirect gap of about 0.6 eV"
    assert 0.0 <= gaps["Ge2"] < gaps["Si2"], "PBE germanium: a gap well below silicon's"
    assert 0.0 <= gaps["Si1Ge1"] < 1.0
    assert status["gap_min"] == pytest.approx(min(gaps.values()))
    assert status["gap_max"] == pytest.approx(max(gaps.values()))
    assert {r["formula"]: r["direct"] for r in rows}["Si2"] is False, "silicon's gap is indirect"
