"""Search a folder for files whose elements satisfy tag expressions.

Each file is sniffed first (non-DICOM is rejected without pydicom), then its
header is read: by the fast parser when the expressions name text elements at
the top level or inside public sequences (:mod:`~dicomtools.core.search.fastpath`),
else by pydicom with only the top-level elements the expressions need; pixel
data is never read. The index cache keeps each expression's result per file.
Big folders are split over a process pool (both cores).
"""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from collections.abc import Sequence

from dicomtools.core.archive.model import UnreadableFile
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.dicom.text import NUMERIC_VRS, canonical_number
from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.records import NamedTuple
from dicomtools.core.search import expr as expr_mod
from dicomtools.core.search.expr import Expression
from dicomtools.core.slotted import Slotted

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:  # the cache (sqlite3, json) is imported by whoever opens one
    from typing import Any

    from pydicom.dataset import Dataset

    from dicomtools.core.archive.cache import FileStamp, IndexCache
    from dicomtools.core.archive.read import Instance
    from dicomtools.core.archive.snapshot import FolderCache
    from dicomtools.core.search.fastpath import ReadPlan

log = get_logger(__name__)

PARALLEL_THRESHOLD = 8000  # as scan: on the loaded 2-core VM a pool lost at 5,500 files (0.86x vs 0.99x serial) and won at 22,000
BATCH_SIZE = 256
PROGRESS_EVERY = 64  # in-process: report every this many files


# Records, not dataclasses: importing dataclasses (with inspect) and creating the classes
# cost ~6 ms of a ~80 ms warm search.


class SearchMatch(NamedTuple):
    """A matching file and, per expression path (as written), the values that made it hold."""

    path: str
    values: dict[str, list[str]]


class SearchResult(Slotted):
    """Everything one search found; ``statistics`` counts files per value of each ``=?`` path."""

    __slots__ = ("root", "expressions", "matches", "files_scanned", "dicom_files", "unreadable", "elapsed",
                 "statistics", "cancelled")

    def __init__(
        self,
        root: str,
        expressions: list[str] | None = None,
        matches: list[SearchMatch] | None = None,
        files_scanned: int = 0,
        dicom_files: int = 0,
        unreadable: list[UnreadableFile] | None = None,
        elapsed: float = 0.0,
        statistics: dict[str, Counter[str]] | None = None,
        cancelled: bool = False,
    ) -> None:
        self.root = root
        self.expressions: list[str] = [] if expressions is None else expressions
        self.matches: list[SearchMatch] = [] if matches is None else matches
        self.files_scanned = files_scanned
        self.dicom_files = dicom_files
        self.unreadable: list[UnreadableFile] = [] if unreadable is None else unreadable
        self.elapsed = elapsed
        self.statistics: dict[str, Counter[str]] = {} if statistics is None else statistics
        self.cancelled = cancelled

    @property
    def matched(self) -> int:
        return len(self.matches)

    def directories(self) -> list[str]:
        """The distinct folders of the matching files, in the order first found."""
        return list(dict.fromkeys(os.path.dirname(m.path) for m in self.matches))


class FileOutcome(NamedTuple):
    """What searching one file gave: values when it matched, a reason when unreadable.

    ``per_expr`` holds each expression's own result (values, or None when it
    does not hold): the unit the index cache stores.
    """

    path: str
    dicom: bool
    values: dict[str, list[str]] | None = None
    reason: str = ""
    per_expr: tuple[list[str] | None, ...] = ()
    kind: ReasonKind = ReasonKind.OTHER


def combine(exprs: Sequence[Expression], per_expr: Sequence[list[str] | None]) -> dict[str, list[str]] | None:
    """AND the per-expression results, keyed by path text (same rule as ``expr.matches_all``)."""
    out: dict[str, list[str]] = {}
    for expr, values in zip(exprs, per_expr, strict=True):
        if values is None:
            return None
        merged = out.get(expr.path_text, []) + values
        out[expr.path_text] = list(dict.fromkeys(merged))
    return out


class _Unknown:
    """The read plan is not decided yet (a caller searching a single file)."""


