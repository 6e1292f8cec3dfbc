"""``dicomtools retrieve --patientList FILE``: the batch form of ``retrieve``.

Same options as one retrieve (they build the same :class:`RetrieveOptions`),
one line per patient as it finishes, a summary table at the end, exit 1
when any patient failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dicomtools.core.cli.common import RunError, UsageError
from dicomtools.core.cli.config import node_from_args, node_title
from dicomtools.core.cli.retrieve import RetrieveSink, anonymize_settings, retrieve_options
from dicomtools.core.net.batch import BatchOptions, PatientOutcome, Result, run_batch, summary_table
from dicomtools.core.patientlist import PatientListError, load_patient_list
from dicomtools.core.progress import CancelToken
from dicomtools.core.render.forest import render_tree


def _line(o: PatientOutcome, total: int) -> str:
    who = o.entry.patient_id + (f" -> {o.new_id}" if o.new_id else "")
    head = f"[{o.index}/{total}] {who}"
    if o.result is Result.OK:
        plans = f" ({', '.join(o.plans)})" if o.plans else ""
        return f"{head}: {o.instances} instances saved into {o.folder}/{plans} in {o.seconds:.1f} s"
    if o.result is Result.SKIPPED:
        return f"{head}: skipped, complete in {o.folder}/ from an earlier run"
    return f"{head}: {o.result.value}" + (f": {o.reason}" if o.reason else "")


def run_batch_cli(args: argparse.Namespace) -> int:
    if args.patientId:
        raise UsageError("give --patientId or --patientList, not both")
    if args.planId:
        raise UsageError("--planId with --patientList: put the plans in the list (CSV column PlanId)")
    if args.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    if args.anonymize and not (args.newPatientId and args.newPatientName):
        raise UsageError("--anonymize needs --newPatientId and --newPatientName")
    try:
        plist = load_patient_list(args.patientList)
    except PatientListError as exc:
        raise UsageError(str(exc)) from None
    cfg, node = node_from_args(args)
    anonymize = anonymize_settings(args, cfg.anonymize.profile, cfg.anonymize.options) if args.anonymize else None
    out = Path(args.path)
    if out.exists() and not out.is_dir():
        raise RunError(f"--path {str(out)!r} exists and is not a folder")
    # the same options as one retrieve; the batch sets each patient's ID and new identity
    template = retrieve_options(args, cfg, node, out, anonymize)
    method = template.method
    opts = BatchOptions(plist.entries, out, template, new_id_base=args.newPatientId,
                        new_name_base=args.newPatientName, parallel=args.parallel, force=args.force)
    total = len(plist.entries)
    how = "C-GET" if method == "get" else "C-MOVE"
    sys.stdout.write(f"batch retrieve of {total} patients ({plist.format.value} list {args.patientList}) "
                     f"from {node_title(node)} ({how}) into {out}\n")
    sys.stdout.flush()

    def done(o: PatientOutcome) -> None:
        if args.showTree and o.forest:
            sys.stdout.write(render_tree(o.forest))
        sys.stdout.write(_line(o, total) + "\n")
        for prob in o.problems if o.result is not Result.OK else []:
            if prob != o.reason:
                sys.stdout.write(f"    problem: {prob}\n")
        sys.stdout.flush()

    cancel = CancelToken()
    sink = RetrieveSink() if opts.parallel == 1 else None
    try:
        result = run_batch(node, opts, sink=sink, cancel=cancel, on_done=done)
    except KeyboardInterrupt:
        raise RunError("interrupted; complete patients are kept, a rerun does the rest", code=130) from None
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    sys.stdout.write("\n" + summary_table(result))
    counts = {r: sum(1 for o in result.outcomes if o.result is r) for r in Result}
    sys.stdout.write(f"{counts[Result.OK]} retrieved, {counts[Result.SKIPPED]} skipped (complete), "
                     f"{counts[Result.FAILED]} failed, {counts[Result.CANCELLED]} not done\n")
    if anonymize is not None and counts[Result.OK]:
        sys.stderr.write(f"note: {out / 'anonymization_map.csv'} links the new and the original identities; "
                         "it is sensitive: do not pass it on with the data\n")
    if counts[Result.CANCELLED]:
        return 130
    return 0 if result.ok else 1
