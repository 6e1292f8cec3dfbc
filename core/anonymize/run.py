"""Anonymize files into a folder: read, apply the engine, write, lay out, report.

Two layouts. ``tree`` (default) files each output by where it sits in the
reference tree of the *anonymized* data: ``<NEWID>/<plan label>/<kind>/<PREFIX>.<new SOP UID>.dcm``
(``Unconnected`` for what no plan reaches; a plan label holding an original
identifier becomes ``PlanN``). ``keep`` mirrors the input layout, with every
original identifier in a folder or file name (IDs, birth date, any person
name in any script and spelling, UIDs) replaced. Either way files are first
written to a hidden staging folder and renamed into place at the end, when
every original identifier of the run is known.

Each file is written with a zeroed preamble and our own file meta
(:mod:`filemeta`). Input is never modified: the output folder may not be,
or lie inside, an input folder, and no output path may land inside one.
Non-DICOM, unreadable and truncated files are not copied (``skipped``); a
readable instance that is not copied (burned-in annotation, a file pydicom
cannot anonymize or re-encode) is listed in ``failed``, and the rest of the
run goes on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dicomtools.core.anonymize.engine import Anonymizer
from dicomtools.core.anonymize.fileanon import PREFIX_BY_MODALITY, FileWork, Outcome, Staged
from dicomtools.core.anonymize.fileanon import read as _read  # noqa: F401  (the corpus test reads as the run does)
from dicomtools.core.anonymize.filemeta import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dicomtools.core.anonymize.naming import PathNames, safe_name
from dicomtools.core.anonymize.needles import Identifiers
from dicomtools.core.anonymize.profile import Profile, ProfileError
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.dicom.pydicom_setup import configure as configure_pydicom
from dicomtools.core.errors import DicomToolsError, ExitStatus
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

if TYPE_CHECKING:  # the leak checker is imported only by a run that verifies
    from dicomtools.core.anonymize.verify import VerifyReport

log = logging.getLogger(__name__)

__all__ = ["PREFIX_BY_MODALITY", "AnonymizeError", "AnonymizeReport", "AnonymizeSettings", "OutputFile",
           "anonymize_files", "anonymize_folder", "check_output"]
LAYOUTS = ("tree", "keep")
OUR_VALUES = (IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)  # = verify.OUR_VALUES: never a leak


class AnonymizeError(DicomToolsError):
    """The run cannot start (bad settings, output inside the input)."""

    exit_status = ExitStatus.USAGE


@dataclass
class AnonymizeSettings:
    """Everything a run needs besides the files; ``retrieve --anonymize`` builds one too."""

    new_patient_id: str
    new_patient_name: str
    profile: Profile | str = "aria"
    options: Collection[str] | None = None  # short names; None = the profile's default options
    uid_map: UidMap | None = None  # share one map across calls (several retrieves, one mapping)
    uid_map_path: str | None = None  # loaded when it exists, saved (atomically) at the end
    verify: bool = False  # run the leak checker on the written files against the originals
    keep_burned_in: bool = False  # copy images marked Burned In Annotation YES (their pixels are not cleaned)

    def resolved_profile(self) -> Profile:
        return self.profile if isinstance(self.profile, Profile) else load_profile(self.profile)


@dataclass(frozen=True, slots=True)
class OutputFile:
    source: str
    dest: str
    sop_instance_uid: str  # new
    patient_id: str  # new


@dataclass
class AnonymizeReport:
    out_dir: str
    profile: str = ""
    options: list[str] = field(default_factory=list)
    written: list[OutputFile] = field(default_factory=list)
    skipped: list[UnreadableFile] = field(default_factory=list)  # not DICOM / unreadable / truncated
    failed: list[UnreadableFile] = field(default_factory=list)  # readable instances not copied: exit 1
    burned_in_kept: list[str] = field(default_factory=list)  # copied under keep_burned_in (sources)
    files_seen: int = 0
    elapsed: float = 0.0
    cancelled: bool = False
    patients: list[str] = field(default_factory=list)  # new patient IDs
    uid_map_path: str | None = None
    verify: VerifyReport | None = None

    @property
    def not_copied(self) -> list[UnreadableFile]:
        return self.skipped + self.failed


def _is_inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def check_output(out_dir: str, input_dirs: Iterable[str]) -> None:
    """Refuse an output folder that is, or is inside, an input folder."""
    out = os.path.realpath(out_dir)
    for folder in {os.path.realpath(d) for d in input_dirs}:
        if _is_inside(out, folder):
            raise AnonymizeError(
                f"output {out_dir!r} is inside the input folder {folder!r}; choose a folder outside it"
            )


class _Run:
    def __init__(self, out_dir: str, settings: AnonymizeSettings, input_dirs: set[str]) -> None:
        self.out_dir = out_dir
        self.settings = settings
        self.input_dirs = {os.path.realpath(d) for d in input_dirs}
        profile = settings.resolved_profile()
        self.compiled = profile.compile(settings.options)
        if settings.uid_map is not None:
            self.uid_map = settings.uid_map
        elif settings.uid_map_path and os.path.exists(settings.uid_map_path):
            self.uid_map = UidMap.load(settings.uid_map_path)
        else:
            self.uid_map = UidMap()
        self.engine = Anonymizer(self.compiled, self.uid_map, settings.new_patient_id, settings.new_patient_name)
        self.names = PathNames()
        self.identifiers: Identifiers | None = None
        self.identifiers_ignore = {settings.new_patient_id, settings.new_patient_name, *OUR_VALUES}  # as verify's
        if settings.verify:
            self.identifiers = Identifiers(ignore=set(self.identifiers_ignore))
        self.staged: list[Staged] = []
        self.summaries: list[InstanceSummary] = []
        self.report = AnonymizeReport(
            out_dir=out_dir, profile=profile.name, options=sorted(self.compiled.options),
            uid_map_path=settings.uid_map_path,
        )
        self.dests: set[str] = set()
        self._real_folders: dict[str, str] = {}

    def guard(self, dest: str) -> str | None:
        parent, name = os.path.split(dest)
        real_folder = self._real_folders.get(parent)
        if real_folder is None:  # the files of a series share a folder: resolve it once
            real_folder = self._real_folders[parent] = os.path.realpath(parent)
        real = os.path.realpath(dest) if os.path.islink(dest) else os.path.join(real_folder, name)
        for folder in self.input_dirs:
            if _is_inside(real, folder):
                return f"output {dest!r} would be inside the input folder {folder!r}; not written"
        return None

    def unique(self, dest: str) -> str:
        base, ext = os.path.splitext(dest)
        n = 1
        while dest in self.dests:
            n += 1
            dest = f"{base}_{n}{ext}"
        self.dests.add(dest)
        return dest

    def take(self, out: Outcome) -> None:
        """Put one file's outcome into the report, in path order."""
        report = self.report
        if out.skipped is not None:
            report.skipped.append(UnreadableFile(out.path, out.skipped))
            return
        if out.burned_in_kept:
            report.burned_in_kept.append(out.path)
        if out.found is not None:
            self.names.add(out.found, out.new_id, out.new_name)  # a no-op when the file's work did it here
            if out.new_id not in report.patients:
                report.patients.append(out.new_id)
        if out.failed is not None:
            report.failed.append(UnreadableFile(out.path, out.failed))
        if out.staged is not None:
            self.staged.append(out.staged)
            if out.summary is not None:
                self.summaries.append(out.summary)


