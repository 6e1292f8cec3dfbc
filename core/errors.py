"""One error model for the whole core: every error the user may see derives from
:class:`DicomToolsError` and says, in one line, what went wrong and what to do.

Why one root: the CLI (and the TUI) must turn any failure into one line and an
exit status without knowing each module's classes; before this, 14 classes had
10 unrelated roots and the CLI matched one by its class name. Each class keeps
its name and module (``ConfigError`` stays in ``core.config``...) and may keep a
builtin base as well (``ExprError`` is still a ``ValueError``) so existing
``except`` clauses keep working.

The exit status lives on the class (``exit_status``) so the code that raises
says how bad it is; ``core.cli.status`` is the one place that turns an
exception into an exit status and a message.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit statuses of ``dicomtools`` (the README's "Exit codes")."""

    OK = 0
    FAILED = 1  # the job could not be done: path missing, peer refused, a file not copied
    USAGE = 2  # bad input the user can fix: options, expression, preset, profile
    INTERRUPTED = 130  # Ctrl-C or a cancelled run (128 + SIGINT, the shell's convention)


class DicomToolsError(Exception):
    """Base of every core error; ``str(exc)`` is the one-line message for the user."""

    exit_status: ExitStatus = ExitStatus.FAILED

    @property
    def user_message(self) -> str:
        """The line shown to the user; never a Python class name."""
        return str(self).strip() or "the operation failed"


def describe(exc: BaseException) -> str:
    """One line for the user about any exception, without its Python class name.

    Ours say what they mean; an ``OSError`` gives the system's words and the
    file; anything else is a bug, and its text (or "unexpected error") is all
    the user can use (``--debug`` and the log keep the traceback).
    """
    if isinstance(exc, DicomToolsError):
        return exc.user_message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip()
    return f"unexpected error: {text}" if text else "unexpected error"
