"""The campaign loop: keep every worker busy, learn from each result as it lands.

Steps, each checkpointed in the store before the next:
  1. open   : create or reopen the store; rows a killed driver left running are
              marked interrupted and their candidates submitted again
  2. submit : fill every free worker slot (retries first, then new picks);
              the row is written as running before the task is sent
  3. collect: as any calculation completes, write its record and flush; a
              failed one is retried (with the preset's fallback settings after
              a calculation failure) until [faults] max_attempts such failures;
              attempts lost with their worker (node failure, walltime, lifetime
              retirement) are retried as they were, up to MAX_LOST times
  4. learn  : refit the model on all successful results, snapshot predictions
  5. select : pick for the freed slot; picks made while others run treat the
              running ones as already known at their predicted mean
              ("kriging believer"), so they are neither repeated nor crowded
  6. stop   : budget reached, max posterior std below target, pool exhausted,
              or SIGTERM/SIGINT (wait for or cancel running work, exit cleanly)
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import schema as S
from .bandgap import compute_gap
from .config import CampaignConfig
from .errors import InputError
from .model import cross_validate, make_model
from .presets import Preset, load_preset
from .records import CalculationRecord
from .space import CandidatePool, build_pool, parse_formula
from .store import CampaignStore, read_store
from .strategies import representative, select_next

POLL_SECONDS = 0.5
MAX_LOST = 10  # attempts per candidate lost with their worker before it is given up
STARTED_TOPIC = "activemat-started"


def build_campaign_pool(config: CampaignConfig) -> CandidatePool:
    sp = config.space
    return build_pool(elements=sp.elements, supercell=sp.supercell, mode=sp.mode,
                      samples_per_composition=sp.samples_per_composition, seed=config.campaign.seed)


def prepare(config: CampaignConfig) -> tuple[CandidatePool, Preset, list[int]]:
    """Everything that can fail on bad input, done before any store is touched."""
    preset = load_preset(config.calculator.preset)
    pool = build_campaign_pool(config)
    fixed = [representative(pool, parse_formula(f, pool.elements, pool.n_sites)) for f in config.strategy.fixed]
    return pool, preset, fixed


def announced(task, candidate, attempt, *args):
    """Run a task after telling the driver it started (for time limits), from inside a Dask worker."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(STARTED_TOPIC, {"candidate": candidate, "attempt": attempt, "worker": worker.address,
                                     "time": time.time()})
    return task(candidate, attempt, *args)


@dataclass
class _Pending:
    row: int
    candidate: int
    attempt: int
    fallback: int
    scratch: str
    started: float | None = None
    worker: str = ""


class StopRequested:
    """Set by SIGTERM/SIGINT; checked by the loop between steps (never interrupts a store write)."""

    def __init__(self):
        self.count = 0
        self.signal = ""
        self.announced = False

    def __call__(self, signum, frame):
        self.count += 1
        self.signal = signal.Signals(signum).name

    def __bool__(self):
        return self.count > 0


