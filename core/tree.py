"""Reference-tree rules: instance summaries -> per-patient trees with RT Plans as roots.

Pure functions over :class:`InstanceSummary`; no I/O. The rules (child kind,
attribute path, parent) are listed in the README's tree-rules table; keep the
two in step. Everything of a patient that no plan reaches ends under
``unconnected`` so nothing disappears, and nothing shown under a plan is
repeated there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dicomtools.core.model import (
    HALCYON_PLAN,
    PLAN_CLASSES,
    RT_ION_PLAN,
    RT_STRUCT,
    InstanceSummary,
)
from dicomtools.core.tree_index import NON_IMAGE_MODALITIES as NON_IMAGE_MODALITIES
from dicomtools.core.tree_index import OtherPatients, PatientIndex
from dicomtools.core.tree_index import is_image as is_image

log = logging.getLogger(__name__)

PLAN_KINDS = ("RT-Plan", "RT-Ion-Plan", "RT-Brachy-Plan")
UNCONNECTED_ORDER = ("RT-Struct", "Image", "CBCT", "RT-Dose", "REG", "RT-Image", "RT-Record", "RT-Plan", "Other")


@dataclass
class Node:
    """One line of the tree: a kind, a label, the instances it stands for, children."""

    kind: str
    label: str
    instances: list[InstanceSummary] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def subtree_instances(self) -> list[InstanceSummary]:
        """All instances of this node and below, unique by SOP Instance UID, in tree order."""
        seen: set[str] = set()
        out: list[InstanceSummary] = []
        for node in self.walk():
            for inst in node.instances:
                if inst.sop_instance_uid not in seen:
                    seen.add(inst.sop_instance_uid)
                    out.append(inst)
        return out


@dataclass
class PatientTree:
    patient_id: str
    patient_name: str
    plans: list[Node] = field(default_factory=list)
    unconnected: list[Node] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def nodes(self) -> Iterator[Node]:
        for node in self.plans + self.unconnected:
            yield from node.walk()

    def all_instances(self) -> list[InstanceSummary]:
        seen: set[str] = set()
        out: list[InstanceSummary] = []
        for node in self.nodes():
            for inst in node.instances:
                if inst.sop_instance_uid not in seen:
                    seen.add(inst.sop_instance_uid)
                    out.append(inst)
        return out


def sop_class_name(uid: str) -> str:
    """A readable SOP class name; pydicom's dictionary when present."""
    try:
        from pydicom.uid import UID

        name = UID(uid).name
    except Exception:  # pragma: no cover - pydicom always present in practice
        name = uid
    if uid == HALCYON_PLAN:
        return "Varian Halcyon RT Plan (private)"
    return name if name and name != uid else uid


def plan_kind(inst: InstanceSummary) -> str:
    if inst.sop_class_uid == RT_ION_PLAN:
        return "RT-Ion-Plan"
    if inst.brachy_treatment_type:
        return "RT-Brachy-Plan"
    return "RT-Plan"


