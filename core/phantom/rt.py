"""Builders for the phantom's RT objects: plans, doses, RT images, records, registration.

Small but complete enough that pydicom, dcmtk and Orthanc accept them; every
value comes from the arguments (no clock, no randomness).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicomtools.core.archive import model
from dicomtools.core.phantom.iod import fmt, pixels_disc, ref_item

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Beam:
    number: int
    name: str
    machine: str  # "" writes a present, zero-length Treatment Machine Name
    model: str
    gantry: float
    meterset: float
    drr_uid: str | None = None


def _control_points(beam: Beam, ion: bool) -> DicomSequence:
    points = []
    for index, weight in enumerate((0.0, 1.0)):
        cp = Dataset()
        cp.ControlPointIndex = index
        cp.CumulativeMetersetWeight = fmt(weight)
        if index == 0:
            cp.NominalBeamEnergy = "150" if ion else "6"
            cp.GantryAngle = fmt(beam.gantry)
            cp.GantryRotationDirection = "NONE"
            cp.BeamLimitingDeviceAngle = "0"
            cp.BeamLimitingDeviceRotationDirection = "NONE"
            cp.PatientSupportAngle = "0"
            cp.PatientSupportRotationDirection = "NONE"
            cp.TableTopEccentricAngle = "0"
            cp.TableTopEccentricRotationDirection = "NONE"
            cp.IsocenterPosition = ["0", "0", "0"]
            if ion:
                cp.ScanSpotTuneID = "3.0"
                cp.NumberOfScanSpotPositions = 1
                cp.ScanSpotPositionMap = [0.0, 0.0]
                cp.ScanSpotMetersetWeights = [1.0]
                cp.NumberOfPaintings = 1
            else:
                cp.SourceToSurfaceDistance = "900"
        points.append(cp)
    return DicomSequence(points)


def rt_plan(
    ds: Dataset,
    *,
    label: str,
    intent: str,
    approval: str,
    beams: Sequence[Beam],
    structure_set_uid: str,
    for_uid: str,
    ion: bool = False,
    verified_plan_uid: str | None = None,
) -> None:
    """RT General Plan, Patient Setup, Fraction Scheme, (Ion) Beams, Approval modules."""
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.RTPlanLabel = label
    ds.RTPlanName = label
    ds.RTPlanDate = ds.StudyDate
    ds.RTPlanTime = ds.StudyTime
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = intent
    ds.ReferencedStructureSetSequence = DicomSequence(
        [ref_item(model.RT_STRUCT, structure_set_uid)]
    )
    if verified_plan_uid:
        ref = ref_item(model.RT_PLAN, verified_plan_uid)
        ref.RTPlanRelationship = "VERIFIED_PLAN"
        ds.ReferencedRTPlanSequence = DicomSequence([ref])
    setup = Dataset()
    setup.PatientPosition = "HFS"
    setup.PatientSetupNumber = 1
    ds.PatientSetupSequence = DicomSequence([setup])
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = 30 if intent != "VERIFICATION" else 1
    group.NumberOfBeams = len(beams)
    group.NumberOfBrachyApplicationSetups = 0
    refs = []
    for beam in beams:
        ref = Dataset()
        ref.BeamMeterset = fmt(beam.meterset)
        ref.ReferencedBeamNumber = beam.number
        refs.append(ref)
    group.ReferencedBeamSequence = DicomSequence(refs)
    ds.FractionGroupSequence = DicomSequence([group])
    items = []
    for beam in beams:
        item = Dataset()
        item.Manufacturer = "Varian Medical Systems"
        item.InstitutionName = "DEMO HOSPITAL"
        item.ManufacturerModelName = beam.model
        item.TreatmentMachineName = beam.machine
        item.PrimaryDosimeterUnit = "MU"
        item.BeamNumber = beam.number
        item.BeamName = beam.name
        item.BeamType = "STATIC"
        item.RadiationType = "PROTON" if ion else "PHOTON"
        item.TreatmentDeliveryType = "TREATMENT"
        item.NumberOfWedges = 0
        item.NumberOfCompensators = 0
        item.NumberOfBoli = 0
        item.NumberOfBlocks = 0
        item.FinalCumulativeMetersetWeight = "1"
        item.NumberOfControlPoints = 2
        item.ReferencedPatientSetupNumber = 1
        if ion:
            item.ScanMode = "MODULATED"
            item.VirtualSourceAxisDistances = [2000.0, 2000.0]
            item.NumberOfRangeShifters = 0
            item.NumberOfLateralSpreadingDevices = 0
            item.NumberOfRangeModulators = 0
            item.PatientSupportType = "TABLE"
            item.IonControlPointSequence = _control_points(beam, ion=True)
        else:
            item.SourceAxisDistance = "1000"
            item.ControlPointSequence = _control_points(beam, ion=False)
        if beam.drr_uid:
            item.ReferencedReferenceImageSequence = DicomSequence(
                [ref_item(model.RT_IMAGE, beam.drr_uid)]
            )
        items.append(item)
    if ion:
        ds.IonBeamSequence = DicomSequence(items)
    else:
        ds.BeamSequence = DicomSequence(items)
    ds.ApprovalStatus = approval
    if approval == "APPROVED":
        ds.ReviewDate = ds.StudyDate
        ds.ReviewTime = ds.StudyTime
        ds.ReviewerName = "PHYSICIST^FAKE"


def _plan_ref(plan_class: str, plan_uid: str) -> DicomSequence:
    return DicomSequence([ref_item(plan_class, plan_uid)])


def rt_dose(
    ds: Dataset,
    *,
    for_uid: str,
    summation: str,
    plan_class: str,
    plan_uid: str,
    beam_number: int | None = None,
    grid: int = 8,
    frames: int = 3,
) -> None:
    """RT Dose module on a small grid; (300C,0002) names the plan, BEAM doses the beam too."""
    ref = ref_item(plan_class, plan_uid)
    if beam_number is not None:
        beam_ref = Dataset()
        beam_ref.ReferencedBeamNumber = beam_number
        fg = Dataset()
        fg.ReferencedBeamSequence = DicomSequence([beam_ref])
        fg.ReferencedFractionGroupNumber = 1
        ref.ReferencedFractionGroupSequence = DicomSequence([fg])
    ds.ReferencedRTPlanSequence = DicomSequence([ref])
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = "5"
    ds.ImagePositionPatient = ["-100", "-100", "-10"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = ["25", "25"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x3004000C
    ds.GridFrameOffsetVector = [fmt(5.0 * k) for k in range(frames)]
    ds.Rows = grid
    ds.Columns = grid
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    ds.DoseGridScaling = "0.001"
    ds.PixelData = b"".join(
        pixels_disc(grid, grid, 2000 + 100 * k, 0, 2100 + 100 * k, k) for k in range(frames)
    )


def rt_image(
    ds: Dataset,
    *,
    label: str,
    drr: bool,
    gantry: float,
    plan_class: str = "",
    plan_uid: str | None = None,
    beam_number: int | None = None,
    rows: int = 16,
) -> None:
    """RT Image module: a DRR (workstation) or a portal image (digital interface)."""
    ds.ImageType = ["DERIVED", "SECONDARY", "DRR"] if drr else ["ORIGINAL", "PRIMARY", "PORTAL"]
    ds.ConversionType = "WSD" if drr else "DI"
    ds.RTImageLabel = label
    ds.RTImageName = label
    ds.RTImagePlane = "NORMAL"
    ds.XRayImageReceptorAngle = "0"
    ds.ImagePlanePixelSpacing = ["1", "1"]
    ds.RTImagePosition = [fmt(-rows / 2 + 0.5), fmt(rows / 2 - 0.5)]
    ds.RadiationMachineSAD = "1000"
    ds.RTImageSID = "1500" if not drr else "1000"
    ds.GantryAngle = fmt(gantry)
    ds.PrimaryDosimeterUnit = "MU"
    if plan_uid:
        ds.ReferencedRTPlanSequence = _plan_ref(plan_class, plan_uid)
    if beam_number is not None:
        ds.ReferencedBeamNumber = beam_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels_disc(rows, rows, 1500, 300, 2500, int(gantry) // 90)


def beams_record(
    ds: Dataset,
    *,
    plan_class: str,
    plan_uid: str,
    beam_number: int,
    beam_name: str,
    fraction: int,
    date: str,
    time: str,
    machine: str,
) -> None:
    """RT General Treatment Record and RT Beams Session Record modules for one beam delivery."""
    ds.TreatmentDate = date
    ds.TreatmentTime = time
    ds.ReferencedRTPlanSequence = _plan_ref(plan_class, plan_uid)
    machine_item = Dataset()
    machine_item.TreatmentMachineName = machine
    machine_item.Manufacturer = "Varian Medical Systems"
    machine_item.InstitutionName = "DEMO HOSPITAL"
    ds.TreatmentMachineSequence = DicomSequence([machine_item])
    ds.NumberOfFractionsPlanned = 30
    ds.PrimaryDosimeterUnit = "MU"
    session = Dataset()
    session.ReferencedBeamNumber = beam_number
    session.BeamName = beam_name
    session.BeamType = "STATIC"
    session.RadiationType = "PHOTON"
    session.TreatmentDeliveryType = "TREATMENT"
    session.CurrentFractionNumber = fraction
    session.TreatmentTerminationStatus = "NORMAL"
    session.TreatmentVerificationStatus = "VERIFIED"
    session.SpecifiedPrimaryMeterset = "100"
    session.DeliveredPrimaryMeterset = "100"
    session.NumberOfWedges = 0
    session.NumberOfCompensators = 0
    session.NumberOfBoli = 0
    session.NumberOfBlocks = 0
    session.NumberOfControlPoints = 0
    ds.TreatmentSessionBeamSequence = DicomSequence([session])


def treatment_summary(ds: Dataset, *, first: str, last: str) -> None:
    """RT Treatment Summary Record: the 'other' object a tree leaves unconnected."""
    ds.CurrentTreatmentStatus = "COMPLETED"
    ds.FirstTreatmentDate = first
    ds.MostRecentTreatmentDate = last


def rigid_matrix(degrees: float, shift: tuple[float, float, float]) -> list[str]:
    """A 4x4 row-major rotation about z plus translation, as DS strings."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rows = [[c, -s, 0.0, shift[0]], [s, c, 0.0, shift[1]], [0.0, 0.0, 1.0, shift[2]]]
    return [fmt(v) for row in rows for v in row] + ["0", "0", "0", "1"]


