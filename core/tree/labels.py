"""Every text of the reference tree, made in one place from the typed node data.

The builder stores the label each node gets (``Node.label``, part of the JSON
contract); the CLI's ``Kind: label`` line and the TUI's short line are made
here too, from :attr:`Node.info`, so no front end parses label text back.
"""

from __future__ import annotations

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.dicom.text import sanitize
from dicomtools.core.tree.model import (
    BeamNodeInfo,
    DoseInfo,
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

UNCONNECTED_TITLE = "Not connected to any plan"
REGISTRATIONS_TITLE = "Registrations"


def _machine_text(machine: str, defaulted: bool) -> str:
    return (machine + " (default)" if defaulted else machine) or "<empty>"


def plan_label(info: PlanInfo) -> str:
    """``PLAN_A, Intent: CURATIVE, Approval: APPROVED, Machine: TrueBeam1, Date: 20240115``."""
    distinct: list[str] = []
    for name, was in zip(info.machines, info.machines_defaulted, strict=True):
        shown = _machine_text(name, was)
        if shown not in distinct:
            distinct.append(shown)
    parts = [
        info.plan_label or info.sop_instance_uid,
        f"Intent: {info.plan_intent or '-'}",
        f"Approval: {info.approval_status or '-'}",
    ]
    if distinct:
        parts.append("Machine: " + ", ".join(distinct))
    if info.plan_date:
        parts.append(f"Date: {info.plan_date}")
    return ", ".join(parts)


def beam_label(info: BeamNodeInfo) -> str:
    """``G000 (1), TREATMENT, Machine: TrueBeam1``."""
    label = f"{info.beam_name or '?'} ({info.beam_number}), {info.delivery_type or '-'}"
    return label + f", Machine: {info.machine or '<empty>'}{' (default)' if info.machine_defaulted else ''}"


def series_label(info: SeriesInfo) -> str:
    """``12 images, PLANNING CT (SeriesUID: 1.2...)``."""
    desc = f", {info.series_description}" if info.series_description else ""
    noun = "image" if info.count == 1 else "images"
    return f"{info.count} {noun}{desc} (SeriesUID: {info.series_instance_uid})"


def struct_label(ss: InstanceSummary) -> str:
    return ss.structure_set_label or ss.series_description or ss.sop_instance_uid


def dose_label(dose: InstanceSummary) -> str:
    return f"{dose.series_description or 'Dose'}, Summation type: {dose.dose_summation_type or '?'}"


def record_label(info: RecordInfo) -> str:
    """``Fraction 1, 20240201, beam 1``."""
    frac = f"Fraction {info.fraction_number}" if info.fraction_number is not None else "Fraction ?"
    date = f", {info.treatment_date}" if info.treatment_date else ""
    beams = ",".join(str(b) for b in info.beam_numbers)
    return f"{frac}{date}" + (f", beam {beams}" if beams else "")


def rt_image_label(img: InstanceSummary) -> str:
    return img.rt_image_label or img.series_description or img.sop_instance_uid


def reg_label(reg: InstanceSummary) -> str:
    return reg.series_description or reg.sop_instance_uid


def other_label(class_name: str, inst: InstanceSummary) -> str:
    return f"{class_name}: {inst.series_description or inst.sop_instance_uid}"


def _kind_text(node: Node) -> str:
    """``RT-Plan``; a series with its modality: ``Image CT``."""
    if isinstance(node.info, SeriesInfo) and node.info.modality:
        return f"{node.kind.value} {node.info.modality}"
    return node.kind.value


def node_name(node: Node) -> str:
    """What names the object, without its facts: ``PLAN_A``, ``12 images``, ``G000 (1)``, ``Fraction 1``."""
    info = node.info
    if isinstance(info, PlanInfo):
        return info.plan_label or info.sop_instance_uid
    if isinstance(info, SeriesInfo):
        return f"{info.count} {'image' if info.count == 1 else 'images'}"
    if isinstance(info, BeamNodeInfo):
        return f"{info.beam_name or '?'} ({info.beam_number})"
    if isinstance(info, RecordInfo):
        return f"Fraction {info.fraction_number}" if info.fraction_number is not None else "Fraction ?"
    if isinstance(info, DoseInfo):
        return (node.instances[0].series_description if node.instances else "") or "Dose"
    return node.label


def short_title(node: Node) -> str:
    """``RT-Plan: PLAN_A``, ``Image CT: 12 images``: a node named in a path of nodes."""
    if node.kind is NodeKind.REGISTRATIONS:
        return node.label
    return f"{_kind_text(node)}: {node_name(node)}"


def node_title(node: Node) -> str:
    """``Kind: label`` as seed users know it (``Image CT: 96 images (...)``), with notes."""
    kind = _kind_text(node)
    text = node.label if node.kind is NodeKind.REGISTRATIONS else f"{kind}: {node.label}"
    if node.note:
        text += f" [{node.note}]"
    if any(i.truncated for i in node.instances):
        n = sum(1 for i in node.instances if i.truncated)
        text += f" [TRUNCATED: {n} file{'s' if n != 1 else ''}]"
    return text


def patient_title(patient: PatientTree) -> str:
    return f"Patient: {patient.patient_id or '<no id>'} ({patient.patient_name})"


def short_label(node: Node) -> str:
    """The label shortened for a TUI tree line (the details pane shows everything); sanitized.

    A plan: ``label  APPROVAL  machine/machine``; a series: ``CT: 12 images, desc``.
    """
    info = node.info
    if isinstance(info, PlanInfo):
        parts = [info.plan_label or info.sop_instance_uid]
        if info.approval_status:
            parts.append(info.approval_status)
        machines = [m for m in dict.fromkeys(info.machines) if m]
        if machines:
            parts.append("/".join(machines))
        return sanitize("  ".join(parts))
    if isinstance(info, SeriesInfo):
        desc = f", {info.series_description}" if info.series_description else ""
        noun = "image" if info.count == 1 else "images"
        label = f"{info.count} {noun}{desc}"
        return sanitize(f"{info.modality}: {label}" if info.modality else label)
    return sanitize(node.label)


Fact = str | int | tuple[str, ...] | tuple[int, ...] | None


def _facts_of(node: Node) -> list[tuple[str, Fact]]:
    """The facts of a node worth a line in a details pane, in reading order, from its typed data.

    What the label already says (plan label, image count) and internals (UIDs of the
    plan, which machines were defaulted) are left out.
    """
    info = node.info
    if isinstance(info, PlanInfo):
        return [("plan name", info.plan_name), ("plan intent", info.plan_intent),
                ("approval status", info.approval_status), ("plan date", info.plan_date),
                ("machines", info.machines), ("machine models", info.machine_models)]
    if isinstance(info, SeriesInfo):
        return [("series instance uid", info.series_instance_uid), ("modality", info.modality),
                ("frame of reference uid", info.frame_of_reference_uid)]
    if isinstance(info, StructInfo):
        return [("structure set label", info.structure_set_label), ("roi count", info.roi_count)]
    if isinstance(info, BeamNodeInfo):
        return [("beam number", info.beam_number), ("beam name", info.beam_name),
                ("delivery type", info.delivery_type), ("machine", info.machine),
                ("machine model", info.machine_model)]
    if isinstance(info, DoseInfo):
        return [("dose summation type", info.dose_summation_type)]
    if isinstance(info, RecordInfo):
        return [("fraction number", info.fraction_number), ("beam numbers", info.beam_numbers)]
    if isinstance(info, RtImageInfo):
        return [("rt image label", info.rt_image_label)]
    if isinstance(info, RegInfo):
        return [("registered frames", info.registered_frames)]
    if isinstance(info, OtherInfo):
        return [("sop class name", info.sop_class_name)]
    return []


def node_facts(node: Node) -> list[tuple[str, str]]:
    """``(name, text)`` pairs for a details pane: empty facts dropped, lists as distinct values; sanitized."""
    out: list[tuple[str, str]] = []
    for name, value in _facts_of(node):
        if value is None or value == "" or value == ():
            continue
        if isinstance(value, tuple):
            text = ", ".join(str(v) for v in dict.fromkeys(value) if str(v)) or "-"
        else:
            text = str(value)
        out.append((name, sanitize(text)))
    return out
