"""A clinic-like RT archive for the benchmarks: full-size objects, not 8x8 slices.

Per patient: a 512x512 planning CT (150 slices), a structure set (30 ROIs x 150 contours
of 64 points, each contour citing its slice), two VMAT plans (2 arcs x 178 control points
with 60 MLC leaf pairs) each with a multi-frame PLAN dose, one DRR per arc and beams
treatment records, and a CBCT citing the first plan. Written with pydicom from the
phantom's module builders (``core/phantom/iod.py``, ``core/phantom/rt.py``); deterministic UIDs,
clearly fake patients. A marker file makes a second call with the same sizes a no-op.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicomtools.core.archive import model
from dicomtools.core.phantom.iod import (
    CT_IMAGE,
    Patient,
    Roi,
    Series,
    Study,
    base,
    fmt,
    image_slice,
    make_uid,
    ref_item,
    structure_set,
)
from dicomtools.core.phantom.rt import Beam, beams_record, rt_dose, rt_image, rt_plan

DATE = "20250310"


@dataclass(frozen=True)
class Sizes:
    patients: int = 3
    ct_slices: int = 150
    matrix: int = 512
    rois: int = 30
    contour_points: int = 64
    plans: int = 2
    arcs: int = 2
    control_points: int = 178
    leaf_pairs: int = 60
    dose_grid: int = 128
    dose_frames: int = 100
    cbct_slices: int = 88
    fractions: int = 3

    @classmethod
    def small(cls, patients: int = 2) -> Sizes:
        """A quick variant for checking the scripts (same objects, small matrices)."""
        return cls(patients=patients, ct_slices=20, matrix=64, rois=6, contour_points=16, control_points=30,
                   dose_grid=16, dose_frames=10, cbct_slices=8, fractions=1)

    def marker(self) -> str:
        return ".dicomtools-realistic-" + "-".join(str(v) for v in asdict(self).values())


def _pixels(matrix: int, k: int) -> bytes:
    """A body-like ellipse with a little structure, different for every slice."""
    y, x = np.mgrid[0:matrix, 0:matrix]
    c = (matrix - 1) / 2
    body = ((x - c) / (0.45 * matrix)) ** 2 + ((y - c) / (0.35 * matrix)) ** 2 <= 1
    img = np.where(body, 1024 + ((x * 7 + y * 3 + k * 11) % 64), 0).astype("<u2")
    return img.tobytes()


def _circle(cx: float, cy: float, r: float, z: float, points: int) -> list[str]:
    out: list[str] = []
    for k in range(points):
        a = 2 * math.pi * k / points
        out += [fmt(cx + r * math.cos(a)), fmt(cy + r * math.sin(a)), fmt(z)]
    return out


class _PatientWriter:
    def __init__(self, root: Path, index: int, sizes: Sizes) -> None:
        self.s = sizes
        self.pid = f"REAL-{index + 1:03d}"
        self.p = Patient(self.pid, f"REALISTIC^PATIENT{index + 1}", "", "19600101", "O")
        self.study = Study(self.uid("study"), DATE, "080000", "1", "RT PLANNING", f"R{index + 1:05d}")
        self.dir = root / self.pid
        self.series_number = 0
        self.files = 0
        self.bytes = 0

    def uid(self, *role: object) -> str:
        return make_uid("dicomtools-realistic", self.pid, *role)

    def ds(self, sop_class: str, role: tuple[object, ...], modality: str, description: str,
           series_role: str | None = None, number: int = 1) -> Dataset:
        self.series_number += 1 if number == 1 else 0
        series = Series(self.uid("series", series_role or role[0]), self.series_number, modality, description)
        return base(sop_class, self.uid("sop", *role), self.p, self.study, series, number)

    def save(self, rel: str, ds: Dataset) -> str:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        self.files += 1
        self.bytes += path.stat().st_size
        return str(ds.SOPInstanceUID)

    def image_series(self, role: str, description: str, count: int, for_uid: str,
                     plan_uid: str | None = None) -> list[tuple[str, float]]:
        images = []
        spacing = 500.0 / self.s.matrix
        for k in range(count):
            z = 2.0 * (k - (count - 1) / 2)
            ds = self.ds(CT_IMAGE, (role, k), "CT", description, role, k + 1)
            image_slice(ds, rows=self.s.matrix, spacing=spacing, thickness=2.0, z=z, for_uid=for_uid,
                        pixels=_pixels(self.s.matrix, k), ct=True)
            if plan_uid:  # a CBCT: the image type and the plan it was taken for (as ARIA writes it)
                ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "CBCT"]
                ds.ReferencedInstanceSequence = [ref_item(model.RT_PLAN, plan_uid)]
            images.append((self.save(f"{role.upper()}/CT.{ds.SOPInstanceUID}.dcm", ds), z))
        return images

    def structures(self, for_uid: str, images: list[tuple[str, float]]) -> str:
        ds = self.ds(model.RT_STRUCT, ("rtstruct",), "RTSTRUCT", "CT_1")
        rois = [Roi(n + 1, f"ROI_{n + 1:02d}", "ORGAN" if n else "EXTERNAL", (n * 8 % 256, 128, 255 - n * 8 % 256),
                    20.0 + 4 * n, (0.0, 0.0), True) for n in range(self.s.rois)]
        structure_set(ds, label="CT_1", for_uid=for_uid, study_uid=self.study.uid,
                      series_uid=self.uid("series", "ct"), image_class=CT_IMAGE, images=images, rois=rois)
        for roi, item in zip(rois, ds.ROIContourSequence, strict=True):
            for contour, (_, z) in zip(item.ContourSequence, images, strict=True):
                contour.NumberOfContourPoints = self.s.contour_points
                contour.ContourData = _circle(0.0, 0.0, roi.radius, z, self.s.contour_points)
        return self.save("RTSTRUCT/RS.CT_1.dcm", ds)

    def vmat_points(self, arc: int) -> DicomSequence:
        n, pairs = self.s.control_points, self.s.leaf_pairs
        clockwise = arc % 2 == 1
        points = []
        for i in range(n):
            cp = Dataset()
            cp.ControlPointIndex = i
            gantry = (181.0 + 358.0 * i / (n - 1)) % 360 if clockwise else (179.0 - 358.0 * i / (n - 1)) % 360
            mlc = Dataset()
            mlc.RTBeamLimitingDeviceType = "MLCX"
            opening = [5.0 + 3.0 * math.sin(i / 7 + leaf / 5) for leaf in range(pairs)]
            mlc.LeafJawPositions = [fmt(-o) for o in opening] + [fmt(o) for o in opening]
            if i == 0:
                cp.NominalBeamEnergy = "6"
                cp.DoseRateSet = "600"
                cp.GantryRotationDirection = "CW" if clockwise else "CC"
                cp.BeamLimitingDeviceAngle = "30" if clockwise else "330"
                cp.BeamLimitingDeviceRotationDirection = "NONE"
                cp.PatientSupportAngle = "0"
                cp.PatientSupportRotationDirection = "NONE"
                cp.TableTopEccentricAngle = "0"
                cp.TableTopEccentricRotationDirection = "NONE"
                cp.IsocenterPosition = ["0", "0", "0"]
                cp.SourceToSurfaceDistance = "912.3"
                jaws = []
                for kind in ("ASYMX", "ASYMY"):
                    jaw = Dataset()
                    jaw.RTBeamLimitingDeviceType = kind
                    jaw.LeafJawPositions = ["-60", "60"]
                    jaws.append(jaw)
                cp.BeamLimitingDevicePositionSequence = DicomSequence([*jaws, mlc])
            else:
                cp.BeamLimitingDevicePositionSequence = DicomSequence([mlc])
            cp.GantryAngle = fmt(gantry)
            cp.CumulativeMetersetWeight = fmt(i / (n - 1))
            points.append(cp)
        return DicomSequence(points)

    def devices(self) -> DicomSequence:
        items = []
        for kind, count in (("ASYMX", 1), ("ASYMY", 1), ("MLCX", self.s.leaf_pairs)):
            d = Dataset()
            d.RTBeamLimitingDeviceType = kind
            d.NumberOfLeafJawPairs = count
            if kind == "MLCX":
                d.LeafPositionBoundaries = [fmt(-200.0 + 400.0 * k / count) for k in range(count + 1)]
            items.append(d)
        return DicomSequence(items)

    def plan(self, k: int, for_uid: str, ss_uid: str) -> str:
        label = f"VMAT_{k + 1}"
        plan_uid = self.uid("sop", "plan", k)
        drrs = {}
        for arc in range(1, self.s.arcs + 1):
            ds = self.ds(model.RT_IMAGE, ("drr", k, arc), "RTIMAGE", f"{label} DRR")
            rt_image(ds, label=f"DRR{arc}", drr=True, gantry=0.0, plan_class=model.RT_PLAN, plan_uid=plan_uid,
                     beam_number=arc, rows=8)
            m = self.s.matrix
            ds.Rows = ds.Columns = m
            ds.RTImagePosition = [fmt(-m / 2 + 0.5), fmt(m / 2 - 0.5)]
            ds.PixelData = _pixels(m, arc)
            drrs[arc] = self.save(f"RTIMAGE/RI.{label}.DRR{arc}.dcm", ds)
        beams = [Beam(arc, f"ARC{arc}", "TrueBeam1", "TDS", 181.0, 250.0, drrs[arc])
                 for arc in range(1, self.s.arcs + 1)]
        ds = self.ds(model.RT_PLAN, ("plan", k), "RTPLAN", label)
        rt_plan(ds, label=label, intent="CURATIVE", approval="APPROVED", beams=beams,
                structure_set_uid=ss_uid, for_uid=for_uid)
        for arc, beam in enumerate(ds.BeamSequence, start=1):
            beam.BeamType = "DYNAMIC"
            beam.BeamLimitingDeviceSequence = self.devices()
            beam.NumberOfControlPoints = self.s.control_points
            beam.ControlPointSequence = self.vmat_points(arc)
        self.save(f"RTPLAN/RP.{label}.dcm", ds)
        dose = self.ds(model.RT_DOSE, ("dose", k), "RTDOSE", f"{label} PLAN DOSE")
        rt_dose(dose, for_uid=for_uid, summation="PLAN", plan_class=model.RT_PLAN, plan_uid=plan_uid, grid=4,
                frames=2)
        g, f = self.s.dose_grid, self.s.dose_frames
        dose.Rows = dose.Columns = g
        dose.NumberOfFrames = f
        dose.PixelSpacing = ["2.5", "2.5"]
        dose.GridFrameOffsetVector = [fmt(2.5 * z) for z in range(f)]
        dose.PixelData = b"".join(_pixels(g, z) for z in range(f))
        self.save(f"RTDOSE/RD.{label}.dcm", dose)
        for fraction in range(1, self.s.fractions + 1):
            for arc in range(1, self.s.arcs + 1):
                rec = self.ds(model.RT_BEAMS_RECORD, ("record", k, fraction, arc), "RTRECORD", f"{label} F{fraction}")
                beams_record(rec, plan_class=model.RT_PLAN, plan_uid=plan_uid, beam_number=arc, beam_name=f"ARC{arc}",
                             fraction=fraction, date=DATE, time="090000", machine="TrueBeam1")
                self.save(f"RTRECORD/RT.{label}.F{fraction}.B{arc}.dcm", rec)
        return plan_uid

    def write(self) -> None:
        for_uid = self.uid("for")
        images = self.image_series("ct", "PLANNING CT", self.s.ct_slices, for_uid)
        ss_uid = self.structures(for_uid, images)
        plan_uids = [self.plan(k, for_uid, ss_uid) for k in range(self.s.plans)]
        self.image_series("cbct", "CBCT", self.s.cbct_slices, for_uid, plan_uid=plan_uids[0])


def make_realistic(root: Path, sizes: Sizes) -> tuple[int, int]:
    """Write the archive (reused when the marker says it has these sizes); (files, bytes)."""
    marker = root / sizes.marker()
    if marker.exists():
        files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
        return len(files), sum(p.stat().st_size for p in files)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t = time.perf_counter()
    files = size = 0
    for index in range(sizes.patients):
        w = _PatientWriter(root, index, sizes)
        w.write()
        files, size = files + w.files, size + w.bytes
    marker.write_text("benchmark archive (fake patients)\n")
    print(f"wrote {files} files, {size / 1e6:.0f} MB, {sizes.patients} patients in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)
    return files, size


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Write the realistic benchmark archive (fake patients).")
    ap.add_argument("dir", help="output folder (reused when it already holds these sizes)")
    ap.add_argument("--patients", type=int, default=Sizes.patients)
    ap.add_argument("--small", action="store_true", help="small matrices and counts")
    args = ap.parse_args()
    sizes = Sizes.small(args.patients) if args.small else Sizes(patients=args.patients)
    files, size = make_realistic(Path(args.dir), sizes)
    print(f"{files} files, {size / 1e6:.0f} MB in {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
