"""Header-only reading of a folder into :class:`InstanceSummary` records.

Speed matters here (archives of tens of thousands of files): a cheap sniff
rejects non-DICOM files before pydicom sees them, only the top-level tags the
tree needs are converted, pixel data is never read, and big folders are split
over a process pool. Nothing a single file does can stop the scan.
"""

from __future__ import annotations

import gc
import operator
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dicomtools.core.archive import fastread
from dicomtools.core.archive.dssummary import FLAT_FIELDS, as_int, summary_from_dataset
from dicomtools.core.archive.fastsummary import SPECS, Unsure, fill_sequences
from dicomtools.core.archive.model import (
    SUMMARY_FIELDS,
    BeamInfo,
    InstanceSummary,
    ScanResult,
    UnreadableFile,
)
from dicomtools.core.archive.read import Instance, read_instance
from dicomtools.core.archive.read import sniff_dicom as sniff_dicom  # re-exported for old importers
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.dicom.text import pn_text
from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:  # sqlite3 costs ~20 ms to import: only a scan with the cache pays it
    from typing import Any

    from dicomtools.core.archive.cache import FileStamp, IndexCache
    from dicomtools.core.archive.snapshot import FolderCache

log = get_logger(__name__)

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

PARALLEL_THRESHOLD = 8000  # measured on the loaded 2-core VM: a fork pool lost at 5,000 files, broke even at 20,000
BATCH_SIZE = 256
# Plain forked readers (single-threaded callers: the CLI) pay from far fewer files.
FORK_THRESHOLD = 400
FORK_BATCH = 32  # small batches: the readers share the work evenly when one core is busy elsewhere


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
    # loaded already (read_instance); imported here to keep the module's import block as main has it
    from dicomtools.core.archive.read import read_instance_head

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
_beam_row = operator.attrgetter("number", "name", "delivery_type", "machine", "machine_model", "reference_images")


def result_row(item: InstanceSummary | UnreadableFile) -> Row:
    """A result as a plain tuple of str/int/tuples (``marshal`` and ``pickle`` write it fast)."""
    if isinstance(item, UnreadableFile):
        return (item.path, item.reason, item.kind.value)
    row = _summary_row(item)
    if item.beams:
        row = (*row[:_BEAMS], tuple(_beam_row(b) for b in item.beams), *row[_BEAMS + 1 :])
    return row


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
        item = InstanceSummary(*row)
        if item.beams:
            item.beams = tuple(BeamInfo(*b) for b in item.beams)
        out.append(item)
    return out


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Creating tens of thousands of small objects triggers needless full GC passes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


BatchHandler = Callable[[list[InstanceSummary]], None]


def scan(
    root: str,
    pattern: str | None = None,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
    on_batch: BatchHandler | None = None,
    cache: IndexCache | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> ScanResult:
    """Scan ``root`` recursively; never raises for a bad file, reports each one.

    ``on_batch`` receives readable summaries as they arrive (the TUI's live
    tree). With ``cache``, files whose size and mtime are unchanged are not
    read again, and what is read is stored for next time. ``meanwhile`` is the
    caller's own preparation (``show`` imports its tree builder and renderer):
    it runs once forked readers have started, so they read while it runs, or
    at the end when nothing was forked.
    """
    with _gc_paused():  # the warm path builds its 100,000 summaries here too, not only the readers
        return _scan(root, pattern, sink, cancel, workers, on_batch, cache, meanwhile)


def _scan(
    root: str,
    pattern: str | None,
    sink: ProgressSink | None,
    cancel: CancelToken | None,
    workers: int | None,
    on_batch: BatchHandler | None,
    cache: IndexCache | None,
    meanwhile: Callable[[], None] | None,
) -> ScanResult:
    rep = Reporter("scan", sink)
    started = time.monotonic()
    result = ScanResult(root=root)

    def walk_error(path: str, reason: str) -> None:
        result.unreadable.append(UnreadableFile(path, reason, ReasonKind.WALK))

    paths = list(iter_files(root, pattern, on_error=walk_error))
    total = len(paths)
    result.files_seen = total
    rep.started(total, root)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    done = 0
    stamps: dict[str, FileStamp] = {}

    collected: dict[str, InstanceSummary | UnreadableFile] = {}  # results a new folder snapshot needs

    def take(batch_result: list[InstanceSummary | UnreadableFile], fresh: bool = True) -> None:
        nonlocal done
        watch = folders.watch if folders is not None else None
        if watch:
            for item in batch_result:
                if item.path in watch:
                    collected[item.path] = item
        # one pass in C for the common all-good batch (a warm 100,000-file scan takes them all here)
        good = [item for item in batch_result if isinstance(item, InstanceSummary)]
        if len(good) != len(batch_result):
            result.unreadable.extend(item for item in batch_result if not isinstance(item, InstanceSummary))
        result.instances.extend(good)
        done += len(batch_result)
        if cache is not None and fresh:
            cache.store(batch_result, stamps)
        if on_batch and good:
            on_batch(good)
        rep.advanced(done, total)

    to_read = paths
    folders: FolderCache | None = None
    if cache is not None:
        from dicomtools.core.archive.snapshot import FolderCache, from_cache, pattern_scope

        folders = FolderCache(cache, pattern_scope(pattern), enabled=os.path.isdir(root))
        to_read, hits = from_cache(cache, folders, paths, take, stamps, cancel)
        if pattern is None:
            cache.forget_missing(root, paths, known_rows=hits)
    n_read = len(to_read)
    forked = None
    if n_workers > 1 and n_read >= FORK_THRESHOLD:
        # Imported here: only a cold scan of a few hundred files or more forks.
        from dicomtools.core.archive import forkread

        forked = forkread if forkread.available() else None
    if forked is not None:
        # small batches spread the work evenly; at least ~16 a reader, never more than the pipe holds
        size = max(FORK_BATCH, min(BATCH_SIZE, n_read // (n_workers * 16)), -(-n_read // forked.MAX_TASKS))
        forked.run_forked(list(_batched(iter(to_read), size)), read_batch_rows, n_workers - 1, take, cancel,
                          here=read_batch, decode=rows_to_results, meanwhile=meanwhile)
        meanwhile = None
    elif n_workers > 1 and n_read >= PARALLEL_THRESHOLD:
        # Imported here: the pool (threads, processes) serves only a big cold scan from a threaded caller.
        from dicomtools.core.archive.pool import run_batches

        # The caller reads too: n_workers readers in all.
        run_batches(list(_batched(iter(to_read), BATCH_SIZE)), read_batch_rows, (), n_workers - 1,
                    lambda rows: take(rows_to_results(rows)), cancel)
    else:
        for batch in _batched(iter(to_read), BATCH_SIZE):
            if cancel is not None and cancel.cancelled:
                break
            take(read_batch(batch))
    if meanwhile is not None:
        meanwhile()
    if folders is not None:
        folders.save(collected)
    result.unreadable.sort(key=lambda u: u.path)
    result.elapsed = time.monotonic() - started
    rep.finished(done, total, f"{len(result.instances)} DICOM, {len(result.unreadable)} unreadable")
    return result
