"""The campaign loop: keep every worker busy, learn from each result as it lands.

Steps, each checkpointed in the store before the next:
  1. open   : create or reopen the store; rows a killed driver left running are
              marked interrupted and their candidates submitted again
  2. submit : fill every free worker slot with a pick (row written as running)
  3. collect: as any calculation completes, write its record and flush
  4. learn  : refit the model on all successful results, snapshot predictions
  5. select : pick for the freed slot; picks made while others run treat the
              running ones as already known at their predicted mean
              ("kriging believer"), so they are neither repeated nor crowded
  6. stop   : budget reached, max posterior std below target, or pool exhausted
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import schema as S
from .bandgap import compute_gap
from .config import CampaignConfig
from .model import cross_validate, make_model
from .presets import Preset, load_preset
from .records import CalculationRecord
from .space import CandidatePool, build_pool, parse_formula
from .store import CampaignStore, read_store
from .strategies import best_available, kriging_believer, representative, scores, space_filling


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


@dataclass
class _Pending:
    row: int
    candidate: int
    attempt: int


@dataclass
class CampaignLoop:
    config: CampaignConfig
    campaign_text: str
    pool: CandidatePool
    preset: Preset
    fixed: list[int]
    store: CampaignStore
    client: object
    report: object  # activemat.progress.Reporter
    task: object = compute_gap  # (candidate, attempt, atoms, preset, scratch) -> CalculationRecord
    trained: dict[int, float] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    attempts: dict[int, int] = field(default_factory=dict)
    pending: dict = field(default_factory=dict)  # future -> _Pending
    iteration: int = 0
    model: object = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    max_std: float = float("inf")
    stop_reason: str = ""

    def __post_init__(self):
        from sklearn.preprocessing import StandardScaler

        self.rng = np.random.default_rng(self.config.campaign.seed)
        self.scaler = StandardScaler().fit(self.pool.features)
        self.scratch = str(Path(self.config.campaign.scratch or f"{self.store.path}.scratch").resolve())

    # -- state ----------------------------------------------------------------
    def load(self, data) -> list[int]:
        """Restore in-memory state from the store; return candidates to submit again."""
        calc = data.calculations
        for cand, status, attempt in zip(calc["candidate"], calc["status"], calc["attempt"]):
            self.attempts[int(cand)] = max(self.attempts.get(int(cand), 0), int(attempt) + 1)
            if status == S.FAILED:
                self.failed.add(int(cand))
        self.trained = data.completed()
        self.failed -= set(self.trained)
        self.iteration = len(data.snapshots.get("iteration", []))
        interrupted = self.store.interrupt_running()
        return [c for c, _ in interrupted if c not in self.trained]

    def _busy(self) -> np.ndarray:
        busy = np.zeros(len(self.pool), bool)
        idx = list(self.trained) + list(self.failed) + [p.candidate for p in self.pending.values()]
        busy[idx] = True
        return busy

    # -- steps ----------------------------------------------------------------
    def submit(self, candidate: int, reason: str, score: float = float("nan")) -> None:
        attempt = self.attempts.get(candidate, 0)
        self.attempts[candidate] = attempt + 1
        row = self.store.add_attempt(candidate, attempt, self.preset.name, self.iteration, reason, score)
        future = self.client.submit(self.task, candidate, attempt, self.pool.atoms(candidate), self.preset,
                                    self.scratch, pure=False, key=f"gap-c{candidate}-a{attempt}-{time.time_ns()}")
        self.pending[future] = _Pending(row, candidate, attempt)
        self.completed_iter.add(future)
        self.report.submitted(candidate, self.pool.formula(candidate), reason)

    def collect(self, future) -> None:
        job = self.pending.pop(future)
        try:
            record = future.result()
        except Exception as exc:  # the worker died or the task could not run: record it, keep going
            now = time.time()
            record = CalculationRecord(candidate=job.candidate, attempt=job.attempt, preset=self.preset.name,
                                       status=S.FAILED, started=now, finished=now,
                                       error=f"{type(exc).__name__}: {exc}".splitlines()[0][:400])
        self.store.finish_attempt(job.row, record)
        if record.ok:
            self.trained[record.candidate] = record.gap
        else:
            self.failed.add(record.candidate)
        self.learn()
        self.report.finished(record, self.pool.formula(record.candidate), self.snapshot)

    def _fit(self) -> bool:
        """Refit on every successful result; False while there are too few."""
        if len(self.trained) < 2:
            return False
        idx = np.fromiter(self.trained, int)
        m = self.config.model
        self.model = make_model(m.kind, m.ard, m.restarts, self.config.campaign.seed, self.scaler).fit(
            self.pool.features[idx], np.fromiter(self.trained.values(), float))
        self.mean, self.std = self.model.predict(self.pool.features, return_std=True)
        free = ~self._busy()
        self.max_std = float(self.std[free].max()) if free.any() else 0.0
        return True

    def learn(self) -> None:
        """Refit and snapshot the model, its cross-validation and its predictions over the pool."""
        self.snapshot = {}
        if not self._fit():
            return
        idx = np.fromiter(self.trained, int)
        X, y = self.pool.features[idx], np.fromiter(self.trained.values(), float)
        free = ~self._busy()
        self.snapshot = {"iteration": self.iteration, "time": time.time(), "n_train": len(idx),
                         "max_std": self.max_std, "mean_std": float(self.std[free].mean()) if free.any() else 0.0,
                         "model": self.model.describe(), **cross_validate(self.model, X, y)}
        self.store.add_snapshot(self.snapshot, self.mean.astype("f4"), self.std.astype("f4"))
        self.iteration += 1

    def select(self) -> tuple[int, str, float] | None:
        """Next candidate, why, and its acquisition score; None when nothing is left to pick."""
        busy = self._busy()
        free = ~busy
        if not free.any():
            self.stop_reason = "pool exhausted"
            return None
        st = self.config.strategy
        if st.kind == "fixed":
            left = [i for i in self.fixed if free[i]]
            if not left:
                self.stop_reason = "fixed list done"
            return (left[0], "fixed", float("nan")) if left else None
        seeds = space_filling(self.pool, st.n_seed, np.zeros(len(self.pool), bool))
        seeds_left = [i for i in seeds if free[i]]
        n_started = len(self.trained) + len(self.pending) + len(self.failed)
        if seeds_left and n_started < st.n_seed or self.model is None:
            pick = seeds_left[0] if seeds_left else space_filling(self.pool, 1, busy)[0]
            return pick, "seed", float("nan")
        if st.kind == "random":
            return int(self.rng.choice(np.flatnonzero(free))), "random", float("nan")
        if self.config.stop.target_std is not None and self.max_std < self.config.stop.target_std:
            self.stop_reason = f"max std {self.max_std:.4f} eV below target"
            return None
        mean, std = self._believed_predictions()
        values = scores(st.kind, mean, std, np.fromiter(self.trained.values(), float),
                        target_gap=st.target_gap, beta=st.beta, tradeoff=st.tradeoff, rng=self.rng)
        i, score = best_available(values, free)
        return i, st.kind, score

    def _believed_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.pending:
            return self.mean, self.std
        running = np.array([p.candidate for p in self.pending.values()])
        idx = np.fromiter(self.trained, int)
        return kriging_believer(self.model, self.pool.features[idx], np.fromiter(self.trained.values(), float),
                                self.pool.features[running], self.pool.features)

    def fill(self) -> None:
        """Submit picks until every worker slot (plus prefetch) is taken or a stop condition holds."""
        from .cluster import worker_slots

        slots = worker_slots(self.client) + self.config.cluster.prefetch
        while len(self.pending) < slots:
            if len(self.trained) + len(self.pending) >= self.config.stop.budget:
                self.stop_reason = self.stop_reason or "budget reached"
                return
            pick = self.select()
            if pick is None:
                return
            self.submit(*pick)

    def run(self, resubmit: list[int]) -> None:
        from distributed import as_completed

        self.completed_iter = as_completed()
        for cand in resubmit:
            if len(self.trained) + len(self.pending) < self.config.stop.budget:
                self.submit(cand, "resubmit")
        self._fit()  # on resume, the model is rebuilt from stored results before the first pick
        self.fill()
        for future in self.completed_iter:
            self.collect(future)
            self.fill()
        if not self.stop_reason:
            self.stop_reason = "budget reached"


def run_campaign(config: CampaignConfig, campaign_text: str, *, client=None, report=None, task=compute_gap) -> dict:
    """Run (or resume) a campaign to its stop condition; return a summary dict.

    `client` reuses an existing dask Client instead of starting the [cluster];
    `task` replaces the GPAW task (e.g. a ReplayOracle in loop tests).
    """
    from .cluster import connect
    from .progress import Reporter

    pool, preset, fixed = prepare(config)
    path = Path(config.campaign.store)
    if path.exists():
        store = CampaignStore.open(path, config.identity())
    else:
        store = CampaignStore.create(path, campaign_text=campaign_text, identity=config.identity(), pool=pool,
                                     presets={preset.name: preset.model_dump(mode="json")})
    report = report or Reporter(budget=config.stop.budget)
    with store:
        data = read_store(path)
        if not np.array_equal(data.candidates["decoration"], pool.decorations):
            raise RuntimeError(f"{path}: candidate table differs from this activemat's enumeration")
        loop = CampaignLoop(config, campaign_text, pool, preset, fixed, store, None, report, task)
        resubmit = loop.load(data)
        report.start(done=len(loop.trained), failed=len(loop.failed))
        if len(loop.trained) >= config.stop.budget and not resubmit:
            loop.stop_reason = "budget reached"  # nothing to do: don't start a cluster
        else:
            with (connect(config.cluster, report.log) if client is None else _nullcontext(client)) as cl:
                loop.client = cl
                with report:
                    loop.run(resubmit)
    summary = {"store": str(path), "completed": len(loop.trained), "failed": len(loop.failed),
               "stop_reason": loop.stop_reason}
    report.log(f"stopped: {loop.stop_reason}; {len(loop.trained)} completed, {len(loop.failed)} failed -> {path}")
    return summary


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False
