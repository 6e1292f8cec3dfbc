"""Tag expressions: parsing every form, exact error messages, matching on real datasets."""

from __future__ import annotations

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomtools.core.search.expr import (
    SPECIFIC_CHARACTER_SET,
    ExprError,
    describe,
    matches_all,
    needed_top_level_tags,
    parse,
    suggest,
)

PATIENT_ID = 0x00100020
BEAM_SEQ, MACHINE = 0x300A00B0, 0x300A00B2


def bundled(name: str) -> str:
    """Path of one of pydicom's bundled test files."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["(0010,0020)", "0010,0020", "00100020", "(0010,0020)", "PatientID", " PatientID ", "patientid"],
)
def test_every_tag_form_names_the_same_tag(text: str) -> None:
    e = parse(text)
    assert [s.tag for s in e.path] == [PATIENT_ID]
    assert e.op == "present" and e.value is None


def test_hex_is_case_insensitive_and_keeps_the_written_path() -> None:
    e = parse("(300a,00B0)/(300A,00b2)=?")
    assert [s.tag for s in e.path] == [BEAM_SEQ, MACHINE]
    assert e.path_text == "(300a,00B0)/(300A,00b2)"
    assert [s.text for s in e.path] == ["(300a,00B0)", "(300A,00b2)"]
    assert e.path[1].keyword == "TreatmentMachineName"


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("(0010,0020)=Phantom-1", "eq", "Phantom-1"),
        ("(0008,0060)=?", "show", None),
        ("(0008,0060) = ?", "show", None),
        ("(300A,00B0)/(300A,00B2)=", "eq", ""),
        ("PatientName=Doe^*", "eq", "Doe^*"),
        ("PatientName=D?e", "eq", "D?e"),
        ("Modality!=CT", "ne", "CT"),
        ("PatientName~^Do+e$", "regex", "^Do+e$"),
        ("StudyDate<20240101", "lt", "20240101"),
        ("StudyDate<=2024-01-01", "le", "2024-01-01"),
        ("SliceThickness>2.5", "gt", "2.5"),
        ("SeriesNumber>=-3", "ge", "-3"),
        ("PatientID", "present", None),
        ("PatientID=a=b<c", "eq", "a=b<c"),  # the value may hold operator characters
    ],
)
def test_operators(text: str, op: str, value: str | None) -> None:
    e = parse(text)
    assert (e.op, e.value) == (op, value)
    assert e.source == text


def test_private_tag_by_number_and_sequence_of_any_depth() -> None:
    assert parse("(0029,1010)=x").path[0].tag == 0x00291010
    assert parse("(0029,1010)").path[0].is_private
    deep = parse("BeamSequence/ControlPointSequence/BeamLimitingDevicePositionSequence/LeafJawPositions")
    assert [s.keyword for s in deep.path][-1] == "LeafJawPositions"
    assert len(deep.path) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(0010,002)=x", "tag needs 4+4 hex digits"),
        ("0010,00G0", "tag needs 4+4 hex digits"),
        ("(300A,00B0)/(300A,00B)=?", "tag needs 4+4 hex digits (at column 13)"),
        ("(0010,0020", "unbalanced parentheses around tag"),
        ("", "empty expression; expected a tag like (0010,0020) or PatientID"),
        ("=CT", "missing tag before '='"),
        ("PatientIDD=3", "unknown keyword 'PatientIDD' (did you mean PatientID?)"),
        ("PatientID/Modality=x", "PatientID (0010,0020) is not a sequence, so no '/' after it"),
        ("(300A,00B0)//(300A,00B2)", "empty step in tag path (use one '/' between tags) (at column 13)"),
        ("PatientID!CT", "'!' must be followed by '=' (at column 10)"),
        ("StudyDate<", "'<' needs a value (at column 11)"),
        ("StudyDate>=last week", "'>=' needs a number or a date/time like 20240101, got 'last week' (at column 12)"),
        ("PatientName~(a", "bad regular expression: missing ), unterminated subpattern (at column 13)"),
        ("Patient Name=x", "not a tag or keyword: 'Patient Name'"),
    ],
)
def test_error_messages_are_one_line_and_exact(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        parse(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_error_position_points_at_the_problem() -> None:
    with pytest.raises(ExprError) as info:
        parse("(300A,00B0)/(300A,00B)=?")
    assert info.value.position == 12
    assert info.value.message == "tag needs 4+4 hex digits"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_parse_arbitrary_text_returns_or_raises_expr_error(text: str) -> None:
    try:
        e = parse(text)
    except ExprError as exc:
        assert str(exc)
    else:
        assert e.path and e.op in {"present", "show", "eq", "ne", "regex", "lt", "le", "gt", "ge"}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="()0123456789abcdefABCDEFG,/=!~<>?* ^$.", max_size=30))
def test_parse_tag_like_text_returns_or_raises_expr_error(text: str) -> None:
    try:
        parse(text)
    except ExprError:
        pass


def test_needed_top_level_tags_adds_private_creator() -> None:
    exprs = [parse("(300A,00B0)/(300A,00B2)=?"), parse("PatientID=x"), parse("(0029,1010)=y")]
    assert needed_top_level_tags(exprs) == [PATIENT_ID, 0x00290010, 0x00291010, BEAM_SEQ]
    assert SPECIFIC_CHARACTER_SET not in needed_top_level_tags(exprs)


def test_suggest_prefix_substring_and_hex() -> None:
    assert suggest("TreatmentMach")[0] == "TreatmentMachineName"
    assert "PatientID" in suggest("patienti")
    assert "TreatmentMachineName" in suggest("MachineName")  # substring
    assert suggest("(300A,00B2")[0] == "TreatmentMachineName"
    assert len(suggest("", limit=5)) == 5


def test_describe() -> None:
    assert describe(parse("(0010,0020)=X")) == "PatientID = X"
    assert describe(parse("(300A,00B0)/(300A,00B2)=?")) == "BeamSequence/TreatmentMachineName = ?"


# --- matching ----------------------------------------------------------------


@pytest.fixture(scope="module")
def plan() -> Dataset:
    return pydicom.dcmread(bundled("rtplan.dcm"))


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return pydicom.dcmread(bundled("CT_small.dcm"), stop_before_pixels=True)


def values(text: str, ds: Dataset) -> list[str] | None:
    m = parse(text).evaluate(ds)
    return None if m is None else m.values


def test_seed_examples_on_bundled_plan(plan: Dataset) -> None:
    assert values("(0010,0020)=id00001", plan) == ["id00001"]
    assert values("(0010,0020)=Phantom-1", plan) is None
    assert values("(0008,0060)=?", plan) == ["RTPLAN"]
    assert values("(300A,00B0)/(300A,00B2)=?", plan) == ["unit001"]
    assert values("(300A,00B2)=?", plan) is None  # no '/' means top level only


def test_file_meta_elements_are_top_level(plan: Dataset) -> None:
    assert values("TransferSyntaxUID=?", plan) == ["1.2.840.10008.1.2"]
    assert values("(0002,0002)=1.2.840.10008.5.1.4.1.1.481.5", plan) == ["1.2.840.10008.5.1.4.1.1.481.5"]


def test_equality_is_case_sensitive(plan: Dataset) -> None:
    assert values("Modality=RTPLAN", plan) == ["RTPLAN"]
    assert values("Modality=rtplan", plan) is None


def test_wildcards(plan: Dataset) -> None:
    assert values("PatientName=Last^*", plan) == ["Last^First^mid^pre"]
    assert values("RTPlanLabel=Pl?n1", plan) == ["Plan1"]
    assert values("RTPlanLabel=Pl?n", plan) is None
    assert values("RTPlanLabel=*", plan) == ["Plan1"]
    assert values("PatientID=id.*", plan) is None  # regex characters are literal in '='


def test_regex_and_not_equal(plan: Dataset) -> None:
    assert values("PatientName~First", plan) == ["Last^First^mid^pre"]
    assert values("PatientName~^first", plan) is None
    assert values("ApprovalStatus!=APPROVED", plan) == ["UNAPPROVED"]
    assert values("ApprovalStatus!=UNAPPROVED", plan) is None
    assert values("ApprovalStatus!=UNAPP*", plan) is None  # wildcards apply to != too
    assert values("ApprovalStatus!=APP*", plan) == ["UNAPPROVED"]


def test_numeric_comparisons_inside_sequences(plan: Dataset) -> None:
    assert values("FractionGroupSequence/NumberOfFractionsPlanned>=30", plan) == ["30"]
    assert values("FractionGroupSequence/NumberOfFractionsPlanned>30", plan) is None
    assert values("FractionGroupSequence/ReferencedBeamSequence/BeamMeterset>116", plan) == [
        "116.003669700000"
    ]
    # DS in exponent form keeps its DICOM string; any item that holds makes the expression hold
    coeff = "BeamSequence/ControlPointSequence/ReferencedDoseReferenceSequence/CumulativeDoseReferenceCoefficient"
    assert values(coeff + ">0.5", plan) == ["9.9902680e-1", "1.00000000000000"]
    assert values(coeff + "<0", plan) is None


def test_date_and_time_comparisons(plan: Dataset, ct: Dataset) -> None:
    assert values("StudyDate<20030717", plan) == ["20030716"]
    assert values("StudyDate>=2003-07-17", plan) is None
    assert values("StudyDate>=2003", plan) == ["20030716"]
    assert values("StudyTime>15:00", plan) == ["153557"]
    assert values("StudyTime<1530", plan) is None
    assert values("StudyDate>=20040101", ct) == ["20040119"]


def test_multi_valued_elements_match_any_value(ct: Dataset) -> None:
    assert values("ImageType=?", ct) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert values("ImageType=PRIMARY", ct) == ["PRIMARY"]
    assert values("ImageType=SECONDARY", ct) is None
    assert values("ImagePositionPatient<-100", ct) == ["-158.135803", "-179.035797"]


def test_empty_element_and_present(plan: Dataset) -> None:
    # present-but-empty (DS None in a control point, SH '' at top level)
    assert values("BeamSequence/ControlPointSequence/TableTopVerticalPosition=", plan) == [""]
    assert values("BeamSequence/ControlPointSequence/TableTopVerticalPosition=?", plan) == [""]
    assert values("AccessionNumber=", plan) == [""]
    assert values("AccessionNumber!=", plan) is None
    assert values("PatientID=", plan) is None
    assert values("PatientID!=", plan) == ["id00001"]
    assert values("AccessionNumber", plan) == [""]
    assert values("PixelSpacing", plan) is None
    assert values("BeamSequence", plan) == ["<1 item>"]


def _plan_with_beams(machines: list[str | None]) -> Dataset:
    ds = Dataset()
    ds.PatientID = "P1"
    ds.Modality = "RTPLAN"
    beams = []
    for i, name in enumerate(machines, 1):
        b = Dataset()
        b.BeamNumber = i
        if name is not None:
            b.TreatmentMachineName = name
        beams.append(b)
    ds.BeamSequence = Sequence(beams)
    return ds


def test_machine_name_removed_from_one_beam() -> None:
    ds = _plan_with_beams(["TrueBeam1", "", None, "TrueBeam1"])
    assert values("(300A,00B0)/(300A,00B2)=", ds) == [""]
    assert values("(300A,00B0)/(300A,00B2)=?", ds) == ["TrueBeam1", ""]
    assert values("(300A,00B0)/(300A,00B2)=TrueBeam1", ds) == ["TrueBeam1"]
    assert values("(300A,00B0)/(300A,00B2)!=TrueBeam1", ds) == [""]
    none_named = _plan_with_beams([None])
    assert values("(300A,00B0)/(300A,00B2)=", none_named) is None
    assert values("(300A,00B0)/(300A,00B2)", none_named) is None


def test_insignificant_spaces_are_ignored() -> None:
    ds = Dataset()
    ds.add_new(PATIENT_ID, "LO", "  Phantom-1  ")  # LO: leading and trailing spaces insignificant
    ds.add_new(0x00081030, "LO", "Head")
    ds.add_new(0x00204000, "LT", "  note")  # LT: leading spaces are significant
    assert values("PatientID=Phantom-1", ds) == ["Phantom-1"]
    assert values("ImageComments=note", ds) is None
    assert values("ImageComments=*note", ds) == ["  note"]


def test_private_tags_and_bytes_values() -> None:
    ds = Dataset()
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", "secret")
    block.add_new(0x11, "OB", b"\x01\x02\xff")
    block.add_new(0x12, "UN", b"TEXT\\MORE ")
    block.add_new(0x13, "OB", bytes(range(200)))
    assert values("(0029,1010)=secret", ds) == ["secret"]
    assert values("(0029,1011)=?", ds) == ["0102ff"]
    assert values("(0029,1012)=MORE", ds) == ["MORE"]
    assert values("(0029,1013)=?", ds) == ["<200 bytes>"]
    assert values("(0029,0010)=ACME*", ds) == ["ACME 1.0"]


def test_non_ascii_person_names() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "山田^太郎"
    assert values("PatientName=山田*", ds) == ["山田^太郎"]
    assert values("PatientName~太郎$", ds) == ["山田^太郎"]


def test_matches_all_is_an_and_keyed_by_written_path(plan: Dataset) -> None:
    exprs = [parse("(0010,0020)=id00001"), parse("(300A,00B0)/(300A,00B2)=?"), parse(" StudyDate>2003 ")]
    assert matches_all(exprs, plan) == {
        "(0010,0020)": ["id00001"],
        "(300A,00B0)/(300A,00B2)": ["unit001"],
        "StudyDate": ["20030716"],
    }
    assert matches_all([*exprs, parse("Modality=CT")], plan) is None
    same = [parse("StudyDate>=20030101"), parse("StudyDate<20040101")]
    assert matches_all(same, plan) == {"StudyDate": ["20030716"]}


def test_matching_works_on_every_bundled_rt_file() -> None:
    for name, modality in [("rtdose.dcm", "RTDOSE"), ("rtstruct.dcm", "RTSTRUCT")]:
        ds = pydicom.dcmread(bundled(name), stop_before_pixels=True, force=True)
        assert values("Modality=?", ds) == [modality]
    struct = pydicom.dcmread(bundled("rtstruct.dcm"), force=True)
    rois = values("StructureSetROISequence/ROIName=?", struct)
    assert rois and len(rois) >= 2
