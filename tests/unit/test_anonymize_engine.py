"""The engine on whole datasets: UIDs, private data, file meta, patients, dates, markers, encodings."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtools.core.anonymize.dates import shift_da, shift_dt
from dicomtools.core.anonymize.engine import Anonymizer
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap

RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
CT = "1.2.840.10008.5.1.4.1.1.2"
HALCYON = "1.2.246.352.70.1.70"
VARIAN = "Varian Medical Systems VISION 3253"


def plan(sop: str = "1.2.3.100", patient: str = "PAT1", struct: str = "1.2.3.200") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(RT_PLAN)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "ARIA_STATION"
    ds.SOPClassUID = RT_PLAN
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = "1.2.3.1"
    ds.SeriesInstanceUID = "1.2.3.2"
    ds.FrameOfReferenceUID = "1.2.3.3"
    ds.PatientID = patient
    ds.PatientName = "DOE^JOHN"
    ds.PatientBirthDate = "19650312"
    ds.StudyDate = "20240115"
    ds.RTPlanDate = "20240116"
    ds.RTPlanLabel = "PROSTATE"
    ds.InstitutionName = "GENERAL HOSPITAL"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ref.ReferencedSOPInstanceUID = struct
    ds.ReferencedStructureSetSequence = Sequence([ref])
    beam = Dataset()
    beam.TreatmentMachineName = "TrueBeam1"
    beam.InstitutionName = "GENERAL HOSPITAL"
    ds.BeamSequence = Sequence([beam])
    code = Dataset()
    code.CodeValue = "T-9200B"
    code.CodingSchemeDesignator = "SRT"
    code.CodingSchemeUID = "2.16.840.1.113883.6.96"
    ds.AnatomicRegionSequence = Sequence([code])
    block = ds.private_block(0x3253, VARIAN, create=True)
    block.add_new(0x00, "LO", "DOE^JOHN")
    return ds


def engine(profile: str = "aria", options: list[str] | None = None, uid_map: UidMap | None = None) -> Anonymizer:
    return Anonymizer(load_profile(profile).compile(options), uid_map or UidMap(), "ANON1", "ANON^ONE")


def roundtrip(ds: Dataset) -> Dataset:
    """Write as-is (no enforce_file_format, which would fix the file meta for us) and read back."""
    buf = io.BytesIO()
    ds.preamble = b"\0" * 128
    ds.save_as(buf)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def test_references_survive_with_consistent_new_uids() -> None:
    uid_map = UidMap()
    eng = engine(uid_map=uid_map)
    p = plan()
    struct = Dataset()
    struct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    struct.SOPInstanceUID = "1.2.3.200"
    struct.PatientID = "PAT1"
    struct.StudyInstanceUID = "1.2.3.1"
    struct.file_meta = FileMetaDataset()
    struct.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    eng.anonymize(p)
    eng.anonymize(struct)
    p, struct = roundtrip(p), roundtrip(struct)
    assert p.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == struct.SOPInstanceUID
    assert struct.SOPInstanceUID == uid_map.map("1.2.3.200") != "1.2.3.200"
    assert p.StudyInstanceUID == struct.StudyInstanceUID
    assert p.SOPInstanceUID.startswith("2.25.") and p.file_meta.MediaStorageSOPInstanceUID == p.SOPInstanceUID
    assert p.FrameOfReferenceUID == uid_map.map("1.2.3.3")


def test_well_known_uids_are_never_remapped() -> None:
    p = plan()
    p.SOPClassUID = HALCYON  # a private SOP class: still a class, not an instance
    p.file_meta.MediaStorageSOPClassUID = UID(HALCYON)
    p.FrameOfReferenceUID = "1.2.840.10008.1.4.1.1"  # Talairach: a well-known frame of the registry
    engine().anonymize(p)
    p = roundtrip(p)
    assert p.SOPClassUID == HALCYON and p.file_meta.MediaStorageSOPClassUID == HALCYON
    assert p.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert p.ReferencedStructureSetSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert p.FrameOfReferenceUID == "1.2.840.10008.1.4.1.1"
    assert p.AnatomicRegionSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"


def test_unlisted_uid_elements_are_remapped_unless_retain_uids() -> None:
    p = plan()
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.300"
    item.ReferencedFrameOfReferenceUID = "1.2.3.3"
    p.ReferencedRTPlanSequence = Sequence([item])
    p.add_new(0x00204000, "LT", "see 1.2.3.300")  # Image Comments: cleaned by Basic + CleanDesc
    p.IrradiationEventUID = "1.2.3.400"
    uid_map = UidMap()
    engine(uid_map=uid_map).anonymize(p)
    assert p.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == uid_map.map("1.2.3.300")
    assert p.ReferencedRTPlanSequence[0].ReferencedFrameOfReferenceUID == uid_map.map("1.2.3.3")
    kept = plan()
    kept.IrradiationEventUID = "1.2.3.400"
    engine(options=["RetainUIDs"]).anonymize(kept)
    assert kept.SOPInstanceUID == "1.2.3.100" and kept.IrradiationEventUID == "1.2.3.400"


def test_patient_identity_and_markers() -> None:
    p = plan()
    engine("basic", ["CleanDesc", "RetainDeviceIdent"]).anonymize(p)
    p = roundtrip(p)
    assert (p.PatientID, str(p.PatientName)) == ("ANON1", "ANON^ONE")
    assert p.PatientBirthDate == "" and p.StudyDate == ""
    assert p.PatientIdentityRemoved == "YES"
    assert "dicomtools basic profile v2" in p.DeidentificationMethod
    codes = [i.CodeValue for i in p.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113109", "113105"]
    assert all(i.CodingSchemeDesignator == "DCM" for i in p.DeidentificationMethodCodeSequence)
    assert p.LongitudinalTemporalInformationModified == "REMOVED"
    assert "InstitutionName" not in p and "InstitutionName" not in p.BeamSequence[0]
    assert p.BeamSequence[0].TreatmentMachineName == "TrueBeam1"  # RetainDeviceIdent
    assert p.RTPlanLabel == "ANONYMIZED"  # Basic cleans descriptors
    assert str(p.ReferringPhysicianName) == ""
    assert "SourceApplicationEntityTitle" in p.file_meta  # device identity retained


def test_aria_keeps_descriptors_and_claims_no_basic_code() -> None:
    p = plan()
    engine("aria").anonymize(p)
    p = roundtrip(p)
    assert p.RTPlanLabel == "PROSTATE"
    codes = [i.CodeValue for i in p.DeidentificationMethodCodeSequence]
    assert codes == ["113109"]  # Retain Device Identity; not 113100, not Clean Descriptors


def test_basic_without_options_removes_device_identity() -> None:
    p = plan()
    engine("basic", []).anonymize(p)
    p = roundtrip(p)
    assert p.BeamSequence[0].TreatmentMachineName == ""  # X/Z: Type 2 in the Beam Sequence
    assert p.RTPlanDate == "19000101"  # X/D: Type 2 in RT General Plan, a dummy keeps it valid
    assert "RTPlanLabel" in p and p.RTPlanLabel != "PROSTATE"
    assert "SourceApplicationEntityTitle" not in p.file_meta
    assert "DeidentificationMethodCodeSequence" in p


def test_private_elements_removed_with_their_creator() -> None:
    p = plan()
    engine().anonymize(p)
    p = roundtrip(p)
    assert not [e for e in p if e.tag.is_private]


def test_retain_safe_private_keeps_only_listed_elements() -> None:
    ds = plan()
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")  # B_value: in the safe list
    siemens.add_new(0x0B, "LO", "DOE^JOHN")  # not listed
    engine(options=["RetainSafePrivate"]).anonymize(ds)
    ds = roundtrip(ds)
    private = {int(e.tag): e.value for e in ds if e.tag.is_private}
    assert private == {0x00190010: "SIEMENS MR HEADER", 0x0019100C: "1000"}
    plain = plan()
    siemens = plain.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")
    engine().anonymize(plain)
    assert not [e for e in plain if e.tag.is_private]


def test_modified_dates_shift_consistently_per_patient() -> None:
    uid_map = UidMap()
    eng = engine("basic", ["RetainLongModifDates"], uid_map)
    a, b, other = plan("1.2.3.101"), plan("1.2.3.102"), plan("1.2.3.103", patient="PAT2")
    for ds in (a, b, other):
        eng.anonymize(ds)
    shift = uid_map.date_shift("PAT1")
    assert -3650 <= shift <= -365
    assert a.StudyDate == b.StudyDate == shift_da("20240115", shift) != "20240115"
    assert a.RTPlanDate == shift_da("20240116", shift)
    assert other.StudyDate == shift_da("20240115", uid_map.date_shift("PAT2"))
    assert a.PatientBirthDate == ""  # never kept, not even shifted
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"
    full = plan()
    engine("basic", ["RetainLongFullDates"]).anonymize(full)
    assert full.StudyDate == "20240115" and full.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_several_patients_stay_apart() -> None:
    uid_map = UidMap()
    eng = engine(uid_map=uid_map)
    a, b, a2 = plan("1.2.3.1", "PAT1"), plan("1.2.3.2", "PAT2"), plan("1.2.3.3", "PAT1")
    for ds in (a, b, a2):
        eng.anonymize(ds)
    assert (a.PatientID, b.PatientID, a2.PatientID) == ("ANON1", "ANON1-2", "ANON1")
    assert str(b.PatientName) == "ANON^ONE2"


def test_implicit_vr_file_round_trips() -> None:
    p = plan()
    p.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = io.BytesIO()
    p.save_as(buf, enforce_file_format=True)
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    engine().anonymize(ds)
    back = roundtrip(ds)
    assert back.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert back.PatientIdentityRemoved == "YES"
    assert back.DeidentificationMethodCodeSequence[0].CodeValue == "113109"
    assert back.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID.startswith("2.25.")
    assert not [e for e in back if e.tag.is_private]


def test_existing_deidentification_is_extended_not_replaced() -> None:
    p = plan()
    p.DeidentificationMethod = "earlier tool"
    engine("basic").anonymize(p)
    p = roundtrip(p)
    assert p.DeidentificationMethod[0] == "earlier tool"
    assert "dicomtools basic profile v2" in p.DeidentificationMethod


def test_a_new_run_gives_new_uids_a_saved_map_the_same() -> None:
    first, second = UidMap(), UidMap()
    a, b = plan(), plan()
    engine(uid_map=first).anonymize(a)
    engine(uid_map=second).anonymize(b)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    again = UidMap.from_csv(first.to_csv())
    c = plan()
    engine(uid_map=again).anonymize(c)
    assert c.SOPInstanceUID == a.SOPInstanceUID


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240115", -10, "20240105"),
        ("20240301", -1, "20240229"),
        ("2024", -365, "2023"),
        ("garbage", -1, "19000101"),
        ("", -5, ""),
    ],
)
def test_shift_da(value: str, days: int, expected: str) -> None:
    assert shift_da(value, days) == expected


def test_shift_dt_keeps_time_and_offset() -> None:
    assert shift_dt("20240115123000.5+0100", -15) == "20231231123000.5+0100"
    assert shift_dt("20240115", 1) == "20240116"
