"""Progress reporting: a no-op base and a rich progress bar (done/total, rate, ETA, errors)."""

from __future__ import annotations

from typing import Any


class Reporter:
    """Receives progress events from the runner. The base class ignores them."""

    def start(self, run_id: str, label: str, total: int, done: int) -> None:
        """A run starts with ``done`` of ``total`` units already finished."""

    def advance(self, run_id: str, status: str) -> None:
        """One unit finished with ``status`` (pass, fail or error)."""

    def finish(self, run_id: str) -> None:
        """The run ended."""

    def close(self) -> None:
        """All runs ended."""


class LineReporter(Reporter):
    """For a stderr that is not a terminal: one line when a run starts and one when it ends."""

    def __init__(self) -> None:
        import sys
        import time

        self._stream, self._clock = sys.stderr, time.perf_counter
        self._runs: dict[str, list] = {}

    def start(self, run_id: str, label: str, total: int, done: int) -> None:
        self._runs[run_id] = [label, total, done, 0, self._clock()]
        self._stream.write(f"{label}: {total - done} of {total} to do\n")

    def advance(self, run_id: str, status: str) -> None:
        state = self._runs[run_id]
        state[2] += 1
        state[3] += status == "error"

    def finish(self, run_id: str) -> None:
        label, total, done, errors, t0 = self._runs[run_id]
        self._stream.write(f"{label}: {done}/{total} done, {errors} errors, {self._clock() - t0:.1f}s\n")
        self._stream.flush()


def progress_reporter() -> Reporter:
    """A rich progress bar on a terminal, start/finish lines otherwise."""
    import sys

    return RichReporter() if sys.stderr.isatty() else LineReporter()


class RichReporter(Reporter):
    """One rich progress bar per run, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._errors: dict[str, int] = {}
        self._started = False

    def start(self, run_id: str, label: str, total: int, done: int) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._errors[run_id] = 0
        self._tasks[run_id] = self._progress.add_task(label, total=total, completed=done, errors=0, rate="")

    def advance(self, run_id: str, status: str) -> None:
        task = self._tasks[run_id]
        if status == "error":
            self._errors[run_id] += 1
        speed = self._progress.tasks[task].speed if task < len(self._progress.tasks) else None
        rate = f"{speed:.1f}/s" if speed else ""
        self._progress.update(task, advance=1, errors=self._errors[run_id], rate=rate)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
