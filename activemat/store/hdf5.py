"""The campaign store: one HDF5 file per campaign, laid out as :mod:`activemat.store.schema` declares.

The driver is the only writer and holds an exclusive lock file beside the
store (HDF5's own file locks are off: they would let a reader block a
resuming writer, and the lock file already keeps writers apart). It writes
in SWMR mode and flushes after every change, so readers (status, query,
plots) can open the file at any time, and a driver killed mid-campaign
leaves a readable file. HDF5 then refuses to reopen that file for writing
(its consistency flags are still set), so resuming copies it into a fresh
file and swaps it in atomically. The same copy migrates a file of an older
schema: every group and column the schema declares and the file lacks is
added, filled with the column's fill value.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from activemat import __version__
from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError, StoreLocked
from activemat.store import schema as S

_LIBVER = {"v110": h5py.h5f.LIBVER_V110, "latest": h5py.h5f.LIBVER_LATEST}


def _encode(value, column: S.Column) -> bytes:
    # Cut to the column's width on a character boundary, so the bytes always decode.
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.encode()[: column.width].decode("utf-8", "ignore").encode()


def _decode(array: np.ndarray) -> np.ndarray:
    return np.array([v.decode() for v in array], dtype=object)


@dataclass
class StoreData:
    """A read-only, in-memory copy of a store.

    Attributes
    ----------
    path
        The store's file.
    attrs
        Root attributes (text decoded to ``str``).
    candidates, calculations, snapshots
        Columns of each group as numpy arrays (text as ``str`` object arrays), named as in
        :mod:`activemat.store.schema`; columns a newer schema added to an older file are filled with
        their fill value.
    presets
        Preset name -> the preset as stored (a plain dict).
    parameters
        Parameter-set key (``calculations["parameters"]``) -> the GPAW keyword arguments (a plain
        dict); empty for a store written before schema 3.
    """

    path: Path
    attrs: dict
    candidates: dict[str, np.ndarray]
    calculations: dict[str, np.ndarray]
    snapshots: dict[str, np.ndarray]
    presets: dict[str, dict] = field(default_factory=dict)
    parameters: dict[str, dict] = field(default_factory=dict)

    @property
    def n_calculations(self) -> int:
        return len(self.calculations["candidate"])

    def status_mask(self, status: str) -> np.ndarray:
        return self.calculations["status"] == status

    def completed(self, preset: str | None = None) -> dict[int, float]:
        """Candidate -> gap of its successful calculation (with that preset only, if given)."""
        ok = self.status_mask(S.OK)
        if preset is not None:
            ok &= self.calculations["preset"] == preset
        return dict(zip(self.calculations["candidate"][ok].tolist(), self.calculations["gap"][ok].tolist()))


def _open_read(path: Path) -> h5py.File:
    if not path.exists():
        raise StoreError(f"store not found: {path}; check the path (a campaign creates it on its first run)")
    try:
        # A plain open checks the file's length (SWMR mode skips that check and would hang on a truncated file).
        # locking=False: a reader must never block the writer from (re)opening the file.
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        first = exc
    if "already open for write" in str(first) or "unable to lock file" in str(first):
        try:
            # A live writer, or one that was killed: SWMR reads see every flushed row.
            return h5py.File(path, "r", swmr=True, locking=False)
        except OSError as exc:
            first = exc
    raise StoreError(f"{path} is not a readable HDF5 store ({_short(first)}); it may be truncated or corrupt:"
                     " restore it from a backup or start a new store path")


def _short(exc: Exception) -> str:
    return str(exc).split("(")[-1].rstrip(")") if "(" in str(exc) else str(exc)


def _check_version(path: Path, f: h5py.File) -> None:
    if f.attrs.get(S.ATTR_CREATOR) != S.CREATOR or S.ATTR_SCHEMA not in f.attrs:
        raise StoreError(f"{path} is not an activemat store (no '{S.ATTR_SCHEMA}' attribute); give a store written by activemat")
    version = int(f.attrs[S.ATTR_SCHEMA])
    if version > S.SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema {version}, newer than this activemat's {S.SCHEMA_VERSION}"
                         f" (activemat {__version__}); upgrade activemat to read it")


def _rows(g: h5py.Group, group: S.Group) -> int:
    """Whole rows of a group: its shortest column (a killed or live writer appends column by column)."""
    return min((g[c.name].shape[0] for c in group.columns if c.name in g), default=0)


def _sizes(f: h5py.File) -> dict[str, int]:
    """The lengths ``per`` rules name (sites, features, candidates), read back from a store's candidates."""
    g = f[S.CANDIDATES.path]
    sizes = {S.CANDIDATE: _rows(g, S.CANDIDATES)}
    for column in S.CANDIDATES.columns:
        if isinstance(column.per, str) and column.name in g:
            sizes[column.per] = g[column.name].shape[1]
    return sizes


