"""SIGTERM and SIGINT as a stop request the loop checks between steps (never inside a store write)."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class StopRequested:
    """Set by SIGTERM/SIGINT; counts the signals (a second one cancels running work)."""

    def __init__(self):
        self.count = 0
        self.signal = ""
        self.announced = False

    def __call__(self, signum, frame):
        self.count += 1
        self.signal = signal.Signals(signum).name

    def __bool__(self):
        return self.count > 0

    def route(self) -> None:
        """Send SIGTERM and SIGINT here for the rest of the process's life (for a process whose whole job is
        one run, such as ``activemat run``: a signal even while it exits ends it with its own exit code)."""
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self)

    def settle(self) -> None:
        """The run is over: ignore SIGTERM and SIGINT while the process exits. (Python's finalisation puts
        its own handlers back to the default, which would let a late signal end a finished run with 143;
        an ignored signal stays ignored.)"""
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)


@contextmanager
def stop_on_signals(flag: StopRequested):
    """Route SIGTERM and SIGINT to ``flag`` inside the block (only in the main thread; elsewhere a no-op)."""
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
