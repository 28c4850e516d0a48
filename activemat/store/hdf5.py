"""The campaign store: one HDF5 file per campaign, laid out as :mod:`activemat.store.schema` declares.

The driver is the only writer. It holds an exclusive lock file beside the
store's real path and a lock on the store file itself, so a second driver
is refused however it names the store (a symlink, a hard link; see
:mod:`activemat.store.files`). HDF5's own file locks are off: they would let
a reader block a resuming writer. It writes in SWMR mode and flushes after
every change, so readers (status, query, plots) can open the file at any
time, and a driver killed mid-campaign leaves a readable file. HDF5 then
refuses to reopen that file for writing (its consistency flags are still
set), so resuming copies it into a fresh file and swaps it in atomically,
holding both locks (the new file is locked before it takes the store's
name). The same copy migrates a file of an older schema: every group and
column the schema declares and the file lacks is added, filled with the
column's fill value.

A full disk never costs a stored row: every write first checks the room it
may need, and a small reserve of disk space held while the store is open is
given back if HDF5 still runs out mid-flush, so the flush completes and the
file closes cleanly. Either way the writer stops with one line (a
:class:`~activemat.errors.StoreError`) saying to free space and resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from activemat.version import __version__
from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError
from activemat.store import schema as S
from activemat.store.files import Reserve, WriterLock, fs_error, size_text, space_error

_LIBVER = {"v110": h5py.h5f.LIBVER_V110, "latest": h5py.h5f.LIBVER_LATEST}


def _encode(value, column: S.Column) -> bytes:
    # Cut to the column's width on a character boundary, so the bytes always decode.
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.encode()[: column.width].decode("utf-8", "ignore").encode()


def _stacked(values: list, column: S.Column, shape: tuple) -> np.ndarray:
    """Values of consecutive rows as one array of the column's dtype, each broadcast to the row's shape (a
    scalar fill value fills a whole row of a per-site or per-k column)."""
    out = np.empty((len(values), *shape), dtype=column.dtype)
    for i, value in enumerate(values):
        out[i] = value
    return out


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
    if path.is_dir():
        raise StoreError(f"{path} is a directory; give a file path (e.g. {path / 'campaign.h5'})")
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
    """The reason an HDF5 (or OS) error gives, on one line: 'file signature not found',
    'file write failed: No space left on device'."""
    text = " ".join(str(exc).split())
    io = re.search(r"\(([^():]*?)(?:: time = .*?)?error message = '([^']*)'", text)
    if io:
        return f"{io.group(1).strip(' ,')}: {io.group(2)}" if io.group(1).strip(" ,") else io.group(2)
    return text.split("(")[-1].rstrip(")") if "(" in text else text


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
            if isinstance(ds, h5py.Dataset) and name not in group.dimensions:  # coordinates are not columns
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
                   data: np.ndarray | None = None, n: int = 0) -> h5py.Dataset:
    """Create a column's dataset as the schema declares it: ``data``, or ``n`` rows of its fill (not written
    until a row is: an appendable column's chunks are allocated as rows arrive)."""
    shape = column.shape(sizes)
    if data is not None:
        data = np.asarray(data).astype(column.dtype)
        n = len(data)
    if group.appendable:
        options = {"compression": "gzip", "compression_opts": 1} if column.compress else {}
        ds = g.create_dataset(column.name, shape=(n, *shape), dtype=column.dtype, maxshape=(None, *shape),
                              fillvalue=column.fill, chunks=(1 if column.compress else group.chunk_rows, *shape),
                              **options)
        if data is not None and n:
            ds[...] = data
    else:
        ds = g.create_dataset(column.name, data=_filled(column, n, sizes) if data is None else data)
    if column.unit:
        ds.attrs[S.UNITS_ATTR] = column.unit
    if column.width:
        ds.attrs[S.ENCODING_ATTR] = "utf-8"
    return ds


def _coordinate(f: h5py.File, group: S.Group, name: str, sizes: dict[str, int], n: int) -> np.ndarray:
    """Values of a group's coordinate ``name``: 0..n-1 along its rows (``n`` of them), the feature names along
    the features, 0..size-1 along any other axis."""
    dim = S.dimension(name)
    if name == S.FEATURE and name != group.row:
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in f.attrs[S.ATTR_FEATURE_NAMES]]
        return np.array([_encode(v, S.Column(name, dim.dtype)) for v in names], dtype=dim.dtype)
    if name == group.row:
        return np.arange(n, dtype=dim.dtype)
    return np.arange(dim.size if dim.size is not None else sizes[name], dtype=dim.dtype)


