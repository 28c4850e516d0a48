"""The store as a file on disk: who may write it, and file-system errors as one line.

A store is a file, not a path: a symlink, a symlinked directory or a hard link
reaches the same file under another name. The single writer therefore holds
two locks, and every writer needs both:

- an exclusive ``flock`` on ``<real path>.lock``, the lock file beside the
  store's resolved path (:func:`real_path`), so every symlinked name of the
  store meets the same lock file. It exists before the store does (it guards
  creation), and it survives the copy-and-swap of a recovery or migration,
  which changes the file's inode but never its real path;
- an exclusive open-file-description lock (``F_OFD_SETLK``, Linux) on the
  store file itself, which every hard link of that inode shares. When a
  recovery or migration builds a new file, the writer locks the new inode
  *before* it swaps it in, so no moment exists in which the file under the
  store's name is unlocked. OFD locks are independent of ``flock`` (HDF5's
  own file locking, off in activemat, and a reader's shared lock never
  meets it), and unlike POSIX record locks they are not dropped when the
  process closes some other descriptor of the same file (as every h5py open
  and close does).

The kernel drops both when the writer dies, so a killed driver never blocks a
resume. A store file with several hard links is never copied and swapped
(the other names would keep the old copy): the writer refuses and says so.

Names planted beside the store: the lock file, the ``.new`` file a store is
built in and the ``.rewrite`` copy of a recovery or migration are never
opened through a symbolic link and never written over a file activemat did
not create (``O_NOFOLLOW``, ``O_EXCL``, and the inode checked before a swap):
a planted symlink, hard link or other file is refused with one line naming
it, and the file it points to is untouched (:func:`open_lock_file`,
:func:`clear_leftover`).

Room to write (the disk reserve, free-space checks) is :mod:`activemat.store.room`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import stat
import struct
from pathlib import Path

from activemat.errors import StoreError, StoreLocked

#: errno values that mean "no room": a full file system, or the user's disk quota.
SPACE_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def real_path(path: str | Path) -> Path:
    """The store's file with every symlink resolved (the name its lock file is keyed on)."""
    return Path(os.path.realpath(path))


def lock_path(real: Path) -> Path:
    return Path(f"{real}.lock")


def size_text(n: float) -> str:
    """Bytes as a short decimal size: '48 KB', '2.6 MB', '1.2 GB'."""
    if n < 1e6:
        return f"{max(n, 0) / 1e3:.0f} KB"
    if n < 1e9:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.1f} GB"


def errno_of(exc: BaseException) -> int | None:
    """The errno of an OSError, or the one HDF5 quotes in its message ('errno = 28')."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = re.search(r"errno = (\d+)", str(exc))
    return int(found.group(1)) if found else None


def space_error(exc: BaseException) -> str | None:
    """'no space left on device' / 'disk quota exceeded' if `exc` says so, else None."""
    code = errno_of(exc)
    if code in SPACE_ERRORS:
        return SPACE_ERRORS[code]
    text = str(exc)
    return next((what for what in SPACE_ERRORS.values() if what in text.lower()), None)


def fs_error(path: Path, exc: OSError, where: str | Path) -> StoreError:
    """A one-line StoreError for a file-system refusal to write in `where` on behalf of store `path`."""
    code = errno_of(exc)
    if code == errno.EROFS:
        return StoreError(f"{path}: cannot write in {where} (read-only file system); give a store path on a"
                          " writable file system (or remount it read-write)")
    if code in (errno.EACCES, errno.EPERM):
        return StoreError(f"{path}: no permission to write in {where}; give a store path in a directory you can"
                          " write to, or fix its permissions")
    if code in SPACE_ERRORS:
        return StoreError(f"{path}: {SPACE_ERRORS[code]} writing in {where}; free space there (or give a store"
                          " path on another file system) and run again")
    if code == errno.EISDIR:
        return StoreError(f"{path} is a directory; give a file path (e.g. {path / 'campaign.h5'})")
    reason = exc.strerror or str(exc)
    return StoreError(f"{path}: cannot write in {where} ({reason}); check the path and its file system")


# -- names planted beside the store ----------------------------------------------------------

def abandon(f) -> None:
    """Point an open HDF5 file's descriptor at an in-memory copy of it, so HDF5 can finish closing it when the
    disk refuses its writes (an I/O error at every few writes).

    HDF5 could neither flush nor close such a file, and freeing its objects afterwards (or HDF5's own clean-up
    at exit) crashed the process with a segmentation fault after the store's one-line error. The file on disk
    keeps what the last completed flush wrote; its writer's SWMR flags stay set, so the resume recovers it.
    """
    try:
        fd = f.id.get_vfd_handle()
    except (OSError, RuntimeError, ValueError):
        return
    copy = os.memfd_create("activemat-abandoned-store")
    try:
        try:
            size = os.fstat(fd).st_size
            done = 0
            while done < size:
                sent = os.sendfile(copy, fd, done, size - done)
                if not sent:
                    break
                done += sent
        except OSError:
            os.ftruncate(copy, 0)  # unreadable too: HDF5's last writes go nowhere all the same
        os.dup2(copy, fd)
    finally:
        os.close(copy)


def planted(store: Path, name: Path, st: os.stat_result, why: str) -> StoreError:
    """The one-line StoreError for something at ``name`` (beside the store) that activemat will not write."""
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name)
        except OSError:
            target = "?"
        what = f"is a symbolic link (to {target})"
    elif stat.S_ISDIR(st.st_mode):
        what = "is a directory"
    elif not stat.S_ISREG(st.st_mode):
        what = "is not a regular file"
    elif st.st_nlink > 1:
        what = f"has {st.st_nlink} hard links (other names of the same file)"
    else:
        what = f"belongs to uid {st.st_uid}, not you"
    return StoreError(f"{store}: {name} {what}; activemat {why} only a file it creates itself: remove {name} and"
                      " run again")


def clear_leftover(name: Path, store: Path) -> None:
    """Make room for a new file at ``name`` beside the (locked) store: remove a regular file a killed writer left
    there; refuse (StoreError naming it) a symbolic link, a directory or any other kind of file.

    Removing a name never changes the file behind it, so a hard link planted here loses its name only; the
    new file is then created with ``O_EXCL``, which also fails on a symbolic link planted meanwhile.
    """
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise planted(store, name, st, "writes")
    name.unlink()


def open_exclusive(name: Path, store: Path, mode: int = 0o644) -> int:
    """A new file at ``name`` (beside ``store``), created here and open for writing (a descriptor): never through
    a symbolic link, never over a file someone else made (:func:`clear_leftover` first)."""
    clear_leftover(name, store)
    try:
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise planted(store, name, os.lstat(name), "writes") from None


def open_lock_file(lock: Path, store: Path) -> int:
    """Open (or create) the store's lock file for writing: never through a symbolic link, and only a regular
    file of one name that belongs to this user (the lock file persists between runs, so it may exist)."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
        os.close(fd)
        raise planted(store, lock, st, "locks")
    return fd


