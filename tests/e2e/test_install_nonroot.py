"""A user without root installs the wheel into a venv of their own and runs a campaign in it.

Run as root (as CI runs), every command here runs as the unprivileged ``nobody`` (uid 65534) through util-linux's
``setpriv`` (or ``runuser``): making the venv, installing the wheel with pip, the campaign and the reads of its
store. Run as any other user, they run as that user. The user's folder is a fresh one in the temporary directory,
theirs alone; the wheel (built once per session, tests/e2e/conftest.py) is copied into it. The venv reuses the
already-built GPAW of the test venv through a .pth file, as ``--system-site-packages`` reuses a site's GPAW in
docs/howto/install.md, so nothing is compiled; the test checks that those packages satisfy every requirement of
the wheel, and that the installed copy of activemat is the one imported.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from activemat.version import __version__
from tests.conftest import TINY, campaign_toml
from tests.e2e.conftest import clean_env, dependency_sites, fresh_venv, ok, run

pytestmark = pytest.mark.e2e

# Requirements of the installed activemat (no extras) that the reused packages do not meet, printed as JSON.
UNMET = """
import json
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement
unmet, checked = [], []
for line in requires("activemat"):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    checked.append(req.name)
    try:
        found = version(req.name)
    except PackageNotFoundError:
        found = None
    if found is None or not req.specifier.contains(found, prereleases=True):
        unmet.append(f"{req} (found {found})")