def _filled(column: S.Column, n: int, sizes: dict[str, int]) -> np.ndarray:
    return np.full((n, *column.shape(sizes)), column.fill, dtype=column.dtype)


def _read_group(f: h5py.File, group: S.Group, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """A group's whole rows as arrays (text decoded), with columns the file's schema lacked filled in."""
    out = {}
    n = 0
    if group.path in f:  # a group a newer schema added is missing from an older file
        g = f[group.path]
        n = _rows(g, group)
        for name, ds in g.items():
            if isinstance(ds, h5py.Dataset):
                data = ds[:n]
                out[name] = _decode(data) if data.dtype.kind == "S" else data
    for column in group.columns:
        if column.name not in out:
            data = _filled(column, n, sizes)
            out[column.name] = _decode(data) if data.dtype.kind == "S" else data
    return out


def _parameter_sets(rows: dict[str, np.ndarray]) -> dict[str, dict]:
    """Key -> parameter set, from the parameters group's rows (the JSON parts of a key joined in order).

    A set whose parts a live writer has not all written yet does not parse: it
    is left out (no calculation row refers to it before it is complete).
    """
    parts: dict[str, list[str]] = {}
    for key, part in zip(rows["key"].tolist(), rows["json"].tolist()):
        parts.setdefault(key, []).append(part)
    sets = {}
    for key, texts in parts.items():
        try:
            sets[key] = json.loads("".join(texts))
        except ValueError:
            continue
    return sets


def read_store(path: str | Path) -> StoreData:
    """Open a store read-only (safe while a campaign writes it) and load it into memory.

    A live writer appends column by column: every group is cut to its
    shortest column, so a reader sees whole rows only.

    Raises
    ------
    activemat.errors.StoreError
        Missing, foreign, newer or damaged store.
    """
    path = Path(path)
    with _open_read(path) as f:
        _check_version(path, f)
        try:
            sizes = _sizes(f)
            return StoreData(
                path=path,
                attrs={k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
                candidates=_read_group(f, S.CANDIDATES, sizes),
                calculations=_read_group(f, S.CALCULATIONS, sizes),
                snapshots=_read_group(f, S.SNAPSHOTS, sizes),
                presets={k: json.loads(v) for k, v in f[S.PRESETS.path].attrs.items()},
                parameters=_parameter_sets(_read_group(f, S.PARAMETERS, sizes)),
            )
        except (KeyError, OSError, ValueError) as exc:
            raise StoreError(f"{path} is damaged ({exc}); restore it from a backup or start a new store path") from None


def _create_column(g: h5py.Group, group: S.Group, column: S.Column, sizes: dict[str, int],
                   data: np.ndarray | None = None, n: int = 0) -> None:
    """Create a column's dataset as the schema declares it: ``data``, or ``n`` rows of its fill."""
    data = _filled(column, n, sizes) if data is None else np.asarray(data).astype(column.dtype)
    if group.appendable:
        shape = column.shape(sizes)
        options = {"compression": "gzip", "compression_opts": 1} if column.compress else {}
        ds = g.create_dataset(column.name, data=data, maxshape=(None, *shape), fillvalue=column.fill,
                              chunks=(1 if column.compress else group.chunk_rows, *shape), **options)
    else:
        ds = g.create_dataset(column.name, data=data)
    if column.unit:
        ds.attrs["unit"] = column.unit


def _add_missing(f: h5py.File) -> None:
    """Add every group and column the schema declares and the file lacks, with as many rows of fill as the
    group has."""
    sizes = _sizes(f)
    for group in S.GROUPS:
        g = f.require_group(group.path)
        n = _rows(g, group)
        for column in group.columns:
            if column.name not in g:
                _create_column(g, group, column, sizes, n=n)


class CampaignStore:
    """The single writer of a campaign store. Use as a context manager.

    Open it with :meth:`create` (a new store) or :meth:`open` (resume; migrates
    an older schema and recovers a file whose writer was killed).
    """

    def __init__(self, path: Path, f: h5py.File, lock_fd: int):
        self.path, self._f, self._lock_fd = path, f, lock_fd
        self._calc = f[S.CALCULATIONS.path]
        self._snap = f[S.SNAPSHOTS.path]
        self._params = f[S.PARAMETERS.path]
        n = _rows(self._params, S.PARAMETERS)
        self._keys = {k.decode() for k in self._params["key"][:n]}  # parameter sets already stored

    # -- opening -------------------------------------------------------------
    @staticmethod
    def _lock(path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # The kernel drops this lock when the process dies, so a crashed driver never blocks a resume.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(f"{path} is in use by another running campaign; wait for it or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    @classmethod
    def check_compatible(cls, path: Path, identity: str) -> None:
        """Refuse, without writing anything, a store that this campaign must not continue."""
        with _open_read(path) as f:
            _check_version(path, f)
            found = f.attrs.get(S.ATTR_IDENTITY)
            found = found.decode() if isinstance(found, bytes) else found
            if found != identity:
                raise StoreError(f"{path} belongs to a different campaign definition (space or calculator changed);"
                                 " use a new store path or restore the original [space]/[calculator]")
            version = int(f.attrs[S.ATTR_SCHEMA])
            for group in S.GROUPS:
                if group.since <= version and group.path not in f:
                    raise StoreError(f"{path} is damaged (group '{group.path}' missing); restore it from a backup"
                                     " or start a new store path")

    @classmethod
    def create(cls, path: str | Path, *, campaign_text: str, identity: str, pool, presets: dict[str, dict]) -> CampaignStore:
        """Create a store for a campaign and open it for writing.

        Parameters
        ----------
        path
            The store's file; it is written beside it and renamed into place when complete.
        campaign_text
            Text of the campaign file (kept in the store).
        identity
            The campaign's identity; a resume must give the same.
        pool
            The :class:`~activemat.space.pool.CandidatePool`, written as the candidates group.
        presets
            Preset name -> preset as plain data (JSON-serialisable).
        """
        path = Path(path)
        fd = cls._lock(path)
        tmp = path.with_name(path.name + ".new")
        sizes = {S.SITE: pool.decorations.shape[1], S.FEATURE: pool.features.shape[1], S.CANDIDATE: len(pool)}
        with h5py.File(tmp, "w", libver=S.FORMAT, locking=False) as f:
            f.attrs.update({S.ATTR_SCHEMA: S.SCHEMA_VERSION, S.ATTR_CREATOR: S.CREATOR,
                            S.ATTR_CREATOR_VERSION: __version__,
                            S.ATTR_CREATED: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            S.ATTR_CAMPAIGN_TEXT: campaign_text, S.ATTR_IDENTITY: identity,
                            S.ATTR_FEATURE_NAMES: list(pool.feature_names),
                            S.ATTR_ELEMENTS: list(pool.elements), S.ATTR_SUPERCELL: list(pool.supercell),
                            S.ATTR_UNITS: json.dumps(S.UNITS)})
            for group in S.GROUPS:
                g = f.create_group(group.path)
                for column in group.columns:
                    data = getattr(pool, column.source) if group is S.CANDIDATES and column.source else None
                    _create_column(g, group, column, sizes, data=data, n=len(pool) if group is S.CANDIDATES else 0)
            f[S.PRESETS.path].attrs.update({k: json.dumps(v) for k, v in presets.items()})
        os.replace(tmp, path)  # a half-created store never appears under the real name
        return cls._open_writer(path, fd)

    @classmethod
    def open(cls, path: str | Path, identity: str) -> CampaignStore:
        """Open an existing store for writing (a resume): check it, lock it, recover or migrate it if needed.

        Raises
        ------
        activemat.errors.StoreError
            Missing, foreign, newer or damaged store, or one of another campaign.
        activemat.errors.StoreLocked
            Another running campaign holds the store.
        """
        path = Path(path)
        cls.check_compatible(path, identity)
        return cls._open_writer(path, cls._lock(path))

    @classmethod
    def _open_writer(cls, path: Path, fd: int) -> CampaignStore:
        """Open the locked store for writing (releasing the lock if that fails)."""
        try:
            try:
                f = _open_rw(path)
            except OSError as exc:
                if "consistency flags" not in str(exc):
                    raise StoreError(f"{path} cannot be opened for writing ({_short(exc)}); check permissions") from None
                _rewrite(path)  # the previous driver was killed; we hold the lock, so nobody else writes
                f = _open_rw(path)
            if int(f.attrs[S.ATTR_SCHEMA]) < S.SCHEMA_VERSION:
                f.close()
                _rewrite(path, migrate=True)
                f = _open_rw(path)
            return cls(path, f, fd)
        except StoreError:
            os.close(fd)
            raise

    def close(self) -> None:
        if self._f:
            self._f.close()
            self._f = None
            os.close(self._lock_fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing ---------------------------------------------------------------
    def _append(self, g: h5py.Group, group: S.Group, rows: list[dict]) -> int:
        """Append rows (column name -> value; missing columns get their fill); return the first new row.

        A row half-appended by a killed writer is overwritten: appending starts after the shortest column.
        """
        unknown = set().union(*rows) - set(group.names)
        if unknown:
            raise ValueError(f"{group.path} has no column {', '.join(sorted(unknown))}")
        start = _rows(g, group)
        for column in group.columns:
            ds = g[column.name]
            ds.resize((start + len(rows), *ds.shape[1:]))
            for i, row in enumerate(rows):
                ds[start + i] = self._value(column, row.get(column.name, column.fill))
        return start

    @staticmethod
    def _value(column: S.Column, value):
        return _encode(value, column) if column.width else value

    def add_attempt(self, candidate: int, attempt: int, preset: str, iteration: int, reason: str,
                    score: float = float("nan")) -> int:
        """Record a submission (status running) and flush; return its row."""
        row = self._append(self._calc, S.CALCULATIONS, [{
            "candidate": candidate, "attempt": attempt, "status": S.RUNNING, "preset": preset,
            "iteration": iteration, "reason": reason, "score": score, "submitted": time.time()}])
        self._f.flush()
        return row

    def finish_attempt(self, row: int, record: CalculationRecord) -> None:
        """Fill a submitted row with its result, its GPAW parameters included, and flush.

        A parameter set not stored yet is appended to the parameters group (and
        flushed) first, so a reader never meets a key it cannot look up; the
        status is written last, so a row reads as finished only with all its
        results in.
        """
        key = self._parameters_key(record.settings)
        for column in S.CALCULATIONS.columns:
            if column.source == S.RESULT and column.name != "status":
                value = key if column.name == "parameters" else getattr(record, column.name)
                self._calc[column.name][row] = self._value(column, value)
        self._calc["status"][row] = self._value(S.CALCULATIONS["status"], record.status)
        self._f.flush()

    def _parameters_key(self, settings: dict) -> str:
        """Key of a parameter set, stored once: appended (as parts of the schema's width) on first use."""
        if not settings:
            return ""  # not recorded (e.g. the calculation failed before its parameters were set)
        text = S.parameters_json(settings)
        key = S.parameters_key(text)
        if key not in self._keys:
            width = S.PARAMETERS["json"].width  # canonical JSON is ASCII: one byte a character
            parts = [text[i:i + width] for i in range(0, len(text), width)]
            self._append(self._params, S.PARAMETERS, [{"key": key, "json": part} for part in parts])
            self._f.flush()
            self._keys.add(key)
        return key

    def interrupt_running(self) -> list[tuple[int, int]]:
        """Mark rows left 'running' by a previous driver as interrupted; return (candidate, attempt) of each."""
        status = self._calc["status"][()]
        rows = np.flatnonzero(status == S.RUNNING.encode())
        for row in rows:
            self._calc["status"][row] = S.INTERRUPTED.encode()
        self._f.flush()
        return [(int(self._calc["candidate"][r]), int(self._calc["attempt"][r])) for r in rows]

    def mark_interrupted(self, rows: list[int]) -> None:
        """Mark submitted rows as interrupted (cancelled on a stop; resubmitted on resume)."""
        for row in rows:
            self._calc["status"][row] = S.INTERRUPTED.encode()
        self._f.flush()

    def add_snapshot(self, values: dict, mean: np.ndarray, std: np.ndarray) -> None:
        """Append a model snapshot (``values``: snapshot column -> value) with its predicted mean and standard
        deviation (eV) over the pool, and flush."""
        self._append(self._snap, S.SNAPSHOTS, [{**values, "pool_mean": mean, "pool_std": std}])
        self._f.flush()

    def has_test_set(self) -> bool:
        return bool(self._f[S.CANDIDATES.path]["test"][()].any())

    def mark_test(self, indices: np.ndarray) -> None:
        """Hold candidates out for testing (never trained on or selected), and flush."""
        self._f[S.CANDIDATES.path]["test"][np.sort(indices)] = 1
        self._f.flush()


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


def _rewrite(path: Path, migrate: bool = False) -> None:
    """Copy a store into a fresh file (migrated to the current schema if asked) and swap it in atomically.

    Used after a killed writer left HDF5's consistency flags set, and to
    migrate older schema versions; the original stays untouched until the
    new file is complete on disk.
    """
    tmp = path.with_name(path.name + ".rewrite")
    try:
        with (h5py.File(path, "r", swmr=True, locking=False) as src,
              h5py.File(tmp, "w", libver=S.FORMAT, locking=False) as dst):
            dst.attrs.update(dict(src.attrs))
            for name in src:
                src.copy(src[name], dst, name=name)
            if migrate:
                _add_missing(dst)
                dst.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        why = "migrate it to the current schema" if migrate else "recover it after a killed writer"
        raise StoreError(f"{path} could not be copied to {why} ({_short(exc)}); the file is unchanged:"
                         " restore it from a backup or start a new store path") from None
    finally:
        tmp.unlink(missing_ok=True)
