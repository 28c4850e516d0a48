"""Room to write a store: the disk reserve a writer holds and the free space each write checks first.

Room: :class:`Reserve` holds a little disk space (an unlinked file) for as long
as a writer has the store open. HDF5 cannot survive running out of space
mid-flush (closing such a file, or exiting the process, crashes); with the
reserve given back, the pending flush completes, the file closes cleanly and
the error becomes one line. Every write first checks the room it may need
(:func:`append_room`: the chunks its rows begin, from the schema's chunk
sizes), and the reserve is as large as the largest single write
(:func:`reserve_size`).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from activemat.errors import StoreError
from activemat.store import schema as S
from activemat.store.files import fs_error, size_text, space_error
from activemat.store.layout import CHECKSUM_BYTES


class Reserve:
    """Disk space held back (an unlinked file beside the store) and given back when a write runs out of room."""

    def __init__(self, directory: Path, size: int):
        """Hold `size` bytes on `directory`'s file system; raises the OSError (ENOSPC...) if they are not there."""
        self.size = size
        self._file = None
        try:
            self._file = tempfile.TemporaryFile(dir=directory)
            try:
                os.posix_fallocate(self._file.fileno(), 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                block = b"\xa5" * (1 << 20)  # no fallocate on this file system: write the bytes
                for start in range(0, size, len(block)):
                    self._file.write(block[: size - start])
                self._file.flush()
                os.fsync(self._file.fileno())
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None


#: Room (bytes) kept free beyond what a write's new chunks take: HDF5's metadata (object headers, chunk
#: indexes, free-space records) grows a little with every flush.
MARGIN = 512 * 1024


def free_space(directory: Path) -> int:
    """Bytes free for an ordinary user on the file system holding `directory`."""
    return shutil.disk_usage(directory).free


def row_bytes(column: S.Column, sizes: dict[str, int]) -> int:
    """Bytes of one row of a column, uncompressed."""
    return int(np.prod(column.shape(sizes), dtype=np.int64)) * np.dtype(column.dtype).itemsize


def _chunk_bytes(group: S.Group, column: S.Column, sizes: dict[str, int]) -> int:
    # a chunk on disk: its rows plus the checksum
    return (1 if column.compress else group.chunk_rows) * row_bytes(column, sizes) + CHECKSUM_BYTES


def append_room(group: S.Group, start: int, n: int, sizes: dict[str, int]) -> int:
    """Most bytes appending rows ``start .. start+n-1`` can allocate: the chunks those rows begin (an
    uncompressed chunk is allocated whole when its first row is flushed; a compressed column has a chunk per
    row, at most its raw size plus a little)."""
    new_chunks = (start + n - 1) // group.chunk_rows - (start - 1) // group.chunk_rows
    row = group.chunk_rows * np.dtype(S.dimension(group.row).dtype).itemsize + CHECKSUM_BYTES
    total = new_chunks * row  # the row coordinate
    for column in group.columns:
        if column.compress:
            total += n * (_chunk_bytes(group, column, sizes) + 1024)
        else:
            total += new_chunks * _chunk_bytes(group, column, sizes)
    return total


def reserve_size(sizes: dict[str, int]) -> int:
    """The reserve a writer holds: room for the largest single write (a new chunk of every column of the
    widest group, plus a parameter set) to complete its flush."""
    widest = max(append_room(g, 0, 1, sizes) for g in (S.CALCULATIONS, S.SNAPSHOTS))
    return widest + append_room(S.PARAMETERS, 0, 1, sizes) + MARGIN


def no_room(path: Path, directory: Path, what: str, need: int, free: int, then: str) -> StoreError:
    """The one-line StoreError of a write that would not fit: what it needs, what is free, what to do."""
    return StoreError(f"{path}: no space left on device {what}: {size_text(free)} free on {directory}, it needs"
                      f" about {size_text(need)}; free space there and {then}")


def take_reserve(path: Path, directory: Path, size: int, then: str = "resume the campaign") -> Reserve:
    """Hold a :class:`Reserve` of `size` bytes beside the store; a one-line StoreError if there is no room."""
    try:
        return Reserve(directory, size)
    except OSError as exc:
        if space_error(exc):
            raise no_room(path, directory, "to open the store for writing", size, free_space(directory),
                          then) from None
        raise fs_error(path, exc, directory) from None
