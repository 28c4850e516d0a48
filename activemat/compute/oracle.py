"""ReplayOracle: a stand-in for DFT that answers from a table of known gaps.

For the loop logic only (tests, replay benchmarks): it has the band-gap
task's signature and returns the same records, so the campaign loop cannot
tell the difference; no physics happens here.
"""

from __future__ import annotations

import socket
import time

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
    """

    def __init__(self, gaps: dict[int, float], delay: float = 0.0, fail_attempts: dict[int, int] | None = None,
                 hang_attempts: dict[int, int] | None = None, hang_seconds: float = 3600.0,
                 raise_attempts: dict[int, int] | None = None, preset_gaps: dict[str, dict[int, float]] | None = None):
        self.gaps = dict(gaps)
        self.preset_gaps = dict(preset_gaps or {})
        self.delay = delay
        self.fail_attempts = dict(fail_attempts or {})
        self.hang_attempts = dict(hang_attempts or {})
        self.hang_seconds = hang_seconds
        self.raise_attempts = dict(raise_attempts or {})

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
        gaps = self.preset_gaps.get(preset.name, self.gaps)
        if candidate not in gaps or attempt < self.fail_attempts.get(candidate, 0):
            record.status, record.error = "failed", f"replay oracle has no answer for candidate {candidate}"
        else:
            record.gap = float(gaps[candidate])
        record.finished = time.time()
        return record
