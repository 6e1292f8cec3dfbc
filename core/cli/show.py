"""``dicomtools show``: scan a folder and print its per-patient reference tree."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from dicomtools.core.cli.common import (
    RunError,
    add_cache_options,
    add_option,
    add_path_options,
    open_cache,
    parse_pairs,
)
from dicomtools.core.config_path import default_config_file
from dicomtools.core.errors import ExitStatus

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "show",
        help="show plans and related data as a reference tree",
        description="Scan a folder recursively and show, per patient, the RT Plans and what they "
        "reference or what references them; data no plan reaches is listed last.",
    )
    add_path_options(p)
    add_option(p, "--format", choices=["tree", "flat", "json"], default="tree", help="output form [default: tree]")
    add_option(p, "--ascii", action="store_true", help="ASCII tree lines instead of box drawing")
    add_option(
        p,
        "--defaultMachines",
        nargs="+",
        action="extend",
        metavar="MODEL=MACHINE",
        help="fill an empty Treatment Machine Name from the beam's machine model, e.g. RDS=HALCYON",
    )
    add_option(p, "--config", metavar="FILE", default=None,
               help="preset whose [machines] defaults apply, as in the TUI [default: the user's preset]")
    add_option(p, "--workers", type=int, default=None, help="reader processes [default: all cores]")
    add_cache_options(p)
    # run() closes what it opened (the index cache): main may end the process without tear-down
    p.set_defaults(func=run, quick_exit=True)


def check_folder(path: str) -> None:
    if not os.path.exists(path):
        raise RunError(f"--path {path!r}: no such file or folder")
    if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
        raise RunError(f"--path {path!r}: permission denied")


def preset_machine_defaults(args: argparse.Namespace) -> dict[str, str]:
    """The preset's ``[machines] defaults``; without a preset file the TOML reader is not even imported."""
    if args.config is None and not os.path.exists(default_config_file()):
        return {}  # what the built-in defaults say
    from dicomtools.core.cli.config import load_from_args

    return dict(load_from_args(args).machines.defaults)


def run(args: argparse.Namespace) -> int:
    check_folder(args.path)
    # Nothing here makes reference cycles worth collecting, and with 100,000 summaries alive
    # every full collection walks them all: ~0.1-0.2 s of a warm 100,000-file run.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _show(args)
    finally:
        if was_enabled:
            gc.enable()


def _load_tree_and_render() -> None:
    """Import what follows the scan; ``scan`` runs this while its forked readers read."""
    import dicomtools.core.render.forest
    import dicomtools.core.tree  # noqa: F401


def _show(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `show -h` must not pay for the scanner (start-up speed).
    from dicomtools.core.archive.scan import scan
    from dicomtools.core.progress import LineProgress

    # the preset's default machines, as Browse applies them: one folder, one tree
    defaults = preset_machine_defaults(args) | parse_pairs(args.defaultMachines, "--defaultMachines")
    cache = open_cache(args)
    try:
        result = scan(args.path, args.searchPattern, sink=LineProgress(), workers=args.workers, cache=cache,
                      meanwhile=_load_tree_and_render)
    finally:
        if cache is not None:
            cache.close()
    from dicomtools.core.render.forest import render_flat, render_json, render_tree
    from dicomtools.core.tree import build_forest

    patients = build_forest(result.instances, defaults)
    if args.format == "json":
        text = render_json(
            patients,
            result.unreadable,
            {"files_scanned": result.files_seen, "elapsed_seconds": round(result.elapsed, 3)},
        )
    elif args.format == "flat":
        text = render_flat(patients, result.unreadable, result.files_seen)
    else:
        text = render_tree(patients, args.ascii, result.unreadable, result.files_seen)
    sys.stdout.write(text)
    return ExitStatus.OK