_PLAN_UNKNOWN = _Unknown()


def _read(path: str, tags: Sequence[int], plan: ReadPlan | None) -> Instance | UnreadableFile:
    """The one reader: the fast header when the plan says so, else a pydicom dataset.

    When the fast parser is unsure of a file (or of a sequence in it), pydicom
    reads the whole header (never pixel data), so the verdict on a broken file
    is the one ``show`` gives, whatever the expressions ask for.
    """
    # Imported here (~0.15 us a file once loaded): a warm search that reads no file skips the reader.
    import dicomtools.core.archive.read as reader

    if plan is not None:
        return reader.read_instance(path, plan.flat, plan.sequences, tags=tags, specs=plan.specs)
    return reader.read_instance(path, tags=tags, use_pydicom=True)


def read_values(path: str, tags: Sequence[int]) -> Dataset | UnreadableFile:
    """Only ``tags`` (top level, with their sequences) of ``path`` as a dataset; never pixel data."""
    found = _read(path, tags, None)
    if isinstance(found, UnreadableFile):
        return found
    assert found.dataset is not None
    return found.dataset


def read_plan(exprs: Sequence[Expression]) -> ReadPlan | None:
    """How files are read for ``exprs``: the fast plan, or None for pydicom."""
    from dicomtools.core.search import fastpath

    return fastpath.plan(exprs)


def search_file(
    path: str, exprs: Sequence[Expression], tags: Sequence[int], plan: ReadPlan | None | _Unknown = _PLAN_UNKNOWN
) -> FileOutcome:
    """Read one file and evaluate every expression on it; never raises."""
    import dicomtools.core.search.fastpath as fastpath

    if isinstance(plan, _Unknown):
        plan = fastpath.plan(exprs)
    found = _read(path, tags, plan)
    if isinstance(found, UnreadableFile):
        return FileOutcome(path, False, reason=found.reason, kind=found.kind)
    if found.fast is not None:
        fast = fastpath.evaluate(exprs, found)
        return FileOutcome(path, True, combine(exprs, fast), per_expr=tuple(fast))
    assert found.dataset is not None
    per_expr: list[list[str] | None] = []
    for e in exprs:
        try:
            m = e.evaluate(found.dataset)
        except Exception as exc:  # a damaged value pydicom cannot convert (the file is still an instance)
            log.debug("%s: cannot decode %s", path, e.path_text, exc_info=True)
            shown = e.op in ("show", "present")
            per_expr.append([f"<cannot decode: {type(exc).__name__}>"] if shown else None)
            continue
        per_expr.append(None if m is None else list(m.values))
    return FileOutcome(path, True, combine(exprs, per_expr), per_expr=tuple(per_expr))


OutcomeRow = tuple[str, bool, "dict[str, list[str]] | None", str, str, "tuple[list[str] | None, ...]"]


def search_batch(
    paths: list[str], exprs: tuple[Expression, ...], tags: tuple[int, ...], plan: ReadPlan | None
) -> list[OutcomeRow]:
    """Worker entry point (module level so it pickles).

    Expressions travel parsed, with the read plan, so a worker on the flat
    path never imports pydicom. Outcomes travel back as plain tuples:
    pickling a dataclass per file costs ~6x more (~2 us a file).
    """
    out = []
    for p in paths:
        o = search_file(p, exprs, tags, plan)
        out.append((o.path, o.dicom, o.values, o.reason, o.kind.value, o.per_expr))
    return out


def _from_rows(rows: list[OutcomeRow]) -> list[FileOutcome]:
    return [FileOutcome(p, d, v, r, pe, _KINDS.get(k) or ReasonKind(k)) for p, d, v, r, k, pe in rows]


