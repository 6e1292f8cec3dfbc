"""The phantom archive: deterministic, readable, and exactly as its manifest says."""

from __future__ import annotations

import pickle
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from dicomtools.core.archive import model
from dicomtools.core.phantom import (
    PhantomManifest,
    generate,
    write_ct_series,
    write_junk,
)
from dicomtools.core.phantom.iod import CT_IMAGE, MR_IMAGE, PRIVATE_CREATOR, PRIVATE_GROUP
from dicomtools.core.progress import CancelToken, RecordingSink


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PhantomManifest]:
    root = tmp_path_factory.mktemp("phantom")
    return root, generate(root, patients=2, seed=0, ct_slices=6)


@pytest.fixture(scope="module")
def datasets(archive: tuple[Path, PhantomManifest]) -> dict[str, Dataset]:
    """Every readable file, by SOP Instance UID."""
    root, manifest = archive
    out: dict[str, Dataset] = {}
    for rel in manifest.files:
        ds = pydicom.dcmread(root / rel, force=rel in manifest.no_preamble_files)
        out[str(ds.SOPInstanceUID)] = ds
    return out


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", patients=2, seed=7, ct_slices=3)
    b = generate(tmp_path / "b", patients=2, seed=7, ct_slices=3)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b
    assert len(files_a) == a.file_count
    a.root = b.root
    assert a == b


