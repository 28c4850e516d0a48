"""Walltime-aware workers: drain, then retire; never start a calculation that cannot finish.

Dask's own ``--lifetime`` retires a worker by ``Worker.close_gracefully``,
which moves its data away but not its running task: the calculation is cut
off and computed again from scratch elsewhere (distributed issue #3141,
dask-jobqueue #416). :class:`DrainingLifetime` is a worker plugin that
replaces it on SLURM workers:

- at its deadline (worker start + lifetime, +- a random stagger) a worker
  stops taking tasks (its status becomes ``closing_gracefully``, which
  pauses it and tells the scheduler: nothing new starts or is sent to it,
  the running calculation goes on), lets
  its calculation finish and its result be collected, and only then leaves
  the scheduler (as an expected departure) and closes, ending its SLURM job; adaptive scaling submits a
  replacement for the work still queued;
- before a calculation starts, :func:`activemat.dispatch.tasks.on_worker`
  asks :meth:`DrainingLifetime.fits` whether its expected duration (measured
  per preset, from the campaign's finished calculations) fits before the
  deadline; if not, the worker starts draining at once and hands the task
  back to the scheduler (``distributed.Reschedule``) for a worker with
  time left.

The SLURM walltime stays the hard limit: a calculation that overruns its
estimate past the walltime is killed with its job and retried (as a lost
worker), as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field

import psutil
from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

NAME = "activemat-lifetime"
REASON = "activemat-lifetime-reached"
#: A calculation starts only if this many times its expected duration fits before the deadline.
MARGIN = 1.25

logger = logging.getLogger(__name__)


@dataclass
class DrainingLifetime(WorkerPlugin):
    """Retire a worker ``lifetime`` seconds (+- ``stagger``) after it started, without cutting off its work.

    Parameters
    ----------
    lifetime : seconds from the worker's start after which it takes no new calculation.
    stagger : the deadline moves by a uniform random amount in [-stagger, stagger], so that
        workers started together do not retire together.
    poll : seconds between checks while draining.
    """

    lifetime: float
    stagger: float = 0.0
    poll: float = 0.5
    name: str = field(default=NAME, init=False)

    def setup(self, worker) -> None:
        self.worker = worker
        self.draining = False
        started = psutil.Process(os.getpid()).create_time()  # the worker process, whenever the plugin arrives
        self.deadline = started + self.lifetime + random.uniform(-self.stagger, self.stagger)
        worker.loop.call_later(max(self.deadline - time.time(), 0.0), self._at_deadline)
        worker.log_event(NAME, {"worker": worker.address, "deadline": self.deadline})

    def remaining(self) -> float:
        """Seconds until the deadline (negative past it)."""
        return self.deadline - time.time()

    def fits(self, expected: float | None) -> bool:
        """Whether a calculation of ``expected`` seconds (None: unknown) may start on this worker now."""
        if self.draining:
            return False
        if expected is None or MARGIN * expected > self.lifetime - self.stagger:
            return True  # unknown, or longer than any worker lives: handing it on would only loop
        return MARGIN * expected <= self.remaining()

    def _at_deadline(self) -> None:
        asyncio.ensure_future(self.stop_taking_work("lifetime reached"))

    async def stop_taking_work(self, why: str) -> None:
        """Drain: take no new task; close once the running one has finished and its result is collected."""
        if self.draining:
            return
        self.draining = True
        worker = self.worker
        logger.info("activemat: draining worker %s (%s, %.0f s before its deadline)", worker.address, why,
                    self.remaining())
        worker.log_event(NAME, {"worker": worker.address, "draining": time.time(), "why": why})
        # closing_gracefully: the worker pauses (starts no new task; the running one goes on) and tells the
        # scheduler, which sends it none. Not Scheduler.retire_workers: when no other worker can take this one's
        # results it gives up, sets the worker running again and keeps a result pinned (seen on SLURM with one
        # worker job at a time); the memory monitor's pause/unpause leaves closing_gracefully alone.
        worker.status = Status.closing_gracefully
        asyncio.ensure_future(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        worker = self.worker
        while worker.state.executing_count or worker.data:  # running, or a result the driver has not collected
            await asyncio.sleep(self.poll)
        # Leave as an expected departure: a task queued here but never started goes back to the scheduler
        # without counting against it (allowed-failures = 0 would call a plain close a lost worker). The worker
        # is closing_gracefully already, so Worker.close_gracefully would only wait for itself.
        await worker.scheduler.unregister(address=worker.address, stimulus_id=f"{REASON}-{time.time()}",
                                          expected=True, close=False)
        await worker.close(nanny=True, reason=REASON)


def plugin_of(worker) -> DrainingLifetime | None:
    """The worker's :class:`DrainingLifetime`, if the campaign registered one."""
    return worker.plugins.get(NAME)