def _series_ref(series_uid: str, image_class: str, uids: Sequence[str]) -> Dataset:
    item = Dataset()
    item.ReferencedInstanceSequence = DicomSequence([ref_item(image_class, u) for u in uids])
    item.SeriesInstanceUID = series_uid
    return item


def spatial_registration(
    ds: Dataset,
    *,
    fixed_for: str,
    moving_for: str,
    moving_matrix: list[str],
    moving_series: tuple[str, str, Sequence[str]],
    fixed_study_uid: str,
    fixed_series: tuple[str, str, Sequence[str]],
) -> None:
    """Spatial Registration: fixed frame identity, moving frame rigid; series in both refs."""
    ds.FrameOfReferenceUID = fixed_for
    ds.PositionReferenceIndicator = ""
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.ContentLabel = "REG"
    ds.ContentDescription = "MR to CT"
    ds.ContentCreatorName = "PHYSICIST^FAKE"
    items = []
    for for_uid, matrix in ((fixed_for, rigid_matrix(0, (0, 0, 0))), (moving_for, moving_matrix)):
        m = Dataset()
        m.FrameOfReferenceTransformationMatrixType = "RIGID"
        m.FrameOfReferenceTransformationMatrix = matrix
        reg = Dataset()
        reg.MatrixSequence = DicomSequence([m])
        item = Dataset()
        item.FrameOfReferenceUID = for_uid
        item.MatrixRegistrationSequence = DicomSequence([reg])
        items.append(item)
    ds.RegistrationSequence = DicomSequence(items)
    ds.ReferencedSeriesSequence = DicomSequence([_series_ref(*moving_series)])
    other = Dataset()
    other.ReferencedSeriesSequence = DicomSequence([_series_ref(*fixed_series)])
    other.StudyInstanceUID = fixed_study_uid
    ds.StudiesContainingOtherReferencedInstancesSequence = DicomSequence([other])