def _lock_open_error(store: Path, lock: Path, exc: OSError) -> StoreError:
    """The one-line StoreError when the lock file cannot be opened: a planted link or directory, or the
    file system refusing."""
    if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
        try:
            return planted(store, lock, os.lstat(lock), "locks")
        except OSError:
            pass
    return fs_error(store, exc, lock.parent)


# -- locks ------------------------------------------------------------------------------------

_OFD = hasattr(fcntl, "F_OFD_SETLK")


def _flock_struct(kind: int) -> bytes:
    # struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}: the whole file
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _lock_inode(fd: int) -> bool:
    """Take the exclusive OFD lock on an open store file; False if another open file description holds it."""
    if not _OFD:
        return True  # no OFD locks on this platform: symlinks are still caught by the lock file
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return True  # a file system without byte-range locks: the lock file still keeps writers apart
        raise
    return True


def inode_locked(path: Path) -> bool:
    """True if some process holds the writer's lock on the file at `path` (however that process named it)."""
    if not _OFD:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK))
        return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK
    except OSError:
        return False
    finally:
        os.close(fd)


def lock_file_held(lock: Path) -> bool:
    """True while some process holds the exclusive flock on a store's lock file."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _holder(lock: Path) -> str:
    """Who holds a lock file, as its holder wrote it: 'pid 123 on host, opened as /path'."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            lines = os.read(fd, 4096).decode(errors="replace").splitlines()
        finally:
            os.close(fd)
    except OSError:
        return ""
    if len(lines) >= 3 and lines[0].strip().isdigit():
        return f"pid {lines[0].strip()} on {lines[1].strip()}, opened as {lines[2].strip()}"
    if lines and lines[0].strip().isdigit():
        return f"pid {lines[0].strip()}"
    return ""


def _holder_of_inode(real: Path, st: os.stat_result, own: Path) -> str:
    """The holder of the writer's lock on this inode, found through a lock file beside one of its other names
    (a hard link in the same directory); '' if none is found there. ``own`` is the lock file the asking writer
    holds itself (it names the asker, not the holder)."""
    try:
        locks = [lock for lock in real.parent.glob("*.lock") if lock != own]
    except OSError:
        return ""
    for lock in locks:
        other = lock.with_name(lock.name[: -len(".lock")])
        try:
            ost = other.stat()
        except OSError:
            continue
        if (ost.st_dev, ost.st_ino) == (st.st_dev, st.st_ino) and lock_file_held(lock):
            return _holder(lock)
    return ""