def _add_dimensions(f: h5py.File) -> None:
    """Give every group of a (new or copied) store its coordinates, as HDF5 dimension scales attached to every
    column's axes, so netCDF readers see named dimensions. A row coordinate is as long as the group's longest
    column (a killed writer may leave a column a row longer than the others)."""
    sizes = _sizes(f)
    for group in S.GROUPS:
        if not group.columns:
            continue
        g = f[group.path]
        n = max(g[c.name].shape[0] for c in group.columns)
        scales = {}
        for name in group.dimensions:
            if name in g:
                del g[name]
            values = _coordinate(f, group, name, sizes, n)
            if name == group.row and group.appendable:
                ds = g.create_dataset(name, data=values, maxshape=(None,), chunks=(group.chunk_rows,))
            else:
                ds = g.create_dataset(name, data=values)
            if values.dtype.kind == "S":
                ds.attrs[S.ENCODING_ATTR] = "utf-8"
            ds.make_scale(name)
            scales[name] = ds
        for column in group.columns:
            ds = g[column.name]
            for axis, name in enumerate(group.dimensions_of(column)):
                ds.dims[axis].attach_scale(scales[name])


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


#: Bytes per block when a dataset is copied (a pool prediction of 10^6 candidates over many snapshots does not
#: fit in memory at once).
COPY_BLOCK = 64 * 1024 * 1024
#: Attributes HDF5's dimension scales and the schema write; a copy writes them anew, never from the source.
_SCALE_ATTRS = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "_Netcdf4Dimid", "unit", S.UNITS_ATTR,
                S.ENCODING_ATTR}


