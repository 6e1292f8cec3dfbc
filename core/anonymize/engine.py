"""Apply a compiled profile to one pydicom dataset, in place.

One walk over the elements, recursive into sequence items at any depth, file
meta included. Per element: a dict look-up, then (only for private or
repeating groups) a few mask tests; elements nobody listed stay raw bytes and
are never decoded, which keeps the cost near a plain read + write.

What each action does here:

- ``X`` remove · ``Z`` empty value (empty sequence) · ``K`` keep
- ``D`` dummy of the element's VR (UIDs: a new UID from the run's map)
- ``C`` text -> dummy; DA/DT -> shifted by the patient's offset; Timezone
  Offset From UTC kept when it is a valid ±HHMM; TM, numbers, CS and binary
  kept; UIDs -> new UID; private -> kept only when listed as safe (PS3.15
  Table E.3.10-1, the Retain Safe Private Option)
- ``U`` new UID from the run's map (same original, same new UID in every file)
- on a sequence the action covers everything in it: ``D`` and ``C`` as in
  :mod:`sequences` (dummy sequence, SR content items), ``K``/``U`` keep it and
  apply the profile inside; ``X/Z/U*`` keeps a sequence of references with new UIDs.
- combined cells (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``) follow the attribute's
  Type in the object's IOD at that place (:mod:`iod`, PS3.15 E.3.1).
- an overlay group 60xx goes whole when Overlay Data is removed (never half an overlay).

Unlisted UI elements are remapped too (unless Retain UIDs): a reference the
table does not name must not keep the original UID. Only UIDs of the DICOM
registry and class-UID attributes are kept (:mod:`wellknown`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dicomtools.core.anonymize import sequences as seqs
from dicomtools.core.anonymize.dates import shift_multi
from dicomtools.core.anonymize.iod import IodTypes, choose, conform, iod_types, keyword
from dicomtools.core.anonymize.profile import OPTIONS, CompiledProfile
from dicomtools.core.anonymize.standard import is_safe_private
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.anonymize.values import (
    DATE_VRS,
    DUMMY_BYTES,
    DUMMY_TEXT,
    TEXT_VRS,
    pad,
    put_raw,
    put_text,
)
from dicomtools.core.anonymize.valuetext import element_text, element_values
from dicomtools.core.anonymize.wellknown import is_kept_uid

log = logging.getLogger(__name__)

__all__ = ["DUMMY_TEXT", "Anonymizer", "EngineResult", "element_text", "first_action", "is_well_known",
           "put_raw", "put_text"]

is_well_known = is_kept_uid  # the name verify used; see wellknown.is_well_known_uid

_TIMEZONE = 0x00080201
_TZ_RE = re.compile(r"^[+-](?:0\d|1[0-4])[0-5]\d$")
_CONTENT_SEQUENCE = 0x0040A730

# Tag -> VR for standard attributes, built once so implicit-VR elements need no decoding.
_DICT_VR: dict[int, str] = {tag: entry[0].split(" or ")[0] for tag, entry in DicomDictionary.items()}

# File meta attributes that name the sending station; removed unless Retain Device Identity.
_META_DEVICE = (0x00020016, 0x00020017, 0x00020018)
_META_PRIVATE = (0x00020100, 0x00020102)


def first_action(cell: str, tag: int = 0) -> str:
    """The action of a cell when the IOD is unknown: the first one (``U*`` for ``X/Z/U*``)."""
    return choose(cell, None) if "/" in cell else cell


def _is_overlay(tag: int) -> bool:
    return tag >> 24 == 0x60 and not tag & 0x10000


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

    One instance per thread (it keeps the current patient's date shift and the
    current object's IOD); the UID map itself may be shared between threads.
    """

    def __init__(self, compiled: CompiledProfile, uid_map: UidMap, new_patient_id: str, new_patient_name: str) -> None:
        self.compiled = compiled
        self.uid_map = uid_map
        self.new_patient_id = new_patient_id
        self.new_patient_name = new_patient_name
        self.exact: dict[int, str] = dict(compiled.exact)  # cells as written; combined ones chosen per IOD
        self.masks = compiled.masks
        self.creators = compiled.creators
        self.private_action = compiled.private_action
        self.regexes = compiled.regexes
        self._regex_memo: dict[int, str | None] = {}
        self._unlisted_memo: dict[int, str | None] = {}
        self.keeps_private = compiled.keeps_private  # a property that scans the creator rules
        self.creator_groups = {g for g, _, _ in self.creators}
        # attributes whose action may depend on their Type in the IOD: combined cells, X and Z
        self.typed_keywords = frozenset(keyword(t) for t, a in self.exact.items() if "X" in a or "Z" in a) - {""}
        self.overlay_removed = self._action_for(0x60003000) == "X"
        self.remap_unlisted = not compiled.retain_uids
        self.days = 0
        self.types: IodTypes | None = None  # iod_types() caches them: one object per SOP class
        self._type_memo: dict[tuple[int, tuple[str, ...], int, str], str] = {}
        profile = compiled.profile
        self.method = [f"dicomtools {profile.name} profile v{profile.profile_version}"[:64]]
        self.method += [f"option {o.short}" for o in OPTIONS if o.short in compiled.options]
        self.codes = profile.claimed_codes(compiled.options)
        self._encoded: dict[tuple[bool, bool], bytes] = {}
        self.temporal = "UNMODIFIED" if compiled.full_dates else "MODIFIED" if compiled.modified_dates else "REMOVED"

    # -- one dataset ------------------------------------------------------------
    def anonymize(self, ds: Dataset) -> EngineResult:
        """Anonymize ``ds`` in place (file meta included) and return the new identity."""
        old_id = element_text(ds, 0x00100020).strip()
        old_name = element_text(ds, 0x00100010).strip()
        entry = self.uid_map.patient(old_id, self.new_patient_id, self.new_patient_name)
        self.days = self.uid_map.date_shift(old_id) if self.compiled.modified_dates else 0
        sop_class = element_text(ds, 0x00080016)
        self.types = iod_types(sop_class, self.typed_keywords) if sop_class and self.typed_keywords else None
        self.walk(ds, ())
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self.walk(meta, ())
            self._meta_extras(meta, ds)
        put_text(ds, 0x00100020, "LO", entry.new_id)
        put_text(ds, 0x00100010, "PN", entry.new_name)
        self._mark(ds)
        return EngineResult(old_id, old_name, entry.new_id, entry.new_name, element_text(ds, 0x00080018))

    def _action_for(self, tag: int) -> str | None:
        """The cell for a public tag: exact, then masks, then the ordered regexes of a seed file."""
        action = self.exact.get(tag)
        if action is not None:
            return action
        memo = self._unlisted_memo  # the same few dozen unlisted tags come back in every file
        if tag in memo:
            return memo[tag]
        found = next((act for value, mask, act in self.masks if tag & mask == value), None)
        if found is None and self.regexes:
            found = self._regex(tag)
        memo[tag] = found
        return found

    def _regex(self, tag: int) -> str | None:
        if tag in self._regex_memo:
            return self._regex_memo[tag]
        text = f"{tag >> 16:04X},{tag & 0xFFFF:04X}"
        found = next((act for pattern, act in self.regexes if pattern.search(text)), None)
        self._regex_memo[tag] = found
        return found

    def walk(self, ds: Dataset, path: tuple[str, ...]) -> None:
        """Apply the profile to every element of ``ds``; ``path`` = keywords of the enclosing sequences."""
        # Keys are pydicom BaseTags, whose __eq__ is Python code: look them up in our own
        # tables as plain ints, and in the dataset with the key object itself (identity hit).
        d = ds._dict
        exact = self.exact
        for key in list(d):
            if key not in d:
                continue  # went with its overlay group
            tag = int(key)
            action = exact.get(tag)
            if action is None:
                if tag & 0x10000:
                    action = self._private(ds, tag)
                elif not tag & 0xFFFF:
                    if tag >> 16 != 2:  # retired group lengths go stale once elements are removed
                        del d[key]
                    continue
                elif _is_overlay(tag):
                    if self.overlay_removed:
                        self._drop_group(ds, tag >> 16)
                        continue
                    # a kept overlay (Clean Graphics): its free text (description, label) is cleaned
                    action = self._action_for(tag) or ("C" if self.vr_of(ds, tag) in TEXT_VRS else None)
                else:
                    action = self._action_for(tag)
                if action is None:
                    vr = self._vr(d[key], tag)
                    if vr == "SQ":
                        self._items(ds, key, path)
                    elif vr == "UI" and self.remap_unlisted:
                        self.remap(ds, key, tag)
                    continue
            if "/" in action or action in ("X", "Z"):
                action = self._by_type(action, tag, path)
            if action == "K":
                vr = self._vr(d[key], tag)
                if vr == "SQ":
                    self._items(ds, key, path)
                elif vr == "UI" and tag & 0x10000 and self.remap_unlisted:
                    self.remap(ds, key, tag)  # a kept (safe) private UID is still an instance UID
            elif action == "X":
                del d[key]
            else:
                self._apply(ds, key, tag, action, path)

    def _by_type(self, cell: str, tag: int, path: tuple[str, ...]) -> str:
        """Combined cells by the IOD's Type (E.3.1); X and Z where the IOD needs the attribute."""
        types = self.types
        if types is None or tag & 0x10000:
            return first_action(cell)
        memo_key = (id(types), path, tag, cell)
        action = self._type_memo.get(memo_key)
        if action is None:
            attr_type = types.type_of(path, keyword(tag))
            action = self._type_memo[memo_key] = conform(choose(cell, attr_type), attr_type)
        return action

    def _drop_group(self, ds: Dataset, group: int) -> None:
        for key in [k for k in ds._dict if int(k) >> 16 == group]:
            del ds._dict[key]

    # -- private data ------------------------------------------------------------
    def _private_rule(self, tag: int, creator: str) -> str:
        """The action for a private data element: creator rules, the regexes, else the private row."""
        group = tag >> 16
        action: str | None = None
        if group in self.creator_groups:
            action = self.creators.get((group, tag & 0xFF, creator))
        if action is None and self.regexes:
            action = self._regex(tag)
        if action is None:
            action = self.private_action
        if "/" in action:
            action = first_action(action)
        if action == "C":  # Retain Safe Private: only what Table E.3.10-1 lists as safe
            return "K" if creator and is_safe_private(group, tag, creator) else "X"
        return action

    def _creator_of(self, ds: Dataset, tag: int) -> str:
        return element_text(ds, (tag & 0xFFFF0000) | ((tag & 0xFF00) >> 8)).strip()

    def _private(self, ds: Dataset, tag: int) -> str | None:
        element = tag & 0xFFFF
        if element < 0x10:
            return "X"  # private group length
        if element < 0x100:
            # a private creator: kept (None = untouched) only while something of its block is kept
            return None if self._block_kept(ds, tag) else "X"
        return self._private_rule(tag, self._creator_of(ds, tag))

    def _block_kept(self, ds: Dataset, creator_tag: int) -> bool:
        """Whether any element of this creator's block survives the private rules."""
        if self.private_action == "X" and not self.regexes and not any(a != "X" for a in self.creators.values()):
            return False
        group = creator_tag & 0xFFFF0000
        start = group | ((creator_tag & 0xFF) << 8)
        creator = element_text(ds, creator_tag).strip()
        return any(
            self._private_rule(int(key), creator) != "X" for key in ds._dict if start <= int(key) <= start | 0xFF
        )

    # -- one element -----------------------------------------------------------
    def _items(self, ds: Dataset, key: Any, path: tuple[str, ...]) -> None:
        inner = path + (keyword(int(key)),)
        for item in ds[key].value or ():
            self.walk(item, inner)

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

    def vr_of(self, ds: Dataset, tag: int) -> str:
        return self._vr(ds._dict[BaseTag(tag)], tag)

    def _apply(self, ds: Dataset, key: Any, tag: int, action: str, path: tuple[str, ...]) -> None:
        vr = self._vr(ds._dict[key], tag)
        if vr == "SQ":
            self._sequence(ds, key, tag, action, path)
            return
        if action == "U*":
            del ds[key]
        elif action == "Z":
            put_raw(ds, key, vr, b"")
        elif vr == "UI":
            self.remap(ds, key, tag)  # U, D and C on a UID all mean: a consistent new UID
        elif action == "D" or action == "U":
            put_raw(ds, key, vr, DUMMY_BYTES.get(vr, b"\0\0"))
        elif action == "C":
            self._clean(ds, key, tag, vr)

    def _sequence(self, ds: Dataset, key: Any, tag: int, action: str, path: tuple[str, ...]) -> None:
        seq = ds[key].value or Sequence()
        inner = path + (keyword(tag),)
        if action == "Z" or (action == "D" and not len(seq)):
            ds[key] = DataElement(key, "SQ", Sequence())
        elif action == "D" and seqs.holds_content_items(seq):
            kept = seqs.drop_free_items(self, seq, inner)
            if len(kept) or tag != _CONTENT_SEQUENCE:
                ds[key] = DataElement(key, "SQ", kept)
            else:
                del ds[key]  # Content Sequence is there only when an item has children
        elif action == "D":
            seqs.dummy_sequence(self, seq)
        elif action == "C" and seqs.holds_content_items(seq):
            seqs.clean_content_items(self, seq, inner)
        else:  # C, K, U, U*: keep the sequence, the profile works inside
            self._items(ds, key, path)

    def _clean(self, ds: Dataset, key: Any, tag: int, vr: str) -> None:
        if tag == _TIMEZONE:
            # an offset from UTC is kept as is when valid: shifting by days does not change it
            if not _TZ_RE.match(element_text(ds, tag).strip()):
                put_raw(ds, key, vr, b"+0000 ")
        elif vr in DATE_VRS:
            if self.compiled.modified_dates:
                text = element_text(ds, tag)
                if text:
                    ds[key] = DataElement(key, vr, shift_multi(text, vr, self.days))
            else:
                put_raw(ds, key, vr, DUMMY_BYTES[vr])
        elif vr in TEXT_VRS:
            if element_text(ds, tag):
                put_raw(ds, key, vr, DUMMY_BYTES[vr])
        # TM (days shift keeps the time of day), numbers, CS and binary data stay

    def remap(self, ds: Dataset, key: Any, tag: int) -> None:
        """Give every UID value of this element its new UID, unless it is well known."""
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
        new = [p if not p or is_kept_uid(tag, p) else self.uid_map.map(p.strip()) for p in parts]
        if new != parts:
            put_raw(ds, key, "UI", pad("\\".join(new).encode("ascii"), "UI"))

    # -- additions -------------------------------------------------------------
    def _meta_extras(self, meta: Dataset, ds: Dataset) -> None:
        if "RetainDeviceIdent" not in self.compiled.options:
            for tag in _META_DEVICE:
                if tag in meta._dict:
                    del meta[tag]
        if not self.keeps_private:
            for tag in _META_PRIVATE:
                if tag in meta._dict:
                    del meta[tag]
        sop = element_text(ds, 0x00080018)
        if sop:
            put_raw(meta, 0x00020003, "UI", pad(sop.encode("ascii"), "UI"))

    def _mark(self, ds: Dataset) -> None:
        """Patient Identity Removed, De-identification Method and its CID 7050 codes."""
        put_raw(ds, 0x00120062, "CS", b"YES ")
        previous = element_values(ds, 0x00120063)
        put_text(ds, 0x00120063, "LO", "\\".join(previous + [m for m in self.method if m not in previous]))
        encoding = ds.original_encoding
        if self.codes:  # nothing claimed (aria without options): no code sequence
            if 0x00120064 not in ds._dict and None not in encoding:
                implicit, little = bool(encoding[0]), bool(encoding[1])
                put_raw(ds, 0x00120064, "SQ", self._encoded_codes(implicit, little), implicit, little)
            else:
                self._codes_element(ds)
        put_raw(ds, 0x00280303, "CS", pad(self.temporal.encode("ascii"), "CS"))

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
