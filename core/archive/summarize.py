"""One file's header into an :class:`InstanceSummary`: the per-file reader behind the scan.

Its own module, because a warm scan answered by the index cache reads no
file: ``show`` and ``search`` then import none of the fast parser, the
sequence rules or the pydicom fallback (~1.5 ms of every warm start).
The fast parser converts only the top-level tags the tree needs and the few
sequences it follows; a file it is unsure of goes to pydicom.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable

from dicomtools.core.archive import fastread
from dicomtools.core.archive.dssummary import FLAT_FIELDS, as_int, summary_from_dataset
from dicomtools.core.archive.fastsummary import SPECS, Unsure, fill_sequences
from dicomtools.core.archive.model import (
    SUMMARY_FIELDS,
    InstanceSummary,
    UnreadableFile,
    beam_infos,
    plain_beams,
)
from dicomtools.core.archive.read import Instance, read_instance, read_instance_head
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.dicom.text import pn_text

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

# Top-level tags the summary needs; everything else is skipped without conversion.
NEEDED_TAGS: tuple[int, ...] = (
    0x00080005,  # Specific Character Set
    0x00080016,  # SOP Class UID
    0x00080018,  # SOP Instance UID
    0x00080020,  # Study Date
    0x00080060,  # Modality
    0x00081030,  # Study Description
    0x0008103E,  # Series Description
    0x00081115,  # Referenced Series Sequence (REG)
    0x0008114A,  # Referenced Instance Sequence (CBCT -> plan)
    0x00081200,  # Studies Containing Other Referenced Instances Sequence (REG)
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x0020000D,  # Study Instance UID
    0x0020000E,  # Series Instance UID
    0x00200011,  # Series Number
    0x00200013,  # Instance Number
    0x00200052,  # Frame of Reference UID
    0x30020002,  # RT Image Label
    0x3004000A,  # Dose Summation Type
    0x30060002,  # Structure Set Label
    0x30060010,  # Referenced Frame of Reference Sequence
    0x30060020,  # Structure Set ROI Sequence
    0x30080020,  # Treatment Session Beam Sequence (records)
    0x30080250,  # Treatment Date
    0x300A0002,  # RT Plan Label
    0x300A0003,  # RT Plan Name
    0x300A0006,  # RT Plan Date
    0x300A000A,  # Plan Intent
    0x300A0202,  # Brachy Treatment Type
    0x300A00B0,  # Beam Sequence
    0x300A03A2,  # Ion Beam Sequence
    0x300C0002,  # Referenced RT Plan Sequence
    0x300C0006,  # Referenced Beam Number (RT Image)
    0x300C0060,  # Referenced Structure Set Sequence
    0x300E0002,  # Approval Status
    0x00700308,  # Registration Sequence
)

# Sequences whose content the summary needs: the fast parser reads them by
# fastsummary.SPECS; a file it is unsure of goes to pydicom.
NEEDED_SEQUENCES: frozenset[int] = frozenset(
    {
        0x00081115, 0x0008114A, 0x00081200, 0x30060010, 0x30060020, 0x30080020,
        0x300A00B0, 0x300A03A2, 0x300C0002, 0x300C0060, 0x00700308,
    }
)
NEEDED_FLAT: frozenset[int] = frozenset(NEEDED_TAGS) - NEEDED_SEQUENCES

# Values most files of a series share: one string object for all of them (a
# 100,000-file scan holds ~1 KB less per file, and worker batches pickle smaller).
SHARED_TAGS: frozenset[int] = frozenset(
    {0x00080016, 0x00080020, 0x00080060, 0x00081030, 0x0008103E, 0x00100010, 0x00100020,
     0x0020000D, 0x0020000E, 0x00200011, 0x00200052}
)


def _summary_from_fast(hdr: fastread.FastHeader, path: str) -> InstanceSummary:
    s = InstanceSummary(path=path, sop_instance_uid="", sop_class_uid="")
    for tag, value in hdr.values.items():
        name = FLAT_FIELDS.get(tag)
        if name:
            setattr(s, name, sys.intern(value) if tag in SHARED_TAGS else value)
    # pydicom drops trailing empty component groups of a PN ("Wang^XiaoDong=王^小東=")
    s.patient_name = pn_text(s.patient_name)
    if not s.sop_class_uid:
        s.sop_class_uid = hdr.meta.get(0x00020002, "")
    if not s.sop_instance_uid:
        s.sop_instance_uid = hdr.meta.get(0x00020003, "")
    s.transfer_syntax_uid = hdr.meta.get(0x00020010, "")
    beam = hdr.values.get(0x300C0006)
    if beam is not None and as_int(beam) is not None:
        s.referenced_beam_numbers = (int(beam),)
    if hdr.items:
        fill_sequences(s, hdr.items)
    return s


def summary_of_dataset(ds: Any, path: str, element_text: Callable[[Any, int], str]) -> InstanceSummary:
    """The summary of a dataset already in memory (the anonymizer's output), without reading the file back.

    Files without the sequences the tree follows (image slices, the bulk of any
    archive) take the same flat path as the fast reader, over ``element_text``
    (the caller's value-to-text rule), so both give the same summary.
    """
    d = ds._dict
    if any(t in d for t in NEEDED_SEQUENCES):
        return summary_from_dataset(ds, path)
    hdr = fastread.FastHeader()
    for tag in NEEDED_FLAT:
        if tag in d:
            hdr.values[tag] = element_text(ds, tag).strip()
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in (0x00020002, 0x00020003, 0x00020010):
            if tag in meta._dict:
                hdr.meta[tag] = element_text(meta, tag).strip()
    return _summary_from_fast(hdr, path)


def read_summary(path: str) -> InstanceSummary | UnreadableFile:
    """Read one file's header into a summary, or say in one line why it can't be used."""
    found = read_instance(path, NEEDED_FLAT, NEEDED_SEQUENCES, tags=NEEDED_TAGS, specs=SPECS)
    try:
        return _summary_from_instance(found)
    except Unsure:
        return _read_with_pydicom(path)


def summary_from_head(path: str, head: bytes, size: int, mtime_ns: int) -> InstanceSummary | None:
    """:func:`read_summary` of a file whose first bytes are in memory (just received): no re-read.

    None when the file must be read after all (see ``read_instance_head``).
    """
    found = read_instance_head(path, head, size, mtime_ns, NEEDED_FLAT, NEEDED_SEQUENCES, specs=SPECS)
    if found is None:
        return None
    try:
        summary = _summary_from_instance(found)
    except Unsure:
        return None
    return summary if isinstance(summary, InstanceSummary) else None


def _read_with_pydicom(path: str) -> InstanceSummary | UnreadableFile:
    """The general reader (every encoding, every sequence): the fast path's reference."""
    return _summary_from_instance(read_instance(path, tags=NEEDED_TAGS, use_pydicom=True))


def _summary_from_instance(found: Instance | UnreadableFile) -> InstanceSummary | UnreadableFile:
    if isinstance(found, UnreadableFile):
        return found
    if found.fast is not None:
        summary = _summary_from_fast(found.fast, found.path)
    else:
        assert found.dataset is not None
        summary = summary_from_dataset(found.dataset, found.path)
    # The reader's identity wins (file meta fills what the data set lacks).
    summary.sop_class_uid = sys.intern(found.sop_class_uid)
    summary.sop_instance_uid = found.sop_instance_uid
    summary.transfer_syntax_uid = sys.intern(found.transfer_syntax_uid)
    summary.truncated = found.truncated
    summary.size = found.size
    summary.mtime_ns = found.mtime_ns
    return summary


def read_batch(paths: list[str]) -> list[InstanceSummary | UnreadableFile]:
    """Read a batch in this process."""
    return [read_summary(p) for p in paths]


Row = tuple  # tuple[Any, ...]: a summary's fields, as marshal carries them
_summary_row = operator.attrgetter(*SUMMARY_FIELDS)
_BEAMS = SUMMARY_FIELDS.index("beams")


def result_row(item: InstanceSummary | UnreadableFile) -> Row:
    """A result as a plain tuple of str/int/tuples (``marshal`` and ``pickle`` write it fast)."""
    if isinstance(item, UnreadableFile):
        return (item.path, item.reason, item.kind.value)
    row: Row = _summary_row(item)
    return plain_beams(row, _BEAMS) if item.beams else row


def read_batch_rows(paths: list[str]) -> list[Row]:
    """Worker entry point (module level so it pickles): results as plain tuples.

    Unpickling tuples and building the objects from them costs the waiting
    caller less than unpickling the objects themselves.
    """
    return [result_row(read_summary(p)) for p in paths]


def rows_to_results(rows: list[Row]) -> list[InstanceSummary | UnreadableFile]:
    """The objects back from :func:`read_batch_rows`' tuples."""
    out: list[InstanceSummary | UnreadableFile] = []
    for row in rows:
        if len(row) == 3:
            out.append(UnreadableFile(row[0], row[1], ReasonKind(row[2])))
            continue
        out.append(InstanceSummary(*(beam_infos(row, _BEAMS) if row[_BEAMS] else row)))
    return out


