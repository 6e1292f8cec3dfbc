"""Interactive Q/R: find patients and their plans (the TUI's Retrieve screen, from a worker thread).

Plain compositions of ``core.net`` pieces (the lean C-FIND association, ``c_find``,
``query_patient``), answering in ``find_model``'s records. Retrieving what was
chosen (renamed or anonymized) is a use case: ``core.services.retrieve``.
"""

from __future__ import annotations

import logging
from typing import Any

from dicomtools.core.config import NodeConfig
from dicomtools.core.net.find_model import InstanceInfo, PatientRow

log = logging.getLogger(__name__)


def _find_assoc(node: NodeConfig) -> Any:
    """C-FIND over the lean UL (as the retrieve): no pydicom or pynetdicom import for a search."""
    from dicomtools.core.net.assoc import tls_args
    from dicomtools.core.net.qr_models import FIND_CONTEXTS
    from dicomtools.core.net.ul import request_association
    from dicomtools.core.net.ul_find import LeanFind, find_contexts

    assoc = request_association(
        node.host, node.port, node.calling_ae, node.called_ae, find_contexts(FIND_CONTEXTS),
        connect_timeout=node.connect_timeout, acse_timeout=node.acse_timeout, dimse_timeout=node.dimse_timeout,
        tls=tls_args(node), max_pdu=node.max_pdu)
    return LeanFind(assoc, node.dimse_timeout)


def find_patients(node: NodeConfig, patient_id: str = "", patient_name: str = "") -> list[PatientRow]:
    """Patients matching an ID and/or a name (DICOM wildcards ``*`` ``?`` allowed), with their plans.

    Patient Root PATIENT level when the peer takes it, else distinct patients
    of a Study Root STUDY-level query. Plans are listed per patient from the
    RTPLAN series (label, approval, date where the peer returns them).
    """
    from dicomtools.core.net.find import c_find, choose_model

    assoc = _find_assoc(node)
    try:
        model = choose_model(assoc)
        ds = {"QueryRetrieveLevel": "PATIENT" if model == "P" else "STUDY", "PatientID": patient_id or "*",
              "PatientName": patient_name or "*"}
        if model == "S":
            ds["StudyInstanceUID"] = ""
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
        assoc.release()


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
