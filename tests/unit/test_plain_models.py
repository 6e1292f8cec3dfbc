"""The scan and tree records are plain classes (start-up speed): they must behave as the dataclasses did."""

from __future__ import annotations

import inspect
import pickle

import pytest

from dicomtools.core.archive.model import (
    SUMMARY_FIELDS,
    BeamInfo,
    InstanceSummary,
    ScanResult,
    UnreadableFile,
)
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.tree.model import (
    DoseInfo,
    Node,
    NodeKind,
    PatientTree,
    RtImageInfo,
    SeriesInfo,
)


def test_summary_fields_are_the_constructor_the_slots_and_the_values() -> None:
    params = list(inspect.signature(InstanceSummary).parameters)
    assert params == list(SUMMARY_FIELDS) == list(InstanceSummary.__slots__)
    s = InstanceSummary("p", "1.2", "1.3", patient_id="X", beams=(BeamInfo(1, "A"),))
    assert s.values() == tuple(getattr(s, f) for f in SUMMARY_FIELDS)
    assert InstanceSummary(*s.values()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert "patient_id='X'" in repr(s)
    assert not hasattr(s, "__dict__")  # slotted: a 100,000-file scan holds 100,000 of them


def test_summary_equality_is_field_by_field_and_unhashable() -> None:
    a = InstanceSummary("p", "1.2", "1.3")
    b = InstanceSummary("p", "1.2", "1.3")
    assert a == b
    b.roi_count = 3
    assert a != b
    assert a != ("p", "1.2", "1.3")
    with pytest.raises(TypeError):
        hash(a)


def test_defaults_are_not_shared_between_results() -> None:
    one, two = ScanResult("a"), ScanResult("b")
    one.instances.append(InstanceSummary("p", "1", "2"))
    one.unreadable.append(UnreadableFile("q", "not DICOM", ReasonKind.NOT_DICOM))
    assert two.instances == [] and two.unreadable == []
    n1, n2 = Node(NodeKind.IMAGE, "x"), Node("Image", "y")
    n1.children.append(n2)
    assert n2.children == [] and n2.kind is NodeKind.IMAGE
    assert PatientTree("1", "A").plans is not PatientTree("1", "A").plans


def test_nodes_with_equal_values_but_other_info_kinds_differ() -> None:
    """Two NamedTuple records of one text field compare equal as tuples; the nodes must not."""
    assert Node(NodeKind.DOSE, "x", info=DoseInfo("A")) != Node(NodeKind.DOSE, "x", info=RtImageInfo("A"))
    assert Node(NodeKind.DOSE, "x", info=DoseInfo("A")) == Node(NodeKind.DOSE, "x", info=DoseInfo("A"))


def test_series_info_is_immutable() -> None:
    info = SeriesInfo("1.2", "CT", 3, "1.9")
    with pytest.raises(AttributeError):
        info.count = 4  # type: ignore[misc]
    assert info.with_count(4) == SeriesInfo("1.2", "CT", 4, "1.9")
    assert info.count == 3 and hash(info) == hash(SeriesInfo("1.2", "CT", 3, "1.9"))
