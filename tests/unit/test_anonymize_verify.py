"""The leak checker finds what it must (names, IDs, UIDs, private data) and not what it must not."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dicomtools.core.anonymize.verify import Identifiers, verify_files


def original() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    ds.SOPInstanceUID = "1.2.3.100"
    ds.PatientID = "MRN12345"
    ds.PatientName = "SMITHERS^WAYLON"
    ds.PatientBirthDate = "19650312"
    ds.InstitutionName = "SPRINGFIELD GENERAL"
    ds.AccessionNumber = "ACC777"
    return ds


def write(tmp_path: Path, name: str, ds: Dataset) -> str:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def clean_output() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    ds.SOPInstanceUID = "2.25.1234"
    ds.PatientID = "ANON1"
    ds.PatientName = "ANON^ONE"
    ds.PatientIdentityRemoved = "YES"
    ds.RTPlanLabel = "PROSTATE"
    return ds


def ids() -> Identifiers:
    i = Identifiers(ignore={"anon1", "anon^one"})
    i.add_dataset(original())
    return i


def test_clean_output_passes(tmp_path: Path) -> None:
    report = verify_files([write(tmp_path, "a.dcm", clean_output())], ids())
    assert report.ok and report.files_checked == 1 and not report.findings


def test_leaks_are_found_anywhere(tmp_path: Path) -> None:
    ds = clean_output()
    ds.StudyDescription = "CT for Waylon Smithers"  # name in another spelling
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.100"  # an original UID, nested
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"  # well known: fine
    ds.ReferencedRTPlanSequence = Sequence([item])
    ds.ImageComments = "born 19650312, MRN12345"
    ds.StationName = "SMITHERS-PC"  # a name word only: possible
    block = ds.private_block(0x3253, "Varian Medical Systems VISION 3253", create=True)
    block.add_new(0x00, "LO", "nothing")
    report = verify_files([write(tmp_path, "a.dcm", ds)], ids())
    got = {(f.keyword, f.category, f.level) for f in report.findings}
    assert ("StudyDescription", "name", "leak") in got
    assert ("ReferencedSOPInstanceUID", "uid", "leak") in got
    assert ("ImageComments", "birth_date", "leak") in got or ("ImageComments", "id", "leak") in got
    assert ("StationName", "name", "possible") in got
    assert any(f.category == "private" for f in report.findings)
    assert not report.ok
    assert "(0008,1111)" not in "".join(f.element for f in report.findings)
    nested = [f for f in report.findings if f.keyword == "ReferencedSOPInstanceUID"]
    assert nested[0].element == "(300C,0002)[0].(0008,1155)"


def test_retained_categories_are_not_leaks(tmp_path: Path) -> None:
    ds = clean_output()
    ds.InstitutionName = "SPRINGFIELD GENERAL"
    code = Dataset()
    code.CodeValue = "113112"  # Retain Institution Identity
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Retain Institution Identity Option"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    report = verify_files([write(tmp_path, "a.dcm", ds)], ids())
    assert report.ok, [f.line() for f in report.findings]


def test_without_originals_only_structure_is_checked(tmp_path: Path) -> None:
    ds = clean_output()
    del ds.PatientIdentityRemoved
    block = ds.private_block(0x0009, "ACME", create=True)
    block.add_new(0x01, "LO", "x")
    report = verify_files([write(tmp_path, "a.dcm", ds)], None)
    levels = sorted({f.level for f in report.findings})
    assert levels == ["private", "warning"]
    notes = tmp_path / "notes.txt"
    notes.write_text("not dicom\n")
    report = verify_files([str(notes)], None)
    assert report.files_checked == 0 and report.unreadable
