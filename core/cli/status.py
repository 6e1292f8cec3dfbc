"""The one place where a failure becomes an exit status and a line on stderr.

Commands raise (a :class:`DicomToolsError` says its own status) or return an
:class:`ExitStatus`; ``main`` calls :func:`failure` for anything that escapes,
so no command writes its own error line or picks a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.errors import DicomToolsError, ExitStatus, describe


@dataclass(frozen=True)
class Failure:
    """What ``main`` prints (empty: nothing) and the status it exits with."""

    status: ExitStatus
    message: str
    unexpected: bool = False  # not one of ours: ``--debug`` re-raises it with its traceback


def failure(exc: BaseException) -> Failure:
    """Map an exception that reached ``main`` to its exit status and one-line message."""
    if isinstance(exc, DicomToolsError):
        return Failure(exc.exit_status, sanitize(describe(exc)))
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitStatus.INTERRUPTED, "interrupted")
    if isinstance(exc, BrokenPipeError):  # the reader of our output went away (``| head``): not an error
        return Failure(ExitStatus.OK, "")
    if isinstance(exc, OSError):
        return Failure(ExitStatus.FAILED, sanitize(describe(exc)), unexpected=True)
    return Failure(ExitStatus.FAILED, sanitize(f"{describe(exc)} (--debug shows where)"), unexpected=True)
