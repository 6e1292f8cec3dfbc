"""The reference tree's data: node kinds and what each kind knows, typed.

Why typed: render, store ordering, the anonymizer's layout, retrieve selection
and the TUI all read the tree; with ``kind: str`` and ``fields: dict`` each
decoded it again (and the TUI parsed label text). Now each kind carries one
frozen ``*Info`` record that every consumer reads (the JSON keys are written
from it in ``core.render.forest``; the texts in ``core.tree.labels``).

``NodeKind`` is a ``StrEnum`` whose values are the kind names of the JSON
contract, so ``node.kind == "RT-Plan"`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from dicomtools.core.archive.model import InstanceSummary


class NodeKind(StrEnum):
    """The kind of a tree line; the values are the ``kind`` strings of the JSON output."""

    PLAN = "RT-Plan"
    ION_PLAN = "RT-Ion-Plan"
    BRACHY_PLAN = "RT-Brachy-Plan"
    STRUCT = "RT-Struct"
    IMAGE = "Image"
    CBCT = "CBCT"
    BEAM = "Beam"
    DOSE = "RT-Dose"
    RECORD = "RT-Record"
    RT_IMAGE = "RT-Image"
    REGISTRATIONS = "Registrations"  # the group of registrations under a plan
    REG = "REG"
    OTHER = "Other"
    UNCONNECTED = "Unconnected"  # the group "Not connected to any plan" (render only)

    @property
    def is_plan(self) -> bool:
        return self in PLAN_KINDS

    @property
    def is_series(self) -> bool:
        return self in SERIES_KINDS


PLAN_KINDS = (NodeKind.PLAN, NodeKind.ION_PLAN, NodeKind.BRACHY_PLAN)
SERIES_KINDS = (NodeKind.IMAGE, NodeKind.CBCT)


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """A plan (or a plan shown below the plan that references it: ``related``)."""

    plan_label: str
    plan_name: str
    plan_intent: str
    approval_status: str
    plan_date: str
    machines: tuple[str, ...]  # one per beam, after machine defaults; "" where empty
    machines_defaulted: tuple[bool, ...]
    machine_models: tuple[str, ...]
    sop_instance_uid: str
    related: bool = False


@dataclass(frozen=True, slots=True)
class MissingInfo:
    """A reference to an object that is not in this patient's data (a plan or a structure set)."""

    uid: str
    related: bool = False  # a referenced plan, shown below the plan that references it


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """An image series (``Image``) or a CBCT series (``CBCT``)."""

    series_instance_uid: str
    modality: str
    count: int
    frame_of_reference_uid: str
    series_description: str = ""


@dataclass(frozen=True, slots=True)
class StructInfo:
    structure_set_label: str
    roi_count: int


@dataclass(frozen=True, slots=True)
class BeamNodeInfo:
    """A beam of a plan (no instance of its own); ``machine`` after machine defaults."""

    beam_number: int | None
    beam_name: str
    delivery_type: str
    machine: str
    machine_model: str
    machine_defaulted: bool = False


@dataclass(frozen=True, slots=True)
class DoseInfo:
    dose_summation_type: str


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A treatment record: its fraction and the beams it delivered."""

    fraction_number: int | None
    beam_numbers: tuple[int, ...]
    treatment_date: str = ""


@dataclass(frozen=True, slots=True)
class RtImageInfo:
    rt_image_label: str


@dataclass(frozen=True, slots=True)
class RegInfo:
    registered_frames: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OtherInfo:
    """An instance of a class the tree has no rule for."""

    sop_class_name: str


NodeInfo = (
    PlanInfo | MissingInfo | SeriesInfo | StructInfo | BeamNodeInfo | DoseInfo | RecordInfo | RtImageInfo
    | RegInfo | OtherInfo
)


@dataclass
class Node:
    """One line of the tree: a kind, a label, the instances it stands for, children, typed facts."""

    kind: NodeKind
    label: str
    instances: list[InstanceSummary] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    info: NodeInfo | None = None
    note: str = ""

    def __post_init__(self) -> None:
        self.kind = NodeKind(self.kind)  # a plain kind string is accepted

    @property
    def plan(self) -> InstanceSummary | None:
        """The plan instance of a plan node (None for a plan not in the folder or another kind)."""
        return self.instances[0] if self.kind.is_plan and self.instances else None

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
