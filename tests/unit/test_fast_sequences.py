"""The fast parser reads the reference sequences the tree needs, and agrees with pydicom.

Every file of pydicom's own test data, the phantom and the realistic benchmark
archive (full-size plans, structure set, CBCT) must give the same summary on
the fast path as on the general pydicom reader; hand-made oddities inside the
sequences (non-ASCII, multi-values, decimals in an IS, an item's own character
set, a sequence stored as UN, cuts) must fall back or be judged as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtools.core.archive import fastsummary
from dicomtools.core.archive.model import RT_PLAN, InstanceSummary, UnreadableFile
from dicomtools.core.archive.read import read_instance
from dicomtools.core.archive.summarize import (
    NEEDED_FLAT,
    NEEDED_SEQUENCES,
    NEEDED_TAGS,
    _read_with_pydicom,
    read_summary,
)
from dicomtools.core.phantom.manifest import PhantomManifest
from tests.pydicom_files import pydicom_corpus

ROOT = Path(__file__).resolve().parents[2]
SKIP_FIELDS = {"size", "mtime_ns", "truncated"}


def _same(path: str) -> InstanceSummary | UnreadableFile:
    """The fast summary, checked field by field against the pydicom reader's."""
    fast, slow = read_summary(path), _read_with_pydicom(path)
    if isinstance(fast, InstanceSummary):
        assert isinstance(slow, InstanceSummary), (path, slow)
        for name in InstanceSummary.__slots__:
            if name not in SKIP_FIELDS:
                assert getattr(fast, name) == getattr(slow, name), (path, name)
    return fast


def _took_fast_path(path: str) -> bool:
    found = read_instance(path, NEEDED_FLAT, NEEDED_SEQUENCES, tags=NEEDED_TAGS, specs=fastsummary.SPECS)
    return not isinstance(found, UnreadableFile) and found.fast is not None


def test_spec_tags_are_the_keywords_the_pydicom_path_reads() -> None:
    names = {
        "REFERENCED_SOP_INSTANCE_UID": "ReferencedSOPInstanceUID",
        "REFERENCED_INSTANCE_SEQUENCE": "ReferencedInstanceSequence",
        "STUDIES_CONTAINING_OTHER": "StudiesContainingOtherReferencedInstancesSequence",
        "RT_REFERENCED_STUDY_SEQUENCE": "RTReferencedStudySequence",
        "RT_REFERENCED_SERIES_SEQUENCE": "RTReferencedSeriesSequence",
        "CURRENT_FRACTION_NUMBER": "CurrentFractionNumber",
        "BEAM_NUMBER": "BeamNumber",
        "BEAM_NAME": "BeamName",
        "TREATMENT_DELIVERY_TYPE": "TreatmentDeliveryType",
        "TREATMENT_MACHINE_NAME": "TreatmentMachineName",
        "MANUFACTURER_MODEL_NAME": "ManufacturerModelName",
        "REFERENCED_REFERENCE_IMAGE_SEQUENCE": "ReferencedReferenceImageSequence",
        "REFERENCED_STRUCTURE_SET_SEQUENCE": "ReferencedStructureSetSequence",
        "REFERENCED_RT_PLAN_SEQUENCE": "ReferencedRTPlanSequence",
        "TREATMENT_SESSION_BEAM_SEQUENCE": "TreatmentSessionBeamSequence",
        "REGISTRATION_SEQUENCE": "RegistrationSequence",
    }
    for constant, keyword in names.items():
        assert getattr(fastsummary, constant) == tag_for_keyword(keyword), keyword
    assert set(fastsummary.SPECS) == set(NEEDED_SEQUENCES)


def test_every_pydicom_test_file_agrees() -> None:
    fast_rt = 0
    for path in pydicom_corpus():
        found = _same(path)
        if isinstance(found, InstanceSummary) and _took_fast_path(path) and found.sop_class_uid.startswith(
            "1.2.840.10008.5.1.4.1.1.481."
        ):
            fast_rt += 1
    assert fast_rt >= 3  # rtplan.dcm, rtstruct.dcm, rtdose.dcm at least no longer need pydicom


