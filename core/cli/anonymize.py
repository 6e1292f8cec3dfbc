"""``dicomtools anonymize``: anonymize a folder with a profile, or check anonymized files for leaks."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dicomtools.core.cli.common import RunError, UsageError, add_option, add_path_options
from dicomtools.core.errors import ExitStatus
from dicomtools.core.lazylog import get_logger, ready

log = get_logger(__name__)

MAX_SHOWN = 50


def register(sub: Any) -> None:
    p = sub.add_parser(
        "anonymize",
        help="anonymize a folder (profiles aria/basic or your own), or --verify anonymized files",
        description="Anonymize every DICOM file below --path into --out: identifying attributes "
        "handled by a profile (PS3.15 Table E.1-1 actions), UIDs replaced consistently so plans, "
        "structure sets, doses and images still reference each other. The input is never modified. "
        "With --verify DIR alone: search DIR for original identifiers (from --original/--path) "
        "and private elements.",
    )
    add_path_options(p, required=False, help="folder to anonymize, recursively (or the originals for --verify)")
    add_option(p, "--out", default=None, metavar="DIR", help="output folder (must not be inside --path)")
    add_option(p, "--newPatientId", default=None, metavar="ID", help="Patient ID of the output (required)")
    add_option(p, "--newPatientName", default=None, metavar="NAME", help="Patient's Name of the output, e.g. PHANTOM^ONE (required)")
    add_option(p, "--profile", default=None, metavar="NAME|FILE",
               help="aria (default, ARIA-compatible), basic, or a .toml/.csv/.tsv file")
    add_option(p, "--option", nargs="+", action="extend", default=None, metavar="OPT",
               help="profile option(s), short or long names, added to the defaults "
               "(e.g. RetainLongModifDates, retain-uids); see --list-profiles")
    add_option(p, "--noDefaultOptions", action="store_true",
               help="start from no options instead of the profile's (or config's) defaults")
    add_option(p, "--uidMap", default=None, metavar="FILE",
               help="CSV UID map: continued when it exists, saved at the end (sensitive: links back to patients)")
    add_option(p, "--keepLayout", action="store_true",
               help="mirror the input folders instead of <NEWID>/<plan>/<kind>/ (identifiers in names replaced)")
    add_option(p, "--keepBurnedIn", action="store_true",
               help="also copy images marked Burned In Annotation YES (0028,0301); their pixels are NOT "
               "cleaned and may show the patient's name. Default: not copied, listed, exit 1")
    add_option(p, "--verify", nargs="?", const="", default=None, metavar="DIR",
               help="after anonymizing, check the output for leaks; with DIR and no --out: only check DIR")
    add_option(p, "--original", default=None, metavar="DIR", help="originals to take identifiers from for --verify DIR")
    add_option(p, "--listProfiles", action="store_true", help="list the shipped profiles and the options, then exit")
    p.set_defaults(func=run)


def _check_identity(value: str | None, option: str) -> str:
    if value is None or not value.strip():
        raise UsageError(f"{option} is required (the identity the anonymized files get)")
    v = value.strip()
    if not v.isascii() or not v.isprintable() or "\\" in v or len(v) > 64:
        raise UsageError(f"{option} {value!r}: use at most 64 printable ASCII characters, no backslash")
    return v


def _list_profiles() -> int:
    from dicomtools.core.anonymize.profile import OPTIONS, builtin_profiles
    from dicomtools.core.anonymize.profile_files import load_profile

    for name in builtin_profiles():
        prof = load_profile(name)
        sys.stdout.write(f"{name}: {prof.title}\n  default options: {' '.join(prof.default_options) or '-'}; "
                         f"{len(prof.rules)} rules\n")
    sys.stdout.write("\noptions (short / long name, CID 7050 code):\n")
    for o in OPTIONS:
        sys.stdout.write(f"  {o.short:24} {o.long:38} {o.code}  {o.title}\n")
    return ExitStatus.OK


def _verify_only(args: argparse.Namespace) -> int:
    from dicomtools.core.anonymize.verify import verify_folder

    folder = args.verify
    if not folder:
        raise UsageError("--verify DIR: give the folder to check (or use it with --out)")
    if not os.path.isdir(folder):
        raise RunError(f"--verify {folder!r}: no such folder")
    original = args.original or args.path
    if original is not None and not os.path.isdir(original):
        raise RunError(f"--original {original!r}: no such folder")
    report = verify_folder(folder, original, args.searchPattern)
    if original is None:
        sys.stdout.write("no --original given: checked private elements and markers only\n")
    return _print_verify(report)


def _print_verify(report: Any) -> int:
    failures = report.failures
    possible = [f for f in report.findings if f.level == "possible"]
    warnings = [f for f in report.findings if f.level == "warning"]
    from dicomtools.core.safename import printable

    for f in failures[:MAX_SHOWN]:
        sys.stdout.write(printable(f.line(), 600) + "\n")
    if len(failures) > MAX_SHOWN:
        sys.stdout.write(f"... and {len(failures) - MAX_SHOWN} more\n")
    for f in warnings[:MAX_SHOWN]:
        sys.stdout.write(printable(f.line(), 600) + "\n")
    grouped: dict[tuple[str, str], int] = {}
    for f in possible:  # the same word in the same attribute of many files: one line
        grouped[(f.keyword, f.value)] = grouped.get((f.keyword, f.value), 0) + 1
    for (keyword, value), count in sorted(grouped.items())[:MAX_SHOWN]:
        sys.stdout.write(printable(f"POSSIBLE: a word of an original name in {keyword} {value!r} ({count} file(s))", 600)
                         + "\n")
    for bad in report.unreadable[:MAX_SHOWN]:
        sys.stdout.write(f"not checked: {printable(bad.path, 400)}: {printable(bad.reason, 400)}\n")
    verdict = "OK: no leaks" if not failures else f"LEAKS: {len(failures)} finding(s)"
    sys.stdout.write(
        f"verify: {report.files_checked} files checked, {verdict}"
        f"{f', {len(possible)} possible name word(s) to review' if possible else ''}\n"
    )
    return ExitStatus.OK if not failures else ExitStatus.FAILED


def run(args: argparse.Namespace) -> int:
    ready()  # logging set up before pydicom runs, as when this module imported it (`-h` does not)
    if args.listProfiles:
        return _list_profiles()
    if args.verify is not None and args.out is None:
        return _verify_only(args)
    from dicomtools.core.anonymize.profile import ProfileError, resolve_options
    from dicomtools.core.anonymize.profile_files import load_profile
    from dicomtools.core.anonymize.run import AnonymizeError, AnonymizeSettings, anonymize_folder
    from dicomtools.core.anonymize.uidmap import UidMapError
    from dicomtools.core.progress import LineProgress

    if not args.path:
        raise UsageError("--path is required (the folder to anonymize)")
    if not args.out:
        raise UsageError("--out is required (a folder outside --path)")
    new_id = _check_identity(args.newPatientId, "--newPatientId")
    new_name = _check_identity(args.newPatientName, "--newPatientName")
    if not os.path.isdir(args.path):
        raise RunError(f"--path {args.path!r}: no such folder")
    if args.verify and os.path.realpath(args.verify) != os.path.realpath(args.out):
        raise UsageError("--verify with --out checks the output folder; give no DIR or the --out folder")
    try:
        profile_name, base = args.profile, None
        if profile_name is None:
            from dicomtools.core.config import ConfigError, load_config

            try:
                cfg = load_config()
            except ConfigError as exc:
                raise UsageError(str(exc)) from None
            profile_name, base = cfg.anonymize.profile, list(cfg.anonymize.options)
        profile = load_profile(profile_name)
        if base is None and not profile.default_options:
            # a file profile (the seed's CSV) names no options: the preset's apply, as to a built-in one
            from dicomtools.core.config import ConfigError, load_config

            try:
                base = list(load_config().anonymize.options)
            except ConfigError as exc:
                raise UsageError(str(exc)) from None
        options = set() if args.noDefaultOptions else set(resolve_options(base if base is not None else profile.default_options))
        options |= resolve_options(args.option or [])
        if {"RetainLongFullDates", "RetainLongModifDates"} <= options:
            raise UsageError("options RetainLongFullDates and RetainLongModifDates exclude each other")
        settings = AnonymizeSettings(
            new_patient_id=new_id,
            new_patient_name=new_name,
            profile=profile,
            options=frozenset(options),
            uid_map_path=args.uidMap,
            verify=args.verify is not None,
            keep_burned_in=args.keepBurnedIn,
        )
        report = anonymize_folder(
            args.path, args.out, settings, pattern=args.searchPattern, keep_layout=args.keepLayout,
            sink=LineProgress(),
        )
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    except UidMapError as exc:
        raise RunError(str(exc)) from None
    except AnonymizeError as exc:
        raise UsageError(str(exc)) from None
    return _print_report(report, args.out)


def _print_report(report: Any, out_dir: str) -> int:
    """The run's outcome; exit 1 when a readable instance was not copied (or verify found a leak)."""
    from dicomtools.core.safename import printable

    out = sys.stdout
    # readable instances first: those are what the person must act on
    not_copied = report.failed + report.skipped
    for bad in not_copied[:MAX_SHOWN]:
        out.write(f"not copied: {printable(bad.path, 400)}: {printable(bad.reason, 400)}\n")
    if len(not_copied) > MAX_SHOWN:
        out.write(f"... and {len(not_copied) - MAX_SHOWN} more not copied\n")
    if report.burned_in_kept:
        out.write(f"copied anyway (--keepBurnedIn): {len(report.burned_in_kept)} image(s) with burned-in "
                  "annotation; their pixels are not cleaned, check them before passing them on\n")
    out.write(
        f"anonymized {len(report.written)} of {report.files_seen} files into {printable(out_dir, 400)} "
        f"(profile {report.profile}, options: {' '.join(report.options) or 'none'}); "
        f"{len(not_copied)} not copied ({len(report.failed)} readable DICOM instance(s)); "
        f"patients: {', '.join(report.patients) or '-'}\n"
    )
    if report.uid_map_path:
        out.write(f"UID map saved to {report.uid_map_path} (keep it private: it links back to the patients)\n")
    rc = 1 if report.failed else 0
    if report.verify is not None:
        rc = max(rc, _print_verify(report.verify))
    return rc
