"""Search over real files: pydicom's bundled RT files, files written here, junk, the phantom."""

from __future__ import annotations

import os
import shutil
import struct
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomtools.core.archive.model import RT_ION_PLAN, RT_PLAN
from dicomtools.core.progress import CancelToken, RecordingSink
from dicomtools.core.search.expr import parse
from dicomtools.core.search.folder import read_values, search, search_file

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def bundled(name: str) -> str:
    """Path of one of pydicom's bundled test files."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


def write(path: Path, ds: Dataset, implicit: bool = False) -> Path:
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def plan(patient_id: str, machines: list[str | None]) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = RT_PLAN
    ds.PatientID = patient_id
    ds.PatientName = "Phantom^One"
    ds.Modality = "RTPLAN"
    ds.StudyDate = "20240315"
    beams = []
    for i, name in enumerate(machines, 1):
        beam = Dataset()
        beam.BeamNumber = i
        if name is not None:
            beam.TreatmentMachineName = name
        beams.append(beam)
    ds.BeamSequence = Sequence(beams)
    return ds


def image(patient_id: str, name: str, charset: str | None = None) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CT_IMAGE
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness = "2.5"
    return ds


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for name, rel in [
        ("rtplan.dcm", "bundled/RP.bundled.dcm"),
        ("CT_small.dcm", "bundled/CT.small.dcm"),
        ("rtdose.dcm", "bundled/RD.bundled.dcm"),
        ("rtstruct.dcm", "bundled/RS.bundled.dcm"),  # no preamble: starts with (0008,0005)
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bundled(name), root / rel)
    write(root / "Phantom-1/RP.tb.dcm", plan("Phantom-1", ["TrueBeam1", "TrueBeam1"]))
    write(root / "Phantom-1/RP.removed.dcm", plan("Phantom-1", ["", None]))
    write(root / "Phantom-2/RP.other.dcm", plan("Phantom-2", ["TrueBeam2"]))
    write(root / "Phantom-1/CT.1.dcm", image("Phantom-1", "Phantom^One"))
    write(root / "latin1/CT.1.dcm", image("L1", "Müller^Jürgen", "ISO_IR 100"))
    write(root / "utf8/CT.1.dcm", image("U8", "山田^太郎", "ISO_IR 192"), implicit=True)
    for rel, implicit in [("private/explicit.dcm", False), ("private/implicit.dcm", True)]:
        ds = image("PR", "Private^Tags")
        ds.private_block(0x0029, "ACME 1.0", create=True).add_new(0x10, "LO", "secret")
        write(root / rel, ds, implicit=implicit)
    # pixel data declared 100 MB long but cut off: header-only reading must not care
    big = write(root / "pixels/CT.cut.dcm", image("PX", "Pixel^Cut"))
    with open(big, "ab") as fh:
        fh.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", 100_000_000) + b"\x00" * 16)
    (root / "misc").mkdir()
    (root / "misc/notes.txt").write_text("not a DICOM file\n")
    (root / "misc/empty.dcm").write_bytes(b"")
    (root / "misc/photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 300)
    return root


def rel(root: Path, paths: list[str]) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


def test_seed_example_patient_and_modality(archive: Path) -> None:
    r = search(str(archive), ["(0010,0020)=Phantom-1", "(0008,0060)=?"])
    assert rel(archive, [m.path for m in r.matches]) == [
        "Phantom-1/CT.1.dcm",
        "Phantom-1/RP.removed.dcm",
        "Phantom-1/RP.tb.dcm",
    ]
    assert r.matches[0].values == {"(0010,0020)": ["Phantom-1"], "(0008,0060)": ["CT"]}
    assert r.statistics == {"(0008,0060)": Counter({"RTPLAN": 2, "CT": 1})}
    assert all(m.path.startswith(str(archive) + os.sep) for m in r.matches)


def test_seed_example_treatment_machines(archive: Path) -> None:
    r = search(str(archive), ["(300A,00B0)/(300A,00B2)=?"], "RP*.dcm")
    assert r.files_scanned == 4  # the pattern is applied case-insensitively to names
    assert r.matched == 4
    # counted per plan, not per beam; the removed name counts as ""
    assert r.statistics["(300A,00B0)/(300A,00B2)"] == Counter(
        {"TrueBeam1": 1, "": 1, "TrueBeam2": 1, "unit001": 1}
    )
    by_name = {os.path.basename(m.path): m.values["(300A,00B0)/(300A,00B2)"] for m in r.matches}
    assert by_name["RP.tb.dcm"] == ["TrueBeam1"]
    assert by_name["RP.removed.dcm"] == [""]


def test_empty_machine_name_with_bare_equals(archive: Path) -> None:
    r = search(str(archive), ["BeamSequence/TreatmentMachineName="])
    assert rel(archive, [m.path for m in r.matches]) == ["Phantom-1/RP.removed.dcm"]


def test_non_ascii_names_in_latin1_and_utf8(archive: Path) -> None:
    r = search(str(archive), ["PatientName=Müller*"])
    assert [m.values for m in r.matches] == [{"PatientName": ["Müller^Jürgen"]}]
    r = search(str(archive), ["PatientName~^山田"])
    assert rel(archive, [m.path for m in r.matches]) == ["utf8/CT.1.dcm"]
    assert r.matches[0].values == {"PatientName": ["山田^太郎"]}


def test_private_tag_in_explicit_and_implicit_files(archive: Path) -> None:
    r = search(str(archive), ["(0029,1010)=secret"])
    assert rel(archive, [m.path for m in r.matches]) == ["private/explicit.dcm", "private/implicit.dcm"]
    assert {m.values["(0029,1010)"][0] for m in r.matches} == {"secret"}


def test_dates_numbers_and_multi_values_on_files(archive: Path) -> None:
    r = search(str(archive), ["StudyDate>=20040101", "StudyDate<20050101"])
    assert rel(archive, [m.path for m in r.matches]) == ["bundled/CT.small.dcm"]
    assert r.matches[0].values == {"StudyDate": ["20040119"]}
    r = search(str(archive), ["ImageType=AXIAL", "SliceThickness<3"])
    names = rel(archive, [m.path for m in r.matches])
    assert "latin1/CT.1.dcm" in names and "bundled/CT.small.dcm" not in names  # CT_small: 5.0 mm
    assert r.matches[0].values["ImageType"] == ["AXIAL"]


def test_unreadable_files_are_counted_with_reasons(archive: Path) -> None:
    r = search(str(archive), ["PatientID"])
    reasons = {os.path.relpath(u.path, archive): u.reason for u in r.unreadable}
    assert reasons == {
        "misc/empty.dcm": "empty file",
        "misc/notes.txt": "not DICOM: text file",
        "misc/photo.jpg": "not DICOM: JPEG image",
    }
    assert r.files_scanned == r.dicom_files + len(r.unreadable) == 16
    assert r.matched == r.dicom_files  # every DICOM file here has a Patient ID
    assert "bundled/RS.bundled.dcm" in rel(archive, [m.path for m in r.matches])  # no preamble


def test_pixel_data_is_never_read(archive: Path) -> None:
    path = str(archive / "pixels/CT.cut.dcm")
    ds = read_values(path, [0x00100010])
    assert isinstance(ds, Dataset)
    assert set(ds.keys()) <= {0x00080005, 0x00080016, 0x00080018, 0x00100010}  # identity + asked
    assert 0x7FE00010 not in ds
    outcome = search_file(path, [parse("PatientName=Pixel^*")], [0x00100010])
    assert outcome.dicom and outcome.values == {"PatientName": ["Pixel^Cut"]}


def test_read_values_keeps_only_the_needed_top_level_tags(archive: Path) -> None:
    ds = read_values(str(archive / "bundled/RP.bundled.dcm"), [0x00100020, 0x300A00B0])
    assert isinstance(ds, Dataset)
    assert set(ds.keys()) - {0x00080005, 0x00080016, 0x00080018} == {0x00100020, 0x300A00B0}
    assert ds.BeamSequence[0].TreatmentMachineName == "unit001"  # sequences come whole


def test_file_meta_can_be_searched(archive: Path) -> None:
    r = search(str(archive), ["TransferSyntaxUID=1.2.840.10008.1.2", "Modality=?"])
    assert rel(archive, [m.path for m in r.matches]) == [
        "bundled/RD.bundled.dcm", "bundled/RP.bundled.dcm", "private/implicit.dcm", "utf8/CT.1.dcm"
    ]  # RS.bundled.dcm is implicit too but has no file meta at all


@pytest.mark.parametrize(
    "exprs",
    [["Modality=?", "PatientID~."], ["BeamSequence/TreatmentMachineName=?", "PatientID=?"]],
)
def test_pool_gives_the_same_result_in_the_same_order(archive: Path, exprs: list[str]) -> None:
    one = search(str(archive), exprs, workers=1)
    two = search(str(archive), exprs, workers=2)
    assert one.matches and [m.path for m in two.matches] == [m.path for m in one.matches]
    assert [m.values for m in two.matches] == [m.values for m in one.matches]
    assert two.statistics == one.statistics
    assert sorted(two.unreadable, key=lambda u: u.path) == sorted(one.unreadable, key=lambda u: u.path)


def test_progress_events_and_cancel(archive: Path) -> None:
    sink = RecordingSink()
    r = search(str(archive), ["Modality=CT"], sink=sink)
    assert sink.kinds()[0] == "started" and sink.kinds()[-1] == "finished"
    assert {e.job for e in sink.events} == {"search"}
    assert sink.events[0].total == r.files_scanned
    assert sink.events[-1].done == r.files_scanned
    token = CancelToken()
    token.cancel()
    stopped = search(str(archive), ["Modality=CT"], cancel=token)
    assert stopped.cancelled and stopped.matched == 0


def test_root_may_be_a_single_file(archive: Path) -> None:
    path = str(archive / "bundled/RP.bundled.dcm")
    r = search(path, ["(300A,00B0)/(300A,00B2)=unit*"])
    assert [m.path for m in r.matches] == [path]
    assert r.directories() == [str(archive / "bundled")]


def test_phantom_archive(tmp_path: Path) -> None:
    from dicomtools.core import phantom

    manifest = phantom.generate(tmp_path, patients=2)
    r = search(str(tmp_path), ["(300A,00B0)/(300A,00B2)=?"])
    expected: Counter[str] = Counter()
    for p in manifest.patients.values():
        for pl in p.plans.values():
            if pl.sop_class_uid == RT_PLAN:
                expected.update(set(pl.machines))
    assert r.statistics["(300A,00B0)/(300A,00B2)"] == expected
    for m in r.matches:
        assert pydicom.dcmread(m.path, stop_before_pixels=True).Modality == "RTPLAN"

    ion = search(str(tmp_path), ["IonBeamSequence/TreatmentMachineName=?"])
    ion_plans = [pl for p in manifest.patients.values() for pl in p.plans.values() if pl.sop_class_uid == RT_ION_PLAN]
    assert ion.matched == len(ion_plans)

    first = next(iter(manifest.patients))
    r = search(str(tmp_path), [f"(0010,0020)={first}", "(0008,0060)=?"])
    expected_files = {f for f, e in manifest.files.items() if e.patient_id == first}
    found = {os.path.relpath(m.path, tmp_path).replace(os.sep, "/") for m in r.matches}
    assert expected_files <= found

    for p in manifest.patients.values():
        if p.specific_character_set:  # the patient with a non-ASCII name
            hits = search(str(tmp_path), [f"PatientName={p.patient_name}"])
            assert hits.matched > 0
            assert all(m.values["PatientName"] == [p.patient_name] for m in hits.matches)
