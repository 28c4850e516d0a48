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

from activemat.store import schema as S
from activemat.compute.bandgap import compute_gap
from activemat.campaign.config import CampaignConfig
from activemat.errors import InputError
from activemat.learn.models import FULL_REFIT_EVERY, WARM_START_MIN, cross_validate, make_model
from activemat.compute.presets import Preset, load_preset
from activemat.compute.records import CalculationRecord
from activemat.learn.cokriging import CoKriging, pretrain, select_fidelity
from activemat.space.pool import CandidatePool, build_pool, parse_formula
from activemat.store.hdf5 import CampaignStore, read_store
from activemat.learn.strategies import representative, select_next, space_filling

POLL_SECONDS = 0.5
MAX_LOST = 10  # attempts per candidate lost with their worker before it is given up
STARTED_TOPIC = "activemat-started"


def build_campaign_pool(config: CampaignConfig) -> CandidatePool:
    sp = config.space
    return build_pool(elements=sp.elements, supercell=sp.supercell, mode=sp.mode,
                      samples_per_composition=sp.samples_per_composition, seed=config.campaign.seed,
                      features=sp.features)


def prepare(config: CampaignConfig) -> tuple[CandidatePool, list[Preset], list[int]]:
    """Everything that can fail on bad input, done before any store is touched.

    Returns the pool, the presets cheap to accurate (the last is the campaign's own) and the fixed list.
    """
    presets = [load_preset(name) for name in config.calculator.presets]
    pool = build_campaign_pool(config)
    return pool, presets, fixed_candidates(config.strategy.fixed, pool)


def model_factory(config: CampaignConfig, pool: CandidatePool):
    """A callable returning the campaign's unfitted model. Features are scaled by the whole pool (known
    before any label), so the scaling never shifts as data arrives."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(pool.features)
    m = config.model
    return lambda warm_start=None: make_model(m.kind, m.ard, m.restarts, config.campaign.seed, scaler,
                                              warm_start)


def fixed_candidates(entries: list[str], pool: CandidatePool) -> list[int]:
    """A ``fixed`` list's candidates in order: a formula names its most probable configuration, a structure
    file (.xyz, .extxyz, .traj, ...) every configuration in it (matched by symmetry)."""
    from activemat.analysis.replay import structure_candidates

    picks: list[int] = []
    for entry in entries:
        if Path(entry).suffix:
            new = structure_candidates(entry, pool)
        else:
            new = [representative(pool, parse_formula(entry, pool.elements, pool.n_sites))]
        picks += [i for i in new if i not in picks]
    return picks


def announced(task, tag, *args):
    """Run a task after telling the driver it started (for time limits), from inside a Dask worker."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(STARTED_TOPIC, {"tag": tag, "worker": worker.address, "time": time.time()})
    return task(*args)


