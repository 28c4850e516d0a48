"""What every attempt came to, and what to run again: the retry, fallback and lost-worker policy.

A calculation is named by a :class:`TaskKey`, a (fidelity, candidate) pair:
fidelities run cheap to accurate and the last is the campaign's own preset,
so a single-fidelity campaign has one level, 0.

Policy:

- a calculation that itself failed is retried with the preset's next
  fallback settings, until ``[faults] max_attempts`` such failures;
- an attempt lost with its worker (a dead node, walltime, lifetime
  retirement), or stopped by a time limit, is retried as it was. Losing a
  worker is the infrastructure's fault, so it never gives a candidate up:
  a task lost :data:`MAX_LOST` times in one run (a node failing over and
  over, or a calculation that takes its worker down) is held until the next
  run, counted to retry;
- an attempt stopped by an infrastructure fault (a full, read-only or failing
  scratch disk: :mod:`activemat.compute.faults`) counts against nothing: it
  is retried as it was, with no limit (the loop stops submitting on the
  first one, so a fault that persists cannot burn attempts);
- on resume, an interrupted attempt runs again; with ``retry_failed`` a
  given-up candidate gets a fresh allowance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from activemat.compute.faults import is_infrastructure
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.store import schema as S

MAX_LOST = 10  # attempts of a task lost with their worker in one run before it is held until the next run
#: What the loop says of a task it holds (lost MAX_LOST times in one run).
HELD = (f"lost its worker {MAX_LOST} times in this run (a failing node, or a calculation that takes its worker down:"
        " see the store's .dask.log); held until the next run, not given up")
RETRY, TEST = "retry", "test"  # reasons the loop writes itself (a strategy's picks carry the strategy's name)


class TaskKey(NamedTuple):
    """One calculation the campaign wants: a candidate at a fidelity level (0 = the cheapest)."""

    fidelity: int
    candidate: int


@dataclass
class Ledger:
    """Outcomes of every attempt, by task.

    Parameters
    ----------
    test : bool mask of held-out candidates (computed, never trained on).
    levels : number of fidelities.
    max_attempts : calculation failures before a task is given up.
    """

    test: np.ndarray
    levels: int
    max_attempts: int
    trained: dict[TaskKey, float] = field(default_factory=dict)  # successful training results, eV
    tested: dict[TaskKey, float] = field(default_factory=dict)  # held-out results, never trained on
    failed: set[TaskKey] = field(default_factory=set)  # given up on
    retry: list[TaskKey] = field(default_factory=list)  # to submit again, before new picks
    attempts: dict[TaskKey, int] = field(default_factory=dict)
    fallback: dict[TaskKey, int] = field(default_factory=dict)  # calculation failures = next fallback level
    lost: dict[TaskKey, int] = field(default_factory=dict)  # attempts lost with their worker
    lost_now: dict[TaskKey, int] = field(default_factory=dict)  # of them, in this run
    held: set[TaskKey] = field(default_factory=set)  # lost MAX_LOST times in this run: tried again by the next
    faults: dict[TaskKey, int] = field(default_factory=dict)  # attempts stopped by an infrastructure fault
    forgiven: dict[TaskKey, int] = field(default_factory=dict)  # failures before retry_failed gave a fresh allowance
    wall_times: dict[int, list[float]] = field(default_factory=dict)  # per fidelity, of successful results

    def __post_init__(self):
        self.wall_times = {f: [] for f in range(self.levels)}

    @property
    def top(self) -> int:
        return self.levels - 1

    def load(self, calculations: dict[str, np.ndarray], presets: list[str], *, retry_failed: bool,
             source: str = "the store") -> None:
        """Rebuild the ledger from a store's calculation rows and queue what must run again.

        ``presets`` names the fidelities cheap to accurate; a row of any other preset is refused (InputError
        naming ``source``).
        """
        level = {name: i for i, name in enumerate(presets)}

        def fidelity_of(preset: str) -> int:
            if preset not in level:
                raise InputError(f"{source}: holds calculations with preset {preset!r}, which the campaign does not "
                                 "declare in [calculator]; declare it there or use a new store path")
            return level[preset]

        calc = calculations
        last: dict[TaskKey, str] = {}  # status of each task's latest attempt
        done: dict[TaskKey, float] = {}
        for cand, preset, status, attempt, error, gap, wall in zip(
                calc["candidate"], calc["preset"], calc["status"], calc["attempt"], calc["error"], calc["gap"],
                calc["finished"] - calc["started"]):
            key = TaskKey(fidelity_of(preset), int(cand))
            self.attempts[key] = max(self.attempts.get(key, 0), int(attempt) + 1)
            last[key] = S.INTERRUPTED if status == S.RUNNING else status
            if status == S.FAILED:
                self._count_failure(key, error)
            elif status == S.OK:
                done[key] = float(gap)
                self.wall_times[key.fidelity].append(float(wall))
        self.trained = {k: g for k, g in done.items() if not self.test[k.candidate]}
        self.tested = {k: g for k, g in done.items() if self.test[k.candidate]}
        for key, status in last.items():
            if key in done:
                continue
            if status == S.INTERRUPTED:
                self.retry.append(key)
            elif retry_failed:
                self.forgiven[key] = self.fallback.get(key, 0)  # a fresh allowance of attempts
                self.retry.append(key)
            elif self.given_up(key):
                self.failed.add(key)
            else:
                self.retry.append(key)  # the previous driver stopped before retrying it
        # held-out candidates go first (at the campaign's fidelity): the test error is then reported from the start
        held = [TaskKey(self.top, int(c)) for c in np.flatnonzero(self.test)]
        self.retry = [k for k in held if k not in done and k not in self.retry] + self.retry

    def requeue(self, keys: list[TaskKey]) -> int:
        """Queue cancelled calculations again (their rows say interrupted), so the closing line and run --json
        count them to retry as status does; how many."""
        self.retry += [k for k in keys if k not in self.retry]
        return len(keys)

    def next_attempt(self, key: TaskKey) -> tuple[int, int]:
        """Number of the attempt about to start, and the fallback settings level it runs with."""
        attempt = self.attempts.get(key, 0)
        self.attempts[key] = attempt + 1
        return attempt, self.fallback.get(key, 0)

    def record(self, key: TaskKey, record: CalculationRecord) -> None:
        """Take a finished attempt: keep its gap, or queue it again, or give it up."""
        if record.ok:
            (self.tested if self.test[key.candidate] else self.trained)[key] = record.gap
            self.wall_times[key.fidelity].append(record.wall_time)
            return
        self._count_failure(key, record.error)
        if record.error.startswith(S.LOST):
            self.lost_now[key] = self.lost_now.get(key, 0) + 1
            if self.lost_now[key] >= MAX_LOST:
                self.held.add(key)
                return
        (self.failed.add if self.given_up(key) else self.retry.append)(key)

    def _count_failure(self, key: TaskKey, error: str) -> None:
        if is_infrastructure(error):  # the disk's fault, not the candidate's: counts against no allowance
            self.faults[key] = self.faults.get(key, 0) + 1
        elif error.startswith(S.LOST):  # not the calculation's fault: same settings next time
            self.lost[key] = self.lost.get(key, 0) + 1
        else:  # the calculation itself failed: the preset's next fallback settings
            self.fallback[key] = self.fallback.get(key, 0) + 1

    def given_up(self, key: TaskKey) -> bool:
        """Whether the task's own calculation failed ``max_attempts`` times (lost workers and infrastructure faults
        never count)."""
        return self.fallback.get(key, 0) - self.forgiven.get(key, 0) >= self.max_attempts

    def busy(self, running: list[TaskKey]) -> np.ndarray:
        """(levels, candidates) bool: not to pick: done, given up, queued, held, running, or held out (at every
        level)."""
        busy = np.zeros((self.levels, len(self.test)), bool)
        for keys in (self.trained, self.failed, self.retry, self.held, running):
            for k in keys:
                busy[k] = True
        return busy | self.test

    def training_set(self, fidelity: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates and gaps (eV) of every successful training calculation at a fidelity."""
        keys = [k for k in self.trained if k.fidelity == fidelity]
        return np.array([k.candidate for k in keys], int), np.array([self.trained[k] for k in keys], float)

    def counts(self) -> dict[str, int]:
        """The attempt figures ``run`` and ``status`` both report (one definition, from this ledger).

        - ``failed``: failed attempts (rows with status failed), whatever came after them;
        - ``retried``: attempts after a task's first;
        - ``given_up``: tasks with no result that the retry policy stopped trying;
        - ``to_retry``: tasks with no result whose last attempt failed or was interrupted (a resumed run
          tries them again), held ones included.
        """
        return {"failed": sum(self.fallback.values()) + sum(self.lost.values()) + sum(self.faults.values()),
                "retried": sum(max(n - 1, 0) for n in self.attempts.values()),
                "given_up": len(self.failed),
                "to_retry": len({k for k in self.retry if self.attempts.get(k)} | self.held)}

    def completed(self, fidelity: int) -> int:
        return sum(k.fidelity == fidelity for k in self.trained)

    def expected_duration(self, fidelity: int, declared: float | None) -> float | None:
        """Seconds a calculation at a fidelity may take, erring long: the 90th percentile of the measured wall
        times once 3 are done, the longest before, else ``declared`` (None: unknown)."""
        walls = self.wall_times[fidelity]
        if len(walls) >= 3:
            return float(np.percentile(walls, 90))
        return float(max(walls)) if walls else declared

    def cost(self, fidelity: int, declared: float) -> float:
        """CPU-seconds per calculation: the median measured wall time once 3 are done, else ``declared``."""
        walls = self.wall_times[fidelity]
        return float(np.median(walls)) if len(walls) >= 3 else declared
