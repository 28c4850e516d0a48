"""The campaign loop: keep every worker busy, learn from each result as it lands.

Steps, each checkpointed in the store before the next:
  1. open   : create or reopen the store; rows a killed driver left running are
              marked interrupted and their tasks queued again (:class:`Ledger`)
  2. submit : fill every free worker slot, held-out test candidates first,
              then retries, then new picks, as many as there are free slots
              in one selection step (:class:`Selector`); the rows are
              written as running (one batch: values, then statuses, in two flushes) before the tasks are
              sent (:class:`Scheduler`)
  3. collect: take every calculation that completed since the last pass,
              write their records in one batch and flush; the ledger queues
              a failed one again or gives it up (retry, fallback and
              lost-worker policy in :mod:`activemat.campaign.ledger`)
  4. learn  : refit the model once on all successful results and snapshot its
              predictions (:class:`Learner`); a refit that would keep the
              freed workers waiting (over 2 % of a calculation) runs in a
              thread instead, while the freed slots are filled at once with
              the last model (the results it has not seen count as believed,
              like running calculations)
  5. select : pick for the freed slots (back to 2)
  6. stop   : budget reached, max posterior std below target, pool exhausted,
              or SIGTERM/SIGINT (wait for or cancel running work, exit cleanly),
              or an infrastructure fault (a full or failing scratch disk:
              no new work starts, running work finishes, and the summary's
              ``fault`` names it and its fix; the attempts it stopped run
              again on resume and count against no candidate)

Results that land while the driver refits are collected together on its
next pass: the driver's work per pass does not grow with the number of
results, so it keeps up with hundreds of workers (benchmarks/simcluster.py).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import dask
import distributed  # noqa: F401  (loads its config defaults before dask.config.set below, which

# would otherwise delete the whole "distributed" config subtree when it exits)
import numpy as np

from activemat.campaign.config import CampaignConfig
from activemat.campaign.learner import Learner
from activemat.campaign.ledger import HELD, MAX_LOST, RETRY, TEST, Ledger, TaskKey
from activemat.campaign.progress import Reporter
from activemat.campaign.scheduler import WORKER_WAIT, Scheduler, Submission, WorkerWatch
from activemat.campaign.selector import Selector
from activemat.campaign.model import CampaignModel, stored_model_state
from activemat.campaign.setup import prepare
from activemat.campaign.signals import StopRequested, stop_on_signals
from activemat.compute.bandgap import compute_gap
from activemat.compute.faults import is_infrastructure
from activemat.dispatch.clusters import connect, task_for
from activemat.errors import InputError
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore

POLL_SECONDS = 0.5
REFIT_POLL_SECONDS = 0.05  # while a refit runs: how soon its end is noticed
WAIT_FOR_REFIT = 0.02  # refits up to this fraction of a calculation run before freed slots are filled


class Timings:
    """Seconds the driver spent in each step (not waiting for results), with the results and refits counted;
    ``with timings("refit"): ...`` adds the block's time to its step."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.results = self.refits = 0
        self.background = 0.0  # seconds of refits computed in the refit thread (not the driver's own time)

    @contextmanager
    def __call__(self, step: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start

    def as_dict(self) -> dict:
        busy = sum(self.seconds.values())
        return {"results": self.results, "refits": self.refits, "busy_s": busy,
                "per_result_s": busy / self.results if self.results else None,
                "refit_thread_s": self.background,
                "with_refits_per_result_s": (busy + self.background) / self.results if self.results else None,
                **{f"{k}_s": v for k, v in self.seconds.items()}}


class CampaignLoop:
    """One run of a campaign over an open store, in the numbered steps of this module's docstring.

    Parameters
    ----------
    config : the campaign.
    pool, presets, fixed : from :func:`activemat.campaign.setup.prepare` (presets cheap to accurate).
    store : the open :class:`~activemat.store.write.CampaignStore`.
    report : a :class:`~activemat.campaign.progress.Reporter`.
    task : ``(candidate, attempt, atoms, preset, scratch_root) -> CalculationRecord``.
    model : the campaign's model (:class:`~activemat.campaign.model.CampaignModel`; built here if None).
    """

    def __init__(self, config: CampaignConfig, pool, presets, fixed, store, report, *, task=compute_gap,
                 model: CampaignModel | None = None, stop: StopRequested | None = None):
        self.config, self.pool, self.presets, self.store, self.report = config, pool, presets, store, report
        self.task = task
        self.ledger = Ledger(np.zeros(len(pool), bool), len(presets), config.faults.max_attempts)
        self.learner = Learner(model or CampaignModel.of(config, pool), pool,
                               curve=config.stop.target_curve_std is not None)
        self.selector = Selector(config, pool, self.learner, fixed)
        self.scheduler: Scheduler | None = None
        self.stop = stop if stop is not None else StopRequested()
        self.stop_reason = ""
        self.fault = ""  # the first infrastructure fault of the run: no new calculations start after it
        self.snapshot: dict = {}
        self.timings = Timings()
        self.last_refit = 0.0  # seconds the last refit took
        self.scratch = scratch_root(config, store.path, presets, len(pool))

    # -- 1. open ----------------------------------------------------------------
    def load(self, data) -> None:
        """Restore the ledger from the store and queue what must run again."""
        self.store.interrupt_running()  # rows a killed driver left running
        self.ledger.test = data.candidates["test"].astype(bool)
        self.ledger.load(data.calculations, [p.name for p in self.presets],
                         retry_failed=self.config.faults.retry_failed, source=str(self.store.path))
        self.learner.iteration = len(data.snapshots.get("iteration", []))

    def nothing_to_do(self) -> bool:
        led = self.ledger
        return (len(led.trained) >= self.config.stop.budget and not led.retry
                and len(led.tested) == int(led.test.sum()))

    # -- 2. submit --------------------------------------------------------------
    def fill(self) -> None:
        """Submit until every worker slot (plus prefetch) is taken or a stop condition holds: every free slot's
        pick is made in one selection step, and all the new rows are written in one batch."""
        if self.stop or self.fault:
            return
        led, stop = self.ledger, self.config.stop
        free = self.scheduler.slots() - len(self.scheduler)
        planned: list[tuple[TaskKey, str, float]] = []
        nan = float("nan")
        with self.timings("select"):
            while len(planned) < free:
                keys = self.scheduler.keys() + [p[0] for p in planned]
                if led.retry and led.test[led.retry[0].candidate]:
                    planned.append((led.retry.pop(0), TEST, nan))  # held out: outside the budget
                    continue
                training = len(led.trained) + sum(not led.test[k.candidate] for k in keys)
                if training >= stop.budget:
                    self.stop_reason = self.stop_reason or "budget reached"
                    break
                if stop.cost_budget is not None and self.spent(keys) >= stop.cost_budget:
                    self.stop_reason = self.stop_reason or "cost budget reached"
                    break
                if led.retry:
                    planned.append((led.retry.pop(0), RETRY, nan))
                    continue
                # one pick at a time against a cost budget (each pick's fidelity sets what is left)
                n = 1 if stop.cost_budget is not None else min(free - len(planned), stop.budget - training)
                picks = self.selector.next_batch(led, keys, n)
                if not picks:
                    self.stop_reason = self.selector.stop_reason
                    break
                planned += picks
        with self.timings("submit"):
            self.submit_many(planned)

    def submit_many(self, planned: list[tuple[TaskKey, str, float]]) -> None:
        """Write the rows of planned (task, reason, score) submissions in one batch, then send the tasks."""
        items = []
        for key, reason, score in planned:
            attempt, fallback = self.ledger.next_attempt(key)
            items.append(Submission(key, attempt, fallback, self.learner.iteration, reason, score))
        self.scheduler.submit_many(items)
        for key, reason, _ in planned:
            self.report.submitted(key.candidate, self.label(key), reason)

    def cost(self, fidelity: int) -> float:
        """CPU-seconds per calculation at a fidelity: measured once 3 are done, else declared."""
        return self.ledger.cost(fidelity, self.config.calculator.costs[fidelity])

    def expected_duration(self, fidelity: int) -> float | None:
        """Seconds a calculation at a fidelity is expected to take (measured, erring long; else declared)."""
        return self.ledger.expected_duration(fidelity, self.config.calculator.declared_costs[fidelity])

    def spent(self, running: list[TaskKey] | None = None) -> float:
        """CPU-seconds of the calculations done and running (or ``running``), by the cost of each fidelity."""
        keys = list(self.ledger.trained) + (self.scheduler.keys() if running is None else running)
        counts = np.bincount([k.fidelity for k in keys], minlength=len(self.presets))
        return sum(n * self.cost(f) for f, n in enumerate(counts))  # one median per fidelity, not per key

    def label(self, key: TaskKey) -> str:
        formula = self.pool.formula(key.candidate)
        return f"{formula} @{self.presets[key.fidelity].name}" if len(self.presets) > 1 else formula

    # -- 3. collect, 4. learn -------------------------------------------------------
    def collect_many(self, done: list[tuple]) -> None:
        """Store every result that landed together (one batch: values, then statuses, in two flushes), then refit once."""
        if not done:
            return
        self.record(done)
        self.learn()
        for job, record in done:
            self.report.finished(record, self.label(job.key), self.snapshot)

    def record(self, done: list[tuple]) -> None:
        """Store results that landed together (one batch: values, then statuses, in two flushes) and take them into the ledger."""
        _drop_unstorable_positions(done, self.pool)
        with self.timings("store"):
            self.store.finish_attempts([(job.row, record) for job, record in done])
        for job, record in done:
            self.ledger.record(job.key, record)
            if not record.ok and is_infrastructure(record.error) and not self.fault:
                self.fault = record.error
                self.report.log(f"{record.error}: no new calculation starts; running ones finish")
            if job.key in self.ledger.held and self.ledger.lost_now[job.key] == MAX_LOST:
                self.report.log(f"#{job.key.candidate} {self.label(job.key)}: {HELD}")
        self.timings.results += len(done)

    def learn(self) -> None:
        """Refit, and write a snapshot of the model, its cross-validation and its predictions over the pool."""
        self.snapshot = {}
        start = time.perf_counter()
        with self.timings("refit"):
            fitted = self.learner.fit(self.ledger, self.free_top())
        if not fitted:
            return
        self.last_refit = time.perf_counter() - start
        self.write_snapshot()

    def timed_compute(self, job):
        """:meth:`Learner.compute` in the refit thread, its time kept apart from the driver's own."""
        start = time.perf_counter()
        out = self.learner.compute(job)
        self.last_refit = time.perf_counter() - start
        self.timings.background += self.last_refit
        return out

    def refit_is_cheap(self) -> bool:
        """Whether the last refit took at most :data:`WAIT_FOR_REFIT` of a calculation (measured median, else
        declared): then the loop refits before it fills the freed slots, else it fills them at once and refits
        in the background."""
        return self.last_refit <= WAIT_FOR_REFIT * self.cost(self.ledger.top)

    def adopt(self, job) -> None:
        """Make a refit computed in the background the model, and write its snapshot."""
        with self.timings("snapshot"):
            self.learner.apply(job)
        self.write_snapshot()

    def write_snapshot(self) -> None:
        """Write the snapshot of the current model (its figures and its predictions over the pool)."""
        with self.timings("snapshot"):
            self.snapshot = self.learner.snapshot(self.ledger)
            self.store.add_snapshot(self.snapshot, self.learner.mean.astype("f4"), self.learner.std.astype("f4"))
        self.timings.refits += 1

    def free_top(self) -> np.ndarray:
        """Candidates still free to pick at the campaign's fidelity."""
        running = self.scheduler.keys() if self.scheduler else []
        return ~self.ledger.busy(running)[-1]

    # -- the run --------------------------------------------------------------------
    def run(self, client) -> None:
        """Steps 2-6 until nothing runs and nothing more may be submitted."""
        c = self.config
        self.scheduler = Scheduler(client, self.task, self.store, self.pool, self.presets, scratch=self.scratch,
                                   time_limit=c.faults.time_limit, prefetch=c.cluster.prefetch,
                                   expected=self.expected_duration)
        wait = c.faults.worker_wait or (None if c.cluster.kind == "slurm" else WORKER_WAIT)
        watch = WorkerWatch(client, wait, self.report.log, getattr(client.scheduler, "address", "the scheduler"))
        self.learner.fit(self.ledger, self.free_top())  # on resume, the model is rebuilt before the first pick
        self.fill()
        # Refits run in a thread (NumPy and BLAS release the GIL) while this one collects results and fills
        # freed slots at once with the last model (results it has not seen count as believed, like running
        # ones); a finished refit becomes the model and its snapshot is written, and the next starts on
        # everything stored by then.
        with ThreadPoolExecutor(1, thread_name_prefix="activemat-refit") as refits:
            pending, stale = None, False
            while len(self.scheduler) or pending is not None or stale:
                if len(self.scheduler):
                    done = self.scheduler.finished(timeout=POLL_SECONDS if pending is None else REFIT_POLL_SECONDS)
                else:
                    done = []
                    if pending is not None:
                        wait_futures([pending])
                with self.timings("collect"):
                    done += self.scheduler.overdue()
                if not done and not self.fault:
                    self.stranded(watch.check(len(self.scheduler)))
                if done:
                    self.record(done)
                    stale = True
                    if pending is None and self.refit_is_cheap():
                        self.learn()  # costs the workers little: pick with the model that knows these results
                        stale = False
                    for job, record in done:
                        self.report.finished(record, self.label(job.key), self.snapshot)
                if self.stop:
                    self.stopping()
                self.fill()
                if pending is not None and pending.done():
                    self.adopt(pending.result())
                    pending = None
                if pending is None and stale:
                    stale = False
                    with self.timings("refit"):
                        job = self.learner.prepare(self.ledger, self.free_top())
                    if job is not None:
                        pending = refits.submit(self.timed_compute, job)
        if self.stop:
            self.stop_reason = f"stopped by {self.stop.signal}"
        if self.fault:
            self.stop_reason = (f"{self.fault}, then resume: the attempts it stopped count against no candidate"
                                " and run again")
        if not self.stop_reason:  # every other end names itself where it happens
            done, budget = len(self.ledger.trained), c.stop.budget
            self.stop_reason = "budget reached" if done >= budget else \
                f"nothing left to submit after {done} of {budget} results (selection gave no reason)"

    def stranded(self, fault: str | None) -> None:
        """No worker left for too long (:class:`WorkerWatch`): cancel what is queued (it reruns on resume), stop."""
        if fault:
            self.fault = fault
            n = self.ledger.requeue(self.scheduler.cancel_all())
            self.report.log(f"{fault}: cancelled {n} queued calculation(s); they rerun on resume")

    def stopping(self) -> None:
        """On a stop signal: cancel running work (on_stop = cancel, or a second signal) or let it finish."""
        if self.config.faults.on_stop == "wait" and self.stop.count == 1:
            if not self.stop.announced:
                self.report.log(f"{self.stop.signal}: waiting for {len(self.scheduler)} running calculation(s);"
                                " signal again to cancel them")
                self.stop.announced = True
            return
        n = self.ledger.requeue(self.scheduler.cancel_all())
        self.report.log(f"{self.stop.signal}: cancelled {n} running calculation(s); they rerun on resume")


def summarise(loop: CampaignLoop) -> dict:
    """What the run did, with the attempt figures as ``status`` reports them (:meth:`Ledger.counts`)."""
    led = loop.ledger
    out = {"store": str(loop.store.path), "completed": len(led.trained), **led.counts(),
           "stop_reason": loop.stop_reason, "driver": loop.timings.as_dict()}
    if loop.fault:  # the run stopped on an infrastructure fault: `activemat run` exits 2 with this line
        out["fault"] = loop.stop_reason
    if len(loop.presets) > 1:  # multi-fidelity: completed calculations and the measured cost of each preset
        out["fidelities"] = {p.name: {"completed": led.completed(f), "cost": loop.cost(f)}
                             for f, p in enumerate(loop.presets)}
    return out


def scratch_root(config: CampaignConfig, store: Path, presets, candidates: int) -> str:
    """The campaign's scratch root (``[campaign] scratch``, else ``<store>.scratch``), absolute; an InputError if
    the folders under it would not fit the store's ``scratch`` column (they would be stored cut short)."""
    root = str(Path(config.campaign.scratch or f"{store}.scratch").resolve())
    longest = max((p.name for p in presets[:-1]), key=lambda n: len(n.encode()), default="")
    folder = Path(root, longest, f"cand{max(candidates - 1, 0):06d}-try{config.faults.max_attempts + 99}")
    width = S.CALCULATIONS["scratch"].width
    if len(str(folder).encode()) > width:
        raise InputError(f"scratch folder {root}: its attempt folders ({folder}) take {len(str(folder).encode())}"
                         f" bytes, the store keeps at most {width}: set [campaign] scratch to a shorter path")
    return root


def _drop_unstorable_positions(done: list[tuple], pool) -> None:
    """The store keeps positions per decoration site; a parent with fixed sublattices has more atoms than that.
    Relaxing one is refused at setup, so the structure is the candidate's own (export rebuilds it)."""
    if not all(pool.parent.mixing):
        for _, record in done:
            record.positions = None


def create_or_open(config: CampaignConfig, campaign_text: str, pool, presets) -> CampaignStore:
    """Create the campaign's store, or reopen it to resume; draw the held-out test set once."""
    path = Path(config.campaign.store)
    if path.exists():
        store = CampaignStore.open(path, config.identity())
    else:
        store = CampaignStore.create(path, campaign_text=campaign_text, identity=config.identity(), pool=pool,
                                     presets={p.name: p.model_dump(mode="json") for p in presets})
    test_size = config.campaign.test_size
    try:
        if test_size and not store.has_test_set():
            if test_size >= len(pool):
                raise InputError(f"campaign.test_size = {test_size} leaves nothing to train on"
                                 f" ({len(pool)} candidates); use a smaller test_size")
            rng = np.random.default_rng([config.campaign.seed, 7])  # its own stream: the test set never shifts
            store.mark_test(rng.choice(len(pool), test_size, replace=False))
    except BaseException:
        store.close()  # releases the lock; nothing half-written stays open
        raise
    return store


def run_campaign(config: CampaignConfig, campaign_text: str, *, client=None, report=None, task=compute_gap,
                 stop: StopRequested | None = None) -> dict:
    """Run (or resume) a campaign to its stop condition; return a summary dict.

    `client` reuses an existing dask Client instead of starting the [cluster];
    `task` replaces the GPAW task (e.g. a ReplayOracle in loop tests);
    `stop` is a stop request the caller already routes SIGTERM/SIGINT to (the
    CLI does, before its imports); SIGTERM and SIGINT are routed to it for the
    whole run, start-up and shutdown included, so a signal at any moment ends
    the run cleanly.
    """
    stop = stop if stop is not None else StopRequested()
    with stop_on_signals(stop):
        return _run(config, campaign_text, client=client, report=report, task=task, stop=stop)


def _run(config: CampaignConfig, campaign_text: str, *, client, report, task, stop: StopRequested) -> dict:
    pool, presets, fixed = prepare(config)
    task = task_for(config.cluster, task)  # MPI per calculation when [cluster] mpi_ranks > 1; refused if unavailable
    # a transfer campaign fits its frozen level here, before the store opens; a stored campaign keeps its mean
    stored = stored_model_state(config.campaign.store) if Path(config.campaign.store).exists() else None
    model = CampaignModel.of(config, pool, stored=stored)
    store = create_or_open(config, campaign_text, pool, presets)
    report = report or Reporter(budget=config.stop.budget)
    with store:
        data = read_store(store.path)
        loop = CampaignLoop(config, pool, presets, fixed, store, report, task=task, model=model, stop=stop)
        loop.load(data)
        report.start(done=len(loop.ledger.trained), counts=loop.ledger.counts())
        if loop.nothing_to_do():
            loop.stop_reason = "budget reached"  # don't start a cluster
        elif stop:
            loop.stop_reason = f"stopped by {stop.signal} before any calculation started"
        else:
            # A lost worker fails its task at once, so the loop (not Dask) retries it and the store shows it.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}), ExitStack() as stack:
                cluster = connect(config.cluster, report.log, store=store.path) if client is None else nullcontext(client)
                try:
                    cl = stack.enter_context(cluster)
                except Exception:
                    if not stop:
                        raise
                    # the signal also reached worker processes still starting (before they left the group)
                    loop.stop_reason = f"stopped by {stop.signal} while the cluster started"
                else:
                    with report:
                        loop.run(cl)
    summary = summarise(loop)
    report.log(f"stopped: {loop.stop_reason}; {summary['completed']} completed, {summary['failed']} failed "
               f"attempt(s), {summary['given_up']} given up, {summary['to_retry']} to retry -> {summary['store']}")
    return summary
