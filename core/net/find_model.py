"""What a C-FIND tells: patients, studies, series, instances (plans) — one model for every caller.

The retrieve (``find.query_patient``) and the interactive patient search
(``session.find_patients``) both answer in these records. No pynetdicom here,
so a screen can name the types without loading the network stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SeriesInfo:
    study_uid: str
    series_uid: str
    modality: str = ""
    description: str = ""
    number: str = ""
    count: int | None = None  # Number of Series Related Instances, when returned


@dataclass
class StudyInfo:
    study_uid: str
    date: str = ""
    description: str = ""
    modalities: str = ""
    series: list[SeriesInfo] = field(default_factory=list)


@dataclass
class InstanceInfo:
    """One IMAGE-level answer; the plan keys are empty unless asked for (and returned)."""

    sop_instance_uid: str
    sop_class_uid: str = ""
    series_uid: str = ""
    plan_label: str = ""
    approval_status: str = ""
    plan_date: str = ""


@dataclass
class PatientQuery:
    patient_id: str
    patient_name: str = ""
    model: str = "P"
    studies: list[StudyInfo] = field(default_factory=list)

    @property
    def series(self) -> list[SeriesInfo]:
        return [s for st in self.studies for s in st.series]

    @property
    def series_modality_known(self) -> bool:
        """True when every series came back with a Modality: selective retrieval is safe."""
        return bool(self.series) and all(s.modality for s in self.series)

    @property
    def instance_count(self) -> int | None:
        counts = [s.count for s in self.series]
        if not counts or any(c is None for c in counts):
            return None
        return sum(c for c in counts if c is not None)


@dataclass
class PatientRow:
    """One patient of a patient search (``session.find_patients``) with its plans, when listed."""

    patient_id: str
    patient_name: str = ""
    studies: int | None = None
    plans: list[InstanceInfo] = field(default_factory=list)  # plan keys filled
    plans_known: bool = False  # False: the peer was not asked / could not list plans
    note: str = ""
