"""Builders for the phantom's common modules, images, structure sets and the DICOMDIR.

Each builder fills one dataset with the modules a real system would write,
small but valid enough that pydicom, dcmtk and Orthanc accept it. Nothing here
reads the clock or a random source: all values come from the arguments.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dicomtools.core.archive import model

log = logging.getLogger(__name__)

UID_PREFIX = "1.2.826.0.1.3680043.10.1234."
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
STUDY_COMPONENT_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (RT convention)
PRIVATE_GROUP = 0x3253
PRIVATE_CREATOR = "Varian Medical Systems VISION 3253"
MANUFACTURER = "DICOMTOOLS PHANTOM"


def make_uid(*parts: object) -> str:
    """A deterministic UID; parts are joined with a separator so ("a1","2") != ("a","12")."""
    return str(generate_uid(prefix=UID_PREFIX, entropy_srcs=["|".join(str(p) for p in parts)]))


def fmt(value: float) -> str:
    """Compact, deterministic DS text (no '-0', at most 4 decimals)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    name: str
    charset: str  # "" = default repertoire
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class Study:
    uid: str
    date: str
    time: str
    study_id: str
    description: str
    accession: str


@dataclass(frozen=True, slots=True)
class Series:
    uid: str
    number: int
    modality: str
    description: str


def base(
    sop_class: str,
    sop_uid: str,
    patient: Patient,
    study: Study,
    series: Series,
    instance_number: int = 1,
) -> Dataset:
    """File meta plus the SOP Common, Patient, General Study/Series/Equipment modules."""
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    if patient.charset:
        ds.SpecificCharacterSet = patient.charset
    ds.InstanceCreationDate = study.date
    ds.InstanceCreationTime = study.time
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    ds.SeriesDate = study.date
    ds.SeriesTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "DEMO HOSPITAL"
    ds.ReferringPhysicianName = "REFERRER^FAKE"
    ds.StationName = "PHANTOM-WS"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.OperatorsName = "OPERATOR^FAKE"
    ds.ManufacturerModelName = "PHANTOM"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.SoftwareVersions = "1.0"
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = instance_number
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x00, "LO", patient.name)
    return ds


def pixels_disc(rows: int, cols: int, inside: int, outside: int, hot: int, phase: int) -> bytes:
    """A bright disc with a small hot spot whose place moves with ``phase``."""
    data = array("H")
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    hy, hx = cy + (phase % 3) - 1, cx + 2
    for y in range(rows):
        for x in range(cols):
            if (y - hy) ** 2 + (x - hx) ** 2 <= 2.0:
                data.append(hot)
            elif (y - cy) ** 2 + (x - cx) ** 2 <= (0.4 * rows) ** 2:
                data.append(inside)
            else:
                data.append(outside)
    if data.itemsize != 2:  # pragma: no cover - array('H') is 2 bytes on every platform we run on
        raise RuntimeError("unexpected unsigned short size")
    return data.tobytes()  # little endian on x86/arm hosts


def image_slice(
    ds: Dataset,
    *,
    rows: int,
    spacing: float,
    thickness: float,
    z: float,
    for_uid: str,
    pixels: bytes,
    ct: bool,
) -> None:
    """Image Plane, Image Pixel and CT/MR Image modules for one axial slice."""
    half = spacing * rows / 2
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = fmt(thickness)
    ds.ImagePositionPatient = [fmt(-half + spacing / 2), fmt(-half + spacing / 2), fmt(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = fmt(z)
    ds.PixelSpacing = [fmt(spacing), fmt(spacing)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if ct:
        ds.KVP = "120"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = "15"
        ds.RepetitionTime = "500"
        ds.MagneticFieldStrength = "1.5"
    ds.PixelData = pixels


def ref_item(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


@dataclass(frozen=True, slots=True)
class Roi:
    number: int
    name: str
    kind: str  # RT ROI Interpreted Type
    color: tuple[int, int, int]
    radius: float
    center: tuple[float, float]
    every_slice: bool  # False: only the middle third of the slices


def _circle(cx: float, cy: float, r: float, z: float, points: int = 8) -> list[str]:
    out: list[str] = []
    for k in range(points):
        a = 2 * math.pi * k / points
        out += [fmt(cx + r * math.cos(a)), fmt(cy + r * math.sin(a)), fmt(z)]
    return out


def structure_set(
    ds: Dataset,
    *,
    label: str,
    for_uid: str,
    study_uid: str,
    series_uid: str,
    image_class: str,
    images: Sequence[tuple[str, float]],
    rois: Sequence[Roi],
) -> None:
    """Structure Set, ROI Contour and RT ROI Observations modules; contours cite the images."""
    ds.StructureSetLabel = label
    ds.StructureSetName = label
    ds.StructureSetDate = ds.StudyDate
    ds.StructureSetTime = ds.StudyTime
    series_item = Dataset()
    series_item.SeriesInstanceUID = series_uid
    series_item.ContourImageSequence = DicomSequence(
        [ref_item(image_class, uid) for uid, _ in images]
    )
    study_item = ref_item(STUDY_COMPONENT_CLASS, study_uid)
    study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = for_uid
    frame_item.RTReferencedStudySequence = DicomSequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])
    n = len(images)
    middle = range(n // 3, max(n // 3 + 1, 2 * n // 3))
    roi_items, contour_items, obs_items = [], [], []
    for roi in rois:
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = for_uid
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(item)
        contours = []
        for index, (uid, z) in enumerate(images):
            if not roi.every_slice and index not in middle:
                continue
            contour = Dataset()
            contour.ContourImageSequence = DicomSequence([ref_item(image_class, uid)])
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = 8
            contour.ContourNumber = index + 1
            contour.ContourData = _circle(roi.center[0], roi.center[1], roi.radius, z)
            contours.append(contour)
        citem = Dataset()
        citem.ROIDisplayColor = list(roi.color)
        citem.ContourSequence = DicomSequence(contours)
        citem.ReferencedROINumber = roi.number
        contour_items.append(citem)
        obs = Dataset()
        obs.ObservationNumber = roi.number
        obs.ReferencedROINumber = roi.number
        obs.RTROIInterpretedType = roi.kind
        obs.ROIInterpreter = ""
        obs_items.append(obs)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(obs_items)
    ds.ApprovalStatus = "APPROVED"


def dicomdir(sop_uid: str) -> Dataset:
    """A minimal, empty DICOMDIR: a Media Storage Directory with no records."""
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(model.MEDIA_STORAGE_DIRECTORY)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.FileSetID = "PHANTOM"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    ds.DirectoryRecordSequence = DicomSequence([])
    return ds
