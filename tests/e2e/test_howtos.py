"""Every how-to's commands run as written, in a folder like a checkout after ``make demo``.

Each page of ``docs/howto/`` is read for its code blocks, and its shell and Python blocks run in order, in a
folder of their own that holds what ``make demo`` leaves behind in the repository: ``campaigns/``,
``calculators/``, ``slurm/``, ``benchmarks/`` (the scripts, and the shipped stores and datasets in
``data/``; ``results/`` empty), ``runs/demo.h5`` and ``.venv/bin/`` (``activemat``, ``python`` and ``gpaw``
of this interpreter, this source tree first on the path). Everything is a copy: no block writes into the
work tree. A block fails the test when any of its commands exits non-zero.

What runs: ``console`` blocks (the ``$ `` lines, with their ``\\`` continuations; the rest is output),
``bash`` and unlabelled blocks (every line a command, unless the block has ``$ `` lines), and ``python``
blocks (one script). ``pycon`` blocks are doctests, run with their outputs compared by
``tests/unit/test_python_api.py``; ``toml``, ``text`` and directives are not commands.

A block that cannot run here says so in the page, in a MyST comment on the line before its fence
(invisible in the built docs; above a ``<!-- generated: ... -->`` marker when the block is a generated
region of ``docs/regenerate.py``)::

    % howto-test: skip (needs a SLURM cluster)

and is reported as skipped with that reason. Reasons are: a cluster, a browser or a server that runs
until stopped, hours of DFT (anything that computes with GPAW beyond what already exists), or a store only
such a run makes.

``runs/demo.h5`` is the demo campaign (``campaigns/demo.toml``: ten gpaw-fast results, max_std after four
seeds) run by the real loop, with its DFT answered from the shipped gpaw-fast results of the same preset
(``benchmarks/data/sige16-fast.extxyz``, all 402 configurations) instead of GPAW: the same store as
``make demo`` writes, in seconds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOWTO = ROOT / "docs" / "howto"
PAGES = sorted(p for p in HOWTO.glob("*.md") if p.name != "index.md")
MARK = re.compile(r"^% howto-test: skip \((?P<reason>[^)]+)\)\s*$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```\s*$", re.S | re.M)
SHELL = {"", "console", "bash", "sh", "shell"}
NOT_COMMANDS = {"toml", "text", "pycon", "yaml", "json"}
#: Seconds one block may take (a few CLI calls on a loaded 2-core machine).
TIMEOUT = 240


@dataclass
class Block:
    page: str
    line: int
    kind: str  # "shell" or "python"
    code: str
    skip: str | None  # the page's reason, when marked

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def commands(info: str, body: str) -> str:
    """The shell commands of a block: the ``$ `` lines (with continuations) if it has any, else every line."""
    lines = body.splitlines()
    if not any(line.startswith("$ ") for line in lines):
        return body
    out, going = [], False
    for line in lines:
        if line.startswith("$ ") or going:
            out.append(line[2:] if line.startswith("$ ") and not going else line)
            going = line.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


def blocks(page: Path) -> list[Block]:
    """The page's shell and Python blocks, in page order, each with its skip reason if marked."""
    text = page.read_text()
    found = []
    for m in FENCE.finditer(text):
        info = m["info"].strip()
        if info.startswith("{") or info in NOT_COMMANDS:
            continue
        assert info in SHELL | {"python"}, f"{page.name}: a ```{info} block: say whether it runs (test_howtos.py)"
        line = text.count("\n", 0, m.start()) + 1
        preceding = text[:m.start()].rstrip("\n").rsplit("\n", 2)
        before = preceding[-1].strip()
        if before.startswith("<!-- generated:") and len(preceding) > 1:  # a docs.regenerate region: its mark is above
            before = preceding[-2].strip()
        mark = MARK.match(before)
        assert mark or not before.startswith("% howto-test"), f"{page.name}:{line - 1}: malformed mark {before!r}"
        kind = "python" if info == "python" else "shell"
        body = textwrap.dedent(m["body"])
        code = body if kind == "python" else commands(info, body)
        found.append(Block(page.name, line, kind, code, mark["reason"] if mark else None))
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def _demo_store(folder: Path) -> None:
    """runs/demo.h5 as ``make demo`` writes it: the demo campaign by the real loop, its gaps the shipped
    gpaw-fast results of the same preset (no GPAW run)."""
    from distributed import Client, LocalCluster
    from rich.console import Console

    from activemat.campaign.config import load_campaign
    from activemat.campaign.loop import run_campaign
    from activemat.campaign.progress import Reporter
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from activemat.space.matching import load_labels

    with contextlib.chdir(folder):
        config, text = load_campaign("campaigns/demo.toml")
        labels = load_labels("benchmarks/data/sige16-fast.extxyz", build_campaign_pool(config))
        assert len(labels.gaps) == 402
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            run_campaign(config, text, client=client, task=ReplayOracle(labels.gaps),
                         report=Reporter(config.stop.budget, Console(file=io.StringIO())))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder like the repository after ``make demo`` (copies: the blocks never write into the work tree)."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("campaigns", "calculators", "slurm", "benchmarks"):  # symbolic links copied as files
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("results", "__pycache__"))
    (root / "benchmarks" / "results").mkdir()  # `python -m benchmarks.X` here saves here, never in the work tree
    (root / "runs").mkdir()
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    here = Path(sys.executable).parent
    for name, line in (("python", f'exec "{sys.executable}" "$@"'),
                       ("activemat", f'exec "{sys.executable}" -m activemat.cli "$@"'),
                       ("gpaw", f'exec "{here / "gpaw"}" "$@"')):
        (bin_ / name).write_text(f"#!/bin/sh\n{line}\n")
        (bin_ / name).chmod(0o755)
    _demo_store(root)
    assert (root / "runs" / "demo.h5").is_file()
    return root