class _Builder:
    def __init__(
        self, index: PatientIndex, default_machines: Mapping[str, str], elsewhere: Mapping[str, str] | None = None
    ) -> None:
        self.ix = index
        self.default_machines = default_machines
        # SOP Instance UID -> Patient ID, for the other patients of the same folder
        # not `elsewhere or {}`: the truth value of an OtherPatients view counts the whole folder
        self.elsewhere = elsewhere if elsewhere is not None else {}
        self.cross: dict[str, None] = {}  # patient-level warnings about references to other patients

    def missing(self, what: str, uid: str, referrer: str) -> str:
        """The note for a reference not found in this patient: elsewhere in the folder, or absent."""
        other = self.elsewhere.get(uid)
        if other is None:
            return f"referenced {what} not in folder"
        self.cross[f"{referrer} references a {what} filed under another Patient ID: {other} ({uid})"] = None
        return f"referenced {what} in this folder under patient {other}"

    # -- leaves -------------------------------------------------------------
    def series_node(self, series_uid: str, kind: str = "Image") -> Node:
        members = self.ix.series[series_uid]
        first = members[0]
        desc = f", {first.series_description}" if first.series_description else ""
        noun = "image" if len(members) == 1 else "images"
        label = f"{len(members)} {noun}{desc} (SeriesUID: {series_uid})"
        return Node(
            kind,
            label,
            list(members),
            fields={
                "series_instance_uid": series_uid,
                "modality": first.modality,
                "count": len(members),
                "frame_of_reference_uid": first.frame_of_reference_uid,
            },
        )

    def struct_node(self, ss: InstanceSummary, skip_series: set[str] | None = None) -> Node:
        node = Node(
            "RT-Struct",
            ss.structure_set_label or ss.series_description or ss.sop_instance_uid,
            [ss],
            fields={"structure_set_label": ss.structure_set_label, "roi_count": ss.roi_count},
        )
        for series_uid in self.ix.series_for_struct(ss):
            if skip_series and series_uid in skip_series:
                continue
            node.children.append(self.series_node(series_uid))
        return node

    def dose_node(self, dose: InstanceSummary) -> Node:
        label = f"{dose.series_description or 'Dose'}, Summation type: {dose.dose_summation_type or '?'}"
        return Node("RT-Dose", label, [dose], fields={"dose_summation_type": dose.dose_summation_type})

    def record_node(self, rec: InstanceSummary) -> Node:
        frac = f"Fraction {rec.fraction_number}" if rec.fraction_number is not None else "Fraction ?"
        date = f", {rec.treatment_date}" if rec.treatment_date else ""
        beams = ",".join(str(b) for b in rec.referenced_beam_numbers)
        label = f"{frac}{date}" + (f", beam {beams}" if beams else "")
        return Node(
            "RT-Record",
            label,
            [rec],
            fields={"fraction_number": rec.fraction_number, "beam_numbers": list(rec.referenced_beam_numbers)},
        )

    def rt_image_node(self, img: InstanceSummary) -> Node:
        label = img.rt_image_label or img.series_description or img.sop_instance_uid
        return Node("RT-Image", label, [img], fields={"rt_image_label": img.rt_image_label})

    def machine_of(self, machine: str, model: str) -> tuple[str, bool]:
        if machine:
            return machine, False
        if model and model in self.default_machines:
            return self.default_machines[model], True
        return "", False

    def plan_fields(self, plan: InstanceSummary) -> dict[str, Any]:
        machines, defaulted = [], []
        for beam in plan.beams:
            name, was_defaulted = self.machine_of(beam.machine, beam.machine_model)
            machines.append(name)
            defaulted.append(was_defaulted)
        return {
            "plan_label": plan.plan_label,
            "plan_name": plan.plan_name,
            "plan_intent": plan.plan_intent,
            "approval_status": plan.approval_status,
            "plan_date": plan.plan_date,
            "machines": machines,
            "machines_defaulted": defaulted,
            "machine_models": [b.machine_model for b in plan.beams],
            "sop_instance_uid": plan.sop_instance_uid,
        }

    def plan_label(self, plan: InstanceSummary, fields: dict[str, Any]) -> str:
        distinct: list[str] = []
        for name, was in zip(fields["machines"], fields["machines_defaulted"], strict=True):
            shown = (name + " (default)" if was else name) or "<empty>"
            if shown not in distinct:
                distinct.append(shown)
        parts = [
            plan.plan_label or plan.sop_instance_uid,
            f"Intent: {plan.plan_intent or '-'}",
            f"Approval: {plan.approval_status or '-'}",
        ]
        if distinct:
            parts.append("Machine: " + ", ".join(distinct))
        if plan.plan_date:
            parts.append(f"Date: {plan.plan_date}")
        return ", ".join(parts)

    def related_plan_node(self, uid: str) -> Node:
        other = self.ix.by_uid.get(uid)
        if other is None or other.sop_class_uid not in PLAN_CLASSES:
            return Node("RT-Plan", uid, [], fields={"related": True}, note=self.missing("plan", uid, "a plan"))
        fields = self.plan_fields(other)
        fields["related"] = True
        return Node(plan_kind(other), self.plan_label(other, fields), [other], fields=fields, note="referenced plan")

    # -- a plan with everything it reaches ----------------------------------
    def plan_node(self, plan: InstanceSummary) -> Node:
        fields = self.plan_fields(plan)
        node = Node(plan_kind(plan), self.plan_label(plan, fields), [plan], fields=fields)
        ix = self.ix
        uid = plan.sop_instance_uid
        plan_series: set[str] = set()
        plan_frames: set[str] = set()
        for ss_uid in plan.referenced_structure_sets:
            ss = ix.by_uid.get(ss_uid)
            if ss is None or ss.sop_class_uid != RT_STRUCT:
                note = self.missing("structure set", ss_uid, f"plan {plan.plan_label or uid}")
                node.children.append(Node("RT-Struct", ss_uid, [], note=note))
                continue
            ss_node = self.struct_node(ss)
            node.children.append(ss_node)
            plan_series.update(c.fields["series_instance_uid"] for c in ss_node.children)
            plan_frames |= ix.struct_frames(ss)
        # beams with their DRRs / portal images and treatment records
        placed: set[str] = set()
        images_for_plan = [i for i in ix.rt_images if uid in i.referenced_plans]
        records_for_plan = [r for r in ix.records if uid in r.referenced_plans]
        for beam in plan.beams:
            machine, was_defaulted = self.machine_of(beam.machine, beam.machine_model)
            label = f"{beam.name or '?'} ({beam.number}), {beam.delivery_type or '-'}"
            label += f", Machine: {machine or '<empty>'}{' (default)' if was_defaulted else ''}"
            beam_node = Node(
                "Beam",
                label,
                [],
                fields={
                    "beam_number": beam.number,
                    "beam_name": beam.name,
                    "delivery_type": beam.delivery_type,
                    "machine": machine,
                    "machine_model": beam.machine_model,
                },
            )
            listed = set(beam.reference_images)
            for img in ix.rt_images:
                by_list = img.sop_instance_uid in listed
                by_number = img in images_for_plan and beam.number in img.referenced_beam_numbers
                if by_list or by_number:
                    beam_node.children.append(self.rt_image_node(img))
                    placed.add(img.sop_instance_uid)
            beam_records = [r for r in records_for_plan if beam.number in r.referenced_beam_numbers]
            beam_records.sort(key=lambda r: (r.fraction_number or 0, r.treatment_date, r.path))
            for rec in beam_records:
                beam_node.children.append(self.record_node(rec))
                placed.add(rec.sop_instance_uid)
            node.children.append(beam_node)
        for img in images_for_plan:
            if img.sop_instance_uid not in placed:
                node.children.append(self.rt_image_node(img))
        loose = [r for r in records_for_plan if r.sop_instance_uid not in placed]
        loose.sort(key=lambda r: (r.fraction_number or 0, r.treatment_date, r.path))
        node.children.extend(self.record_node(r) for r in loose)
        doses = [d for d in ix.doses if uid in d.referenced_plans]
        doses.sort(key=lambda d: (d.dose_summation_type != "PLAN", d.path))
        node.children.extend(self.dose_node(d) for d in doses)
        for series_uid in sorted(ix.cbct_by_plan.get(uid, [])):
            node.children.append(self.series_node(series_uid, "CBCT"))
        reg_group = self.registrations_node(plan_series, plan_frames)
        if reg_group is not None:
            node.children.append(reg_group)
        for other_uid in plan.referenced_plans:
            if other_uid != uid:
                node.children.append(self.related_plan_node(other_uid))
        return node

    def registrations_node(self, plan_series: set[str], plan_frames: set[str]) -> Node | None:
        group = Node("Registrations", "Registrations")
        for reg in sorted(self.ix.regs, key=lambda r: r.path):
            frames = set(reg.registered_frames)
            series = set(reg.reg_referenced_series)
            if not (frames & plan_frames or series & plan_series):
                continue
            group.children.append(self.reg_node(reg, plan_series, plan_frames))
        return group if group.children else None

    def reg_node(self, reg: InstanceSummary, plan_series: set[str], plan_frames: set[str]) -> Node:
        ix = self.ix
        other_frames = set(reg.registered_frames) - plan_frames
        other_frames.update(
            ix.series_frame(s) for s in reg.reg_referenced_series if s in ix.series and s not in plan_series
        )
        other_frames.discard("")
        other_frames -= plan_frames
        node = Node("REG", reg.series_description or reg.sop_instance_uid, [reg],
                    fields={"registered_frames": list(reg.registered_frames)})
        shown: set[str] = set(plan_series)
        for ss in sorted(ix.structs, key=lambda s: s.path):
            if ix.struct_frames(ss) & other_frames:
                ss_node = self.struct_node(ss, skip_series=shown)
                node.children.append(ss_node)
                shown.update(c.fields["series_instance_uid"] for c in ss_node.children)
        for series_uid in sorted(ix.series):
            if series_uid in shown or series_uid in ix.cbct_series:
                continue
            frame = ix.series_frame(series_uid)
            if frame in other_frames or (series_uid in reg.reg_referenced_series and frame not in plan_frames):
                node.children.append(self.series_node(series_uid))
                shown.add(series_uid)
        return node

    # -- what no plan reaches ------------------------------------------------
    def unconnected(self, reached: set[str]) -> list[Node]:
        ix = self.ix
        present_plans = {p.sop_instance_uid for p in ix.plans}
        out: list[Node] = []
        reached_series = {
            uid for uid, members in ix.series.items() if all(m.sop_instance_uid in reached for m in members)
        }
        shown_series: set[str] = set(reached_series)
        for ss in sorted(ix.structs, key=lambda s: (s.structure_set_label, s.path)):
            if ss.sop_instance_uid in reached:
                continue
            # A structure set always shows the series it contours (by UID or by its frame
            # of reference), whatever other structure sets name: its node must not depend
            # on an unrelated file. Only plan-reached series are left to the plan.
            node = self.struct_node(ss, skip_series=reached_series)
            shown_series.update(c.fields["series_instance_uid"] for c in node.children)
            out.append(node)
        for uid in sorted(ix.series, key=lambda u: (ix.series[u][0].modality, ix.series[u][0].study_date, u)):
            if uid in shown_series:
                continue
            members = ix.series[uid]
            if any(m.sop_instance_uid in reached for m in members):
                members = [m for m in members if m.sop_instance_uid not in reached]
            kind = "CBCT" if uid in ix.cbct_series else "Image"
            node = self.series_node(uid, kind)
            node.instances = list(members)
            node.fields["count"] = len(members)
            if kind == "CBCT":
                node.note = "its plan is not in the folder"
            out.append(node)

        def missing_plan_note(inst: InstanceSummary, what: str) -> str:
            refs = [p for p in inst.referenced_plans if p]
            if refs and not any(p in present_plans for p in refs):
                other = self.elsewhere.get(refs[0])
                if other is not None:
                    label = inst.series_description or inst.rt_image_label or inst.sop_instance_uid
                    return self.missing("plan", refs[0], f"{what} {label}")
                return f"referenced plan not in folder: {refs[0]}"
            if not refs:
                return "references no plan"
            return ""

        for dose in sorted(ix.doses, key=lambda d: d.path):
            if dose.sop_instance_uid not in reached:
                n = self.dose_node(dose)
                n.note = missing_plan_note(dose, "dose")
                out.append(n)
        for reg in sorted(ix.regs, key=lambda r: r.path):
            if reg.sop_instance_uid not in reached:
                out.append(Node("REG", reg.series_description or reg.sop_instance_uid, [reg],
                                fields={"registered_frames": list(reg.registered_frames)}))
        for img in sorted(ix.rt_images, key=lambda r: r.path):
            if img.sop_instance_uid not in reached:
                n = self.rt_image_node(img)
                n.note = missing_plan_note(img, "RT image")
                out.append(n)
        for rec in sorted(ix.records, key=lambda r: (r.fraction_number or 0, r.path)):
            if rec.sop_instance_uid not in reached:
                n = self.record_node(rec)
                n.note = missing_plan_note(rec, "treatment record")
                out.append(n)
        for other in sorted(ix.others, key=lambda r: (r.sop_class_uid, r.path)):
            if other.sop_instance_uid not in reached:
                name = sop_class_name(other.sop_class_uid)
                out.append(Node("Other", f"{name}: {other.series_description or other.sop_instance_uid}",
                                [other], fields={"sop_class_name": name}))
        out.sort(key=lambda n: UNCONNECTED_ORDER.index(n.kind) if n.kind in UNCONNECTED_ORDER else 99)
        return out


