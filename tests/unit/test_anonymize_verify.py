"""The leak checker finds what it must (names, IDs, UIDs, private data) and not what it must not."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dicomtools.core.anonymize.filemeta import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
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


# -- issue 11: a verify a person can act on -----------------------------------------------------

MONACO_UID = "1.2.840.10008.5.1.4.1.1.481.3.1700000000"
ORIGINAL_IMPL_UID = "1.2.999.77.1"


def hard_original() -> Dataset:
    """An original whose identifiers are spread over three character sets."""
    ds = original()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "PID4711X"
    return ds


def japanese_original() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    ds.SOPInstanceUID = "1.2.3.200"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.PatientID = "JP0815"
    return ds


def write_with_meta(tmp_path: Path, rel: str, ds: Dataset, *, preamble: bytes | None = None,
                    impl_uid: str = IMPLEMENTATION_CLASS_UID, version: str = IMPLEMENTATION_VERSION_NAME) -> str:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = impl_uid
    meta.ImplementationVersionName = version
    ds.file_meta = meta
    ds.preamble = preamble or b"\0" * 128
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def hard_ids(tmp_path: Path) -> Identifiers:
    """Needles read back from files on disk, as the CLI does (charsets decoded by pydicom on read)."""
    import pydicom

    from dicomtools.core.anonymize.verify import collect_identifiers

    src = tmp_path / "orig"
    first = hard_original()
    write_with_meta(src, "a.dcm", first, impl_uid=ORIGINAL_IMPL_UID, version="HOSPX_PACS")
    cyr = Dataset()
    cyr.SpecificCharacterSet = "ISO_IR 144"
    cyr.SOPClassUID, cyr.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.300"
    cyr.PatientID = "PID4711X"
    cyr.ReferringPhysicianName = "Иванов^Пётр"
    write_with_meta(src, "b.dcm", cyr, impl_uid="1.2.276.0.7230010.3.0.3.6.4", version="OFFIS_DCMTK_364")
    write_with_meta(src, "c.dcm", japanese_original(), impl_uid="1.2.392.200036", version="JP_PACS")
    assert "Иванов" in str(pydicom.dcmread(src / "b.dcm").ReferringPhysicianName)
    return collect_identifiers(sorted(str(p) for p in src.iterdir()), ignore={"ANON1", "ANON^ONE"})


def test_verify_names_each_planted_leak(tmp_path: Path) -> None:
    ids = hard_ids(tmp_path)
    out = tmp_path / "out"
    planted: dict[str, tuple[str, str]] = {}  # file -> (element, category) verify must name

    def plant(rel: str, ds: Dataset, element: str, category: str, **kw: object) -> None:
        planted[write_with_meta(out, rel, ds, **kw)] = (element, category)  # type: ignore[arg-type]

    plant("p1.dcm", clean_output(), "preamble", "id", preamble=b"PREAMBLE PID4711X Mueller".ljust(128, b"\0"))
    plant("p2.dcm", clean_output(), "(0002,0012)", "uid", impl_uid=ORIGINAL_IMPL_UID)
    plant("p3.dcm", clean_output(), "(0002,0013)", "meta", version="HOSPX_PACS")
    latin = clean_output()
    latin.SpecificCharacterSet = "ISO_IR 100"
    item = Dataset()
    item.PersonName = "MÜLLER^JÜRGEN"  # in a nested PN, another case
    latin.ContentSequence = Sequence([item])
    plant("p4.dcm", latin, "(0040,A730)[0].(0040,A123)", "name")
    utf8 = clean_output()
    utf8.SpecificCharacterSet = "ISO_IR 192"
    utf8.PerformingPhysicianName = "ИВАНОВ^ПЕТР"  # Cyrillic, UTF-8 (the original was ISO_IR 144)
    plant("p5.dcm", utf8, "(0008,1050)", "name")
    jap = clean_output()
    jap.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    jap.OperatorsName = "ANON=山田^太郎"  # ideographic group only, ISO 2022
    plant("p6.dcm", jap, "(0008,1070)", "name")
    monaco = clean_output()
    monaco.SOPInstanceUID = MONACO_UID
    plant("p7.dcm", monaco, "(0008,0018)", "uid")
    plant("Mueller_Juergen/p8.dcm", clean_output(), "path", "identifier")
    private = clean_output()
    private.private_block(0x0011, "HOSPX", create=True).add_new(0x01, "LO", "x")
    plant("p9.dcm", private, "(0011,0010)", "private")

    report = verify_files(sorted(planted), ids, root=str(out))
    assert not report.ok and report.files_checked == len(planted)
    by_file: dict[str, set[tuple[str, str]]] = {}
    for f in report.findings:
        by_file.setdefault(f.path, set()).add((f.element, f.category))
    for path, want in planted.items():
        assert want in by_file.get(path, set()), (path, by_file.get(path))
    # nothing is reported that was not planted
    also = {"p1.dcm": {("preamble", "name")}, "p7.dcm": {("(0002,0003)", "uid")},
            "p9.dcm": {("(0011,1001)", "private")}}  # the same leak seen twice in those files
    extra = {os.path.basename(p): f - {planted[p]} - also.get(os.path.basename(p), set()) for p, f in by_file.items()}
    assert not any(extra.values()), extra


def test_placeholders_short_values_and_our_dummies_are_not_findings(tmp_path: Path) -> None:
    orig = original()
    orig.AccessionNumber = "1"
    orig.PatientBirthDate = "19000101"
    orig.StudyTime = "000000"
    orig.OperatorsName = "UNKNOWN"
    orig.ReferringPhysicianName = "NONE"
    orig.PerformingPhysicianName = "Anonymized"
    orig.InstitutionName = "Here"
    orig.PatientID = "12"
    ids = Identifiers(ignore={"ANON1", "ANON^ONE"})
    ids.add_dataset(orig)
    out = clean_output()
    out.SeriesNumber = 1
    out.InstanceNumber = "1"
    out.AccessionNumber = "1"
    out.StudyDate = "19000101"
    out.StudyTime = "000000"
    out.OperatorsName = "UNKNOWN"
    out.ReferringPhysicianName = "NONE"
    out.PhysiciansOfRecord = "Anonymized"
    out.Manufacturer = "Manufacturer name here"
    out.StudyID = "12"
    out.SeriesDescription = "ANONYMIZED"
    report = verify_files([write(tmp_path, "a.dcm", out)], ids)
    assert report.ok and not report.findings, [f.line() for f in report.findings]


def test_uid_is_matched_whole_and_text_as_words(tmp_path: Path) -> None:
    ds = clean_output()
    ds.SeriesInstanceUID = "1.2.3.1000"  # starts like the original 1.2.3.100 but is another UID
    ds.StudyDescription = "SMITHERSON HALL"  # the original name is only a prefix of a word here
    report = verify_files([write(tmp_path, "a.dcm", ds)], ids())
    assert report.ok and not report.failures, [f.line() for f in report.findings]


def test_person_name_is_text_not_a_list_of_characters() -> None:
    import io

    import pydicom

    from dicomtools.core.anonymize.valuetext import element_text

    for charset, name in (("ISO_IR 100", "Müller^Jürgen"), (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう")):
        ds = Dataset()
        ds.SpecificCharacterSet = charset
        ds.PatientName = name
        buf = io.BytesIO()
        ds.save_as(buf, implicit_vr=False, little_endian=True)
        back = pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True)
        assert element_text(back, 0x00100010) == name


def test_without_originals_a_uid_posing_as_the_standards_is_still_found(tmp_path: Path) -> None:
    ds = clean_output()
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"  # in the registry: fine
    item.ReferencedSOPInstanceUID = MONACO_UID  # under the root, not in the registry: not remapped
    ds.ReferencedRTPlanSequence = Sequence([item])
    report = verify_files([write(tmp_path, "a.dcm", ds)], None)
    assert [(f.element, f.category, f.level) for f in report.findings] == [("(300C,0002)[0].(0008,1155)", "uid", "leak")]
