"""Example outputs in README.md and docs/ that cannot drift: each is made by running what produces it.

    python -m docs.regenerate            # rewrite every generated region in place
    python -m docs.regenerate --check    # list the stale ones and exit 1 (tests/e2e/test_docs_regenerate_check.py)
    python -m docs.regenerate README.md  # only these files

A generated region is the text between two HTML comments (invisible on GitHub and in the built pages)::

    <!-- generated: KIND [key=value ...] -->
    ...
    <!-- end generated -->

Kinds:

``output``
    A fenced block of commands, each a line starting with ``$ `` (continued by lines after a trailing
    ``\\``). Each command is run with ``bash -o pipefail -c`` in a new folder holding what a user has after
    ``make demo``: ``campaigns/``, ``runs/demo.h5`` (the recorded demo store, ``docs/data/demo.h5``),
    ``benchmarks/data/reference-pbe.h5`` (and a copy in ``runs/``), ``benchmarks/data/sige16-accurate.h5``,
    ``benchmarks/data/algaas16-pbe-fast.h5``, and ``.venv/bin/activemat`` (this
    checkout's CLI; ``activemat`` alone works too). What it prints (stdout and stderr, in order, 120
    columns) replaces the lines up to the next command; the folder is shown as ``/home/me/sige``.
    ``.venv/bin/python`` is this interpreter, with this checkout first on the path (``python -m
    benchmarks.X --report`` reads this checkout's ``benchmarks/results/``). ``HOME`` is the folder's parent,
    shown as ``/home/me``; a process id and this machine's name in "pid N on HOST" are shown as
    "pid 25573 on vm".
    Options: ``exit=N`` (the status the block's last command must end with, default 0; the others must
    succeed), ``lines=N`` (keep the first N lines of each output), ``recorded=NAME`` (the first command
    computes DFT, which cannot run here: its output is ``docs/data/NAME.txt``, a transcript of the run that
    wrote the store named in :data:`RECORDINGS`, checked line by line against that store's calculations),
    ``setup=NAME`` (before the commands, ``bash docs/data/NAME.sh`` runs in the folder, not shown: it
    prepares what the page describes but a reader would not type, e.g. a running driver or a damaged file;
    it must succeed, and whatever it leaves running in its process group is stopped after the block).
``preset-guide``
    The table of :mod:`docs.preset_guide`: every shipped preset, what it is for, and its gaps and cost
    from ``benchmarks/results/end_members.json``.
``campaign-defaults``
    Every campaign key at its default, read from the pydantic models (:mod:`docs.preset_guide`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
SHOWN_AS = "/home/me/sige"
HOME_SHOWN_AS = "/home/me"
BEGIN = re.compile(r"^<!-- generated: (?P<kind>[\w-]+)(?P<args>(?: [\w-]+=\S+)*) -->$")
END = "<!-- end generated -->"
#: recording name (docs/data/NAME.txt) -> what its result lines are checked against: the store that run wrote
#: (docs/data/*.h5: candidate, gap and wall time of every successful calculation, and no other), or, for a run whose
#: store is not shipped, the preset's labelled gaps of every candidate (benchmarks/data/*.extxyz: candidate and gap)
RECORDINGS = {"demo-run": DATA / "demo.h5", "seed-tutorial-run": DATA / "seed-tutorial.h5",
              "demo-run-12": ROOT / "benchmarks" / "data" / "sige16-fast.extxyz"}
#: what the folder a command runs in holds: its path there -> the file in this checkout
SANDBOX_FILES = {"runs/demo.h5": DATA / "demo.h5",
                 "benchmarks/data/algaas16-pbe-fast.h5": ROOT / "benchmarks" / "data" / "algaas16-pbe-fast.h5",
                 "runs/seed-tutorial.h5": DATA / "seed-tutorial.h5",
                 "runs/reference-pbe.h5": ROOT / "benchmarks" / "data" / "reference-pbe.h5",
                 "benchmarks/data/reference-pbe.h5": ROOT / "benchmarks" / "data" / "reference-pbe.h5",
                 "benchmarks/data/sige16-accurate.h5": ROOT / "benchmarks" / "data" / "sige16-accurate.h5"}
PROGRESS = re.compile(r"^\s*\d+/\d+ (?P<formula>\S+)\s+#(?P<candidate>\d+)\s+gap (?P<gap>[\d.]+) eV .*?"
                      r"(?P<wall>[\d.]+) s on (?P<worker>\S+)\s+\|")


class GenerationError(Exception):
    """A region cannot be generated (a command failed, a recording disagrees with its store)."""


@dataclass
class Region:
    path: Path
    begin: int  # index of the BEGIN line
    end: int  # index of the END line
    kind: str
    options: dict[str, str] = field(default_factory=dict)
    body: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.begin + 1}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def default_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def regions(path: Path) -> list[Region]:
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if m:
            try:
                end = lines.index(END, i + 1)
            except ValueError:
                raise GenerationError(f"{_shown(path)}:{i + 1}: '{lines[i]}' has no '{END}' after it") from None
            options = dict(a.split("=", 1) for a in m.group("args").split())
            out.append(Region(path, i, end, m.group("kind"), options, lines[i + 1:end]))
            i = end
        elif lines[i].startswith("<!-- generated"):
            raise GenerationError(f"{_shown(path)}:{i + 1}: malformed marker '{lines[i]}'")
        i += 1
    return out


# --- output blocks ----------------------------------------------------------------------------------------

def commands(body: list[str]) -> list[list[str]]:
    """The commands of a fenced block, each as its displayed lines (continuations included)."""
    out: list[list[str]] = []
    continued = False
    for line in body[1:-1]:
        if continued and out:
            out[-1].append(line)
        elif line.startswith("$ "):
            out.append([line])
        else:
            continue
        continued = line.endswith("\\")
    return out


class Sandbox:
    """A new folder laid out as a user's after ``make demo``, where a block's commands run in order."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="activemat-docs-")
        self.folder = Path(self._tmp.name) / "sige"
        (self.folder / ".venv" / "bin").mkdir(parents=True)
        cli = self.folder / ".venv" / "bin" / "activemat"
        cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m activemat.cli "$@"\n')
        python = cli.with_name("python")
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        for script in (cli, python):
            script.chmod(0o755)
        self._setup: subprocess.Popen | None = None
        shutil.copytree(ROOT / "campaigns", self.folder / "campaigns", symlinks=False)
        for target, source in SANDBOX_FILES.items():
            if source.is_file():
                (self.folder / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, self.folder / target)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("ACTIVEMAT_CALCULATORS", "DASK_CONFIG", "FORCE_COLOR", "CLICOLOR_FORCE")}
        self.env.update(PATH=f"{cli.parent}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
                        HOME=str(self.folder.parent),
                        COLUMNS="120", LINES="50", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", TERM="dumb",
                        NO_COLOR="1", PYTHONWARNINGS="ignore")

    def run(self, command: str, expect: int) -> list[str]:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=self.folder, env=self.env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=900)
        text = done.stdout.replace(str(self.folder), SHOWN_AS).replace(str(self.folder.parent), HOME_SHOWN_AS)
        text = re.sub(rf"\bpid \d+ on {re.escape(socket.gethostname())}\b", "pid 25573 on vm",
                      text.replace(sys.executable, "python"))
        if done.returncode != expect:
            raise GenerationError(f"`{command}` exited {done.returncode}, not {expect}:\n{text[-3000:]}")
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def setup(self, name: str) -> None:
        """Run ``docs/data/NAME.sh`` here, in a process group of its own (stopped by :meth:`close`)."""
        script = DATA / f"{name}.sh"
        if not script.is_file():
            raise GenerationError(f"no setup script docs/data/{name}.sh")
        log = Path(self._tmp.name) / "setup.log"  # a file, not a pipe: what the setup leaves running keeps it open
        with log.open("w") as out:
            self._setup = subprocess.Popen(["bash", "-e", str(script)], cwd=self.folder, env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        if self._setup.wait(timeout=300) != 0:
            raise GenerationError(f"setup docs/data/{name}.sh exited {self._setup.returncode}:\n"
                                  f"{log.read_text()[-3000:]}")

    def close(self) -> None:
        if self._setup is not None:  # what the setup left running: its process group (its own session)
            try:
                os.killpg(self._setup.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self._tmp.cleanup()


def recording(name: str) -> list[str]:
    """A recorded run's output, after checking each progress line against the store that run wrote."""
    path = DATA / f"{name}.txt"
    if name not in RECORDINGS or not path.is_file():
        raise GenerationError(f"no recording {name}: expected docs/data/{name}.txt and an entry in RECORDINGS")
    lines = path.read_text().rstrip("\n").splitlines()
    source = RECORDINGS[name]
    if source.suffix == ".h5":
        check_recording(lines, source, name)
    else:
        check_against_labels(lines, source, name)
    return lines


def _results(lines: list[str]) -> list[re.Match]:
    return [m for m in map(PROGRESS.match, lines) if m]


def check_recording(lines: list[str], store: Path, name: str) -> None:
    """Every result line (count/budget formula #candidate gap ... s on worker) is a successful calculation of
    ``store`` (candidate, formula, gap and wall time as printed), and every successful calculation has one."""
    import activemat

    calcs = activemat.Store(str(store)).calculations
    ok = calcs[calcs.status == "ok"]
    printed = {(int(m["candidate"]), m["formula"], m["gap"], m["wall"]) for m in _results(lines)}
    stored = {(int(r.candidate), r.formula, f"{r.gap:.3f}", f"{r.wall_time:.1f}") for r in ok.itertuples()}
    if printed != stored or len(_results(lines)) != len(ok):
        wrong = sorted(printed ^ stored)[:3]
        raise GenerationError(f"recording {name} and {_shown(store)} disagree (candidate, formula, gap, s): {wrong}")


def check_against_labels(lines: list[str], labels: Path, name: str) -> None:
    """Every result line's gap is the labelled gap of its candidate (the same preset, the same pool)."""
    from activemat.space.matching import load_labels
    from activemat.space.pool import build_pool

    gaps = load_labels(str(labels), build_pool()).gaps
    for m in _results(lines):
        if f"{gaps.get(int(m['candidate']), float('nan')):.3f}" != m["gap"]:
            raise GenerationError(f"recording {name}: '{m.group(0).strip()}' is not the gap {_shown(labels)} "
                                  f"holds for candidate {m['candidate']}")


def render_output(region: Region) -> list[str]:
    body = region.body
    if len(body) < 2 or not body[0].startswith("```") or not body[-1].startswith("```"):
        raise GenerationError(f"{region.where}: an output region holds one fenced block")
    cmds = commands(body)
    if not cmds:
        raise GenerationError(f"{region.where}: no '$ ' command in the block")
    keep = int(region.options["lines"]) if "lines" in region.options else None
    sandbox = Sandbox()
    out = [body[0]]
    try:
        if "setup" in region.options:
            sandbox.setup(region.options["setup"])
        for i, shown in enumerate(cmds):
            if i == 0 and "recorded" in region.options:
                printed = recording(region.options["recorded"])
            else:
                command = "\n".join(shown)[2:]
                printed = sandbox.run(command, int(region.options.get("exit", 0)) if i == len(cmds) - 1 else 0)
            if keep is not None and len(printed) > keep:
                printed = printed[:keep] + ["..."]
            out += shown + printed
    finally:
        sandbox.close()
    return out + [body[-1]]


# --- regions ----------------------------------------------------------------------------------------------

def render(region: Region) -> list[str]:
    if region.kind == "output":
        return render_output(region)
    if region.kind == "preset-guide":
        from docs.preset_guide import preset_table

        return preset_table()
    if region.kind == "campaign-defaults":
        from docs.preset_guide import campaign_defaults

        return campaign_defaults()
    raise GenerationError(f"{region.where}: unknown kind '{region.kind}' (output, preset-guide, campaign-defaults)")


def stale(files: list[Path]) -> list[tuple[Region, list[str]]]:
    """Each region whose text is not what it would be generated as, with the text it should have."""
    out = []
    for path in files:
        for region in regions(path):
            fresh = render(region)
            if fresh != region.body:
                out.append((region, fresh))
    return out


def rewrite(path: Path, fresh: dict[int, list[str]]) -> None:
    """Replace the bodies of ``path``'s regions (by BEGIN line index) with the given lines."""
    lines = path.read_text().splitlines()
    for region in sorted(regions(path), key=lambda r: r.begin, reverse=True):
        if region.begin in fresh:
            lines[region.begin + 1:region.end] = fresh[region.begin]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.regenerate", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--check", action="store_true", help="change nothing; list stale regions, exit 1 if any")
    args = parser.parse_args(argv)
    files = args.files or default_files()
    try:
        found = stale(files)
    except GenerationError as exc:
        print(f"docs.regenerate: error: {exc}", file=sys.stderr)
        return 2
    for region, fresh in found:
        print(f"{region.where}: {region.kind} region is stale")
        if args.check:
            sys.stdout.writelines(difflib.unified_diff([f"{x}\n" for x in region.body], [f"{x}\n" for x in fresh],
                                                       "in the file", "generated now", n=1))
    if args.check:
        return 1 if found else 0
    by_file: dict[Path, dict[int, list[str]]] = {}
    for region, fresh in found:
        by_file.setdefault(region.path, {})[region.begin] = fresh
    for path, fresh in by_file.items():
        rewrite(path, fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
