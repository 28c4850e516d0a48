"""Rows as the writer stores them: a batch appended to a group, a record's results, a relaxed row looked up.

Pure functions on a store's open datasets, with no locks, room checks or
flushes (those are :class:`~activemat.store.write.StoreWriter`'s): what goes
into which column of which row, and what a row holds.
"""

from __future__ import annotations

import h5py
import numpy as np

from activemat.compute.records import CalculationRecord
from activemat.store import schema as S
from activemat.store.layout import encode, stacked, stored


def append_rows(group: S.Group, cols: dict[str, h5py.Dataset], coordinate: h5py.Dataset, start: int,
                rows: list[dict]) -> None:
    """Write ``rows`` (column name -> value; missing columns get their fill) from row ``start`` on: the row
    coordinate grows with them, and each column is written once for the whole batch."""
    coordinate.resize((start + len(rows),))
    coordinate[start:] = np.arange(start, start + len(rows))
    for column in group.columns:
        ds = cols[column.name]
        ds.resize((start + len(rows), *ds.shape[1:]))
        # one write per column for the whole batch of rows
        ds[start:] = stacked([stored(column, row.get(column.name, column.fill)) for row in rows], column,
                             ds.shape[1:])


def result_values(calc: dict[str, h5py.Dataset], keys: list[str],
                  records: list[CalculationRecord]) -> dict[str, np.ndarray]:
    """Result column -> its values for finished rows, in the rows' order, ``status`` last.

    A value is the record's (``parameters``: the key of its parameter set, from ``keys``), or the column's
    fill where the record has none (no structure recorded when not relaxed), as an append writes it.
    """
    columns = [c for c in S.CALCULATIONS.columns if c.source == S.RESULT and c.name != "status"]
    out = {}
    for column in [*columns, S.CALCULATIONS["status"]]:
        values = []
        for key, record in zip(keys, records):
            value = key if column.name == "parameters" else getattr(record, column.name)
            values.append(stored(column, column.fill if value is None else value))
        out[column.name] = stacked(values, column, calc[column.name].shape[1:])
    return out


def parameter_parts(text: str) -> list[str]:
    """A parameter set's canonical JSON cut into rows of the parameters group (its ``json`` column's width;
    canonical JSON is ASCII: one byte a character).

    >>> [len(part) for part in parameter_parts("x" * (2 * S.PARAMETERS_PART + 1))] == [S.PARAMETERS_PART] * 2 + [1]
    True
    """
    width = S.PARAMETERS["json"].width
    return [text[i:i + width] for i in range(0, len(text), width)]


def relaxed_row(cols: dict[str, h5py.Dataset], n: int, candidate: int, preset: str) -> dict | None:
    """The structure, gap and spin-orbit gap of the last of the first ``n`` calculation rows that relaxed
    ``candidate`` successfully with ``preset``; None if there is none."""
    hit = np.flatnonzero((cols["candidate"][:n] == candidate) & (cols["status"][:n] == S.OK.encode())
                         & (cols["preset"][:n] == encode(preset, S.CALCULATIONS["preset"]))
                         & (cols["relax"][:n] != b""))
    if not len(hit):
        return None
    row = int(hit[-1])
    return {"positions": cols["positions"][row], "cell": cols["cell"][row], "gap": float(cols["gap"][row]),
            "soc_gap": float(cols["soc_gap"][row])}
