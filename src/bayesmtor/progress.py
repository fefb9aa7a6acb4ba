"""Progress of a long run, reported by the pipeline and shown by the command line.

:func:`bayesmtor.pipeline.run.run_plan` and :func:`bayesmtor.reporting.write.write_run` take a
``progress`` callable that receives one line of text per step. If that callable also has an
``event`` method (the :class:`ProgressSink` protocol), it receives a :class:`ProgressEvent`
for every analysis and phase as well: which phase (``fitting``, ``MCMC``, ``sensitivity``,
``replication``, ``writing``), which analysis, how many of how many are done. The events say
nothing about how a phase computes, so any sampler fits behind them.

The command line shows them with :func:`make_progress`: a live display on standard error
(phase, analysis, a bar, done/total, time elapsed; drawn with ``rich``) when standard error is
a terminal, plain lines when it is not (a file, a pipe, CI logs), nothing with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

__all__ = [
    "LineProgress",
    "LiveProgress",
    "ProgressEvent",
    "ProgressSink",
    "emit",
    "make_progress",
]


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run is.

    Attributes
    ----------
    phase : str
        ``"fitting"`` (data, frequentist and exact stages), ``"MCMC"``, ``"sensitivity"``,
        ``"replication"`` or ``"writing"``.
    label : str
        What is being done now (an analysis' label, a file kind); ``""`` when the phase ends.
    done, total : int
        Steps of the phase finished, and in all.
    """

    phase: str
    label: str
    done: int
    total: int


@runtime_checkable
class ProgressSink(Protocol):
    """A progress callable that also takes :class:`ProgressEvent` objects."""

    def __call__(self, line: str) -> None: ...

    def event(self, event: ProgressEvent) -> None: ...


def emit(progress: Any, phase: str, label: str, done: int, total: int) -> None:
    """Send a :class:`ProgressEvent` to ``progress`` if it takes events (else nothing)."""
    if isinstance(progress, ProgressSink):
        progress.event(ProgressEvent(phase, label, int(done), int(total)))


class LineProgress:
    """Plain progress lines on a stream (standard error when it is not a terminal)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def __call__(self, line: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        print(line, file=stream, flush=True)

    def event(self, event: ProgressEvent) -> None:
        """Events add nothing to the lines."""

    def close(self) -> None:
        """Nothing to close."""


class LiveProgress:
    """A live display on a terminal: one row per phase (bar, done/total, time elapsed) under
    the progress lines, redrawn several times a second; removed when closed."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(file=stream if stream is not None else sys.stderr, highlight=False)
        self.started = time.perf_counter()
        self._tasks: dict[str, Any] = {}
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[phase]:<11}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
            refresh_per_second=8,
        )
        self._bar.start()

    def __call__(self, line: str) -> None:
        self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def event(self, event: ProgressEvent) -> None:
        task = self._tasks.get(event.phase)
        if task is None:
            task = self._bar.add_task(event.label, total=max(event.total, 1), phase=event.phase)
            self._tasks[event.phase] = task
        self._bar.update(
            task,
            completed=event.done,
            total=max(event.total, 1),
            description=event.label or "done",
        )

    def close(self) -> None:
        """Stop and remove the live display (the lines stay)."""
        self._bar.stop()


def make_progress(
    *, quiet: bool, stream: IO[str] | None = None
) -> LineProgress | LiveProgress | None:
    """The progress sink of the command line: ``None`` with ``quiet``, a :class:`LiveProgress`
    when ``stream`` (default standard error) is a terminal (and ``TERM`` is not ``dumb``), else
    a :class:`LineProgress`."""
    if quiet:
        return None
    target = stream if stream is not None else sys.stderr
    try:
        tty = target.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return LiveProgress(target)
    return LineProgress(target)
