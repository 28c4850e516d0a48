"""Reference tables generated from activemat's own declarations, so the docs cannot drift from the code.

Directives (usable from MyST as ```` ```{activemat-store-schema} ````):

``activemat-store-schema``
    The HDF5 store layout declared by :mod:`activemat.store.schema`, from exactly these names:
    ``SCHEMA_VERSION``; ``ROOT_ATTRIBUTES`` (each ``name``, ``kind``, ``doc``); ``DIMENSIONS`` (each
    ``name``, ``dtype``, ``doc``; optional); ``GROUPS`` (each ``path``, ``doc``, ``row``, ``dimensions``
    and ``columns``, a column's ``name``, ``dtype``, ``unit``, ``per``, ``entry_dimensions``, ``fill``,
    ``since`` and ``doc``); and ``STATUSES`` (optional).
``activemat-presets``
    The presets shipped in ``calculators/``, through
    :func:`activemat.compute.presets.available_presets` and
    :func:`activemat.compute.presets.load_preset` (``$ACTIVEMAT_CALCULATORS`` is
    ignored while the table is built, so a local preset never lands in the docs).
``activemat-strategies``
    The registry :data:`activemat.learn.strategies.STRATEGIES`: each strategy's
    name, description and every boolean class flag of ``Strategy``.
``activemat-templates``
    The campaign templates ``activemat init`` writes (:data:`activemat.campaign.starter.TEMPLATES`),
    each read from the package as a campaign file: name, what it is for, presets, space, strategy, budget.
``activemat-cli-output``
    What ``activemat ARGS`` prints, run when the docs are built, in a new empty folder (shown as
    ``/home/me/sige``): the argument is the command line after ``activemat``; ``:setup:`` gives
    commands run there first (``;``-separated, their output not shown); ``:profile:`` loads the
    folder's ``jobqueue.yaml`` into the Dask config first (as ``~/.config/dask/`` would); ``:lines:``
    keeps the first N lines. The driver's Python in a job script is shown as
    ``/home/me/venvs/activemat/bin/python``. A command that fails is a build warning.
``repo-literalinclude``
    ``literalinclude`` with a path relative to the repository root (config value
    ``activemat_repo``), for files outside ``docs/`` such as ``slurm/campaign.sbatch``.

Anything missing from these modules is a build warning, which ``make docs`` turns into an error.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from docutils import nodes
from sphinx.directives.code import LiteralInclude
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _cell(value) -> nodes.entry:
    """A table cell: ``("code", text)`` as a literal, anything else as text."""
    entry = nodes.entry()
    if isinstance(value, tuple) and value[0] == "code":
        entry += nodes.paragraph("", "", nodes.literal(text=str(value[1])))
    else:
        entry += nodes.paragraph(text="" if value is None else str(value))
    return entry


def table(header: list[str], rows: list[list], title: str | None = None) -> nodes.table:
    tbl = nodes.table(classes=["activemat-generated"])
    if title:
        tbl += nodes.title(text=title)
    group = nodes.tgroup(cols=len(header))
    tbl += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for name in header:
        row += _cell(name)
    head += row
    body = nodes.tbody()
    group += body
    for values in rows:
        row = nodes.row()
        for value in values:
            row += _cell(value)
        body += row
    return tbl


def _code(text) -> tuple[str, str]:
    return ("code", text)


class _Table(SphinxDirective):
    has_content = False

    def depends_on(self, *files) -> None:
        """Rebuild the page when these files change (incremental builds)."""
        for f in files:
            self.env.note_dependency(str(f))

    def warn(self, message: str) -> list[nodes.Node]:
        logger.warning(message, location=self.get_location())
        return []


# --- store ----------------------------------------------------------------------------------------------------

def _dtype(code: str) -> str:
    import numpy as np

    dt = np.dtype(code)
    return f"{code} (text, {dt.itemsize} bytes)" if dt.kind == "S" else f"{code} ({dt.name})"


def _fill(value) -> str:
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    return str(value)


def _entry(column) -> str:
    """A column's entry: a scalar, or a vector or matrix along named dimensions (a fixed length n, or one value
    per site, feature, candidate)."""
    per = column.per
    if per is None:
        return "scalar"
    per = per if isinstance(per, tuple) else (per,)
    sizes = ", ".join(str(p) if isinstance(p, int) else f"n_{p}" for p in per)
    return f"({sizes}) along {', '.join(column.entry_dimensions)}"


def _literals(prefix: str, values, suffix: str = ".") -> nodes.paragraph:
    para = nodes.paragraph()
    para += nodes.Text(prefix)
    for i, value in enumerate(values):
        para += nodes.Text(", " if i else "")
        para += nodes.literal(text=str(value))
    para += nodes.Text(suffix)
    return para


class StoreSchema(_Table):
    def run(self):
        from activemat.store import schema

        self.depends_on(schema.__file__)
        missing = [n for n in ("SCHEMA_VERSION", "ROOT_ATTRIBUTES", "GROUPS") if not getattr(schema, n, None)]
        if missing:
            return self.warn(f"activemat.store.schema no longer declares {', '.join(missing)}: update docs/_ext")
        out: list[nodes.Node] = [_literals(
            "Schema version ", [schema.SCHEMA_VERSION],
            ". A store written by a newer schema is refused; an older one is migrated on a copy.")]
        out.append(table(["root attribute", "holds", "meaning"],
                         [[_code(a.name), a.kind, a.doc] for a in schema.ROOT_ATTRIBUTES], "Root attributes"))
        dimensions = getattr(schema, "DIMENSIONS", ())
        if dimensions:
            users = {d.name: [g.path for g in schema.GROUPS if d.name in g.dimensions] for d in dimensions}
            out.append(table(["dimension", "coordinate dtype", "in groups", "coordinate"],
                             [[_code(d.name), _dtype(d.dtype), ", ".join(users[d.name]), d.doc] for d in dimensions],
                             "Dimensions (HDF5 dimension scales)"))
        for group in schema.GROUPS:
            rubric = nodes.rubric()
            rubric += nodes.literal(text=f"{group.path}/")
            out += [rubric, nodes.paragraph(text=group.doc)]
            if group.columns:
                if getattr(group, "row", ""):
                    out.append(_literals("One row per ", [group.row], f": the dimension of its rows "
                                         f"(coordinates: {', '.join(group.dimensions)})."))
                out.append(table(["column", "dtype", "unit", "entry", "fill (no value)", "since", "meaning"],
                                 [[_code(c.name), _dtype(c.dtype), c.unit, _entry(c), _code(_fill(c.fill)),
                                   str(c.since), c.doc] for c in group.columns]))
        if getattr(schema, "STATUSES", None):
            out.append(_literals("Values of calculations/status: ", schema.STATUSES))
        return out


# --- presets --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _shipped_only():
    saved = os.environ.pop("ACTIVEMAT_CALCULATORS", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["ACTIVEMAT_CALCULATORS"] = saved


def _xc(settings) -> str:
    xc = settings.xc
    if isinstance(xc, str):
        return xc
    return xc["name"] + " (" + ", ".join(f"{k} = {v}" for k, v in xc.items() if k != "name") + ")"


class Presets(_Table):
    def run(self):
        from activemat.compute.presets import available_presets, load_preset

        from activemat.compute import presets as module

        with _shipped_only():
            presets = [load_preset(n) for n in available_presets()]
            self.depends_on(module.__file__, *(p for d in module.preset_dirs() for p in sorted(d.glob("*.toml"))))
        if not presets:
            return self.warn("no calculator presets found (activemat.compute.presets.available_presets())")
        rows = []
        for p in presets:
            g = p.gpaw
            rows.append([_code(p.name), p.description, _xc(g), "legacy" if g.legacy else "new", g.gap,
                         f"{g.ecut:g}", f"{g.kpts_density:g}", f"{g.smearing:g}",
                         ", ".join(f"{k} = {v:g}" for k, v in g.convergence.items()) or "GPAW default",
                         str(len(p.fallbacks))])
        return [table(["preset", "description", "xc", "GPAW calculator", "gap", "cutoff (eV)",
                       "k-point density (per Å⁻¹)", "smearing (eV)", "convergence", "fallbacks"], rows)]


# --- strategies -----------------------------------------------------------------------------------------------

class Strategies(_Table):
    def run(self):
        from activemat.learn import strategies
        from activemat.learn.strategies import STRATEGIES, Strategy

        self.depends_on(strategies.__file__)
        if not STRATEGIES:
            return self.warn("activemat.learn.strategies.STRATEGIES is empty")
        flags = [k for k, v in vars(Strategy).items() if not k.startswith("_") and isinstance(v, bool)]
        rows = [[_code(name), getattr(cls, "description", ""),
                 *("yes" if getattr(cls, f) else "no" for f in flags), getattr(cls, "done", "")]
                for name, cls in STRATEGIES.items()]
        return [table(["name", "description", *(f.replace("_", " ") for f in flags), "stops with"], rows)]


# --- the starter kit ------------------------------------------------------------------------------------------

class Templates(_Table):
    def run(self):
        from activemat.campaign import starter
        from activemat.campaign.config import parse_campaign

        self.depends_on(starter.__file__)
        if not starter.TEMPLATES:
            return self.warn("activemat.campaign.starter.TEMPLATES is empty")
        rows = []
        for name, what in starter.templates().items():
            config = parse_campaign(starter.template_text(name), f"template {name}")
            sp = config.space
            space = f"{'x'.join(map(str, sp.supercell))} {sp.cell} cell, {sp.mode}, {sp.features}"
            rows.append([_code(name), what, ", ".join(config.calculator.presets), space,
                         config.strategy.kind, str(config.stop.budget)])
        return [table(["template", "what it is for", "presets (cheap to accurate)", "space", "strategy",
                       "budget"], rows)]


class CliOutput(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"setup": str, "profile": lambda arg: True, "lines": int}

    SHOWN_AS = "/home/me/sige"

    @staticmethod
    def _cli(line: str, folder: Path, env: dict[str, str]):
        import shlex
        import subprocess
        import sys

        return subprocess.run([sys.executable, "-m", "activemat.cli", *shlex.split(line)], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)

    def run(self):
        import sys
        import tempfile

        import activemat

        line = self.arguments[0]
        env = {k: v for k, v in os.environ.items() if k not in ("ACTIVEMAT_CALCULATORS", "DASK_CONFIG")}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(activemat.__file__).resolve().parents[1]),
                                             *filter(None, [os.environ.get("PYTHONPATH")])])
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "sige"
            folder.mkdir()
            for setup in filter(None, (s.strip() for s in self.options.get("setup", "").split(";"))):
                done = self._cli(setup, folder, env)
                if done.returncode:
                    return self._fail(f"activemat {setup}", done.stderr)
            if "profile" in self.options:  # as a copy in ~/.config/dask/ would: dask reads the folder's YAML
                env["DASK_CONFIG"] = str(folder)
            done = self._cli(line, folder, env)
        if done.returncode:
            return self._fail(f"activemat {line}", done.stderr)
        text = done.stdout.replace(str(folder), self.SHOWN_AS)
        text = text.replace(sys.executable, "/home/me/venvs/activemat/bin/python")
        lines = text.rstrip("\n").splitlines()
        if "lines" in self.options and len(lines) > self.options["lines"]:
            lines = lines[: self.options["lines"]] + ["..."]
        block = nodes.literal_block("", "\n".join([f"$ activemat {line}", *lines]))
        block["language"] = "text"
        return [block]

    def _fail(self, command: str, err: str) -> list[nodes.Node]:
        logger.warning(f"`{command}` failed while building the docs: {err.strip()}", location=self.get_location())
        return []


# --- files outside docs/ --------------------------------------------------------------------------------------

class RepoLiteralInclude(LiteralInclude):
    """``literalinclude`` of a path relative to the repository root."""

    def run(self):
        root = Path(self.config.activemat_repo)
        here = Path(self.env.doc2path(self.env.docname)).parent
        self.arguments[0] = os.path.relpath(root / self.arguments[0], here)
        return super().run()


def setup(app):
    app.add_config_value("activemat_repo", str(Path(__file__).resolve().parents[2]), "env")
    app.add_directive("activemat-store-schema", StoreSchema)
    app.add_directive("activemat-presets", Presets)
    app.add_directive("activemat-strategies", Strategies)
    app.add_directive("activemat-templates", Templates)
    app.add_directive("activemat-cli-output", CliOutput)
    app.add_directive("repo-literalinclude", RepoLiteralInclude)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
