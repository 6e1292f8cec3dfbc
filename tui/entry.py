"""Installed entry point: the core CLI with the Textual front end plugged in.

Textual is imported only when the TUI actually starts, so CLI commands stay fast.
Importing it, starting the reader processes (and the demo node) takes a second
or two: a line says so at once instead of a blank terminal, and is erased
when the app ends.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

STARTING = "dicomtools: starting the terminal UI..."


def launch_tui(**kwargs: Any) -> int:
    shown = _say_starting()
    try:
        from dicomtools.tui.app import run_app

        return run_app(**kwargs)
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _say_starting() -> bool:
    try:
        if not sys.stderr.isatty():
            return False
        sys.stderr.write(STARTING)
        sys.stderr.flush()
    except (OSError, ValueError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    try:  # Ctrl-C while the CLI is still being imported: one line, exit 130, no traceback
        from dicomtools.core.cli.main import main as core_main

        return core_main(argv, tui_launcher=launch_tui)
    except KeyboardInterrupt:
        import sys

        sys.stderr.write("dicomtools: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
