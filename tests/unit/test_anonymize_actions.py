"""Every attribute of the shipped profiles, top level and nested in a sequence: the right action.

Generated from the profile files themselves: for each rule, a dataset holding
that attribute (with a value of its VR) is anonymized, written to bytes, read
back with pydicom and the element is checked against what the action means.
Each rule is tried without options, with the profile's defaults and with
each option of its option columns.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dicomtools.core.anonymize.dates import shift_multi
from dicomtools.core.anonymize.engine import DUMMY_TEXT, Anonymizer
from dicomtools.core.anonymize.iod import choose, conform, iod_types, keyword
from dicomtools.core.anonymize.profile import Profile, Rule
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap

PROFILES = {name: load_profile(name) for name in ("basic", "aria")}
ORIGINAL_UID = "1.2.3.4.5.6.7"
NESTED_UID = "1.2.3.4.5.6.8"
PATIENT = "PAT-0001"
VALUES: dict[str, Any] = {
    "AE": "STATION01", "AS": "045Y", "AT": 0x00100010, "CS": "ORIGINAL", "DA": "20200102",
    "DS": "1.5", "DT": "20200102030405", "FL": 1.5, "FD": 1.5, "IS": "7", "LO": "Original Value",
    "LT": "Original text", "OB": b"\x01\x02", "OD": b"\x01" * 8, "OF": b"\x01\x02\x03\x04",
    "OL": b"\x01\x02\x03\x04", "OV": b"\x01" * 8, "OW": b"\x01\x02", "PN": "DOE^JOHN", "SH": "ORIG",
    "SL": 5, "SS": 5, "ST": "Original text", "SV": 5, "TM": "101112", "UC": "Original",
    "UI": ORIGINAL_UID, "UL": 5, "UN": b"ab", "UR": "http://example.org/x", "US": 3,
    "UT": "Original text", "UV": 5,
}
CONTAINER = 0x00081115  # Referenced Series Sequence: not in Table E.1-1, so walked and kept
CT = "1.2.840.10008.5.1.4.1.1.2"


def expected_action(cell: str, tag: int, nested: bool) -> str:
    """A combined cell resolves by the attribute's Type in the CT Image IOD at that place (E.3.1);
    X and Z give way to Z or D where the IOD needs the attribute."""
    if "/" not in cell and cell not in ("X", "Z") or tag >> 24 == 0x60:
        return cell  # an overlay group goes or stays whole (test_anonymize_iod.py)
    kw = keyword(tag)
    types = iod_types(CT, frozenset({kw}))
    assert types is not None
    attr_type = types.type_of(("ReferencedSeriesSequence",) if nested else (), kw)
    return conform(choose(cell, attr_type), attr_type)


def vr_of(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"


def sequence_value() -> Sequence:
    item = Dataset()
    item.ReferencedSOPInstanceUID = NESTED_UID
    item.PatientName = "DOE^JOHN"  # Z in every profile
    item.CodeValue = "CODE1"  # not listed: kept
    return Sequence([item])


@dataclass(frozen=True)
class Case:
    profile: str
    rule: Rule
    options: tuple[str, ...]
    nested: bool

    @property
    def id(self) -> str:
        where = "nested" if self.nested else "top"
        opts = "+".join(self.options) or "none"
        return f"{self.profile}-{self.rule.spec.text()}-{opts}-{where}"


def cases() -> list[Case]:
    out: list[Case] = []
    for name, profile in PROFILES.items():
        for rule in profile.rules:
            if rule.spec.kind in ("private", "creator"):
                continue  # private data has its own tests (a creator element is needed)
            if rule.spec.value >> 16 == 0x0002:
                continue  # file meta: tested with whole files
            option_sets = {(), tuple(profile.default_options)}
            option_sets |= {(o,) for o, _ in rule.options}
            for opts in sorted(option_sets):
                # nested: without options and with the defaults; each single option at top level
                both = opts in ((), tuple(profile.default_options)) and rule.spec.value >> 16 != 0
                for nested in (False, True) if both else (False,):
                    out.append(Case(name, rule, opts, nested))
    return out


CASES = cases()


def build(tag: int, vr: str) -> tuple[Dataset, DataElement]:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.3.9.9.9"
    ds.PatientID = PATIENT
    ds.PatientName = "DOE^JOHN"
    value = sequence_value() if vr == "SQ" else VALUES[vr]
    return ds, DataElement(tag, vr, value)


def run_case(profile: Profile, case: Case) -> tuple[Any, UidMap, str, str]:
    """Anonymize and round-trip; return (element or None, map, vr, action)."""
    tag = case.rule.spec.example()
    vr = vr_of(tag)
    ds, elem = build(tag, vr)
    if case.nested:
        item = Dataset()
        item.add(elem)
        ds.add(DataElement(CONTAINER, "SQ", Sequence([item])))
    else:
        ds.add(elem)
    uid_map = UidMap(salt=b"fixed salt for tests")
    compiled = profile.compile(case.options)
    Anonymizer(compiled, uid_map, "NEWID", "NEW^NAME").anonymize(ds)
    if tag >> 16 == 0:  # command group: never in a file, check in memory
        return ds.get(tag), uid_map, vr, expected_action(case.rule.effective(case.options), tag, case.nested)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    holder = back
    if case.nested:
        assert CONTAINER in back, "the unlisted container sequence must survive"
        holder = back[CONTAINER].value[0]
    return holder.get(tag), uid_map, vr, expected_action(case.rule.effective(case.options), tag, case.nested)


def check_sequence(elem: Any, action: str, uid_map: UidMap, retain_uids: bool) -> None:
    if action == "X":
        assert elem is None
        return
    assert elem is not None
    if action == "Z":
        assert len(elem.value) == 0
        return
    assert len(elem.value) == 1, f"{action}: the sequence and its item are kept"
    item = elem.value[0]
    expected_uid = NESTED_UID if retain_uids else uid_map.map(NESTED_UID)
    assert item.ReferencedSOPInstanceUID == expected_uid
    if action == "D":  # a dummy sequence: every text value inside is a dummy
        assert str(item.PatientName) == DUMMY_TEXT and item.CodeValue == DUMMY_TEXT
        return
    assert str(item.PatientName) == "", "the profile applies inside the sequence"
    assert item.CodeValue == "CODE1"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_action(case: Case) -> None:
    profile = PROFILES[case.profile]
    elem, uid_map, vr, action = run_case(profile, case)
    original = VALUES.get(vr)
    retain_uids = "RetainUIDs" in case.options
    if vr == "SQ":
        check_sequence(elem, action, uid_map, retain_uids)
        return
    tag = case.rule.spec.example()
    if tag in (0x00100010, 0x00100020) and not case.nested:
        assert str(elem.value) == {0x00100010: "NEW^NAME", 0x00100020: "NEWID"}[tag]
        return
    if action in ("X", "U*"):
        assert elem is None, f"{action}: element must be removed"
        return
    assert elem is not None, f"{action}: element must be present"
    value = elem.value
    if action == "Z":
        assert value in (None, "", b"", []) or elem.is_empty, f"Z: expected empty, got {value!r}"
    elif action == "K":
        assert _same(value, original), f"K: expected {original!r}, got {value!r}"
    elif vr == "UI":  # D, C, U on a UID: the consistent new UID
        assert str(value) == uid_map.map(ORIGINAL_UID)
    elif action in ("D", "U"):
        assert not elem.is_empty and not _same(value, original), f"{action}: expected a dummy, got {value!r}"
    elif action == "C":
        if vr in ("DA", "DT"):
            if "RetainLongModifDates" in case.options:
                assert str(value) == shift_multi(original, vr, uid_map.date_shift(PATIENT))
                assert str(value) != original
            else:
                assert str(value) != original
        elif tag == 0x00080201:  # Timezone Offset From UTC: a valid ±HHMM stays, anything else +0000
            assert str(value) == "+0000"
        elif vr in ("AE", "AS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"):
            assert str(value) in (DUMMY_TEXT, "000Y"), f"C on text: dummy expected, got {value!r}"
        else:
            assert _same(value, original), "C keeps times, numbers, codes and binary data"
    else:  # pragma: no cover - every action is handled above
        pytest.fail(f"unexpected action {action}")


def _same(value: Any, original: Any) -> bool:
    if isinstance(original, bytes):
        return bytes(value) == original
    if isinstance(original, float):
        return float(value) == original
    if isinstance(original, int) and not isinstance(value, str):
        return int(value) == original
    return str(value) == str(original)


def test_every_reference_row_has_cases() -> None:
    """The generated cases cover every non-private, non-meta rule of both profiles."""
    covered = {(c.profile, c.rule.spec) for c in CASES}
    for name, profile in PROFILES.items():
        for rule in profile.rules:
            if rule.spec.kind in ("private", "creator") or rule.spec.value >> 16 == 2:
                continue
            assert (name, rule.spec) in covered
    assert len(CASES) > 2000
    assert any(c.nested for c in CASES) and any(c.options for c in CASES)