def _tree_folders(summaries: list[InstanceSummary], names: PathNames) -> dict[str, str]:
    """New SOP Instance UID -> folder (relative) from the reference tree of the anonymized data."""
    from dicomtools.core.tree import PlanInfo, build_forest

    folders: dict[str, str] = {}
    for patient in build_forest(summaries):
        pdir = safe_name(patient.patient_id, "NOID")
        used: set[str] = set()
        plan_dirs: list[str] = []
        for k, plan in enumerate(patient.plans, 1):
            label = plan.info.plan_label if isinstance(plan.info, PlanInfo) else ""
            name = safe_name(label, "") if label and not names.contains(label) and label != "ANONYMIZED" else ""
            name = name or f"Plan{k}"
            while name.lower() in used:
                name = f"{name}_{k}"
            used.add(name.lower())
            plan_dirs.append(name)
            for inst in plan.instances[:1]:
                folders.setdefault(inst.sop_instance_uid, f"{pdir}/{name}/{safe_name(plan.kind.value, 'RT-Plan')}")
        for plan, name in zip(patient.plans, plan_dirs, strict=True):
            for node in plan.walk():
                for inst in node.instances:
                    folders.setdefault(inst.sop_instance_uid, f"{pdir}/{name}/{safe_name(node.kind.value, 'Other')}")
        for top in patient.unconnected:
            for node in top.walk():
                for inst in node.instances:
                    folders.setdefault(inst.sop_instance_uid, f"{pdir}/Unconnected/{safe_name(node.kind.value, 'Other')}")
    return folders


