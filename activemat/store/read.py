"""Reading a campaign store: open it read-only, check its version, load it into memory.

:func:`read_store` is the one way to open a store for reading; every reader
(``status``, ``query``, ``export``, ``predict``, ``inspect``, ``plot``,
``view``, :class:`activemat.Store`, a resuming campaign) goes through it, and
gets a :class:`~activemat.store.query.StoreView`. The one writer is
:class:`activemat.store.write.CampaignStore`.

A reader is safe while a campaign writes the store. It opens the file
read-only with HDF5's file locks off (a reader must never block a resuming
writer), trying a plain open first (it checks the file's length; a SWMR open
of a truncated file retries forever) and a SWMR open only for a file a live
or killed writer holds. Every group is cut to its shortest column, so a
reader sees whole rows only; columns a newer schema added to an older file
are filled with their fill value. A file of a newer schema is refused.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import h5py
import numpy as np

from activemat.errors import StoreError
from activemat.store import schema as S
from activemat.store.identify import campaign_file_instead
from activemat.store.layout import decode, filled, sizes_of, whole_rows
from activemat.store.query import StoreView
from activemat.version import __version__

#: Reads of a store a writer holds before a chunk failing its checksum is damage (a read racing the writer's
#: rewrite of that chunk can see some of its pages old and some new).
READ_TRIES = 3


def open_read(path: Path) -> h5py.File:
    """Open a store read-only without ever blocking its writer; a one-line StoreError if it cannot be read."""
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
    instead = campaign_file_instead(path)  # `activemat status campaign.toml`: name the store to pass
    if instead:
        raise StoreError(instead)
    raise StoreError(f"{path} is not a readable HDF5 store ({short_reason(first)}); it may be truncated or"
                     " corrupt: restore it from a backup or start a new store path")


def close_quietly(f: h5py.File | None) -> None:
    """Close an HDF5 file if there is one, whatever state a failed write left it in."""
    if f is not None:
        try:
            f.close()
        except (OSError, RuntimeError, ValueError):
            pass


def short_reason(exc: Exception) -> str:
    """The reason an HDF5 (or OS) error gives, on one line: 'file signature not found',
    'file write failed: No space left on device'."""
    text = " ".join(str(exc).split())
    io = re.search(r"\(([^():]*?)(?:: time = .*?)?error message = '([^']*)'", text)
    if io:
        return f"{io.group(1).strip(' ,')}: {io.group(2)}" if io.group(1).strip(" ,") else io.group(2)
    return text.split("(")[-1].rstrip(")") if "(" in text else text


def check_version(path: Path, f: h5py.File) -> None:
    """Refuse a file that is not an activemat store, or one of a newer schema than this activemat's."""
    if f.attrs.get(S.ATTR_CREATOR) != S.CREATOR or S.ATTR_SCHEMA not in f.attrs:
        raise StoreError(f"{path} is not an activemat store (no '{S.ATTR_SCHEMA}' attribute); give a store written by activemat")
    version = f.attrs[S.ATTR_SCHEMA]
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool):  # a writer only ever stores one
        raise StoreError(f"{path} is damaged (attribute '{S.ATTR_SCHEMA}' is {version!r}, not an integer);"
                         " restore it from a backup or start a new store path")
    version = int(version)
    if version > S.SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema {version}, newer than this activemat's {S.SCHEMA_VERSION}"
                         f" (activemat {__version__}); upgrade activemat to read it")


def check_compatible(path: Path, identity: str) -> None:
    """Refuse, without writing anything, a store that the campaign of ``identity`` must not continue: missing,
    foreign, newer, damaged or of another campaign definition."""
    with open_read(path) as f:
        check_version(path, f)
        found = f.attrs.get(S.ATTR_IDENTITY)
        found = found.decode() if isinstance(found, bytes) else found
        if found != identity:
            raise StoreError(f"{path} belongs to a different campaign definition (space or calculator changed);"
                             " use a new store path or restore the original [space]/[calculator]")
        check_groups(path, f)


def check_groups(path: Path, f: h5py.File) -> None:
    """Refuse a store that lacks a group its schema version has (a deleted ``calculations`` group would read as
    "0 attempts")."""
    version = int(f.attrs[S.ATTR_SCHEMA])
    for group in S.GROUPS:
        if group.since <= version and group.path not in f:
            raise StoreError(f"{path} is damaged (group '{group.path}' missing); restore it from a backup"
                             " or start a new store path")


#: Root attributes every reader needs (the others have defaults for files that lack them) and the Python types
#: each root attribute's value may have.
REQUIRED_ATTRIBUTES = (S.ATTR_CAMPAIGN_TEXT, S.ATTR_IDENTITY, S.ATTR_ELEMENTS, S.ATTR_SUPERCELL,
                       S.ATTR_FEATURE_NAMES)


