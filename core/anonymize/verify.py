"""PHI leak checker: search every element of anonymized files for original identifying values.

The originals give the needles: every person name (any PN element, in its
usual spellings), patient IDs, accession numbers, birth date, addresses,
institution, and every instance UID. Each output element is then checked,
sequences and file meta included: a value equal to or containing a needle is
a *leak*; a private element left when the profile removes private tags is a
*private* finding. A lone name component as a whole word ("SMITH" in a
description) is reported as *possible*: real names do hide in free text, but
so do common words, so it does not fail the check on its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomtools.core.anonymize.engine import is_well_known
from dicomtools.core.model import UnreadableFile

log = logging.getLogger(__name__)

# Keyword -> category for the non-PN identifying attributes we collect from originals.
IDENTIFYING: dict[str, str] = {
    "PatientID": "id",
    "OtherPatientIDs": "id",
    "MedicalRecordLocator": "id",
    "AdmissionID": "id",
    "PatientInsurancePlanCodeSequence": "id",
    "AccessionNumber": "accession",
    "FillerOrderNumberImagingServiceRequest": "accession",
    "PlacerOrderNumberImagingServiceRequest": "accession",
    "PatientBirthDate": "birth_date",
    "PatientBirthTime": "birth_date",
    "PatientAddress": "address",
    "InstitutionAddress": "address",
    "ReferringPhysicianAddress": "address",
    "PatientTelephoneNumbers": "address",
    "ReferringPhysicianTelephoneNumbers": "address",
    "InstitutionName": "institution",
    "InstitutionalDepartmentName": "institution",
}
# Options (CID 7050 codes) under which a category may legitimately stay.
RETAINED_BY_CODE = {"113110": "uid", "113112": "institution"}
SAFE_PRIVATE_CODE = "113111"
_SKIP_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_MAX_BINARY = 4096
_UID_RE = re.compile(r"\d+(?:\.\d+){3,}")
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


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


@dataclass
class Identifiers:
    """The needles: identifying values of the originals, lower-cased."""

    substrings: dict[str, str] = field(default_factory=dict)  # needle -> category (leak if contained)
    tokens: dict[str, str] = field(default_factory=dict)  # whole-word needle -> category (leak)
    name_parts: set[str] = field(default_factory=set)  # whole-word, level "possible"
    uids: set[str] = field(default_factory=set)
    ignore: set[str] = field(default_factory=set)  # the new values (never a leak)

    def add(self, category: str, text: str) -> None:
        value = text.strip().strip("\0").strip()
        if not value or value.lower() in self.ignore:
            return
        if category == "uid":
            self.uids.add(value)
            return
        if category == "name":
            self._add_name(value)
            return
        low = value.lower()
        if len(low) >= 4:
            self.substrings.setdefault(low, category)
        else:
            self.tokens.setdefault(low, category)

    def _add_name(self, value: str) -> None:
        for group in value.split("="):  # alphabetic / ideographic / phonetic
            parts = [p.strip() for p in group.split("^")]
            family, given = (parts + ["", ""])[:2]
            forms = {group.strip("^ ")}
            if family and given:
                forms |= {f"{given} {family}", f"{family} {given}", f"{family}, {given}", f"{family}^{given}"}
            for form in forms:
                low = form.lower()
                if len(low) >= 4 and low not in self.ignore:
                    self.substrings.setdefault(low, "name")
            for part in parts:
                for word in _WORD_RE.findall(part.lower()):
                    if len(word) >= 3 and word not in self.ignore:
                        self.name_parts.add(word)

    def add_dataset(self, ds: Dataset) -> None:
        """Collect identifiers from one original dataset (every element, file meta included)."""
        meta = getattr(ds, "file_meta", None)
        for part in (meta, ds):
            if part is not None:
                self._walk(part)

    def _walk(self, ds: Dataset) -> None:
        for elem in ds:
            tag = int(elem.tag)
            if tag in _SKIP_TAGS:
                continue
            vr = elem.VR
            if vr == "SQ":
                for item in elem.value or ():
                    self._walk(item)
                continue
            if elem.value is None or elem.value == "":
                continue
            if vr == "PN":
                for v in _as_list(elem.value):
                    self.add("name", str(v))
            elif vr == "UI":
                for v in _as_list(elem.value):
                    if not is_well_known(tag, str(v)):
                        self.add("uid", str(v))
            else:
                category = IDENTIFYING.get(elem.keyword)
                if category:
                    for v in _as_list(elem.value):
                        self.add(category, str(v))


def _as_list(value: Any) -> list[Any]:
    """The values of a possibly multi-valued element (a PersonName is one value, not its letters)."""
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def collect_identifiers(
    paths: Iterable[str], ignore: Iterable[str] = (), on_error: Callable[[str, str], None] | None = None
) -> Identifiers:
    """Read original files and collect their identifying values."""
    ids = Identifiers(ignore={v.lower() for v in ignore if v})
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


def _element_text(elem: Any) -> str | None:
    vr = elem.VR
    value = elem.value
    if value is None:
        return None
    if vr in _BINARY_VRS:
        if not isinstance(value, bytes | bytearray) or len(value) > _MAX_BINARY:
            return None
        return value.decode("latin-1")
    if isinstance(value, bytes | bytearray):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    if hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value)
    return str(value)


class _Checker:
    def __init__(self, ids: Identifiers | None, allow_private: bool, retained: set[str]) -> None:
        self.ids = ids
        self.allow_private = allow_private
        self.retained = retained

    def check(self, path: str, ds: Dataset) -> list[Finding]:
        out: list[Finding] = []
        codes = {str(item.get("CodeValue", "")) for item in ds.get("DeidentificationMethodCodeSequence", [])}
        retained = set(self.retained) | {RETAINED_BY_CODE[c] for c in codes if c in RETAINED_BY_CODE}
        allow_private = self.allow_private or SAFE_PRIVATE_CODE in codes
        if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
            out.append(Finding(path, "(0012,0062)", "PatientIdentityRemoved", "marker", "warning", "not YES"))
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._walk(path, meta, "", out, retained, allow_private)
        self._walk(path, ds, "", out, retained, allow_private)
        return out

    def _walk(self, path: str, ds: Dataset, prefix: str, out: list[Finding], retained: set[str], allow_private: bool) -> None:
        for elem in ds:
            tag = int(elem.tag)
            where = f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})"
            keyword = elem.keyword or "private"
            if elem.tag.is_private and not allow_private:
                out.append(Finding(path, where, keyword, "private", "private", _short(_element_text(elem) or "")))
            if tag in _SKIP_TAGS:
                continue
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or ()):
                    self._walk(path, item, f"{where}[{i}].", out, retained, allow_private)
                continue
            if self.ids is None:
                continue
            text = _element_text(elem)
            if not text:
                continue
            for category, level in self._match(tag, elem.VR, text):
                if category in retained:
                    continue
                out.append(Finding(path, where, keyword, category, level, _short(text)))

    def _match(self, tag: int, vr: str, text: str) -> list[tuple[str, str]]:
        ids = self.ids
        assert ids is not None
        hits: list[tuple[str, str]] = []
        if vr == "UI":
            if any(p.strip() in ids.uids for p in text.split("\\")):
                hits.append(("uid", "leak"))
            return hits
        for found in _UID_RE.findall(text):
            if found in ids.uids:
                hits.append(("uid", "leak"))
                break
        low = text.lower()
        for needle, category in ids.substrings.items():
            if needle in low:
                hits.append((category, "leak"))
                break
        if ids.tokens or ids.name_parts:
            words = set(_WORD_RE.findall(low)) | {w for w in re.split(r"[\\^\s]+", low) if w}
            for word in words:
                if word in ids.tokens:
                    hits.append((ids.tokens[word], "leak"))
                    break
            else:
                for word in words:
                    if word in ids.name_parts:
                        hits.append(("name", "possible"))
                        break
        return hits


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
) -> VerifyReport:
    """Check anonymized files; ``identifiers`` None runs only the structural checks."""
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
        report.findings.extend(checker.check(path, ds))
    return report


def verify_folder(out_dir: str, original_dir: str | None = None, pattern: str | None = None) -> VerifyReport:
    """``dicomtools anonymize --verify OUT [--original IN]``: check every file below ``out_dir``."""
    from dicomtools.core.walk import iter_files

    ids = None
    if original_dir is not None:
        ids = collect_identifiers(iter_files(original_dir, pattern))
    return verify_files(sorted(iter_files(out_dir)), ids)
