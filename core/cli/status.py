"""The one place where a failure becomes an exit status and a line on stderr.

Commands raise (a :class:`DicomToolsError` says its own status) or return an
:class:`ExitStatus`; ``main`` calls :func:`failure` for anything that escapes,
so no command writes its own error line or picks a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.errors import DicomToolsError, ExitStatus


@dataclass(frozen=True)
class Failure:
    """What ``main`` prints (empty: nothing) and the status it exits with."""

    status: ExitStatus
    message: str
    unexpected: bool = False  # not one of ours: ``--debug`` re-raises it with its traceback


def failure(exc: BaseException) -> Failure:
    """Map an exception that reached ``main`` to its exit status and one-line message."""
    if isinstance(exc, DicomToolsError):
        return Failure(exc.exit_status, sanitize(exc.user_message))
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitStatus.INTERRUPTED, "interrupted")
    if isinstance(exc, BrokenPipeError):  # the reader of our output went away (``| head``): not an error
        return Failure(ExitStatus.OK, "")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return Failure(ExitStatus.FAILED, sanitize(f"{exc.strerror or exc}{where}"), unexpected=True)
    text = str(exc).strip() or "no details"
    return Failure(
        ExitStatus.FAILED, sanitize(f"unexpected error: {text} (--debug shows where)"), unexpected=True
    )
