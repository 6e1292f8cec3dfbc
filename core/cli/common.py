"""Option helpers shared by the subcommands.

Every option keeps the seed tool's camelCase spelling (``--searchPattern``)
so existing scripts work, and also accepts the kebab-case spelling
(``--search-pattern``). Errors the user can fix end as one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from dicomtools.core.errors import DicomToolsError, ExitStatus

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any, NoReturn


def _untranslated(message: str) -> str:
    return message


def _untranslated_n(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


# argparse's own words ("usage:", "options", its error texts) stay English, as every other line
# of this tool: its gettext look-up imports locale and probes the locale folders for a catalogue
# on every message it builds, ~1.5 ms of each command's start.
argparse._ = _untranslated  # type: ignore[attr-defined]
argparse.ngettext = _untranslated_n  # type: ignore[attr-defined]


class UsageError(DicomToolsError):
    """Bad input from the user: one line, exit status USAGE (2)."""

    exit_status = ExitStatus.USAGE


class RunError(DicomToolsError):
    """A run that could not do its job (missing path, peer refused): one line, exit status FAILED (1)."""

    def __init__(self, message: str, code: int = ExitStatus.FAILED) -> None:
        super().__init__(message)
        self.exit_status = ExitStatus(code)

    @property
    def code(self) -> int:
        """The exit status as a number (kept for callers that read ``code``)."""
        return int(self.exit_status)


def kebab(name: str) -> str:
    """``--searchPattern`` -> ``--search-pattern``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "-" + m.group(1).lower(), name)


def add_option(parser: argparse.ArgumentParser | Any, *names: str, **kwargs: Any) -> None:
    """Add an option under its given spellings plus the kebab-case form of each."""
    spellings: list[str] = []
    for n in names:
        for s in (n, kebab(n)):
            if s not in spellings:
                spellings.append(s)
    if "dest" not in kwargs:
        long = next((n for n in names if n.startswith("--")), names[0])
        kwargs["dest"] = long.lstrip("-").replace("-", "_")
    parser.add_argument(*spellings, **kwargs)


def add_path_options(parser: argparse.ArgumentParser, required: bool = True, help: str = "folder to read, recursively") -> None:
    add_option(parser, "--path", required=required, help=help)
    add_option(
        parser,
        "--searchPattern",
        default=None,
        metavar="GLOB",
        help="file-name glob, case-insensitive, e.g. *.dcm or RP*.dcm [default: all files]",
    )


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """Parse ``A=B C=D`` (possibly given as one string or several) into a dict."""
    if not items:
        return {}  # the common case, without importing the preset's reader
    from dicomtools.core.config import parse_pairs as parse

    try:
        return parse(items)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}") from None


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil.

    argparse makes a help formatter for every ``add_argument`` (to check the
    metavar), and the stock one imports shutil (with bz2 and lzma) for the
    width: ~1.5 ms of every start-up, ``--version`` included.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class HelpFormatter(argparse.HelpFormatter):
    """The stock formatter, its width from :func:`terminal_columns`."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, terminal_columns() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's raw-description formatter (an epilog of examples kept as written), its width as above."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that exits with code 2 and a single-line error (no usage dump)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(ExitStatus.USAGE)


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--cache", metavar="DIR", default=None,
               help="index cache folder [default: $XDG_CACHE_HOME/dicomtools]")
    add_option(parser, "--noCache", action="store_true", help="read every file; neither use nor fill the index cache")


def open_cache(args: argparse.Namespace) -> Any:
    """The index cache the options ask for, or None; a cache that can't open is a warning, not an error."""
    if getattr(args, "noCache", False):
        return None
    from dicomtools.core.archive.cache import IndexCache

    try:
        return IndexCache(args.cache)
    except (OSError, Exception) as exc:  # noqa: B014 - sqlite3 errors included
        sys.stderr.write(f"warning: index cache unavailable ({exc}); reading all files\n")
        return None
