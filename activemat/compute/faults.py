"""Infrastructure faults apart from calculation failures.

A calculation that fails (an SCF that does not converge, an unstable
relaxation) is the candidate's: it is retried with the preset's fallback
settings and, after ``[faults] max_attempts``, given up. A disk that is full,
read-only or failing under the scratch folder, or a worker host whose GPAW
finds no PAW setups (no gpaw-data there, ``GPAW_SETUP_PATH`` pointing at an
empty folder), is not the candidate's: every calculation would fail the same way, so burning attempts on it gives up good
candidates for nothing (a full scratch disk once failed 314 attempts in
150 s and gave up 30 candidates). Such an attempt's record carries an error
starting with :data:`INFRASTRUCTURE`; the campaign loop counts it against no
candidate, stops submitting, and names the fault and its fix in one line; the
next run retries the attempts it cost.

>>> import errno
>>> infrastructure_fault(OSError(errno.ENOSPC, "No space left on device", "/scratch/c1/gpaw.txt"))
'infrastructure fault: no space left on device (errno 28) writing /scratch/c1/gpaw.txt; free space there'
>>> infrastructure_fault(ValueError("SCF did not converge")) is None
True

A worker lost with its node is the infrastructure's too, but the loop sees it
from outside the task (:mod:`activemat.campaign.ledger`: it never gives a
candidate up; :mod:`activemat.campaign.loop`: a cluster left without workers
stops the run with one line).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import traceback
from pathlib import Path

#: Prefix of ``CalculationRecord.error`` for an attempt stopped by its surroundings, not by the calculation.
INFRASTRUCTURE = "infrastructure fault"

#: errno -> (what it means, what to do about it). Not ENOTCONN or ECONNRESET: Dask's own lost connections raise
#: those, and a lost worker is retried as such (:mod:`activemat.campaign.ledger`).
FAULTS = {
    errno.ENOSPC: ("no space left on device", "free space there"),
    errno.EDQUOT: ("disk quota exceeded", "free space there or raise the quota"),
    errno.EIO: ("input/output error", "check the disk (dmesg) or move the scratch folder"),
    errno.EROFS: ("read-only file system", "remount it read-write or move the scratch folder"),
    errno.EACCES: ("permission denied", "fix the folder's permissions or move the scratch folder"),
    errno.EPERM: ("operation not permitted", "fix the folder's permissions or move the scratch folder"),
    errno.ESTALE: ("stale file handle", "check the network file system"),
}


#: GPAW's words when a PAW setup (or basis) file is in none of its setup paths (gpaw.setup_data.search_for_file).
GPAW_MISSING = re.compile(r'Could not find required (?:PAW dataset|basis set) file "([^"]+)"'
                          r"|Could not find pseudopotential file (\S+)")


class SetupMissing(FileNotFoundError):
    """GPAW has no PAW setup ``setup`` (``<symbol>.<xc>``) in its setup paths on this host."""

    def __init__(self, setup: str):
        super().__init__(f"GPAW has no PAW setup {setup} in its setup paths")
        self.setup = setup


def setup_fault(setup: str) -> str:
    """The one-line fault of a worker host whose GPAW cannot find the PAW setup ``setup``."""
    try:
        from gpaw import setup_paths

        paths = os.pathsep.join(str(p) for p in setup_paths) or "none"
    except ImportError:
        paths = "no GPAW"
    return (f"{INFRASTRUCTURE}: no PAW setup {setup} on host {socket.gethostname()} (GPAW's setup paths: {paths});"
            " install gpaw-data there or set GPAW_SETUP_PATH to the folder of the setups")


def _chain(exc: BaseException):
    """``exc`` and the exceptions it was raised from or while handling, innermost last."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def infrastructure_fault(exc: BaseException, where: str | Path | None = None) -> str | None:
    """The one-line error of an infrastructure fault if ``exc`` (or an exception it came from) is one, else None.

    An :class:`OSError` whose errno says the file system refused (:data:`FAULTS`) is one, wherever it was
    raised: GPAW writing its log, a relaxation writing its trajectory, the task writing ``error.txt``. The
    error names the file, or ``where`` (the attempt's scratch folder) when the OSError names none (a failed
    ``write`` does not). A PAW setup GPAW cannot find (:class:`SetupMissing`, or GPAW's own
    ``FileNotFoundError``) is one too, naming the host and GPAW's setup paths there.
    """
    for link in _chain(exc):
        if isinstance(link, SetupMissing):
            return setup_fault(link.setup)
        missing = GPAW_MISSING.search(str(link)) if isinstance(link, OSError) else None
        if missing:
            return setup_fault(missing.group(1) or missing.group(2))
        if isinstance(link, OSError) and link.errno in FAULTS:
            what, fix = FAULTS[link.errno]
            place = f" writing {link.filename}" if link.filename else (f" in {where}" if where else "")
            return f"{INFRASTRUCTURE}: {what} (errno {link.errno}){place}; {fix}"
    return None


def is_infrastructure(error: str) -> bool:
    """Whether a stored or recorded error is an infrastructure fault (not the calculation's failure)."""
    return error.startswith(INFRASTRUCTURE)


def record_failure(record, exc: BaseException, folder: Path) -> None:
    """Fill a failed attempt's record from ``exc``: its reason, its kept scratch folder and ``error.txt``.

    Writing ``error.txt`` may itself fail (the scratch disk that broke the calculation is full): that makes
    the attempt an infrastructure fault rather than an exception escaping the task, which the loop would book
    as a lost worker.
    """
    record.status = "failed"
    record.error = (infrastructure_fault(exc, folder) or f"{type(exc).__name__}: {exc}").splitlines()[0][:400]
    record.scratch = str(folder)
    try:
        (folder / "error.txt").write_text("".join(traceback.format_exception(exc)))
    except OSError as err:
        fault = infrastructure_fault(err, folder)
        if fault is not None and not is_infrastructure(record.error):
            record.error = f"{fault} (after {record.error})"[:400]
