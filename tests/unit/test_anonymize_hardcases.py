"""Hard cases nobody's files cover: identifiers in SR content, annotations, private blocks, UIDs under the DICOM root.

Objects are built with pydicom (tests/unit/anon_objects.py), anonymized, written
and read back; then the whole file is searched for the original identifiers.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomtools.core.anonymize.engine import DUMMY_TEXT, Anonymizer
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.anonymize.wellknown import is_well_known_uid
from tests.unit import anon_objects as o

NEEDLES = ("Müller", "Jürgen", "PID4711X", "19610302", "Mueller")
ALL_OPTION_SETS = [
    [], ["CleanDesc", "RetainDeviceIdent"], ["CleanStructdCont"], ["CleanGraph"], ["CleanDesc", "CleanStructdCont", "CleanGraph"],
    ["RetainLongModifDates", "CleanStructdCont"], ["RetainLongFullDates", "CleanStructdCont", "CleanGraph"],
]


def anonymize(ds: Dataset, profile: str = "basic", options: list[str] | None = None, uid_map: UidMap | None = None) -> Dataset:
    Anonymizer(load_profile(profile).compile(options), uid_map or UidMap(), "ANON1", "ANON^ONE").anonymize(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def texts(ds: Dataset) -> list[str]:
    """Every value in the dataset as text, sequences and file meta included."""
    out: list[str] = []

    def walk(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item)
            elif elem.value is not None:
                out.append(str(elem.value))

    walk(ds.file_meta)
    walk(ds)
    return out


def leaks(ds: Dataset) -> list[str]:
    return [t for t in texts(ds) if any(n.lower() in t.lower() for n in NEEDLES)]


@pytest.mark.parametrize("profile", ["basic", "aria"])
@pytest.mark.parametrize("options", ALL_OPTION_SETS, ids=lambda x: "+".join(x) or "none")
def test_sr_and_presentation_state_keep_no_identifier(profile: str, options: list[str]) -> None:
    for build in (o.sr, o.gsps):
        out = anonymize(build(), profile, options)
        found = leaks(out)
        if "RetainLongFullDates" in options:  # the option keeps full dates by definition
            found = [t for t in found if t != o.BIRTH]
        assert found == [], build.__name__


def test_sr_without_clean_structured_content_drops_free_items_keeps_the_rest() -> None:
    out = anonymize(o.sr(), "basic", ["CleanDesc"])
    kinds = [item.ValueType for item in out.ContentSequence]
    assert kinds == ["CODE", "CONTAINER"], "TEXT, PNAME, DATE and UIDREF items go; coded items stay"
    assert "ContentSequence" not in out.ContentSequence[1], "the nested TEXT went, and its empty sequence"
    concept = out.ContentSequence[0].ConceptCodeSequence[0]
    assert concept.CodeValue == "X1" and concept.CodeMeaning == DUMMY_TEXT  # a local meaning is free text
    assert out.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning == "Finding"  # DCM: kept


def test_sr_with_clean_structured_content_cleans_each_item() -> None:
    uid_map = UidMap()
    out = anonymize(o.sr(), "basic", ["CleanStructdCont"], uid_map)
    by_type = {item.ValueType: item for item in out.ContentSequence}
    assert set(by_type) == {"TEXT", "PNAME", "DATE", "UIDREF", "CODE", "CONTAINER"}
    assert by_type["CONTAINER"].ContentSequence[0].TextValue == DUMMY_TEXT  # cleaned at any depth
    assert by_type["TEXT"].TextValue == DUMMY_TEXT
    assert str(by_type["PNAME"].PersonName) == DUMMY_TEXT
    assert by_type["DATE"].Date == "19000101"
    assert by_type["UIDREF"].UID == uid_map.map("1.2.3.4.1")
    assert by_type["CODE"].ConceptCodeSequence[0].CodeMeaning == DUMMY_TEXT


def test_sr_dates_shift_with_modified_dates() -> None:
    uid_map = UidMap()
    out = anonymize(o.sr(), "basic", ["CleanStructdCont", "RetainLongModifDates"], uid_map)
    date = next(i for i in out.ContentSequence if i.ValueType == "DATE").Date
    assert date not in (o.BIRTH, "19000101") and len(date) == 8


def test_presentation_state_text_is_replaced_positions_stay() -> None:
    for options in ([], ["CleanGraph"]):
        out = anonymize(o.gsps(), "basic", options)
        text = out.GraphicAnnotationSequence[0].TextObjectSequence[0]
        assert text.UnformattedTextValue == DUMMY_TEXT
        assert list(text.AnchorPoint) == [10.0, 10.0] and out.GraphicAnnotationSequence[0].GraphicLayer == "LAYER1"


def test_d_on_a_plain_sequence_is_a_dummy_of_the_same_shape() -> None:
    ds = o.sr()
    observer = Dataset()
    observer.VerifyingObserverName = o.NAME
    observer.VerifyingOrganization = "General Hospital"
    observer.VerificationDateTime = "20240116120000"
    observer.VerifyingObserverIdentificationCodeSequence = []
    ds.VerifyingObserverSequence = [observer]
    ds.VerificationFlag = "VERIFIED"
    out = anonymize(ds)
    item = out.VerifyingObserverSequence[0]
    assert str(item.VerifyingObserverName) == DUMMY_TEXT and item.VerifyingOrganization == DUMMY_TEXT
    assert item.VerificationDateTime != "20240116120000"


def test_uids_under_the_dicom_root_are_remapped_everywhere() -> None:
    """Monaco's 1.2.840.10008.5.1.4.1.1.481.3.<unix time>: not in the registry, so an instance UID."""
    assert not is_well_known_uid(o.MONACO_UID)
    assert is_well_known_uid("1.2.840.10008.5.1.4.1.1.481.3") and is_well_known_uid("1.2.840.10008.1.2.1")
    assert is_well_known_uid("1.2.840.10008.1.4.1.1")  # a well-known frame of reference
    uid_map = UidMap()
    out = anonymize(o.plan(), "aria", None, uid_map)
    assert out.SOPInstanceUID == uid_map.map(o.MONACO_UID)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    ref = out.ReferencedStructureSetSequence[0]
    assert ref.ReferencedSOPInstanceUID == uid_map.map(o.MONACO_UID[:-1] + "1")
    assert ref.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert not [t for t in texts(out) if "1.2.840.10008.5.1.4.1.1.481.3.17" in t]