def _kind_ok(value, kind: str) -> bool:
    """Whether a root attribute's value is of the kind the schema declares (:class:`~.schema_types.Attribute`)."""
    if kind in ("str", "JSON"):
        return isinstance(value, (str, bytes))
    if kind == "int":
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    array = np.asarray(value)
    if kind == "list[int]":
        return array.dtype.kind in "iu" and array.ndim in (1, 2) and array.size > 0
    return array.dtype.kind in "OSU" and array.ndim == 1  # list[str]


def check_attributes(path: Path, f: h5py.File) -> None:
    """Refuse a store whose root attributes a reader needs are missing or of another type (a deleted
    ``supercell`` was a traceback in inspect and predict)."""
    for attribute in S.ROOT_ATTRIBUTES:
        if attribute.name not in f.attrs:
            if attribute.name in REQUIRED_ATTRIBUTES:
                raise StoreError(f"{path} is damaged (root attribute '{attribute.name}' missing); restore it from a"
                                 " backup or start a new store path")
        elif not _kind_ok(f.attrs[attribute.name], attribute.kind):
            raise StoreError(f"{path} is damaged (root attribute '{attribute.name}' is not {attribute.kind});"
                             " restore it from a backup or start a new store path")


def _read_group(f: h5py.File, group: S.Group, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """A group's whole rows as arrays (text decoded), with columns the file's schema lacked filled in; a column
    the file's schema has and the file lacks is damage (filled, it would read as no value)."""
    version = int(f.attrs[S.ATTR_SCHEMA])
    out = {}
    n = 0
    if group.path in f:  # a group a newer schema added is missing from an older file
        g = f[group.path]
        n = whole_rows(g, group)
        for name, ds in g.items():
            if isinstance(ds, h5py.Dataset) and name not in group.dimensions:  # coordinates are not columns
                try:
                    data = ds[:n]
                except OSError as exc:  # a chunk failing its Fletcher-32 checksum, or unreadable: name the dataset
                    reason = short_reason(exc)
                    if ds.fletcher32 and "filter" in reason:
                        reason = "its Fletcher-32 checksum does not match: the bytes on disk changed"
                    raise OSError(f"{group.path}/{name}: {reason}") from None
                out[name] = decode(data) if data.dtype.kind == "S" else data
    for column in group.columns:
        if column.name not in out:
            if group.path in f and column.since <= version:
                raise ValueError(f"dataset '{group.path}/{column.name}' missing")
            data = filled(column, n, sizes)
            out[column.name] = decode(data) if data.dtype.kind == "S" else data
    if group is S.CALCULATIONS:  # rows a writer appended without their status yet are not whole rows either
        m = len(out["status"])
        while m and out["status"][m - 1] == "":
            m -= 1
        out = {name: values[:m] for name, values in out.items()}
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


def read_store(path: str | Path) -> StoreView:
    """Open a store read-only (safe while a campaign writes it), load it into memory and close it.

    A live writer appends column by column: every group is cut to its
    shortest column, so a reader sees whole rows only. The file is never
    written, locked or created. A chunk failing its checksum in a file a
    writer holds is read again (a read racing the writer's rewrite of a chunk
    can see some of its pages old and some new); if it still fails, the
    error says that resuming recovers a killed writer's torn chunk.

    Raises
    ------
    activemat.errors.StoreError
        Missing, foreign, newer or damaged store (one line naming the path and the fix; an InputError, so the
        CLI exits with code 2).
    """
    path = Path(path)
    for attempt in range(READ_TRIES):
        with open_read(path) as f:
            try:
                check_version(path, f)
                check_groups(path, f)
                check_attributes(path, f)
                return _load(path, f)
            except StoreError:
                raise
            # h5py raises RuntimeError for some failing metadata checksums (a link lookup in a damaged B-tree)
            except (KeyError, OSError, ValueError, RuntimeError) as exc:
                written = f.swmr_mode  # a live writer, or one that was killed
                reason = str(exc)
        if not (written and "checksum" in reason):
            break
        # A chunk read while the writer rewrote it can mix its old and new pages: read again.
        time.sleep(0.05 * (attempt + 1))
    if written and "checksum" in reason:
        raise StoreError(f"{path} is damaged ({reason}); a campaign driver killed mid-write can leave one torn"
                         " chunk: resume the campaign to recover it, else restore it from a backup")
    raise StoreError(f"{path} is damaged ({reason}); restore it from a backup or start a new store path")


def _load(path: Path, f: h5py.File) -> StoreView:
    """Every group of the open store ``f`` in memory."""
    sizes = sizes_of(f)
    return StoreView(
        path=path,
        attrs={k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
        candidates=_read_group(f, S.CANDIDATES, sizes),
        calculations=_read_group(f, S.CALCULATIONS, sizes),
        snapshots=_read_group(f, S.SNAPSHOTS, sizes),
        presets={k: json.loads(v) for k, v in f[S.PRESETS.path].attrs.items()},
        parameters=_parameter_sets(_read_group(f, S.PARAMETERS, sizes)),
    )
