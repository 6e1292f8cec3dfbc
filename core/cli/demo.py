"""``dicomtools demo``: write the phantom archive and open it (TUI on a terminal, else the tree)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dicomtools.core.cli.common import RunError, add_option
from dicomtools.core.errors import ExitStatus

MARKER = ".dicomtools-demo"
DEFAULT_DIR = "dicomtools-demo"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="write a synthetic RT archive and open it",
        description="Write a deterministic archive of fake RT patients (plans, structure sets, "
        "CT/MR, doses, records, DRRs, registrations, unconnected data, broken files) into DIR, "
        "then open the TUI on it; prints the tree instead when not on a terminal.",
    )
    p.add_argument("dir", nargs="?", default=DEFAULT_DIR, help=f"output folder [default: ./{DEFAULT_DIR}]")
    add_option(p, "--patients", type=int, default=2, help="number of patients [default: 2]")
    add_option(p, "--seed", type=int, default=0, help="seed for UIDs [default: 0]")
    add_option(p, "--noTui", action="store_true", help="print the tree even on a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dicomtools.core.archive.scan import scan
    from dicomtools.core.phantom import generate
    from dicomtools.core.render.forest import render_tree
    from dicomtools.core.tree import build_forest

    if args.patients < 1 or args.patients > 500:
        raise RunError("--patients must be between 1 and 500", 2)
    out = args.dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"{out!r} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, MARKER)):
        raise RunError(f"{out!r} is not empty and was not written by 'dicomtools demo'; choose another folder")
    manifest = generate(out, patients=args.patients, seed=args.seed)
    with open(os.path.join(out, MARKER), "w", encoding="utf-8") as fh:
        fh.write("written by dicomtools demo; safe to delete\n")
    sys.stderr.write(f"demo archive: {manifest.file_count} files in {os.path.abspath(out)}\n")
    launcher = getattr(args, "tui_launcher", None)
    if launcher is not None and not args.noTui and sys.stdin.isatty() and sys.stdout.isatty():
        return int(launcher(path=out, demo=True))
    result = scan(out, workers=1)
    sys.stdout.write(render_tree(build_forest(result.instances), False, result.unreadable, result.files_seen))
    return ExitStatus.OK
