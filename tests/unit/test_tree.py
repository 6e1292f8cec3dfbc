"""The reference tree of a generated archive matches what the generator wrote, exactly."""

from __future__ import annotations

import pytest

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.archive.scan import scan
from dicomtools.core.phantom.manifest import PatientManifest, PhantomManifest
from dicomtools.core.tree import Node, PatientTree, build_forest


@pytest.fixture(scope="module")
def forest(phantom: PhantomManifest) -> dict[str, PatientTree]:
    result = scan(phantom.root, workers=1)
    return {p.patient_id: p for p in build_forest(result.instances, {"RDS": "HALCYON"})}


def uids(nodes: list[Node]) -> list[str]:
    return [i.sop_instance_uid for n in nodes for i in n.instances]


def children(node: Node, kind: str) -> list[Node]:
    return [c for c in node.children if c.kind == kind]


def plan_by_label(tree: PatientTree, label: str) -> Node:
    found = [p for p in tree.plans if p.info.plan_label == label]
    assert len(found) == 1, [p.label for p in tree.plans]
    return found[0]


def test_patients_are_separate(phantom: PhantomManifest, forest: dict[str, PatientTree]) -> None:
    assert set(forest) == set(phantom.patients)
    for pid, tree in forest.items():
        assert tree.patient_name == phantom.patients[pid].patient_name
        assert {i.patient_id for i in tree.all_instances()} == {pid}


def test_every_readable_file_appears_exactly_once_per_patient(
    phantom: PhantomManifest, forest: dict[str, PatientTree]
) -> None:
    for pid, pm in phantom.patients.items():
        assert {i.sop_instance_uid for i in forest[pid].all_instances()} == pm.all_sop_uids


@pytest.mark.parametrize("label", ["PLAN_A", "PLAN_B", "QA_A", "PROTON_1"])
def test_plan_subtree_matches_manifest(
    phantom: PhantomManifest, forest: dict[str, PatientTree], label: str
) -> None:
    for pid, pm in phantom.patients.items():
        want = pm.plans[label]
        node = plan_by_label(forest[pid], label)
        assert node.instances[0].sop_instance_uid == want.sop_uid
        assert node.kind == ("RT-Ion-Plan" if label == "PROTON_1" else "RT-Plan")
        assert node.info.approval_status == want.approval_status
        # structure set and the image series it is drawn on, with its count
        ss = children(node, "RT-Struct")
        assert uids(ss) == [want.structure_set_uid]
        series = children(ss[0], "Image")
        assert [s.info.series_instance_uid for s in series] == [want.image_series_uid]
        assert series[0].info.count == want.image_count == len(series[0].instances)
        # beams in order, with DRRs, portal images and records sorted by fraction
        beams = children(node, "Beam")
        assert [b.info.beam_number for b in beams] == want.beam_numbers
        for beam in beams:
            n = beam.info.beam_number
            assert set(uids(children(beam, "RT-Image"))) == set(
                want.drr_uids_by_beam.get(n, []) + want.portal_uids_by_beam.get(n, [])
            )
            assert uids(children(beam, "RT-Record")) == want.record_uids_by_beam.get(n, [])
        assert uids(children(node, "RT-Record")) == want.plan_level_records
        assert uids(children(node, "RT-Dose")) == want.dose_uids
        cbct = children(node, "CBCT")
        if want.cbct_series_uid:
            assert [c.info.series_instance_uid for c in cbct] == [want.cbct_series_uid]
            assert len(cbct[0].instances) == want.cbct_count
        else:
            assert cbct == []
        regs = children(node, "Registrations")
        if want.registration_uid:
            reg = regs[0].children[0]
            assert reg.kind == "REG" and uids([reg]) == [want.registration_uid]
            reg_ss = children(reg, "RT-Struct")
            assert uids(reg_ss) == [want.registered_structure_set_uid]
            reg_series = [s for n in reg.walk() for s in [n] if n.kind == "Image"]
            assert [s.info.series_instance_uid for s in reg_series] == [want.registered_series_uid]
        else:
            assert regs == []
        related = [c for c in node.children if c.kind.startswith("RT-") and c.kind.endswith("Plan")]
        assert uids(related) == want.referenced_plan_uids


def test_machines_and_defaults(forest: dict[str, PatientTree], phantom: PhantomManifest) -> None:
    for pid, pm in phantom.patients.items():
        plan_b = plan_by_label(forest[pid], "PLAN_B")
        assert pm.plans["PLAN_B"].machines == ["", ""]
        assert plan_b.info.machines == ("HALCYON", "HALCYON")
        assert plan_b.info.machines_defaulted == (True, True)
        plan_a = plan_by_label(forest[pid], "PLAN_A")
        assert list(plan_a.info.machines) == pm.plans["PLAN_A"].machines
        assert list(plan_a.info.machines_defaulted) == [False] * len(pm.plans["PLAN_A"].machines)


