"""``dicomtools search``: list the files below a folder whose tags match expressions."""

from __future__ import annotations

import argparse
import os
import sys

from dicomtools.core.cli.common import (
    RawDescriptionHelpFormatter,
    RunError,
    UsageError,
    add_cache_options,
    add_option,
    add_path_options,
    open_cache,
)
from dicomtools.core.dicom.text import sanitize
from dicomtools.core.errors import ExitStatus
from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import LineProgress

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

    from dicomtools.core.search.expr import Expression
    from dicomtools.core.search.folder import SearchResult

log = get_logger(__name__)

MAX_UNREADABLE_LISTED = 20

EXAMPLES = """\
expressions (one per --tag, all must hold):
  (0010,0020)=Phantom-1        equals; * and ? are wildcards; case-sensitive
  PatientID                    element present (keywords work wherever tags do)
  (0008,0060)=?                element present; show its values (statistics count them)
  (300A,00B0)/(300A,00B2)=?    Treatment Machine Name inside any Beam Sequence item
  BeamSequence/TreatmentMachineName=    present but empty
  Modality!=CT   PatientName~^Doe   StudyDate>=20240101   (0029,1010)=?

examples:
  list files of patient Phantom-1 and show their modality:
    dicomtools search --tag "(0010,0020)=Phantom-1" --tag "(0008,0060)=?" --path /data --searchPattern "*.dcm" --showStatistics
  list all treatment unit names:
    dicomtools search --tag "(300A,00B0)/(300A,00B2)=?" --path /data --searchPattern "RP*.dcm" --showStatistics
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="search DICOM tag values below a folder",
        description="Search DICOM files below --path recursively for tag values; print the "
        "matching files (or folders) with the values that matched.",
        epilog=EXAMPLES,
        formatter_class=RawDescriptionHelpFormatter,
    )
    add_option(
        p,
        "--tag",
        action="append",
        required=True,
        metavar="EXPR",
        help="tag expression like (0010,0020)=Phantom-1 or (0008,0060)=?; repeat to AND them",
    )
    add_path_options(p)
    add_option(p, "--showStatistics", action="store_true", help="print counts, timing and the values of each =? expression")
    add_option(p, "--showOnlyDirectories", action="store_true", help="list only the folders of matching files")
    add_option(
        p,
        "--format",
        choices=["text", "csv", "json"],
        default="text",
        help="output form; json always holds statistics [default: text]",
    )
    add_option(p, "--workers", type=int, default=None, help="reader processes [default: all cores for big folders]")
    add_cache_options(p)
    p.set_defaults(func=run)


def parse_tags(texts: list[str]) -> list[Expression]:
    """Parse every --tag; the first bad one becomes a one-line usage error."""
    from dicomtools.core.search.expr import ExprError, parse

    out = []
    for text in texts:
        try:
            out.append(parse(text))
        except ExprError as exc:
            raise UsageError(f'--tag "{text}": {exc}') from None
    return out


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `search -h` must not pay for the scanner (start-up speed).
    from dicomtools.core.search.folder import search

    exprs = parse_tags(args.tag)
    if not os.path.exists(args.path):
        raise RunError(f"--path {args.path!r}: no such file or folder")
    if os.path.isdir(args.path) and not os.access(args.path, os.R_OK | os.X_OK):
        raise RunError(f"--path {args.path!r}: permission denied")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    result = search(
        args.path, exprs, args.searchPattern, sink=LineProgress(), workers=args.workers, cache=open_cache(args)
    )
    if args.format == "json":
        sys.stdout.write(render_json(result, exprs, args.showOnlyDirectories))
    elif args.format == "csv":
        sys.stdout.write(render_csv(result, exprs, args.showOnlyDirectories))
        if args.showStatistics:
            sys.stderr.write(render_statistics(result))
    else:
        sys.stdout.write(render_text(result, exprs, args.showOnlyDirectories))
        if args.showStatistics:
            sys.stdout.write(render_statistics(result))
    return ExitStatus.OK


def _keys(exprs: list[Expression], text_only: bool) -> list[str]:
    """Value columns: every path, or for text only those whose value is not already known."""
    shown = (e for e in exprs if not (text_only and e.op == "eq" and not e.has_wildcards))
    return list(dict.fromkeys(e.path_text for e in shown))


def _joined(values: list[str]) -> str:
    return "\\".join(values) if any(values) else '""'


def _safe_lines(lines: list[str]) -> str:
    """One line each, made safe for the terminal; checked as one text when all is printable.

    Control characters are never printable, so the common case costs one
    check of the whole text instead of one per line (a warm search of 5,000 files).
    """
    if "".join(lines).isprintable():
        return "\n".join(lines) + "\n" if lines else ""
    return "".join(sanitize(line) + "\n" for line in lines)


def render_text(result: SearchResult, exprs: list[Expression], only_dirs: bool) -> str:
    if only_dirs:
        return _safe_lines(result.directories())
    keys = _keys(exprs, text_only=True)
    if not keys:
        return _safe_lines([m.path for m in result.matches])
    lines = []
    for m in result.matches:
        values = m.values
        parts = [m.path] + [f"{k}={_joined(values[k])}" for k in keys if k in values]
        lines.append("  ".join(parts))
    return _safe_lines(lines)


def render_csv(result: SearchResult, exprs: list[Expression], only_dirs: bool) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if only_dirs:
        writer.writerow(["directory"])
        writer.writerows([sanitize(d)] for d in result.directories())
        return buf.getvalue()
    keys = _keys(exprs, text_only=False)
    writer.writerow(["path", *keys])
    for m in result.matches:
        writer.writerow([sanitize(m.path), *(sanitize("\\".join(m.values.get(k, []))) for k in keys)])
    return buf.getvalue()


def statistics_dict(result: SearchResult) -> dict[str, Any]:
    return {
        "files_scanned": result.files_scanned,
        "dicom_files": result.dicom_files,
        "unreadable": len(result.unreadable),
        "matched": result.matched,
        "elapsed_seconds": round(result.elapsed, 3),
        "values": {
            key: dict(counter.most_common()) for key, counter in result.statistics.items()
        },
        "unreadable_files": [{"path": u.path, "reason": u.reason} for u in result.unreadable],
        "cancelled": result.cancelled,
    }


def render_json(result: SearchResult, exprs: list[Expression], only_dirs: bool) -> str:
    doc: dict[str, Any]
    if only_dirs:
        doc = {"directories": result.directories()}
    else:
        doc = {"matches": [{"path": m.path, "values": m.values} for m in result.matches]}
    doc["statistics"] = statistics_dict(result)
    import json

    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_statistics(result: SearchResult) -> str:
    lines = [
        "",
        "Statistics",
        f"  files scanned: {result.files_scanned}",
        f"  DICOM files:   {result.dicom_files}",
        f"  unreadable:    {len(result.unreadable)}",
        f"  matched:       {result.matched}",
        f"  elapsed:       {result.elapsed:.2f} s",
    ]
    for key, counter in result.statistics.items():
        lines.append(f"Values of {key} (files per value):")
        ranked = counter.most_common()
        width = len(str(ranked[0][1])) if ranked else 1
        lines += [f"  {n:>{width}}  {v if v else chr(34) * 2}" for v, n in ranked]
        if not ranked:
            lines.append("  (none)")
    if result.unreadable:
        lines.append("Unreadable files:")
        lines += [f"  {u.path}: {u.reason}" for u in result.unreadable[:MAX_UNREADABLE_LISTED]]
        more = len(result.unreadable) - MAX_UNREADABLE_LISTED
        if more > 0:
            lines.append(f"  ... and {more} more (--format json lists all)")
    if result.cancelled:
        lines.append("Search was cancelled; counts are partial.")
    return "\n".join(sanitize(line) for line in lines) + "\n"
