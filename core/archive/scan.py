"""Header-only reading of a folder into :class:`InstanceSummary` records.

Speed matters here (archives of tens of thousands of files): unchanged files
come from the index cache, the rest are read by :mod:`.summarize` (a cheap
sniff, only the tags the tree needs, never pixel data), and big folders are
split over forked readers or a process pool. Nothing a single file does can
stop the scan.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator

from dicomtools.core.archive.model import InstanceSummary, ScanResult, UnreadableFile
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:  # sqlite3 costs ~20 ms to import: only a scan with the cache pays it

    from dicomtools.core.archive.cache import FileStamp, IndexCache
    from dicomtools.core.archive.snapshot import FolderCache

log = get_logger(__name__)

PARALLEL_THRESHOLD = 8000  # measured on the loaded 2-core VM: a fork pool lost at 5,000 files, broke even at 20,000
BATCH_SIZE = 256
# Plain forked readers (single-threaded callers: the CLI) pay from far fewer files.
FORK_THRESHOLD = 400
FORK_BATCH = 32  # small batches: the readers share the work evenly when one core is busy elsewhere


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    # Creating tens of thousands of small objects triggers needless full GC passes;
    # the warm path builds its 100,000 summaries here too, not only the readers.
    was = gc.isenabled()
    gc.disable()
    try:
        return _scan(root, pattern, sink, cancel, workers, on_batch, cache, meanwhile)
    finally:
        if was:
            gc.enable()


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
    if n_read:
        # Imported only now: a scan the cache answers whole reads no file.
        from dicomtools.core.archive import summarize
    forked = None
    if n_workers > 1 and n_read >= FORK_THRESHOLD:
        # Imported here: only a cold scan of a few hundred files or more forks.
        from dicomtools.core.archive import forkread

        forked = forkread if forkread.available() else None
    if forked is not None:
        # small batches spread the work evenly; at least ~16 a reader, never more than the pipe holds
        size = max(FORK_BATCH, min(BATCH_SIZE, n_read // (n_workers * 16)), -(-n_read // forked.MAX_TASKS))
        forked.run_forked(list(_batched(iter(to_read), size)), summarize.read_batch_rows, n_workers - 1, take,
                          cancel, here=summarize.read_batch, decode=summarize.rows_to_results, meanwhile=meanwhile)
        meanwhile = None
    elif n_workers > 1 and n_read >= PARALLEL_THRESHOLD:
        # Imported here: the pool (threads, processes) serves only a big cold scan from a threaded caller.
        from dicomtools.core.archive.pool import run_batches

        # The caller reads too: n_workers readers in all.
        run_batches(list(_batched(iter(to_read), BATCH_SIZE)), summarize.read_batch_rows, (), n_workers - 1,
                    lambda rows: take(summarize.rows_to_results(rows)), cancel)
    else:
        for batch in _batched(iter(to_read), BATCH_SIZE):
            if cancel is not None and cancel.cancelled:
                break
            take(summarize.read_batch(batch))
    if meanwhile is not None:
        meanwhile()
    if folders is not None:
        folders.save(collected)
    result.unreadable.sort(key=lambda u: u.path)
    result.elapsed = time.monotonic() - started
    rep.finished(done, total, f"{len(result.instances)} DICOM, {len(result.unreadable)} unreadable")
    return result
