"""Anonymize files into a folder: read, apply the engine, write, lay out, report.

Two layouts. ``tree`` (default) files each output by where it sits in the
reference tree of the *anonymized* data: ``<NEWID>/<plan label>/<kind>/<PREFIX>.<new SOP UID>.dcm``
(``Unconnected`` for what no plan reaches); files are first written to a
hidden staging folder, the tree is built from their summaries, then each is
renamed into place. ``keep`` mirrors the input layout, with any original
patient ID, name or UID in a folder or file name replaced by its new value.

Input is never modified: the output folder may not be, or lie inside, an
input folder, and no output path may land inside one. Non-DICOM and
unreadable files are not copied; they are listed in the report.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomtools.core.anonymize.engine import Anonymizer, element_text, put_raw
from dicomtools.core.anonymize.profile import Profile, ProfileError, load_profile
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.anonymize.verify import Identifiers, VerifyReport, verify_files
from dicomtools.core.atomic import atomic_writer
from dicomtools.core.model import InstanceSummary, UnreadableFile
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.walk import iter_files

log = logging.getLogger(__name__)

PREFIX_BY_MODALITY = {
    "RTPLAN": "RP", "RTSTRUCT": "RS", "RTDOSE": "RD", "RTIMAGE": "RI", "RTRECORD": "RT", "REG": "RE",
}
LAYOUTS = ("tree", "keep")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_UID_TOKEN = re.compile(r"\d+(?:\.\d+){3,}")


class AnonymizeError(Exception):
    """The run cannot start (bad settings, output inside the input)."""


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
    skipped: list[UnreadableFile] = field(default_factory=list)  # not DICOM / unreadable: not copied
    files_seen: int = 0
    elapsed: float = 0.0
    cancelled: bool = False
    patients: list[str] = field(default_factory=list)  # new patient IDs
    uid_map_path: str | None = None
    verify: VerifyReport | None = None


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


def _safe(text: str, fallback: str) -> str:
    s = _UNSAFE.sub("_", text.strip()).strip("._")
    return s[:64] if s else fallback


class _Names:
    """Original identifiers seen in the run, for keeping them out of file and folder names.

    IDs and full names are replaced wherever they occur; single name words only
    as whole words (so a short given name does not mangle other words).
    """

    def __init__(self) -> None:
        self.substrings: dict[str, str] = {}  # lower-cased original -> safe new value
        self.words: dict[str, str] = {}

    def add(self, original_id: str, original_name: str, new_id: str, new_name: str) -> None:
        sid, sname = _safe(new_id, "ANON"), _safe(new_name, "ANON")
        if original_id.strip():
            self.substrings.setdefault(original_id.strip().lower(), sid)
            self.substrings.setdefault(_safe(original_id, "").lower(), sid)
        for group in original_name.split("="):
            full = group.strip("^ ")
            if full:
                self.substrings.setdefault(full.lower(), sname)
                self.substrings.setdefault(_safe(full, "").lower(), sname)
            for part in group.split("^"):
                for word in re.findall(r"[^\W_]+", part):
                    if len(word) >= 2:
                        self.words.setdefault(word.lower(), sname)
        self.substrings.pop("", None)

    def _word_re(self, word: str) -> re.Pattern[str]:
        return re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", re.IGNORECASE)

    def contains(self, text: str) -> bool:
        low = text.lower()
        if any(orig in low for orig in self.substrings):
            return True
        return any(self._word_re(w).search(text) for w in self.words)

    def rewrite(self, component: str, uid_map: UidMap) -> str:
        def uid(m: re.Match[str]) -> str:
            return uid_map.uids.get(m.group(0), m.group(0))

        out = _UID_TOKEN.sub(uid, component)
        for orig in sorted(self.substrings, key=len, reverse=True):  # longest first: IDs before names
            if orig in out.lower():
                out = re.sub(re.escape(orig), self.substrings[orig], out, flags=re.IGNORECASE)
        for word, new in self.words.items():
            out = self._word_re(word).sub(new, out)
        return out


def _summary(ds: Dataset, path: str) -> InstanceSummary:
    """The scanner's summary of an anonymized dataset, without reading the file back.

    Files without the sequences the tree follows (image slices, the bulk of
    any archive) take the scanner's flat fast path over raw values.
    """
    from dicomtools.core import fastread, scan

    d = ds._dict
    if any(t in d for t in scan.NEEDED_SEQUENCES):
        return scan._summary_from_dataset(ds, path)
    hdr = fastread.FastHeader()
    for tag in scan.NEEDED_FLAT:
        if tag in d:
            hdr.values[tag] = element_text(ds, tag).strip()
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in (0x00020002, 0x00020003, 0x00020010):
            if tag in meta._dict:
                hdr.meta[tag] = element_text(meta, tag).strip()
    return scan._summary_from_fast(hdr, path)


def _read(path: str) -> Dataset | str:
    """The full dataset, or a one-line reason why the file is not copied.

    The one reader decides what is an instance (same verdict as show and
    search; SOP UIDs missing from the data set are taken from the file meta).
    """
    from dicomtools.core.archive.read import read_dataset

    ds = read_dataset(path)
    if isinstance(ds, UnreadableFile):
        return ds.reason
    raw = ds._dict.get(BaseTag(0x7FE00010))
    declared = getattr(raw, "length", None)
    value = getattr(raw, "value", None)
    if isinstance(declared, int) and declared != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < declared:
        return "truncated: pixel data runs past the end of the file"
    return ds


def _ensure_meta(ds: Dataset) -> None:
    """A complete file meta (old exporters wrote none), naming the dataset's own encoding.

    Done here rather than by pydicom's ``enforce_file_format``, which costs
    more than the whole anonymization of a small file.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    d = meta._dict
    if 0x00020010 not in d:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    if 0x00020000 not in d:
        meta.FileMetaInformationGroupLength = 0  # recomputed by pydicom on write
    if 0x00020001 not in d:
        meta.FileMetaInformationVersion = b"\x00\x01"
    if 0x00020012 not in d:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    for meta_tag, ds_tag in ((0x00020002, 0x00080016), (0x00020003, 0x00080018)):
        value = element_text(ds, ds_tag)
        if element_text(meta, meta_tag) != value:
            put_raw(meta, meta_tag, "UI", (value + ("\0" if len(value) % 2 else "")).encode("ascii"))
    if not getattr(ds, "preamble", None):
        ds.preamble = b"\0" * 128


