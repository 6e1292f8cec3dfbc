"""C-GET: negotiate what the node will send, as it holds it, and write what arrives.

Why not one context per SOP class from a fixed list: the node then has to
transcode every instance held in another transfer syntax, and Orthanc and
dcmqrscp fail (or abort the study) on what they cannot transcode, e.g. JPEG
2000; a class outside the list (Presentation State, Key Object Selection,
Enhanced RT Image) fails the whole request. So the classes come from an
IMAGE-level C-FIND of each series, each class is proposed once per transfer
syntax we can store (compressed ones included: we never decode), and the
contexts are split over several associations when they pass 128.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dicomtools.core.archive.model import HALCYON_PLAN
from dicomtools.core.net.arrival import (
    OnWritten,
    file_meta,
    hold,
    report_written,
    safe_uid_name,
    write_arrival,
    write_problem,
)
from dicomtools.core.net.files import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE
from dicomtools.core.net.find import InstanceInfo

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
# What a node may hold, each proposed as its own context so the node need not transcode.
GET_TRANSFER_SYNTAXES = [
    EXPLICIT_LE,
    IMPLICIT_LE,
    DEFLATED_LE,
    EXPLICIT_BE,
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE
]
# Proposed when the node lists no SOP classes at image level: what an RT archive holds.
GET_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
    "1.2.840.10008.5.1.4.1.1.66.1",  # Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.3",  # Deformable Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.4",  # RT Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.481.6",  # RT Brachy Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.7",  # RT Treatment Summary Record
    "1.2.840.10008.5.1.4.1.1.481.8",  # RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.481.9",  # RT Ion Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.10",  # RT Physician Intent
    "1.2.840.10008.5.1.4.1.1.481.11",  # RT Segment Annotation
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    HALCYON_PLAN,
]
# When the node lists no SOP classes: the usual RT archive classes, uncompressed only (fits in one association).
FALLBACK_SYNTAXES = [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE]


def class_groups(classes: Sequence[str], per_class: int, reserved: int) -> list[list[str]]:
    """SOP classes split so each group's contexts (``per_class`` each) plus ``reserved`` fit in 128."""
    room = max(1, (MAX_CONTEXTS - reserved) // per_class)
    ordered = sorted(set(classes))
    return [ordered[i : i + room] for i in range(0, len(ordered), room)] or [[]]


class GetWriter:
    """C-STORE sub-operation handler for C-GET: writes the encoded data set as received (never decoded).

    A data set up to ``HOLD_MAX`` is read whole and answered at once; it is
    written by :meth:`flush`, which the C-GET loop calls right after the
    response, while the node prepares the next instance (file creation and the
    header's summary then cost no round trip). A bigger one is written as it
    arrives, before the answer. The files go into the retrieve's private
    temporary folder; a write that fails sets ``write_error``, which cancels
    the transfer and fails the retrieve, so an instance answered but not
    written is never taken for saved. ``on_written`` gets each new file's first
    bytes, so its summary is read from memory, not from the file again.
    """

    def __init__(self, out_dir: Path, source_ae: str, on_written: OnWritten | None = None) -> None:
        self.out_dir = out_dir
        self.source_ae = source_ae
        self.on_written = on_written
        self.arrivals: list[str] = []
        self.write_error = ""
        self.conflicts: list[str] = []
        self.lock = threading.Lock()
        self._dir = str(out_dir)
        self._held: tuple[str, str, list[bytes]] | None = None

    def __call__(self, cls: str, uid: str, ts: str, frags: Iterable[bytes]) -> int:
        """One C-STORE sub-operation (see :mod:`ul_get`): held or written as received, never decoded."""
        self.flush()
        if self.write_error:
            return 0xA700  # the disk is full already: refuse at once, the transfer is being cancelled
        target = os.path.join(self._dir, safe_uid_name(uid))  # a str: pathlib costs ~5 us an instance
        parts = [file_meta(cls, uid, ts, self.source_ae)]
        rest = hold(parts, iter(frags))
        if rest is None:
            self._held = (uid, target, parts)
            return 0x0000
        return self._write(uid, target, parts, rest)

    def _write(self, uid: str, target: str, parts: list[bytes], rest: Iterator[bytes] | None) -> int:
        try:
            done = write_arrival(target, parts, rest, scratch=True)
        except OSError as exc:
            log.debug("cannot write %s: %s", uid, exc)
            with self.lock:
                self.write_error = self.write_error or write_problem(exc, self.out_dir.parent)
            return 0xA700
        with self.lock:
            if done.how == "differs":
                self.conflicts.append(f"instance {uid} arrived a second time with different content: "
                                      "the first copy was kept, the second not saved")
            self.arrivals.append(uid)
        report_written(self.on_written, target, done)
        return 0x0000

    def flush(self) -> None:
        """Write the data set held since its answer (once)."""
        held, self._held = self._held, None
        if held is not None:
            self._write(*held, None)


@dataclass
class GetPlan:
    """Which association (group of SOP classes) brings which series or instance."""

    groups: list[list[str]]
    syntaxes: list[str]
    listed: bool  # False: the classes of single instances are not known (requests go as they are)
    members: dict[str, list[InstanceInfo]] = field(default_factory=dict)  # series UID -> instances
    refused: set[str] = field(default_factory=set)  # classes the node accepted in no context
    in_study: bool = False  # the classes came from SOP Classes in Study: a refused one is held
    quick: bool = False  # SOP Classes in Study without the IMAGE-level C-FIND: replaced if a class is refused

    def group_of(self, cls: str) -> int | None:
        return next((gi for gi, g in enumerate(self.groups) if cls in g), None)

    def simple(self) -> bool:
        """Requests go as they are: one association holds every class and the node took them all,
        or the classes are not known (then a refused one cannot be told from one never held)."""
        return len(self.groups) == 1 and (not self.refused or not self.listed)


def plan_get(members: dict[str, list[InstanceInfo]], fallback: Sequence[str], reserved: int,
             in_study: Sequence[str] = ()) -> GetPlan:
    """Image-level classes when every instance has one; else the study's SOP Classes in Study
    (all syntaxes when they fit one association, uncompressed otherwise); else ``fallback``."""
    classes = {i.sop_class_uid for lst in members.values() for i in lst}
    if classes and "" not in classes:  # every instance's class known (dcmqrscp returns none)
        return GetPlan(class_groups(sorted(classes), len(GET_TRANSFER_SYNTAXES), reserved),
                       GET_TRANSFER_SYNTAXES, True, members)
    for syntaxes in (GET_TRANSFER_SYNTAXES, FALLBACK_SYNTAXES):
        if in_study and len(set(in_study)) * len(syntaxes) + reserved <= MAX_CONTEXTS:
            return GetPlan([sorted(set(in_study))], list(syntaxes), False, members, in_study=True)
    return GetPlan(class_groups(fallback, len(FALLBACK_SYNTAXES), reserved), FALLBACK_SYNTAXES, False, members)


def get_contexts(classes: Sequence[str], syntaxes: Sequence[str]) -> list[tuple[str, str]]:
    """One (SOP class, transfer syntax) context per class and syntax: the node need not transcode."""
    return [(cls, ts) for cls in classes for ts in syntaxes]


def class_name(uid: str) -> str:
    """``Grayscale Softcopy Presentation State Storage`` for a UID pydicom knows, else the UID."""
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else "unknown class"
