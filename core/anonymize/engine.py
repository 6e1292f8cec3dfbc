"""Apply a compiled profile to one pydicom dataset, in place.

One walk over the elements, recursive into sequence items at any depth, file
meta included. Per element: a dict look-up, then (only for private or
repeating groups) a few mask tests; elements nobody listed stay raw bytes and
are never decoded, which keeps the cost near a plain read + write.

What each action does here:

- ``X`` remove · ``Z`` empty value (empty sequence) · ``K`` keep
- ``D`` dummy of the element's VR (UIDs: a new UID from the run's map)
- ``C`` text -> dummy; DA/DT -> shifted by the patient's offset; TM, numbers,
  CS and binary kept; UIDs -> new UID; private -> removed (we cannot know it is safe)
- ``U`` new UID from the run's map (same original, same new UID in every file)
- on a sequence, ``C``/``D``/``K``/``U`` keep it and apply the profile inside;
  ``X/Z/U*`` keeps a sequence of references and replaces the UIDs inside.
- other combined cells (``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``) pick the first
  action unless the attribute is Type 1/2 in the RT and image IODs we write
  (:data:`COMBINED_CHOICE`), so the output stays importable.

Unlisted UI elements are remapped too (unless Retain UIDs): a reference the
table does not name must not keep the original UID. Well-known UIDs (SOP
classes, transfer syntaxes, coding schemes, anything under 1.2.840.10008.)
are never remapped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dicomtools.core.anonymize.dates import DUMMY_DA, DUMMY_DT, shift_multi
from dicomtools.core.anonymize.profile import OPTIONS, CompiledProfile
from dicomtools.core.anonymize.uidmap import UidMap

log = logging.getLogger(__name__)

DICOM_ROOT = "1.2.840.10008."
DUMMY_TEXT = "ANONYMIZED"

# UI attributes whose values name classes, syntaxes, schemes or software, never an instance.
NEVER_REMAP: frozenset[int] = frozenset({
    0x00000002, 0x00000003, 0x00020002, 0x00020010, 0x00020012, 0x00020032, 0x00020100,
    0x00041510, 0x00041512, 0x0004151A, 0x00080016, 0x0008001A, 0x0008001B, 0x00080062,
    0x0008010C, 0x0008010D, 0x00080117, 0x00080118, 0x0008040E, 0x00081150, 0x0008115A,
    0x00083002, 0x00089123, 0x00340003, 0x04000010, 0x04000510, 0x3010001F, 0x30100052,
    0x30100053,
})

# Combined cells resolved for attributes that are Type 1 or 2 somewhere in the RT / CT / MR
# IODs (removing them would make the object invalid); everything else takes the first action.
COMBINED_CHOICE: dict[int, str] = {
    0x300A00B2: "Z",  # Treatment Machine Name, Type 2 in the Beam Sequence (X/Z)
    0x300E0008: "Z",  # Reviewer Name, Type 2C in the Approval module (X/Z)
    0x30080105: "Z",  # Source Serial Number, Type 2 in brachy records (X/Z)
    0x00400555: "Z",  # Acquisition Context Sequence, Type 2 where present (X/Z)
    0x00081070: "Z",  # Operators' Name, Type 2 in RT treatment records (X/Z/D)
    0x300A0006: "D",  # RT Plan Date, Type 2 in RT General Plan (X/D)
    0x300A0007: "D",  # RT Plan Time (X/D)
    0x30080250: "D",  # Treatment Date, Type 2 in RT records (X/D)
    0x30080251: "D",  # Treatment Time (X/D)
    0x30080054: "D",  # First Treatment Date, Type 2 in the treatment summary (X/D)
    0x30080056: "D",  # Most Recent Treatment Date (X/D)
}

_DUMMY: dict[str, Any] = {
    "AE": DUMMY_TEXT, "AS": "000Y", "CS": DUMMY_TEXT, "DA": DUMMY_DA, "DT": DUMMY_DT, "TM": "000000",
    "DS": "0", "IS": "0", "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "PN": DUMMY_TEXT, "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UT": DUMMY_TEXT, "UR": DUMMY_TEXT,
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0, "SV": 0, "UV": 0, "AT": 0,
    "OB": b"\0\0", "OD": b"\0" * 8, "OF": b"\0" * 4, "OL": b"\0" * 4, "OV": b"\0" * 8, "OW": b"\0\0",
    "UN": b"\0\0",
}
_ZEROS = {"FL": 4, "FD": 8, "SL": 4, "SS": 2, "UL": 4, "US": 2, "SV": 8, "UV": 8, "AT": 4}


def _pad(data: bytes, vr: str) -> bytes:
    if len(data) % 2:
        data += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return data


def _dummy_bytes(vr: str) -> bytes:
    if vr in _ZEROS:
        return b"\0" * _ZEROS[vr]
    value = _DUMMY.get(vr, b"\0\0")
    return _pad(value if isinstance(value, bytes) else str(value).encode("ascii"), vr)


_DUMMY_BYTES: dict[str, bytes] = {vr: _dummy_bytes(vr) for vr in _DUMMY}
_BINARY = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT", None})
_TEXT_VRS = frozenset({"AE", "AS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
_DATE_VRS = frozenset({"DA", "DT"})

# Tag -> VR for standard attributes, built once so implicit-VR elements need no decoding.
_DICT_VR: dict[int, str] = {tag: entry[0].split(" or ")[0] for tag, entry in DicomDictionary.items()}

# File meta attributes that name the sending station; removed unless Retain Device Identity.
_META_DEVICE = (0x00020016, 0x00020017, 0x00020018)
_META_PRIVATE = (0x00020100, 0x00020102)


class _AllGroups(frozenset[int]):
    """Stands for "every private group" when the profile keeps private data."""

    def __contains__(self, item: object) -> bool:
        return True


_ALL_GROUPS = _AllGroups()


def put_raw(ds: Dataset, tag: int, vr: str, data: bytes, implicit: bool = False, little: bool = True) -> None:
    """Store an already encoded value: written as-is, so nothing is encoded twice.

    Only for values whose bytes do not depend on byte order or character set
    (ASCII text, UIDs, zeros), which is everything the engine writes itself.
    """
    btag = tag if isinstance(tag, BaseTag) else BaseTag(tag)
    ds._dict[btag] = RawDataElement(btag, vr, len(data), data, 0, implicit, little)


def put_text(ds: Dataset, tag: int, vr: str, value: str) -> None:
    """Set a text value: raw bytes when ASCII, else a normal element pydicom encodes."""
    if value.isascii():
        put_raw(ds, tag, vr, _pad(value.encode("ascii"), vr))
    else:
        ds[tag] = DataElement(tag, vr, value)


def first_action(cell: str, tag: int) -> str:
    """The single action the engine uses for a (possibly combined) cell."""
    if "/" not in cell:
        return cell
    if cell == "X/Z/U*":
        return "U*"
    choice = COMBINED_CHOICE.get(tag)
    return choice if choice is not None and choice in cell.split("/") else cell[0]


def is_well_known(tag: int, value: str) -> bool:
    return tag in NEVER_REMAP or value.startswith(DICOM_ROOT)


@dataclass(slots=True)
class EngineResult:
    """What one dataset became; the batch runner needs it for names and the report."""

    original_patient_id: str
    original_patient_name: str
    new_patient_id: str
    new_patient_name: str
    new_sop_instance_uid: str


class Anonymizer:
    """Applies one compiled profile with one UID map; cheap to call for thousands of datasets.

    One instance per thread (it keeps the current patient's date shift); the
    UID map itself may be shared between threads.
    """

    def __init__(
        self,
        compiled: CompiledProfile,
        uid_map: UidMap,
        new_patient_id: str,
        new_patient_name: str,
    ) -> None:
        self.compiled = compiled
        self.uid_map = uid_map
        self.new_patient_id = new_patient_id
        self.new_patient_name = new_patient_name
        # the per-element tables, resolved once
        self.exact: dict[int, str] = {t: first_action(a, t) for t, a in compiled.exact.items()}
        self.masks = tuple((v, m, first_action(a, v)) for v, m, a in compiled.masks)
        self.creators = {k: first_action(a, 0) for k, a in compiled.creators.items()}
        self.private_action = first_action(compiled.private_action, 0)
        self.creator_groups = {g for g, _, _ in self.creators}
        keeps = self.private_action not in ("X", "C")
        kept = {g for (g, _, _), a in self.creators.items() if a not in ("X", "C")}
        # groups where a private creator can keep its block (all of them when private data is kept)
        self.kept_groups: frozenset[int] = _ALL_GROUPS if keeps else frozenset(kept)
        self.remap_unlisted = not compiled.retain_uids
        self.days = 0
        profile = compiled.profile
        self.method = [f"dicomtools {profile.name} profile v{profile.profile_version}"[:64]]
        self.method += _option_titles(compiled)
        self.codes = profile.claimed_codes(compiled.options)
        self._encoded: dict[tuple[bool, bool], bytes] = {}
        if compiled.full_dates:
            self.temporal = "UNMODIFIED"
        elif compiled.modified_dates:
            self.temporal = "MODIFIED"
        else:
            self.temporal = "REMOVED"

    # -- one dataset ------------------------------------------------------------
    def anonymize(self, ds: Dataset) -> EngineResult:
        """Anonymize ``ds`` in place (file meta included) and return the new identity."""
        old_id = element_text(ds, 0x00100020).strip()
        old_name = element_text(ds, 0x00100010).strip()
        entry = self.uid_map.patient(old_id, self.new_patient_id, self.new_patient_name)
        self.days = self.uid_map.date_shift(old_id) if self.compiled.modified_dates else 0
        self._walk(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._walk(meta)
            self._meta_extras(meta, ds)
        put_text(ds, 0x00100020, "LO", entry.new_id)
        put_text(ds, 0x00100010, "PN", entry.new_name)
        self._mark(ds)
        return EngineResult(old_id, old_name, entry.new_id, entry.new_name, element_text(ds, 0x00080018))

    def _walk(self, ds: Dataset) -> None:
        # Keys are pydicom BaseTags, whose __eq__ is Python code: look them up in our own
        # tables as plain ints, and in the dataset with the key object itself (identity hit).
        d = ds._dict
        exact = self.exact
        for key in list(d):
            tag = int(key)
            action = exact.get(tag)
            if action is None:
                if tag & 0x10000:
                    action = self._private(ds, tag)
                elif not tag & 0xFFFF:
                    if tag >> 16 != 2:  # retired group lengths go stale once elements are removed
                        del d[key]
                    continue
                else:
                    for value, mask, act in self.masks:
                        if tag & mask == value:
                            action = act
                            break
                if action is None:
                    vr = self._vr(d[key], tag)
                    if vr == "SQ":
                        self._items(ds, key)
                    elif vr == "UI" and self.remap_unlisted:
                        self._remap(ds, key, tag)
                    continue
            if action == "K":
                if self._vr(d[key], tag) == "SQ":
                    self._items(ds, key)
            elif action == "X":
                del ds[key]
            else:
                self._apply(ds, key, tag, action)

    def _private(self, ds: Dataset, tag: int) -> str | None:
        element = tag & 0xFFFF
        if element < 0x10:
            return "X"  # private group length
        group = tag >> 16
        if element < 0x100:
            # a private creator: kept only while something of its block is kept
            return None if group in self.kept_groups and self._block_kept(ds, tag) else "X"
        if group in self.creator_groups:
            creator = element_text(ds, (tag & 0xFFFF0000) | (element >> 8)).strip()
            action = self.creators.get((group, tag & 0xFF, creator))
            if action is not None:
                return "X" if action == "C" else action
        return "X" if self.private_action == "C" else self.private_action

    def _block_kept(self, ds: Dataset, creator_tag: int) -> bool:
        """Whether any element of this creator's block survives the private rules."""
        group = creator_tag & 0xFFFF0000
        low = (creator_tag & 0xFF) << 8
        start, stop = group | low, group | low | 0xFF
        creator = element_text(ds, creator_tag).strip()
        for key in ds._dict:
            tag = int(key)
            if start <= tag <= stop:
                action = self.creators.get((tag >> 16, tag & 0xFF, creator), self.private_action)
                if action not in ("X", "C"):
                    return True
        return False

    def _items(self, ds: Dataset, key: BaseTag) -> None:
        seq = ds[key].value
        for item in seq or ():
            self._walk(item)

    @staticmethod
    def _vr(elem: Any, tag: int) -> str:
        vr: str | None = elem.VR
        if vr is None or (vr == "UN" and not tag & 0x10000):
            known = _DICT_VR.get(tag)
            if known is None:
                try:
                    known = dictionary_VR(tag).split(" or ")[0]
                except KeyError:
                    known = "UN"
            if vr is None or known != "UN":
                vr = known
        return vr

    def _apply(self, ds: Dataset, key: BaseTag, tag: int, action: str) -> None:
        vr = self._vr(ds._dict[key], tag)
        if vr == "SQ":
            if action == "Z":
                ds[key] = DataElement(key, "SQ", Sequence())
            else:  # C, D, U, U*: keep the sequence, the profile works inside
                self._items(ds, key)
            return
        if action == "U*":
            del ds[key]
        elif action == "Z":
            put_raw(ds, key, vr, b"")
        elif vr == "UI":
            self._remap(ds, key, tag)  # U, D and C on a UID all mean: a consistent new UID
        elif action == "D" or action == "U":
            put_raw(ds, key, vr, _DUMMY_BYTES.get(vr, b"\0\0"))
        elif action == "C":
            self._clean(ds, key, vr)
        # K never reaches here

    def _clean(self, ds: Dataset, tag: BaseTag, vr: str) -> None:
        if vr in _DATE_VRS:
            if self.compiled.modified_dates:
                text = element_text(ds, tag)
                if text:
                    ds[tag] = DataElement(tag, vr, shift_multi(text, vr, self.days))
            else:
                put_raw(ds, tag, vr, _DUMMY_BYTES[vr])
        elif vr in _TEXT_VRS:
            if element_text(ds, tag):
                put_raw(ds, tag, vr, _DUMMY_BYTES[vr])
        # TM (days shift keeps the time of day), numbers, CS and binary data stay

    def _remap(self, ds: Dataset, key: BaseTag, tag: int) -> None:
        raw = ds._dict[key]
        value = raw.value
        if isinstance(value, bytes | bytearray):
            text = value.decode("ascii", "replace").strip("\0 ")
            parts = text.split("\\") if text else []
        elif value is None or value == "":
            return
        elif isinstance(value, str):
            parts = [value]
        else:
            parts = [str(v) for v in value]
        if not parts:
            return
        new = [p if not p or is_well_known(tag, p) else self.uid_map.map(p.strip()) for p in parts]
        if new != parts:
            put_raw(ds, key, "UI", _pad("\\".join(new).encode("ascii"), "UI"))

    # -- additions -------------------------------------------------------------
    def _meta_extras(self, meta: Dataset, ds: Dataset) -> None:
        if "RetainDeviceIdent" not in self.compiled.options:
            for tag in _META_DEVICE:
                if tag in meta._dict:
                    del meta[tag]
        if not self.compiled.keeps_private:
            for tag in _META_PRIVATE:
                if tag in meta._dict:
                    del meta[tag]
        sop = element_text(ds, 0x00080018)
        if sop:
            put_raw(meta, 0x00020003, "UI", _pad(sop.encode("ascii"), "UI"))

    def _mark(self, ds: Dataset) -> None:
        """Patient Identity Removed, De-identification Method and its CID 7050 codes."""
        put_raw(ds, 0x00120062, "CS", b"YES ")
        previous = _values(ds, 0x00120063)
        put_text(ds, 0x00120063, "LO", "\\".join(previous + [m for m in self.method if m not in previous]))
        encoding = ds.original_encoding
        if self.codes:  # nothing claimed (aria without options): no code sequence
            if 0x00120064 not in ds._dict and None not in encoding:
                implicit, little = bool(encoding[0]), bool(encoding[1])
                put_raw(ds, 0x00120064, "SQ", self._encoded_codes(implicit, little), implicit, little)
            else:
                self._codes_element(ds)
        put_raw(ds, 0x00280303, "CS", _pad(self.temporal.encode("ascii"), "CS"))

    def _code_items(self) -> list[Dataset]:
        items = []
        for code, meaning in self.codes:
            item = Dataset()
            put_text(item, 0x00080100, "SH", code)
            put_raw(item, 0x00080102, "SH", b"DCM ")
            put_text(item, 0x00080104, "LO", meaning)
            items.append(item)
        return items

    def _encoded_codes(self, implicit: bool, little: bool) -> bytes:
        """(0012,0064) encoded once per transfer syntax: the same bytes go into every file."""
        cached = self._encoded.get((implicit, little))
        if cached is None:
            fp = DicomBytesIO()
            fp.is_implicit_VR, fp.is_little_endian = implicit, little
            write_data_element(fp, DataElement(0x00120064, "SQ", Sequence(self._code_items())))
            cached = fp.getvalue()[8 if implicit else 12 :]
            self._encoded[(implicit, little)] = cached
        return cached

    def _codes_element(self, ds: Dataset) -> None:
        """Append our codes to an existing (0012,0064), or add it to a dataset built in memory."""
        seq = ds[0x00120064].value if 0x00120064 in ds._dict else Sequence()
        present = {str(item.get("CodeValue", "")) for item in seq}
        for item in self._code_items():
            if str(item.get("CodeValue", "")) not in present:
                seq.append(item)
        ds._dict[BaseTag(0x00120064)] = DataElement(0x00120064, "SQ", seq)


def _option_titles(compiled: CompiledProfile) -> list[str]:
    """One (0012,0063) value per chosen option, by our short name (a name, not a CID 7050 claim)."""
    return [f"option {o.short}" for o in OPTIONS if o.short in compiled.options]


def element_text(ds: Dataset, tag: int) -> str:
    """An element's value as text (multi-values joined by backslash); '' when absent.

    ASCII raw bytes are decoded directly (no pydicom conversion); anything else
    goes through pydicom so the character set is honoured.
    """
    elem = ds._dict.get(BaseTag(tag))
    if elem is None:
        return ""
    raw = elem.value
    if elem.is_raw and isinstance(raw, bytes) and raw.isascii() and elem.VR not in _BINARY:
        return raw.decode("ascii").rstrip("\0 ")
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return value.decode("latin-1").strip("\0 ")
    if isinstance(value, str):
        return value
    try:
        return "\\".join(str(v) for v in value)
    except TypeError:
        return str(value)


def _values(ds: Dataset, tag: int) -> list[str]:
    text = element_text(ds, tag)
    return [v for v in text.split("\\") if v] if text else []

