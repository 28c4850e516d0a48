"""Points in time in text output: ISO 8601 in UTC, with the Unix seconds beside them.

The store keeps a calculation's ``submitted``, ``started`` and ``finished``
as seconds since 1970-01-01T00:00:00Z (the schema's time columns, CF units:
xarray and pandas read them as dates). Written out as text (``activemat
query --format csv|json|table``, ``activemat export -o FILE.csv``), each
becomes ISO 8601 in UTC to the millisecond, ``2025-03-01T12:00:05.250+00:00``,
followed by a ``<name>_unix`` column with the seconds at full precision. A
time never recorded (a calculation still running has no ``finished``) is
empty in both. ``--columns`` may ask for either: ``submitted`` (ISO) or
``submitted_unix`` (seconds).

>>> iso_utc(0.25)
'1970-01-01T00:00:00.250+00:00'
>>> iso_utc(float("nan")) is None
True
"""

from __future__ import annotations

import datetime
import math

import numpy as np

from activemat.store import schema as S

#: Calculation columns holding points in time (seconds since the Unix epoch in the store).
TIME_COLUMNS = tuple(c.name for c in S.CALCULATIONS.columns if c.unit == S.TIME)
#: Suffix of the column that keeps a time's Unix seconds.
UNIX = "_unix"


def iso_utc(seconds) -> str | None:
    """Unix seconds as ISO 8601 in UTC, to the millisecond; None for a missing time (NaN or None)."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")


def source_columns(columns: list[str]) -> list[str]:
    """The table columns to select for output ``columns``: ``<time>_unix`` is read from ``<time>`` (each once).

    >>> source_columns(["row", "submitted_unix", "submitted", "gap"])
    ['row', 'submitted', 'gap']
    """
    out = []
    for name in columns:
        base = name[: -len(UNIX)] if name.endswith(UNIX) and name[: -len(UNIX)] in TIME_COLUMNS else name
        if base not in out:
            out.append(base)
    return out


def with_iso_times(table: dict[str, np.ndarray], columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """A table for text output: each time column as ISO 8601 text, followed by ``<name>_unix`` (seconds).

    ``columns``: the output columns asked for (``--columns``), each time named
    either way; None: every column of ``table``, each time in both forms. Time
    columns already converted (text) are left as they are.
    """
    names = list(table) if columns is None else list(columns)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in table and (name not in TIME_COLUMNS or np.asarray(table[name]).dtype.kind != "f"):
            out[name] = np.asarray(table[name])  # not a time, a time already written as text, or its seconds
        elif name in TIME_COLUMNS:
            seconds = np.asarray(table[name])
            out[name] = np.array([iso_utc(v) for v in seconds.tolist()], dtype=object)
            if columns is None:
                out[name + UNIX] = seconds
        else:  # <time>_unix, read from <time>
            out[name] = np.asarray(table[name[: -len(UNIX)]])
    return out