@dataclass
class _Pending:
    row: int
    key: int  # the loop's key: fidelity * pool size + candidate
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
    """The loop's state is keyed by ``key = fidelity * len(pool) + candidate``; fidelities run cheap to
    accurate and the last is the campaign's own preset, so a single-fidelity campaign's keys are its
    candidates."""

    config: CampaignConfig
    pool: CandidatePool
    presets: list[Preset]  # cheap -> accurate
    fixed: list[int]
    store: CampaignStore
    client: object
    report: object  # activemat.campaign.progress.Reporter
    task: object = compute_gap  # (candidate, attempt, atoms, preset, scratch) -> CalculationRecord
    pretrained: object = None  # a fitted CoKriging of a previous campaign's gaps ([model] transfer_from)
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
        self.rng = np.random.default_rng(self.config.campaign.seed)
        self._make_gp = model_factory(self.config, self.pool)
        self.scratch = str(Path(self.config.campaign.scratch or f"{self.store.path}.scratch").resolve())
        self.stop = StopRequested()
        self.n = len(self.pool)
        self.top = len(self.presets) - 1  # the campaign's own fidelity
        self.fidelity_of = {p.name: i for i, p in enumerate(self.presets)}
        self.multi = self.top > 0 or self.pretrained is not None
        self.wall_times: dict[int, list[float]] = {f: [] for f in range(len(self.presets))}

    # -- keys -----------------------------------------------------------------
    def _key(self, candidate: int, fidelity: int | None = None) -> int:
        return (self.top if fidelity is None else fidelity) * self.n + int(candidate)

    def _split(self, key: int) -> tuple[int, int]:
        """(fidelity, candidate) of a key."""
        return divmod(int(key), self.n)

    def _fidelity(self, preset_name: str) -> int:
        try:
            return self.fidelity_of[preset_name]
        except KeyError:
            raise InputError(f"{self.store.path}: holds calculations with preset {preset_name!r}, which this "
                             f"campaign does not declare; add it to [calculator]") from None

    def cost(self, fidelity: int) -> float:
        """CPU-seconds per calculation: the median measured wall time once 3 are done, else the declared cost."""
        walls = self.wall_times[fidelity]
        return float(np.median(walls)) if len(walls) >= 3 else self.config.calculator.costs[fidelity]

    def _spent(self) -> float:
        keys = list(self.trained) + [p.key for p in self.pending.values()]
        counts = np.bincount([self._split(k)[0] for k in keys], minlength=len(self.presets))
        return sum(n * self.cost(f) for f, n in enumerate(counts))  # one median per fidelity, not per key

    # -- state ----------------------------------------------------------------
    def load(self, data) -> None:
        """Restore in-memory state from the store and queue what must run again."""
        self.store.interrupt_running()  # rows a killed driver left running
        calc = data.calculations
        last: dict[int, str] = {}  # key -> status of its latest attempt
        done: dict[int, float] = {}
        for cand, preset, status, attempt, error, gap, wall in zip(
                calc["candidate"], calc["preset"], calc["status"], calc["attempt"], calc["error"], calc["gap"],
                calc["finished"] - calc["started"]):
            fid = self._fidelity(preset)
            key = self._key(cand, fid)
            self.attempts[key] = max(self.attempts.get(key, 0), int(attempt) + 1)
            last[key] = S.INTERRUPTED if status == S.RUNNING else status
            if status == S.FAILED:
                self._count_failure(key, error)
            elif status == S.OK:
                done[key] = float(gap)
                self.wall_times[fid].append(float(wall))
        self.test = data.candidates["test"].astype(bool)
        self.trained = {k: g for k, g in done.items() if not self.test[self._split(k)[1]]}
        self.tested = {k: g for k, g in done.items() if self.test[self._split(k)[1]]}
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
        # held-out candidates go first (at the campaign's fidelity): the test error is then reported from the start
        held = [self._key(c) for c in np.flatnonzero(self.test)]
        self.retry = [k for k in held if k not in done and k not in self.retry] + self.retry

    def _count_failure(self, cand: int, error: str) -> None:
        if error.startswith(S.LOST):  # not the calculation's fault: same settings next time
            self.lost[cand] = self.lost.get(cand, 0) + 1
        else:  # the calculation itself failed: the preset's next fallback settings
            self.fallback[cand] = self.fallback.get(cand, 0) + 1

    def _given_up(self, cand: int) -> bool:
        failures = self.fallback.get(cand, 0) - self.forgiven.get(cand, 0)
        return failures >= self.config.faults.max_attempts or self.lost.get(cand, 0) >= MAX_LOST

    def _busy(self) -> np.ndarray:
        """Keys not to pick: done, given up, queued, running, or held out (at every fidelity)."""
        busy = np.zeros(len(self.presets) * self.n, bool)
        idx = list(self.trained) + list(self.failed) + self.retry + [p.key for p in self.pending.values()]
        busy[idx] = True
        return busy | np.tile(self.test, len(self.presets))

    def _free(self, fidelity: int | None = None) -> np.ndarray:
        """Candidates free to pick at a fidelity (default: the campaign's)."""
        f = self.top if fidelity is None else fidelity
        return ~self._busy()[f * self.n:(f + 1) * self.n]

    def _label(self, key: int) -> str:
        fid, cand = self._split(key)
        formula = self.pool.formula(cand)
        return f"{formula} @{self.presets[fid].name}" if self.top else formula

    # -- steps ----------------------------------------------------------------
    def submit(self, key: int, reason: str, score: float = float("nan")) -> None:
        fid, candidate = self._split(key)
        attempt = self.attempts.get(key, 0)
        level = self.fallback.get(key, 0)
        self.attempts[key] = attempt + 1
        base = self.presets[fid]
        row = self.store.add_attempt(candidate, attempt, base.name, self.iteration, reason, score)
        # cheaper fidelities keep their scratch apart (same candidate and attempt numbers)
        scratch_root = self.scratch if fid == self.top else str(Path(self.scratch) / base.name)
        args = (candidate, attempt, self.pool.atoms(candidate), base.with_fallback(level), scratch_root)
        dask_key = f"gap-{base.name}-c{candidate}-a{attempt}-{time.time_ns()}"
        if self.config.faults.time_limit:
            future = self.client.submit(announced, self.task, dask_key, *args, pure=False, key=dask_key)
        else:
            future = self.client.submit(self.task, *args, pure=False, key=dask_key)
        scratch = str(Path(scratch_root) / f"cand{candidate:06d}-try{attempt}")
        self.pending[future] = _Pending(row, key, candidate, attempt, level, scratch)
        self.report.submitted(candidate, self._label(key), reason)

    def _failure_record(self, job: _Pending, error: str) -> CalculationRecord:
        now = time.time()
        preset = self.presets[self._split(job.key)[0]].name
        return CalculationRecord(candidate=job.candidate, attempt=job.attempt, preset=preset,
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
        key = job.key
        if record.ok:
            (self.tested if self.test[job.candidate] else self.trained)[key] = record.gap
            self.wall_times[self._split(key)[0]].append(record.wall_time)
        else:
            self._count_failure(key, record.error)
            (self.failed.add if self._given_up(key) else self.retry.append)(key)
        self.learn()
        self.report.finished(record, self._label(key), self.snapshot)

    def enforce_time_limit(self) -> None:
        """Cancel calculations running past [faults] time_limit and restart their workers."""
        limit = self.config.faults.time_limit
        if not limit or not self.pending:
            return
        by_job = {f.key: p for f, p in self.pending.items()}
        for _, event in self.client.get_events(STARTED_TOPIC):
            job = by_job.get(event["tag"])
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
                         "max_std": self.max_std, "mean_std": self.mean_std, "model": self.model.describe()[:300]}
        if not self.multi:  # closed-form cross-validation is for single GPs and linear models
            self.snapshot.update(cross_validate(self.model, X, y))
        if self.tested:
            held = np.array([self._split(k)[1] for k in self.tested], int)
            self.snapshot["test_mae"] = float(np.mean(np.abs(self.mean[held] - np.fromiter(self.tested.values(), float))))
        self.store.add_snapshot(self.snapshot, self.mean.astype("f4"), self.std.astype("f4"))
        self.iteration += 1

    def _fit(self) -> bool:
        """Refit on every successful result; False while there are too few (2 per fidelity)."""
        if self.multi:
            levels = [self._training_set(f) for f in range(len(self.presets))]
            if self.pretrained is not None:
                levels = levels[-1:]  # the pretrained model is the cheap level
            if min(len(y) for _, y in levels) < 2:
                return False
            self.model = CoKriging(self._make_gp, frozen=self.pretrained).fit(levels)
        else:
            if len(self.trained) < 2:
                return False
            # Between full hyperparameter searches, start from the last fit (ARD over many features is slow);
            # not while data is scarce, when one more label can move the hyperparameters far.
            warm = None
            if (hasattr(self.model, "kernel_") and len(self.trained) >= WARM_START_MIN
                    and self.iteration % FULL_REFIT_EVERY):
                warm = self.model.kernel_
            self.model = self._make_gp(warm).fit(*self._training_set())
        self.mean, self.std = self.model.predict(self.pool.features, return_std=True)
        free = self._free()
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        self.mean_std = float(self.std[free].mean()) if free.any() else 0.0
        return True

    def _training_set(self, fidelity: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Features and gaps of every successful training calculation at a fidelity (default: the campaign's;
        held-out ones excluded)."""
        f = self.top if fidelity is None else fidelity
        keys = [k for k in self.trained if self._split(k)[0] == f]
        cands = np.array([self._split(k)[1] for k in keys], int)
        return self.pool.features[cands], np.array([self.trained[k] for k in keys], float)

    def select(self) -> tuple[int, str, float] | None:
        """Next key, why, and its acquisition score; None when nothing is left to pick."""
        if self.multi:
            return self._select_fidelity()
        X_train, y_train = self._training_set()
        running = [p.candidate for p in self.pending.values()]
        pick, reason = select_next(
            self.pool, self.config.strategy, self._free(),
            n_started=len(self.trained) + len(self.pending) + len(self.failed), fixed=self.fixed,
            model=self.model, X_train=X_train, y_train=y_train,
            X_running=self.pool.features[running],
            predictions=(self.mean, self.std) if self.model is not None else None,
            rng=self.rng, max_std=self.max_std, target_std=self.config.stop.target_std)
        if pick is None:
            self.stop_reason = reason
        return pick

    def _select_fidelity(self) -> tuple[int, str, float] | None:
        """Multi-fidelity and transfer: space-filling seeds at every fidelity that is computed here (the same
        candidates, cheap first), then the (candidate, fidelity) with the most variance reduction of the
        campaign's gap per CPU-second (:func:`activemat.learn.cokriging.select_fidelity`)."""
        levels = [self.top] if self.pretrained is not None else range(len(self.presets))
        free = [self._free(f) if f in levels else np.zeros(self.n, bool) for f in range(len(self.presets))]
        if not any(m.any() for m in free):
            self.stop_reason = "pool exhausted"
            return None
        seeds = space_filling(self.pool, self.config.strategy.n_seed, np.zeros(self.n, bool))
        for f in levels:
            for c in seeds:
                if free[f][c]:
                    return self._key(c, f), "seed", float("nan")
        if self.model is None:  # seeds failed: more space filling at the campaign's fidelity
            if not free[self.top].any():
                self.stop_reason = "pool exhausted"
                return None
            return self._key(space_filling(self.pool, 1, ~free[self.top])[0]), "seed", float("nan")
        target = self.config.stop.target_std
        if target is not None and self.max_std < target:
            self.stop_reason = f"max std {self.max_std:.4f} eV below target"
            return None
        if self.config.strategy.kind == "random":
            return self._key(int(self.rng.choice(np.flatnonzero(free[self.top])))), "random", float("nan")
        # model levels -> this campaign's fidelities (None: a frozen, pretrained level)
        if self.pretrained is not None:
            fids = [None] * self.pretrained.n_levels + [self.top]
        else:
            fids = list(range(len(self.presets)))
        running: dict[int, list[int]] = {f: [] for f in range(len(self.presets))}
        for p in self.pending.values():
            running[self._split(p.key)[0]].append(p.candidate)
        none = np.zeros(self.n, bool)
        pick = select_fidelity(
            self.model, self.pool.features,
            free=[none if f is None else free[f] for f in fids],
            costs=[1.0 if f is None else self.cost(f) for f in fids],
            running=[self.pool.features[[] if f is None else running[f]] for f in fids])
        if pick is None:
            self.stop_reason = "pool exhausted"
            return None
        return self._key(pick.candidate, fids[pick.level]), "ivr/cost", pick.score

    def fill(self) -> None:
        """Submit retries, then picks, until every worker slot (plus prefetch) is taken or a stop condition holds."""
        from activemat.dispatch.clusters import worker_slots

        if self.stop:
            return
        slots = worker_slots(self.client) + self.config.cluster.prefetch
        while len(self.pending) < slots:
            if self.retry and self.test[self._split(self.retry[0])[1]]:
                self.submit(self.retry.pop(0), "test")  # held out: outside the budget
                continue
            training_pending = sum(not self.test[p.candidate] for p in self.pending.values())
            if len(self.trained) + training_pending >= self.config.stop.budget:
                self.stop_reason = self.stop_reason or "budget reached"
                return
            cost_budget = self.config.stop.cost_budget
            if cost_budget is not None and self._spent() >= cost_budget:
                self.stop_reason = self.stop_reason or "cost budget reached"
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

    from activemat.dispatch.clusters import connect
    from activemat.campaign.progress import Reporter

    from activemat.dispatch.clusters import task_for

    pool, presets, fixed = prepare(config)
    task = task_for(config.cluster, task)  # MPI per calculation when [cluster] mpi_ranks > 1; refused if unavailable
    pretrained = None
    if config.model.transfer_from:
        pretrained = pretrain(config.model.transfer_from, pool, model_factory(config, pool))
    path = Path(config.campaign.store)
    if path.exists():
        store = CampaignStore.open(path, config.identity())
    else:
        store = CampaignStore.create(path, campaign_text=campaign_text, identity=config.identity(), pool=pool,
                                     presets={p.name: p.model_dump(mode="json") for p in presets})
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
        loop = CampaignLoop(config, pool, presets, fixed, store, None, report, task, pretrained)
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
    if loop.top:  # multi-fidelity: completed calculations and the measured cost of each preset
        summary["fidelities"] = {p.name: {"completed": sum(loop._split(k)[0] == f for k in loop.trained),
                                          "cost": loop.cost(f)} for f, p in enumerate(presets)}
    report.log(f"stopped: {loop.stop_reason}; {len(loop.trained)} completed, {len(loop.failed)} failed -> {path}")
    return summary
