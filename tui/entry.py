"""Installed entry point: the core CLI with the Textual front end plugged in.

Textual is imported only when the TUI actually starts, so CLI commands stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def launch_tui(**kwargs: Any) -> int:
    from dicomtools.tui.app import run_app

    return run_app(**kwargs)


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
