"""``dicomtools tui``: open the terminal UI (browse, filter, mark, retrieve, store, settings).

Core never imports Textual: the installed entry point puts a ``tui_launcher``
into the parsed arguments and this command only checks its input and calls it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dicomtools.core.cli.common import RunError, UsageError, add_cache_options, add_option


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tui",
        help="open the terminal UI (also what plain `dicomtools` does in a terminal)",
        description="Browse a folder's reference tree live, filter it with tag expressions, mark "
        "plans, retrieve from and store to DICOM nodes, edit the preset. Keys: F1 or ? lists them.",
    )
    add_option(p, "--path", default=None, help="folder to open in Browse [default: none; press o in the app]")
    add_option(p, "--searchPattern", default=None, metavar="GLOB", help="file-name glob, e.g. *.dcm [default: all files]")
    add_option(p, "--config", default=None, metavar="FILE", help="preset TOML [default: $XDG_CONFIG_HOME/dicomtools/config.toml]")
    add_option(p, "--node", default=None, metavar="NAME", help="preset node selected in Retrieve and Store")
    add_cache_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    launcher = getattr(args, "tui_launcher", None)
    if launcher is None:
        raise RunError("the terminal UI is not part of this installation (run the installed `dicomtools` command)")
    if args.path is not None and not os.path.isdir(args.path):
        raise UsageError(f"--path {args.path!r}: not a folder")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the terminal UI needs a terminal (stdin and stdout are not a TTY); use show/search instead")
    return int(
        launcher(
            path=args.path,
            config=args.config,
            node=args.node,
            pattern=args.searchPattern,
            cache=args.cache,
            no_cache=args.noCache,
            debug=bool(getattr(args, "debug", False)),
        )
    )
