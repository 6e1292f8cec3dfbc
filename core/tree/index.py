"""Look-up tables over one patient's instances, for the tree rules in :mod:`dicomtools.core.tree.build`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from dicomtools.core.archive.model import (
    PLAN_CLASSES,
    RECORD_CLASSES,
    REGISTRATION_CLASSES,
    RT_DOSE,
    RT_IMAGE,
    RT_STRUCT,
    InstanceSummary,
)

# Modalities that are not image series even when the SOP class is unknown to us.
NON_IMAGE_MODALITIES = frozenset(
    {"RTPLAN", "RTSTRUCT", "RTDOSE", "RTRECORD", "RTIMAGE", "REG", "SR", "KO", "PR", "DOC", "SEG", "PLAN", "RWV", "FID", "RESP"}
)


# The classes with a rule of their own (plans, records, registrations, structure sets, doses, RT images).
RULED_CLASSES = PLAN_CLASSES | RECORD_CLASSES | REGISTRATION_CLASSES | {RT_STRUCT, RT_DOSE, RT_IMAGE}


def is_image(inst: InstanceSummary) -> bool:
    if inst.sop_class_uid in RULED_CLASSES:
        return False
    return bool(inst.series_instance_uid) and inst.modality.upper() not in NON_IMAGE_MODALITIES


def _instance_key(inst: InstanceSummary) -> tuple[int, str, str]:
    text = inst.instance_number
    try:
        number = int(text)  # the usual case; IS values (<= 12 characters) convert exactly either way
    except ValueError:
        try:
            number = int(float(text))
        except (ValueError, OverflowError):  # empty, NaN, "inf": last
            number = 1 << 30
    return (number, inst.path, inst.sop_instance_uid)


class PatientIndex:
    """Look-up tables for one patient's instances."""

    def __init__(self, instances: list[InstanceSummary]) -> None:
        self.by_uid: dict[str, InstanceSummary] = {i.sop_instance_uid: i for i in instances}
        self.plans = [i for i in instances if i.sop_class_uid in PLAN_CLASSES]
        self.structs = [i for i in instances if i.sop_class_uid == RT_STRUCT]
        self.doses = [i for i in instances if i.sop_class_uid == RT_DOSE]
        self.rt_images = [i for i in instances if i.sop_class_uid == RT_IMAGE]
        self.records = [i for i in instances if i.sop_class_uid in RECORD_CLASSES]
        self.regs = [i for i in instances if i.sop_class_uid in REGISTRATION_CLASSES]
        self.series: dict[str, list[InstanceSummary]] = defaultdict(list)
        self.others: list[InstanceSummary] = []  # no rule for their class, and not an image
        for inst in instances:
            if is_image(inst):
                self.series[inst.series_instance_uid].append(inst)
            elif inst.sop_class_uid not in RULED_CLASSES:
                self.others.append(inst)
        for members in self.series.values():
            members.sort(key=_instance_key)
        # A CT series naming a plan in Referenced Instance Sequence is that plan's CBCT.
        self.cbct_by_plan: dict[str, list[str]] = defaultdict(list)
        for uid, members in self.series.items():
            for plan_uid in {p for m in members for p in m.referenced_instances}:
                self.cbct_by_plan[plan_uid].append(uid)
        self.cbct_series = {s for lst in self.cbct_by_plan.values() for s in lst}

    def series_frame(self, series_uid: str) -> str:
        members = self.series.get(series_uid) or []
        return members[0].frame_of_reference_uid if members else ""

    def series_for_struct(self, ss: InstanceSummary) -> list[str]:
        """The image series a structure set contours: by series UID, else by frame of reference."""
        found = [s for s in ss.referenced_series if s in self.series]
        if found or ss.referenced_series and not ss.referenced_frames:
            return found
        candidates = [
            uid
            for uid, members in self.series.items()
            if members[0].frame_of_reference_uid
            and members[0].frame_of_reference_uid in ss.referenced_frames
            and uid not in self.cbct_series
        ]
        candidates.sort(key=lambda uid: (self.series[uid][0].modality.upper() != "CT", uid))
        return candidates[:1]

    def struct_frames(self, ss: InstanceSummary) -> set[str]:
        frames = set(ss.referenced_frames)
        frames.update(self.series_frame(s) for s in ss.referenced_series if s in self.series)
        frames.discard("")
        return frames


class OtherPatients(Mapping[str, str]):
    """UID -> Patient ID for instances of the other patients (a view, not a copy per patient)."""

    def __init__(self, owner: dict[str, str], me: str) -> None:
        self.owner = owner
        self.me = me

    def __getitem__(self, uid: str) -> str:
        pid = self.owner[uid]
        if pid == self.me:
            raise KeyError(uid)
        return pid

    def __iter__(self) -> Iterator[str]:
        return (u for u, p in self.owner.items() if p != self.me)

    def __len__(self) -> int:
        return sum(1 for _ in self)
