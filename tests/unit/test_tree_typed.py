"""The typed tree: every node's kind is a NodeKind with the data of that kind, and the texts
made from the typed data agree with the texts the front ends used to parse out of labels."""

from __future__ import annotations

import json
import re

import pytest

from dicomtools.core.archive.scan import scan
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.render.forest import node_json, render_json
from dicomtools.core.tree import (
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
    build_forest,
)
from dicomtools.core.tree.labels import node_facts, node_name, node_title, short_label, short_title

INFO_OF_KIND = {
    NodeKind.PLAN: (PlanInfo, MissingInfo),
    NodeKind.ION_PLAN: (PlanInfo,),
    NodeKind.BRACHY_PLAN: (PlanInfo,),
    NodeKind.STRUCT: (StructInfo, MissingInfo),
    NodeKind.IMAGE: (SeriesInfo,),
    NodeKind.CBCT: (SeriesInfo,),
    NodeKind.BEAM: (BeamNodeInfo,),
    NodeKind.DOSE: (DoseInfo,),
    NodeKind.RECORD: (RecordInfo,),
    NodeKind.RT_IMAGE: (RtImageInfo,),
    NodeKind.REG: (RegInfo,),
    NodeKind.OTHER: (OtherInfo,),
    NodeKind.REGISTRATIONS: (type(None),),
}


@pytest.fixture(scope="module")
def forest(phantom: PhantomManifest) -> list[PatientTree]:
    return build_forest(scan(phantom.root, workers=1).instances, {"RDS": "HALCYON"})


def _nodes(forest: list[PatientTree]) -> list[Node]:
    return [n for p in forest for n in p.nodes()]


def test_each_kind_carries_its_own_typed_data(forest: list[PatientTree]) -> None:
    nodes = _nodes(forest)
    seen = {n.kind for n in nodes}
    # the phantom has every kind the rules make, so the check below covers them all
    assert seen >= set(INFO_OF_KIND) - {NodeKind.BRACHY_PLAN, NodeKind.OTHER}
    for node in nodes:
        assert type(node.kind) is NodeKind
        assert isinstance(node.info, INFO_OF_KIND[node.kind]), (node.kind, node.info)


def test_kinds_still_compare_with_the_contract_strings(forest: list[PatientTree]) -> None:
    plan = forest[0].plans[0]
    assert plan.kind == "RT-Plan" and plan.kind in ("RT-Plan", "RT-Ion-Plan") and plan.kind.is_plan
    assert json.dumps(plan.kind) == '"RT-Plan"'
    assert Node("Image", "x").kind is NodeKind.IMAGE  # a plain string is accepted
    with pytest.raises(ValueError):
        Node("Imagez", "x")


def test_the_tree_has_no_dict_view_any_more(forest: list[PatientTree]) -> None:
    """Every consumer reads ``Node.info``; the old ``fields`` dict is gone, so none can creep back."""
    assert not hasattr(Node, "fields")
    for node in _nodes(forest):
        assert not hasattr(node.info, "as_fields")
        if isinstance(node.info, PlanInfo):
            assert node.plan is node.instances[0]
            assert node.plan.sop_instance_uid == node.info.sop_instance_uid
        else:
            assert node.plan is None or node.kind.is_plan
    related = [n for n in _nodes(forest) if isinstance(n.info, PlanInfo | MissingInfo) and n.info.related]
    assert related and all(node_json(n)["related"] is True for n in related)


_SERIES_UID = re.compile(r"\s*\(SeriesUID: [^)]*\)")


def _short_label_from_text(node: Node) -> str:
    """What the TUI's tree line showed by parsing the label (tui/widgets/ref_tree.py before),
    reading the facts from the JSON contract instead of the removed ``fields`` dict."""
    fields = node_json(node)
    if node.kind.is_plan and "plan_label" in fields:
        parts = [fields.get("plan_label") or node.label.split(",")[0]]
        if fields.get("approval_status"):
            parts.append(str(fields["approval_status"]))
        machines = [m for m in dict.fromkeys(fields.get("machines") or []) if m]
        if machines:
            parts.append("/".join(machines))
        return "  ".join(str(p) for p in parts)
    label = _SERIES_UID.sub("", node.label)
    if node.kind.is_series and fields.get("modality"):
        label = f"{fields['modality']}: {label}"
    return label


def test_short_label_from_typed_data_equals_the_parsed_label(forest: list[PatientTree]) -> None:
    nodes = _nodes(forest)
    assert any(n.kind.is_series for n in nodes) and any(n.kind.is_plan for n in nodes)
    for node in nodes:
        assert short_label(node) == _short_label_from_text(node), node.label


def test_names_from_typed_data_equal_the_label_text_cut_at_the_first_comma(
    forest: list[PatientTree],
) -> None:
    """Marks and the flat list's "under" column used ``label.split(",")[0]``; the typed names agree."""
    nodes = _nodes(forest)
    kinds = set()
    for node in nodes:
        if node.kind in (NodeKind.REGISTRATIONS, NodeKind.OTHER):
            continue
        kinds.add(node.kind)
        assert node_name(node) == node.label.split(",")[0], node.label
        if (node.kind.is_series and "," not in node.label) or node.note or node.instances and any(
            i.truncated for i in node.instances
        ):  # no description: the UID is no name; a note is not part of a node's name
            continue
        assert short_title(node) == node_title(node).split(",")[0], node.label
    assert {NodeKind.PLAN, NodeKind.IMAGE, NodeKind.BEAM, NodeKind.DOSE, NodeKind.RECORD} <= kinds


def test_details_facts_come_from_typed_data(forest: list[PatientTree]) -> None:
    plan = next(n for n in _nodes(forest) if isinstance(n.info, PlanInfo) and n.info.plan_intent)
    facts = dict(node_facts(plan))
    assert facts["plan intent"] == plan.info.plan_intent  # type: ignore[union-attr]
    assert "sop instance uid" not in facts and "machines defaulted" not in facts
    series = next(n for n in _nodes(forest) if isinstance(n.info, SeriesInfo))
    assert dict(node_facts(series))["series instance uid"] == series.info.series_instance_uid  # type: ignore[union-attr]
    assert all(value for _, value in node_facts(plan))  # empty facts are left out


def test_titles_and_json_keys_per_kind(forest: list[PatientTree]) -> None:
    keys_by_kind: dict[str, set[str]] = {}
    for node in _nodes(forest):
        doc = node_json(node)
        keys_by_kind.setdefault(doc["kind"], set()).update(doc)
        assert node_title(node).startswith(node.label if node.kind is NodeKind.REGISTRATIONS else f"{node.kind}")
    base = {"kind", "label", "instances", "children"}
    assert keys_by_kind["RT-Plan"] - base - {"note"} == {
        "plan_label", "approval_status", "plan_intent", "machines", "machines_defaulted", "related"}
    assert keys_by_kind["Image"] - base - {"note"} == {"series_instance_uid", "modality"}
    assert keys_by_kind["Beam"] - base == {"beam_number", "machine"}
    assert keys_by_kind["RT-Dose"] - base - {"note"} == {"dose_summation_type"}
    assert keys_by_kind["RT-Record"] - base - {"note"} == {"fraction_number"}
    doc = json.loads(render_json(forest))
    plan = doc["patients"][0]["plans"][0]
    assert list(plan)[:4] == ["kind", "label", "instances", "children"]
