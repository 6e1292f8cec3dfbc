"""The run's memory: original UID -> new UID, original patient -> new ID/name, date shifts.

New UIDs are ``2.25.<128 bits of keyed BLAKE2b(salt, original)>``: deterministic within
a run (every reference to a UID gets the same new UID, in every file) and not
reversible without the salt. Saving the map (CSV, written atomically, mode
0600 because it links anonymized data back to patients) and loading it in a
later run continues the same mapping, so a second batch links to the first.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.errors import DicomToolsError

log = logging.getLogger(__name__)

MAP_FORMAT = "dicomtools-uidmap/1"
HEADER = ["kind", "original", "new"]
DATE_SHIFT_MIN_DAYS = 365
DATE_SHIFT_SPAN_DAYS = 3285  # offsets fall in [-3650, -365] days


class UidMapError(DicomToolsError, ValueError):
    """A map file that cannot be read; the message names the file and line."""


@dataclass
class PatientEntry:
    new_id: str
    new_name: str


@dataclass
class UidMap:
    """Thread-safe mapping shared by every file of a run (and, saved, by later runs)."""

    salt: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    uids: dict[str, str] = field(default_factory=dict)
    patients: dict[str, PatientEntry] = field(default_factory=dict)
    date_shifts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- UIDs ---------------------------------------------------------------
    def new_uid(self, original: str) -> str:
        digest = hashlib.blake2b(b"uid|" + original.encode("ascii", "replace"), key=self.salt[:64], digest_size=16).digest()
        return "2.25." + str(int.from_bytes(digest, "big"))

    def map(self, original: str) -> str:
        """The new UID for ``original`` (created on first use)."""
        new = self.uids.get(original)
        if new is None:
            new = self.new_uid(original)
            with self._lock:
                new = self.uids.setdefault(original, new)
        return new

    # -- patients -----------------------------------------------------------
    def patient(self, original_id: str, given_id: str, given_name: str) -> PatientEntry:
        """New ID/name for an original patient.

        A patient already in the map keeps its mapping (a second batch). The
        first new patient gets the given values; any further patient of the
        same run gets them with a suffix (``-2``, ``-3``...) so patients stay apart.
        """
        with self._lock:
            entry = self.patients.get(original_id)
            if entry is not None:
                return entry
            used = {e.new_id for e in self.patients.values()}
            new_id, new_name, n = given_id, given_name, 1
            while new_id in used:
                n += 1
                new_id, new_name = f"{given_id}-{n}", f"{given_name}{n}"
            entry = PatientEntry(new_id, new_name)
            self.patients[original_id] = entry
            return entry

    def date_shift(self, original_id: str) -> int:
        """Days to add to every date of this patient (negative: into the past)."""
        shift = self.date_shifts.get(original_id)
        if shift is None:
            digest = hashlib.blake2b(b"date|" + original_id.encode("utf-8"), key=self.salt[:64], digest_size=16).digest()
            shift = -(DATE_SHIFT_MIN_DAYS + int.from_bytes(digest[:4], "big") % DATE_SHIFT_SPAN_DAYS)
            with self._lock:
                shift = self.date_shifts.setdefault(original_id, shift)
        return shift

    # -- files ----------------------------------------------------------------
    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        w.writerow(["meta", "format", MAP_FORMAT])
        w.writerow(["meta", "salt", self.salt.hex()])
        with self._lock:
            for pid, entry in sorted(self.patients.items()):
                w.writerow(["patient", pid, entry.new_id])
                w.writerow(["patient_name", pid, entry.new_name])
            for pid, days in sorted(self.date_shifts.items()):
                w.writerow(["date_shift", pid, str(days)])
            for old, new in self.uids.items():
                w.writerow(["uid", old, new])
        return buf.getvalue()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically; the temp file is created 0600 and keeps that mode."""
        data = self.to_csv().encode("utf-8")
        with atomic_writer(path) as fh:
            fh.write(data)
        try:
            os.chmod(path, 0o600)
        except OSError:  # pragma: no cover - e.g. filesystems without modes
            pass

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UidMap:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise UidMapError(f"{p}: cannot read UID map: {exc.strerror or exc}") from None
        return cls.from_csv(text, str(p))

    @classmethod
    def from_csv(cls, text: str, where: str = "<uid map>") -> UidMap:
        reader = csv.reader(io.StringIO(text))
        rows = list(reader)
        if not rows or [c.strip().lower() for c in rows[0]] != HEADER:
            raise UidMapError(f"{where}:1: not a dicomtools UID map (expected header {','.join(HEADER)})")
        m = cls()
        names: dict[str, str] = {}
        ids: dict[str, str] = {}
        salt_seen = False
        for number, row in enumerate(rows[1:], 2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 3:
                raise UidMapError(f"{where}:{number}: expected 3 columns, found {len(row)}")
            kind, old, new = row
            if kind == "meta":
                if old == "format" and new != MAP_FORMAT:
                    raise UidMapError(f"{where}:{number}: map format {new!r} not supported")
                if old == "salt":
                    try:
                        m.salt = bytes.fromhex(new)
                    except ValueError:
                        raise UidMapError(f"{where}:{number}: bad salt") from None
                    salt_seen = True
            elif kind == "uid":
                m.uids[old] = new
            elif kind == "patient":
                ids[old] = new
            elif kind == "patient_name":
                names[old] = new
            elif kind == "date_shift":
                try:
                    m.date_shifts[old] = int(new)
                except ValueError:
                    raise UidMapError(f"{where}:{number}: date shift {new!r} is not a number of days") from None
            else:
                raise UidMapError(f"{where}:{number}: unknown row kind {kind!r}")
        if not salt_seen:
            raise UidMapError(f"{where}: no salt row; the map cannot continue a mapping")
        for pid, new_id in ids.items():
            m.patients[pid] = PatientEntry(new_id, names.get(pid, new_id))
        return m