def _copy_rows(src: h5py.Dataset, dst: h5py.Dataset) -> None:
    """Copy a dataset's values in blocks of rows."""
    n = src.shape[0] if src.shape else 0
    if not src.shape:
        dst[()] = src[()]
        return
    row = max(int(np.prod(src.shape[1:], dtype=np.int64)) * src.dtype.itemsize, 1)
    step = max(COPY_BLOCK // row, 1)
    for start in range(0, n, step):
        dst[start:start + step] = src[start:start + step]


def _copy_store(src: h5py.File, dst: h5py.File) -> None:
    """Rewrite every group and dataset of ``src`` into ``dst`` (open with the schema's format bounds).

    Declared columns are created as the schema declares them and filled with the source's values; anything
    else is rewritten with its own shape, chunks and filters. Nothing is copied as an HDF5 object (an object
    copy keeps the on-disk format it was written in, which HDF5 1.10 tools may not read); the coordinates
    and dimension scales are not copied but made anew (:func:`_add_dimensions`).
    """
    sizes = _sizes(src)
    declared = {group.path: group for group in S.GROUPS}

    def rewrite(source: h5py.Group, target: h5py.Group, group: S.Group | None) -> None:
        target.attrs.update({k: v for k, v in source.attrs.items()})
        for name, obj in source.items():
            if isinstance(obj, h5py.Group):
                rewrite(obj, target.create_group(name), declared.get(obj.name.lstrip("/")))
                continue
            if group is not None and name in group.dimensions:
                continue  # made anew
            if group is not None and name in group:
                ds = _create_column(target, group, group[name], sizes, n=obj.shape[0])
            else:
                ds = target.create_dataset(name, shape=obj.shape, dtype=obj.dtype, maxshape=obj.maxshape,
                                           chunks=obj.chunks, compression=obj.compression,
                                           compression_opts=obj.compression_opts, fillvalue=obj.fillvalue)
                ds.attrs.update({k: v for k, v in obj.attrs.items() if k not in _SCALE_ATTRS})
            _copy_rows(obj, ds)
            target.file.flush()

    rewrite(src, dst, None)


# -- room on disk -------------------------------------------------------------------------------

#: Room (bytes) kept free beyond what a write's new chunks take: HDF5's metadata (object headers, chunk
#: indexes, free-space records) grows a little with every flush.
MARGIN = 512 * 1024


def _free_space(directory: Path) -> int:
    """Bytes free for an ordinary user on the file system holding `directory`."""
    return shutil.disk_usage(directory).free


def _row_bytes(column: S.Column, sizes: dict[str, int]) -> int:
    return int(np.prod(column.shape(sizes), dtype=np.int64)) * np.dtype(column.dtype).itemsize


def _chunk_bytes(group: S.Group, column: S.Column, sizes: dict[str, int]) -> int:
    return (1 if column.compress else group.chunk_rows) * _row_bytes(column, sizes)


def _append_room(group: S.Group, start: int, n: int, sizes: dict[str, int]) -> int:
    """Most bytes appending rows ``start .. start+n-1`` can allocate: the chunks those rows begin (an
    uncompressed chunk is allocated whole when its first row is flushed; a compressed column has a chunk per
    row, at most its raw size plus a little)."""
    new_chunks = (start + n - 1) // group.chunk_rows - (start - 1) // group.chunk_rows
    total = new_chunks * group.chunk_rows * np.dtype(S.dimension(group.row).dtype).itemsize  # the row coordinate
    for column in group.columns:
        if column.compress:
            total += n * (_chunk_bytes(group, column, sizes) + 1024)
        else:
            total += new_chunks * _chunk_bytes(group, column, sizes)
    return total


def _reserve_size(sizes: dict[str, int]) -> int:
    """The reserve a writer holds: room for the largest single write (a new chunk of every column of the
    widest group, plus a parameter set) to complete its flush."""
    widest = max(_append_room(g, 0, 1, sizes) for g in (S.CALCULATIONS, S.SNAPSHOTS))
    return widest + _append_room(S.PARAMETERS, 0, 1, sizes) + MARGIN


def _no_room(path: Path, directory: Path, what: str, need: int, free: int, then: str) -> StoreError:
    return StoreError(f"{path}: no space left on device {what}: {size_text(free)} free on {directory}, it needs"
                      f" about {size_text(need)}; free space there and {then}")


def _take_reserve(path: Path, directory: Path, size: int, then: str = "resume the campaign") -> Reserve:
    try:
        return Reserve(directory, size)
    except OSError as exc:
        if space_error(exc):
            raise _no_room(path, directory, "to open the store for writing", size, _free_space(directory),
                           then) from None
        raise fs_error(path, exc, directory) from None


def _close_quietly(f: h5py.File | None) -> None:
    if f is not None:
        try:
            f.close()
        except (OSError, RuntimeError, ValueError):
            pass


@dataclass(frozen=True)
class Attempt:
    """A submission as :meth:`CampaignStore.add_attempts` records it (a row with status running)."""

    candidate: int
    attempt: int
    preset: str
    iteration: int
    reason: str
    score: float = float("nan")


class CampaignStore:
    """The single writer of a campaign store. Use as a context manager.

    Open it with :meth:`create` (a new store) or :meth:`open` (resume; migrates
    an older schema and recovers a file whose writer was killed).

    Every write raises :class:`~activemat.errors.StoreError` (one line: free
    space and resume) when the disk is full, keeping every row written before;
    after an error mid-flush the store is closed and refuses further writes.
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
        self._sizes = _sizes(f)
        n = self._n(S.PARAMETERS)
        self._keys = {k.decode() for k in self._cols[S.PARAMETERS.path]["key"][:n]}  # parameter sets already stored

    # -- opening -------------------------------------------------------------
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
        real, reserve = lock.real, None
        sizes = {S.SITE: pool.decorations.shape[1], S.FEATURE: pool.features.shape[1], S.CANDIDATE: len(pool)}
        try:
            size = _reserve_size(sizes)
            estimate = sum(len(pool) * _row_bytes(c, sizes) for c in S.CANDIDATES.columns) + MARGIN
            # the coordinates along the pool (candidates/candidate, snapshots/candidate)
            estimate += sum(len(pool) * np.dtype(S.dimension(S.CANDIDATE).dtype).itemsize
                            for g in S.GROUPS if S.CANDIDATE in g.dimensions)
            free = _free_space(real.parent)
            if free < estimate + size:
                raise _no_room(path, real.parent, "to create the store", estimate + size, free,
                               "run again (or give a store path on another file system)")
            reserve = _take_reserve(path, real.parent, size, "run again")
            tmp = real.with_name(real.name + ".new")

            def fill(f: h5py.File) -> None:
                f.attrs.update({S.ATTR_SCHEMA: S.SCHEMA_VERSION, S.ATTR_CREATOR: S.CREATOR,
                                S.ATTR_CREATOR_VERSION: __version__,
                                S.ATTR_CREATED: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                S.ATTR_CAMPAIGN_TEXT: campaign_text, S.ATTR_IDENTITY: identity,
                                S.ATTR_FEATURE_NAMES: list(pool.feature_names),
                                S.ATTR_ELEMENTS: list(pool.elements), S.ATTR_SUPERCELL: list(pool.supercell),
                                S.ATTR_CELL: pool.cell,
                                S.ATTR_UNITS: json.dumps(S.UNITS)})
                for group in S.GROUPS:
                    g = f.create_group(group.path)
                    for column in group.columns:
                        data = getattr(pool, column.source) if group is S.CANDIDATES and column.source else None
                        _create_column(g, group, column, sizes, data=data,
                                       n=len(pool) if group is S.CANDIDATES else 0)
                f[S.PRESETS.path].attrs.update({k: json.dumps(v) for k, v in presets.items()})
                _add_dimensions(f)

            _build(path, lock, reserve, tmp, fill, "creating the store",
                   f"nothing was left behind: free space on {real.parent} (or give a store path on another file"
                   " system) and run again")
            return cls._open_writer(path, lock, reserve)
        except BaseException:
            if reserve is not None:
                reserve.release()
            lock.release()
            raise

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
        cls.check_compatible(path, identity)
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
                    raise StoreError(f"{path} cannot be opened for writing ({_short(exc)}); check permissions"
                                     ) from None
                rewrite = "to recover it after a killed campaign driver"  # we hold the locks: nobody else writes
            else:
                if int(f.attrs[S.ATTR_SCHEMA]) < S.SCHEMA_VERSION:
                    f.close()
                    f = None
                    rewrite = f"to migrate it to store schema {S.SCHEMA_VERSION}"
            if rewrite:
                if lock.links > 1:
                    raise StoreError(f"{path}: copying the store {rewrite} replaces the file, but it has"
                                     f" {lock.links} hard links"
                                     " (other names of the same file) that would keep the old copy: remove the"
                                     " other names (find them with find -samefile) or copy the store to a new"
                                     " path, then resume; the store is unchanged")
                if reserve is None:
                    with _open_read(real) as src:
                        size = _reserve_size(_sizes(src))
                    need, free = real.stat().st_size + MARGIN + size, _free_space(real.parent)
                    if free < need:
                        raise StoreError(f"{path}: copying the store {rewrite} needs about {size_text(need)} free"
                                         f" on {real.parent}; only {size_text(free)} available: free space there"
                                         " and resume (the store is unchanged)")
                    reserve = _take_reserve(path, real.parent, size)
                _rewrite(path, lock, reserve, rewrite, migrate=rewrite.startswith("to migrate"))
                f = _open_rw(real)
            if reserve is None:
                reserve = _take_reserve(path, real.parent, _reserve_size(_sizes(f)))
            return cls(path, f, lock, reserve)
        except BaseException:
            _close_quietly(f)
            if reserve is not None:
                reserve.release()
            lock.release()
            raise

    def close(self) -> None:
        """Close the file and give back the locks and the reserve (safe to call twice)."""
        f, self._f = self._f, None
        self._cols, self._rows = {}, {}
        if f is not None:
            try:
                f.close()
            except (OSError, RuntimeError, ValueError):
                self._reserve.release()  # every change was flushed already: only HDF5's bookkeeping is left
                _close_quietly(f)
        self._reserve.release()
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing ---------------------------------------------------------------
    def _live(self) -> h5py.File:
        if self._f is None:
            raise StoreError(f"{self.path}: the store was closed after an error; resume the campaign")
        return self._f

    def _n(self, group: S.Group) -> int:
        """Whole rows of a group (its shortest column)."""
        return min(ds.shape[0] for ds in self._cols[group.path].values())

    def _write(self, room: int, action):
        """Run ``action`` (HDF5 writes) and flush, if the disk has ``room`` bytes (plus a margin) for it.

        Without the room: a StoreError, nothing written. If HDF5 runs out of space anyway (another process
        filled the disk meanwhile): the reserve is given back so the flush completes, the store is closed and
        the StoreError says so.
        """
        f = self._live()
        need, free = room + MARGIN, _free_space(self._dir)
        if free < need:
            raise _no_room(self.path, self._dir, "to write the store", need, free,
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
            pass
        _close_quietly(f)
        self._lock.release()
        what = space_error(exc)
        if what:
            return StoreError(f"{self.path}: {what} while writing the store on {self._dir}; every row written"
                              " before is kept: free space there and resume the campaign")
        return StoreError(f"{self.path}: writing the store failed ({_short(exc)}); every row written before is"
                          f" kept: check {self._dir} and resume the campaign")

    def _append(self, group: S.Group, rows: list[dict]) -> int:
        """Append rows (column name -> value; missing columns get their fill) and flush; return the first new row.

        A row half-appended by a killed writer is overwritten: appending starts after the shortest column.
        """
        unknown = set().union(*rows) - set(group.names)
        if unknown:
            raise ValueError(f"{group.path} has no column {', '.join(sorted(unknown))}")
        start = self._n(group)
        cols = self._cols[group.path]

        def append():
            coordinate = self._rows[group.path]
            coordinate.resize((start + len(rows),))
            coordinate[start:] = np.arange(start, start + len(rows))
            for column in group.columns:
                ds = cols[column.name]
                ds.resize((start + len(rows), *ds.shape[1:]))
                # one write per column for the whole batch of rows
                ds[start:] = _stacked([self._value(column, row.get(column.name, column.fill)) for row in rows],
                                      column, ds.shape[1:])

        self._write(_append_room(group, start, len(rows), self._sizes), append)
        return start

    @staticmethod
    def _value(column: S.Column, value):
        return _encode(value, column) if column.width else value

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
        start = self._append(S.CALCULATIONS, [{
            "candidate": a.candidate, "attempt": a.attempt, "status": S.RUNNING, "preset": a.preset,
            "iteration": a.iteration, "reason": a.reason, "score": a.score, "submitted": now} for a in attempts])
        return list(range(start, start + len(attempts)))

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

        New parameter sets are appended (and flushed) first; every result column of every row is written
        before any row's status, so a killed writer leaves each row either finished with all its results or
        still running (rerun on resume).
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

        def values(column: S.Column, get) -> np.ndarray:
            out = []
            for key, (_, record) in zip(keys, results):
                value = get(key, record)
                if value is None:  # no structure recorded (not relaxed): the column's fill, as _append writes it
                    value = column.fill
                out.append(self._value(column, value))
            return _stacked(out, column, calc[column.name].shape[1:])

        def fill():
            for column in S.CALCULATIONS.columns:
                if column.source == S.RESULT and column.name != "status":
                    get = (lambda key, record: key) if column.name == "parameters" else \
                        (lambda key, record, name=column.name: getattr(record, name))
                    calc[column.name][rows] = values(column, get)
            status = S.CALCULATIONS["status"]
            calc["status"][rows] = values(status, lambda key, record: record.status)

        self._write(0, fill)

    def _parameters_key(self, settings: dict) -> str:
        """Key of a parameter set, stored once: appended (as parts of the schema's width) on first use."""
        if not settings:
            return ""  # not recorded (e.g. the calculation failed before its parameters were set)
        text = S.parameters_json(settings)
        key = S.parameters_key(text)
        if key not in self._keys:
            width = S.PARAMETERS["json"].width  # canonical JSON is ASCII: one byte a character
            parts = [text[i:i + width] for i in range(0, len(text), width)]
            self._append(S.PARAMETERS, [{"key": key, "json": part} for part in parts])
            self._keys.add(key)
        return key

    def relaxed_structure(self, candidate: int, preset: str) -> dict | None:
        """The structure, gap and spin-orbit gap of ``candidate``'s successful ``preset`` calculation, if relaxed.

        Lets a level without forces (TB09) compute on the structure another
        level already relaxed, instead of relaxing it again. None if there is
        no such row.
        """
        cols = self._cols[S.CALCULATIONS.path]
        n = self._n(S.CALCULATIONS)
        hit = np.flatnonzero((cols["candidate"][:n] == candidate) & (cols["status"][:n] == S.OK.encode())
                             & (cols["preset"][:n] == _encode(preset, S.CALCULATIONS["preset"]))
                             & (cols["relax"][:n] != b""))
        if not len(hit):
            return None
        row = int(hit[-1])
        return {"positions": cols["positions"][row], "cell": cols["cell"][row], "gap": float(cols["gap"][row]),
                "soc_gap": float(cols["soc_gap"][row])}

    def _mark(self, rows) -> None:
        status = self._cols[S.CALCULATIONS.path]["status"]

        rows = sorted({int(r) for r in rows})  # one point selection, in increasing order

        def mark():
            if rows:
                status[rows] = np.full(len(rows), S.INTERRUPTED.encode(), dtype=status.dtype)

        self._write(0, mark)

    def interrupt_running(self) -> list[tuple[int, int]]:
        """Mark rows left 'running' by a previous driver as interrupted; return (candidate, attempt) of each."""
        self._live()
        calc = self._cols[S.CALCULATIONS.path]
        rows = np.flatnonzero(calc["status"][()] == S.RUNNING.encode())
        self._mark(rows)
        candidates, attempts = calc["candidate"][()], calc["attempt"][()]
        return [(int(candidates[r]), int(attempts[r])) for r in rows]

    def mark_interrupted(self, rows: list[int]) -> None:
        """Mark submitted rows as interrupted (cancelled on a stop; resubmitted on resume)."""
        self._live()
        self._mark(rows)

    def add_snapshot(self, values: dict, mean: np.ndarray, std: np.ndarray) -> None:
        """Append a model snapshot (``values``: snapshot column -> value) with its predicted mean and standard
        deviation (eV) over the pool, and flush."""
        self._append(S.SNAPSHOTS, [{**values, "pool_mean": mean, "pool_std": std}])

    def has_test_set(self) -> bool:
        self._live()
        return bool(self._cols[S.CANDIDATES.path]["test"][()].any())

    def mark_test(self, indices: np.ndarray) -> None:
        """Hold candidates out for testing (never trained on or selected), and flush."""
        self._live()
        test = self._cols[S.CANDIDATES.path]["test"]

        def mark():
            test[np.sort(indices)] = 1

        self._write(0, mark)


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


def _build(path: Path, lock: WriterLock, reserve: Reserve, tmp: Path, fill, doing: str, advice: str,
           source: Path | None = None) -> None:
    """Write a complete new store file at ``tmp`` (beside the store) with ``fill(dst)`` (or ``fill(src, dst)``
    with ``source`` open read-only), then swap it in for the store, locked (:meth:`WriterLock.swap_in`).

    On any failure ``tmp`` is removed (the store is untouched) and, if the disk ran out, the reserve is given
    back first so HDF5 can close the half-written file; a full disk raises a one-line StoreError saying to
    free space, other errors propagate.
    """
    src = dst = None
    try:
        if source is not None:
            src = h5py.File(source, "r", swmr=True, locking=False)
        # No chunk cache: every chunk goes to disk as it is written (as an object copy does), so a disk that
        # fills up mid-copy leaves little unflushed for the close that the reserve's room must complete.
        dst = h5py.File(tmp, "w", libver=S.FORMAT, locking=False, rdcc_nbytes=0)
        fill(dst) if src is None else fill(src, dst)
        dst.close()
        dst = None
        _close_quietly(src)
        src = None
        lock.swap_in(tmp)
    except (OSError, RuntimeError) as exc:
        full = space_error(exc)
        if full is None:
            raise
        reserve.release()
        _close_quietly(dst)
        dst = None
        raise StoreError(f"{path}: {full} while {doing}; {advice}") from None
    finally:
        if dst is not None:
            reserve.release()  # it may be half-flushed: let HDF5 close it
        _close_quietly(dst)
        _close_quietly(src)
        tmp.unlink(missing_ok=True)


def _rewrite(path: Path, lock: WriterLock, reserve: Reserve, why: str, migrate: bool = False) -> None:
    """Copy the locked store into a fresh file (migrated to the current schema if asked) and swap it in
    atomically, locked before it takes the store's name.

    Used after a killed writer left HDF5's consistency flags set, and to
    migrate older schema versions; the original stays untouched until the
    new file is complete on disk. Through a symlink, the file the link names
    is replaced; the link stays a link.
    """
    real = lock.real
    tmp = real.with_name(real.name + ".rewrite")

    def copy(src: h5py.File, dst: h5py.File) -> None:
        _copy_store(src, dst)
        if migrate:
            _add_missing(dst)
            dst.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION
        _add_dimensions(dst)

    try:
        _build(path, lock, reserve, tmp, copy, f"copying the store {why}",
               f"the store is unchanged: free space on {real.parent} and resume", source=real)
    except StoreError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        old = "migrate it to the current schema" if migrate else "recover it after a killed writer"
        raise StoreError(f"{path} could not be copied to {old} ({_short(exc)}); the file is unchanged:"
                         " restore it from a backup or start a new store path") from None