def search(
    root: str,
    exprs: Sequence[Expression | str],
    pattern: str | None = None,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
    cache: IndexCache | None = None,
) -> SearchResult:
    """Find the files below ``root`` where all ``exprs`` hold (AND).

    With ``cache``, each expression's result per unchanged file is taken from
    the index and only files missing a result are read.

    ``workers``: readers in all. None picks one per core when there are more than
    :data:`PARALLEL_THRESHOLD` files; 1 reads in this process; N >= 2 always
    starts N - 1 worker processes, this process being the N-th reader. Strings in ``exprs`` are parsed (may raise ExprError).
    """
    # Tens of thousands of small outcome objects trigger needless full GC passes
    # (~15% of a 5,000-file search); nothing made here holds a reference cycle.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _search(root, exprs, pattern, sink, cancel, workers, cache)
    finally:
        if was_enabled:
            gc.enable()


def _search(
    root: str,
    exprs: Sequence[Expression | str],
    pattern: str | None,
    sink: ProgressSink | None,
    cancel: CancelToken | None,
    workers: int | None,
    cache: IndexCache | None,
) -> SearchResult:
    parsed = [e if isinstance(e, Expression) else expr_mod.parse(e) for e in exprs]
    if not parsed:
        raise ValueError("search needs at least one expression")
    sources = tuple(e.source for e in parsed)
    tags = expr_mod.needed_top_level_tags(parsed)
    shown = list(dict.fromkeys(e.path_text for e in parsed if e.op == "show"))
    rep = Reporter("search", sink)
    started = time.monotonic()
    result = SearchResult(root=root, expressions=list(sources))
    result.statistics = {p: Counter() for p in shown}
    shown_vr = {e.path_text: _leaf_vr(e) for e in parsed if e.op == "show"}
    # (path, VR when numeric else "", its counter) per shown path: the per-file loop looks up nothing
    counted = [(p, shown_vr[p] if shown_vr[p] in NUMERIC_VRS else "", result.statistics[p]) for p in shown]

    def walk_error(path: str, reason: str) -> None:
        result.unreadable.append(UnreadableFile(path, reason, ReasonKind.WALK))

    paths = list(iter_files(root, pattern, on_error=walk_error))
    total = len(paths)
    result.files_scanned = total
    rep.started(total, root)
    done = 0

    stamps: dict[str, FileStamp] = {}
    fresh: dict[str, FileOutcome] = {}
    folders: FolderCache | None = None
    collected: dict[str, FileOutcome] = {}  # outcomes a new folder snapshot needs
    if cache is not None and paths:  # nothing to look up (or import) for an empty folder
        from dicomtools.core.archive.snapshot import FolderCache, folder_groups, pattern_scope

        scope = "\0".join(("", "search", pattern_scope(pattern), *sources))
        folders = FolderCache(cache, scope, os.path.isdir(root), _encode_outcome, _decode_outcome, ())
        fresh, rest = folders.lookup(list(folder_groups(paths)))
        stamps = cache.stamps(rest)
        fresh.update(_from_cache(cache, stamps, parsed))
        paths_to_read = [p for p in paths if p not in fresh]
    else:
        paths_to_read = paths

    def take(outcomes: list[FileOutcome]) -> None:
        nonlocal done
        if cache is not None and outcomes and outcomes[0].path not in fresh:
            _to_cache(cache, stamps, parsed, outcomes)
        watch = folders.watch if folders is not None else None
        add_match = result.matches.append
        dicom = 0
        for o in outcomes:
            if watch and o.path in watch:
                collected[o.path] = o
            if not o.dicom:
                result.unreadable.append(UnreadableFile(o.path, o.reason, o.kind))
                continue
            dicom += 1
            found = o.values
            if found is None:
                continue
            add_match(SearchMatch(o.path, found))
            for p, vr, counter in counted:
                values = found.get(p, [])
                if vr:  # 6, 6.0 and 6.000 are one value
                    values = [canonical_number(vr, v) for v in values]
                if len(values) == 1:
                    counter[values[0]] += 1
                else:
                    for v in dict.fromkeys(values):  # each value once per file (a Counter.update per file costs more)
                        counter[v] += 1
        result.dicom_files += dicom
        done += len(outcomes)

    def is_cancelled() -> bool:
        return cancel is not None and cancel.cancelled

    if fresh:
        take([fresh[p] for p in paths if p in fresh])
        rep.advanced(done, total)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    n_read = len(paths_to_read)
    # The read plan looks up VRs in the dictionary table: only worth it when files are read.
    plan = read_plan(parsed) if n_read else None
    use_pool = n_workers > 1 and n_read > 0 and (workers is not None or n_read > PARALLEL_THRESHOLD)
    if not use_pool:
        for i, path in enumerate(paths_to_read, 1):
            if is_cancelled():
                result.cancelled = True
                break
            take([search_file(path, parsed, tags, plan)])
            if i % PROGRESS_EVERY == 0:
                rep.advanced(done, total)
    else:
        def take_and_report(rows: list[OutcomeRow]) -> None:
            take(_from_rows(rows))
            rep.advanced(done, total)

        batches = [paths_to_read[i : i + BATCH_SIZE] for i in range(0, n_read, BATCH_SIZE)]
        extra = (tuple(parsed), tuple(tags), plan)
        from dicomtools.core.archive.pool import run_batches

        # The caller reads too (it steals batches from the back): n_workers readers in all, as in scan.
        result.cancelled = run_batches(batches, search_batch, extra, n_workers - 1, take_and_report, cancel)
    if folders is not None:
        folders.save(collected)
    result.elapsed = time.monotonic() - started
    note = f"{result.matched} matched of {result.dicom_files} DICOM files"
    rep.finished(done, total, note + (" (cancelled)" if result.cancelled else ""))
    return result


