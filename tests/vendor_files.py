"""Files written by hand (pydicom) for the vendor habits seen in real exports.

Each writer makes the smallest file that carries the habit; the tests read
them through the CLI and the core functions.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN = "1.2.840.10008.5.1.4.1.1.481.8"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
IR58_NAME = b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab="  # fo-dicom chrGB2312 style


def base(sop_class: str, patient_id: str, name: str = "TEST^PATIENT", modality: str = "CT", **kw: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = kw.pop("uid", None) or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.Modality = modality
    ds.StudyInstanceUID = kw.pop("study", None) or generate_uid()
    ds.SeriesInstanceUID = kw.pop("series", None) or generate_uid()
    for key, value in kw.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ref(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPInstanceUID = uid
    return item


def ct_series(folder: Path, patient_id: str, frame: str, n: int = 2, desc: str = "CT") -> str:
    series = generate_uid()
    for i in range(n):
        ds = base(CT, patient_id, series=series, FrameOfReferenceUID=frame, SeriesDescription=desc)
        ds.InstanceNumber = i + 1
        save(ds, folder / f"CT.{desc}.{i}.dcm")
    return series


def structure_set(
    folder: Path, patient_id: str, label: str, frame: str, series: str | None = None, uid: str | None = None
) -> str:
    ds = base(RT_STRUCT, patient_id, modality="RTSTRUCT", uid=uid or generate_uid())
    ds.StructureSetLabel = label
    fr = Dataset()
    fr.FrameOfReferenceUID = frame
    if series is not None:
        study = Dataset()
        se = Dataset()
        se.SeriesInstanceUID = series
        study.RTReferencedSeriesSequence = Sequence([se])
        fr.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([fr])
    save(ds, folder / f"RS.{label}.dcm")
    return str(ds.SOPInstanceUID)


def raystation_split_export(root: Path) -> dict[str, str]:
    """A proton plan under one Patient ID, its structure set, CT and dose under another."""
    frame = generate_uid()
    ct = ct_series(root / "WTR303030", "WTR303030", frame)
    ss = structure_set(root / "WTR303030", "WTR303030", "RS_PROTON", frame, ct)
    plan = base(RT_ION_PLAN, "WTR-PLAN", modality="RTPLAN", RTPlanLabel="PROTON1")
    plan.ReferencedStructureSetSequence = Sequence([ref(ss)])
    beam = Dataset()
    beam.BeamNumber = 1
    beam.BeamName = "G90"
    beam.TreatmentMachineName = "GANTRY1"
    plan.IonBeamSequence = Sequence([beam])
    save(plan, root / "plan" / "RN.PROTON1.dcm")
    dose = base(RT_DOSE, "WTR303030", modality="RTDOSE", DoseSummationType="PLAN")
    dose.ReferencedRTPlanSequence = Sequence([ref(str(plan.SOPInstanceUID))])
    save(dose, root / "WTR303030" / "RD.PROTON1.dcm")
    return {"plan": str(plan.SOPInstanceUID), "ss": ss, "dose": str(dose.SOPInstanceUID), "ct": ct}


def ir58_file(path: Path) -> Path:
    """A PN in ISO 2022 IR 58 (GB2312) with G1 designations, as fo-dicom's chrGB2312.dcm."""
    ds = base(CT, "GB2312", series=generate_uid())
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 58"]
    save(ds, path)
    data = path.read_bytes()
    old = b"TEST^PATIENT"
    # Patch the raw bytes: pydicom would re-encode the value on writing.
    pos = data.index(b"\x10\x00\x10\x00PN")
    length = int.from_bytes(data[pos + 6 : pos + 8], "little")
    assert data[pos + 8 : pos + 8 + length].rstrip(b" ") == old
    value = IR58_NAME + (b" " if len(IR58_NAME) % 2 else b"")
    patched = data[: pos + 6] + len(value).to_bytes(2, "little") + value + data[pos + 8 + length :]
    path.write_bytes(patched)
    return path


def implicit_meta_explicit_data(path: Path, patient_id: str = "LIAR-1") -> Path:
    """File meta says Implicit VR Little Endian, the data set is written Explicit VR."""
    ds = base(CT, patient_id, series=generate_uid())
    save(ds, path)
    data = path.read_bytes()
    explicit = ExplicitVRLittleEndian.encode("ascii") + b"\x00"  # 20 bytes, as written
    implicit = ImplicitVRLittleEndian.encode("ascii").ljust(len(explicit), b"\x00")  # same length
    assert data.count(explicit) == 1
    path.write_bytes(data.replace(explicit, implicit))
    return path


def uids_only_in_meta(path: Path, patient_id: str = "META-ONLY") -> tuple[Path, str]:
    """SOP Class/Instance UID in the file meta only (old exporters; pydicom's UN_sequence.dcm)."""
    ds = base(CT, patient_id, series=generate_uid())
    uid = str(ds.SOPInstanceUID)
    del ds.SOPClassUID
    del ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=False)
    return path, uid
