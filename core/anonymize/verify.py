"""PHI leak checker: search anonymized files for the identifying values of their originals.

The originals give the needles (:mod:`needles`): person names in any PN
element, patient IDs, accession numbers, birth date, addresses, institution,
file meta texts and every instance UID; placeholders, trivially short values
and our own dummies are not needles. Each output is then read whole: the
128-byte preamble, the file meta, every element in every sequence, and its
path below the output folder. Identifiers are matched as text in text VRs,
as whole UIDs in UI elements and as names (every component of every group)
in PN elements. A UID under the DICOM root that the registry does not list
was not remapped. A private element left when the profile removes private
tags is a *private* finding. A lone name word in free text ("SMITH" in a
description) is only *possible*: it does not fail the check on its own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pydicom
from pydicom.dataset import Dataset

from dicomtools.core.anonymize.filemeta import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dicomtools.core.anonymize.needles import (
    CLASS_UID_TAGS,
    IDENTIFYING,
    SKIP_TAGS,
    Identifiers,
    is_unregistered_under_root,
)
from dicomtools.core.anonymize.valuetext import (
    contains_word,
    fold,
    has_unspaced_script,
    iter_elements,
    name_groups,
    spellings,
    values_of,
)
from dicomtools.core.archive.model import UnreadableFile
from dicomtools.core.dicom.pydicom_setup import configure as configure_pydicom

log = logging.getLogger(__name__)

__all__ = ["IDENTIFYING", "Finding", "Identifiers", "VerifyReport", "collect_identifiers", "verify_files",
           "verify_folder"]

# Options (CID 7050 codes) under which a category may legitimately stay.
RETAINED_BY_CODE = {"113109": "device", "113110": "uid", "113112": "institution"}
SAFE_PRIVATE_CODE = "113111"
OUR_VALUES = (IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
# Text VRs searched for identifiers; UN (often text of an implicit private element) when short.
_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "UN"})
_MAX_UN = 4096
_META_PRIVATE = frozenset({0x00020100, 0x00020102})
# Attributes naming a vendor or product: a hospital named like its scanner maker is no leak there.
_DEVICE_TEXT = frozenset({0x00080070, 0x00081090, 0x00181020, 0x00181000})
# Code Value, Coding Scheme Designator / Version: identifiers of a vocabulary ("SIEMENS_RIS"), not free text.
_CODE_TAGS = frozenset({0x00080100, 0x00080102, 0x00080103})
_PLACE_CATEGORIES = frozenset({"institution", "address"})
_UID_RE = re.compile(r"\d+(?:\.\d+){3,}")
_WORD_RE = re.compile(r"[^\W_]+")
_DIGITS_RE = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    element: str  # e.g. "(300A,00B0)[0].(0008,0080)"
    keyword: str
    category: str  # name, id, accession, birth_date, address, institution, uid, private, marker
    level: str  # leak, private, possible, warning
    value: str  # the output value (shortened)

    def line(self) -> str:
        return f"{self.level.upper()}: {self.path}: {self.element} {self.keyword}: {self.category} in {self.value!r}"


@dataclass
class VerifyReport:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    unreadable: list[UnreadableFile] = field(default_factory=list)
    with_originals: bool = False

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level in ("leak", "private")]

    @property
    def ok(self) -> bool:
        return not self.failures


def collect_identifiers(
    paths: Iterable[str], ignore: Iterable[str] = (), on_error: Callable[[str, str], None] | None = None
) -> Identifiers:
    """Read original files and collect their identifying values."""
    configure_pydicom()  # quiet: real originals carry over-long values (a 122-character LO)
    ids = Identifiers(ignore={*ignore, *OUR_VALUES})
    for path in paths:
        reason = _not_dicom(path)
        if reason:
            if on_error:
                on_error(path, reason)
            continue
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        except Exception as exc:  # unreadable originals contribute nothing
            if on_error:
                on_error(path, f"{type(exc).__name__}: {exc}")
            continue
        if "SOPInstanceUID" not in ds and "PatientID" not in ds:
            continue
        ids.add_dataset(ds)
    return ids


# -- checking outputs -------------------------------------------------------------------------

Hit = tuple[str, str]  # category, level


def text_hits(ids: Identifiers, text: str) -> list[Hit]:
    """Identifiers inside a free text (one hit per category): IDs, dates, UIDs, names."""
    hits: dict[str, str] = {}
    for uid in _UID_RE.findall(text):
        if uid in ids.uids or is_unregistered_under_root(uid):
            hits["uid"] = "leak"
    f = fold(text)
    for needle, category in ids.substrings.items():
        if needle in f and category not in hits and contains_word(f, needle):
            hits[category] = "leak"
    if ids.numbers:
        for run in _DIGITS_RE.findall(f):
            number_kind = ids.numbers.get(run) or (ids.numbers.get(run[:8]) if len(run) in (12, 14) else None)
            if number_kind:
                hits.setdefault(number_kind, "leak")
    words = set(_WORD_RE.findall(f))
    for word in words & ids.tokens.keys():
        hits.setdefault(ids.tokens[word], "leak")
    names = ids.names
    if any(full in f and contains_word(f, full) for full in names.full):
        hits["name"] = "leak"
    elif words & names.words or any(len(c) >= 2 and has_unspaced_script(c) and c in f for c in names.components):
        hits.setdefault("name", "possible")
    return list(hits.items())


def pn_hits(ids: Identifiers, value: str) -> list[Hit]:
    """A person name compared as a name: any family/given/middle of any group that is an original's."""
    hits = dict(text_hits(ids, value))
    for group in name_groups(value):
        for component in group[:3]:
            if spellings(component) & ids.names.components:
                hits["name"] = "leak"
    return list(hits.items())


