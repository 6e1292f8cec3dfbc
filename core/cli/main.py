"""Top-level parser and dispatcher.

Subcommand modules live next to this one and expose ``register(subparsers)``
which adds a parser whose ``func(args) -> int`` does the work. The TUI is not
imported here (core never imports Textual): the installed entry point passes a
``tui_launcher`` in.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from dicomtools.core import __version__, lazylog
from dicomtools.core.cli import interrupt
from dicomtools.core.cli.common import ArgumentParser
from dicomtools.core.errors import ExitStatus

log = lazylog.get_logger(__name__)

# Order is the order shown in --help. A module missing (feature not built yet) is skipped.
COMMANDS = ["show", "search", "retrieve", "store", "receive", "anonymize", "echo", "config", "demo", "tui"]

TuiLauncher = Callable[..., int]


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the line, so only its module is imported (start-up speed)."""
    for arg in argv:
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


def _only_version(argv: Sequence[str]) -> bool:
    """``--version`` before any command: answer it without building a command's parser."""
    for arg in argv:
        if arg == "--version":
            return True
        if not arg.startswith("-"):
            return False
    return False


def build_parser(
    tui_launcher: TuiLauncher | None = None, only: str | None = None, commands: bool = True
) -> ArgumentParser:
    parser = ArgumentParser(
        prog="dicomtools",
        description="Radiotherapy DICOM: reference trees, search, Q/R retrieve, store, anonymize.",
    )
    parser.add_argument("--version", action="version", version=f"dicomtools {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.set_defaults(tui_launcher=tui_launcher)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in ([only] if only else COMMANDS) if commands else []:
        try:
            module = importlib.import_module(f"dicomtools.core.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dicomtools.core.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def configure_logging(debug: bool = False) -> None:
    """Log records to stderr, one sanitized line each (they quote file names and values)."""
    import logging

    from dicomtools.core.dicom.logformat import SanitizingFormatter

    stderr_handler = logging.StreamHandler()
    stderr_handler.setFormatter(SanitizingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[stderr_handler])


def main(argv: Sequence[str] | None = None, tui_launcher: TuiLauncher | None = None) -> int:
    """Run one command. ``argv`` None means a real process: Ctrl-C then ends it within a second."""
    process = argv is None
    quick = False
    try:
        if process:
            interrupt.install()
        code, quick = _main(argv, tui_launcher)
    except KeyboardInterrupt:  # during start-up imports or argument parsing
        sys.stderr.write("dicomtools: interrupted\n")
        code = interrupt.EXIT_CODE
    if process and (quick or interrupt.interrupted()):
        # A command that set ``quick_exit`` has written everything and holds nothing open:
        # tearing the interpreter down (freeing every summary, module and cycle) would
        # only add ~5-10 ms to a command whose whole job may take 50.
        interrupt.hard_exit(code)
    return code


def _main(argv: Sequence[str] | None, tui_launcher: TuiLauncher | None) -> tuple[int, bool]:
    """The exit status, and whether the command allows the process to end without tear-down."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # File names that are not valid UTF-8 arrive as surrogate escapes: print, don't crash.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser(tui_launcher, _chosen_command(args_list), commands=not _only_version(args_list))
    args = parser.parse_args(args_list)
    interrupt.set_prefix(f"dicomtools {args.command}" if args.command else "dicomtools")
    if args.command in (None, "tui", "demo"):
        interrupt.uninstall()  # the TUI reads Ctrl-C as a key and must restore the terminal itself
    if args.debug or args.command in (None, "tui", "demo"):
        configure_logging(debug=args.debug)  # the TUI's log capture takes over this handler, as before
    else:  # a command that logs nothing never imports logging (start-up speed)
        lazylog.when_ready(configure_logging)
    if args.command is None:
        if tui_launcher is not None and sys.stdin.isatty() and sys.stdout.isatty():
            return tui_launcher(), False
        parser.print_help()
        return ExitStatus.OK, False
    quick = bool(getattr(args, "quick_exit", False))
    try:
        return int(args.func(args) or ExitStatus.OK), quick
    except (Exception, KeyboardInterrupt) as exc:  # last line of defence: one line, never a traceback
        from dicomtools.core.cli.status import failure

        result = failure(exc)
        if result.unexpected:
            if args.debug:
                raise
            log.debug("unhandled", exc_info=True)
        if result.message:
            sys.stderr.write(f"dicomtools {args.command}: {result.message}\n")
        return result.status, quick


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
