"""The summary of a pydicom dataset: what the general reader (every encoding, every sequence) gives.

The fast path (:mod:`.scan` with :mod:`.fastsummary`) must give the same summary
for every file both can read; this is its reference, and the path of files the
fast parser leaves to pydicom. Apart from :mod:`.scan` so each stays one job.
"""

from __future__ import annotations

from collections.abc import Iterable

from dicomtools.core.archive.model import BeamInfo, InstanceSummary
from dicomtools.core.dicom.text import value_text
from dicomtools.core.lazylog import get_logger

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

# Flat top-level tag -> InstanceSummary attribute, for the fast path.
FLAT_FIELDS: dict[int, str] = {
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00080020: "study_date",
    0x00080060: "modality",
    0x00081030: "study_description",
    0x0008103E: "series_description",
    0x00100010: "patient_name",
    0x00100020: "patient_id",
    0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid",
    0x00200011: "series_number",
    0x00200013: "instance_number",
    0x00200052: "frame_of_reference_uid",
    0x30020002: "rt_image_label",
    0x3004000A: "dose_summation_type",
    0x30060002: "structure_set_label",
    0x30080250: "treatment_date",
    0x300A0002: "plan_label",
    0x300A0003: "plan_name",
    0x300A0006: "plan_date",
    0x300A000A: "plan_intent",
    0x300A0202: "brachy_treatment_type",
    0x300E0002: "approval_status",
}


def _get(ds: Any, key: Any) -> Any:
    """``ds.get(key)``, or None when pydicom cannot convert the element (a damaged value).

    The reader has already said the file is an instance (every command agrees);
    a value it cannot decode leaves that field of the summary empty.
    """
    try:
        return ds.get(key)
    except Exception:
        log.debug("cannot convert %s", key, exc_info=True)
        return None


def as_int(value: Any) -> int | None:
    """``int(value)``, or None for what is no integer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _items(ds: Any, keyword: str) -> list[Any]:
    """The items of a sequence, or [] when absent, empty or not a sequence."""
    seq = _get(ds, keyword)
    if seq is None:
        return []
    try:
        return list(seq)
    except Exception:  # a damaged sequence: no items
        return []


def _uids(items: Iterable[Any], keyword: str) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        value = value_text(_get(item, keyword))
        if value and value not in out:
            out.append(value)
    return tuple(out)


def _beams(ds: Any) -> tuple[BeamInfo, ...]:
    beams = []
    for item in _items(ds, "BeamSequence") + _items(ds, "IonBeamSequence"):
        beams.append(
            BeamInfo(
                number=as_int(_get(item, "BeamNumber")),
                name=value_text(_get(item, "BeamName")),
                delivery_type=value_text(_get(item, "TreatmentDeliveryType")),
                machine=value_text(_get(item, "TreatmentMachineName")),
                machine_model=value_text(_get(item, "ManufacturerModelName")),
                reference_images=_uids(
                    _items(item, "ReferencedReferenceImageSequence"), "ReferencedSOPInstanceUID"
                ),
            )
        )
    return tuple(beams)


def summary_from_dataset(ds: Any, path: str) -> InstanceSummary:
    """Pick the fields the tree needs out of a header-only dataset."""
    meta = getattr(ds, "file_meta", None)
    s = InstanceSummary(path=path, sop_instance_uid="", sop_class_uid="")
    # The same flat fields the fast path fills, from the same table.
    for tag, name in FLAT_FIELDS.items():
        elem = _get(ds, tag)
        setattr(s, name, value_text(elem.value if elem is not None else None))
    if meta:
        s.sop_class_uid = s.sop_class_uid or value_text(meta.get("MediaStorageSOPClassUID"))
        s.sop_instance_uid = s.sop_instance_uid or value_text(meta.get("MediaStorageSOPInstanceUID"))
    s.transfer_syntax_uid = value_text(meta.get("TransferSyntaxUID")) if meta else ""
    s.beams = _beams(ds)
    s.referenced_structure_sets = _uids(
        _items(ds, "ReferencedStructureSetSequence"), "ReferencedSOPInstanceUID"
    )
    s.referenced_plans = _uids(_items(ds, "ReferencedRTPlanSequence"), "ReferencedSOPInstanceUID")
    # RT image / records
    beam_numbers: list[int] = []
    top_beam = as_int(_get(ds, "ReferencedBeamNumber"))
    if top_beam is not None:
        beam_numbers.append(top_beam)
    fractions: list[int] = []
    for item in _items(ds, "TreatmentSessionBeamSequence"):
        n = as_int(_get(item, "ReferencedBeamNumber"))
        if n is not None and n not in beam_numbers:
            beam_numbers.append(n)
        f = as_int(_get(item, "CurrentFractionNumber"))
        if f is not None:
            fractions.append(f)
    s.referenced_beam_numbers = tuple(beam_numbers)
    s.fraction_number = min(fractions) if fractions else None
    # structure sets
    s.roi_count = len(_items(ds, "StructureSetROISequence"))
    frames = _items(ds, "ReferencedFrameOfReferenceSequence")
    s.referenced_frames = _uids(frames, "FrameOfReferenceUID")
    series: list[str] = []
    for fr in frames:
        for study in _items(fr, "RTReferencedStudySequence"):
            for uid in _uids(_items(study, "RTReferencedSeriesSequence"), "SeriesInstanceUID"):
                if uid not in series:
                    series.append(uid)
    s.referenced_series = tuple(series)
    s.referenced_instances = _uids(
        _items(ds, "ReferencedInstanceSequence"), "ReferencedSOPInstanceUID"
    )
    # registrations
    s.registered_frames = _uids(_items(ds, "RegistrationSequence"), "FrameOfReferenceUID")
    reg_series = list(_uids(_items(ds, "ReferencedSeriesSequence"), "SeriesInstanceUID"))
    for study in _items(ds, "StudiesContainingOtherReferencedInstancesSequence"):
        for uid in _uids(_items(study, "ReferencedSeriesSequence"), "SeriesInstanceUID"):
            if uid not in reg_series:
                reg_series.append(uid)
    s.reg_referenced_series = tuple(reg_series)
    return s