def test_different_seed_gives_different_uids(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", patients=1, seed=0, ct_slices=3, broken=False)
    b = generate(tmp_path / "b", patients=1, seed=1, ct_slices=3, broken=False)
    assert a.files.keys() == b.files.keys()
    uids_a = {e.sop_uid for e in a.files.values()}
    uids_b = {e.sop_uid for e in b.files.values()}
    assert len(uids_a) == len(a.files)
    assert not uids_a & uids_b


def test_files_on_disk_match_manifest(archive: tuple[Path, PhantomManifest]) -> None:
    root, manifest = archive
    on_disk = set(_files(root))
    assert on_disk == set(manifest.files) | set(manifest.broken_files)
    assert manifest.file_count == len(on_disk)
    assert not [p for p in root.rglob("*") if p.name.startswith(".part-")]
    assert set(manifest.truncated_pixel_files) <= set(manifest.files)
    assert set(manifest.no_preamble_files) <= set(manifest.files)
    names = {Path(rel).name for rel in manifest.files}
    assert any(n.endswith(".DCM") for n in names)
    assert any("." not in n for n in names)
    assert pickle.loads(pickle.dumps(manifest)) == manifest


def test_every_readable_file_has_its_class_and_patient(
    archive: tuple[Path, PhantomManifest],
) -> None:
    root, manifest = archive
    for rel, entry in manifest.files.items():
        raw = rel in manifest.no_preamble_files
        ds = pydicom.dcmread(root / rel, force=raw)
        assert ds.SOPClassUID == entry.sop_class_uid, rel
        assert ds.SOPInstanceUID == entry.sop_uid, rel
        assert ds.PatientID == entry.patient_id, rel
        if not raw:
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.file_meta.MediaStorageSOPInstanceUID == entry.sop_uid
    for pid, pm in manifest.patients.items():
        assert pm.all_sop_uids == {e.sop_uid for e in manifest.files.values() if e.patient_id == pid}


def test_patients_carry_identifying_values(
    archive: tuple[Path, PhantomManifest], datasets: dict[str, Dataset]
) -> None:
    root, manifest = archive
    assert list(manifest.patients) == ["PHANTOM-001", "PHANTOM-002"]
    first, second = manifest.patients.values()
    assert first.patient_name == "PHANTOM^ALPHA"
    assert second.patient_name == "PHANTÖM^BRAVO"
    assert second.specific_character_set == "ISO_IR 100"
    plan = datasets[second.plans["PLAN_A"].sop_uid]
    assert plan.SpecificCharacterSet == "ISO_IR 100"
    assert str(plan.PatientName) == "PHANTÖM^BRAVO"
    raw = (root / next(r for r, e in manifest.files.items() if e.sop_uid == plan.SOPInstanceUID))
    assert b"PHANT\xd6M^BRAVO" in raw.read_bytes()
    for pm in manifest.patients.values():
        for uid in pm.all_sop_uids:
            ds = datasets[uid]
            assert ds.InstitutionName == "DEMO HOSPITAL"
            assert ds.PatientBirthDate and ds.PatientSex and ds.AccessionNumber
            assert ds.ReferringPhysicianName
            if uid in {e.sop_uid for r, e in manifest.files.items()
                       if r in manifest.no_preamble_files}:
                continue  # implicit VR: the private element reads back as UN
            block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
            assert block[0x00].value == pm.patient_name


def _refs(seq: object) -> list[str]:
    return [str(item.ReferencedSOPInstanceUID) for item in seq]  # type: ignore[attr-defined]


def test_plans_and_their_references_exist(
    archive: tuple[Path, PhantomManifest], datasets: dict[str, Dataset]
) -> None:
    _, manifest = archive
    for pm in manifest.patients.values():
        assert set(pm.plans) == {"PLAN_A", "PLAN_B", "QA_A", "PROTON_1"}
        for label, plan in pm.plans.items():
            ds = datasets[plan.sop_uid]
            assert (ds.RTPlanLabel, ds.SOPClassUID, ds.ApprovalStatus, ds.PlanIntent) == (
                label, plan.sop_class_uid, plan.approval_status, plan.plan_intent)
            beams = ds.IonBeamSequence if "IonBeamSequence" in ds else ds.BeamSequence
            assert [b.BeamNumber for b in beams] == plan.beam_numbers
            assert [b.TreatmentMachineName for b in beams] == plan.machines
            assert [b.ManufacturerModelName for b in beams] == plan.machine_models
            assert _refs(ds.ReferencedStructureSetSequence) == [plan.structure_set_uid]
            ss = datasets[plan.structure_set_uid]
            frame = ss.ReferencedFrameOfReferenceSequence[0]
            series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
            assert series.SeriesInstanceUID == plan.image_series_uid
            images = [d for d in datasets.values() if d.SeriesInstanceUID == plan.image_series_uid]
            assert len(images) == plan.image_count == len(series.ContourImageSequence)
            assert {str(d.SOPInstanceUID) for d in images} == set(
                _refs(series.ContourImageSequence))
            assert {d.FrameOfReferenceUID for d in images} == {frame.FrameOfReferenceUID}
            refs = _refs(ds.get("ReferencedRTPlanSequence", []))
            assert refs == plan.referenced_plan_uids
            for dose_uid in plan.dose_uids:
                assert _refs(datasets[dose_uid].ReferencedRTPlanSequence) == [plan.sop_uid]
            if plan.dose_uids:
                assert datasets[plan.dose_uids[0]].DoseSummationType == "PLAN"
            for beam in beams:
                listed = _refs(beam.get("ReferencedReferenceImageSequence", []))
                assert listed == plan.drr_uids_by_beam[beam.BeamNumber]
                for uid in listed:
                    assert datasets[uid].SOPClassUID == model.RT_IMAGE
            for number, uids in plan.portal_uids_by_beam.items():
                for uid in uids:
                    assert datasets[uid].ReferencedBeamNumber == number
                    assert _refs(datasets[uid].ReferencedRTPlanSequence) == [plan.sop_uid]
            for number, uids in plan.record_uids_by_beam.items():
                fractions = []
                for uid in uids:
                    session = datasets[uid].TreatmentSessionBeamSequence[0]
                    assert session.ReferencedBeamNumber == number
                    assert _refs(datasets[uid].ReferencedRTPlanSequence) == [plan.sop_uid]
                    fractions.append(session.CurrentFractionNumber)
                assert fractions == sorted(fractions)
            for uid in plan.plan_level_records:
                session = datasets[uid].TreatmentSessionBeamSequence[0]
                assert session.ReferencedBeamNumber not in plan.beam_numbers
            if plan.cbct_series_uid:
                cbct = [d for d in datasets.values()
                        if d.SeriesInstanceUID == plan.cbct_series_uid]
                assert len(cbct) == plan.cbct_count
                for d in cbct:
                    assert _refs(d.ReferencedInstanceSequence) == [plan.sop_uid]
            reg = datasets[plan.registration_uid or ""]
            assert reg.SOPClassUID == model.SPATIAL_REGISTRATION
            frames = [item.FrameOfReferenceUID for item in reg.RegistrationSequence]
            assert frames[0] == frame.FrameOfReferenceUID
            moving = [d for d in datasets.values()
                      if d.SeriesInstanceUID == plan.registered_series_uid]
            assert moving and {d.FrameOfReferenceUID for d in moving} == {frames[1]}
            assert reg.ReferencedSeriesSequence[0].SeriesInstanceUID == plan.registered_series_uid
            other = reg.StudiesContainingOtherReferencedInstancesSequence[0]
            assert other.ReferencedSeriesSequence[0].SeriesInstanceUID == plan.image_series_uid
            rss = datasets[plan.registered_structure_set_uid or ""]
            rframe = rss.ReferencedFrameOfReferenceSequence[0]
            assert rframe.FrameOfReferenceUID == frames[1]
        a = pm.plans["PLAN_A"]
        assert len(a.dose_uids) == 2 and datasets[a.dose_uids[1]].DoseSummationType == "BEAM"
        assert all(len(v) == 1 for v in a.drr_uids_by_beam.values())
        assert [len(v) for v in a.record_uids_by_beam.values()] == [2, 2, 0]
        assert a.portal_uids_by_beam == {1: [], 2: a.portal_uids_by_beam[2], 3: []}
        assert pm.plans["PLAN_B"].machines == ["", ""]
        assert pm.plans["QA_A"].referenced_plan_uids == [a.sop_uid]
        qa = datasets[pm.plans["QA_A"].sop_uid]
        assert qa.ReferencedRTPlanSequence[0].RTPlanRelationship == "VERIFIED_PLAN"
        assert pm.plans["PROTON_1"].sop_class_uid == model.RT_ION_PLAN


def test_unconnected_objects(
    archive: tuple[Path, PhantomManifest], datasets: dict[str, Dataset]
) -> None:
    _, manifest = archive
    plan_uids = {p.sop_uid for pm in manifest.patients.values() for p in pm.plans.values()}
    for pm in manifest.patients.values():
        un = pm.unconnected
        assert pm.missing_plan_uid not in datasets
        for series_uid, count in un.series.items():
            members = [d for d in datasets.values() if d.SeriesInstanceUID == series_uid]
            assert len(members) == count and {d.SOPClassUID for d in members} == {CT_IMAGE}
        for uid in un.doses + un.records:
            assert _refs(datasets[uid].ReferencedRTPlanSequence) == [pm.missing_plan_uid]
        for uid in un.rt_images:
            assert "ReferencedRTPlanSequence" not in datasets[uid]
        assert [datasets[u].SOPClassUID for u in un.other] == [model.RT_SUMMARY_RECORD]
        for uid in un.structure_sets:
            ss = datasets[uid]
            series = (ss.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
                      .RTReferencedSeriesSequence[0].SeriesInstanceUID)
            assert series in un.series
        assert not plan_uids & set(un.doses + un.records + un.rt_images + un.other)
    first = manifest.patients["PHANTOM-001"]
    assert sorted(first.unconnected.series.values()) == [1, 5]  # + the truncated-pixel CT
    assert sorted(manifest.patients["PHANTOM-002"].unconnected.series.values()) == [5]


def test_mr_and_cbct_are_what_they_claim(
    archive: tuple[Path, PhantomManifest], datasets: dict[str, Dataset]
) -> None:
    _, manifest = archive
    a = manifest.patients["PHANTOM-001"].plans["PLAN_A"]
    mr = [d for d in datasets.values() if d.SeriesInstanceUID == a.registered_series_uid]
    assert len(mr) == 6 and {d.SOPClassUID for d in mr} == {MR_IMAGE}
    ct = [d for d in datasets.values() if d.SeriesInstanceUID == a.image_series_uid]
    assert sorted(float(d.ImagePositionPatient[2]) for d in ct) == pytest.approx(
        [-7.5, -4.5, -1.5, 1.5, 4.5, 7.5])
    for d in ct:
        assert d.pixel_array.shape == (16, 16) and d.pixel_array.max() > 0


def test_broken_files_are_broken(archive: tuple[Path, PhantomManifest]) -> None:
    root, manifest = archive
    kinds = {kind: root / rel for rel, kind in manifest.broken_files.items()}
    assert set(kinds) == {"empty", "text", "truncated-header", "jpeg", "dicomdir"}
    assert kinds["empty"].stat().st_size == 0
    assert kinds["jpeg"].read_bytes().startswith(b"\xff\xd8\xff\xe0")
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(kinds["text"])
    cut = pydicom.dcmread(kinds["truncated-header"])
    assert "SOPInstanceUID" not in cut and kinds["truncated-header"].stat().st_size < 300
    ddir = pydicom.dcmread(kinds["dicomdir"])
    assert ddir.file_meta.MediaStorageSOPClassUID == model.MEDIA_STORAGE_DIRECTORY
    (rel,) = manifest.truncated_pixel_files
    ds = pydicom.dcmread(root / rel)
    assert 0 < len(ds.PixelData) < ds.Rows * ds.Columns * 2
    (raw,) = manifest.no_preamble_files
    data = (root / raw).read_bytes()
    assert data[128:132] != b"DICM" and not data.startswith(b"\x02\x00")
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(root / raw)
    ds = pydicom.dcmread(root / raw, force=True)
    assert ds.SeriesInstanceUID in manifest.patients["PHANTOM-001"].unconnected.series


def test_broken_false_writes_only_clean_files(tmp_path: Path) -> None:
    manifest = generate(tmp_path, patients=1, ct_slices=2, broken=False)
    assert not manifest.broken_files and not manifest.no_preamble_files
    assert not manifest.truncated_pixel_files and not (tmp_path / "_misc").exists()
    for rel in manifest.files:
        assert (tmp_path / rel).read_bytes()[128:132] == b"DICM"
    assert manifest.file_count == len(list(p for p in tmp_path.rglob("*") if p.is_file()))


def test_rejects_no_patients(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, patients=0)


def test_write_ct_series_many_distinct_readable_files(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "a", 2000, patient_id="BULK-007", seed=3)
    assert len(paths) == 2000 and all(p.exists() for p in paths)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in paths]
    uids = set()
    for index in list(range(0, 2000, 97)) + [1999]:
        ds = pydicom.dcmread(paths[index])
        assert ds.PatientID == "BULK-007" and ds.SOPClassUID == CT_IMAGE
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.InstanceNumber == index + 1
        assert float(ds.ImagePositionPatient[2]) == float(ds.SliceLocation) == float(index)
        assert ds.pixel_array.shape == (8, 8)
        uids.add(ds.SOPInstanceUID)
    assert len(uids) == len(range(0, 2000, 97)) + 1
    series = {pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID for p in paths[:50]}
    assert len(series) == 1
    again = write_ct_series(tmp_path / "b", 3, patient_id="BULK-007", seed=3)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths[:3]]


def test_write_junk_is_not_dicom(tmp_path: Path) -> None:
    paths = write_junk(tmp_path, 12, seed=5)
    assert len(paths) == 12 and len({p.name for p in paths}) == 12
    assert any(p.stat().st_size == 0 for p in paths)
    for p in paths:
        if p.stat().st_size:
            with pytest.raises(InvalidDicomError):
                pydicom.dcmread(p)
    assert [p.read_bytes() for p in write_junk(tmp_path / "again", 12, seed=5)] == [
        p.read_bytes() for p in paths]


def test_progress_and_cancel(tmp_path: Path) -> None:
    sink = RecordingSink()
    manifest = generate(tmp_path / "a", patients=2, ct_slices=2, broken=False, sink=sink)
    assert sink.kinds() == ["started", "advanced", "advanced", "finished"]
    assert [e.text for e in sink.events if e.kind == "advanced"] == list(manifest.patients)
    token = CancelToken()
    token.cancel()
    assert generate(tmp_path / "b", patients=2, cancel=token).patients == {}
    paths = write_ct_series(tmp_path / "c", 1200, cancel=token)
    assert 0 < len(paths) < 1200
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [p.name for p in paths]
