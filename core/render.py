"""Text forms of the reference tree for the CLI: tree, flat list, JSON.

The JSON form is a contract for users' scripts (documented in the README):
change it only by adding keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.jsontext import dumps_indented
from dicomtools.core.model import InstanceSummary, UnreadableFile
from dicomtools.core.tree import PLAN_KINDS, Node, PatientTree

UNCONNECTED_TITLE = "Not connected to any plan"
JSON_SCHEMA_VERSION = 1


def node_title(node: Node) -> str:
    """``Kind: label`` as seed users know it (``Image CT: 96 images (...)``)."""
    kind = node.kind
    if kind in ("Image", "CBCT") and node.fields.get("modality"):
        kind = f"{kind} {node.fields['modality']}"
    text = node.label if kind in ("Registrations",) else f"{kind}: {node.label}"
    if node.note:
        text += f" [{node.note}]"
    if any(i.truncated for i in node.instances):
        n = sum(1 for i in node.instances if i.truncated)
        text += f" [TRUNCATED: {n} file{'s' if n != 1 else ''}]"
    return text


def patient_title(patient: PatientTree) -> str:
    return f"Patient: {patient.patient_id or '<no id>'} ({patient.patient_name})"


def _tree_lines(nodes: list[Node], prefix: str, glyphs: tuple[str, str, str, str]) -> Iterator[str]:
    tee, last, pipe, space = glyphs
    for i, node in enumerate(nodes):
        is_last = i == len(nodes) - 1
        yield f"{prefix}{last if is_last else tee}{node_title(node)}"
        yield from _tree_lines(node.children, prefix + (space if is_last else pipe), glyphs)


def render_tree(
    patients: list[PatientTree],
    ascii: bool = False,
    unreadable: list[UnreadableFile] | None = None,
    files_seen: int | None = None,
) -> str:
    glyphs = ("+-- ", "`-- ", "|   ", "    ") if ascii else ("├── ", "└── ", "│   ", "    ")
    lines: list[str] = []
    for patient in patients:
        lines.append(patient_title(patient))
        top: list[Node] = list(patient.plans)
        if patient.unconnected:
            top.append(Node("Unconnected", UNCONNECTED_TITLE, children=patient.unconnected))
        for i, node in enumerate(top):
            is_last = i == len(top) - 1
            title = UNCONNECTED_TITLE if node.kind == "Unconnected" else node_title(node)
            lines.append(f"{glyphs[1] if is_last else glyphs[0]}{title}")
            lines.extend(_tree_lines(node.children, glyphs[3] if is_last else glyphs[2], glyphs))
        for warning in patient.warnings:
            lines.append(f"  warning: {warning}")
    lines.extend(_unreadable_lines(unreadable))
    lines.append(summary_line(patients, unreadable, files_seen))
    return _screen_text(lines)


def _screen_text(lines: list[str]) -> str:
    """Lines for a terminal: no control character from a file (or file name) gets through."""
    return "\n".join(sanitize(line) for line in lines) + "\n"


def _unreadable_lines(unreadable: list[UnreadableFile] | None) -> list[str]:
    if not unreadable:
        return []
    out = [f"Unreadable files ({len(unreadable)}):"]
    out.extend(f"  {u.path}: {u.reason}" for u in unreadable)
    return out


def summary_line(
    patients: list[PatientTree], unreadable: list[UnreadableFile] | None = None, files_seen: int | None = None
) -> str:
    plans = sum(len(p.plans) for p in patients)
    instances = sum(len(p.all_instances()) for p in patients)
    truncated = sum(1 for p in patients for i in p.all_instances() if i.truncated)
    parts = [
        f"{len(patients)} patient{'s' if len(patients) != 1 else ''}",
        f"{plans} plan{'s' if plans != 1 else ''}",
        f"{instances} DICOM file{'s' if instances != 1 else ''}",
        f"{len(unreadable or [])} unreadable",
    ]
    if truncated:
        parts.append(f"{truncated} truncated")
    if files_seen is not None:
        parts.append(f"{files_seen} files scanned")
    text = ", ".join(parts)
    if not patients:
        text = "No DICOM files found. " + text
    return text


def _flat_lines(node: Node, path: str) -> Iterator[str]:
    here = f"{path} / {node_title(node)}"
    yield here
    for child in node.children:
        yield from _flat_lines(child, here)


def render_flat(
    patients: list[PatientTree],
    unreadable: list[UnreadableFile] | None = None,
    files_seen: int | None = None,
) -> str:
    lines: list[str] = []
    for patient in patients:
        base = patient_title(patient)
        lines.append(base)
        for node in patient.plans:
            lines.extend(_flat_lines(node, base))
        for node in patient.unconnected:
            lines.extend(_flat_lines(node, f"{base} / {UNCONNECTED_TITLE}"))
    lines.extend(_unreadable_lines(unreadable))
    lines.append(summary_line(patients, unreadable, files_seen))
    return _screen_text(lines)


def instance_json(inst: InstanceSummary) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sop_instance_uid": inst.sop_instance_uid,
        "sop_class_uid": inst.sop_class_uid,
        "path": inst.path,
    }
    if inst.truncated:
        out["truncated"] = True
    return out


def node_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": node.kind,
        "label": node.label,
        "instances": [instance_json(i) for i in node.instances],
        "children": [node_json(c) for c in node.children],
    }
    if node.note:
        out["note"] = node.note
    if node.kind in PLAN_KINDS:
        for key in ("plan_label", "approval_status", "machines", "plan_intent", "machines_defaulted"):
            if key in node.fields:
                out[key] = node.fields[key]
        if node.fields.get("related"):
            out["related"] = True
    elif node.kind in ("Image", "CBCT"):
        out["series_instance_uid"] = node.fields.get("series_instance_uid", "")
        out["modality"] = node.fields.get("modality", "")
    elif node.kind == "Beam":
        out["beam_number"] = node.fields.get("beam_number")
        out["machine"] = node.fields.get("machine", "")
    elif node.kind == "RT-Dose":
        out["dose_summation_type"] = node.fields.get("dose_summation_type", "")
    elif node.kind == "RT-Record":
        out["fraction_number"] = node.fields.get("fraction_number")
    return out


def forest_to_json(
    patients: list[PatientTree],
    unreadable: Iterable[UnreadableFile] = (),
    stats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    bad = list(unreadable)
    plans = sum(len(p.plans) for p in patients)
    instances = sum(len(p.all_instances()) for p in patients)
    base_stats: dict[str, Any] = {
        "patients": len(patients),
        "plans": plans,
        "instances": instances,
        "unreadable": len(bad),
        "truncated": sum(1 for p in patients for i in p.all_instances() if i.truncated),
    }
    base_stats.update(stats or {})
    return {
        "schema": JSON_SCHEMA_VERSION,
        "patients": [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "plans": [node_json(n) for n in p.plans],
                "unconnected": [node_json(n) for n in p.unconnected],
                "warnings": list(p.warnings),
            }
            for p in patients
        ],
        "unreadable": [{"path": u.path, "reason": u.reason} for u in bad],
        "stats": base_stats,
    }


def render_json(
    patients: list[PatientTree],
    unreadable: Iterable[UnreadableFile] = (),
    stats: dict[str, Any] | None = None,
) -> str:
    # the same bytes as json.dumps(..., indent=2, ensure_ascii=False), in half the time
    return dumps_indented(forest_to_json(patients, unreadable, stats)) + "\n"
