"""The summary's reference sequences, read by the fast parser instead of pydicom.

Every RT object (plan, structure set, dose, record, RT image) and every CBCT
slice holds a sequence the tree needs, so without this they all went to
pydicom (importing it costs ~0.4 s, a CBCT slice 15x a CT slice). The specs
below name exactly the UIDs and numbers :func:`dicomtools.core.archive.dssummary.summary_from_dataset`
takes from those sequences; the fast parser skips everything else in them
(control points, contours). Whatever is not plain ASCII single values is left
to pydicom (:class:`Unsure`), so both paths give the same summary (an
equivalence test checks every test file).
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomtools.core.archive.fastread import Item, SequenceSpec
from dicomtools.core.archive.model import BeamInfo, InstanceSummary
from dicomtools.core.errors import DicomToolsError

REFERENCED_SOP_INSTANCE_UID = 0x00081155
SERIES_INSTANCE_UID = 0x0020000E
FRAME_OF_REFERENCE_UID = 0x00200052
REFERENCED_SERIES_SEQUENCE = 0x00081115
REFERENCED_INSTANCE_SEQUENCE = 0x0008114A
STUDIES_CONTAINING_OTHER = 0x00081200
REGISTRATION_SEQUENCE = 0x00700308
REFERENCED_FRAME_OF_REFERENCE_SEQUENCE = 0x30060010
RT_REFERENCED_STUDY_SEQUENCE = 0x30060012
RT_REFERENCED_SERIES_SEQUENCE = 0x30060014
STRUCTURE_SET_ROI_SEQUENCE = 0x30060020
TREATMENT_SESSION_BEAM_SEQUENCE = 0x30080020
CURRENT_FRACTION_NUMBER = 0x30080022
BEAM_SEQUENCE = 0x300A00B0
ION_BEAM_SEQUENCE = 0x300A03A2
BEAM_NUMBER = 0x300A00C0
BEAM_NAME = 0x300A00C2
TREATMENT_DELIVERY_TYPE = 0x300A00CE
TREATMENT_MACHINE_NAME = 0x300A00B2
MANUFACTURER_MODEL_NAME = 0x00081090
REFERENCED_RT_PLAN_SEQUENCE = 0x300C0002
REFERENCED_BEAM_NUMBER = 0x300C0006
REFERENCED_REFERENCE_IMAGE_SEQUENCE = 0x300C0042
REFERENCED_STRUCTURE_SET_SEQUENCE = 0x300C0060

_REFERENCE: SequenceSpec = {REFERENCED_SOP_INSTANCE_UID: None}
_BEAM: SequenceSpec = {
    BEAM_NUMBER: None,
    BEAM_NAME: None,
    TREATMENT_DELIVERY_TYPE: None,
    TREATMENT_MACHINE_NAME: None,
    MANUFACTURER_MODEL_NAME: None,
    REFERENCED_REFERENCE_IMAGE_SEQUENCE: _REFERENCE,
}
_SERIES: SequenceSpec = {SERIES_INSTANCE_UID: None}

# Top-level sequence -> what to read inside it (the keys are summarize.NEEDED_SEQUENCES).
SPECS: dict[int, SequenceSpec] = {
    BEAM_SEQUENCE: _BEAM,
    ION_BEAM_SEQUENCE: _BEAM,
    REFERENCED_STRUCTURE_SET_SEQUENCE: _REFERENCE,
    REFERENCED_RT_PLAN_SEQUENCE: _REFERENCE,
    TREATMENT_SESSION_BEAM_SEQUENCE: {REFERENCED_BEAM_NUMBER: None, CURRENT_FRACTION_NUMBER: None},
    STRUCTURE_SET_ROI_SEQUENCE: {},  # only counted
    REFERENCED_FRAME_OF_REFERENCE_SEQUENCE: {
        FRAME_OF_REFERENCE_UID: None,
        RT_REFERENCED_STUDY_SEQUENCE: {RT_REFERENCED_SERIES_SEQUENCE: _SERIES},
    },
    REFERENCED_INSTANCE_SEQUENCE: _REFERENCE,
    REGISTRATION_SEQUENCE: {FRAME_OF_REFERENCE_UID: None},
    REFERENCED_SERIES_SEQUENCE: _SERIES,
    STUDIES_CONTAINING_OTHER: {REFERENCED_SERIES_SEQUENCE: _SERIES},
}


class Unsure(DicomToolsError):
    """A value pydicom may read differently (an IS that is not a plain integer)."""


def _items(item: Item | dict[int, list[Item]], tag: int) -> list[Item]:
    found = item.get(tag)
    return found if isinstance(found, list) else []


def _text(item: Item, tag: int) -> str:
    value = item.get(tag)
    return value.strip() if isinstance(value, str) else ""


def _number(item: Item, tag: int) -> int | None:
    text = _text(item, tag)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Unsure(f"IS value {text!r}") from None


def _uids(items: Sequence[Item], tag: int, out: list[str] | None = None) -> tuple[str, ...]:
    found = out if out is not None else []
    for item in items:
        value = _text(item, tag)
        if value and value not in found:
            found.append(value)
    return tuple(found)


def fill_sequences(s: InstanceSummary, seqs: dict[int, list[Item]]) -> None:
    """Set the sequence-derived fields of ``s`` as ``summary_from_dataset`` does; raises :class:`Unsure`."""
    s.beams = tuple(
        BeamInfo(
            number=_number(item, BEAM_NUMBER),
            name=_text(item, BEAM_NAME),
            delivery_type=_text(item, TREATMENT_DELIVERY_TYPE),
            machine=_text(item, TREATMENT_MACHINE_NAME),
            machine_model=_text(item, MANUFACTURER_MODEL_NAME),
            reference_images=_uids(_items(item, REFERENCED_REFERENCE_IMAGE_SEQUENCE), REFERENCED_SOP_INSTANCE_UID),
        )
        for item in _items(seqs, BEAM_SEQUENCE) + _items(seqs, ION_BEAM_SEQUENCE)
    )
    s.referenced_structure_sets = _uids(_items(seqs, REFERENCED_STRUCTURE_SET_SEQUENCE), REFERENCED_SOP_INSTANCE_UID)
    s.referenced_plans = _uids(_items(seqs, REFERENCED_RT_PLAN_SEQUENCE), REFERENCED_SOP_INSTANCE_UID)
    beam_numbers = list(s.referenced_beam_numbers)
    fractions: list[int] = []
    for item in _items(seqs, TREATMENT_SESSION_BEAM_SEQUENCE):
        n = _number(item, REFERENCED_BEAM_NUMBER)
        if n is not None and n not in beam_numbers:
            beam_numbers.append(n)
        f = _number(item, CURRENT_FRACTION_NUMBER)
        if f is not None:
            fractions.append(f)
    s.referenced_beam_numbers = tuple(beam_numbers)
    s.fraction_number = min(fractions) if fractions else None
    s.roi_count = len(_items(seqs, STRUCTURE_SET_ROI_SEQUENCE))
    frames = _items(seqs, REFERENCED_FRAME_OF_REFERENCE_SEQUENCE)
    s.referenced_frames = _uids(frames, FRAME_OF_REFERENCE_UID)
    series: list[str] = []
    for frame in frames:
        for study in _items(frame, RT_REFERENCED_STUDY_SEQUENCE):
            _uids(_items(study, RT_REFERENCED_SERIES_SEQUENCE), SERIES_INSTANCE_UID, series)
    s.referenced_series = tuple(series)
    s.referenced_instances = _uids(_items(seqs, REFERENCED_INSTANCE_SEQUENCE), REFERENCED_SOP_INSTANCE_UID)
    s.registered_frames = _uids(_items(seqs, REGISTRATION_SEQUENCE), FRAME_OF_REFERENCE_UID)
    reg_series: list[str] = []
    _uids(_items(seqs, REFERENCED_SERIES_SEQUENCE), SERIES_INSTANCE_UID, reg_series)
    for study in _items(seqs, STUDIES_CONTAINING_OTHER):
        _uids(_items(study, REFERENCED_SERIES_SEQUENCE), SERIES_INSTANCE_UID, reg_series)
    s.reg_referenced_series = tuple(reg_series)
