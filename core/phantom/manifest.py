"""What :func:`dicomtools.core.phantom.generate` wrote, so tests can assert exactly.

Plain, picklable dataclasses; paths are relative to the output folder and use
forward slashes. Every UID listed here belongs to a file that exists, except
``missing_plan_uid`` (the plan the orphans reference on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PlanManifest:
    """One RT Plan / RT Ion Plan and everything that hangs off it in the tree.

    The ``*_by_beam`` dicts have a key for every beam of the plan (empty list
    when nothing refers to that beam).
    """

    label: str
    sop_uid: str
    sop_class_uid: str
    approval_status: str
    plan_intent: str = ""
    machines: list[str] = field(default_factory=list)  # per beam, as stored ("" if empty)
    machine_models: list[str] = field(default_factory=list)  # per beam
    structure_set_uid: str | None = None
    image_series_uid: str | None = None  # series the structure set is drawn on
    image_count: int = 0
    cbct_series_uid: str | None = None  # CT series whose (0008,114A) names this plan
    cbct_count: int = 0
    dose_uids: list[str] = field(default_factory=list)  # plan-sum dose first
    beam_numbers: list[int] = field(default_factory=list)
    drr_uids_by_beam: dict[int, list[str]] = field(default_factory=dict)  # via (300C,0042)
    portal_uids_by_beam: dict[int, list[str]] = field(default_factory=dict)  # top (300C,0006)
    record_uids_by_beam: dict[int, list[str]] = field(default_factory=dict)  # by fraction
    plan_level_records: list[str] = field(default_factory=list)  # beam number not in plan
    referenced_plan_uids: list[str] = field(default_factory=list)  # (300C,0002) of the plan
    registration_uid: str | None = None  # REG that registers the plan's frame of reference
    registered_series_uid: str | None = None  # the other (moving) series of that REG
    registered_structure_set_uid: str | None = None  # structure set drawn on that series


@dataclass(slots=True)
class UnconnectedManifest:
    """Instances no plan reaches (study "old" plus the truncated CT of patient 1)."""

    series: dict[str, int] = field(default_factory=dict)  # image series UID -> instance count
    structure_sets: list[str] = field(default_factory=list)
    doses: list[str] = field(default_factory=list)  # reference a plan not in the archive
    records: list[str] = field(default_factory=list)  # reference a plan not in the archive
    rt_images: list[str] = field(default_factory=list)  # no plan reference at all
    registrations: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # RT Treatment Summary Record


@dataclass(slots=True)
class PatientManifest:
    patient_id: str
    patient_name: str  # decoded, e.g. "PHANTÖM^BRAVO"
    plans: dict[str, PlanManifest] = field(default_factory=dict)  # by RT Plan Label
    unconnected: UnconnectedManifest = field(default_factory=UnconnectedManifest)
    all_sop_uids: set[str] = field(default_factory=set)  # every readable instance
    specific_character_set: str = ""  # "" when the default repertoire is used
    missing_plan_uid: str = ""  # plan UID the orphan dose/record point at; no such file


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One readable file written by the generator."""

    sop_uid: str
    sop_class_uid: str
    patient_id: str


@dataclass(slots=True)
class PhantomManifest:
    root: str
    seed: int
    patients: dict[str, PatientManifest] = field(default_factory=dict)  # by Patient ID
    files: dict[str, FileEntry] = field(default_factory=dict)  # readable files by rel path
    broken_files: dict[str, str] = field(default_factory=dict)  # rel path -> kind
    truncated_pixel_files: list[str] = field(default_factory=list)  # readable, pixels cut
    no_preamble_files: list[str] = field(default_factory=list)  # readable with force=True
    file_count: int = 0  # every file written, broken ones included
