"""One input file through the run: read, check, anonymize, write into staging; the outcome as data.

The same :class:`FileWork` serves the serial run (with the run's own UID map
and names) and the worker processes of :mod:`parallel` (with a
:class:`JournalUidMap` copy): everything the run must merge in path order
(report lines, the patients met, the identifiers for the path names, new
UIDs) comes back in an :class:`Outcome`, so a parallel run can put together
exactly what a serial one builds.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomtools.core.anonymize.engine import Anonymizer
from dicomtools.core.anonymize.failures import failure_reason
from dicomtools.core.anonymize.filemeta import prepare_for_writing
from dicomtools.core.anonymize.naming import Originals, PathNames, path_identifiers, safe_name
from dicomtools.core.anonymize.needles import Identifiers
from dicomtools.core.anonymize.uidmap import PatientEntry, UidMap
from dicomtools.core.anonymize.valuetext import element_text
from dicomtools.core.archive.model import InstanceSummary, UnreadableFile

log = logging.getLogger(__name__)

PREFIX_BY_MODALITY = {
    "RTPLAN": "RP", "RTSTRUCT": "RS", "RTDOSE": "RD", "RTIMAGE": "RI", "RTRECORD": "RT", "REG": "RE",
}
BURNED_IN = (
    "burned-in annotation (0028,0301) = YES: the pixels may show the patient's name or ID; "
    "not copied (--keepBurnedIn copies it anyway)"
)


@dataclass(frozen=True, slots=True)
class Staged:
    source: str
    tmp: str  # complete file in the staging folder
    uid: str  # new SOP Instance UID
    patient_id: str  # new
    prefix: str


@dataclass(slots=True)
class Journal:
    """What one file added to a :class:`JournalUidMap`, in the order it happened."""

    patients: list[tuple[str, str, str]] = field(default_factory=list)  # (original ID, new ID, new name) per call
    uids: list[tuple[str, str]] = field(default_factory=list)  # new (original, new) UIDs
    date_shifts: list[tuple[str, int]] = field(default_factory=list)


class JournalUidMap(UidMap):
    """A worker's copy of the run's map that records what each file adds.

    New UIDs and date shifts are keyed hashes of the salt, the same in every
    process; only the order of first use (the saved map lists UIDs in it) and
    the patients' ``-2`` suffixes depend on the order of the files, which the
    parent replays from the journals.
    """

    def __init__(self, base: UidMap, patients: dict[str, PatientEntry] | None = None) -> None:
        super().__init__(salt=base.salt, uids=dict(base.uids), patients=dict(patients or base.patients),
                         date_shifts=dict(base.date_shifts))
        self.journal = Journal()
        self._file_uids: set[str] = set()

    def take(self) -> Journal:
        got, self.journal = self.journal, Journal()
        self._file_uids.clear()
        return got

    def map(self, original: str) -> str:
        """As :meth:`UidMap.map`; journals every UID of the file once, known here or not.

        A process does not see the files in path order (the caller takes
        batches from the back), so "new to this process" is not "new to the run".
        """
        new = self.uids.get(original)
        if new is None:
            new = self.uids[original] = self.new_uid(original)
        if original not in self._file_uids:
            self._file_uids.add(original)
            self.journal.uids.append((original, new))
        return new

    def patient(self, original_id: str, given_id: str, given_name: str) -> PatientEntry:
        entry = super().patient(original_id, given_id, given_name)
        self.journal.patients.append((original_id, entry.new_id, entry.new_name))
        return entry

    def date_shift(self, original_id: str) -> int:
        known = original_id in self.date_shifts
        shift = super().date_shift(original_id)
        if not known:
            self.journal.date_shifts.append((original_id, shift))
        return shift


@dataclass(slots=True)
class Outcome:
    """What became of one input file (``index`` = its place in the run's path order)."""

    index: int
    path: str
    skipped: str | None = None  # not DICOM / unreadable / truncated: the reason
    failed: str | None = None  # a readable instance not copied: the reason
    burned_in_kept: bool = False
    found: Originals | None = None  # identifiers for path names; set when the engine succeeded
    new_id: str = ""
    new_name: str = ""
    staged: Staged | None = None
    summary: InstanceSummary | None = None
    ae_titles: list[tuple[str, str]] = field(default_factory=list)  # retained AE title -> as cleaned
    journal: Journal | None = None  # worker runs only
    identifiers: Identifiers | None = None  # worker runs with verify only: this file's needles
    pid: int = 0  # the process that anonymized it, in a parallel run


def read(path: str) -> Dataset | str:
    """The full dataset, or a one-line reason why the file is not copied.

    The one reader decides what is an instance (same verdict as show and
    search; SOP UIDs missing from the data set are taken from the file meta).
    """
    from dicomtools.core.archive.read import read_dataset

    ds = read_dataset(path)
    if isinstance(ds, UnreadableFile):
        return ds.reason
    raw = ds._dict.get(BaseTag(0x7FE00010))
    declared = getattr(raw, "length", None)
    value = getattr(raw, "value", None)
    if isinstance(declared, int) and declared != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < declared:
        return "truncated: pixel data runs past the end of the file"
    return ds


def prefix_of(modality: str) -> str:
    m = modality.upper()
    return PREFIX_BY_MODALITY.get(m, safe_name(m, "OT")[:8])


def summary_of(ds: Dataset, path: str) -> InstanceSummary:
    """The scanner's summary of an anonymized dataset, without reading the file back.

    Files without the sequences the tree follows (image slices, the bulk of
    any archive) take the scanner's flat fast path over raw values.
    """
    from dicomtools.core.archive.summarize import summary_of_dataset

    return summary_of_dataset(ds, path, element_text)


class FileWork:
    """Per-file work of a run; ``identifiers``: the run's (serial) or a fresh one per file (``per_file``)."""

    def __init__(
        self,
        engine: Anonymizer,
        names: PathNames,
        staging: str,
        *,
        keep_burned_in: bool,
        summarize: bool,
        identifiers: Identifiers | None = None,
        per_file_identifiers: set[str] | None = None,  # the ignore set of a fresh Identifiers per file
    ) -> None:
        self.engine = engine
        self.names = names
        self.staging = staging
        self.keep_burned_in = keep_burned_in
        self.summarize = summarize
        self.identifiers = identifiers
        self.per_file_identifiers = per_file_identifiers

    def process(self, index: int, path: str) -> Outcome:
        out = Outcome(index, path)
        try:
            self._process(out)
        finally:
            uid_map = self.engine.uid_map
            if isinstance(uid_map, JournalUidMap):
                out.journal = uid_map.take()
        return out

    def _process(self, out: Outcome) -> None:
        got = read(out.path)
        if isinstance(got, str):
            out.skipped = got
            return
        ds = got
        if self.per_file_identifiers is not None:
            out.identifiers = Identifiers(ignore=set(self.per_file_identifiers))
            out.identifiers.add_dataset(ds)
        elif self.identifiers is not None:
            self.identifiers.add_dataset(ds)
        found = path_identifiers(ds)  # before the engine changes them
        if element_text(ds, 0x00280301).strip().upper() == "YES":
            if not self.keep_burned_in:
                out.failed = BURNED_IN
                return
            out.burned_in_kept = True
        try:
            result = self.engine.anonymize(ds)
        except Exception as exc:  # one odd file must not stop the run
            log.debug("anonymize failed for %s", out.path, exc_info=True)
            out.failed = failure_reason(exc, "anonymize")
            return
        self.names.add(found, result.new_patient_id, result.new_patient_name)
        out.found, out.new_id, out.new_name = found, result.new_patient_id, result.new_patient_name
        self._stage(out, ds)

    def _stage(self, out: Outcome, ds: Dataset) -> None:
        """Write into staging; a file pydicom cannot write is listed, not fatal."""
        tmp = os.path.join(self.staging, f"{out.index}.dcm")
        names, titles = self.names, out.ae_titles

        def clean(title: str) -> str:
            cleaned = names.rewrite(title, None)
            titles.append((title, cleaned))
            return cleaned

        try:
            uid = element_text(ds, 0x00080018)
            prefix = prefix_of(element_text(ds, 0x00080060))
            # the staging name is final only after the rename (run._place): no second temp file here
            prepare_for_writing(ds, clean)
            with open(tmp, "wb") as fh:
                ds.save_as(fh)
            summary = summary_of(ds, tmp) if self.summarize else None
        except Exception as exc:  # pydicom raises many types when re-encoding a damaged element
            log.debug("write failed for %s", out.path, exc_info=True)
            out.failed = failure_reason(exc, "write")
            with contextlib.suppress(OSError):
                os.remove(tmp)
            return
        out.staged = Staged(out.path, tmp, uid, out.new_id, prefix)
        out.summary = summary