class _Checker:
    def __init__(self, ids: Identifiers | None, allow_private: bool, retained: set[str]) -> None:
        self.ids = ids
        self.allow_private = allow_private
        self.retained = retained

    def check(self, path: str, ds: Dataset, rel_path: str | None = None) -> list[Finding]:
        out: list[Finding] = []
        codes = {str(item.get("CodeValue", "")) for item in ds.get("DeidentificationMethodCodeSequence", [])}
        retained = set(self.retained) | {RETAINED_BY_CODE[c] for c in codes if c in RETAINED_BY_CODE}
        allow_private = self.allow_private or SAFE_PRIVATE_CODE in codes
        walk = _Walk(self.ids, path, out, retained, allow_private)
        if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
            out.append(Finding(path, "(0012,0062)", "PatientIdentityRemoved", "marker", "warning", "not YES"))
        preamble = bytes(getattr(ds, "preamble", None) or b"")
        if preamble.strip(b"\0"):
            text = preamble.decode("latin-1")
            found = text_hits(self.ids, text) if self.ids is not None else []
            for category, level in found or [("preamble", "warning")]:
                walk.add("preamble", "Preamble", category if found else "preamble", level, _printable(text))
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            walk.walk(meta, "", in_meta=True)
        walk.walk(ds, "", in_meta=False)
        if rel_path is not None and self.ids is not None:
            walk.check_path(rel_path)
        return out