def private_ct() -> Dataset:
    ds = o.ct_with_overlay()
    safe = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    safe.add_new(0x0C, "IS", "1000")  # B_value: listed as safe in Table E.3.10-1
    safe.add_new(0x10, "LO", "Mueller")  # not listed
    other = ds.private_block(0x0029, "ACME PRIVATE", create=True)
    other.add_new(0x10, "LO", o.NAME)
    ds.add_new(0x00331010, "LO", "PID4711X")  # a private element with no creator
    return ds


def test_retain_safe_private_keeps_only_the_standards_safe_list() -> None:
    out = anonymize(private_ct(), "basic", ["RetainSafePrivate"])
    private = {int(e.tag): e.value for e in out if e.tag.is_private}
    assert private == {0x00190010: "SIEMENS MR HEADER", 0x0019100C: "1000"}
    assert leaks(out) == []
    out = anonymize(private_ct(), "basic", [])
    assert not [e for e in out if e.tag.is_private]


def test_safe_private_list_is_block_relative() -> None:
    ds = o.ct_with_overlay()
    ds.add_new(0x00190012, "LO", "SIEMENS MR HEADER")  # the same creator in block 0x12
    ds.add_new(0x0019120C, "IS", "500")
    ds.add_new(0x0019120F, "LO", "Mueller")
    out = anonymize(ds, "basic", ["RetainSafePrivate"])
    assert out[0x0019120C].value == "500" and 0x0019120F not in out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # ISO 2022 IR 87: escape sequences in ASCII bytes
        ("chrX1.dcm", "Wang^XiaoDong=王^小東"),  # UTF-8
        ("chrGerm.dcm", "Äneas^Rüdiger"),  # Latin-1
        ("chrRuss.dcm", "Люкceмбypг"),  # ISO-IR 144 (Cyrillic)
    ],
)
def test_element_text_reads_a_person_name_whole_in_its_character_set(name: str, expected: str) -> None:
    """pydicom's charset files: a PN is one value with components and groups, never its letters."""
    from pydicom.data import get_charset_files

    from dicomtools.core.anonymize.valuetext import element_text

    ds = pydicom.dcmread(get_charset_files(name)[0])
    assert element_text(ds, 0x00100010) == expected
    out = anonymize(ds, "basic", [])
    assert str(out.PatientName) == "ANON^ONE"
    assert not [t for t in texts(out) if expected.split("^")[0] in t]
