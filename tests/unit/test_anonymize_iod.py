"""Outputs stay valid objects: combined actions follow the IOD (PS3.15 E.3.1), checked with dciodvfy.

The Types come from the standard's tables as highdicom ships them; dciodvfy
(dicom3tools) is the independent judge: no error the input did not have.
"""

from __future__ import annotations

import importlib.util
import io
import json
from importlib import resources
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomtools.core.anonymize.engine import Anonymizer
from dicomtools.core.anonymize.iod import FILE_NAME, choose, conform, iod_types
from dicomtools.core.anonymize.iod_build import build as build_type_table
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap
from tests.unit import anon_objects as o

BUILDERS = {"plan": o.plan, "sr": o.sr, "reg": o.reg, "ct_overlay": o.ct_with_overlay, "gsps": o.gsps}
OPTION_SETS = [[], ["CleanDesc", "RetainDeviceIdent"], ["CleanGraph", "CleanStructdCont", "RetainLongModifDates"],
               ["RetainUIDs", "RetainLongFullDates", "RetainPatientChars", "RetainInstitutionIdent"]]


def anonymize(ds: Dataset, profile: str = "basic", options: list[str] | None = None) -> Dataset:
    Anonymizer(load_profile(profile).compile(options), UidMap(), "ANON1", "ANON^ONE").anonymize(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("profile", ["basic", "aria"])
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda x: "+".join(x) or "none")
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_dciodvfy_finds_no_new_error(tmp_path: Path, kind: str, profile: str, options: list[str]) -> None:
    original = BUILDERS[kind]()
    before = tmp_path / "in.dcm"
    original.save_as(before, enforce_file_format=True)
    after = tmp_path / "out.dcm"
    anonymize(BUILDERS[kind](), profile, options).save_as(after, enforce_file_format=True)
    new = [e for e in o.dciodvfy_errors(after) if e not in o.dciodvfy_errors(before)]
    assert new == []


def test_dciodvfy_is_really_judging() -> None:
    """The judge sees a removed Type 1 attribute (so an empty list above means something)."""
    import tempfile

    ds = o.reg()
    del ds.ContentDate
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert any("ContentDate" in e for e in o.dciodvfy_errors(path))


def test_content_date_and_time_are_dummies_where_type_1() -> None:
    for build in (o.sr, o.reg):
        out = anonymize(build(), "basic", [])
        assert (out.ContentDate, out.ContentTime) == ("19000101", "000000"), build.__name__
    ct = anonymize(o.ct_with_overlay(), "basic", [])  # Type 2C in the CT image: emptied
    assert ct.ContentDate == "" and ct.ContentTime == ""


def test_type_2_in_a_sequence_is_emptied_not_removed() -> None:
    record = anonymize(o.record(), "basic", [])
    assert record.TreatmentMachineSequence[0].InstitutionName == ""  # X/Z/D, Type 2 there
    plan = anonymize(o.plan(), "basic", [])
    assert "InstitutionName" not in plan.BeamSequence[0]  # Type 3 in the Beam Sequence: removed
    assert plan.BeamSequence[0].TreatmentMachineName == ""  # X/Z, Type 2: emptied (no RetainDeviceIdent)
    sr = anonymize(o.sr(), "basic", [])
    request = sr.ReferencedRequestSequence[0]
    assert "ReferencedStudySequence" in request and len(request.ReferencedStudySequence) == 0
    assert request.RequestedProcedureID == ""  # X in the table, Type 2 there: emptied


def test_overlay_group_goes_or_stays_whole() -> None:
    gone = anonymize(o.ct_with_overlay(), "basic", ["CleanDesc"])
    assert not [e for e in gone if e.tag.group == 0x6000]
    kept = anonymize(o.ct_with_overlay(), "basic", ["CleanGraph"])
    group = {e.tag.element for e in kept if e.tag.group == 0x6000}
    assert {0x0010, 0x0011, 0x0040, 0x0050, 0x0100, 0x0102, 0x3000} <= group
    assert kept[0x60003000].value == b"\xff\x00" * 4
    assert "Mueller" not in str(kept[0x60004000].value) and "Mueller" not in str(kept[0x60000022].value)


@pytest.mark.parametrize(("value", "expected"), [("+0100", "+0100"), ("-0530", "-0530"), ("ORIGINAL", "+0000")])
def test_timezone_offset_stays_a_valid_offset_with_modified_dates(value: str, expected: str) -> None:
    ds = o.ct_with_overlay()
    ds.TimezoneOffsetFromUTC = value
    out = anonymize(ds, "basic", ["RetainLongModifDates"])
    assert out.TimezoneOffsetFromUTC == expected
    assert "TimezoneOffsetFromUTC" not in anonymize(o.ct_with_overlay(), "basic", [])


