"""Hard cases for the anonymizer, built with pydicom: SR, presentation state, RT Plan and record, REG, CT with overlay.

Each builder returns a complete object (file meta included) whose identifying
values are the same few needles, so a test can look for them anywhere.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

_UID = re.compile(r"(?<=UID )[\d.]+|\b\d+(?:\.\d+){2,}\b")
NAME = "Müller^Jürgen"
PATIENT_ID = "PID4711X"
BIRTH = "19610302"
TEXT = "Patient Jürgen Müller PID4711X, born 19610302"
MONACO_UID = "1.2.840.10008.5.1.4.1.1.481.3.1700000000"  # Elekta Monaco's habit: class UID + unix time

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
REG_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
PLAN_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
RECORD_CLASS = "1.2.840.10008.5.1.4.1.1.481.4"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def base(sop_class: str, modality: str, sop: str = "1.2.3.4.100") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = NAME, PATIENT_ID, BIRTH, "M"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.1", "1.2.3.4.2"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240115", "101500", "S1", "ACC4711"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, 1
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "General Hospital"
    return ds


def sr() -> Dataset:
    """A Comprehensive SR whose content holds the patient in TEXT, PNAME and DATE items."""
    ds = base(SR_CLASS, "SR")
    ds.ContentDate, ds.ContentTime = "20240116", "120000"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    request = Dataset()
    request.StudyInstanceUID = "1.2.3.4.1"
    request.ReferencedStudySequence = Sequence([Dataset()])
    request.ReferencedStudySequence[0].ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    request.ReferencedStudySequence[0].ReferencedSOPInstanceUID = "1.2.3.4.1"
    request.AccessionNumber = "ACC4711"
    request.PlacerOrderNumberImagingServiceRequest = ""
    request.FillerOrderNumberImagingServiceRequest = ""
    request.RequestedProcedureID = "RP1"
    request.RequestedProcedureDescription = "CT"
    request.RequestedProcedureCodeSequence = Sequence()
    ds.ReferencedRequestSequence = Sequence([request])
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic Imaging Report")])
    items = []
    for vtype, concept, attr, value in (
        ("TEXT", code("121071", "DCM", "Finding"), "TextValue", TEXT),
        ("PNAME", code("121008", "DCM", "Person Observer Name"), "PersonName", NAME),
        ("DATE", code("111060", "DCM", "Study Date"), "Date", BIRTH),
        ("UIDREF", code("121018", "DCM", "Procedure Study Instance UID"), "UID", "1.2.3.4.1"),
    ):
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", vtype
        item.ConceptNameCodeSequence = Sequence([concept])
        setattr(item, attr, value)
        items.append(item)
    coded = Dataset()
    coded.RelationshipType, coded.ValueType = "CONTAINS", "CODE"
    coded.ConceptNameCodeSequence = Sequence([code("121071", "DCM", "Finding")])
    coded.ConceptCodeSequence = Sequence([code("X1", "99LOCAL", "Mueller's tumour")])
    items.append(coded)
    nested_text = Dataset()
    nested_text.RelationshipType, nested_text.ValueType = "CONTAINS", "TEXT"
    nested_text.ConceptNameCodeSequence = Sequence([code("121106", "DCM", "Comment")])
    nested_text.TextValue = "seen by Dr Mueller for PID4711X"
    container = Dataset()
    container.RelationshipType, container.ValueType, container.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
    container.ConceptNameCodeSequence = Sequence([code("121070", "DCM", "Findings")])
    container.ContentSequence = Sequence([nested_text])
    items.append(container)
    ds.ContentSequence = Sequence(items)
    return ds


def gsps() -> Dataset:
    """A grayscale softcopy presentation state with a text annotation naming the patient."""
    ds = base(GSPS_CLASS, "PR")
    ds.Laterality = ""
    ds.ContentLabel, ds.ContentDescription = "ANNOT", "annotation"
    ds.PresentationCreationDate, ds.PresentationCreationTime = "20240116", "120000"
    ds.ContentCreatorName = "Smith^Anna"
    ref_image = Dataset()
    ref_image.ReferencedSOPClassUID, ref_image.ReferencedSOPInstanceUID = CT_CLASS, "1.2.3.4.9"
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = "1.2.3.4.8"
    ref_series.ReferencedImageSequence = Sequence([ref_image])
    ds.ReferencedSeriesSequence = Sequence([ref_series])
    text = Dataset()
    text.UnformattedTextValue = TEXT
    text.AnchorPointAnnotationUnits, text.AnchorPoint, text.AnchorPointVisibility = "PIXEL", [10.0, 10.0], "N"
    annotation = Dataset()
    annotation.GraphicLayer = "LAYER1"
    annotation.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    layer = Dataset()
    layer.GraphicLayer, layer.GraphicLayerOrder = "LAYER1", 1
    ds.GraphicLayerSequence = Sequence([layer])
    area = Dataset()
    area.DisplayedAreaTopLeftHandCorner, area.DisplayedAreaBottomRightHandCorner = [1, 1], [8, 8]
    area.PresentationSizeMode, area.PresentationPixelSpacing = "SCALE TO FIT", [1.0, 1.0]
    ds.DisplayedAreaSelectionSequence = Sequence([area])
    ds.PresentationLUTShape = "IDENTITY"
    return ds


def reg() -> Dataset:
    """A rigid spatial registration: Content Date/Time are Type 1 there."""
    ds = base(REG_CLASS, "REG")
    ds.Laterality, ds.ContentDescription = "", ""
    ds.ContentDate, ds.ContentTime = "20240116", "120000"
    ds.FrameOfReferenceUID = "1.2.3.4.50"
    ds.PositionReferenceIndicator = ""
    ds.ContentLabel = "REG"
    matrix = Dataset()
    matrix.FrameOfReferenceTransformationMatrixType = "RIGID"
    matrix.FrameOfReferenceTransformationMatrix = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    item = Dataset()
    item.FrameOfReferenceUID = "1.2.3.4.51"
    item.RegistrationTypeCodeSequence = Sequence()
    item.MatrixRegistrationSequence = Sequence([Dataset()])
    item.MatrixRegistrationSequence[0].MatrixSequence = Sequence([matrix])
    ds.RegistrationSequence = Sequence([item])
    return ds


def plan() -> Dataset:
    """An RT Plan written by Monaco (instance UID under the DICOM root), one beam."""
    ds = base(PLAN_CLASS, "RTPLAN", sop=MONACO_UID)
    ds.RTPlanLabel, ds.RTPlanDate, ds.RTPlanTime, ds.RTPlanGeometry = "PLAN1", "20240116", "120000", "PATIENT"
    ds.FrameOfReferenceUID = "1.2.3.4.50"
    ds.PositionReferenceIndicator = ""
    ds.OperatorsName = "Tech^Tom"
    beam = Dataset()
    beam.BeamNumber, beam.BeamName, beam.BeamType, beam.RadiationType = 1, "B1", "STATIC", "PHOTON"
    beam.TreatmentMachineName, beam.InstitutionName = "TrueBeam1", "General Hospital"
    beam.PrimaryDosimeterUnit, beam.SourceAxisDistance = "MU", 1000
    beam.TreatmentDeliveryType, beam.NumberOfWedges, beam.NumberOfCompensators = "TREATMENT", 0, 0
    beam.NumberOfBoli, beam.NumberOfBlocks, beam.FinalCumulativeMetersetWeight = 0, 0, 1
    beam.NumberOfControlPoints = 2
    jaws = []
    for kind in ("ASYMX", "ASYMY"):
        jaw = Dataset()
        jaw.RTBeamLimitingDeviceType, jaw.NumberOfLeafJawPairs = kind, 1
        jaws.append(jaw)
    beam.BeamLimitingDeviceSequence = Sequence(jaws)
    cps = []
    for index, weight in ((0, 0), (1, 1)):
        cp = Dataset()
        cp.ControlPointIndex, cp.CumulativeMetersetWeight = index, weight
        if index == 0:
            cp.NominalBeamEnergy, cp.GantryAngle, cp.GantryRotationDirection = 6, 0, "NONE"
            cp.BeamLimitingDeviceAngle, cp.BeamLimitingDeviceRotationDirection = 0, "NONE"
            cp.PatientSupportAngle, cp.PatientSupportRotationDirection = 0, "NONE"
            cp.TableTopEccentricAngle, cp.TableTopEccentricRotationDirection = 0, "NONE"
            cp.IsocenterPosition, cp.SourceToSurfaceDistance = [0, 0, 0], 900
            cp.TableTopVerticalPosition, cp.TableTopLongitudinalPosition, cp.TableTopLateralPosition = 0, 0, 0
            cp.GantryPitchAngle, cp.GantryPitchRotationDirection = 0, "NONE"
        cps.append(cp)
    beam.ControlPointSequence = Sequence(cps)
    ds.BeamSequence = Sequence([beam])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ref.ReferencedSOPInstanceUID = MONACO_UID[:-1] + "1"
    ds.ReferencedStructureSetSequence = Sequence([ref])
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def record() -> Dataset:
    """An RT Beams Treatment Record: Institution Name is Type 2 in its Treatment Machine Sequence."""
    ds = base(RECORD_CLASS, "RTRECORD")
    ds.TreatmentDate, ds.TreatmentTime = "20240201", "080000"
    machine = Dataset()
    machine.TreatmentMachineName, machine.InstitutionName, machine.Manufacturer = "TB1", "General Hospital", "V"
    ds.TreatmentMachineSequence = Sequence([machine])
    return ds


def ct_with_overlay() -> Dataset:
    """An 8x8 CT slice with one overlay plane (group 6000) and its comments."""
    ds = base(CT_CLASS, "CT")
    ds.Laterality = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ContentDate, ds.ContentTime, ds.AcquisitionNumber = "20240115", "101500", 1
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = "1.2.3.4.50", ""
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.SliceThickness, ds.PixelSpacing = 1, [1, 1]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.KVP = 0, 1, 120
    ds.PixelData = b"\0\0" * 64
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60004000, "LT", "drawn by Dr Mueller")
    ds.add_new(0x60000022, "LO", "Mueller contour")  # Overlay Description
    ds.add_new(0x60003000, "OW", b"\xff\x00" * 4)
    ds.TimezoneOffsetFromUTC = "+0100"
    return ds


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy prints for a file, for comparing an input with its output."""
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, errors="replace", check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    # a message naming a UID names the new one after anonymizing: compare with UIDs blanked out
    return sorted({_UID.sub("<uid>", line.split(" - ", 1)[-1].strip()) for line in lines if line.startswith("Error")})
