"""A store's tables for people: ``activemat query`` as a rich table, CSV or JSON, and ``activemat status``.

The store layer returns data: :class:`~activemat.store.query.StoreView` (a
store as :func:`~activemat.store.read.read_store` reads it) filters the
calculations joined with their candidates, :mod:`activemat.store.status`
counts. This module writes them out. The CSV is the text
:mod:`activemat.store.export` writes to a file; the JSON is
:func:`~activemat.store.query.to_records` (NaN as null, parameters as
objects); the rich table shows at most :data:`TABLE_ROW_LIMIT` rows, with
units in its headers. Times (``submitted``, ``started``, ``finished``) are
written as ISO 8601 in UTC, each followed by its Unix seconds
(``submitted_unix``, ...; :mod:`activemat.store.timestamps`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import numpy as np

from activemat.errors import InputError
from activemat.store import schema as S
from activemat.store.export import write_csv
from activemat.store.query import to_records
from activemat.store.read import read_store
from activemat.store.timestamps import TIME_COLUMNS, UNIX, source_columns, with_iso_times

__all__ = ["OUTPUT_FORMATS", "write_rows", "run_query", "render_status"]

OUTPUT_FORMATS = ("table", "csv", "json")
# Columns shown by the rich table unless --columns is given ({b} is the alloying element, e.g. ge).
TABLE_COLUMNS = ("row", "candidate", "formula", "x_{b}", "status", "gap", "direct", "energy", "iteration",
                 "reason", "wall_time", "worker", "error")
TABLE_ROW_LIMIT = 100  # rows printed by the table format without --limit


def write_rows(table: dict[str, np.ndarray], fmt: str = "table", file: IO | None = None, *,
               total: int | None = None, title: str | None = None, columns: list[str] | None = None) -> None:
    """Write a (filtered) calculations table as a rich table, CSV or JSON.

    Parameters
    ----------
    fmt
        ``"table"`` (human, at most ``TABLE_ROW_LIMIT`` rows), ``"csv"`` or ``"json"`` (all rows).
    total
        Number of rows before filtering, for the table caption.
    columns
        The columns asked for, a time either as ISO text (``submitted``) or as Unix seconds
        (``submitted_unix``); None: every column of ``table``, each time in both forms.
    """
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown --format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    file = file or sys.stdout
    table = with_iso_times(table, columns)
    names = list(table)
    n = len(table[names[0]]) if names else 0
    if fmt == "json":
        file.write(json.dumps(to_records(table)) + "\n")  # dumps uses the C encoder; dump does not
    elif fmt == "csv":
        write_csv(table, file)
    else:
        _rich_table(table, names, n, file, total, title)


def _rich_table(table, names, n, file, total, title) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = min(n, TABLE_ROW_LIMIT)
    caption = f"{n} of {total} calculations match" if total is not None else f"{n} rows"
    if shown < n:
        caption += f"; first {shown} shown (use --limit N, or --format csv/json for all)"
    units = {c.name: f" ({c.unit})" for c in S.CALCULATIONS.columns if c.unit}
    units["wall_time"] = f" ({S.UNITS['time']})"
    units.update({name: " (UTC)" for name in TIME_COLUMNS})
    units.update({name + UNIX: f" ({S.TIME})" for name in TIME_COLUMNS})
    t = Table(title=title, caption=caption)
    for k in names:
        t.add_column(k + units.get(k, ""), justify="right" if np.asarray(table[k]).dtype.kind in "iuf" else "left",
                     overflow="fold", max_width=40 if k == "error" else None)
    fmt = {"gap": "{:.4f}", "ks_gap": "{:.4f}", "discontinuity": "{:.4f}", "energy": "{:.3f}", "vbm": "{:.3f}",
           "cbm": "{:.3f}", "wall_time": "{:.1f}", "score": "{:.4g}"}
    cols = [np.asarray(table[k])[:shown].tolist() for k in names]
    for row in zip(*cols):
        cells = []
        for k, v in zip(names, row):
            if v is None:
                cells.append("-")
            elif isinstance(v, float):
                cells.append("-" if v != v else fmt.get(k, "{:.3f}" if k.startswith("x_") else "{:.4g}").format(v))
            elif isinstance(v, bool):
                cells.append("yes" if v else "no")
            else:
                cells.append(str(v))
        t.add_row(*cells)
    Console(file=file, width=200 if not getattr(file, "isatty", lambda: False)() else None).print(t)


def run_query(path: str | Path, *, fmt: str = "table", columns=None, sort=None, reverse=False, limit=None,
              file: IO | None = None, **filters) -> int:
    """Filter a store's calculations and write them (the ``activemat query`` verb); return the match count."""
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown --format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    view = read_store(path)
    asked = None
    if columns is not None:  # a time may be asked for as <time>_unix: it is read from <time>
        asked = [c.strip() for c in (columns.split(",") if isinstance(columns, str) else columns) if str(c).strip()]
        columns = source_columns(asked) or columns
    if sort is not None:
        sort = source_columns([sort])[0]
    if columns is None and fmt == "table":
        t = view.table()
        columns = [c.format(b=view.b) for c in TABLE_COLUMNS if c.format(b=view.b) in t]
        if not np.any(view.calculations["status"] == S.FAILED):
            columns.remove("error")
    rows = view.select(columns=columns, sort=sort, reverse=reverse, limit=limit, **filters)
    write_rows(rows, fmt, file, total=view.n_calculations, title=f"{view.path}", columns=asked)
    return len(next(iter(rows.values()))) if rows else 0


def render_status(summary: dict, console) -> None:
    """Print :func:`activemat.store.status.summarize`'s counts (the ``activemat status`` verb) on a rich
    ``console``: one table of the store, then one of its failed attempts, if any."""
    from rich.table import Table

    table = Table(title=f"activemat store {summary['store']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if key in ("store", "failures"):
            continue
        if isinstance(value, float):
            value = f"{value:.4f} eV"
        if key == "presets":
            value = ", ".join(f"{name}: {v['completed']} ({v['median_wall_time']:.0f} s each)"
                              for name, v in value.items()) or None
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    console.print(table)
    if summary["failures"]:
        failures = Table(title="failed attempts")
        for column in ("candidate", "attempt", "fallback", "error", "scratch"):
            failures.add_column(column)
        for f in summary["failures"]:
            failures.add_row(*(str(f[k]) if f[k] is not None else "-" for k in ("candidate", "attempt", "fallback", "error", "scratch")))
        console.print(failures)