@dataclass
class _Walk:
    ids: Identifiers | None
    path: str
    out: list[Finding]
    retained: set[str]
    allow_private: bool

    def add(self, where: str, keyword: str, category: str, level: str, value: str) -> None:
        if category not in self.retained:
            self.out.append(Finding(self.path, where, keyword, category, level, _short(value)))

    def walk(self, ds: Dataset, prefix: str, in_meta: bool) -> None:
        for elem in iter_elements(ds):
            tag = int(elem.tag)
            where = f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})"
            keyword = elem.keyword or "private"
            vr = elem.VR
            value = elem.value
            if (elem.tag.is_private or tag in _META_PRIVATE) and not self.allow_private:
                self.add(where, keyword, "private", "private", _as_text(vr, value, private=True))
            if tag in SKIP_TAGS:
                continue
            if vr == "SQ":
                for i, item in enumerate(value or ()):
                    self.walk(item, f"{where}[{i}].", in_meta)
                continue
            if vr == "UI":
                if tag in CLASS_UID_TAGS:  # classes, syntaxes, schemes, context groups: kept by design
                    continue
                for uid in values_of(value):
                    if (self.ids is not None and uid in self.ids.uids) or is_unregistered_under_root(uid):
                        self.add(where, keyword, "uid", "leak", uid)
                continue
            if self.ids is None or (vr not in _TEXT_VRS and tag not in _META_PRIVATE):
                continue
            text = _as_text(vr, value)
            if not text:
                continue
            hits = pn_hits(self.ids, text) if vr == "PN" else text_hits(self.ids, text)
            if tag in _DEVICE_TEXT:
                hits = [h for h in hits if h[0] not in _PLACE_CATEGORIES]
            if vr == "CS" or tag in _CODE_TAGS:  # coded values (TEXT, NAME...) are vocabulary, not free text
                hits = [h for h in hits if h[1] != "possible"]
            if in_meta:
                hits += [(c, "leak") for needle, c in self.ids.meta.items() if needle == fold(text.strip())]
            for category, level in hits:
                self.add(where, keyword, category, level, text)

    def check_path(self, rel_path: str) -> None:
        """File and folder names below the output folder: names in any script, IDs, dates, UIDs."""
        from dicomtools.core.anonymize.naming import PathNames

        ids = self.ids
        assert ids is not None
        names = ids.path_names
        for part in rel_path.replace(os.sep, "/").split("/"):
            if any(u in ids.uids or is_unregistered_under_root(u) for u in _UID_RE.findall(part)):
                self.add("path", "file name", "uid", "leak", part)
            elif isinstance(names, PathNames) and names.contains(part):
                self.add("path", "file name", "identifier", "leak", part)


def _as_text(vr: str | None, value: object, private: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        if vr not in ("UN", "OB") or len(value) > _MAX_UN:
            return "" if not private else f"<{len(value)} bytes>"
        return bytes(value).decode("latin-1").strip("\0 ")
    return "\\".join(values_of(value))


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "." for c in text).strip(".")


def _not_dicom(path: str) -> str:
    """A reason when the file is not an instance (the one reader's verdict), else ''."""
    from dicomtools.core.archive.read import verdict

    found = verdict(path)
    return found.reason if found is not None else ""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verify_files(
    paths: Iterable[str],
    identifiers: Identifiers | None,
    *,
    allow_private: bool = False,
    retained: Iterable[str] = (),
    root: str | None = None,
) -> VerifyReport:
    """Check anonymized files; ``identifiers`` None runs only the structural checks.

    With ``root`` (the output folder) each file's path below it is checked too.
    """
    configure_pydicom()  # quiet: real originals carry over-long values (a 122-character LO)
    report = VerifyReport(with_originals=identifiers is not None)
    checker = _Checker(identifiers, allow_private, set(retained))
    for path in paths:
        reason = _not_dicom(path)
        if reason:
            report.unreadable.append(UnreadableFile(path, reason))
            continue
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as exc:
            report.unreadable.append(UnreadableFile(path, f"{type(exc).__name__}: {exc}"))
            continue
        report.files_checked += 1
        rel = os.path.relpath(path, root) if root else None
        report.findings.extend(checker.check(path, ds, rel))
    return report


def verify_folder(out_dir: str, original_dir: str | None = None, pattern: str | None = None) -> VerifyReport:
    """``dicomtools anonymize --verify OUT [--original IN]``: check every file below ``out_dir``."""
    from dicomtools.core.archive.walk import iter_files

    ids = None
    if original_dir is not None:
        ids = collect_identifiers(iter_files(original_dir, pattern))
    return verify_files(sorted(iter_files(out_dir)), ids, root=out_dir)
