"""Every message the TUI's workers send back to the UI thread.

Workers run in threads and talk to widgets only through ``post_message``
(thread-safe). Progress messages coalesce: when several ``advanced`` events of
the same job are queued, only the newest is handled (``can_replace``), so a
fast job never floods the UI.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from dicomtools.core.progress import ProgressEvent


class JobProgress(Message):
    """A core ``ProgressEvent`` of job ``job_id``."""

    def __init__(self, job_id: str, event: ProgressEvent) -> None:
        super().__init__()
        self.job_id = job_id
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, JobProgress)
            and message.job_id == self.job_id
            and self.event.kind == "advanced"
            and message.event.kind == "advanced"
        )


class JobFinished(Message):
    """A job ended: ``error`` is a one-line reason, ``cancelled`` when the user stopped it."""

    def __init__(
        self, job_id: str, result: Any = None, error: str = "", cancelled: bool = False
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.result = result
        self.error = error
        self.cancelled = cancelled


class ForestUpdated(Message):
    """A new reference forest for the browsed folder (partial while the scan runs)."""

    def __init__(self, root: str, forest: list[Any], final: bool, scan_result: Any = None) -> None:
        super().__init__()
        self.root = root
        self.forest = forest
        self.final = final
        self.scan_result = scan_result

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ForestUpdated) and message.root == self.root and not self.final


class FolderChanged(Message):
    """Files appeared or disappeared in a folder (poll, or a retrieve wrote there)."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FolderChanged) and message.root == self.root


class DetailsLoaded(Message):
    """Element rows of one file (or why they could not be read)."""

    def __init__(self, path: str, rows: list[Any], error: str = "") -> None:
        super().__init__()
        self.path = path
        self.rows = rows
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DetailsLoaded)


class LogAppended(Message):
    """New records reached the in-app log buffer; consecutive ones collapse into one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogAppended)


class MarksChanged(Message):
    """The set of marked plans/patients changed."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MarksChanged)