def test_choose_and_conform_follow_e31() -> None:
    assert [choose("Z/D", t) for t in ("1", "1C", "2", "3", None)] == ["D", "D", "Z", "Z", "Z"]
    assert [choose("X/Z", t) for t in ("1", "2", "2C", "3")] == ["Z", "Z", "Z", "X"]
    assert [choose("X/D", t) for t in ("1", "2", "3")] == ["D", "D", "X"]
    assert [choose("X/Z/D", t) for t in ("1", "2", "3")] == ["D", "Z", "X"]
    assert choose("X/Z/U*", "1") == "U*"
    assert [conform("X", t) for t in ("1", "2", "3", None)] == ["D", "Z", "X", "X"]
    assert [conform("Z", t) for t in ("1", "2")] == ["D", "Z"]


def test_types_come_from_the_standards_tables() -> None:
    keywords = frozenset({"ContentDate", "InstitutionName", "ReferencedStudySequence", "TreatmentMachineName"})
    sr = iod_types(o.SR_CLASS, keywords)
    assert sr is not None and sr.type_of((), "ContentDate") == "1"
    assert sr.type_of(("ReferencedRequestSequence",), "ReferencedStudySequence") == "2"
    record = iod_types(o.RECORD_CLASS, keywords)
    assert record is not None and record.type_of(("TreatmentMachineSequence",), "InstitutionName") == "2"
    plan = iod_types(o.PLAN_CLASS, keywords)
    assert plan is not None and plan.type_of(("BeamSequence",), "TreatmentMachineName") == "2"
    assert iod_types("1.2.246.352.70.1.70", keywords) is None  # a private class: first action, as before


def test_packaged_type_table_is_what_the_pinned_highdicom_gives() -> None:
    """The compact table shipped as package data regenerates byte for byte: it cannot drift."""
    packaged = (resources.files("dicomtools.profiles") / "standard" / FILE_NAME).read_bytes()
    assert build_type_table().encode("utf-8") == packaged


@pytest.mark.parametrize("sop_class", [o.PLAN_CLASS, o.CT_CLASS, o.SR_CLASS, o.RECORD_CLASS, o.GSPS_CLASS])
def test_compact_table_gives_highdicoms_types(sop_class: str) -> None:
    """Every Type 1/1C/2/2C place of the IOD in highdicom's own JSON comes back from the compact table."""
    root = Path(importlib.util.find_spec("highdicom").origin or "").parent / "_standard"  # type: ignore[union-attr]
    iod = json.loads((root / "sop_class_iod_map.json").read_text(encoding="utf-8"))[sop_class]
    modules = [m["key"] for m in json.loads((root / "iod_module_map.json").read_text(encoding="utf-8"))[iod]]
    table = json.loads((root / "module_attribute_map.json").read_text(encoding="utf-8"))
    rank = {"1": 0, "1C": 1, "2": 2, "2C": 3}
    want: dict[tuple[tuple[str, ...], str], str] = {}
    for module in modules:
        for attr in table.get(module, []):
            key, typ = (tuple(attr["path"]), attr["keyword"]), attr["type"]
            if typ in rank and (key not in want or rank[typ] < rank[want[key]]):
                want[key] = typ
    got = iod_types(sop_class, frozenset(k for _, k in want))
    assert got is not None and got.iod == iod
    assert got.types == want and len(want) > 20


PYDICOM_FILES = ["rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "CT_small.dcm", "MR_small.dcm", "test-SR.dcm",
                 "reportsi.dcm", "examples_overlay.dcm", "waveform_ecg.dcm", "JPEG2000.dcm", "liver_1frame.dcm"]


@pytest.mark.parametrize("options", [None, [], ["CleanGraph", "CleanStructdCont", "RetainLongModifDates"]],
                         ids=["defaults", "none", "clean-all"])
@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pydicom_test_files_gain_no_dciodvfy_error(tmp_path: Path, name: str, options: list[str] | None) -> None:
    """Files nobody here wrote (pydicom's test data), judged by dciodvfy before and after."""
    from pydicom.data import get_testdata_file

    source = get_testdata_file(name)
    assert source is not None, name
    after = tmp_path / "out.dcm"
    anonymize(pydicom.dcmread(source, force=True), "basic", options).save_as(after, enforce_file_format=True)
    new = [e for e in o.dciodvfy_errors(after) if e not in o.dciodvfy_errors(Path(source))]
    assert new == []