@contextmanager
def _stop_on_signals(flag: StopRequested):
    try:
        previous = {s: signal.signal(s, flag) for s in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: no signal handling
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class CampaignLoop:
    config: CampaignConfig
    pool: CandidatePool
    preset: Preset
    fixed: list[int]
    store: CampaignStore
    client: object
    report: object  # activemat.progress.Reporter
    task: object = compute_gap  # (candidate, attempt, atoms, preset, scratch) -> CalculationRecord
    trained: dict[int, float] = field(default_factory=dict)
    tested: dict[int, float] = field(default_factory=dict)  # held-out results, never trained on
    test: np.ndarray | None = None  # held-out candidates (bool mask)
    failed: set[int] = field(default_factory=set)  # given up on
    attempts: dict[int, int] = field(default_factory=dict)
    fallback: dict[int, int] = field(default_factory=dict)  # calculation failures = next fallback level
    lost: dict[int, int] = field(default_factory=dict)  # attempts lost with their worker
    forgiven: dict[int, int] = field(default_factory=dict)  # failures before retry_failed gave a fresh allowance
    retry: list[int] = field(default_factory=list)  # candidates to submit again, before new picks
    pending: dict = field(default_factory=dict)  # future -> _Pending
    iteration: int = 0
    model: object = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    max_std: float = float("inf")
    mean_std: float = float("inf")
    stop_reason: str = ""
    snapshot: dict = field(default_factory=dict)

    def __post_init__(self):
        from sklearn.preprocessing import StandardScaler

        self.rng = np.random.default_rng(self.config.campaign.seed)
        # Scale features by the whole pool (known before any label), so scaling never shifts as data arrives.
        self.scaler = StandardScaler().fit(self.pool.features)
        self.scratch = str(Path(self.config.campaign.scratch or f"{self.store.path}.scratch").resolve())
        self.stop = StopRequested()

    # -- state ----------------------------------------------------------------
    def load(self, data) -> None:
        """Restore in-memory state from the store and queue what must run again."""
        self.store.interrupt_running()  # rows a killed driver left running
        calc = data.calculations
        last: dict[int, str] = {}  # candidate -> status of its latest attempt
        for cand, status, attempt, error in zip(calc["candidate"], calc["status"], calc["attempt"], calc["error"]):
            cand = int(cand)
            self.attempts[cand] = max(self.attempts.get(cand, 0), int(attempt) + 1)
            last[cand] = S.INTERRUPTED if status == S.RUNNING else status
            if status == S.FAILED:
                self._count_failure(cand, error)
        self.test = data.candidates["test"].astype(bool)
        done = data.completed()
        self.trained = {c: g for c, g in done.items() if not self.test[c]}
        self.tested = {c: g for c, g in done.items() if self.test[c]}
        faults = self.config.faults
        for cand, status in last.items():
            if cand in done:
                continue
            if status == S.INTERRUPTED:
                self.retry.append(cand)
            elif faults.retry_failed:
                self.forgiven[cand] = self.fallback.get(cand, 0)  # a fresh allowance of attempts
                self.lost[cand] = 0
                self.retry.append(cand)
            elif self._given_up(cand):
                self.failed.add(cand)
            else:
                self.retry.append(cand)  # the previous driver stopped before retrying it
        self.iteration = len(data.snapshots.get("iteration", []))
        # held-out candidates go first: the test error is then reported from the start
        self.retry = [int(c) for c in np.flatnonzero(self.test) if c not in done and c not in self.retry] + self.retry

    def _count_failure(self, cand: int, error: str) -> None:
        if error.startswith(S.LOST):  # not the calculation's fault: same settings next time
            self.lost[cand] = self.lost.get(cand, 0) + 1
        else:  # the calculation itself failed: the preset's next fallback settings
            self.fallback[cand] = self.fallback.get(cand, 0) + 1

    def _given_up(self, cand: int) -> bool:
        failures = self.fallback.get(cand, 0) - self.forgiven.get(cand, 0)
        return failures >= self.config.faults.max_attempts or self.lost.get(cand, 0) >= MAX_LOST

    def _busy(self) -> np.ndarray:
        busy = np.zeros(len(self.pool), bool)
        idx = list(self.trained) + list(self.failed) + self.retry + [p.candidate for p in self.pending.values()]
        busy[idx] = True
        return busy | self.test

    # -- steps ----------------------------------------------------------------
    def submit(self, candidate: int, reason: str, score: float = float("nan")) -> None:
        attempt = self.attempts.get(candidate, 0)
        level = self.fallback.get(candidate, 0)
        self.attempts[candidate] = attempt + 1
        row = self.store.add_attempt(candidate, attempt, self.preset.name, self.iteration, reason, score)
        preset = self.preset.with_fallback(level)
        args = (candidate, attempt, self.pool.atoms(candidate), preset, self.scratch)
        key = f"gap-c{candidate}-a{attempt}-{time.time_ns()}"
        if self.config.faults.time_limit:
            future = self.client.submit(announced, self.task, *args, pure=False, key=key)
        else:
            future = self.client.submit(self.task, *args, pure=False, key=key)
        scratch = str(Path(self.scratch) / f"cand{candidate:06d}-try{attempt}")
        self.pending[future] = _Pending(row, candidate, attempt, level, scratch)
        self.report.submitted(candidate, self.pool.formula(candidate), reason)

    def _failure_record(self, job: _Pending, error: str) -> CalculationRecord:
        now = time.time()
        return CalculationRecord(candidate=job.candidate, attempt=job.attempt, preset=self.preset.name,
                                 status=S.FAILED, started=job.started or now, finished=now, worker=job.worker,
                                 error=error.splitlines()[0][:400], fallback=job.fallback, scratch=job.scratch)

    def collect(self, future) -> None:
        job = self.pending.pop(future)
        try:
            record = future.result()
            record.fallback = job.fallback
        except Exception as exc:  # the worker died or the task could not run: record it, keep going
            record = self._failure_record(job, f"{S.LOST}: {type(exc).__name__}: {exc}")
        self.finish(job, record)

    def finish(self, job: _Pending, record: CalculationRecord) -> None:
        self.store.finish_attempt(job.row, record)
        cand = record.candidate
        if record.ok:
            (self.tested if self.test[cand] else self.trained)[cand] = record.gap
        else:
            self._count_failure(cand, record.error)
            (self.failed.add if self._given_up(cand) else self.retry.append)(cand)
        self.learn()
        self.report.finished(record, self.pool.formula(cand), self.snapshot)

    def enforce_time_limit(self) -> None:
        """Cancel calculations running past [faults] time_limit and restart their workers."""
        limit = self.config.faults.time_limit
        if not limit or not self.pending:
            return
        by_job = {(p.candidate, p.attempt): p for p in self.pending.values()}
        for _, event in self.client.get_events(STARTED_TOPIC):
            job = by_job.get((event["candidate"], event["attempt"]))
            if job and job.started is None:
                job.started, job.worker = event["time"], event["worker"]
        now = time.time()
        for future, job in list(self.pending.items()):
            if job.started is not None and now - job.started > limit:
                self.pending.pop(future)
                self.client.cancel(future)
                # The worker's thread cannot be interrupted: restart its process to free the slot.
                self.client.restart_workers([job.worker], raise_for_error=False)
                self.finish(job, self._failure_record(job, f"{S.TIMEOUT}: still running after {limit:g} s"))

    def learn(self) -> None:
        """Refit and snapshot the model, its cross-validation and its predictions over the pool."""
        self.snapshot = {}
        if not self._fit():
            return
        X, y = self._training_set()
        self.snapshot = {"iteration": self.iteration, "time": time.time(), "n_train": len(y),
                         "max_std": self.max_std, "mean_std": self.mean_std,
                         "model": self.model.describe(), **cross_validate(self.model, X, y)}
        if self.tested:
            held = np.fromiter(self.tested, int)
            self.snapshot["test_mae"] = float(np.mean(np.abs(self.mean[held] - np.fromiter(self.tested.values(), float))))
        self.store.add_snapshot(self.snapshot, self.mean.astype("f4"), self.std.astype("f4"))
        self.iteration += 1

    def _fit(self) -> bool:
        """Refit on every successful result; False while there are too few."""
        if len(self.trained) < 2:
            return False
        m = self.config.model
        self.model = make_model(m.kind, m.ard, m.restarts, self.config.campaign.seed, self.scaler).fit(
            *self._training_set())
        self.mean, self.std = self.model.predict(self.pool.features, return_std=True)
        free = ~self._busy()
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        self.mean_std = float(self.std[free].mean()) if free.any() else 0.0
        return True

    def _training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and gaps of every successful training calculation (held-out ones excluded)."""
        return self.pool.features[np.fromiter(self.trained, int)], np.fromiter(self.trained.values(), float)

    def select(self) -> tuple[int, str, float] | None:
        """Next candidate, why, and its acquisition score; None when nothing is left to pick."""
        X_train, y_train = self._training_set()
        running = [p.candidate for p in self.pending.values()]
        pick, reason = select_next(
            self.pool, self.config.strategy, ~self._busy(),
            n_started=len(self.trained) + len(self.pending) + len(self.failed), fixed=self.fixed,
            model=self.model, X_train=X_train, y_train=y_train,
            X_running=self.pool.features[running],
            predictions=(self.mean, self.std) if self.model is not None else None,
            rng=self.rng, max_std=self.max_std, target_std=self.config.stop.target_std)
        if pick is None:
            self.stop_reason = reason
        return pick

    def fill(self) -> None:
        """Submit retries, then picks, until every worker slot (plus prefetch) is taken or a stop condition holds."""
        from .cluster import worker_slots

        if self.stop:
            return
        slots = worker_slots(self.client) + self.config.cluster.prefetch
        while len(self.pending) < slots:
            if self.retry and self.test[self.retry[0]]:
                self.submit(self.retry.pop(0), "test")  # held out: outside the budget
                continue
            training_pending = sum(not self.test[p.candidate] for p in self.pending.values())
            if len(self.trained) + training_pending >= self.config.stop.budget:
                self.stop_reason = self.stop_reason or "budget reached"
                return
            if self.retry:
                self.submit(self.retry.pop(0), "retry")
                continue
            pick = self.select()
            if pick is None:
                return
            self.submit(*pick)

    def run(self) -> None:
        from distributed import wait

        self._fit()  # on resume, the model is rebuilt from stored results before the first pick
        with _stop_on_signals(self.stop):
            self.fill()
            while self.pending:
                try:
                    done, _ = wait(list(self.pending), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = []
                for future in done:
                    self.collect(future)
                self.enforce_time_limit()
                if self.stop:
                    self._stopping()
                self.fill()
        if self.stop:
            self.stop_reason = f"stopped by {self.stop.signal}"
        self.stop_reason = self.stop_reason or "budget reached"

    def _stopping(self) -> None:
        """On a stop signal: cancel running work (on_stop = cancel, or a second signal) or let it finish."""
        if self.config.faults.on_stop == "wait" and self.stop.count == 1:
            if not self.stop.announced:
                self.report.log(f"{self.stop.signal}: waiting for {len(self.pending)} running calculation(s);"
                                " signal again to cancel them")
                self.stop.announced = True
            return
        rows = [job.row for job in self.pending.values()]
        self.client.cancel(list(self.pending))
        self.store.mark_interrupted(rows)
        self.report.log(f"{self.stop.signal}: cancelled {len(rows)} running calculation(s); they rerun on resume")
        self.pending.clear()


def run_campaign(config: CampaignConfig, campaign_text: str, *, client=None, report=None, task=compute_gap) -> dict:
    """Run (or resume) a campaign to its stop condition; return a summary dict.

    `client` reuses an existing dask Client instead of starting the [cluster];
    `task` replaces the GPAW task (e.g. a ReplayOracle in loop tests).
    """
    import dask
    import distributed  # noqa: F401  (loads its config defaults before dask.config.set below, which
    # would otherwise delete the whole "distributed" config subtree when it exits)

    from .cluster import connect
    from .progress import Reporter

    from .cluster import task_for

    pool, preset, fixed = prepare(config)
    task = task_for(config.cluster, task)  # MPI per calculation when [cluster] mpi_ranks > 1; refused if unavailable
    path = Path(config.campaign.store)
    if path.exists():
        store = CampaignStore.open(path, config.identity())
    else:
        store = CampaignStore.create(path, campaign_text=campaign_text, identity=config.identity(), pool=pool,
                                     presets={preset.name: preset.model_dump(mode="json")})
    report = report or Reporter(budget=config.stop.budget)
    if config.campaign.test_size and not store.has_test_set():
        if config.campaign.test_size >= len(pool):
            store.close()
            raise InputError(f"campaign.test_size = {config.campaign.test_size} leaves nothing to train on"
                             f" ({len(pool)} candidates); use a smaller test_size")
        rng = np.random.default_rng([config.campaign.seed, 7])  # its own stream: the test set never shifts
        store.mark_test(rng.choice(len(pool), config.campaign.test_size, replace=False))
    with store:
        data = read_store(path)
        if not np.array_equal(data.candidates["decoration"], pool.decorations):
            raise RuntimeError(f"{path}: candidate table differs from this activemat's enumeration")
        loop = CampaignLoop(config, pool, preset, fixed, store, None, report, task)
        loop.load(data)
        report.start(done=len(loop.trained), failed=len(loop.failed))
        if len(loop.trained) >= config.stop.budget and not loop.retry and len(loop.tested) == int(loop.test.sum()):
            loop.stop_reason = "budget reached"  # nothing to do: don't start a cluster
        else:
            # A lost worker fails its task at once, so the loop (not Dask) retries it and the store shows it.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = connect(config.cluster, report.log, store=path) if client is None else nullcontext(client)
                with cluster as cl:
                    loop.client = cl
                    with report:
                        loop.run()
    summary = {"store": str(path), "completed": len(loop.trained), "failed": len(loop.failed),
               "stop_reason": loop.stop_reason}
    report.log(f"stopped: {loop.stop_reason}; {len(loop.trained)} completed, {len(loop.failed)} failed -> {path}")
    return summary
