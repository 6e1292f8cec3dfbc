"""A pane showing each job's progress: a bar, counts, rate, current item and recent messages.

Drawn with box-drawing characters only (heavy line = done, light = to do), so
it reads the same without colour and on any terminal font.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

from dicomtools.core.progress import ProgressEvent
from dicomtools.tui.clock import Clock
from dicomtools.tui.messages import JobFinished, JobProgress

BAR_WIDTH = 16


@dataclass
class JobView:
    job_id: str
    title: str
    unit: str
    started: float
    done: int = 0
    total: int | None = None
    nbytes: int = 0
    text: str = ""
    finished: bool = False
    summary: str = ""
    state: str = "running"  # running, done, failed, cancelled
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    ended: float | None = None


def bar(done: int, total: int | None, width: int = BAR_WIDTH) -> str:
    if not total:
        return "─" * width
    filled = max(0, min(width, round(width * done / total)))
    return "━" * filled + "─" * (width - filled)


def human_rate(done: int, nbytes: int, elapsed: float, unit: str) -> str:
    if elapsed <= 0:
        return ""
    parts = [f"{done / elapsed:.0f} {unit}/s"]
    if nbytes:
        parts.append(f"{nbytes / elapsed / 1e6:.1f} MB/s")
    return "  ".join(parts)


class ProgressPane(Widget):
    """Shows the last few jobs of one screen, newest first (a short pane never hides the latest).

    The job runner posts each job's progress and end here; the end goes back
    to the runner, which asks the screen for the summary.
    """

    DEFAULT_CSS = """
    ProgressPane { height: auto; max-height: 8; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, clock: Clock | None = None, keep: int = 2, message_lines: int = 2, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clock = clock or Clock()
        self.keep = keep
        self.message_lines = message_lines
        self.jobs: dict[str, JobView] = {}

    # -- feeding
    def on_job_progress(self, message: JobProgress) -> None:
        message.stop()
        self.update_event(message.job_id, message.event)

    def on_job_finished(self, message: JobFinished) -> None:
        message.stop()
        runner = getattr(self.app, "runner", None)
        if runner is not None:
            runner.finished(message)

    def start(self, job_id: str, title: str, unit: str = "files") -> None:
        self.jobs[job_id] = JobView(job_id, title, unit, self.clock.monotonic())
        while len(self.jobs) > self.keep:
            oldest = next((k for k, j in self.jobs.items() if j.finished), None)
            if oldest is None:
                break
            del self.jobs[oldest]
        self._changed()

    def update_event(self, job_id: str, event: ProgressEvent) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        if event.kind in ("started", "advanced", "finished"):
            job.done = event.done
            if event.total is not None:
                job.total = event.total
            if event.nbytes:
                job.nbytes = event.nbytes
            if event.text and event.kind != "finished":
                job.text = event.text
        if event.kind == "message" and event.text:
            job.messages.append((event.level, event.text))
            del job.messages[: -self.message_lines * 4]
        self._changed()

    def finish(self, job_id: str, summary: str, state: str = "done") -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        job.finished = True
        job.summary = summary
        job.state = state
        job.ended = self.clock.monotonic()
        self._changed()

    def drop_titled(self, title: str) -> None:
        """Forget the jobs shown as ``title`` (a cleared filter leaves no stale result line)."""
        for job_id in [k for k, j in self.jobs.items() if j.title == title]:
            del self.jobs[job_id]
        self._changed()

    def clear(self) -> None:
        self.jobs.clear()
        self._changed()

    def _changed(self) -> None:
        self.display = bool(self.jobs)
        self.refresh(layout=True)

    # -- drawing
    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        first = True
        for job in reversed(self.jobs.values()):
            if not first:
                out.append("\n")
            first = False
            out.append_text(self._job_line(job))
            for level, msg in job.messages[-self.message_lines :]:
                style = "bold" if level in ("warning", "error") else "dim"
                out.append("\n  ")
                out.append(f"{level}: " if level in ("warning", "error") else "", style=style)
                out.append(msg, style=style)
        return out

    def _job_line(self, job: JobView) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        end = job.ended if job.ended is not None else self.clock.monotonic()
        elapsed = end - job.started
        line.append(f"{job.title} ", style="bold")
        if job.finished:
            mark = {"done": "done", "failed": "FAILED", "cancelled": "cancelled"}.get(job.state, job.state)
            style = "bold reverse" if job.state == "failed" else "bold"
            line.append(f"[{mark}] ", style=style)
            line.append(job.summary)
            if elapsed > 0:
                line.append(f"  ({elapsed:.1f} s)", style="dim")
            return line
        line.append(bar(job.done, job.total) + " ")
        total = f"/{job.total}" if job.total is not None else ""
        line.append(f"{job.done}{total} {job.unit}")
        rate = human_rate(job.done, job.nbytes, elapsed, job.unit)
        if rate:
            line.append(f"  {rate}", style="dim")
        if job.text:
            line.append(f"  {job.text}", style="dim")
        return line
