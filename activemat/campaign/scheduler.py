"""Sending calculations to the Dask cluster and taking them back: slots, task tags, time limits.

Every submission is written to the store as a ``running`` row before the
task is sent, so a driver killed at any moment leaves a row to resume from.
A task whose worker died comes back as a failed record (``worker lost``),
never as an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import wait

from activemat.campaign.ledger import TaskKey
from activemat.compute.faults import INFRASTRUCTURE, infrastructure_fault
from activemat.compute.records import CalculationRecord
from activemat.compute.zone import PARENT_ATOMS, PARENT_CELL
from activemat.dispatch.clusters import worker_slots
from activemat.dispatch.tasks import STARTED_TOPIC, on_worker
from activemat.space.lattice import primitive_cell
from activemat.store import schema as S
from activemat.store.write import Attempt


@dataclass(frozen=True)
class Submission:
    """A calculation to send: its task, attempt, fallback level, the model iteration it was picked at, why and
    its score."""

    key: TaskKey
    attempt: int
    fallback: int
    picked_at: int
    reason: str
    score: float = float("nan")


@dataclass
class Running:
    """A submitted calculation: its store row, task, attempt and settings level."""

    row: int
    key: TaskKey
    attempt: int
    fallback: int
    scratch: str
    started: float | None = None
    worker: str = ""

    def failure(self, preset: str, error: str) -> CalculationRecord:
        """The record of this attempt failing outside the task (lost worker, time limit)."""
        now = time.time()
        return CalculationRecord(candidate=self.key.candidate, attempt=self.attempt, preset=preset,
                                 status=S.FAILED, started=self.started or now, finished=now, worker=self.worker,
                                 error=error.splitlines()[0][:400], fallback=self.fallback, scratch=self.scratch)


#: prefetch = "auto": one queued calculation per this many worker slots. At 256 simulated workers, 16 queued lifted
#: utilisation above 95 % (docs: explanation/scale); below 16 slots nothing is queued, so small campaigns select
#: each candidate with every result that has arrived.
AUTO_PREFETCH_PER = 16


def submission_slots(workers: int, prefetch: int | str) -> int:
    """Calculations to keep submitted on ``workers`` worker slots with ``[cluster] prefetch``.

    >>> [submission_slots(n, "auto") for n in (2, 15, 16, 256)], submission_slots(4, 3)
    ([2, 15, 17, 272], 7)
    """
    return workers + (workers // AUTO_PREFETCH_PER if prefetch == "auto" else int(prefetch))


class Scheduler:
    """The campaign's side of the cluster.

    Parameters
    ----------
    client : a dask.distributed Client.
    task : ``(candidate, attempt, atoms, preset, scratch_root) -> CalculationRecord``.
    store : the campaign's writer (rows are written before tasks are sent).
    pool, presets : what to compute (presets cheap to accurate).
    scratch : scratch root of the campaign's own preset; cheaper presets use a subfolder each.
    time_limit : seconds a calculation may run (None: no limit).
    prefetch : submissions beyond one per worker; ``"auto"``: one per :data:`AUTO_PREFETCH_PER` worker slots.
    expected : fidelity -> seconds a calculation is expected to take (None: unknown); sent with each task, so
        a worker about to retire starts none it cannot finish (:mod:`activemat.dispatch.lifetime`).
    """

    def __init__(self, client, task, store, pool, presets, *, scratch: str, time_limit: float | None = None,
                 prefetch: int | str = 0, expected=lambda fidelity: None):
        self.client, self.task, self.store = client, task, store
        self.pool, self.presets = pool, presets
        self.scratch, self.time_limit, self.prefetch = scratch, time_limit, prefetch
        self.expected = expected
        self.running: dict = {}  # future -> Running

    def __len__(self) -> int:
        return len(self.running)

    def keys(self) -> list[TaskKey]:
        return [r.key for r in self.running.values()]

    def slots(self) -> int:
        """Calculations to keep submitted: one per worker slot, plus prefetch."""
        return submission_slots(worker_slots(self.client), self.prefetch)

    def preset_name(self, key: TaskKey) -> str:
        return self.presets[key.fidelity].name

    def submit_many(self, items: list[Submission]) -> None:
        """Write the attempts' rows (status running) in one batch (rows, then their status, in two flushes), then send the tasks."""
        if not items:
            return
        rows = self.store.add_attempts([Attempt(s.key.candidate, s.attempt, self.preset_name(s.key), s.picked_at,
                                                s.reason, s.score) for s in items])
        for row, s in zip(rows, items):
            key, attempt = s.key, s.attempt
            base = self.presets[key.fidelity]
            # cheaper fidelities keep their scratch apart (same candidate and attempt numbers)
            top = key.fidelity == len(self.presets) - 1
            scratch_root = self.scratch if top else str(Path(self.scratch) / base.name)
            args = (key.candidate, attempt, self._structure(key.candidate, base), base.with_fallback(s.fallback),
                    scratch_root)
            tag = f"gap-{base.name}-c{key.candidate}-a{attempt}-{time.time_ns()}"
            # every calculation announces its start: a lost attempt's row then keeps when and where it ran
            future = self.client.submit(on_worker, self.task, tag, True, *args, pure=False, key=tag,
                                        expected=self.expected(key.fidelity))
            scratch = str(Path(scratch_root) / f"cand{key.candidate:06d}-try{attempt}")
            self.running[future] = Running(row, key, attempt, s.fallback, scratch)

    def _structure(self, candidate: int, preset):
        """The candidate's structure, with its parent's primitive cell (the edge pass folds onto that cell's special
        points); relaxed already if another level relaxes with this preset's forces."""
        atoms = self.pool.atoms(candidate)
        cell, n_primitive = primitive_cell(self.pool.parent)
        atoms.info.update({PARENT_CELL: cell.tolist(), PARENT_ATOMS: n_primitive})
        forces = preset.relax.forces if preset.relax is not None else None
        if forces is not None and forces in {p.name for p in self.presets}:
            done = self.store.relaxed_structure(candidate, forces)
            if done is not None and np.isfinite(done["positions"]).all():
                atoms.set_cell(done["cell"], scale_atoms=False)
                atoms.positions = done["positions"]
                shift = done["soc_gap"] - done["gap"]
                atoms.info.update(relaxed_by=forces, relax_gap=done["gap"], relax_soc_shift=shift)
        return atoms

    def finished(self, timeout: float) -> list[tuple[Running, CalculationRecord]]:
        """Calculations that completed within ``timeout`` seconds (every one done by then), with their
        records."""
        try:
            done, _ = wait(list(self.running), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        done = list(done)
        ok = [f for f in done if f.status == "finished"]
        try:
            records = dict(zip(ok, self.client.gather(ok))) if ok else {}  # one round trip for the batch
        except Exception:  # a result lost meanwhile: fetch each on its own below
            records = {}
        out = []
        if any(f.status == "error" for f in done):
            self._note_starts()  # a lost attempt's row keeps when it started, so the compute it lost is known
        for future in done:
            job = self.running.pop(future)
            try:
                record = records[future] if future in records else future.result()
                record.fallback = job.fallback
            except Exception as exc:  # the worker died or the task could not run: record it, keep going
                # a task that raised because the disk refused (e.g. an MPI task writing its input) is a fault
                error = infrastructure_fault(exc, job.scratch) or f"{S.LOST}: {type(exc).__name__}: {exc}"
                record = job.failure(self.preset_name(job.key), error)
            # Release the result on the cluster now, not when the garbage collector gets to a reference cycle
            # holding this Future: a draining worker waits until nobody wants its results before it leaves.
            future.release()
            out.append((job, record))
        return out

    def _note_starts(self) -> None:
        """Take the start time and worker of running calculations from the workers' announcements."""
        by_tag = {f.key: job for f, job in self.running.items()}
        for _, event in self.client.get_events(STARTED_TOPIC):
            job = by_tag.get(event["tag"])
            if job and job.started is None:
                job.started, job.worker = event["time"], event["worker"]

    def overdue(self) -> list[tuple[Running, CalculationRecord]]:
        """Cancel calculations running past the time limit (restarting their workers); their failure records."""
        if not self.time_limit or not self.running:
            return []
        self._note_starts()
        now, out = time.time(), []
        for future, job in list(self.running.items()):
            if job.started is not None and now - job.started > self.time_limit:
                self.running.pop(future)
                self.client.cancel(future)
                # The worker's thread cannot be interrupted: restart its process to free the slot.
                self.client.restart_workers([job.worker], raise_for_error=False)
                error = f"{S.TIMEOUT}: still running after {self.time_limit:g} s"
                out.append((job, job.failure(self.preset_name(job.key), error)))
        return out

    def cancel_all(self) -> list[TaskKey]:
        """Cancel every running calculation and mark its row interrupted (it reruns on resume); return their
        tasks."""
        rows = [job.row for job in self.running.values()]
        keys = self.keys()
        self.client.cancel(list(self.running))
        self.store.mark_interrupted(rows)
        self.running.clear()
        return keys


#: Seconds a local or address cluster may have calculations queued and no worker before the run stops.
WORKER_WAIT = 600.0


class WorkerWatch:
    """A cluster with calculations queued and no worker left (every worker's node dead or unreachable): say so
    once, then give up after ``wait`` seconds.

    Dask keeps a task whose workers are gone queued until a worker comes, and without this the driver would wait
    in silence for ever (a scheduler someone else runs, whose nodes died). An adaptive SLURM cluster submits
    new jobs itself, and its queue may hold them for hours: there ``wait`` is None and the line is only said.

    Parameters
    ----------
    client : the Dask client.
    wait : seconds to wait for a worker, or None for ever.
    log : called with each line to show.
    where : the scheduler, as the lines name it.
    """

    #: Seconds between two questions to the scheduler (each is a round trip).
    EVERY = 2.0

    def __init__(self, client, wait: float | None, log, where: str):
        self.client, self.wait, self.log, self.where = client, wait, log, where
        self.since: float | None = None  # when the last worker left
        self.asked = time.monotonic()

    def check(self, queued: int) -> str | None:
        """With ``queued`` calculations submitted: the fault line once no worker has been there for ``wait``
        seconds, else None."""
        if not queued or time.monotonic() - self.asked < self.EVERY:
            return None
        self.asked = time.monotonic()
        workers = len(self.client.nthreads())
        if workers:
            if self.since is not None:
                self.log(f"{workers} worker(s) back after {time.monotonic() - self.since:.0f} s: continuing")
            self.since = None
            return None
        if self.since is None:
            self.since = time.monotonic()
            limit = f"up to {self.wait:g} s" if self.wait is not None else "until one comes"
            self.log(f"no Dask worker connected to {self.where} (their nodes are dead or unreachable): waiting "
                     f"{limit} with {queued} calculation(s) queued; start workers, or stop and resume later")
        if self.wait is not None and time.monotonic() - self.since >= self.wait:
            return (f"{INFRASTRUCTURE}: no Dask worker connected to {self.where} for {self.wait:g} s (their nodes are "
                    "dead or unreachable); start workers there or check the cluster")
        return None
