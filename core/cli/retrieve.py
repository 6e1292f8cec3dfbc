"""``dicomtools retrieve``: one patient's plans and what they reference, via Q/R."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from dicomtools.core.cli.common import RunError, UsageError, add_option, parse_pairs
from dicomtools.core.cli.config import add_node_options, node_from_args, node_title
from dicomtools.core.errors import DicomToolsError, ExitStatus
from dicomtools.core.progress import LineProgress, ProgressEvent

if TYPE_CHECKING:
    from pathlib import Path

    from dicomtools.core.config import Config, NodeConfig
    from dicomtools.core.net.retrieve import RetrieveOptions


def register(sub: Any) -> None:
    p = sub.add_parser(
        "retrieve",
        help="retrieve patient data using Q/R (C-FIND, then C-MOVE or C-GET)",
        description="Find the patient's studies, retrieve them (only what the chosen plans need when the "
        "node allows) into a temporary folder, build the reference tree and save the wanted data into --path.",
    )
    add_option(p, "--patientId", default=None, help="Patient ID (0010,0020), exact")
    add_option(p, "--patientList", metavar="FILE", default=None,
               help="batch: text (one ID a line), CSV (PatientId[,PlanId]) or the hand-off JSON; "
               "each patient into --path/<Patient ID>/")
    add_option(p, "--parallel", type=int, default=1, metavar="N",
               help="batch: retrieve N patients at once (C-GET only) [default: 1]")
    add_option(p, "--planId", nargs="+", action="extend", metavar="PLAN",
               help="RT Plan Label (300A,0002) or plan SOP Instance UID; only these plans and their subtrees")
    add_option(p, "--onlyApprovedPlans", action="store_true", help="only plans with Approval Status APPROVED")
    add_option(p, "--newPatientId", default=None, help="Patient ID written into the saved files")
    add_option(p, "--newPatientName", default=None, help="Patient Name written into the saved files")
    add_option(p, "--anonymize", action="store_true", help="anonymize the saved data (needs --newPatientId/Name)")
    add_option(p, "--path", required=True, help="folder to save into")
    add_option(p, "--showTree", action="store_true", help="print the tree of what was saved")
    add_option(p, "--force", action="store_true",
               help="write into an existing non-empty --path without asking; batch: redo complete patients")
    add_option(p, "--useGet", action="store_true", help="C-GET instead of C-MOVE (no inbound port needed)")
    add_option(p, "--scpPort", type=int, default=None, metavar="PORT",
               help="port of our Storage SCP for C-MOVE [default: [local] scp_port]")
    add_option(p, "--wholePatient", action="store_true",
               help="always retrieve the whole patient, then select (no selective retrieval)")
    add_option(p, "--defaultMachines", nargs="+", action="extend", metavar="MODEL=MACHINE",
               help="machine names shown in the tree for plans with empty names")
    add_node_options(p)
    # When run() returns, every file is written and closed, the SCP stopped, the temporary folder
    # removed: the process may end without interpreter tear-down (~20-40 ms of freeing summaries).
    p.set_defaults(func=dispatch, quick_exit=True)


def _confirm_path(path: Path, force: bool) -> None:
    if not path.exists() or force:
        return
    if not path.is_dir():
        raise RunError(f"--path {str(path)!r} exists and is not a folder")
    if not any(path.iterdir()):
        return
    if not sys.stdin.isatty():
        raise RunError(f"--path {str(path)!r} exists and is not empty (use --force to write into it)")
    sys.stderr.write(f"{path} exists and is not empty; write into it? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise RunError("cancelled: --path not confirmed")


def anonymize_settings(args: argparse.Namespace, profile: str, options: list[str]) -> Any:
    """The anonymizer's settings, or a one-line error when this build has no anonymizer."""
    try:
        from dicomtools.core.services.anonymize import RetrieveAnonymizer
    except ImportError:
        raise RunError("--anonymize is not available yet in this version") from None
    return RetrieveAnonymizer(new_patient_id=args.newPatientId, new_patient_name=args.newPatientName,
                             profile=profile, options=options)


