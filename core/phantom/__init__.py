"""Synthetic, clearly fake RT patients: the archive behind `dicomtools demo`, the tests and benchmarks.

:func:`generate` writes a deterministic, cross-referenced archive (same seed,
same bytes: fixed dates, UIDs hashed from the seed and the object's role) and
returns a :class:`PhantomManifest` saying exactly what is where, so tree,
search, store and anonymize tests can assert on it. Layout per patient::

    PHANTOM-001/2024-01-15/{CT,MR,CBCT,RTSTRUCT,RTPLAN,RTDOSE,RTIMAGE,RTRECORD}/...
    PHANTOM-001/misc/REG.1.dcm
    PHANTOM-001/2019-06-03/...        the unconnected "old" study
    _misc/                            broken files (``broken=True``)
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from dicomtools.core.archive import model
from dicomtools.core.atomic import atomic_writer
from dicomtools.core.phantom.bulk import write_ct_series, write_junk
from dicomtools.core.phantom.iod import (
    CT_IMAGE,
    MR_IMAGE,
    Patient,
    Roi,
    Series,
    Study,
    base,
    dicomdir,
    image_slice,
    make_uid,
    pixels_disc,
    ref_item,
    structure_set,
)
from dicomtools.core.phantom.manifest import (
    FileEntry,
    PatientManifest,
    PhantomManifest,
    PlanManifest,
    UnconnectedManifest,
)
from dicomtools.core.phantom.rt import (
    Beam,
    beams_record,
    rigid_matrix,
    rt_dose,
    rt_image,
    rt_plan,
    spatial_registration,
    treatment_summary,
)
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

__all__ = [
    "FileEntry",
    "PatientManifest",
    "PhantomManifest",
    "PlanManifest",
    "UnconnectedManifest",
    "generate",
    "patient_id_for",
    "write_ct_series",
    "write_junk",
]

log = logging.getLogger(__name__)

NATO = ("ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIETT KILO LIMA MIKE "
        "NOVEMBER OSCAR PAPA QUEBEC ROMEO SIERRA TANGO UNIFORM VICTOR WHISKEY XRAY YANKEE "
        "ZULU").split()
PLANNING_DATE, OLD_DATE = "20240115", "20190603"
MR_SLICES, CBCT_SLICES, OLD_CT_SLICES = 6, 3, 5
TREATMENT_DATES = {1: "20240201", 2: "20240202"}


def patient_id_for(index: int) -> str:
    return f"PHANTOM-{index + 1:03d}"


def _patient(index: int) -> Patient:
    word = NATO[index % len(NATO)] + (str(index // len(NATO) + 1) if index >= len(NATO) else "")
    if index == 1:  # one real non-ASCII name for the search and anonymize tests
        return Patient(patient_id_for(index), f"PHANTÖM^{word}", "ISO_IR 100", "19620704", "F")
    sex = "MFO"[index % 3]
    return Patient(patient_id_for(index), f"PHANTOM^{word}", "", f"19{50 + index % 40}0101", sex)


class _Writer:
    """Writes files under the root (always atomically) and books them in the manifest."""

    def __init__(self, root: Path, manifest: PhantomManifest) -> None:
        self.root = root
        self.manifest = manifest

    def save(self, rel: str, ds: Dataset, pm: PatientManifest) -> str:
        with atomic_writer(self.root / rel) as fh:
            ds.save_as(fh, enforce_file_format=True)
        return self.book(rel, ds, pm)

    def save_raw_dataset(self, rel: str, ds: Dataset, pm: PatientManifest) -> str:
        """Implicit VR, no preamble, no DICM, no file meta: what some old exporters write."""
        del ds.file_meta
        ds.preamble = None
        with atomic_writer(self.root / rel) as fh:
            ds.save_as(fh, implicit_vr=True, little_endian=True, enforce_file_format=False)
        self.manifest.no_preamble_files.append(rel)
        return self.book(rel, ds, pm)

    def save_bytes(self, rel: str, data: bytes) -> None:
        with atomic_writer(self.root / rel) as fh:
            fh.write(data)

    def book(self, rel: str, ds: Dataset, pm: PatientManifest) -> str:
        uid = str(ds.SOPInstanceUID)
        self.manifest.files[rel] = FileEntry(uid, str(ds.SOPClassUID), pm.patient_id)
        pm.all_sop_uids.add(uid)
        return uid


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class _PatientBuilder:
    """Writes one patient; every object gets its own series, UIDs hashed from its role."""

    def __init__(self, writer: _Writer, index: int, seed: int, ct_slices: int) -> None:
        self.w = writer
        self.p = _patient(index)
        self.seed = seed
        self.ct_slices = ct_slices
        self.pm = PatientManifest(self.p.patient_id, self.p.name,
                                  specific_character_set=self.p.charset)
        pid = self.p.patient_id
        self.top = f"{pid}/{PLANNING_DATE[:4]}-{PLANNING_DATE[4:6]}-{PLANNING_DATE[6:]}"
        self.old = f"{pid}/{OLD_DATE[:4]}-{OLD_DATE[4:6]}-{OLD_DATE[6:]}"
        n = index + 1
        self.study = Study(self.uid("study", "planning"), PLANNING_DATE, "093000", "PLAN1",
                           "PLANNING", f"A{n:04d}01")
        self.old_study = Study(self.uid("study", "old"), OLD_DATE, "101500", "OLD1",
                               "OLD IMAGING", f"A{n:04d}02")
        self.series_counter = 0

    def uid(self, *role: object) -> str:
        return make_uid("dicomtools-phantom", self.seed, self.p.patient_id, *role)

    def series(self, role: str, modality: str, description: str) -> Series:
        self.series_counter += 1
        return Series(self.uid("series", role), self.series_counter, modality, description)

    def base(self, sop_class: str, role: tuple[object, ...], series: Series,
             number: int = 1, study: Study | None = None) -> Dataset:
        return base(sop_class, self.uid("sop", *role), self.p, study or self.study, series,
                    number)

    # -- images -----------------------------------------------------------------------------
    def image_series(self, role: str, modality: str, description: str, count: int,
                     for_uid: str, folder: str, name: str, study: Study | None = None,
                     raw_index: int | None = None) -> tuple[Series, list[tuple[str, float]]]:
        series = self.series(role, modality, description)
        sop_class = CT_IMAGE if modality == "CT" else MR_IMAGE
        images: list[tuple[str, float]] = []
        for k in range(count):
            z = 3.0 * (k - (count - 1) / 2)
            ds = self.base(sop_class, (role, k), series, k + 1, study)
            image_slice(ds, rows=16, spacing=25.0, thickness=3.0, z=z, for_uid=for_uid,
                        pixels=pixels_disc(16, 16, 1024 if modality == "CT" else 800,
                                           0, 1100 if modality == "CT" else 1600, k),
                        ct=modality == "CT")
            if role == "cbct":
                ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "CBCT"]
                ds.ReferencedInstanceSequence = [ref_item(model.RT_PLAN, self.uid("sop", "PLAN_A"))]
            rel = f"{folder}/{name.format(n=k + 1)}"
            if raw_index == k:
                self.w.save_raw_dataset(rel, ds, self.pm)
            else:
                self.w.save(rel, ds, self.pm)
            images.append((str(ds.SOPInstanceUID), z))
        return series, images

    def struct(self, label: str, for_uid: str, series: Series, image_class: str,
               images: list[tuple[str, float]], rois: list[Roi], folder: str,
               study: Study | None = None) -> str:
        s = self.series(label, "RTSTRUCT", label)
        ds = self.base(model.RT_STRUCT, (label,), s, study=study)
        structure_set(ds, label=label, for_uid=for_uid, study_uid=(study or self.study).uid,
                      series_uid=series.uid, image_class=image_class, images=images, rois=rois)
        return self.w.save(f"{folder}/RS.{label}.dcm", ds, self.pm)

    # -- the whole patient ------------------------------------------------------------------
    def build(self, raw_old_slice: bool) -> PatientManifest:
        for_ct, for_mr, for_old = self.uid("for", "ct"), self.uid("for", "mr"), self.uid("for", "old")
        ct, ct_images = self.image_series("ct", "CT", "PLANNING CT", self.ct_slices, for_ct,
                                          f"{self.top}/CT", "CT.{n}.dcm")
        mr, mr_images = self.image_series("mr", "MR", "T1 AX", MR_SLICES, for_mr,
                                          f"{self.top}/MR", "MR.{n}.DCM")
        rois = [Roi(1, "BODY", "EXTERNAL", (0, 255, 0), 160.0, (0.0, 0.0), True),
                Roi(2, "PTV", "PTV", (255, 0, 0), 40.0, (10.0, 20.0), False),
                Roi(3, "HEART", "ORGAN", (255, 0, 255), 50.0, (30.0, -60.0), True)]
        ss_ct = self.struct("SS_CT", for_ct, ct, CT_IMAGE, ct_images, rois, f"{self.top}/RTSTRUCT")
        ss_mr = self.struct("SS_MR", for_mr, mr, MR_IMAGE, mr_images,
                            [rois[0], Roi(2, "GTV_MR", "GTV", (255, 255, 0), 30.0, (10.0, 20.0),
                                          False)], f"{self.top}/RTSTRUCT")
        reg_series = self.series("reg", "REG", "MR-CT REGISTRATION")
        reg = self.base(model.SPATIAL_REGISTRATION, ("reg",), reg_series)
        spatial_registration(
            reg, fixed_for=for_ct, moving_for=for_mr,
            moving_matrix=rigid_matrix(5.0, (2.5, -1.0, 4.0)),
            moving_series=(mr.uid, MR_IMAGE, [u for u, _ in mr_images]),
            fixed_study_uid=self.study.uid,
            fixed_series=(ct.uid, CT_IMAGE, [u for u, _ in ct_images]))
        reg_uid = self.w.save(f"{self.p.patient_id}/misc/REG.1.dcm", reg, self.pm)

        common: dict[str, Any] = dict(structure_set_uid=ss_ct, image_series_uid=ct.uid,
                      image_count=self.ct_slices, registration_uid=reg_uid,
                      registered_series_uid=mr.uid, registered_structure_set_uid=ss_mr)
        self.plan_a(for_ct, common)
        self.plan("PLAN_B", "CURATIVE", "UNAPPROVED",
                  [Beam(1, "G090", "", "RDS", 90.0, 120.0), Beam(2, "G270", "", "RDS", 270.0, 120.0)],
                  for_ct, common, plan_dose=True)
        self.plan("QA_A", "VERIFICATION", "APPROVED", [Beam(1, "QA", "TrueBeam1", "TDS", 0.0, 100.0)],
                  for_ct, common, plan_dose=False, verified=self.uid("sop", "PLAN_A"))
        self.plan("PROTON_1", "CURATIVE", "APPROVED",
                  [Beam(1, "P090", "GANTRY1", "P1", 90.0, 50.0),
                   Beam(2, "P270", "GANTRY1", "P1", 270.0, 50.0)],
                  for_ct, common, plan_dose=True, ion=True)
        self.old_study_objects(for_old, raw_old_slice)
        return self.pm

    def plan(self, label: str, intent: str, approval: str, beams: list[Beam], for_ct: str,
             common: dict[str, Any], plan_dose: bool, ion: bool = False,
             verified: str | None = None) -> PlanManifest:
        sop_class = model.RT_ION_PLAN if ion else model.RT_PLAN
        ds = self.base(sop_class, (label,), self.series(label, "RTPLAN", label))
        rt_plan(ds, label=label, intent=intent, approval=approval, beams=beams,
                structure_set_uid=common["structure_set_uid"], for_uid=for_ct, ion=ion,
                verified_plan_uid=verified)
        uid = self.w.save(f"{self.top}/RTPLAN/RP.{label}.dcm", ds, self.pm)
        numbers = [b.number for b in beams]
        pm = PlanManifest(
            label, uid, sop_class, approval, intent,
            machines=[b.machine for b in beams], machine_models=[b.model for b in beams],
            beam_numbers=numbers, drr_uids_by_beam={n: [] for n in numbers},
            portal_uids_by_beam={n: [] for n in numbers},
            record_uids_by_beam={n: [] for n in numbers},
            referenced_plan_uids=[verified] if verified else [], **common)
        if plan_dose:
            pm.dose_uids.append(self.dose(label, sop_class, uid, for_ct, None))
        self.pm.plans[label] = pm
        return pm

    def dose(self, label: str, plan_class: str, plan_uid: str, for_uid: str,
             beam: int | None, study: Study | None = None, folder: str | None = None) -> str:
        kind = "PLAN" if beam is None else f"BEAM{beam}"
        ds = self.base(model.RT_DOSE, ("dose", label, kind),
                       self.series(f"dose-{label}-{kind}", "RTDOSE", f"{label} {kind}"),
                       study=study)
        rt_dose(ds, for_uid=for_uid, summation="PLAN" if beam is None else "BEAM",
                plan_class=plan_class, plan_uid=plan_uid, beam_number=beam)
        return self.w.save(f"{folder or self.top + '/RTDOSE'}/RD.{label}.{kind}.dcm", ds, self.pm)

    def record(self, label: str, plan_uid: str, beam: int, fraction: int,
               study: Study | None = None, folder: str | None = None) -> str:
        ds = self.base(model.RT_BEAMS_RECORD, ("record", label, fraction, beam),
                       self.series(f"record-{label}-{fraction}-{beam}", "RTRECORD",
                                   f"{label} F{fraction}"), study=study)
        beams_record(ds, plan_class=model.RT_PLAN, plan_uid=plan_uid, beam_number=beam,
                     beam_name=f"B{beam}", fraction=fraction,
                     date=TREATMENT_DATES.get(fraction, "20240203"), time="083000",
                     machine="TrueBeam1")
        return self.w.save(f"{folder or self.top + '/RTRECORD'}/RT_{label}_F{fraction}_B{beam}",
                           ds, self.pm)

    def rt_image(self, name: str, drr: bool, gantry: float, plan_uid: str | None,
                 beam: int | None, study: Study | None = None, folder: str | None = None) -> str:
        ds = self.base(model.RT_IMAGE, ("rtimage", name),
                       self.series(f"rtimage-{name}", "RTIMAGE", name), study=study)
        rt_image(ds, label=name.split(".")[-1], drr=drr, gantry=gantry,
                 plan_class=model.RT_PLAN, plan_uid=plan_uid, beam_number=beam)
        return self.w.save(f"{folder or self.top + '/RTIMAGE'}/RI.{name}.dcm", ds, self.pm)

    def plan_a(self, for_ct: str, common: dict[str, Any]) -> None:
        plan_uid = self.uid("sop", "PLAN_A")
        gantries = {1: 0.0, 2: 120.0, 3: 240.0}
        drrs = {b: self.rt_image(f"PLAN_A.DRR{b}", True, g, plan_uid, None)
                for b, g in gantries.items()}
        beams = [Beam(b, f"G{int(g):03d}", "TrueBeam1", "TDS", g, 100.0, drrs[b])
                 for b, g in gantries.items()]
        pm = self.plan("PLAN_A", "CURATIVE", "APPROVED", beams, for_ct, common, plan_dose=True)
        pm.dose_uids.append(self.dose("PLAN_A", model.RT_PLAN, plan_uid, for_ct, 1))
        for b in gantries:
            pm.drr_uids_by_beam[b].append(drrs[b])
        pm.portal_uids_by_beam[2].append(self.rt_image("PLAN_A.PORTAL2", False, 120.0, plan_uid, 2))
        for fraction in (1, 2):
            for b in (1, 2):
                pm.record_uids_by_beam[b].append(self.record("PLAN_A", plan_uid, b, fraction))
        pm.plan_level_records.append(self.record("PLAN_A", plan_uid, 99, 1))
        cbct, _ = self.image_series("cbct", "CT", "CBCT", CBCT_SLICES, for_ct,
                                    f"{self.top}/CBCT", "CT.CBCT.{n}.dcm")
        pm.cbct_series_uid, pm.cbct_count = cbct.uid, CBCT_SLICES

    def old_study_objects(self, for_old: str, raw_slice: bool) -> None:
        un: UnconnectedManifest = self.pm.unconnected
        s, images = self.image_series("old-ct", "CT", "OLD CT", OLD_CT_SLICES, for_old,
                                      f"{self.old}/CT", "CT.{n}.dcm", study=self.old_study,
                                      raw_index=2 if raw_slice else None)
        un.series[s.uid] = OLD_CT_SLICES
        un.structure_sets.append(self.struct(
            "SS_OLD", for_old, s, CT_IMAGE, images,
            [Roi(1, "BODY", "EXTERNAL", (0, 255, 0), 150.0, (0.0, 0.0), True)],
            self.old, study=self.old_study))
        missing = self.uid("sop", "missing-plan")
        self.pm.missing_plan_uid = missing
        un.doses.append(self.dose("ORPHAN", model.RT_PLAN, missing, for_old, None,
                                  self.old_study, self.old))
        un.records.append(self.record("ORPHAN", missing, 1, 1, self.old_study, self.old))
        un.rt_images.append(self.rt_image("LOOSE", False, 0.0, None, None, self.old_study,
                                          self.old))
        ds = self.base(model.RT_SUMMARY_RECORD, ("summary",),
                       self.series("summary", "RTRECORD", "TREATMENT SUMMARY"),
                       study=self.old_study)
        treatment_summary(ds, first="20190610", last="20190720")
        un.other.append(self.w.save(f"{self.old}/RTSUMMARY.DCM", ds, self.pm))

    def truncated_ct(self, role: str) -> Dataset:
        """A CT of the old study in its own series, for the broken-file cases."""
        series = self.series(role, "CT", role.upper())
        ds = self.base(CT_IMAGE, (role,), series, study=self.old_study)
        image_slice(ds, rows=16, spacing=25.0, thickness=3.0, z=0.0,
                    for_uid=self.uid("for", "old"), pixels=pixels_disc(16, 16, 1024, 0, 1100, 0),
                    ct=True)
        return ds


def _write_broken(w: _Writer, pb: _PatientBuilder) -> None:
    m = w.manifest
    broken = {"_misc/empty.dcm": ("empty", b""),
              "_misc/notes.txt": ("text", b"Phantom archive notes.\nNot a DICOM file.\n"),
              "_misc/photo.jpg": ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00"
                                          b"\x00\x01\x00\x01\x00\x00\xff\xd9")}
    cut = encode(pb.truncated_ct("truncated-header"))
    uid_at = cut.index(pb.uid("sop", "truncated-header").encode())  # inside the file meta
    broken["_misc/CT.truncated-header.dcm"] = ("truncated-header", cut[: uid_at + 20])
    broken["_misc/DICOMDIR"] = ("dicomdir", encode(dicomdir(make_uid("dicomdir", m.seed))))
    for rel, (kind, data) in broken.items():
        w.save_bytes(rel, data)
        m.broken_files[rel] = kind
    ds = pb.truncated_ct("truncated-pixels")
    data = encode(ds)
    rel = "_misc/CT.truncated-pixels.dcm"
    w.save_bytes(rel, data[: len(data) - len(ds.PixelData) // 2])  # header intact, pixels cut
    w.book(rel, ds, pb.pm)
    m.truncated_pixel_files.append(rel)
    pb.pm.unconnected.series[str(ds.SeriesInstanceUID)] = 1


def generate(
    out_dir: str | Path,
    patients: int = 2,
    seed: int = 0,
    ct_slices: int = 12,
    broken: bool = True,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> PhantomManifest:
    """Write the phantom archive under ``out_dir`` and describe it; same seed, same bytes.

    Progress is one unit per patient. A cancel stops between patients and
    returns the manifest of what was written so far.
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if ct_slices < 1:
        raise ValueError("ct_slices must be at least 1")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    manifest = PhantomManifest(root=str(root), seed=seed)
    writer = _Writer(root, manifest)
    report = Reporter("phantom", sink)
    report.started(patients, str(root))
    first: _PatientBuilder | None = None
    for index in range(patients):
        if cancel is not None and cancel.cancelled:
            report.message("phantom generation cancelled", "warning")
            break
        builder = _PatientBuilder(writer, index, seed, ct_slices)
        manifest.patients[builder.p.patient_id] = builder.build(raw_old_slice=broken and index == 0)
        first = first or builder
        report.advanced(index + 1, patients, builder.p.patient_id)
    if broken and first is not None:
        _write_broken(writer, first)
    manifest.file_count = len(manifest.files) + len(manifest.broken_files)
    report.finished(len(manifest.patients), patients, f"{manifest.file_count} files")
    log.info("phantom: %d patients, %d files in %s", patients, manifest.file_count, root)
    return manifest
