"""Plain, picklable summaries of DICOM instances.

The scanner turns each file into one :class:`InstanceSummary`; everything
downstream (tree, render, search cache, store ordering, TUI) works on these,
never on pydicom datasets, so they can be cached, sent between processes and
built by hand in tests.
"""

from __future__ import annotations

from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.records import NamedTuple
from dicomtools.core.slotted import Slotted

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# SOP Class UIDs the tree knows about.
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN = "1.2.840.10008.5.1.4.1.1.481.8"
# No RT_BRACHY_PLAN: a brachy plan is RT Plan Storage (RT_PLAN) with Brachy Treatment Type
# (300A,0202); ...481.6 is the RT Brachy *Treatment Record* (RT_BRACHY_RECORD).
HALCYON_PLAN = "1.2.246.352.70.1.70"  # Varian private Halcyon plan class
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
RT_BEAMS_RECORD = "1.2.840.10008.5.1.4.1.1.481.4"
RT_BRACHY_RECORD = "1.2.840.10008.5.1.4.1.1.481.6"
RT_SUMMARY_RECORD = "1.2.840.10008.5.1.4.1.1.481.7"
RT_ION_BEAMS_RECORD = "1.2.840.10008.5.1.4.1.1.481.9"
SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
DEFORMABLE_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.3"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

PLAN_CLASSES = frozenset({RT_PLAN, RT_ION_PLAN, HALCYON_PLAN})
RECORD_CLASSES = frozenset({RT_BEAMS_RECORD, RT_ION_BEAMS_RECORD, RT_BRACHY_RECORD})
REGISTRATION_CLASSES = frozenset({SPATIAL_REGISTRATION, DEFORMABLE_REGISTRATION})


# Value records are NamedTuples and the mutable ones plain slotted classes, not
# dataclasses: creating a dataclass costs ~0.7 ms at import (a NamedTuple ~0.1 ms),
# and every cold ``show`` imports this module before it reads its first file.


class BeamInfo(NamedTuple):
    """One Beam Sequence / Ion Beam Sequence item of a plan."""

    number: int | None
    name: str = ""
    delivery_type: str = ""
    machine: str = ""  # Treatment Machine Name (300A,00B2) as stored
    machine_model: str = ""  # Manufacturer's Model Name (0008,1090) inside the beam item
    reference_images: tuple[str, ...] = ()  # (300C,0042) > (0008,1155): DRRs the beam lists


SUMMARY_FIELDS: tuple[str, ...] = (
    "path",
    "sop_instance_uid",
    "sop_class_uid",
    "patient_id",
    "patient_name",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "frame_of_reference_uid",
    "series_description",
    "series_number",
    "instance_number",
    "study_date",
    "study_description",
    "transfer_syntax_uid",
    "size",
    "mtime_ns",
    "truncated",
    "plan_label",
    "plan_name",
    "plan_intent",
    "plan_date",
    "approval_status",
    "brachy_treatment_type",
    "beams",
    "referenced_structure_sets",
    "referenced_plans",
    "referenced_beam_numbers",
    "fraction_number",
    "treatment_date",
    "structure_set_label",
    "roi_count",
    "referenced_series",
    "referenced_frames",
    "dose_summation_type",
    "referenced_instances",
    "registered_frames",
    "reg_referenced_series",
    "rt_image_label",
)