def _dedupe(instances: Iterable[InstanceSummary]) -> tuple[list[InstanceSummary], list[str]]:
    first: dict[str, InstanceSummary] = {}
    warnings: list[str] = []
    for inst in instances:
        prior = first.get(inst.sop_instance_uid)
        if prior is None:
            first[inst.sop_instance_uid] = inst
        else:
            warnings.append(
                f"duplicate SOP Instance UID {inst.sop_instance_uid}: {prior.path} and {inst.path} (first kept)"
            )
    return list(first.values()), warnings


def build_patient(
    patient_id: str,
    instances: list[InstanceSummary],
    default_machines: Mapping[str, str] | None = None,
    elsewhere: Mapping[str, str] | None = None,
    referenced_from: Mapping[str, str] | None = None,
) -> PatientTree:
    """One patient's tree. ``elsewhere``: UID -> Patient ID of the folder's other
    patients; ``referenced_from``: UID of an object here -> Patient ID of a plan
    elsewhere that references it (both empty for a patient built alone)."""
    unique, warnings = _dedupe(sorted(instances, key=lambda i: i.path))
    for w in warnings:
        log.info("%s", w)
    names = list(dict.fromkeys(i.patient_name for i in unique if i.patient_name))
    if len(names) > 1:
        warnings.append(f"Patient ID {patient_id or '<empty>'} has {len(names)} different Patient Names: " + ", ".join(names))
    name = names[0] if names else ""
    ix = PatientIndex(unique)
    builder = _Builder(ix, default_machines or {}, elsewhere)
    tree = PatientTree(patient_id, name, warnings=warnings)
    for plan in sorted(ix.plans, key=lambda p: (p.plan_label, p.plan_date, p.sop_instance_uid)):
        tree.plans.append(builder.plan_node(plan))
    reached = {i.sop_instance_uid for node in tree.plans for i in node.subtree_instances()}
    tree.unconnected = builder.unconnected(reached)
    for node in tree.unconnected:
        other = (referenced_from or {}).get(node.instances[0].sop_instance_uid) if node.instances else None
        if other is not None and not node.note:
            node.note = f"referenced by a plan in this folder under patient {other}"
            what = node.kind.replace("RT-Struct", "structure set")
            builder.cross[f"{what} {node.label} is referenced by a plan filed under another Patient ID: {other}"] = None
    tree.warnings.extend(builder.cross)
    return tree