print(json.dumps({"unmet": unmet, "checked": checked}))
"""


def unprivileged() -> SimpleNamespace:
    """Who installs: ``.prefix`` runs a command as that user (empty when not root), ``.uid``, ``.gid``, ``.name``."""
    if os.geteuid() != 0:  # already not root: the install runs as this user
        return SimpleNamespace(prefix=(), uid=os.geteuid(), gid=os.getegid(), name=pwd.getpwuid(os.geteuid()).pw_name)
    try:
        nobody = pwd.getpwnam("nobody")
        uid, gid, name = nobody.pw_uid, nobody.pw_gid, nobody.pw_name
    except KeyError:
        uid, gid, name = 65534, 65534, "nobody"
    if setpriv := shutil.which("setpriv"):
        return SimpleNamespace(prefix=(setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups"),
                               uid=uid, gid=gid, name=name)
    if runuser := shutil.which("runuser"):
        return SimpleNamespace(prefix=(runuser, "-u", name, "--"), uid=uid, gid=gid, name=name)
    pytest.skip("running as root, and neither setpriv nor runuser (util-linux) is here to switch to the "
                "unprivileged user nobody: install util-linux")


# Run by a candidate interpreter as the user: its version, whether the user can see the interpreter's own file
# (a Python under root's 0700 home runs, but a venv of it cannot be made), and whether it imports the reused GPAW.
PROBE = """
import json, os, sys
sys.path[:0] = sys.argv[1:]
try:
    import gpaw
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps([list(sys.version_info[:2]), os.path.isfile(sys.executable), error]))
"""


def user_python(user: SimpleNamespace, env: dict[str, str], cwd: Path) -> str:
    """An interpreter the user can make a venv of, of the test venv's Python version (its packages are reused).

    The test venv's own base interpreter comes first; the system's ``pythonX.Y`` next.
    """
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
                  shutil.which(f"python{version}", path=os.defpath)]
    seen = []
    for python in dict.fromkeys(c for c in candidates if c):
        probe = run(*user.prefix, python, "-c", PROBE, *dependency_sites(), cwd=cwd, env=env)
        if probe.returncode != 0:
            seen.append(f"{python}: {(probe.stderr.strip().splitlines() or ['exit ' + str(probe.returncode)])[-1]}")
            continue
        found, visible, error = json.loads(probe.stdout)
        if found == list(sys.version_info[:2]) and visible and error is None:
            return python
        seen.append(f"{python}: Python {found[0]}.{found[1]}, " + (error or ("its file visible" if visible else
                                                                             "its file not visible to the user")))
    pytest.skip(f"no Python {version} that uid {user.uid} can make a venv of and import the test venv's GPAW "
                f"with (make it readable to other users): {'; '.join(seen)}")


@pytest.fixture(scope="module")
def user_venv(built_wheel):
    """The wheel installed by an unprivileged user, with the venv's own pip, into a venv in their own folder."""
    user = unprivileged()
    home = Path(tempfile.mkdtemp(prefix="activemat-nonroot-"))
    try:
        os.chown(home, user.uid, user.gid)
        env = {k: v for k, v in clean_env().items() if not k.startswith(("XDG_", "PIP_"))}
        env.update(HOME=str(home), TMPDIR=str(home), USER=user.name, LOGNAME=user.name, OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        python = user_python(user, env, home)
        wheel = home / built_wheel.wheel.name
        shutil.copy(built_wheel.wheel, wheel)
        os.chown(wheel, user.uid, user.gid)
        venv = fresh_venv(home, wheel, python=python, own_pip=True, as_user=user.prefix, env=env)
        venv.user, venv.env = user, env
        yield venv
    finally:
        shutil.rmtree(home, ignore_errors=True)


def as_user(venv, *cmd, timeout: float = 300) -> str:
    return ok(run(*venv.user.prefix, *cmd, cwd=venv.work, env=venv.env, timeout=timeout))


def test_an_unprivileged_user_installs_the_wheel_and_imports_that_copy(user_venv):
    assert user_venv.user.uid != 0
    out = as_user(user_venv, user_venv.python, "-c", "import json, os, activemat, gpaw\n"
                  "print(json.dumps([os.geteuid(), activemat.__file__, gpaw.__file__]))")
    euid, module, gpaw_file = json.loads(out)
    assert euid == user_venv.user.uid, "the venv's python ran as the unprivileged user"
    assert Path(module).is_relative_to(user_venv.site), f"activemat imported from {module}, not the user's venv"
    assert not Path(gpaw_file).is_relative_to(user_venv.venv), "GPAW is reused, not built into the user's venv"
    assert as_user(user_venv, user_venv.activemat, "--version").strip() == f"activemat {__version__}"

    report = json.loads(as_user(user_venv, user_venv.python, "-c", UNMET))
    assert {"gpaw", "ase", "h5py", "icet"} <= set(report["checked"])
    assert report["unmet"] == [], "the reused packages satisfy every requirement of the wheel"


@pytest.mark.gpaw
def test_an_unprivileged_user_runs_a_campaign(user_venv):
    """Three real gpaw-fast calculations (Si2, SiGe, Ge2) by the user's console script, in the user's folder."""
    campaign = user_venv.work / "mine.toml"
    campaign.write_text(campaign_toml(TINY, name="mine", store="runs/mine.h5", model={"restarts": 0},
                                      space={"supercell": [1, 1, 1], "mode": "compositions"},
                                      stop={"budget": 3}, cluster={"workers": 1}))
    os.chown(campaign, user_venv.user.uid, user_venv.user.gid)

    summary = json.loads(as_user(user_venv, user_venv.activemat, "run", campaign.name, "--json",
                                 timeout=600).strip().splitlines()[-1])
    assert summary["completed"] == 3 and summary["failed"] == summary["given_up"] == 0

    store = user_venv.work / "runs" / "mine.h5"
    status = json.loads(as_user(user_venv, user_venv.activemat, "status", "runs/mine.h5", "--json"))
    assert status["candidates"] == 3 and status["completed"] == 3 and status["running"] == 0
    assert status["presets"]["gpaw-fast"]["completed"] == 3
    rows = json.loads(as_user(user_venv, user_venv.activemat, "query", "runs/mine.h5", "--format", "json"))
    gaps = {r["formula"]: r["gap"] for r in rows if r["status"] == "ok"}
    assert set(gaps) == {"Si2", "Si1Ge1", "Ge2"}
    assert gaps["Si2"] > gaps["Ge2"] >= 0.0, "PBE: silicon's gap above germanium's"

    assert store.stat().st_uid == user_venv.user.uid, "the store belongs to the user who ran the campaign"
    foreign = [str(p) for p in user_venv.root.rglob("*") if p.lstat().st_uid != user_venv.user.uid]
    assert foreign == [], "everything the install and the campaign wrote belongs to the user"
