"""Text forms of the reference tree for the CLI: tree, flat list, JSON.

The JSON form is a contract for users' scripts (documented in the README):
change it only by adding keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.dicom.text import sanitize
from dicomtools.core.render.jsontext import Made, dumps_indented, encode_basestring
from dicomtools.core.tree import (
    BeamNodeInfo,
    DoseInfo,
    MissingInfo,
    Node,
    NodeKind,
    PatientTree,
    PlanInfo,
    RecordInfo,
    SeriesInfo,
)
from dicomtools.core.tree.labels import UNCONNECTED_TITLE as UNCONNECTED_TITLE
from dicomtools.core.tree.labels import node_title as node_title
from dicomtools.core.tree.labels import patient_title as patient_title

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

JSON_SCHEMA_VERSION = 1


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
            top.append(Node(NodeKind.UNCONNECTED, UNCONNECTED_TITLE, children=patient.unconnected))
        for i, node in enumerate(top):
            is_last = i == len(top) - 1
            title = UNCONNECTED_TITLE if node.kind is NodeKind.UNCONNECTED else node_title(node)
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


def instances_text(instances: list[InstanceSummary], indent: str) -> str:
    """``dumps_indented([instance_json(i) for i in instances])`` at ``indent``, without making the dicts.

    Instances are nearly all of the document (100,000 files: 100,000 of them),
    so their text is written in one expression each (5,000 instances: ~3 ms, not ~9).
    """
    if not instances:
        return "[]"
    inner = indent + "  "
    sep = ",\n" + inner + "  "
    head = "{\n" + inner + '  "sop_instance_uid": '
    cls = sep + '"sop_class_uid": '
    path = sep + '"path": '
    truncated = sep + '"truncated": true'
    tail = "\n" + inner + "}"
    enc = encode_basestring
    parts = [
        f"{head}{enc(i.sop_instance_uid)}{cls}{enc(i.sop_class_uid)}{path}{enc(i.path)}"
        f"{truncated if i.truncated else ''}{tail}"
        for i in instances
    ]
    # the brackets go onto the (small) first and last parts: the whole text is copied once
    parts[0] = "[\n" + inner + parts[0]
    parts[-1] += "\n" + indent + "]"
    return (",\n" + inner).join(parts)


def _instance_dicts(instances: list[InstanceSummary]) -> list[dict[str, Any]]:
    return [instance_json(i) for i in instances]


def _instances_made(instances: list[InstanceSummary]) -> Made:
    return Made(lambda indent: instances_text(instances, indent), lambda: _instance_dicts(instances))


def node_json(node: Node, instances: Callable[[list[InstanceSummary]], Any] = _instance_dicts) -> dict[str, Any]:
    """One node of the JSON contract: common keys, then the keys of its kind (README table).

    ``instances`` writes the instance list (plain dicts; :func:`render_json` lets the writer make its text).
    """
    out: dict[str, Any] = {
        "kind": node.kind.value,
        "label": node.label,
        "instances": instances(node.instances),
        "children": [node_json(c, instances) for c in node.children],
    }
    if node.note:
        out["note"] = node.note
    out.update(_kind_json(node))
    return out


def _kind_json(node: Node) -> dict[str, Any]:
    """The per-kind keys, in the contract's order, from the node's typed data."""
    info = node.info
    if node.kind.is_plan:
        out: dict[str, Any] = {}
        if isinstance(info, PlanInfo):
            out = {
                "plan_label": info.plan_label,
                "approval_status": info.approval_status,
                "machines": list(info.machines),
                "plan_intent": info.plan_intent,
                "machines_defaulted": list(info.machines_defaulted),
            }
        if isinstance(info, PlanInfo | MissingInfo) and info.related:
            out["related"] = True
        return out
    if node.kind.is_series:
        series = info if isinstance(info, SeriesInfo) else None
        return {
            "series_instance_uid": series.series_instance_uid if series else "",
            "modality": series.modality if series else "",
        }
    if node.kind is NodeKind.BEAM:
        beam = info if isinstance(info, BeamNodeInfo) else None
        return {"beam_number": beam.beam_number if beam else None, "machine": beam.machine if beam else ""}
    if node.kind is NodeKind.DOSE:
        return {"dose_summation_type": info.dose_summation_type if isinstance(info, DoseInfo) else ""}
    if node.kind is NodeKind.RECORD:
        return {"fraction_number": info.fraction_number if isinstance(info, RecordInfo) else None}
    return {}


def forest_to_json(
    patients: list[PatientTree],
    unreadable: Iterable[UnreadableFile] = (),
    stats: dict[str, Any] | None = None,
    instance_list: Callable[[list[InstanceSummary]], Any] = _instance_dicts,
) -> dict[str, Any]:
    bad = list(unreadable)
    plans = sum(len(p.plans) for p in patients)
    every = [p.all_instances() for p in patients]  # one walk of each tree, not two
    base_stats: dict[str, Any] = {
        "patients": len(patients),
        "plans": plans,
        "instances": sum(len(found) for found in every),
        "unreadable": len(bad),
        "truncated": sum(1 for found in every for i in found if i.truncated),
    }
    base_stats.update(stats or {})
    return {
        "schema": JSON_SCHEMA_VERSION,
        "patients": [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "plans": [node_json(n, instance_list) for n in p.plans],
                "unconnected": [node_json(n, instance_list) for n in p.unconnected],
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
    return dumps_indented(forest_to_json(patients, unreadable, stats, _instances_made)) + "\n"
