"""The built wheel and fresh venvs for the install tests (test_install, test_starter_wheel, test_install_nonroot).

The project is built into a wheel once per test session, the way ``pip install .`` builds it (isolated, from
pyproject.toml's [build-system]), from a copy of the repository so the build writes nothing into the work tree.
:func:`fresh_venv` installs it, without dependencies, into a new venv. Rebuilding GPAW there would take many
minutes, so that venv reaches the test venv's packages through a .pth line naming the test venv's site-packages:
what ``python -m venv --system-site-packages`` does for a site's GPAW (docs/howto/install.md). Python adds that
directory to sys.path but does not process the .pth files inside it, so the editable activemat of the test venv
stays invisible: the tests check that the installed copy is the one imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]

# What a source checkout holds besides the sources: never part of a build.
NOT_SOURCES = (".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "runs", ".make",
               "dask-worker-space", ".import_linter_cache", "*.h5", "_build", "generated")

# The .pth file that stands in for --system-site-packages: one line per site-packages folder of the test venv.
DEPENDENCIES_PTH = "_activemat_test_dependencies.pth"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could put the repository on sys.path or add presets or settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "ACTIVEMAT_CALCULATORS",
                        "DASK_CONFIG")}
    env.update(extra)
    return env


def run(*cmd, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command (any str or path arguments) with :func:`clean_env` unless ``env`` is given."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    """The standard output of a command that must have succeeded; its output in the failure message if not."""
    assert result.returncode == 0, f"{result.args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> SimpleNamespace:
    """activemat built once into a wheel: ``.wheel`` (its path) and ``.src`` (the copy it was built from)."""
    root = tmp_path_factory.mktemp("wheel")
    src, dist = root / "src", root / "dist"
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources. The copy follows the
    # symbolic links of campaigns/ and slurm/: the package's own files are what is built. Absolute paths
    # throughout: pip reads a bare relative name such as "src" as a package on the index.
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    ok(run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, src, cwd=root, timeout=600))
    [wheel] = dist.glob("activemat-*.whl")
    return SimpleNamespace(wheel=wheel, src=src)


def fresh_venv(root: Path, wheel: Path, *, python: str = sys.executable, own_pip: bool = False,
               as_user: tuple[str, ...] = (), env: dict[str, str] | None = None) -> SimpleNamespace:
    """A new venv at ``root/venv`` of ``python``, holding ``wheel`` (no dependencies) and reaching the test venv's
    packages.

    By default the venv has no pip and this venv's pip installs into it (``pip --python``: quick); ``own_pip``
    gives it its own pip (ensurepip, offline), which installs the wheel as a user would. ``as_user`` prefixes
    every command (``("setpriv", "--reuid=65534", ...)``): the venv is then made, filled and used by that user,
    and ``root`` must be theirs. Skips when no venv can be made here.
    """
    venv, work = root / "venv", root / "work"
    bin_python = venv / "bin" / "python"
    ok(run(*as_user, "mkdir", "-p", work, cwd=root, env=env))
    created = run(*as_user, python, "-m", "venv", *(() if own_pip else ("--without-pip",)), venv, cwd=root, env=env,
                  timeout=600)
    if created.returncode != 0 or not bin_python.exists():
        pytest.skip(f"cannot create a virtual environment here: {created.stderr.strip() or created.stdout.strip()}")
    # Install before the .pth exists: pip sees only the fresh venv, so the test venv's activemat cannot count as
    # "already installed".
    pip = (bin_python, "-m", "pip") if own_pip else (sys.executable, "-m", "pip", "--python", bin_python)
    ok(run(*as_user, *pip, "install", "--no-deps", "--no-index", wheel, cwd=root, env=env))
    site = Path(ok(run(*as_user, bin_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                       cwd=work, env=env)).strip())
    ok(run(*as_user, bin_python, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
           site / DEPENDENCIES_PTH, "".join(f"{p}\n" for p in dependency_sites()), cwd=work, env=env))
    return SimpleNamespace(root=root, venv=venv, python=bin_python, activemat=venv / "bin" / "activemat", site=site,
                           work=work)


def dependency_sites() -> list[str]:
    """The site-packages folders of the test venv (where GPAW and the other dependencies are)."""
    return list(dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib")))