def anonymize_files(
    paths: Sequence[str],
    out_dir: str,
    settings: AnonymizeSettings,
    *,
    layout: str = "tree",
    root: str | None = None,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    parallel: bool | None = None,
) -> AnonymizeReport:
    """Anonymize ``paths`` into ``out_dir``; ``root`` is what ``layout="keep"`` paths are relative to.

    ``parallel``: worker processes on the other cores (True), none (False), or
    from :data:`parallel.MIN_FILES` files on when the other cores are free
    (None); the output is the same byte for byte.
    Raises :class:`AnonymizeError` before touching anything when the output
    is inside an input folder or the settings are unusable.
    """
    if layout not in LAYOUTS:
        raise AnonymizeError(f"layout must be one of {', '.join(LAYOUTS)}")
    if not settings.new_patient_id.strip() or not settings.new_patient_name.strip():
        raise AnonymizeError("a new patient ID and a new patient name are required")
    input_dirs = {root} if root else {os.path.dirname(os.path.abspath(p)) for p in paths}
    check_output(out_dir, input_dirs)
    configure_pydicom()
    try:
        run = _Run(out_dir, settings, input_dirs)
    except (ProfileError, ValueError) as exc:
        raise AnonymizeError(str(exc)) from None
    rep = Reporter("anonymize", sink)
    started = time.monotonic()
    total = len(paths)
    run.report.files_seen = total
    rep.started(total, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".anonymize-", dir=out_dir)
    try:
        run.report.cancelled = _anonymize_into(run, paths, staging, layout == "tree", parallel, rep, cancel)
        if layout == "tree":
            _place(run, run.staged, _tree_folders(run.summaries, run.names) if run.summaries else {})
        else:
            _place(run, run.staged, None, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if settings.uid_map_path:
            run.uid_map.save(settings.uid_map_path)
    for bad in run.report.not_copied:
        rep.message(f"not copied: {bad.path}: {bad.reason}", level="warning")
    if settings.verify and run.identifiers is not None:
        from dicomtools.core.anonymize.verify import verify_files

        run.report.verify = verify_files(
            [o.dest for o in run.report.written],
            run.identifiers,
            allow_private=run.compiled.keeps_private,
            root=out_dir,
        )
    run.report.elapsed = time.monotonic() - started
    rep.finished(len(run.report.written), total,
                 f"{len(run.report.written)} written, {len(run.report.not_copied)} not copied")
    return run.report


def _anonymize_into(
    run: _Run, paths: Sequence[str], staging: str, summarize: bool, parallel: bool | None,
    rep: Reporter, cancel: CancelToken | None,
) -> bool:
    """Every file into staging, outcomes into the run in path order; True when cancelled.

    ``parallel``: None decides by the number of files and the free cores.
    """
    from dicomtools.core.anonymize import parallel as par

    total = len(paths)
    settings = run.settings
    if parallel is None and total < par.MIN_FILES:
        parallel = False
    workers = 0 if parallel is False else par.workers_available(force=bool(parallel))
    if workers:
        def take(out: Outcome) -> None:
            run.take(out)
            rep.advanced(out.index + 1, total)

        return par.run_parallel(
            paths, run.engine, run.names, staging, workers=workers, keep_burned_in=settings.keep_burned_in,
            summarize=summarize, identifiers=run.identifiers, identifiers_ignore=run.identifiers_ignore,
            take=take, cancel=cancel,
        )
    work = FileWork(run.engine, run.names, staging, keep_burned_in=settings.keep_burned_in, summarize=summarize,
                    identifiers=run.identifiers)
    for index, path in enumerate(paths):
        if cancel is not None and cancel.cancelled:
            return True
        run.take(work.process(index, path))
        rep.advanced(index + 1, total)
    return False


def _place(run: _Run, staged: list[Staged], folders: dict[str, str] | None, root: str | None = None) -> None:
    """Rename each staged file to its final name: tree folders, or (``folders`` None) the input layout."""
    made: set[str] = set()
    for one in staged:
        source, tmp, uid, new_pid = one.source, one.tmp, one.uid, one.patient_id
        if folders is None:
            rel = os.path.relpath(source, root) if root else os.path.basename(source)
            dest = run.unique(os.path.join(run.out_dir, *(run.names.rewrite(p, run.uid_map) for p in Path(rel).parts)))
        else:
            folder = folders.get(uid) or f"{safe_name(new_pid, 'NOID')}/Other"
            parts = [run.names.rewrite(p, None) for p in folder.split("/")]
            dest = run.unique(os.path.join(run.out_dir, *parts, f"{one.prefix}.{uid}.dcm"))
        problem = run.guard(dest)
        if problem:
            run.report.skipped.append(UnreadableFile(source, problem))
            continue
        folder = os.path.dirname(dest)
        if folder not in made:  # a series shares its folder: one makedirs, not one a file
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        os.replace(tmp, dest)  # the staged file is complete; the rename is atomic
        run.report.written.append(OutputFile(source, dest, uid, new_pid))


def anonymize_folder(
    in_dir: str,
    out_dir: str,
    settings: AnonymizeSettings,
    *,
    pattern: str | None = None,
    keep_layout: bool = False,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> AnonymizeReport:
    """``dicomtools anonymize``: every file below ``in_dir`` (matching ``pattern``) into ``out_dir``."""
    if not os.path.isdir(in_dir):
        raise AnonymizeError(f"input {in_dir!r} is not a folder")
    check_output(out_dir, [in_dir])
    walk_errors: list[UnreadableFile] = []
    paths = list(iter_files(in_dir, pattern, on_error=lambda p, r: walk_errors.append(UnreadableFile(p, r))))
    report = anonymize_files(
        paths, out_dir, settings, layout="keep" if keep_layout else "tree", root=in_dir, sink=sink, cancel=cancel
    )
    report.skipped[:0] = walk_errors
    return report
