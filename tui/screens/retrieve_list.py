"""Retrieve's "load list": find the patients of a list on the node and mark them and their plans.

The list is read by core (:mod:`dicomtools.core.patientlist`, the same
parser as ``retrieve --patientList``); each Patient ID is looked up
exactly (wildcard characters in an ID are not wildcards here). A listed
plan is marked when its RT Plan Label or SOP Instance UID matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dicomtools.core.net.find_model import PatientRow
from dicomtools.core.patientlist import PatientEntry


@dataclass
class ListMarks:
    rows: list[PatientRow]
    marks: set[str] = field(default_factory=set)
    missing_patients: list[str] = field(default_factory=list)
    missing_plans: list[str] = field(default_factory=list)  # "PID: PLAN"




def marks_for(entries: Sequence[PatientEntry], rows: Sequence[PatientRow]) -> ListMarks:
    """Rows in list order with the marks the list asks for (keys as the Retrieve table uses them)."""
    from dicomtools.tui.screens.retrieve import patient_key, plan_key

    by_id = {r.patient_id: r for r in rows}
    out = ListMarks([])
    for e in entries:
        row = by_id.get(e.patient_id)
        if row is None:
            out.missing_patients.append(e.patient_id)
            continue
        out.rows.append(row)
        if not e.plan_ids:
            out.marks.add(patient_key(row.patient_id))
            continue
        for plan_id in e.plan_ids:
            hits = [p for p in row.plans if plan_id in (p.plan_label, p.sop_instance_uid)]
            if not hits:
                out.missing_plans.append(f"{e.patient_id}: {plan_id}")
            out.marks.update(plan_key(row.patient_id, p.sop_instance_uid) for p in hits)
    return out


def find_listed(node: Any, entries: Sequence[PatientEntry]) -> list[PatientRow]:
    """One exact C-FIND per listed patient (with its plans); runs in a worker thread."""
    from dicomtools.core.net.session import find_patients

    rows: list[PatientRow] = []
    for e in entries:
        if any(c in e.patient_id for c in "*?"):
            continue  # would match other patients: reported as not found
        rows.extend(r for r in find_patients(node, e.patient_id, "") if r.patient_id == e.patient_id)
    return rows


def summary(result: ListMarks, name: str) -> str:
    text = f"{len(result.rows)} listed patient(s) found, {len(result.marks)} marked from {name}"
    if result.missing_patients:
        text += f"; not found: {', '.join(result.missing_patients[:5])}"
    if result.missing_plans:
        text += f"; plans not found: {', '.join(result.missing_plans[:5])}"
    return text + ". ^r retrieves the marked rows."
