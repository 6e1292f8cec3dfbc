"""A study held in many transfer syntaxes and SOP classes, as a PACS holds one.

Compressed by dcmtk (``dcmcjpeg``, ``dcmcjpls``, ``dcmcrle``) from our CT
slices, plus pydicom's own JPEG 2000, JPEG baseline and deflated test files
(their pixel data untouched, only patient and study re-labelled), plus a
Grayscale Softcopy Presentation State and a Key Object Selection written by
hand: classes outside the usual RT list.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtools.core.phantom import write_ct_series
from tests.net.peers import find_binary

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
KOS = "1.2.840.10008.5.1.4.1.1.88.59"

# (dcmtk tool, options) for CT slices 1..6; slice 0 stays explicit VR little endian
DCMTK = [("dcmcjpeg", []), ("dcmcjpeg", ["+ee"]), ("dcmcjpeg", ["+el"]), ("dcmcjpls", []),
         ("dcmcjpls", ["+en"]), ("dcmcrle", [])]
PYDICOM_FILES = ["MR_small_jp2klossless.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "image_dfl.dcm"]


@dataclass
class Study:
    files: list[Path]
    syntax: dict[str, str]  # SOP Instance UID -> transfer syntax as held
    sop_class: dict[str, str]  # SOP Instance UID -> SOP Class UID
    study_uid: str


def _hand_made(cls: str, modality: str, pid: str, name: str, study_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = cls
    ds.SOPClassUID = cls
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.PatientName = pid, name
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.Modality = modality
    ds.SeriesNumber, ds.InstanceNumber = 90, 1
    ds.ContentLabel = "TEST"
    return ds


def make_study(root: Path, pid: str, name: str = "TEST^COMPRESSED") -> Study:
    """13 instances of one patient and study: 7 CT in 7 syntaxes, 4 pydicom files, GSPS and KOS."""
    root.mkdir(parents=True, exist_ok=True)
    ct = write_ct_series(root / "raw", 1 + len(DCMTK), patient_id=pid)
    out = root / "held"
    out.mkdir(exist_ok=True)
    files: list[Path] = []
    shutil.copy(ct[0], out / "ct0.dcm")
    files.append(out / "ct0.dcm")
    for n, (tool, opts) in enumerate(DCMTK, 1):
        target = out / f"ct{n}.dcm"
        subprocess.run([find_binary(tool), *opts, str(ct[n]), str(target)], check=True, capture_output=True)
        files.append(target)
    study_uid = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    for n, fname in enumerate(PYDICOM_FILES):
        ds = dcmread(str(get_testdata_file(fname)))
        ds.PatientID, ds.PatientName = pid, name
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = 50 + n
        target = out / f"py{n}.dcm"
        ds.save_as(target)  # pixel data stays encoded as it was
        files.append(target)
    for cls, modality, fname in ((GSPS, "PR", "gsps.dcm"), (KOS, "KO", "kos.dcm")):
        ds = _hand_made(cls, modality, pid, name, study_uid)
        ds.save_as(out / fname, enforce_file_format=True)
        files.append(out / fname)
    syntax, classes = {}, {}
    for p in files:
        ds = dcmread(p, stop_before_pixels=True)
        syntax[str(ds.SOPInstanceUID)] = str(ds.file_meta.TransferSyntaxUID)
        classes[str(ds.SOPInstanceUID)] = str(ds.SOPClassUID)
    assert len(set(syntax.values())) == 11, sorted(set(syntax.values()))  # each syntax really there
    return Study(files, syntax, classes, study_uid)