UNREADABLE_KEY = "#unreadable:v2"  # payload [kind, reason]


def _expr_key(expr: Expression) -> str:
    return "expr:" + expr.source


def _from_cache(cache: IndexCache, stamps: dict[str, FileStamp], exprs: Sequence[Expression]) -> dict[str, FileOutcome]:
    """Outcomes for files whose every expression result (or unreadability) is cached and fresh."""
    out: dict[str, FileOutcome] = {}
    for path, payload in cache.lookup_elements(stamps, UNREADABLE_KEY).items():
        kind, reason = payload if isinstance(payload, list) and len(payload) == 2 else ("", payload)
        out[path] = FileOutcome(path, False, reason=str(reason), kind=ReasonKind.parse(kind))
    per_key = [cache.lookup_elements(stamps, _expr_key(e)) for e in exprs]
    for path in stamps:
        if path in out or not all(path in known for known in per_key):
            continue
        per_expr = tuple(known[path] for known in per_key)
        out[path] = FileOutcome(path, True, combine(exprs, per_expr), per_expr=per_expr)
    return out


def _encode_outcome(o: FileOutcome, stamp: FileStamp) -> tuple[object, ...] | None:
    """A file's outcome as a folder-snapshot row; None when it must be read again next time."""
    if not o.dicom and o.kind.transient:
        return None
    return (o.dicom, o.values, o.reason, o.kind.value, o.per_expr)


_KINDS = {k.value: k for k in ReasonKind}  # a dict lookup, not an Enum call, per cached file


def _decode_outcome(path: str, row: tuple[Any, ...]) -> FileOutcome:
    dicom, values, reason, kind, per_expr = row
    return FileOutcome(path, dicom, values, reason, per_expr, _KINDS.get(kind) or ReasonKind(kind))


def _to_cache(
    cache: IndexCache, stamps: dict[str, FileStamp], exprs: Sequence[Expression], outcomes: list[FileOutcome]
) -> None:
    bad = {o.path: [o.kind.value, o.reason] for o in outcomes if not o.dicom and not o.kind.transient}
    cache.store_elements(UNREADABLE_KEY, bad, stamps)
    good = [o for o in outcomes if o.dicom and len(o.per_expr) == len(exprs)]
    for i, e in enumerate(exprs):
        cache.store_elements(_expr_key(e), {o.path: o.per_expr[i] for o in good}, stamps)


def _leaf_vr(expr: Expression) -> str:
    """The dictionary VR of the element an expression ends at ('' for private/unknown)."""
    tag = expr.path[-1].tag
    if (tag >> 16) % 2:
        return ""
    try:
        return str(expr_mod.dictionary_VR(tag))
    except KeyError:
        return ""