def test_without_defaults_machine_stays_empty(phantom: PhantomManifest) -> None:
    result = scan(phantom.root, workers=1)
    tree = {p.patient_id: p for p in build_forest(result.instances)}
    for pid in phantom.patients:
        assert plan_by_label(tree[pid], "PLAN_B").info.machines == ("", "")


def _unconnected_expectation(pm: PatientManifest) -> dict[str, set[str]]:
    u = pm.unconnected
    return {
        "RT-Struct": set(u.structure_sets),
        "RT-Dose": set(u.doses),
        "RT-Record": set(u.records),
        "RT-Image": set(u.rt_images),
        "REG": set(u.registrations),
        "Other": set(u.other),
    }


def test_unconnected_holds_exactly_what_no_plan_reaches(
    phantom: PhantomManifest, forest: dict[str, PatientTree]
) -> None:
    for pid, pm in phantom.patients.items():
        tree = forest[pid]
        for kind, want in _unconnected_expectation(pm).items():
            got = {i.sop_instance_uid for n in tree.unconnected if n.kind == kind for i in n.instances}
            assert got == want, kind
        series = {
            n.info.series_instance_uid: len(n.instances)
            for top in tree.unconnected
            for n in top.walk()
            if n.kind == "Image"
        }
        assert series == pm.unconnected.series
        # nothing shown under a plan is repeated under unconnected
        under_plans = {i.sop_instance_uid for p in tree.plans for i in p.subtree_instances()}
        unconnected = {i.sop_instance_uid for n in tree.unconnected for i in n.subtree_instances()}
        assert not under_plans & unconnected
        assert under_plans | unconnected == pm.all_sop_uids


def test_orphans_say_their_plan_is_missing(phantom: PhantomManifest, forest: dict[str, PatientTree]) -> None:
    for pid, pm in phantom.patients.items():
        for node in forest[pid].unconnected:
            if node.kind in ("RT-Dose", "RT-Record"):
                assert pm.missing_plan_uid in node.note


def _summary(uid: str, cls: str, **kw: object) -> InstanceSummary:
    s = InstanceSummary(path=f"/x/{uid}", sop_instance_uid=uid, sop_class_uid=cls, patient_id="P")
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_reference_cycles_terminate_and_object_under_two_plans() -> None:
    plan = "1.2.840.10008.5.1.4.1.1.481.5"
    dose = "1.2.840.10008.5.1.4.1.1.481.2"
    a = _summary("1", plan, plan_label="A", referenced_plans=("1", "2"))
    b = _summary("2", plan, plan_label="B", referenced_plans=("1",))
    d = _summary("3", dose, referenced_plans=("1", "2"), dose_summation_type="PLAN")
    (tree,) = build_forest([a, b, d])
    labels = {p.info.plan_label: p for p in tree.plans}
    assert set(labels) == {"A", "B"}
    for p in labels.values():
        assert uids(children(p, "RT-Dose")) == ["3"]
    assert [c.instances[0].sop_instance_uid for c in labels["A"].children if c.kind == "RT-Plan"] == ["2"]
    assert tree.unconnected == []


def test_duplicate_sop_uid_warns_and_keeps_first() -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    one = _summary("9", ct, series_instance_uid="S", modality="CT")
    two = _summary("9", ct, series_instance_uid="S", modality="CT")
    two.path = "/y/9"
    (tree,) = build_forest([two, one])
    assert len(tree.all_instances()) == 1 and tree.all_instances()[0].path == "/x/9"
    assert len(tree.warnings) == 1 and "/x/9" in tree.warnings[0] and "/y/9" in tree.warnings[0]


def test_structure_set_falls_back_to_frame_of_reference() -> None:
    ct, mr, rs = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.481.3"
    images = [
        _summary("c1", ct, series_instance_uid="SC", modality="CT", frame_of_reference_uid="F"),
        _summary("m1", mr, series_instance_uid="SM", modality="MR", frame_of_reference_uid="F"),
    ]
    ss = _summary("s", rs, referenced_frames=("F",), structure_set_label="SS")
    plan = _summary("p", "1.2.840.10008.5.1.4.1.1.481.5", referenced_structure_sets=("s",))
    (tree,) = build_forest([*images, ss, plan])
    ss_node = children(tree.plans[0], "RT-Struct")[0]
    assert [c.info.series_instance_uid for c in ss_node.children] == ["SC"]
    assert [getattr(n.info, "series_instance_uid", None) for n in tree.unconnected] == ["SM"]


def test_series_members_sort_by_instance_number_whatever_its_spelling() -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    numbers = {"a": "10", "b": " 2", "c": "1.0", "d": "", "e": "inf", "f": "nan", "g": "3.7", "h": "-1"}
    instances = [_summary(uid, ct, series_instance_uid="S", modality="CT", instance_number=n)
                 for uid, n in numbers.items()]
    [patient] = build_forest(instances)
    [series] = patient.unconnected
    # numbers first (3.7 counts as 3), then everything that is no finite number, by path
    assert [i.sop_instance_uid for i in series.instances] == ["h", "c", "b", "g", "a", "d", "e", "f"]
