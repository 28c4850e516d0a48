"""Live progress of a running campaign (rich); plain lines when not on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _ev(value) -> str:
    return "-" if value is None or value != value else f"{value:.3f} eV"


class Reporter:
    """Counts and a progress bar: done / running / failed, CV error, max std."""

    def __init__(self, budget: int, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.budget, self.done, self.failed, self.running = budget, 0, 0, 0
        self.cv_mae = self.max_std = float("nan")
        self._progress = None

    def log(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    def start(self, done: int, counts: dict) -> None:
        """A resumed campaign: what the store already holds (``counts`` as :meth:`Ledger.counts` gives them)."""
        self.done, self.failed = done, counts["given_up"]
        if done or counts["failed"]:
            self.log(f"resuming from the store: {done} completed, {counts['failed']} failed attempt(s), "
                     f"{counts['given_up']} given up, {counts['to_retry']} to retry")

    def __enter__(self):
        if self.console.is_terminal:
            self._progress = Progress(TextColumn("[bold]DFT"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                      console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("campaign", total=self.budget, completed=self.done, info="")
            self._refresh()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.stop()
        return False

    def _refresh(self) -> None:
        if self._progress:
            info = (f"running {self.running}  failed {self.failed}  "
                    f"CV MAE {_ev(self.cv_mae)}  max std {_ev(self.max_std)}")
            self._progress.update(self._task, completed=self.done, info=info)

    def submitted(self, candidate: int, formula: str, reason: str) -> None:
        self.running += 1
        self._refresh()

    def finished(self, record, formula: str, snapshot: dict) -> None:
        self.running -= 1
        if record.ok:
            self.done += 1
            what = f"gap {record.gap:.3f} eV ({'direct' if record.direct else 'indirect'})"
        else:
            self.failed += 1
            what = f"[red]FAILED[/red] {record.error}"
        self.cv_mae = snapshot.get("cv_mae", self.cv_mae)
        self.max_std = snapshot.get("max_std", self.max_std)
        self.log(f"{self.done:>4}/{self.budget} {formula:<10} #{record.candidate:<6} {what}  "
                 f"{record.wall_time:5.1f} s on {record.worker}  | CV MAE {_ev(self.cv_mae)}, max std {_ev(self.max_std)}")
        self._refresh()
