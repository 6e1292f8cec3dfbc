"""The reference tree's data: node kinds and what each kind knows, typed.

Why typed: render, store ordering, the anonymizer's layout, retrieve selection
and the TUI all read the tree; with ``kind: str`` and ``fields: dict`` each
decoded it again (and the TUI parsed label text). Now each kind carries one
immutable ``*Info`` record that every consumer reads (the JSON keys are written
from it in ``core.render.forest``; the texts in ``core.tree.labels``).

The records are NamedTuples and ``Node``/``PatientTree`` plain slotted classes
(value equality and ``repr`` from :class:`~dicomtools.core.slotted.Slotted`), not dataclasses: creating a dataclass costs ~0.7 ms at import, and ``show``
imports this module on every run (a dozen of them cost more than reading
hundreds of files).

``NodeKind`` is a ``StrEnum`` whose values are the kind names of the JSON
contract, so ``node.kind == "RT-Plan"`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.records import NamedTuple
from dicomtools.core.slotted import Slotted


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


class PlanInfo(NamedTuple):
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


class MissingInfo(NamedTuple):
    """A reference to an object that is not in this patient's data (a plan or a structure set)."""

    uid: str
    related: bool = False  # a referenced plan, shown below the plan that references it


class SeriesInfo(Slotted):
    """An image series (``Image``) or a CBCT series (``CBCT``).

    Not a NamedTuple: its ``count`` field would hide ``tuple.count``. Immutable
    all the same (a changed count is a new record: :meth:`with_count`).
    """

    __slots__ = ("series_instance_uid", "modality", "count", "frame_of_reference_uid", "series_description")

    series_instance_uid: str
    modality: str
    count: int
    frame_of_reference_uid: str
    series_description: str

    def __init__(self, series_instance_uid: str, modality: str, count: int, frame_of_reference_uid: str,
                 series_description: str = "") -> None:
        setter = object.__setattr__
        setter(self, "series_instance_uid", series_instance_uid)
        setter(self, "modality", modality)
        setter(self, "count", count)
        setter(self, "frame_of_reference_uid", frame_of_reference_uid)
        setter(self, "series_description", series_description)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SeriesInfo is immutable: cannot set {name!r}")

    def with_count(self, count: int) -> SeriesInfo:
        return SeriesInfo(self.series_instance_uid, self.modality, count, self.frame_of_reference_uid,
                          self.series_description)

    def __hash__(self) -> int:  # type: ignore[override]  # Slotted records are unhashable; this one is immutable
        return hash(self._values())


class StructInfo(NamedTuple):
    structure_set_label: str
    roi_count: int


class BeamNodeInfo(NamedTuple):
    """A beam of a plan (no instance of its own); ``machine`` after machine defaults."""

    beam_number: int | None
    beam_name: str
    delivery_type: str
    machine: str
    machine_model: str
    machine_defaulted: bool = False


class DoseInfo(NamedTuple):
    dose_summation_type: str


class RecordInfo(NamedTuple):
    """A treatment record: its fraction and the beams it delivered."""

    fraction_number: int | None
    beam_numbers: tuple[int, ...]
    treatment_date: str = ""


class RtImageInfo(NamedTuple):
    rt_image_label: str


class RegInfo(NamedTuple):
    registered_frames: tuple[str, ...]


class OtherInfo(NamedTuple):
    """An instance of a class the tree has no rule for."""

    sop_class_name: str


NodeInfo = (
    PlanInfo | MissingInfo | SeriesInfo | StructInfo | BeamNodeInfo | DoseInfo | RecordInfo | RtImageInfo
    | RegInfo | OtherInfo
)


class Node(Slotted):
    """One line of the tree: a kind, a label, the instances it stands for, children, typed facts."""

    __slots__ = ("kind", "label", "instances", "children", "info", "note")

    def __init__(
        self,
        kind: NodeKind | str,  # a plain kind string is accepted
        label: str,
        instances: list[InstanceSummary] | None = None,
        children: list[Node] | None = None,
        info: NodeInfo | None = None,
        note: str = "",
    ) -> None:
        self.kind = NodeKind(kind)
        self.label = label
        self.instances: list[InstanceSummary] = [] if instances is None else instances
        self.children: list[Node] = [] if children is None else children
        self.info = info
        self.note = note

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        # the info records are NamedTuples: DoseInfo("PLAN") == RtImageInfo("PLAN") as tuples
        return type(self.info) is type(other.info) and super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

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


class PatientTree(Slotted):
    """One patient's plans (roots) and what no plan reaches."""

    __slots__ = ("patient_id", "patient_name", "plans", "unconnected", "warnings")

    def __init__(
        self,
        patient_id: str,
        patient_name: str,
        plans: list[Node] | None = None,
        unconnected: list[Node] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.patient_id = patient_id
        self.patient_name = patient_name
        self.plans: list[Node] = [] if plans is None else plans
        self.unconnected: list[Node] = [] if unconnected is None else unconnected
        self.warnings: list[str] = [] if warnings is None else warnings

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
