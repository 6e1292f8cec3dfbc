"""Where ``receive`` puts an instance: ``DIR/<patient>/<study>/<series>/<PREFIX>.<SOP UID>.dcm``.

Each instance is first written to a hidden staging folder on the same file
system (``DIR/.dicomtools-incoming``), its header read there, and only then
renamed to its final name: a final name never holds a partial file, also on
SIGKILL. Every path component comes from checked text (:func:`safe_name`,
:func:`safe_uid_name`, digits only for the date); a marker file in each
patient folder names the Patient ID it holds, so two patients never share a
top-level folder even when their IDs clean up to the same name.

Duplicates (same SOP Instance UID): identical data set bytes and transfer
syntax are acknowledged and not written again; different bytes are kept
beside the first (``.dup-2.dcm``) and reported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.summarize import read_summary
from dicomtools.core.atomic import atomic_write_bytes
from dicomtools.core.net.arrival import safe_uid_name
from dicomtools.core.safename import safe_name

log = logging.getLogger(__name__)

INCOMING = ".dicomtools-incoming"
MARKER = ".dicomtools-patient"
PREFIX = {"RTPLAN": "RP", "RTSTRUCT": "RS", "RTDOSE": "RD", "RTIMAGE": "RI", "RTRECORD": "RT", "REG": "RE"}
_DATE = re.compile(r"\d{8}")
HEAD_KEEP = 4096
SEEN_LIMIT = 200_000  # UIDs remembered for "same UID, other patient or study" (~60 MB at most)
_STALE_SECONDS = 600.0  # a staging file this old belongs to no running receive


class Disposition(Enum):
    STORED = "stored"
    IDENTICAL = "duplicate, identical: not written again"
    DIFFERENT = "duplicate with different bytes: kept beside the first"
    FAILED = "failed"


@dataclass(frozen=True)
class Filed:
    disposition: Disposition
    path: str = ""  # final path ("" when failed)
    summary: InstanceSummary | None = None
    reason: str = ""  # why it failed, or where the first copy is
    patient_folder: str = ""


class Staged:
    """One incoming data set being written to the staging folder, hashed as it goes."""

    def __init__(self, folder: Path, meta: bytes, transfer_syntax: str) -> None:
        fd, self.path = tempfile.mkstemp(prefix=".part-", suffix=".tmp", dir=folder)
        self.fh: BinaryIO = os.fdopen(fd, "wb")
        self.fh.write(meta)
        self.hash = hashlib.sha256(transfer_syntax.encode("ascii", "replace") + b"\0")
        self.transfer_syntax = transfer_syntax
        self.nbytes = 0
        self.head = bytearray()  # the first bytes of the data set, to check its own SOP Instance UID

    def write(self, fragment: bytes) -> None:
        self.fh.write(fragment)
        self.hash.update(fragment)
        self.nbytes += len(fragment)
        if len(self.head) < HEAD_KEEP:
            self.head += fragment[: HEAD_KEEP - len(self.head)]

    def close(self) -> None:
        self.fh.close()

    def discard(self) -> None:
        try:
            self.fh.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
IMPLICIT_LE, EXPLICIT_BE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"


def own_sop_instance_uid(head: bytes, transfer_syntax: str) -> str | None:
    """SOP Instance UID (0008,0018) of the data set itself (never the file meta's copy).

    Elements come in tag order, so only the few before (0008,0018) are walked.
    "" when the data set has none; None when this quick walk cannot tell
    (deflated, undefined lengths, a short head): the caller asks pydicom.
    """
    if transfer_syntax == "1.2.840.10008.1.2.1.99":
        return None
    implicit = transfer_syntax == IMPLICIT_LE
    e = ">" if transfer_syntax == EXPLICIT_BE else "<"
    off = 0
    while off + 8 <= len(head):
        group, elem = struct.unpack_from(f"{e}HH", head, off)
        tag = (group << 16) | elem
        if implicit:
            (length,) = struct.unpack_from("<I", head, off + 4)
            start = off + 8
        elif head[off + 4 : off + 6] in _LONG_VRS:
            if off + 12 > len(head):
                return None
            (length,) = struct.unpack_from(f"{e}I", head, off + 8)
            start = off + 12
        else:
            (length,) = struct.unpack_from(f"{e}H", head, off + 6)
            start = off + 8
        if tag > 0x00080018:
            return ""
        if length == 0xFFFFFFFF or start + length > len(head):
            return None
        if tag == 0x00080018:
            return head[start : start + length].rstrip(b"\0 ").decode("ascii", "replace")
        off = start + length
    return None


def _own_uid_pydicom(path: str) -> str:
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=[0x00080018])
    except Exception:  # noqa: BLE001 - unreadable: no UID of its own
        return ""
    return str(ds.get("SOPInstanceUID", "") or "").strip()


def dataset_digest(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of transfer syntax + data set bytes of a Part 10 file (the file meta is ours to vary)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(144)
            if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
                return None
            (glen,) = struct.unpack("<I", head[140:144])
            meta = fh.read(glen)
            ts = _meta_ts(meta)
            h = hashlib.sha256(ts.encode("ascii", "replace") + b"\0")
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _meta_ts(meta: bytes) -> str:
    off = 0
    while off + 8 <= len(meta):
        group, elem = struct.unpack_from("<HH", meta, off)
        vr = meta[off + 4 : off + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            (length,) = struct.unpack_from("<I", meta, off + 8)
            start = off + 12
        else:
            (length,) = struct.unpack_from("<H", meta, off + 6)
            start = off + 8
        if (group, elem) == (0x0002, 0x0010):
            return meta[start : start + length].rstrip(b"\0 ").decode("ascii", "replace")
        off = start + length
    return ""


def instance_name(s: InstanceSummary) -> str:
    modality = re.sub(r"[^A-Z0-9]", "", s.modality.upper())[:16]
    prefix = PREFIX.get(modality, modality or "OT")
    return f"{prefix}.{safe_uid_name(s.sop_instance_uid)}"


def relative_folder(s: InstanceSummary) -> str:
    """``<study>/<series>`` below the patient folder, from checked text only."""
    study = safe_uid_name(s.study_instance_uid).removesuffix(".dcm")
    if _DATE.fullmatch(s.study_date):
        study = f"{s.study_date}_{study}"
    modality = re.sub(r"[^A-Z0-9]", "", s.modality.upper())[:16] or "OT"
    series = f"{modality}_{safe_uid_name(s.series_instance_uid).removesuffix('.dcm')}"
    return f"{study}/{series}"


class Filer:
    """Files staged instances under ``root``; one lock serialises the final renames."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.incoming = self.root / INCOMING
        self._lock = threading.Lock()
        self._patients: dict[str, Path] = {}
        # SOP Instance UID -> first final path, this run; bounded: a service runs for months
        self._seen: OrderedDict[str, str] = OrderedDict()

    def start(self) -> list[str]:
        """Create the folders; remove staging files a killed run left (returns their names).

        Only old ones: another ``receive`` on the same folder may be writing the young ones.
        """
        self.incoming.mkdir(parents=True, exist_ok=True)
        removed = []
        for entry in os.scandir(self.incoming):
            if entry.name.startswith(".part-") and time.time() - entry.stat().st_mtime > _STALE_SECONDS:
                os.unlink(entry.path)
                removed.append(entry.name)
        return removed

    def stage(self, meta: bytes, transfer_syntax: str) -> Staged:
        return Staged(self.incoming, meta, transfer_syntax)

    def _patient_dir(self, s: InstanceSummary) -> Path:
        pid = s.patient_id
        key = pid if pid.strip() else "\0no-id\0" + s.patient_name
        cached = self._patients.get(key)
        if cached is not None:
            return cached
        if pid.strip():
            base = safe_name(pid)
        else:
            base = "_no-id-" + hashlib.sha256(s.patient_name.encode("utf-8", "replace")).hexdigest()[:8]
        n = 1
        while True:
            folder = self.root / (base if n == 1 else f"{base}~{n}")
            marker = folder / MARKER
            if not folder.exists():
                folder.mkdir(parents=True)
                atomic_write_bytes(marker, key.encode("utf-8", "surrogatepass"))
                break
            try:
                if marker.read_bytes().decode("utf-8", "surrogatepass") == key:
                    break
            except (OSError, UnicodeDecodeError):
                pass  # a folder we did not make, or another patient's: try the next name
            n += 1
        self._patients[key] = folder
        return folder

    def file(self, staged: Staged, announced_uid: str) -> Filed:
        """Decide the final name and move the staged file there (or drop it as a duplicate)."""
        digest = staged.hash.hexdigest()
        summary = read_summary(staged.path)
        if isinstance(summary, UnreadableFile):
            staged.discard()
            return Filed(Disposition.FAILED, reason=summary.reason.replace(staged.path, "data set"))
        own = own_sop_instance_uid(bytes(staged.head), staged.transfer_syntax)
        if own is None:
            own = _own_uid_pydicom(staged.path)
        if summary.sop_instance_uid != announced_uid or own != announced_uid:
            staged.discard()
            return Filed(Disposition.FAILED, summary=summary,
                         reason=f"SOP Instance UID differs from the C-STORE request: data set "
                         f"{own[:80] if own else '(none)'!r}, request {announced_uid[:80]!r}")
        with self._lock:
            pdir = self._patient_dir(summary)
            folder = pdir / relative_folder(summary)
            folder.mkdir(parents=True, exist_ok=True)
            name = instance_name(summary)
            target = folder / name
            first = self._seen.get(summary.sop_instance_uid)
            disposition = Disposition.DIFFERENT if first is not None and first != str(target) else Disposition.STORED
            n = 1
            while target.exists():
                if dataset_digest(target) == digest:
                    staged.discard()
                    summary.path = str(target)
                    return Filed(Disposition.IDENTICAL, str(target), summary, str(target), pdir.name)
                disposition = Disposition.DIFFERENT
                first = first or str(folder / name)
                n += 1
                target = folder / f"{name.removesuffix('.dcm')}.dup-{n}.dcm"
            os.replace(staged.path, target)
            if summary.sop_instance_uid not in self._seen:
                self._seen[summary.sop_instance_uid] = str(target)
                if len(self._seen) > SEEN_LIMIT:
                    self._seen.popitem(last=False)
        summary.path = str(target)
        return Filed(disposition, str(target), summary, first or "", pdir.name)