def _write(ds: Dataset, dest: str) -> None:
    _ensure_meta(ds)
    with atomic_writer(dest) as fh:
        ds.save_as(fh)


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
        self.names = _Names()
        self.identifiers: Identifiers | None = None
        if settings.verify:
            self.identifiers = Identifiers(ignore={settings.new_patient_id.lower(), settings.new_patient_name.lower()})
        self.report = AnonymizeReport(
            out_dir=out_dir, profile=profile.name, options=sorted(self.compiled.options),
            uid_map_path=settings.uid_map_path,
        )
        self.dests: set[str] = set()

    def guard(self, dest: str) -> str | None:
        real = os.path.realpath(dest)
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

    def anonymize(self, path: str) -> tuple[Dataset, str] | None:
        got = _read(path)
        if isinstance(got, str):
            self.report.skipped.append(UnreadableFile(path, got))
            return None
        ds = got
        if self.identifiers is not None:
            self.identifiers.add_dataset(ds)
        try:
            result = self.engine.anonymize(ds)
        except Exception as exc:  # one odd file must not stop the run
            log.debug("anonymize failed for %s", path, exc_info=True)
            self.report.skipped.append(UnreadableFile(path, f"cannot anonymize: {type(exc).__name__}: {exc}"))
            return None
        self.names.add(result.original_patient_id, result.original_patient_name, result.new_patient_id, result.new_patient_name)
        if result.new_patient_id not in self.report.patients:
            self.report.patients.append(result.new_patient_id)
        return ds, result.new_patient_id


def _prefix(ds_modality: str) -> str:
    m = ds_modality.upper()
    return PREFIX_BY_MODALITY.get(m, _safe(m, "OT")[:8])


