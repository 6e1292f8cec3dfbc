"""Reference-tree rules: instance summaries -> per-patient trees with RT Plans as roots.

Pure functions over :class:`InstanceSummary`; no I/O, no text (labels come
from :mod:`.labels`). The rules (child kind, attribute path, parent) are listed
in the README's tree-rules table; keep the two in step. Everything of a patient
that no plan reaches ends under ``unconnected`` so nothing disappears, and
nothing shown under a plan is repeated there.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from dicomtools.core.archive.model import (
    HALCYON_PLAN,
    PLAN_CLASSES,
    RT_ION_PLAN,
    RT_STRUCT,
    InstanceSummary,
)
from dicomtools.core.lazylog import get_logger
from dicomtools.core.tree import labels
from dicomtools.core.tree.index import OtherPatients, PatientIndex
from dicomtools.core.tree.model import (
    BeamNodeInfo,
    DoseInfo,
    MissingInfo,
    Node,
    NodeKind,
    OtherInfo,
    PatientTree,
    PlanInfo,
    RecordInfo,
    RegInfo,
    RtImageInfo,
    SeriesInfo,
    StructInfo,
)

log = get_logger(__name__)

UNCONNECTED_ORDER = (
    NodeKind.STRUCT, NodeKind.IMAGE, NodeKind.CBCT, NodeKind.DOSE, NodeKind.REG, NodeKind.RT_IMAGE,
    NodeKind.RECORD, NodeKind.PLAN, NodeKind.OTHER,
)


def _series_uids(node: Node) -> Iterator[str]:
    """The series shown directly below ``node`` (a structure set's images)."""
    for child in node.children:
        if isinstance(child.info, SeriesInfo):
            yield child.info.series_instance_uid


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


def plan_kind(inst: InstanceSummary) -> NodeKind:
    if inst.sop_class_uid == RT_ION_PLAN:
        return NodeKind.ION_PLAN
    if inst.brachy_treatment_type:
        return NodeKind.BRACHY_PLAN
    return NodeKind.PLAN


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
    def series_node(self, series_uid: str, kind: NodeKind = NodeKind.IMAGE) -> Node:
        members = self.ix.series[series_uid]
        first = members[0]
        info = SeriesInfo(
            series_instance_uid=series_uid,
            modality=first.modality,
            count=len(members),
            frame_of_reference_uid=first.frame_of_reference_uid,
            series_description=first.series_description,
        )
        return Node(kind, labels.series_label(info), list(members), info=info)

    def struct_node(self, ss: InstanceSummary, skip_series: set[str] | None = None) -> Node:
        node = Node(
            NodeKind.STRUCT,
            labels.struct_label(ss),
            [ss],
            info=StructInfo(structure_set_label=ss.structure_set_label, roi_count=ss.roi_count),
        )
        for series_uid in self.ix.series_for_struct(ss):
            if skip_series and series_uid in skip_series:
                continue
            node.children.append(self.series_node(series_uid))
        return node

    def dose_node(self, dose: InstanceSummary) -> Node:
        info = DoseInfo(dose_summation_type=dose.dose_summation_type)
        return Node(NodeKind.DOSE, labels.dose_label(dose), [dose], info=info)

    def record_node(self, rec: InstanceSummary) -> Node:
        info = RecordInfo(
            fraction_number=rec.fraction_number,
            beam_numbers=tuple(rec.referenced_beam_numbers),
            treatment_date=rec.treatment_date,
        )
        return Node(NodeKind.RECORD, labels.record_label(info), [rec], info=info)

    def rt_image_node(self, img: InstanceSummary) -> Node:
        info = RtImageInfo(rt_image_label=img.rt_image_label)
        return Node(NodeKind.RT_IMAGE, labels.rt_image_label(img), [img], info=info)

    def reg_leaf(self, reg: InstanceSummary) -> Node:
        info = RegInfo(registered_frames=tuple(reg.registered_frames))
        return Node(NodeKind.REG, labels.reg_label(reg), [reg], info=info)

    def machine_of(self, machine: str, model: str) -> tuple[str, bool]:
        if machine:
            return machine, False
        if model and model in self.default_machines:
            return self.default_machines[model], True
        return "", False

    def plan_info(self, plan: InstanceSummary, related: bool = False) -> PlanInfo:
        machines, defaulted = [], []
        for beam in plan.beams:
            name, was_defaulted = self.machine_of(beam.machine, beam.machine_model)
            machines.append(name)
            defaulted.append(was_defaulted)
        return PlanInfo(
            plan_label=plan.plan_label,
            plan_name=plan.plan_name,
            plan_intent=plan.plan_intent,
            approval_status=plan.approval_status,
            plan_date=plan.plan_date,
            machines=tuple(machines),
            machines_defaulted=tuple(defaulted),
            machine_models=tuple(b.machine_model for b in plan.beams),
            sop_instance_uid=plan.sop_instance_uid,
            related=related,
        )

    def related_plan_node(self, uid: str) -> Node:
        other = self.ix.by_uid.get(uid)
        if other is None or other.sop_class_uid not in PLAN_CLASSES:
            return Node(NodeKind.PLAN, uid, [], info=MissingInfo(uid, related=True),
                        note=self.missing("plan", uid, "a plan"))
        info = self.plan_info(other, related=True)
        return Node(plan_kind(other), labels.plan_label(info), [other], info=info, note="referenced plan")

    # -- a plan with everything it reaches ----------------------------------
    def plan_node(self, plan: InstanceSummary) -> Node:
        info = self.plan_info(plan)
        node = Node(plan_kind(plan), labels.plan_label(info), [plan], info=info)
        ix = self.ix
        uid = plan.sop_instance_uid
        plan_series: set[str] = set()
        plan_frames: set[str] = set()
        for ss_uid in plan.referenced_structure_sets:
            ss = ix.by_uid.get(ss_uid)
            if ss is None or ss.sop_class_uid != RT_STRUCT:
                note = self.missing("structure set", ss_uid, f"plan {plan.plan_label or uid}")
                node.children.append(Node(NodeKind.STRUCT, ss_uid, [], info=MissingInfo(ss_uid), note=note))
                continue
            ss_node = self.struct_node(ss)
            node.children.append(ss_node)
            plan_series.update(_series_uids(ss_node))
            plan_frames |= ix.struct_frames(ss)
        # beams with their DRRs / portal images and treatment records
        placed: set[str] = set()
        images_for_plan = [i for i in ix.rt_images if uid in i.referenced_plans]
        records_for_plan = [r for r in ix.records if uid in r.referenced_plans]
        for beam in plan.beams:
            machine, was_defaulted = self.machine_of(beam.machine, beam.machine_model)
            beam_info = BeamNodeInfo(
                beam_number=beam.number,
                beam_name=beam.name,
                delivery_type=beam.delivery_type,
                machine=machine,
                machine_model=beam.machine_model,
                machine_defaulted=was_defaulted,
            )
            beam_node = Node(NodeKind.BEAM, labels.beam_label(beam_info), [], info=beam_info)
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
            node.children.append(self.series_node(series_uid, NodeKind.CBCT))
        reg_group = self.registrations_node(plan_series, plan_frames)
        if reg_group is not None:
            node.children.append(reg_group)
        for other_uid in plan.referenced_plans:
            if other_uid != uid:
                node.children.append(self.related_plan_node(other_uid))
        return node

    def registrations_node(self, plan_series: set[str], plan_frames: set[str]) -> Node | None:
        group = Node(NodeKind.REGISTRATIONS, labels.REGISTRATIONS_TITLE)
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
        node = self.reg_leaf(reg)
        shown: set[str] = set(plan_series)
        for ss in sorted(ix.structs, key=lambda s: s.path):
            if ix.struct_frames(ss) & other_frames:
                ss_node = self.struct_node(ss, skip_series=shown)
                node.children.append(ss_node)
                shown.update(_series_uids(ss_node))
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
            shown_series.update(_series_uids(node))
            out.append(node)
        for uid in sorted(ix.series, key=lambda u: (ix.series[u][0].modality, ix.series[u][0].study_date, u)):
            if uid in shown_series:
                continue
            members = ix.series[uid]
            if any(m.sop_instance_uid in reached for m in members):
                members = [m for m in members if m.sop_instance_uid not in reached]
            kind = NodeKind.CBCT if uid in ix.cbct_series else NodeKind.IMAGE
            node = self.series_node(uid, kind)
            node.instances = list(members)
            # the label keeps the series' size; the count is what is shown here
            if isinstance(node.info, SeriesInfo):
                node.info = node.info.with_count(len(members))
            if kind is NodeKind.CBCT:
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
                out.append(self.reg_leaf(reg))
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
                out.append(Node(NodeKind.OTHER, labels.other_label(name, other), [other],
                                info=OtherInfo(sop_class_name=name)))
        out.sort(key=lambda n: UNCONNECTED_ORDER.index(n.kind) if n.kind in UNCONNECTED_ORDER else 99)
        return out


_by_path = operator.attrgetter("path")


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
    unique, warnings = _dedupe(sorted(instances, key=_by_path))
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
            what = "structure set" if node.kind is NodeKind.STRUCT else node.kind.value
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