def test_every_phantom_file_agrees_and_rt_objects_take_the_fast_path(phantom: PhantomManifest) -> None:
    slow_rt = []
    for rel in phantom.files:
        path = os.path.join(phantom.root, rel)
        found = _same(path)
        assert isinstance(found, InstanceSummary)
        if (found.beams or found.referenced_plans or found.roi_count) and not _took_fast_path(path):
            slow_rt.append(rel)
    # only vendor oddities (character sets, big endian, deflate...) may still need pydicom
    assert len(slow_rt) < len(phantom.files) // 4, slow_rt


def test_realistic_archive_objects_agree_and_take_the_fast_path(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from realistic_archive import Sizes, make_realistic
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    make_realistic(tmp_path / "arch", Sizes.small(patients=1))
    seen: dict[str, int] = {}
    for path in sorted(p for p in (tmp_path / "arch").rglob("*") if p.is_file() and not p.name.startswith(".")):
        found = _same(str(path))
        assert isinstance(found, InstanceSummary), path
        assert _took_fast_path(str(path)), path
        seen[found.sop_class_uid] = seen.get(found.sop_class_uid, 0) + 1
    plans = [s for s in (read_summary(str(p)) for p in (tmp_path / "arch").rglob("*") if p.is_file()) if
             isinstance(s, InstanceSummary) and s.sop_class_uid == RT_PLAN]
    assert plans and all(len(p.beams) == 2 and p.referenced_structure_sets for p in plans)
    assert len(seen) >= 6  # CT, RS, RP, RD, RI, records


def _plan(implicit: bool = False, **beam: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = RT_PLAN
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RT_PLAN
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientID = "SEQ"
    ds.Modality = "RTPLAN"
    item = Dataset()
    item.BeamNumber = "1"
    item.BeamName = "ARC1"
    item.TreatmentMachineName = "TB1"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.9"
    item.ReferencedReferenceImageSequence = Sequence([ref])
    for keyword, value in beam.items():
        setattr(item, keyword, value)
    cp = Dataset()
    cp.ControlPointIndex = 0
    item.ControlPointSequence = Sequence([cp])
    ds.BeamSequence = Sequence([item])
    rs = Dataset()
    rs.ReferencedSOPInstanceUID = "1.2.3.5"
    ds.ReferencedStructureSetSequence = Sequence([rs, rs])
    return ds


@pytest.mark.parametrize(
    ("implicit", "beam", "fast"),
    [
        (False, {}, True),
        (True, {}, True),
        (False, {"BeamName": "Prostata Ü"}, False),  # non-ASCII: pydicom decodes
        (False, {"BeamNumber": "1.0"}, False),  # an IS pydicom may read as 1
        (False, {"BeamName": "A\\B"}, False),  # multi-valued
        (False, {"SpecificCharacterSet": "ISO_IR 192"}, False),  # the item's own character set
    ],
)
def test_hand_made_sequences(tmp_path: Path, implicit: bool, beam: dict[str, object], fast: bool) -> None:
    path = tmp_path / "rp.dcm"
    _plan(implicit, **beam).save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    found = _same(str(path))
    assert isinstance(found, InstanceSummary)
    assert found.referenced_structure_sets == ("1.2.3.5",)
    assert found.beams[0].machine == "TB1" and found.beams[0].reference_images == ("1.2.3.9",)
    if fast and "SpecificCharacterSet" not in beam:
        assert _took_fast_path(str(path))
        assert found.beams[0].number == 1


def test_a_cut_inside_a_read_sequence_is_judged_as_before(tmp_path: Path) -> None:
    """Cut at every byte from the Beam Sequence on: the same verdict as without the specs."""
    path = tmp_path / "rp.dcm"
    _plan().save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    start = data.find(bytes.fromhex("0a30b000"))  # (300A,00B0) Beam Sequence
    assert start > 0
    cut = tmp_path / "cut.dcm"
    truncated = 0
    for n in range(start, len(data)):
        cut.write_bytes(data[:n])
        with_specs = read_instance(str(cut), NEEDED_FLAT, NEEDED_SEQUENCES, tags=NEEDED_TAGS, specs=fastsummary.SPECS)
        without = read_instance(str(cut), NEEDED_FLAT, NEEDED_SEQUENCES, tags=NEEDED_TAGS)
        assert type(with_specs) is type(without), n
        if isinstance(with_specs, UnreadableFile):
            assert isinstance(without, UnreadableFile)
            assert with_specs.reason == without.reason, n
            truncated += "truncated" in with_specs.reason
        assert isinstance(read_summary(str(cut)), InstanceSummary | UnreadableFile)
    assert truncated > (len(data) - start) // 2
