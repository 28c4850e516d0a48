"""A new store file swapped in for the old: recovery after a killed writer, and migration of older schemas.

HDF5 refuses to reopen a file whose SWMR writer was killed (its consistency
flags are still set), so resuming copies the file into a fresh one beside it
and swaps that in atomically, holding both writer locks (the new file is
locked before it takes the store's name; :meth:`WriterLock.swap_in`). The
same copy migrates a file of an older schema: every group and column the
schema declares and the file lacks is added, filled with the column's fill
value. The copy rewrites every dataset rather than copying HDF5 objects (an
object copy keeps the on-disk format it was written in, which HDF5 1.10
tools may not read), and makes the dimension scales anew. The original stays
untouched until the new file is complete on disk; a full disk leaves it as
it was and says so in one line. A new store is built the same way
(:func:`build_file`).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from activemat.errors import StoreError
from activemat.store import room  # room.free_space: looked up where it lives, one place to stand in for it
from activemat.store import schema as S
from activemat.store.files import WriterLock, clear_leftover, planted, size_text, space_error
from activemat.store.room import MARGIN, Reserve, reserve_size, take_reserve
from activemat.store.layout import add_dimensions, create_column, sizes_of, whole_rows
from activemat.store.read import close_quietly, open_read, short_reason
from activemat.store.salvage import Torn, read_block, settle

#: Bytes per block when a dataset is copied (a pool prediction of 10^6 candidates over many snapshots does not
#: fit in memory at once).
COPY_BLOCK = 64 * 1024 * 1024
#: Attributes HDF5's dimension scales and the schema write; a copy writes them anew, never from the source.
_SCALE_ATTRS = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "_Netcdf4Dimid", "unit", S.UNITS_ATTR,
                S.ENCODING_ATTR}


def add_missing(f: h5py.File) -> None:
    """Add every group and column the schema declares and the file lacks, with as many rows of fill as the
    group has."""
    sizes = sizes_of(f)
    for group in S.GROUPS:
        g = f.require_group(group.path)
        n = whole_rows(g, group)
        for column in group.columns:
            if column.name not in g:
                create_column(g, group, column, sizes, n=n)


def _copy_rows(src: h5py.Dataset, dst: h5py.Dataset, torn: Torn | None) -> None:
    """Copy a dataset's values in blocks of rows (with ``torn``, a chunk failing its checksum is read raw)."""
    n = src.shape[0] if src.shape else 0
    if not src.shape:
        dst[()] = src[()]
        return
    row = max(int(np.prod(src.shape[1:], dtype=np.int64)) * src.dtype.itemsize, 1)
    step = max(COPY_BLOCK // row, 1)
    for start in range(0, n, step):
        stop = min(start + step, n)
        dst[start:stop] = src[start:stop] if torn is None else read_block(src, start, stop, torn)


def copy_store(src: h5py.File, dst: h5py.File, torn: Torn | None = None) -> None:
    """Rewrite every group and dataset of ``src`` into ``dst`` (open with the schema's format bounds).

    Declared columns are created as the schema declares them and filled with the source's values; anything
    else is rewritten with its own shape, chunks and filters. Nothing is copied as an HDF5 object (an object
    copy keeps the on-disk format it was written in, which HDF5 1.10 tools may not read); the coordinates
    and dimension scales are not copied but made anew (:func:`~activemat.store.layout.add_dimensions`). With
    ``torn`` (recovering a killed writer's file) the one chunk a kill may have torn is read without its checksum
    (:mod:`activemat.store.salvage`).
    """
    sizes = sizes_of(src)
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
                ds = create_column(target, group, group[name], sizes, n=obj.shape[0])
            else:
                ds = target.create_dataset(name, shape=obj.shape, dtype=obj.dtype, maxshape=obj.maxshape,
                                           chunks=obj.chunks, compression=obj.compression,
                                           compression_opts=obj.compression_opts, fillvalue=obj.fillvalue,
                                           fletcher32=obj.fletcher32)
                ds.attrs.update({k: v for k, v in obj.attrs.items() if k not in _SCALE_ATTRS})
            _copy_rows(obj, ds, torn)
            target.file.flush()

    rewrite(src, dst, None)


def build_file(path: Path, lock: WriterLock, reserve: Reserve, tmp: Path, fill, doing: str, advice: str,
               source: Path | None = None) -> None:
    """Write a complete new store file at ``tmp`` (beside the store) with ``fill(dst)`` (or ``fill(src, dst)``
    with ``source`` open read-only), then swap it in for the store, locked (:meth:`WriterLock.swap_in`).

    On any failure ``tmp`` is removed (the store is untouched) and, if the disk ran out, the reserve is given
    back first so HDF5 can close the half-written file; a full disk raises a one-line StoreError saying to
    free space, other errors propagate.
    """
    src = dst = None
    created = False  # only a file made here is removed on failure (never a name someone planted)
    try:
        if source is not None:
            src = h5py.File(source, "r", swmr=True, locking=False)
        clear_leftover(tmp, path)  # a killed writer's copy goes; a planted symlink or other file is refused
        # "x": created here with O_EXCL, so never through a symbolic link planted meanwhile, never over a file.
        # No chunk cache: every chunk goes to disk as it is written (as an object copy does), so a disk that
        # fills up mid-copy leaves little unflushed for the close that the reserve's room must complete.
        try:
            dst = h5py.File(tmp, "x", libver=S.FORMAT, locking=False, rdcc_nbytes=0)
        except OSError:
            if os.path.lexists(tmp):  # planted between the check and the create
                raise planted(path, tmp, os.lstat(tmp), "writes") from None
            raise
        created = True
        st = os.fstat(dst.id.get_vfd_handle())
        fill(dst) if src is None else fill(src, dst)
        dst.close()
        dst = None
        close_quietly(src)
        src = None
        lock.swap_in(tmp, (st.st_dev, st.st_ino))
    except (OSError, RuntimeError) as exc:
        full = space_error(exc)
        if full is None:
            raise
        reserve.release()
        close_quietly(dst)
        dst = None
        raise StoreError(f"{path}: {full} while {doing}; {advice}") from None
    finally:
        if dst is not None:
            reserve.release()  # it may be half-flushed: let HDF5 close it
        close_quietly(dst)
        close_quietly(src)
        if created:
            tmp.unlink(missing_ok=True)


def rewrite(path: Path, lock: WriterLock, reserve: Reserve, why: str, migrate: bool = False) -> None:
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
        torn = None if migrate else Torn()  # a killed writer's file: one chunk may be torn by the kill
        copy_store(src, dst, torn)
        if torn is not None:
            settle(dst, torn)
        if migrate:
            add_missing(dst)
            dst.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION
        add_dimensions(dst)

    try:
        build_file(path, lock, reserve, tmp, copy, f"copying the store {why}",
                   f"the store is unchanged: free space on {real.parent} and resume", source=real)
    except StoreError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        old = "migrate it to the current schema" if migrate else "recover it after a killed writer"
        raise StoreError(f"{path} could not be copied to {old} ({short_reason(exc)}); the file is unchanged:"
                         " restore it from a backup or start a new store path") from None


def rewrite_locked(path: Path, lock: WriterLock, reserve: Reserve | None, why: str) -> Reserve:
    """Recover or migrate the locked store (``why``: "to recover it ...", "to migrate it ...") by a copy
    swapped in (:func:`rewrite`), once the disk has room for the copy; return the reserve the writer then holds
    (``reserve``, or one taken here).

    Refused, with the store unchanged, for a file with several hard links (the other names would keep the old
    copy) and when the disk has no room for the copy.
    """
    real = lock.real
    if lock.links > 1:
        raise StoreError(f"{path}: copying the store {why} replaces the file, but it has"
                         f" {lock.links} hard links"
                         " (other names of the same file) that would keep the old copy: remove the"
                         " other names (find them with find -samefile) or copy the store to a new"
                         " path, then resume; the store is unchanged")
    taken = reserve is None
    if taken:
        with open_read(real) as src:
            size = reserve_size(sizes_of(src))
        need, free = real.stat().st_size + MARGIN + size, room.free_space(real.parent)
        if free < need:
            raise StoreError(f"{path}: copying the store {why} needs about {size_text(need)} free"
                             f" on {real.parent}; only {size_text(free)} available: free space there"
                             " and resume (the store is unchanged)")
        reserve = take_reserve(path, real.parent, size)
    try:
        rewrite(path, lock, reserve, why, migrate=why.startswith("to migrate"))
    except BaseException:
        if taken:
            reserve.release()
        raise
    return reserve