def build_forest(
    instances: Iterable[InstanceSummary], default_machines: Mapping[str, str] | None = None
) -> list[PatientTree]:
    """Group by Patient ID (0010,0020) and build each patient's tree, sorted by ID."""
    by_patient: dict[str, list[InstanceSummary]] = defaultdict(list)
    for inst in instances:
        by_patient[inst.patient_id].append(inst)
    owner: dict[str, str] = {}  # SOP Instance UID -> Patient ID (first in sort order)
    for pid in sorted(by_patient):
        for inst in by_patient[pid]:
            owner.setdefault(inst.sop_instance_uid, pid)
    plan_refs: dict[str, str] = {}  # structure set UID -> Patient ID of a plan naming it
    for pid in sorted(by_patient):
        for inst in by_patient[pid]:
            if inst.sop_class_uid in PLAN_CLASSES:
                for uid in inst.referenced_structure_sets:
                    plan_refs.setdefault(uid, pid)
    trees = []
    for pid in sorted(by_patient):
        # Only what lives under another patient: references inside one patient never change.
        elsewhere = OtherPatients(owner, pid)
        referenced_from = {u: p for u, p in plan_refs.items() if p != pid and owner.get(u) == pid}
        trees.append(build_patient(pid, by_patient[pid], default_machines, elsewhere, referenced_from))
    return trees


def plan_nodes(patients: Iterable[PatientTree]) -> Iterator[tuple[PatientTree, Node]]:
    for patient in patients:
        for node in patient.plans:
            yield patient, node
