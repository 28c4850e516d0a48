"""The one chunk a killed writer may have torn, kept when its store is recovered.

The writer rewrites a column's chunk in place (a 1024-row chunk of
``calculations/host`` is 64 KiB, 17 pages). Linux stops a ``pwrite`` between
pages when its process is killed, so ``kill -9`` (or a power cut) in the middle
of a flush can leave a chunk whose first pages are new and the rest old: every
byte is an old or a new value, but the Fletcher-32 checksum at the chunk's end
(old) matches neither, and HDF5 refuses to read it. Recovery used to refuse
the whole store then ("could not be copied to recover it"), and the campaign
could not resume.

A kill interrupts one write, so a killed writer's file holds at most one such
chunk: recovery reads it without its checksum (:func:`read_block`), and
:func:`settle` makes every row it may have changed safe. The writer makes that
decidable: a finished row's results are flushed before its status
(:meth:`~activemat.store.write.CampaignStore.finish_attempts`), and a new row's
columns before its status ``running``
(:meth:`~activemat.store.write.CampaignStore.add_attempts`). So a row whose
status reads ``ok`` or ``failed`` has all its results on disk; a status cut
mid-value (neither old nor new) is set back to ``running``, and the resume
runs it again; new rows still without a status are dropped (no task was sent
for them). A torn snapshot or parameter set is the last one appended: it is
dropped (the next refit makes a snapshot; a parameter set no finished row names
is written again when needed).

Two chunks failing their checksums, or one in a file closed cleanly, are not a
kill's doing: that stays a one-line "damaged" error naming the dataset.
"""

from __future__ import annotations

import zlib

import h5py
import numpy as np

from activemat.store import schema as S
from activemat.store.layout import CHECKSUM_BYTES


class Torn:
    """The chunks read without their checksum while copying one file (at most one is a kill's doing)."""

    def __init__(self):
        self.chunks: list[tuple[str, int]] = []  # (dataset name, first row of the chunk)

    def add(self, ds: h5py.Dataset, row: int) -> None:
        self.chunks.append((ds.name, row))
        if len(self.chunks) > 1:
            names = ", ".join(sorted({name.lstrip("/") for name, _ in self.chunks}))
            raise OSError(f"{names}: {len(self.chunks)} chunks fail their Fletcher-32 checksums, more than a killed"
                          " writer tears: the bytes on disk changed")

    def groups(self) -> set[str]:
        return {name.lstrip("/").split("/")[0] for name, _ in self.chunks}


def raw_chunk(ds: h5py.Dataset, row: int) -> np.ndarray:
    """The chunk of ``ds`` starting at ``row``, decoded from its bytes on disk without checking its checksum."""
    offset = (row, *([0] * (ds.ndim - 1)))
    _, raw = ds.id.read_direct_chunk(offset)
    data = raw[:-CHECKSUM_BYTES] if ds.fletcher32 else raw
    if ds.compression == "gzip":
        data = zlib.decompress(data)
    return np.frombuffer(data, dtype=ds.dtype).reshape(ds.chunks)


def read_block(ds: h5py.Dataset, start: int, stop: int, torn: Torn) -> np.ndarray:
    """Rows ``start:stop`` of ``ds``; a chunk failing its checksum is read from its raw bytes and noted in
    ``torn`` (which refuses a second one)."""
    try:
        return ds[start:stop]
    except OSError:
        if not ds.chunks:
            raise
    out = np.empty((stop - start, *ds.shape[1:]), dtype=ds.dtype)
    step = ds.chunks[0]
    for first in range(start - start % step, stop, step):
        lo, hi = max(first, start), min(first + step, stop)
        try:
            out[lo - start:hi - start] = ds[lo:hi]
        except OSError:
            chunk = raw_chunk(ds, first)
            torn.add(ds, first)
            out[lo - start:hi - start] = chunk[lo - first:hi - first]
    return out


def _truncate(g: h5py.Group, group: S.Group, n: int) -> None:
    for column in group.columns:
        if column.name in g and g[column.name].shape[0] > n:
            g[column.name].resize((n, *g[column.name].shape[1:]))


def settle(dst: h5py.File, torn: Torn) -> None:
    """Make safe every row a torn chunk may have changed, in the copy ``dst`` (before its coordinates are made)."""
    if not torn.chunks:
        return
    groups = torn.groups()
    if S.CALCULATIONS.path in groups:
        g = dst[S.CALCULATIONS.path]
        status = g["status"][()]
        known = {s.encode() for s in S.STATUSES}
        cut = np.array([s not in known and s != b"" for s in status.tolist()], dtype=bool)
        if cut.any():
            rows = np.flatnonzero(cut)
            g["status"][rows] = np.full(len(rows), S.RUNNING.encode(), dtype=status.dtype)
        _truncate(g, S.CALCULATIONS, submitted(status))
    if S.SNAPSHOTS.path in groups:
        g = dst[S.SNAPSHOTS.path]
        _truncate(g, S.SNAPSHOTS, max(min(g[c.name].shape[0] for c in S.SNAPSHOTS.columns) - 1, 0))
    if S.PARAMETERS.path in groups:
        g = dst[S.PARAMETERS.path]
        named = set(dst[S.CALCULATIONS.path]["parameters"][()].tolist())
        keys = g["key"][()].tolist()
        n = len(keys)
        while n and keys[n - 1] not in named:
            n -= 1
        _truncate(g, S.PARAMETERS, n)


def submitted(status: np.ndarray) -> int:
    """Rows up to the last with a status: trailing rows without one were appended by a writer stopped before it
    wrote their status (no task was sent for them).

    >>> submitted(np.array([b"ok", b"running", b"", b""]))
    2
    """
    n = len(status)
    while n and status[n - 1] == b"":
        n -= 1
    return n
