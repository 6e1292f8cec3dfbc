"""Marked patients and plans, kept by stable tree key so they survive rescans and filters.

A mark is resolved against the current forest only when an action needs it,
so a plan that disappeared from the folder simply drops out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomtools.tui.widgets.ref_tree import node_key, patient_instances, patient_key


@dataclass(frozen=True)
class Mark:
    key: str
    kind: str  # "patient" or a plan kind
    patient_id: str
    title: str


def iter_markables(forest: list[Any]) -> list[tuple[str, Any, Any]]:
    """(key, patient, node-or-None) for every patient, top-level plan and unconnected item."""
    out: list[tuple[str, Any, Any]] = []
    for patient in forest:
        pkey = patient_key(patient)
        out.append((pkey, patient, None))
        for i, plan in enumerate(patient.plans):
            out.append((node_key(pkey, plan, i), patient, plan))
        for i, node in enumerate(patient.unconnected):
            out.append((node_key(pkey + "/unconnected", node, i), patient, node))
    return out


def resolve(forest: list[Any], keys: list[str]) -> list[tuple[Any, Any]]:
    """The (patient, plan-or-None) pairs of ``keys`` still present, in mark order."""
    table = {key: (patient, plan) for key, patient, plan in iter_markables(forest)}
    return [table[k] for k in keys if k in table]


def instances_of(pairs: list[tuple[Any, Any]]) -> list[Any]:
    """All instances of the marked items, each once, patients and plans in mark order."""
    seen: set[str] = set()
    out: list[Any] = []
    for patient, plan in pairs:
        items = patient_instances(patient) if plan is None else plan.subtree_instances()
        for inst in items:
            if inst.sop_instance_uid not in seen:
                seen.add(inst.sop_instance_uid)
                out.append(inst)
    return out


def subforest(pairs: list[tuple[Any, Any]]) -> list[Any]:
    """A forest holding only the marked items (a marked patient keeps everything)."""
    from dicomtools.core.tree import PatientTree

    whole: dict[str, Any] = {}
    plans: dict[str, list[Any]] = {}
    loose: dict[str, list[Any]] = {}
    order: list[str] = []
    for patient, node in pairs:
        key = patient_key(patient)
        if key not in order:
            order.append(key)
        if node is None:
            whole[key] = patient
            continue
        bucket = loose if any(n is node for n in patient.unconnected) else plans
        bucket.setdefault(key, [])
        if all(n is not node for n in bucket[key]):
            bucket[key].append(node)
    out = []
    for key in order:
        if key in whole:
            out.append(whole[key])
            continue
        first = next(p for p, _ in pairs if patient_key(p) == key)
        out.append(PatientTree(first.patient_id, first.patient_name, plans=plans.get(key, []),
                               unconnected=loose.get(key, [])))
    return out
