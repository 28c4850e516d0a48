"""The campaign store: one HDF5 file per campaign (paths and dtypes in schema.py).

The driver is the only writer and holds an exclusive lock file beside the
store (HDF5's own file locks are off: they would let a reader block a resuming
writer, and the lock file already keeps writers apart). It writes in SWMR mode and flushes after every change, so readers
(status, query, plots) can open the file at any time, and a driver killed
mid-campaign leaves a readable file. HDF5 then refuses to reopen that file
for writing (its consistency flags are still set), so resuming copies it
into a fresh file and swaps it in atomically.
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
from activemat.store import schema as S
from activemat.errors import StoreError, StoreLocked
from activemat.compute.records import CalculationRecord


def _encode(value: str, name: str) -> bytes:
    # Cut to the column's width on a character boundary, so the bytes always decode.
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.encode()[: S.STRING_LIMITS[name]].decode("utf-8", "ignore").encode()


def _decode(array: np.ndarray) -> np.ndarray:
    return np.array([v.decode() for v in array], dtype=object)


@dataclass
class StoreData:
    """A read-only, in-memory copy of a store (columns as numpy arrays)."""

    path: Path
    attrs: dict
    candidates: dict[str, np.ndarray]
    calculations: dict[str, np.ndarray]
    snapshots: dict[str, np.ndarray]
    presets: dict[str, dict] = field(default_factory=dict)

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


def read_store(path: str | Path) -> StoreData:
    """Open a store read-only (safe while a campaign writes it) and load it into memory."""
    path = Path(path)
    with _open_read(path) as f:
        _check_version(path, f)
        try:
            def columns(group: str) -> dict[str, np.ndarray]:
                # A live writer appends column by column: cut every column to the shortest,
                # so a reader sees whole rows only.
                datasets = {name: ds for name, ds in f[group].items() if isinstance(ds, h5py.Dataset)}
                n = min((ds.shape[0] for ds in datasets.values()), default=0)
                out = {}
                for name, ds in datasets.items():
                    data = ds[:n]
                    out[name] = _decode(data) if data.dtype.kind == "S" else data
                return out

            calculations = columns(S.CALCULATIONS)
            n = len(calculations["candidate"])
            for name, col in S.CALCULATION_COLUMNS.items():  # columns added after the file's version
                calculations.setdefault(name, np.full((n, *col.shape), col.fill, dtype=col.dtype))
            return StoreData(
                path=path,
                attrs={k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
                candidates=columns(S.CANDIDATES),
                calculations=calculations,
                snapshots={k: v for k, v in columns(S.SNAPSHOTS).items()},
                presets={k: json.loads(v) for k, v in f[S.PRESETS].attrs.items()},
            )
        except (KeyError, OSError, ValueError) as exc:
            raise StoreError(f"{path} is damaged ({exc}); restore it from a backup or start a new store path") from None


class CampaignStore:
    """The single writer of a campaign store. Use as a context manager."""

    def __init__(self, path: Path, f: h5py.File, lock_fd: int):
        self.path, self._f, self._lock_fd = path, f, lock_fd
        self._calc = f[S.CALCULATIONS]
        self._snap = f[S.SNAPSHOTS]

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
            for group in (S.CANDIDATES, S.CALCULATIONS, S.SNAPSHOTS, S.PRESETS):
                if group not in f:
                    raise StoreError(f"{path} is damaged (group '{group}' missing); restore it from a backup or start a new store path")

    @classmethod
    def create(cls, path: str | Path, *, campaign_text: str, identity: str, pool, presets: dict[str, dict]) -> "CampaignStore":
        path = Path(path)
        fd = cls._lock(path)
        tmp = path.with_name(path.name + ".new")
        with h5py.File(tmp, "w", libver="latest", locking=False) as f:
            f.attrs.update({S.ATTR_SCHEMA: S.SCHEMA_VERSION, S.ATTR_CREATOR: S.CREATOR,
                            S.ATTR_CREATOR_VERSION: __version__,
                            S.ATTR_CREATED: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            S.ATTR_CAMPAIGN_TEXT: campaign_text, S.ATTR_IDENTITY: identity,
                            S.ATTR_FEATURE_NAMES: list(pool.feature_names),
                            S.ATTR_ELEMENTS: list(pool.elements), S.ATTR_SUPERCELL: list(pool.supercell),
                            S.ATTR_UNITS: json.dumps({"energy": "eV", "length": "Angstrom", "time": "s"})})
            cand = f.create_group(S.CANDIDATES)
            cand["decoration"] = pool.decorations.astype("u1")
            cand["n_b"] = pool.n_b.astype("i4")
            cand["x_b"] = pool.x_b.astype("f8")
            cand["multiplicity"] = pool.multiplicity.astype("i8")
            cand["features"] = pool.features.astype("f8")
            cand["test"] = np.zeros(len(pool), "u1")
            for group, columns in ((S.CALCULATIONS, S.CALCULATION_COLUMNS), (S.SNAPSHOTS, S.SNAPSHOT_COLUMNS)):
                g = f.create_group(group)
                for name, col in columns.items():
                    ds = g.create_dataset(name, shape=(0, *col.shape), maxshape=(None, *col.shape),
                                          dtype=col.dtype, chunks=(1024, *col.shape))
                    if col.unit:
                        ds.attrs["unit"] = col.unit
            for name in (S.SNAPSHOT_MEAN, S.SNAPSHOT_STD):
                f.create_dataset(name, shape=(0, len(pool)), maxshape=(None, len(pool)), dtype="f4",
                                 chunks=(1, len(pool)), compression="gzip", compression_opts=1).attrs["unit"] = "eV"
            f.create_group(S.PRESETS).attrs.update({k: json.dumps(v) for k, v in presets.items()})
        os.replace(tmp, path)  # a half-created store never appears under the real name
        return cls._open_writer(path, fd)

    @classmethod
    def open(cls, path: str | Path, identity: str) -> "CampaignStore":
        path = Path(path)
        cls.check_compatible(path, identity)
        fd = cls._lock(path)
        try:
            return cls._open_writer(path, fd)
        except StoreError:
            os.close(fd)
            raise

    @classmethod
    def _open_writer(cls, path: Path, fd: int) -> "CampaignStore":
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
    def _append(self, group: h5py.Group, columns: dict, values: dict) -> int:
        row = group["iteration" if "iteration" in group else "candidate"].shape[0]
        for name, col in columns.items():
            ds = group[name]
            ds.resize((row + 1, *col.shape))
            value = values.get(name, col.fill)
            ds[row] = _encode(value, name) if col.dtype.startswith("S") else value
        return row

    def add_attempt(self, candidate: int, attempt: int, preset: str, iteration: int, reason: str,
                    score: float = float("nan")) -> int:
        """Record a submission (status running); returns its row."""
        row = self._append(self._calc, S.CALCULATION_COLUMNS, {
            "candidate": candidate, "attempt": attempt, "status": S.RUNNING, "preset": preset,
            "iteration": iteration, "reason": reason, "score": score, "submitted": time.time()})
        self._f.flush()
        return row

    def finish_attempt(self, row: int, record: CalculationRecord) -> None:
        """Fill a submitted row with its result and flush."""
        values = record.as_dict()
        for name, col in S.CALCULATION_COLUMNS.items():
            if name in ("candidate", "attempt", "preset", "iteration", "reason", "score", "submitted"):
                continue
            value = values[name]
            self._calc[name][row] = _encode(value, name) if col.dtype.startswith("S") else value
        self._f.flush()

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
        self._append(self._snap, S.SNAPSHOT_COLUMNS, values)
        for name, array in ((S.SNAPSHOT_MEAN, mean), (S.SNAPSHOT_STD, std)):
            ds = self._f[name]
            ds.resize((ds.shape[0] + 1, ds.shape[1]))
            ds[-1] = array
        self._f.flush()

    def has_test_set(self) -> bool:
        return bool(self._f[S.CANDIDATES]["test"][()].any())

    def mark_test(self, indices: np.ndarray) -> None:
        self._f[S.CANDIDATES]["test"][np.sort(indices)] = 1
        self._f.flush()


def _open_rw(path: Path) -> h5py.File:
    """Open for writing directly in SWMR mode.

    Opening read-write and switching SWMR on afterwards would leave a moment
    in which a killed writer strands the file as neither closed nor SWMR,
    which no reader (and no recovery copy) can open.
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
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
    with h5py.File(path, "r", swmr=True, locking=False) as src, h5py.File(tmp, "w", libver="latest", locking=False) as dst:
        dst.attrs.update(dict(src.attrs))
        for name in src:
            src.copy(src[name], dst, name=name)
        if migrate:
            _add_missing_columns(dst)
            dst.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _add_missing_columns(f: h5py.File) -> None:
    calc = f[S.CALCULATIONS]
    n = calc["candidate"].shape[0]
    for name, col in S.CALCULATION_COLUMNS.items():
        if name not in calc:
            calc.create_dataset(name, data=np.full((n, *col.shape), col.fill, dtype=col.dtype),
                                maxshape=(None, *col.shape), chunks=(1024, *col.shape))
