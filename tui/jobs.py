"""Long-running jobs of the TUI: one runner for every screen, a registry the quit dialog asks.

A job is one core service call (scan, search, export, anonymize, store,
retrieve, echo) run in a Textual thread worker. The runner gives it a progress
sink and a :class:`CancelToken`, shows it in a :class:`ProgressPane`, and hands
the screen one typed :class:`JobOutcome` on the UI thread: the result, or a
one-line error (never a Python class name), or "cancelled". Every job's end
is logged at INFO (WARNING when it failed), so the Log screen has each result.
``post_message`` is the only thread-safe way back into the UI.
"""

from __future__ import annotations

import enum
import itertools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from textual.message_pump import MessagePump

from dicomtools.core.progress import CancelToken, ProgressEvent, ProgressSink
from dicomtools.tui.messages import JobFinished, JobProgress

if TYPE_CHECKING:
    from dicomtools.tui.widgets.progress_pane import ProgressPane

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobState(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class Job:
    id: str
    title: str
    screen: str
    cancel: CancelToken = field(default_factory=CancelToken)
    temp_dirs: list[str] = field(default_factory=list)

    @property
    def cancelled(self) -> bool:
        return self.cancel.cancelled


@dataclass(frozen=True)
class JobOutcome(Generic[T]):
    """How a job ended: ``result`` when it ran to the end (possibly cancelled part way)."""

    job: Job
    result: T | None
    error: str = ""
    cancelled: bool = False

    @property
    def value(self) -> T:
        """``result`` of a job that returned one: for a handler past its ``error`` check."""
        if self.result is None:
            raise RuntimeError(f"{self.job.title}: ended without a result ({self.error or 'no error given'})")
        return self.result

    @property
    def state(self) -> JobState:
        if self.error:
            return JobState.FAILED
        return JobState.CANCELLED if self.cancelled else JobState.DONE


def error_text(exc: BaseException) -> str:
    """One line for the user: what went wrong, without the Python class name."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = " ".join(str(exc).split())
    return text or "unexpected error (details in the Log, F6)"


class JobRegistry:
    """Running jobs by id; ``finish`` removes a job and deletes its temp folders."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def start(self, title: str, screen: str) -> Job:
        job = Job(f"{screen}-{next(self._ids)}", title, screen)
        self._jobs[job.id] = job
        log.info("job started: %s", title)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def finish(self, job_id: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            clean_temp(job)

    def running(self, screen: str | None = None) -> list[Job]:
        return [j for j in self._jobs.values() if screen is None or j.screen == screen]

    def cancel(self, screen: str | None = None) -> int:
        """Ask the running jobs (of one screen, or all) to stop; returns how many were asked."""
        jobs = self.running(screen)
        for job in jobs:
            job.cancel.cancel()
        return len(jobs)

    def cleanup_all(self) -> None:
        for job in list(self._jobs.values()):
            clean_temp(job)


def clean_temp(job: Job) -> None:
    for d in job.temp_dirs:
        shutil.rmtree(d, ignore_errors=True)
    job.temp_dirs.clear()


class MessageSink:
    """A core progress sink that posts :class:`JobProgress` to ``target`` (any thread)."""

    def __init__(self, target: MessagePump, job_id: str) -> None:
        self.target = target
        self.job_id = job_id

    def __call__(self, event: ProgressEvent) -> None:
        self.target.post_message(JobProgress(self.job_id, event))


# what a screen's ``done`` callback returns: the pane's summary (state from the outcome),
# or a summary with its own state (a store that ran but failed some files)
Summary = str | tuple[str, JobState]
Work = Callable[[ProgressSink, Job], T]
Done = Callable[[JobOutcome[T]], Summary]


@dataclass
class _Running(Generic[T]):
    job: Job
    pane: ProgressPane
    done: Callable[[JobOutcome[Any]], Summary]


class JobRunner:
    """Start, show, cancel and finish jobs: the one copy of the worker code.

    ``run(pane, ...)`` starts ``work(sink, job)`` in a thread; its progress and
    end are posted to ``pane`` (which forwards them here), so screens never
    handle job messages themselves.
    """

    def __init__(self, registry: JobRegistry) -> None:
        self.registry = registry
        self._running: dict[str, _Running[Any]] = {}

    def run(
        self,
        pane: ProgressPane,
        screen: str,
        title: str,
        work: Work[T],
        done: Done[T],
        *,
        label: str | None = None,
        unit: str = "files",
    ) -> Job:
        job = self.registry.start(title, screen)
        self._running[job.id] = _Running(job, pane, done)
        pane.start(job.id, label or title, unit=unit)
        pane.run_worker(
            lambda: self._body(job, pane, work), thread=True, group=f"job-{screen}", exit_on_error=False,
            name=title,
        )
        return job

    def _body(self, job: Job, pane: ProgressPane, work: Work[Any]) -> None:
        try:
            result = work(MessageSink(pane, job.id), job)
        except Exception as exc:
            log.debug("job %s failed", job.title, exc_info=True)
            pane.post_message(JobFinished(job.id, error=error_text(exc)))
            return
        cancelled = bool(getattr(result, "cancelled", False)) or job.cancelled
        pane.post_message(JobFinished(job.id, result, cancelled=cancelled))

    def finished(self, message: JobFinished) -> None:
        """On the UI thread: close the job, let the screen read the outcome, show and log it."""
        running = self._running.pop(message.job_id, None)
        self.registry.finish(message.job_id)
        if running is None:
            return
        outcome: JobOutcome[Any] = JobOutcome(running.job, message.result, message.error, message.cancelled)
        try:
            summary = running.done(outcome)
        except Exception as exc:  # a bug in a screen's handler must not lose the job's line
            log.exception("showing the result of %s failed", running.job.title)
            summary = (error_text(exc), JobState.FAILED)
        text, state = summary if isinstance(summary, tuple) else (summary, outcome.state)
        if outcome.error and not text:
            text = outcome.error
        running.pane.finish(message.job_id, text, state.value)
        level = logging.WARNING if state is JobState.FAILED else logging.INFO
        log.log(level, "job %s: %s: %s", state.value, running.job.title, text)

    def cancel(self, screen: str) -> int:
        return self.registry.cancel(screen)
