"""The identifiers of the originals that an anonymized output must not contain: the leak checker's needles.

What is *not* a needle matters as much: an Accession Number ``1``, a birth
date ``19000101``, a time ``000000`` or a name ``UNKNOWN`` match numbers,
dates and the profile's own dummy values everywhere and once buried real
findings under thousands of false ones. Placeholders, trivially short values
and the tool's dummies are therefore dropped here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from dicomtools.core.anonymize.valuetext import (
    fold,
    has_unspaced_script,
    name_groups,
    peek_elements,
    spellings,
    values_of,
)
from dicomtools.core.anonymize.wellknown import is_well_known_uid

# Keyword -> category for the non-PN identifying attributes collected from originals.
IDENTIFYING: dict[str, str] = {
    "PatientID": "id",
    "OtherPatientIDs": "id",
    "IssuerOfPatientID": "institution",  # the assigning authority ("CCHS"), a place rather than a person
    "MedicalRecordLocator": "id",
    "AdmissionID": "id",
    "AccessionNumber": "accession",
    "FillerOrderNumberImagingServiceRequest": "accession",
    "PlacerOrderNumberImagingServiceRequest": "accession",
    "PatientBirthDate": "birth_date",
    "PatientAddress": "address",
    "InstitutionAddress": "institution",  # kept with the institution under RetainInstitutionIdent (Table E.1-1)
    "ReferringPhysicianAddress": "address",
    "PatientTelephoneNumbers": "address",
    "ReferringPhysicianTelephoneNumbers": "address",
    "InstitutionName": "institution",
    "InstitutionalDepartmentName": "institution",
    "ImplementationVersionName": "meta",
    "SourceApplicationEntityTitle": "device",
}
# Values that stand for "no value" in real files, and the dummies our own profiles write.
PLACEHOLDERS = frozenset({
    "none", "unknown", "unk", "anonymized", "anonymised", "anonymous", "anon", "na", "n/a", "null", "nil",
    "not available", "removed", "redacted", "deidentified", "de-identified", "noname", "no name", "test",
    "patient", "dummy", "unnamed", "empty", "default", "other", "19000101", "19000101000000", "000000", "000y",
})
# UI attributes naming classes, syntaxes, schemes, context groups or software, never an instance
# (the engine's list, except Implementation Class UID: an original's must not survive in our meta).
CLASS_UID_TAGS = frozenset({
    0x00000002, 0x00000003, 0x00020002, 0x00020010, 0x00020032, 0x00020100, 0x00041510, 0x00041512,
    0x0004151A, 0x00080016, 0x0008001A, 0x0008001B, 0x00080062, 0x0008010C, 0x0008010D, 0x00080117,
    0x00080118, 0x0008040E, 0x00081150, 0x0008115A, 0x00083002, 0x00089123, 0x00340003, 0x04000010,
    0x04000510, 0x3010001F, 0x30100052, 0x30100053,
})
SKIP_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
DICOM_ROOT = "1.2.840.10008."
_SIGNIFICANT = re.compile(r"[^\W_]")
_ID_CATEGORIES = frozenset({"id", "accession"})


def is_registered_uid(uid: str) -> bool:
    """A UID of the DICOM registry, not an instance's: the engine's rule (one place)."""
    return is_well_known_uid(uid)


def is_unregistered_under_root(uid: str) -> bool:
    """A UID that poses as the standard's but is an instance's (it should have been remapped)."""
    u = uid.strip("\0 ")
    return u.startswith(DICOM_ROOT) and u not in UID_dictionary


def is_placeholder(value: str) -> bool:
    """Whether ``value`` carries no identity: empty, a placeholder word, one repeated character, or short.

    Short means fewer than 3 letters/digits (2 for scripts where a name is two characters).
    """
    v = fold(value).strip(" \0^=")
    if not v or v in PLACEHOLDERS:
        return True
    core = "".join(_SIGNIFICANT.findall(v))
    if core in PLACEHOLDERS or len(set(core)) <= 1:
        return True
    if all(c in PLACEHOLDERS or not c for c in re.split(r"[\^=\s]+", v)):
        return True
    return len(core) < (2 if has_unspaced_script(core) else 3)


def _person_parts(components: list[str]) -> list[str]:
    """Name components with the "Family, Given" habit split: ``Wetzel, James^Chase`` -> Wetzel, James, Chase.

    Vendors and hand-typed names put the whole name in the family component
    with a comma; compared whole, ``Wetzel^James`` in an output would not match.
    """
    parts: list[str] = []
    for component in components:
        pieces = [p.strip() for p in component.split(",") if p.strip()]
        parts.extend(pieces if len(pieces) > 1 else [component])
    return parts


def date_forms(date: str) -> list[str]:
    """A DA value as written in free text and file names: 19610302, 1961-03-02, 02.03.1961, 03/02/1961."""
    d = date.strip()
    if len(d) != 8 or not d.isdigit():
        return []
    y, m, day = d[:4], d[4:6], d[6:]
    return [d, f"{y}-{m}-{day}", f"{day}.{m}.{y}", f"{m}/{day}/{y}", f"{y}_{m}_{day}"]


@dataclass
class NameNeedles:
    """Original person names: folded components (compared with output PN components) and free-text forms."""

    components: set[str] = field(default_factory=set)  # every spelling of family/given/middle names
    full: set[str] = field(default_factory=set)  # "jurgen muller", "muller^jurgen", "山田太郎"...: leak in text
    words: set[str] = field(default_factory=set)  # lone Latin name words: "possible" in free text


@dataclass
class Identifiers:
    """The needles, folded; ``ignore`` holds the new identity's values (never a leak)."""

    substrings: dict[str, str] = field(default_factory=dict)  # needle -> category, leak if contained
    numbers: dict[str, str] = field(default_factory=dict)  # digit-only needle -> category, whole digit run
    tokens: dict[str, str] = field(default_factory=dict)  # short needle -> category, whole word
    names: NameNeedles = field(default_factory=NameNeedles)
    uids: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)  # file meta texts (version name, AE title)
    ignore: set[str] = field(default_factory=set)
    path_names: object | None = None  # naming.PathNames, built lazily (import cycle)

    def __post_init__(self) -> None:
        self.ignore = {fold(v) for v in self.ignore if v}

    def _ignored(self, value: str) -> bool:
        return fold(value) in self.ignore or is_placeholder(value)

    def add(self, category: str, text: str) -> None:
        value = text.strip().strip("\0").strip()
        if not value or self._ignored(value) and category != "uid":
            return
        if category == "uid":
            if value.count(".") >= 2 and len(value) >= 8 and not is_registered_uid(value):  # "0" is no UID
                self.uids.add(value)
        elif category == "name":
            self._add_name(value)
        elif category in ("meta", "device"):
            self.meta.setdefault(fold(value), category)
        elif category == "birth_date":
            for form in date_forms(value):
                (self.numbers if form.isdigit() else self.substrings).setdefault(form, category)
        else:
            f = fold(value)
            significant = len(_SIGNIFICANT.findall(f))
            if f.isdigit():
                self.numbers.setdefault(f, category)
            elif significant >= 5 or (category in _ID_CATEGORIES and significant >= 4):
                self.substrings.setdefault(f, category)
            elif category in _ID_CATEGORIES:
                self.tokens.setdefault(f, category)
            # a 3-4 letter institution or address ("here", "CT") names nothing: no needle

    def _add_name(self, value: str) -> None:
        for group in name_groups(value):
            parts = [p for p in _person_parts(group[:3]) if not self._ignored(p)]  # family, given, middle
            for p in parts:
                self.names.components |= spellings(p)
                if has_unspaced_script(p):
                    continue
                for word in re.findall(r"[^\W_]+", p):
                    if len(word) >= 3 and not self._ignored(word):
                        self.names.words |= spellings(word)
            if len(parts) >= 2:
                family, given = parts[0], parts[1]
                for form in (f"{given} {family}", f"{family} {given}", f"{family}, {given}", f"{family}^{given}",
                             f"{family}{given}"):
                    if has_unspaced_script(form) or " " in form or "^" in form or "," in form:
                        self.names.full.add(fold(form))
            elif len(parts) == 1 and has_unspaced_script(parts[0]):
                self.names.full.add(fold(parts[0]))
            for p in parts:  # a name written as words in one component: "nameless waterfall", "ZZZ TEST PATIENTFIVE"
                words = [w for w in re.findall(r"[^\W_]+", p) if len(w) >= 3 and not self._ignored(w)]
                if len(words) >= 2 and not has_unspaced_script(p):
                    self.names.full.add(fold(" ".join(words)))
                    for word in words:
                        self.names.components |= spellings(word)

    def merge(self, other: Identifiers) -> None:
        """Add what ``other`` collected, as if its data sets had been added here after ours.

        Dicts keep the first category (``setdefault``), as :meth:`add` does,
        so merging per-file collections in path order equals one serial pass.
        """
        for mine, theirs in ((self.substrings, other.substrings), (self.numbers, other.numbers),
                             (self.tokens, other.tokens), (self.meta, other.meta)):
            for key, value in theirs.items():
                mine.setdefault(key, value)
        self.names.components |= other.names.components
        self.names.full |= other.names.full
        self.names.words |= other.names.words
        self.uids |= other.uids
        if other.path_names is not None:
            from dicomtools.core.anonymize.naming import PathNames

            assert isinstance(other.path_names, PathNames)
            if self.path_names is None:
                self.path_names = PathNames()
            assert isinstance(self.path_names, PathNames)
            self.path_names.merge(other.path_names)

    def add_dataset(self, ds: Dataset) -> None:
        """Collect identifiers from one original data set (every element, file meta included)."""
        from dicomtools.core.anonymize.naming import PathNames, path_identifiers

        if self.path_names is None:
            self.path_names = PathNames()
        assert isinstance(self.path_names, PathNames)
        self.path_names.add(path_identifiers(ds), "", "")
        meta = getattr(ds, "file_meta", None)
        for part in (meta, ds):
            if part is not None:
                self._walk(part)

    def _walk(self, ds: Dataset) -> None:
        for elem in peek_elements(ds):
            tag = int(elem.tag)
            if tag in SKIP_TAGS:
                continue
            vr = elem.VR
            if vr == "SQ":
                for item in elem.value or ():
                    self._walk(item)
                continue
            try:
                values = values_of(elem.value)
            except Exception:  # an undecodable value gives no needle
                continue
            if vr == "PN":
                for v in values:
                    self.add("name", v)
            elif vr == "UI":
                if tag not in CLASS_UID_TAGS:
                    for v in values:
                        self.add("uid", v)
            else:
                category = IDENTIFYING.get(elem.keyword)
                if category:
                    for v in values:
                        self.add(category, v)
