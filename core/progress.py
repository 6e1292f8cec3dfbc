"""The progress interface every long job reports through.

Core jobs (scan, store, retrieve, anonymize) take a ``ProgressSink`` and call
it; the CLI draws a line on stderr, the TUI posts messages to its progress
panes, tests record the events. Sinks must be cheap and thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Protocol, TextIO
else:
    Protocol = object  # ProgressSink only names a shape for mypy; nothing checks it at run time


class ProgressEvent(NamedTuple):
    """One report from a job.

    ``kind`` is ``started``, ``advanced``, ``message`` or ``finished``; ``done``
    and ``total`` count units (files, instances); ``total`` is None while unknown.
    A NamedTuple, not a dataclass: every command imports this at start-up, and
    creating a dataclass costs ~0.7 ms there.
    """

    job: str
    kind: str
    done: int = 0
    total: int | None = None
    text: str = ""
    level: str = "info"
    nbytes: int = 0


class ProgressSink(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


def null_sink(event: ProgressEvent) -> None:
    """A sink that ignores everything."""


class RecordingSink:
    """Keeps every event; for tests and for summaries."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class CancelToken:
    """A thread-safe flag a UI sets and a job polls between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Reporter:
    """Helper a job uses to emit events with a fixed job name."""

    def __init__(self, job: str, sink: ProgressSink | None = None) -> None:
        self.job = job
        self.sink: ProgressSink = sink or null_sink

    def started(self, total: int | None = None, text: str = "") -> None:
        self.sink(ProgressEvent(self.job, "started", 0, total, text))

    def advanced(self, done: int, total: int | None = None, text: str = "", nbytes: int = 0) -> None:
        self.sink(ProgressEvent(self.job, "advanced", done, total, text, nbytes=nbytes))

    def message(self, text: str, level: str = "info") -> None:
        self.sink(ProgressEvent(self.job, "message", text=text, level=level))

    def finished(self, done: int, total: int | None = None, text: str = "") -> None:
        self.sink(ProgressEvent(self.job, "finished", done, total, text))


class LineProgress:
    """CLI sink: one self-overwriting line on stderr, only when it is a terminal.

    Redraws at most ten times a second so a fast scan is not slowed by printing.
    """

    def __init__(self, stream: TextIO | None = None, force: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()
        self._width = 0

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if event.kind == "started":
            self._start = now
        if event.kind == "advanced" and now - self._last < 0.1:
            return
        self._last = now
        if event.kind == "message":
            self._clear()
            self.stream.write(f"{sanitize(event.text)}\n")
            self.stream.flush()
            return
        rate = event.done / max(now - self._start, 1e-6)
        total = f"/{event.total}" if event.total is not None else ""
        line = sanitize(f"{event.job}: {event.done}{total} ({rate:.0f}/s) {event.text}")[:120]
        self._clear()
        self.stream.write(line)
        self._width = len(line)
        if event.kind == "finished":
            self._clear()
        self.stream.flush()

    def _clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