class InstanceSummary(Slotted):
    """What the tree, search and store need from one file; no pixel data, no pydicom.

    Fields in :data:`SUMMARY_FIELDS` order (positional construction from rows
    and cache records relies on it); compared and shown field by field (:class:`Slotted`).
    """

    __slots__ = SUMMARY_FIELDS

    def __init__(
        self,
        path: str,  # as found by the walk (root joined with the relative path)
        sop_instance_uid: str,
        sop_class_uid: str,
        patient_id: str = "",
        patient_name: str = "",
        study_instance_uid: str = "",
        series_instance_uid: str = "",
        modality: str = "",
        frame_of_reference_uid: str = "",
        series_description: str = "",
        series_number: str = "",
        instance_number: str = "",
        study_date: str = "",
        study_description: str = "",
        transfer_syntax_uid: str = "",
        size: int = 0,
        mtime_ns: int = 0,
        truncated: bool = False,  # header read, but Pixel Data runs past the end of the file
        # RT Plan / RT Ion Plan
        plan_label: str = "",
        plan_name: str = "",
        plan_intent: str = "",
        plan_date: str = "",
        approval_status: str = "",
        brachy_treatment_type: str = "",  # (300A,0202): set only on brachy plans
        beams: tuple[BeamInfo, ...] = (),
        referenced_structure_sets: tuple[str, ...] = (),  # (300C,0060) > (0008,1155)
        # plans, doses, records and RT images: (300C,0002) > (0008,1155)
        referenced_plans: tuple[str, ...] = (),
        # RT Image (300C,0006) top level; records (3008,0020) > (300C,0006)
        referenced_beam_numbers: tuple[int, ...] = (),
        fraction_number: int | None = None,  # records: Current Fraction Number (3008,0022)
        treatment_date: str = "",  # records: Treatment Date (3008,0250)
        # RT Structure Set
        structure_set_label: str = "",
        roi_count: int = 0,
        referenced_series: tuple[str, ...] = (),  # (3006,0010)>(3006,0012)>(3006,0014)>(0020,000E)
        referenced_frames: tuple[str, ...] = (),  # (3006,0010) > (0020,0052)
        # RT Dose
        dose_summation_type: str = "",
        # CT (CBCT): (0008,114A) > (0008,1155)
        referenced_instances: tuple[str, ...] = (),
        # Spatial / deformable registration
        registered_frames: tuple[str, ...] = (),  # (0070,0308) > (0020,0052)
        # (0008,1115) > (0020,000E) and (0008,1200) > (0008,1115) > (0020,000E)
        reg_referenced_series: tuple[str, ...] = (),
        rt_image_label: str = "",
    ) -> None:
        self.path = path
        self.sop_instance_uid = sop_instance_uid
        self.sop_class_uid = sop_class_uid
        self.patient_id = patient_id
        self.patient_name = patient_name
        self.study_instance_uid = study_instance_uid
        self.series_instance_uid = series_instance_uid
        self.modality = modality
        self.frame_of_reference_uid = frame_of_reference_uid
        self.series_description = series_description
        self.series_number = series_number
        self.instance_number = instance_number
        self.study_date = study_date
        self.study_description = study_description
        self.transfer_syntax_uid = transfer_syntax_uid
        self.size = size
        self.mtime_ns = mtime_ns
        self.truncated = truncated
        self.plan_label = plan_label
        self.plan_name = plan_name
        self.plan_intent = plan_intent
        self.plan_date = plan_date
        self.approval_status = approval_status
        self.brachy_treatment_type = brachy_treatment_type
        self.beams = beams
        self.referenced_structure_sets = referenced_structure_sets
        self.referenced_plans = referenced_plans
        self.referenced_beam_numbers = referenced_beam_numbers
        self.fraction_number = fraction_number
        self.treatment_date = treatment_date
        self.structure_set_label = structure_set_label
        self.roi_count = roi_count
        self.referenced_series = referenced_series
        self.referenced_frames = referenced_frames
        self.dose_summation_type = dose_summation_type
        self.referenced_instances = referenced_instances
        self.registered_frames = registered_frames
        self.reg_referenced_series = reg_referenced_series
        self.rt_image_label = rt_image_label

    @property
    def is_plan(self) -> bool:
        return self.sop_class_uid in PLAN_CLASSES

    def values(self) -> tuple[Any, ...]:
        """Every field, in :data:`SUMMARY_FIELDS` order."""
        return self._values()

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # A flat tuple pickles about twice as fast as the default slot dict,
        # which matters when worker processes send back tens of thousands.
        return (_summary_from_values, self._values())


def _summary_from_values(*values: Any) -> InstanceSummary:
    return InstanceSummary(*values)


# marshal, which carries the forked readers' rows and the folder snapshots, takes no named
# tuple: a summary's fields travel with their beams as plain tuples. ``at`` is the beams'
# position in the row (with or without the path); callers skip rows without beams.


def plain_beams(row: tuple[Any, ...], at: int) -> tuple[Any, ...]:
    """``row`` with the beams at ``at`` as plain tuples."""
    return (*row[:at], tuple(map(tuple, row[at])), *row[at + 1 :])


def beam_infos(row: Sequence[Any], at: int) -> tuple[Any, ...]:
    """``row`` with the plain beams at ``at`` as :class:`BeamInfo` again (undoes :func:`plain_beams`)."""
    return (*row[:at], tuple(BeamInfo(*b) for b in row[at]), *row[at + 1 :])


class UnreadableFile(NamedTuple):
    """A file the scan could not use, with a one-line reason for the report."""

    path: str
    reason: str
    kind: ReasonKind = ReasonKind.OTHER


class ScanResult:
    """Everything one scan found; the input of :func:`dicomtools.core.tree.build_forest`."""

    __slots__ = ("root", "instances", "unreadable", "files_seen", "elapsed")

    def __init__(
        self,
        root: str,
        instances: list[InstanceSummary] | None = None,
        unreadable: list[UnreadableFile] | None = None,
        files_seen: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        self.root = root
        self.instances: list[InstanceSummary] = [] if instances is None else instances
        self.unreadable: list[UnreadableFile] = [] if unreadable is None else unreadable
        self.files_seen = files_seen
        self.elapsed = elapsed

    def __repr__(self) -> str:
        return (f"ScanResult(root={self.root!r}, {len(self.instances)} instances, "
                f"{len(self.unreadable)} unreadable, files_seen={self.files_seen})")

    @property
    def truncated(self) -> list[InstanceSummary]:
        return [i for i in self.instances if i.truncated]