class RetrieveSink:
    """The progress line, plus warnings and errors on stderr when there is no line to draw on."""

    def __init__(self) -> None:
        self.line = LineProgress()

    def __call__(self, event: ProgressEvent) -> None:
        self.line(event)
        if event.kind == "message" and not self.line.enabled and event.level in ("warning", "error"):
            sys.stderr.write(event.text + "\n")


def retrieve_options(args: argparse.Namespace, cfg: Config, node: NodeConfig, out: Path,
                     anonymize: Any) -> RetrieveOptions:
    """The command line as :class:`RetrieveOptions` (one patient; the batch renames per patient)."""
    from dicomtools.core.net.retrieve import RetrieveOptions

    return RetrieveOptions(
        patient_id=args.patientId or "",
        out_dir=out,
        plan_ids=list(args.planId or []),
        only_approved=args.onlyApprovedPlans,
        new_patient_id=None if anonymize else args.newPatientId,
        new_patient_name=None if anonymize else args.newPatientName,
        method="get" if args.useGet else node.retrieve_method,
        scp_port=args.scpPort if args.scpPort is not None else cfg.local.scp_port,
        scp_bind=cfg.local.scp_bind,
        use_tls=args.useTls,
        selective=not args.wholePatient,
        default_machines=dict(cfg.machines.defaults) | parse_pairs(args.defaultMachines, "--defaultMachines"),
        anonymize=anonymize,
    )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `retrieve -h` must not import pydicom/pynetdicom (start-up speed).
    from dicomtools.core.net.assoc import NetError
    from dicomtools.core.net.retrieve import retrieve

    if args.anonymize and not (args.newPatientId and args.newPatientName):
        raise UsageError("--anonymize needs --newPatientId and --newPatientName")
    cfg, node = node_from_args(args)
    anonymize = anonymize_settings(args, cfg.anonymize.profile, cfg.anonymize.options) if args.anonymize else None
    from pathlib import Path  # here, not at the top: `-h` does not pay for it

    out = Path(args.path)
    _confirm_path(out, args.force)
    opts = retrieve_options(args, cfg, node, out, anonymize)
    try:
        res = retrieve(node, opts, sink=RetrieveSink())
    except NetError as exc:
        raise RunError(str(exc)) from None
    except DicomToolsError as exc:
        from dicomtools.core.anonymize.run import AnonymizeError  # deferred: start-up time

        if not isinstance(exc, AnonymizeError):
            raise
        raise RunError(f"anonymization: {exc.user_message}") from None
    if anonymize is not None:
        sys.stderr.write(f"note: {out / 'anonymization_map.csv'} links the new and the original identity; "
                         "it is sensitive: do not pass it on with the data\n")
    if args.showTree and res.forest:
        # only here: json and the renderer cost ~3 ms of start-up
        from dicomtools.core.render.forest import render_tree

        sys.stdout.write(render_tree(res.forest))
    for note in res.notes:
        sys.stderr.write(f"note: {note}\n")
    for prob in res.problems:
        sys.stderr.write(f"problem: {prob}\n")
    how = "C-GET" if opts.method == "get" else "C-MOVE"
    sys.stdout.write(f"retrieve {args.patientId} from {node_title(node)} ({how}) into {out}: {res.summary()}\n")
    if res.cancelled:
        return ExitStatus.INTERRUPTED
    if not res.saved and not res.problems:
        sys.stderr.write("problem: nothing saved\n")
        return ExitStatus.FAILED
    return ExitStatus.OK if res.ok else ExitStatus.FAILED


def dispatch(args: argparse.Namespace) -> int:
    """One patient (``--patientId``) or a batch (``--patientList``, see :mod:`retrieve_batch`)."""
    if args.patientList is not None:
        from dicomtools.core.cli.retrieve_batch import run_batch_cli

        return run_batch_cli(args)
    if not args.patientId:
        raise UsageError("give --patientId ID or --patientList FILE")
    return run(args)