def _tree_folders(summaries: list[InstanceSummary], names: _Names) -> dict[str, str]:
    """New SOP Instance UID -> folder (relative) from the reference tree of the anonymized data."""
    from dicomtools.core.tree import build_forest

    folders: dict[str, str] = {}
    for patient in build_forest(summaries):
        pdir = _safe(patient.patient_id, "NOID")
        used: set[str] = set()
        plan_dirs: list[str] = []
        for k, plan in enumerate(patient.plans, 1):
            label = str(plan.fields.get("plan_label", ""))
            name = _safe(label, "") if label and not names.contains(label) and label != "ANONYMIZED" else ""
            name = name or f"Plan{k}"
            while name.lower() in used:
                name = f"{name}_{k}"
            used.add(name.lower())
            plan_dirs.append(name)
            for inst in plan.instances[:1]:
                folders.setdefault(inst.sop_instance_uid, f"{pdir}/{name}/{_safe(plan.kind, 'RT-Plan')}")
        for plan, name in zip(patient.plans, plan_dirs, strict=True):
            for node in plan.walk():
                for inst in node.instances:
                    folders.setdefault(inst.sop_instance_uid, f"{pdir}/{name}/{_safe(node.kind, 'Other')}")
        for top in patient.unconnected:
            for node in top.walk():
                for inst in node.instances:
                    folders.setdefault(inst.sop_instance_uid, f"{pdir}/Unconnected/{_safe(node.kind, 'Other')}")
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
) -> AnonymizeReport:
    """Anonymize ``paths`` into ``out_dir``; ``root`` is what ``layout="keep"`` paths are relative to.

    Raises :class:`AnonymizeError` before touching anything when the output
    is inside an input folder or the settings are unusable.
    """
    if layout not in LAYOUTS:
        raise AnonymizeError(f"layout must be one of {', '.join(LAYOUTS)}")
    if not settings.new_patient_id.strip() or not settings.new_patient_name.strip():
        raise AnonymizeError("a new patient ID and a new patient name are required")
    input_dirs = {root} if root else {os.path.dirname(os.path.abspath(p)) for p in paths}
    check_output(out_dir, input_dirs)
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
    staging = tempfile.mkdtemp(prefix=".anonymize-", dir=out_dir) if layout == "tree" else ""
    staged: list[tuple[str, str, str, str, str]] = []  # source, staged path, new uid, patient, prefix
    summaries: list[InstanceSummary] = []
    try:
        for done, path in enumerate(paths, 1):
            if cancel is not None and cancel.cancelled:
                run.report.cancelled = True
                break
            got = run.anonymize(path)
            if got is not None:
                ds, new_pid = got
                uid = str(ds.SOPInstanceUID)
                prefix = _prefix(str(ds.get("Modality", "")))
                if layout == "tree":
                    tmp = os.path.join(staging, f"{len(staged)}.dcm")
                    _write(ds, tmp)
                    staged.append((path, tmp, uid, new_pid, prefix))
                    summaries.append(_summary(ds, tmp))
                else:
                    _keep_layout(run, ds, path, root, uid, new_pid)
            rep.advanced(done, total)
        if layout == "tree":
            _place(run, staged, summaries)
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        if settings.uid_map_path:
            run.uid_map.save(settings.uid_map_path)
    for bad in run.report.skipped:
        rep.message(f"not copied: {bad.path}: {bad.reason}", level="warning")
    if settings.verify and run.identifiers is not None:
        run.report.verify = verify_files(
            [o.dest for o in run.report.written],
            run.identifiers,
            allow_private=run.compiled.keeps_private,
        )
    run.report.elapsed = time.monotonic() - started
    rep.finished(len(run.report.written), total, f"{len(run.report.written)} written, {len(run.report.skipped)} not copied")
    return run.report


def _keep_layout(run: _Run, ds: Dataset, path: str, root: str | None, uid: str, new_pid: str) -> None:
    rel = os.path.relpath(path, root) if root else os.path.basename(path)
    parts = [run.names.rewrite(p, run.uid_map) for p in Path(rel).parts]
    dest = run.unique(os.path.join(run.out_dir, *parts))
    problem = run.guard(dest)
    if problem:
        run.report.skipped.append(UnreadableFile(path, problem))
        return
    _write(ds, dest)
    run.report.written.append(OutputFile(path, dest, uid, new_pid))


def _place(run: _Run, staged: list[tuple[str, str, str, str, str]], summaries: list[InstanceSummary]) -> None:
    folders = _tree_folders(summaries, run.names) if summaries else {}
    for source, tmp, uid, new_pid, prefix in staged:
        folder = folders.get(uid) or f"{_safe(new_pid, 'NOID')}/Other"
        dest = run.unique(os.path.join(run.out_dir, *folder.split("/"), f"{prefix}.{uid}.dcm"))
        problem = run.guard(dest)
        if problem:
            run.report.skipped.append(UnreadableFile(source, problem))
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
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
