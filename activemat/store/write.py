"""The single writer of a campaign store, laid out as :mod:`activemat.store.schema` declares.

The driver is the only writer, and :class:`CampaignStore` the one way to
open a store for writing: :meth:`CampaignStore.create` makes a new store,
:meth:`CampaignStore.open` reopens one to resume (as
:func:`activemat.store.read.read_store` is the one way to open it for
reading). It holds an exclusive lock file beside the store's real path and a
lock on the store file itself, so a second driver is refused however it
names the store (a symlink, a hard link; see :mod:`activemat.store.files`).
HDF5's own file locks are off: they would let a reader block a resuming
writer. It writes in SWMR mode and flushes after every change, so readers
(every one reads through :func:`~activemat.store.read.read_store`) can open
the file at any time, and a driver killed mid-campaign leaves a
readable file. HDF5 then refuses to reopen that file for writing (its
consistency flags are still set), so resuming copies it into a fresh file and
swaps it in atomically; the same copy migrates a file of an older schema
(:mod:`activemat.store.migrate`).

A full disk never costs a stored row: every write first checks the room it
may need, and a small reserve of disk space held while the store is open is
given back if HDF5 still runs out mid-flush, so the flush completes and the
file closes cleanly. Either way the writer stops with one line (a
:class:`~activemat.errors.StoreError`) saying to free space and resume.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError
from activemat.store import room  # room.free_space: looked up where it lives, one place to stand in for it
from activemat.store import schema as S
from activemat.store.files import WriterLock, abandon, space_error
from activemat.store.room import MARGIN, Reserve, append_room, no_room, reserve_size, row_bytes, take_reserve
from activemat.store.layout import add_dimensions, create_column, sizes_of
from activemat.store.migrate import build_file, rewrite_locked
from activemat.store.read import check_compatible, close_quietly, short_reason
from activemat.store.rows import append_rows, parameter_parts, relaxed_row, result_values
from activemat.version import __version__

_LIBVER = {"v110": h5py.h5f.LIBVER_V110, "latest": h5py.h5f.LIBVER_LATEST}


@dataclass(frozen=True)
class Attempt:
    """A submission as :meth:`CampaignStore.add_attempts` records it (a row with status running)."""

    candidate: int
    attempt: int
    preset: str
    iteration: int
    reason: str
    score: float = float("nan")


class StoreWriter:
    """A store file open for writing, holding its locks and disk reserve: the mechanics under
    :class:`CampaignStore`. Use as a context manager.

    Every column's dataset stays open, and every write first checks its room on disk and then flushes. A
    write without the room raises :class:`~activemat.errors.StoreError` with nothing written; one that HDF5
    cannot complete closes the store (its flush completed with the reserve's room given back), keeping every
    row written before, and every later write is refused.
    """

    def __init__(self, path: Path, f: h5py.File, lock: WriterLock, reserve: Reserve):
        self.path, self._f, self._lock, self._reserve = path, f, lock, reserve
        self._dir = lock.real.parent
        # Every column's dataset stays open while the store is: a dataset closed with unflushed chunks would
        # write them outside the flush, where a full disk cannot be caught.
        self._cols = {g.path: {c.name: f[g.path][c.name] for c in g.columns}
                      for g in (S.CANDIDATES, S.CALCULATIONS, S.PARAMETERS, S.SNAPSHOTS)}
        # The row coordinate of each appendable group (its dimension scale) grows with its columns.
        self._rows = {g.path: f[g.path][g.row] for g in (S.CALCULATIONS, S.PARAMETERS, S.SNAPSHOTS)}
        self._sizes = sizes_of(f)

    def close(self) -> None:
        """Close the file and give back the locks and the reserve (safe to call twice)."""
        f, self._f = self._f, None
        self._cols, self._rows = {}, {}
        if f is not None:
            try:
                f.close()
            except (OSError, RuntimeError, ValueError):
                self._reserve.release()  # every change was flushed already: only HDF5's bookkeeping is left
                abandon(f)
                close_quietly(f)
        self._reserve.release()
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self) -> h5py.File:
        if self._f is None:
            raise StoreError(f"{self.path}: the store was closed after an error; resume the campaign")
        return self._f

    def _n(self, group: S.Group) -> int:
        """Whole rows of a group (its shortest column); of calculations, up to the last with a status (rows
        appended by a write stopped before their status are written over)."""
        n = min(ds.shape[0] for ds in self._cols[group.path].values())
        if group is S.CALCULATIONS:
            status = self._cols[group.path]["status"]
            while n and status[n - 1] == b"":
                n -= 1
        return n

    def _write(self, size: int, action):
        """Run ``action`` (HDF5 writes) and flush, if the disk has ``size`` bytes (plus a margin) for it.

        Without the room: a StoreError, nothing written. If HDF5 runs out of space anyway (another process
        filled the disk meanwhile): the reserve is given back so the flush completes, the store is closed and
        the StoreError says so.
        """
        f = self._live()
        need, free = size + MARGIN, room.free_space(self._dir)
        if free < need:
            raise no_room(self.path, self._dir, "to write the store", need, free,
                          "resume the campaign (every row written so far is kept)")
        try:
            result = action()
            f.flush()
        except (OSError, RuntimeError) as exc:
            raise self._broken(exc) from None
        return result

    def _broken(self, exc: Exception) -> StoreError:
        """Close the store after a failed write, completing its flush with the reserve's room given back."""
        self._reserve.release()
        f, self._f = self._f, None
        self._cols, self._rows = {}, {}
        try:
            f.flush()
        except (OSError, RuntimeError, ValueError):
            abandon(f)  # the disk refuses it still (an I/O error): HDF5 finishes closing it in memory
        close_quietly(f)
        self._lock.release()
        return _write_failed(self.path, self._dir, exc)

    def _append(self, group: S.Group, rows: list[dict]) -> int:
        """Append rows (column name -> value; missing columns get their fill) and flush; return the first new row.

        A row half-appended by a killed writer is overwritten: appending starts after the shortest column.
        """
        unknown = set().union(*rows) - set(group.names)
        if unknown:
            raise ValueError(f"{group.path} has no column {', '.join(sorted(unknown))}")
        start = self._n(group)
        cols, coordinate = self._cols[group.path], self._rows[group.path]
        self._write(append_room(group, start, len(rows), self._sizes),
                    lambda: append_rows(group, cols, coordinate, start, rows))
        return start

    def _set(self, group: S.Group, name: str, rows, value) -> None:
        """Set column ``name`` of ``group`` to ``value`` at ``rows`` (one point selection, in increasing order)
        and flush."""
        self._live()
        ds = self._cols[group.path][name]
        rows = sorted({int(r) for r in rows})

        def write():
            if rows:
                ds[rows] = np.full(len(rows), value, dtype=ds.dtype)

        self._write(0, write)


class CampaignStore(StoreWriter):
    """The single writer of a campaign store. Use as a context manager.

    Open it with :meth:`create` (a new store) or :meth:`open` (resume; migrates
    an older schema and recovers a file whose writer was killed).

    Every write raises :class:`~activemat.errors.StoreError` (one line: free
    space and resume) when the disk is full, keeping every row written before;
    after an error mid-flush the store is closed and refuses further writes.
    """

    def __init__(self, path: Path, f: h5py.File, lock: WriterLock, reserve: Reserve):
        super().__init__(path, f, lock, reserve)
        n = self._n(S.PARAMETERS)
        try:
            self._keys = {k.decode() for k in self._cols[S.PARAMETERS.path]["key"][:n]}  # parameter sets stored
        except OSError as exc:  # a chunk failing its checksum
            self.close()
            raise StoreError(f"{path} is damaged (parameters/key: {short_reason(exc)}); restore it from a backup"
                             " or start a new store path") from None

    # -- opening -------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, campaign_text: str, identity: str, pool, presets: dict[str, dict]) -> CampaignStore:
        """Create a store for a campaign and open it for writing.

        A store path in a directory that does not exist yet creates the directories.

        Parameters
        ----------
        path
            The store's file; it is written beside it and renamed into place when complete (through a
            symlink: beside and in place of the file the link names).
        campaign_text
            Text of the campaign file (kept in the store).
        identity
            The campaign's identity; a resume must give the same.
        pool
            The :class:`~activemat.space.pool.CandidatePool`, written as the candidates group.
        presets
            Preset name -> preset as plain data (JSON-serialisable).

        Raises
        ------
        activemat.errors.StoreLocked
            Another running campaign holds the store (under any name).
        activemat.errors.StoreError
            A directory, a read-only or forbidden location, or not enough free space (nothing is left behind).
        """
        path = Path(path)
        lock = WriterLock.acquire(path)
        try:
            reserve = _create_file(path, lock, campaign_text=campaign_text, identity=identity, pool=pool,
                                   presets=presets)
        except BaseException:
            lock.release()
            raise
        return cls._open_writer(path, lock, reserve)

    @classmethod
    def open(cls, path: str | Path, identity: str) -> CampaignStore:
        """Open an existing store for writing (a resume): check it, lock it, recover or migrate it if needed.

        Raises
        ------
        activemat.errors.StoreError
            Missing, foreign, newer or damaged store, or one of another campaign; a read-only or forbidden
            location; not enough free space to recover or migrate it (the store is left unchanged).
        activemat.errors.StoreLocked
            Another running campaign holds the store (under this or any other name).
        """
        path = Path(path)
        check_compatible(path, identity)
        return cls._open_writer(path, WriterLock.acquire(path), None)

    @classmethod
    def _open_writer(cls, path: Path, lock: WriterLock, reserve: Reserve | None) -> CampaignStore:
        """Open the locked store for writing, recovering or migrating it first if needed (releasing the locks
        and the reserve if that fails)."""
        real, f = lock.real, None
        try:
            rewrite = None
            try:
                f = _open_rw(real)
            except OSError as exc:
                if "consistency flags" not in str(exc):
                    reason = short_reason(exc)
                    fix = "check the disk (dmesg) and resume" if "Input/output" in reason else "check permissions"
                    raise StoreError(f"{path} cannot be opened for writing ({reason}); {fix}") from None
                rewrite = "to recover it after a killed campaign driver"  # we hold the locks: nobody else writes
            else:
                if int(f.attrs[S.ATTR_SCHEMA]) < S.SCHEMA_VERSION:
                    f.close()
                    f = None
                    rewrite = f"to migrate it to store schema {S.SCHEMA_VERSION}"
            if rewrite:
                reserve = rewrite_locked(path, lock, reserve, rewrite)
                f = _open_rw(real)
            if reserve is None:
                reserve = take_reserve(path, real.parent, reserve_size(sizes_of(f)))
            return cls(path, f, lock, reserve)
        except BaseException:
            close_quietly(f)
            if reserve is not None:
                reserve.release()
            lock.release()
            raise

    # -- what a campaign writes ---------------------------------------------------
    def add_attempt(self, candidate: int, attempt: int, preset: str, iteration: int, reason: str,
                    score: float = float("nan")) -> int:
        """Record a submission (status running) and flush; return its row."""
        return self.add_attempts([Attempt(candidate, attempt, preset, iteration, reason, score)])[0]

    def add_attempts(self, attempts: list[Attempt]) -> list[int]:
        """Record many submissions (status running) in one write and one flush; return their rows, in order.

        The rows are the same as :meth:`add_attempt` called once for each.
        """
        if not attempts:
            return []
        now = time.time()
        # Two flushes: the rows, then their status. A kill can tear a chunk mid-flush (its first pages new, the
        # rest old); rows whose status is not on disk yet are dropped by a recovery (store/salvage.py).
        start = self._append(S.CALCULATIONS, [{
            "candidate": a.candidate, "attempt": a.attempt, "preset": a.preset,
            "iteration": a.iteration, "reason": a.reason, "score": a.score, "submitted": now} for a in attempts])
        rows = list(range(start, start + len(attempts)))
        self._set(S.CALCULATIONS, "status", rows, S.RUNNING.encode())
        return rows

    def finish_attempt(self, row: int, record: CalculationRecord) -> None:
        """Fill a submitted row with its result, its GPAW parameters included, and flush.

        A parameter set not stored yet is appended to the parameters group (and
        flushed) first, so a reader never meets a key it cannot look up; the
        status is written last, so a row reads as finished only with all its
        results in.
        """
        self.finish_attempts([(row, record)])

    def finish_attempts(self, results: list[tuple[int, CalculationRecord]]) -> None:
        """Fill many submitted rows with their results in one write and one flush (what
        :meth:`finish_attempt` does for one row, for results that landed together).

        New parameter sets are appended (and flushed) first; every result column of every row is written and
        flushed before any row's status, so a killed writer leaves each row either finished with all its results
        or still running (rerun on resume), even when the kill tore a chunk in the middle of a flush
        (:mod:`activemat.store.salvage`).
        """
        if not results:
            return
        self._live()
        results = sorted(results, key=lambda item: item[0])  # HDF5 point selections go in increasing order
        rows = [row for row, _ in results]
        if len(set(rows)) < len(rows):
            raise ValueError(f"a row is finished twice in one batch: {rows}")
        keys = [self._parameters_key(record.settings) for _, record in results]
        calc = self._cols[S.CALCULATIONS.path]

        values = result_values(calc, keys, [record for _, record in results])
        status = values.pop("status")

        def fill():
            for name, column in values.items():
                calc[name][rows] = column

        self._write(0, fill)

        def finish():
            calc["status"][rows] = status

        self._write(0, finish)  # the status last, in a flush of its own

    def _parameters_key(self, settings: dict) -> str:
        """Key of a parameter set, stored once: appended (as parts of the schema's width) on first use."""
        if not settings:
            return ""  # not recorded (e.g. the calculation failed before its parameters were set)
        text = S.parameters_json(settings)
        key = S.parameters_key(text)
        if key not in self._keys:
            self._append(S.PARAMETERS, [{"key": key, "json": part} for part in parameter_parts(text)])
            self._keys.add(key)
        return key

    def relaxed_structure(self, candidate: int, preset: str) -> dict | None:
        """The structure, gap and spin-orbit gap of ``candidate``'s successful ``preset`` calculation, if relaxed.

        Lets a level without forces (TB09) compute on the structure another
        level already relaxed, instead of relaxing it again. None if there is
        no such row.
        """
        return relaxed_row(self._cols[S.CALCULATIONS.path], self._n(S.CALCULATIONS), candidate, preset)

    def interrupt_running(self) -> list[tuple[int, int]]:
        """Mark rows left 'running' by a previous driver as interrupted; return (candidate, attempt) of each."""
        self._live()
        calc = self._cols[S.CALCULATIONS.path]
        rows = np.flatnonzero(calc["status"][()] == S.RUNNING.encode())
        self._set(S.CALCULATIONS, "status", rows, S.INTERRUPTED.encode())
        candidates, attempts = calc["candidate"][()], calc["attempt"][()]
        return [(int(candidates[r]), int(attempts[r])) for r in rows]

    def mark_interrupted(self, rows: list[int]) -> None:
        """Mark submitted rows as interrupted (cancelled on a stop; resubmitted on resume)."""
        self._set(S.CALCULATIONS, "status", rows, S.INTERRUPTED.encode())

    def add_snapshot(self, values: dict, mean: np.ndarray, std: np.ndarray) -> None:
        """Append a model snapshot (``values``: snapshot column -> value) with its predicted mean and standard
        deviation (eV) over the pool, and flush."""
        self._append(S.SNAPSHOTS, [{**values, "pool_mean": mean, "pool_std": std}])

    def has_test_set(self) -> bool:
        self._live()
        return bool(self._cols[S.CANDIDATES.path]["test"][()].any())

    def mark_test(self, indices: np.ndarray) -> None:
        """Hold candidates out for testing (never trained on or selected), and flush."""
        self._set(S.CANDIDATES, "test", indices, 1)


def _open_rw(path: Path) -> h5py.File:
    """Open for writing directly in SWMR mode.

    Opening read-write and switching SWMR on afterwards would leave a moment
    in which a killed writer strands the file as neither closed nor SWMR,
    which no reader (and no recovery copy) can open.
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(*(_LIBVER[bound] for bound in S.FORMAT))
    fapl.set_file_locking(False, True)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl=fapl)
    return h5py.File(fid)


def _create_file(path: Path, lock: WriterLock, *, campaign_text: str, identity: str, pool,
                 presets: dict[str, dict]) -> Reserve:
    """Build a new store of ``pool`` beside the locked ``path`` and swap it in (:func:`build_file`), once the
    disk has room for it and the writer's reserve; return that reserve (given back on failure, and nothing
    left behind)."""
    real, reserve = lock.real, None
    sizes = {S.SITE: pool.decorations.shape[1], S.FEATURE: pool.features.shape[1], S.CANDIDATE: len(pool)}
    try:
        size = reserve_size(sizes)
        estimate = sum(len(pool) * row_bytes(c, sizes) for c in S.CANDIDATES.columns) + MARGIN
        # the coordinates along the pool (candidates/candidate, snapshots/candidate)
        estimate += sum(len(pool) * np.dtype(S.dimension(S.CANDIDATE).dtype).itemsize
                        for g in S.GROUPS if S.CANDIDATE in g.dimensions)
        free = room.free_space(real.parent)
        if free < estimate + size:
            raise no_room(path, real.parent, "to create the store", estimate + size, free,
                          "run again (or give a store path on another file system)")
        reserve = take_reserve(path, real.parent, size, "run again")

        def fill(f: h5py.File) -> None:
            _fill_new(f, sizes, campaign_text=campaign_text, identity=identity, pool=pool, presets=presets)

        build_file(path, lock, reserve, real.with_name(real.name + ".new"), fill, "creating the store",
                   f"nothing was left behind: free space on {real.parent} (or give a store path on another file"
                   " system) and run again")
        return reserve
    except BaseException:
        if reserve is not None:
            reserve.release()
        raise


def _fill_new(f: h5py.File, sizes: dict[str, int], *, campaign_text: str, identity: str, pool,
              presets: dict[str, dict]) -> None:
    """Write a new store into the empty file ``f``: root attributes, every group and column (the candidates
    from ``pool``), the presets and the dimension scales."""
    f.attrs.update({S.ATTR_SCHEMA: S.SCHEMA_VERSION, S.ATTR_CREATOR: S.CREATOR,
                    S.ATTR_CREATOR_VERSION: __version__,
                    S.ATTR_CREATED: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    S.ATTR_CAMPAIGN_TEXT: campaign_text, S.ATTR_IDENTITY: identity,
                    S.ATTR_FEATURE_NAMES: list(pool.feature_names),
                    S.ATTR_ELEMENTS: list(pool.elements), S.ATTR_SUPERCELL: list(pool.supercell),
                    S.ATTR_CELL: pool.cell, S.ATTR_PARENT: pool.parent.to_json(),
                    S.ATTR_UNITS: json.dumps(S.UNITS)})
    for group in S.GROUPS:
        g = f.create_group(group.path)
        for column in group.columns:
            data = getattr(pool, column.source) if group is S.CANDIDATES and column.source else None
            create_column(g, group, column, sizes, data=data, n=len(pool) if group is S.CANDIDATES else 0)
    f[S.PRESETS.path].attrs.update({k: json.dumps(v) for k, v in presets.items()})
    add_dimensions(f)


def _write_failed(path: Path, directory: Path, exc: Exception) -> StoreError:
    """The one-line StoreError of a write HDF5 could not complete (a full disk, or another failure)."""
    what = space_error(exc)
    if what:
        return StoreError(f"{path}: {what} while writing the store on {directory}; every row written"
                          " before is kept: free space there and resume the campaign")
    return StoreError(f"{path}: writing the store failed ({short_reason(exc)}); every row written before is"
                      f" kept: check {directory} and resume the campaign")
