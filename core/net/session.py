"""Interactive Q/R sessions: find patients and their plans, then retrieve chosen ones.

The TUI's Retrieve screen drives these from worker threads; they are plain
compositions of ``core.net`` pieces (associate, ``c_find``, ``query_patient``,
``retrieve``) so the same steps are available to any front end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from dicomtools.core.config import Config, NodeConfig
from dicomtools.core.net.find_model import InstanceInfo, PatientRow
from dicomtools.core.progress import CancelToken, ProgressSink

log = logging.getLogger(__name__)


def _find_assoc(node: NodeConfig) -> Any:
    from dicomtools.core.net.assoc import associate, make_ae
    from dicomtools.core.net.qr_models import FIND_CONTEXTS

    ae = make_ae(node.calling_ae, node)
    for model in FIND_CONTEXTS:
        ae.add_requested_context(model)
    return associate(ae, node)


def find_patients(node: NodeConfig, patient_id: str = "", patient_name: str = "") -> list[PatientRow]:
    """Patients matching an ID and/or a name (DICOM wildcards ``*`` ``?`` allowed), with their plans.

    Patient Root PATIENT level when the peer takes it, else distinct patients
    of a Study Root STUDY-level query. Plans are listed per patient from the
    RTPLAN series (label, approval, date where the peer returns them).
    """
    from pydicom.dataset import Dataset

    from dicomtools.core.net.assoc import release
    from dicomtools.core.net.find import c_find, choose_model

    assoc = _find_assoc(node)
    try:
        model = choose_model(assoc)
        ds = Dataset()
        ds.QueryRetrieveLevel = "PATIENT" if model == "P" else "STUDY"
        ds.PatientID = patient_id or "*"
        ds.PatientName = patient_name or "*"
        if model == "S":
            ds.StudyInstanceUID = ""
        rows: dict[str, PatientRow] = {}
        for ident in c_find(assoc, model, ds):
            pid = str(ident.get("PatientID", "") or "").strip()
            if not pid:
                continue
            row = rows.setdefault(pid, PatientRow(pid, str(ident.get("PatientName", "") or "").strip()))
            if model == "S":
                row.studies = (row.studies or 0) + 1
        out = sorted(rows.values(), key=lambda r: r.patient_id)
        for row in out:
            try:
                row.plans, row.studies = _plans(assoc, model, row.patient_id)
                row.plans_known = True
            except Exception as exc:  # the patient list is still useful without plans
                row.note = f"plans not listed: {exc}"
                log.info("plan listing for %s failed: %s", row.patient_id, exc)
        return out
    finally:
        release(assoc)


PLAN_KEYS = ("RTPlanLabel", "RTPlanDate", "ApprovalStatus")
RT_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.481."  # RT Plan, Ion Plan, Brachy ... (a series of unknown modality)


def _plans(assoc: Any, model: str, patient_id: str) -> tuple[list[InstanceInfo], int]:
    from dicomtools.core.net.find import find_instances, query_patient

    q = query_patient(assoc, patient_id, model)
    plans: list[InstanceInfo] = []
    for s in q.series:
        if s.modality and s.modality != "RTPLAN":
            continue
        for inst in find_instances(assoc, model, patient_id, s.study_uid, s.series_uid, PLAN_KEYS):
            cls = inst.sop_class_uid
            if s.modality == "" and cls and not cls.startswith(RT_CLASS_PREFIX):
                continue
            plans.append(inst)
    plans.sort(key=lambda p: (p.plan_label, p.sop_instance_uid))
    return plans, len(q.studies)


@dataclass
class RetrieveRequest:
    patient_id: str
    plan_uids: list[str]  # empty: whole patient
    dest: str
    new_patient_id: str | None = None
    new_patient_name: str | None = None
    anonymize: bool = False


@dataclass
class RetrieveOutcome:
    request: RetrieveRequest
    result: Any = None  # core RetrieveResult
    problems: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        if self.result is None:
            return "nothing retrieved"
        text = self.result.summary()
        if self.request.anonymize:
            text += "; anonymized"
        if self.problems:
            text += f"; {len(self.problems)} problem(s)"
        return text


def run_retrieve(
    node: NodeConfig,
    config: Config,
    req: RetrieveRequest,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    temp_dirs: list[str] | None = None,
) -> RetrieveOutcome:
    """Retrieve one patient (or some plans) into ``req.dest``, renamed or anonymized on the way.

    Anonymization is the retrieve's own (as ``retrieve --anonymize``): original data
    only ever sits in the retrieve's temporary folder, and ``anonymization_map.csv``
    is appended in ``req.dest``. Raises ``NetError`` when the node refuses us.
    ``temp_dirs`` is accepted for callers that track temporary folders; the
    retrieve removes its own.
    """
    from dicomtools.core.anonymize.run import AnonymizeSettings
    from dicomtools.core.net.retrieve import RetrieveOptions, retrieve

    out = RetrieveOutcome(req)
    settings = None
    if req.anonymize:
        if not (req.new_patient_id and req.new_patient_name):
            raise ValueError("anonymization needs a new Patient ID and a new Patient Name")
        settings = AnonymizeSettings(
            req.new_patient_id, req.new_patient_name,
            profile=config.anonymize.profile, options=config.anonymize.options or None,
        )
    opts = RetrieveOptions(
        patient_id=req.patient_id,
        out_dir=req.dest,
        plan_ids=list(req.plan_uids),
        new_patient_id=None if req.anonymize else req.new_patient_id,
        new_patient_name=None if req.anonymize else req.new_patient_name,
        method=node.retrieve_method,
        scp_port=config.local.scp_port,
        scp_bind=config.local.scp_bind,
        default_machines=dict(config.machines.defaults),
        anonymize=settings,
    )
    out.result = retrieve(node, opts, sink=sink, cancel=cancel)
    out.problems.extend(out.result.problems)
    out.cancelled = out.result.cancelled
    return out


@dataclass
class AnonymizeOutcome:
    report: Any

    @property
    def cancelled(self) -> bool:
        return bool(self.report.cancelled)

    @property
    def written(self) -> list[Any]:
        return list(self.report.written)

    def summary(self) -> str:
        r = self.report
        return f"{len(r.written)} written, {len(r.not_copied)} not copied to {r.out_dir}"


def anonymize_files(
    files: list[str],
    dest: str,
    *,
    profile: str,
    options: list[str],
    patient_id: str | None,
    patient_name: str | None,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> AnonymizeOutcome:
    """core ``anonymize_files`` with the TUI's form values (new ID and name are required)."""
    from dicomtools.core.anonymize.run import AnonymizeError, AnonymizeSettings
    from dicomtools.core.anonymize.run import anonymize_files as core_anonymize

    if not (patient_id and patient_name):
        raise AnonymizeError("a new Patient ID and a new Patient Name are required")
    settings = AnonymizeSettings(
        new_patient_id=patient_id,
        new_patient_name=patient_name,
        profile=profile or "aria",
        options=list(options) or None,
    )
    os.makedirs(dest, exist_ok=True)
    report = core_anonymize(files, dest, settings, sink=sink, cancel=cancel)
    return AnonymizeOutcome(report)
