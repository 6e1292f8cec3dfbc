"""``dicomtools store``: send a folder to a node, per patient and plan in ARIA's order."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from dicomtools.core.cli.common import (
    RunError,
    UsageError,
    add_cache_options,
    add_option,
    open_cache,
    parse_pairs,
)
from dicomtools.core.cli.config import add_node_options, node_from_args, node_title
from dicomtools.core.errors import ExitStatus
from dicomtools.core.progress import LineProgress, ProgressEvent

if TYPE_CHECKING:
    from dicomtools.core.net.store import StoreResult


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "store",
        help="store patient data using C-STORE (ARIA import order, resumable)",
        description="Scan --path, build the reference tree and send per patient and plan: image series, "
        "structure set, plan, CBCT, doses, registered series. A refused plan or dose stops that patient. "
        "With --statusFileName a rerun skips what was stored.",
    )
    add_option(p, "--path", required=True, help="folder (or file) to send, read recursively")
    add_option(p, "--searchPattern", default=None, metavar="GLOB", help="file-name glob, e.g. *.dcm [default: all]")
    add_option(p, "--showMessages", type=_bool, nargs="?", const=True, default=True, metavar="BOOL",
               help="show per-file messages [default: true]")
    add_option(p, "--statusFileName", default=None, metavar="FILE",
               help="stored instances are appended here; a rerun skips them")
    add_option(p, "--machineMapping", nargs="+", action="extend", metavar="A=B",
               help="rename Treatment Machine Name A to B in the plans sent, e.g. TrueBeam1=TB1")
    add_option(p, "--defaultMachines", nargs="+", action="extend", metavar="MODEL=MACHINE",
               help="fill an empty Treatment Machine Name from the beam's model, e.g. RDS=HALCYON")
    add_option(p, "--includeAll", "--include-all", action="store_true",
               help="send every readable instance (REG, RT images, records, orphan doses): PACS-to-PACS copies")
    add_option(p, "--associations", type=int, default=1, metavar="N",
               help="parallel associations [default: 1]")
    add_option(p, "--dryRun", action="store_true", help="print the send order and checks; send nothing")
    add_option(p, "--workers", type=int, default=None, help="reader processes for the scan [default: automatic]")
    add_node_options(p)
    add_cache_options(p)
    p.set_defaults(func=run, quick_exit=True)


class _Messages:
    """Progress line plus per-file messages (when --showMessages)."""

    def __init__(self, show: bool) -> None:
        self.line = LineProgress()
        self.show = show

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "message":
            if self.show or event.level == "error":
                self.line(ProgressEvent(event.job, "message", text=event.text, level=event.level))
                if not self.line.enabled:
                    sys.stderr.write(event.text + "\n")
            return
        self.line(event)


def _report(res: StoreResult, node_text: str, status_file: str | None = None) -> int:
    for pid, why in res.stopped_patients.items():
        sys.stderr.write(f"patient {pid or '<no id>'} stopped: {why}\n")
    if res.aborted:
        sys.stderr.write(f"stopped: {res.aborted}\n")
        if res.status_file_failed:
            sys.stderr.write(f"free some space, then rerun with the same --statusFileName: it continues after "
                             f"the last line written to {status_file}\n")
        elif status_file:
            sys.stderr.write(f"{res.stored + res.warned} confirmed instances are in {status_file}; "
                             "rerun with the same --statusFileName to send the rest\n")
    sys.stdout.write(f"store to {node_text}: {res.summary()}\n")
    if res.cancelled:
        sys.stderr.write("interrupted; rerun with the same --statusFileName to continue\n")
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if res.ok else ExitStatus.FAILED


def _load_sender() -> None:
    """Import what follows the scan; ``scan`` runs this while its forked readers read."""
    import dicomtools.core.net.machines
    import dicomtools.core.net.store
    import dicomtools.core.net.store_order  # noqa: F401


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `store -h` must not import pydicom/pynetdicom (start-up speed).
    from dicomtools.core.archive.scan import scan

    if args.associations < 1:
        raise UsageError("--associations must be at least 1")
    if not os.path.exists(args.path):
        raise RunError(f"--path {args.path!r}: no such file or folder")
    cfg, node = node_from_args(args, lazy_logging=True)  # store's pydicom calls go through ready()
    mapping = dict(cfg.machines.mapping) | parse_pairs(args.machineMapping, "--machineMapping")
    defaults = dict(cfg.machines.defaults) | parse_pairs(args.defaultMachines, "--defaultMachines")
    sink = _Messages(args.showMessages)
    scanned = scan(args.path, args.searchPattern, sink=sink.line, workers=args.workers, cache=open_cache(args),
                   meanwhile=_load_sender)
    from dicomtools.core.net.assoc import NetError
    from dicomtools.core.net.machines import group_messages
    from dicomtools.core.net.store import store
    from dicomtools.core.net.store_order import plan_store

    if args.showMessages:
        for u in scanned.unreadable:
            sys.stderr.write(f"not sent: {u.path}: {u.reason}\n")
    plan = plan_store(scanned.instances, defaults, include_all=args.includeAll)
    for inst, why in plan.conflicts:  # never one of them silently: the node would keep whichever came first
        sys.stderr.write(f"warning: {inst.path}: {why}\n")
    if args.showMessages:
        for w in plan.warnings:
            sys.stderr.write(f"warning: {w}\n")
    if args.dryRun:
        for it in plan.items:
            sys.stdout.write(f"{it.stage:4d} {it.category:8s} {it.inst.patient_id}  {it.path}\n")
        sys.stdout.write(f"{len(plan.items)} instances would be sent, {len(plan.skipped)} left out\n")
        return ExitStatus.OK
    if not plan.items:
        raise RunError(f"nothing to send in {args.path!r} ({len(scanned.unreadable)} unreadable files)")
    try:
        res = store(node, plan, status_file=args.statusFileName, associations=args.associations,
                    mapping=mapping, defaults=defaults, use_tls=args.useTls, sink=sink)
    except NetError as exc:  # the status file cannot be opened
        raise RunError(str(exc)) from None
    if res.problems:
        for line in group_messages(res.problems):
            sys.stderr.write(f"{line}\n")
        plans = len({p.plan_uid for p in res.problems})
        raise RunError(f"nothing sent: {plans} plan{'s' if plans != 1 else ''} with treatment machine problems "
                       "(fix with --machineMapping / --defaultMachines, or the preset's [machines])")
    return _report(res, node_title(node), args.statusFileName)
