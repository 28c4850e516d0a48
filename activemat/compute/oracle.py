"""ReplayOracle: a stand-in for DFT that answers from a table of known gaps.

For the loop logic only (tests, replay benchmarks): it has the band-gap
task's signature and returns the same records, so the campaign loop cannot
tell the difference; no physics happens here.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from activemat.compute.faults import record_failure
from activemat.compute.records import CalculationRecord


class ReplayOracle:
    """Callable (candidate, attempt, atoms, preset, scratch) -> CalculationRecord.

    Parameters
    ----------
    gaps : candidate index -> gap (eV); a missing candidate is a failed calculation.
    preset_gaps : preset name -> its own candidate -> gap table (multi-fidelity); presets not listed
        answer from ``gaps``.
    delay : seconds each answer takes (to exercise asynchronous dispatch).
    fail_attempts : candidate -> number of first attempts that fail.
    hang_attempts : candidate -> number of first attempts that take `hang_seconds`.
    raise_attempts : candidate -> number of first attempts that raise instead of
        returning a record, as a task does when its worker process dies.
    scratch_bytes : bytes each attempt writes into its scratch folder (``gpaw.txt``), removed on success as the
        band-gap task removes its own: a full scratch disk then fails the attempt as an infrastructure fault
        (:mod:`activemat.compute.faults`), as it fails GPAW.
    """

    def __init__(self, gaps: dict[int, float], delay: float = 0.0, fail_attempts: dict[int, int] | None = None,
                 hang_attempts: dict[int, int] | None = None, hang_seconds: float = 3600.0,
                 raise_attempts: dict[int, int] | None = None, preset_gaps: dict[str, dict[int, float]] | None = None,
                 scratch_bytes: int = 0):
        self.gaps = dict(gaps)
        self.preset_gaps = dict(preset_gaps or {})
        self.delay = delay
        self.fail_attempts = dict(fail_attempts or {})
        self.hang_attempts = dict(hang_attempts or {})
        self.hang_seconds = hang_seconds
        self.raise_attempts = dict(raise_attempts or {})
        self.scratch_bytes = scratch_bytes

    def __call__(self, candidate, attempt, atoms, preset, scratch_root) -> CalculationRecord:
        started = time.time()
        if attempt < self.raise_attempts.get(candidate, 0):
            raise RuntimeError(f"replay oracle: candidate {candidate} attempt {attempt} lost")
        hang = attempt < self.hang_attempts.get(candidate, 0)
        if self.delay or hang:
            time.sleep(self.hang_seconds if hang else self.delay)
        record = CalculationRecord(candidate=candidate, attempt=attempt, preset=preset.name, status="ok",
                                   host=socket.gethostname(), worker="replay", started=started,
                                   versions="replay oracle")
        folder = Path(scratch_root) / f"cand{candidate:06d}-try{attempt}"
        if self.scratch_bytes:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "gpaw.txt").write_bytes(b"replay\n" * (self.scratch_bytes // 7 + 1))
            except OSError as exc:
                record_failure(record, exc, folder)
                record.finished = time.time()
                return record
        gaps = self.preset_gaps.get(preset.name, self.gaps)
        if candidate not in gaps or attempt < self.fail_attempts.get(candidate, 0):
            record.status, record.error = "failed", f"replay oracle has no answer for candidate {candidate}"
        else:
            record.gap = float(gaps[candidate])
        record.finished = time.time()
        if self.scratch_bytes and record.ok:
            shutil.rmtree(folder, ignore_errors=True)
        return record


_TABLES: dict[str, dict] = {}  # path -> table, once per worker process


def _table(path: str) -> dict:
    if path not in _TABLES:
        import numpy as np

        with np.load(path) as data:
            _TABLES[path] = {name: data[name] for name in data.files}
    return _TABLES[path]


class TableOracle:
    """A ReplayOracle for large pools: gaps and durations in an ``.npz`` file, read once per worker process.

    It pickles as its path (a 10^5-entry table would otherwise travel with every task), so the file must be
    readable where the workers run. For simulated clusters (benchmarks/simcluster.py): each answer takes the
    candidate's ``seconds`` times ``time_scale``, asleep (a sleeping worker thread costs no CPU).

    Parameters
    ----------
    path : ``.npz`` with arrays ``gap`` (eV; NaN: a failed calculation) and ``seconds``, indexed by candidate.
    time_scale : factor on every duration.
    """

    def __init__(self, path: str, time_scale: float = 1.0):
        self.path, self.time_scale = str(path), time_scale

    def __call__(self, candidate, attempt, atoms, preset, scratch_root) -> CalculationRecord:
        started = time.time()
        table = _table(self.path)
        time.sleep(float(table["seconds"][candidate]) * self.time_scale)
        gap = float(table["gap"][candidate])
        record = CalculationRecord(candidate=candidate, attempt=attempt, preset=preset.name, status="ok",
                                   host=socket.gethostname(), worker="replay", started=started,
                                   versions="table oracle")
        if gap != gap:  # NaN
            record.status, record.error = "failed", f"table oracle has no answer for candidate {candidate}"
        else:
            record.gap = gap
        record.finished = time.time()
        return record
