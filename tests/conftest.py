"""Shared fixtures. Tests write only under tmp_path, never into the work tree."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from activemat.cli import main

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

TIERS = ("unit", "gpaw", "dask", "e2e", "slurm", "faults")


def pytest_collection_modifyitems(items):
    # The folder names the tier: `pytest -m "not gpaw"` etc. select by it.
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS and tier != "unit":
            item.add_marker(getattr(pytest.mark, tier))


# -- campaign files ----------------------------------------------------------------------------------------

# What campaign_toml starts from when given no base: the 402-candidate 16-atom pool, two workers on this
# 2-core machine, no dashboard port.
TEST_DEFAULTS = {"space": {"supercell": [2, 2, 2]}, "cluster": {"workers": 2, "dashboard": False}}

# A 4-atom campaign of four real gpaw-fast calculations (CLI, GPAW and SLURM tests).
TINY = {
    "campaign": {"name": "tiny", "store": "runs/tiny.h5", "seed": 1},
    "space": {"elements": ["Si", "Ge"], "supercell": [1, 1, 2], "mode": "configurations"},
    "calculator": {"preset": "gpaw-fast"},
    "strategy": {"kind": "max_std", "n_seed": 2},
    "stop": {"budget": 4},
    "cluster": {"workers": 2, "dashboard": False},
}


def campaign_toml(base: dict | None = None, /, **overrides) -> str:
    """The text of a campaign file: ``base`` (default TEST_DEFAULTS) with ``overrides`` merged in.

    Each override is a section (``stop={"budget": 10}``), merged key by key into the base's section, or a
    key of [campaign] (``store="runs/x.h5"``, ``seed=3``). None removes a key (``cluster={"dashboard":
    None}``) or a whole section (``cluster=None``); an empty dict gives an empty section. ``base`` is a
    dict of sections, used as given (pass ``{}`` to start from nothing, ``TINY`` for the 4-atom campaign).
    Values are str (or paths), int, float, bool, lists and dicts, the last two written inline
    (``cheaper=[{"preset": "x", "cost": 1.0}]`` parses as ``[[calculator.cheaper]]`` does). Sections are
    written in CampaignConfig's order. Parse the text with ``activemat.campaign.config.parse_campaign`` for
    a config.

    >>> print(campaign_toml({}, store="runs/x.h5", stop={"budget": 3}), end="")
    [campaign]
    store = "runs/x.h5"
    <BLANKLINE>
    [stop]
    budget = 3
    """
    from activemat.campaign.config import CampaignConfig, CampaignSection

    sections = {name: dict(table) for name, table in (TEST_DEFAULTS if base is None else base).items()}
    for key, value in overrides.items():
        if key in CampaignConfig.model_fields:
            name, table = key, value
        elif key in CampaignSection.model_fields:
            name, table = "campaign", {key: value}
        else:
            raise TypeError(f"campaign_toml: {key!r} is neither a section nor a [campaign] key")
        if table is None:
            sections.pop(name, None)
            continue
        if not isinstance(table, dict):
            raise TypeError(f"campaign_toml: section {name!r} must be a dict of keys, or None; got {table!r}")
        section = sections.setdefault(name, {})
        for k, v in table.items():
            if v is None:
                section.pop(k, None)
            else:
                section[k] = v
    order = list(CampaignConfig.model_fields)
    names = sorted(sections, key=lambda name: order.index(name) if name in order else len(order))
    return "\n".join(f"[{_toml_key(name)}]\n" + "".join(f"{_toml_key(k)} = {_toml_value(v)}\n"
                                                          for k, v in sections[name].items())
                     for name in names)


@pytest.fixture
def campaign_file(tmp_path):
    """Write a campaign file: ``campaign_file(file="campaign.toml", base=None, /, **overrides) -> Path``.

    ``file`` is relative to the test's tmp_path (an absolute path is used as is); ``base`` and ``overrides``
    are :func:`campaign_toml`'s (so ``name=`` is the campaign's name, not the file's).
    """
    def write(file: str | Path = "campaign.toml", base: dict | None = None, /, **overrides) -> Path:
        path = tmp_path / file
        path.write_text(campaign_toml(base, **overrides))
        return path

    return write


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                 "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else _toml_value(key)


def _toml_value(value) -> str:
    """One TOML value: basic strings, integers, floats, booleans, inline arrays and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if value != value else repr(value)  # repr: 1.0, 1e-05, inf, -inf are TOML floats
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        return '"' + "".join(_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
                             for c in text) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"campaign_toml: no TOML form for {value!r} ({type(value).__name__})")


@pytest.fixture
def mpi_env(monkeypatch):
    """What the MPI tests need in their environment, set here in the open rather than in activemat.

    Open MPI's mpiexec refuses to start as root unless both variables are
    set; CI and these machines run the tests as root. On a machine with
    fewer cores than ranks, add ``--oversubscribe`` to ``mpi_launcher``
    (2 ranks on this 2-core machine need none).
    """
    if os.geteuid() == 0:
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


@pytest.fixture(scope="module")
def client():
    """A Dask client on two in-process workers (one thread each): real, asynchronous dispatch for loop
    tests against a ReplayOracle, without starting processes."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside its own empty directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def synthetic_gaps(pool) -> dict[int, float]:
    """A smooth, configuration-dependent gap table for replay tests (not physics)."""
    x = pool.x_b
    pair1 = pool.features[:, pool.feature_names.index("pair1")] if "pair1" in pool.feature_names else 0 * x
    gap = 0.60 - 0.55 * x + 0.05 * x**2 + 0.04 * (pair1 - (1 - 2 * x) ** 2)
    return {i: float(g) for i, g in enumerate(np.maximum(gap, 0.0))}


def cli(*args) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, standard output, standard error)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def cli_process(*args, cwd, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the command line as a user starts it, in a child process (``python -m activemat.cli``) in ``cwd``, with
    ``env`` added to this process's environment: the completed process, output captured as text."""
    return subprocess.run([sys.executable, "-m", "activemat.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(code: int, err: str) -> str:
    """The one ``activemat: error:`` line of an exit-2 refusal (fails the test on anything else)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("activemat: error: "), err
    return lines[0]