def _env(folder: Path) -> dict[str, str]:
    home = folder / "home"
    home.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")}
    return {**keep, "HOME": str(home), "PATH": f"{folder / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "COLUMNS": "120"}


def run_block(block: Block, folder: Path) -> subprocess.CompletedProcess:
    """Run one block in ``folder``, in a session of its own: past TIMEOUT, all its processes are killed."""
    if block.kind == "python":
        args = [str(folder / ".venv" / "bin" / "python"), "-c", block.code]
    else:
        args = ["bash", "-e", "-c", block.code]
    proc = subprocess.Popen(args, cwd=folder, env=_env(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\nkilled after {TIMEOUT} s: mark the block if it cannot run here"
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_every_unmarked_block_of_the_page_runs(page, checkout, tmp_path):
    """The page's blocks in order, in a fresh copy of the checkout (a block may use what an earlier one made)."""
    folder = tmp_path / "checkout"
    shutil.copytree(checkout, folder, symlinks=True)
    run = [b for b in ALL if b.page == page and b.skip is None]
    if not run:
        pytest.skip(f"{page}: no block runs here (each is marked with its reason)")
    failed = []
    for block in run:
        proc = run_block(block, folder)
        if proc.returncode != 0:
            failed.append(f"{block.name} (exit {proc.returncode}):\n{block.code}\n{proc.stderr[-1500:]}")
    assert not failed, "\n\n".join(failed)


@pytest.mark.parametrize("block", [b for b in ALL if b.skip], ids=lambda b: b.name)
def test_a_marked_block_is_skipped_with_its_reason(block):
    pytest.skip(f"{block.name}: {block.skip}")


def test_the_blocks_are_found_and_marks_are_rare():
    assert len(PAGES) >= 15 and len(ALL) >= 35
    assert {b.page for b in ALL if b.skip is None} >= {"query-export.md", "starter-kit.md", "gap-curve.md"}
    assert sum(b.skip is None for b in ALL) >= len(ALL) / 3, "most how-to blocks should run as written"


def test_the_parser_reads_console_prompts_and_continuations():
    body = "$ activemat query runs/demo.h5 \\\n    --status ok\n┏━━ table\n$ activemat status runs/demo.h5\nout\n"
    assert commands("console", body) == "activemat query runs/demo.h5 \\\n    --status ok\nactivemat status runs/demo.h5\n"
    assert commands("", "mkdir -p runs\ncp a b\n") == "mkdir -p runs\ncp a b\n"


def test_a_block_fails_at_its_first_failing_command(tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    proc = run_block(Block("x.md", 1, "shell", "false\ntouch ran\n", None), tmp_path)
    assert proc.returncode == 1 and not (tmp_path / "ran").exists()
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    assert run_block(Block("x.md", 1, "python", "raise SystemExit(3)\n", None), tmp_path).returncode == 3