class WriterLock:
    """Both locks of the single writer of a store (see the module docstring). Release with :meth:`release`."""

    def __init__(self, path: Path):
        self.path = path  # as given (for messages)
        self.real = real_path(path)
        self.lock = lock_path(self.real)
        self._lock_fd: int | None = None
        self._file_fd: int | None = None

    def _name(self) -> str:
        shown = Path(os.path.abspath(self.path))
        return f"{self.path}" if shown == self.real else f"{self.path} (the file {self.real})"

    @classmethod
    def acquire(cls, path: Path) -> WriterLock:
        """Lock the store at `path` for writing (the file need not exist yet).

        Raises
        ------
        StoreLocked
            Another live writer holds the store, under this or any other name.
        StoreError
            A directory; or a location where the lock file cannot be written (read-only, no permission,
            no space).
        """
        self = cls(path)
        if self.real.is_dir():
            raise StoreError(f"{path} is a directory; give a file path (e.g. {path / 'campaign.h5'})")
        try:
            self.real.parent.mkdir(parents=True, exist_ok=True)  # a store in a new directory creates it
        except OSError as exc:
            raise fs_error(path, exc, exc.filename or self.real.parent) from None
        try:
            fd = open_lock_file(self.lock, path)
        except OSError as exc:
            raise _lock_open_error(path, self.lock, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self.lock)
            os.close(fd)
            raise StoreLocked(f"{self._name()} is in use by another running campaign"
                              f"{f' ({holder})' if holder else ''}; wait for it or stop it first") from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"{path}: cannot lock {self.lock} ({exc.strerror}); give a store path on a file"
                             " system with file locks") from None
        self._lock_fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n{socket.gethostname()}\n{os.path.abspath(path)}\n".encode())
        except OSError:
            pass  # who holds it is only for messages; a full disk is reported by what the writer does next
        try:
            if self.real.exists():
                self.lock_file_of(self.real)
        except BaseException:
            self.release()
            raise
        return self

    def lock_file_of(self, real: Path) -> None:
        """Take the inode lock of the existing store file (refused if a writer holds it under another name)."""
        for _ in range(5):
            try:
                fd = os.open(real, os.O_RDWR | os.O_NOFOLLOW)
            except FileNotFoundError:
                return  # gone (nothing to lock): whoever writes it next locks the new file
            except OSError as exc:
                if errno_of(exc) in (errno.EACCES, errno.EPERM):
                    raise StoreError(f"{self.path} cannot be opened for writing (permission denied); check its"
                                     " permissions") from None
                raise fs_error(self.path, exc, real.parent) from None
            st = os.fstat(fd)
            if not _lock_inode(fd):
                os.close(fd)
                holder = _holder_of_inode(real, st, self.lock) or "under another name: a hard link to the same file"
                raise StoreLocked(f"{self._name()} is in use by another running campaign ({holder});"
                                  " wait for it or stop it first")
            try:
                now = os.stat(real)
            except OSError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                self._set_file_fd(fd)
                return
            os.close(fd)  # replaced between the open and the lock (not by an activemat writer): again
        raise StoreLocked(f"{self._name()} keeps being replaced by something else; stop it first")

    def _set_file_fd(self, fd: int) -> None:
        if self._file_fd is not None:
            os.close(self._file_fd)  # the old inode: no longer the store
        self._file_fd = fd

    @property
    def links(self) -> int:
        """Hard links of the locked store file."""
        return os.fstat(self._file_fd).st_nlink if self._file_fd is not None else 1

    def swap_in(self, tmp: Path, inode: tuple[int, int] | None = None) -> None:
        """Replace the store file by the complete file `tmp` (beside it), atomically, locking it first.

        The new inode is locked before its rename makes it the store, so a writer reaching the store
        under any name finds it locked; the lock file (on the real path) never changes. ``inode``
        (device, inode) is the file the caller wrote: anything else at `tmp` by now is refused.
        """
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise planted(self.path, tmp, os.lstat(tmp), "swaps in") from None
            raise
        try:
            st = os.fstat(fd)
            if inode is not None and (st.st_dev, st.st_ino) != inode:
                raise StoreError(f"{self.path}: {tmp} was replaced while the store was written there; remove it"
                                 " and run again (the store is unchanged)")
            if not _lock_inode(fd):
                raise StoreLocked(f"{tmp} is locked by another process; remove it and run again")
            os.fsync(fd)
            os.replace(tmp, self.real)
        except BaseException:
            os.close(fd)
            raise
        self._set_file_fd(fd)
        try:  # make the rename itself durable
            dfd = os.open(self.real.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    def release(self) -> None:
        for name in ("_file_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)


def writer_running(path: str | Path) -> bool:
    """True while a campaign driver holds the store at `path`, under this name or any other."""
    real = real_path(path)
    return lock_file_held(lock_path(real)) or inode_locked(real)
