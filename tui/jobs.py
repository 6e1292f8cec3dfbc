"""Long-running jobs of the TUI: a registry the quit dialog asks, and the progress sink.

A job is core work (scan, search, store, retrieve, export, anonymize) running
in a Textual thread worker. It gets a :class:`CancelToken` the UI can set and a
sink that turns core ``ProgressEvent``\\ s into messages posted to a widget;
``post_message`` is the only thread-safe way back into the UI.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from dataclasses import dataclass, field

from textual.message_pump import MessagePump

from dicomtools.core.progress import CancelToken, ProgressEvent
from dicomtools.tui.messages import JobProgress

log = logging.getLogger(__name__)


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
