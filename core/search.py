"""Search a folder for files whose elements satisfy tag expressions.

Each file is sniffed first (non-DICOM is rejected without pydicom), then read
header-only with only the top-level elements the expressions need, stopping at
the last of them; pixel data is never read. Reading is done in one function,
:func:`read_values`, so an index cache of per-file element values can replace it
later. Big folders are split over a process pool (both cores).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import struct
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomtools.core import expr as expr_mod
from dicomtools.core import fastread
from dicomtools.core.cache import FileStamp, IndexCache
from dicomtools.core.expr import Expression
from dicomtools.core.model import UnreadableFile
from dicomtools.core.pool import run_batches
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.scan import read_fast_header, sniff_dicom
from dicomtools.core.walk import iter_files

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

PARALLEL_THRESHOLD = 4000  # below this, starting worker processes costs more than it saves
BATCH_SIZE = 256
PROGRESS_EVERY = 64  # in-process: report every this many files
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


@dataclass(frozen=True, slots=True)
class SearchMatch:
    """A matching file and, per expression path (as written), the values that made it hold."""

    path: str
    values: dict[str, list[str]]


@dataclass(slots=True)
class SearchResult:
    """Everything one search found; ``statistics`` counts files per value of each ``=?`` path."""

    root: str
    expressions: list[str] = field(default_factory=list)
    matches: list[SearchMatch] = field(default_factory=list)
    files_scanned: int = 0
    dicom_files: int = 0
    unreadable: list[UnreadableFile] = field(default_factory=list)
    elapsed: float = 0.0
    statistics: dict[str, Counter[str]] = field(default_factory=dict)
    cancelled: bool = False

    @property
    def matched(self) -> int:
        return len(self.matches)

    def directories(self) -> list[str]:
        """The distinct folders of the matching files, in the order first found."""
        return list(dict.fromkeys(os.path.dirname(m.path) for m in self.matches))


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What searching one file gave: values when it matched, a reason when unreadable.

    ``per_expr`` holds each expression's own result (values, or None when it
    does not hold): the unit the index cache stores.
    """

    path: str
    dicom: bool
    values: dict[str, list[str]] | None = None
    reason: str = ""
    per_expr: tuple[list[str] | None, ...] = ()


def combine(exprs: Sequence[Expression], per_expr: Sequence[list[str] | None]) -> dict[str, list[str]] | None:
    """AND the per-expression results, keyed by path text (same rule as ``expr.matches_all``)."""
    out: dict[str, list[str]] = {}
    for expr, values in zip(exprs, per_expr, strict=True):
        if values is None:
            return None
        merged = out.get(expr.path_text, []) + values
        out[expr.path_text] = list(dict.fromkeys(merged))
    return out


_QUIET = False


def _quiet_pydicom() -> None:
    """Search reports bad files itself; pydicom's per-value warnings would flood stderr."""
    global _QUIET
    if not _QUIET:
        from pydicom import config

        config.settings.reading_validation_mode = config.IGNORE
        warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
        _QUIET = True


# VRs the fast reader hands over as raw bytes (text; pydicom decodes them as usual).
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})


@functools.lru_cache(maxsize=64)
def _fast_plan(tags: tuple[int, ...]) -> frozenset[int] | None:
    """The tags as a set when every one is a public text element (fast path), else None."""
    from pydicom.datadict import dictionary_VR

    for tag in tags:
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        if (tag >> 16) % 2 == 1 or (tag >> 16) in (0x0002, 0xFFFE):
            return None
        try:
            if dictionary_VR(tag) not in TEXT_VRS:
                return None
        except KeyError:
            return None
    return frozenset(tags) - {SPECIFIC_CHARACTER_SET}


_NO_SEQUENCES: frozenset[int] = frozenset()


def _read_fast_header(path: str, wanted: frozenset[int]) -> fastread.FastHeader | UnreadableFile | None:
    """Flat public text elements straight from the bytes; None when pydicom must read the file."""
    return read_fast_header(path, wanted, _NO_SEQUENCES)[0]


def _read_fast(path: str, wanted: frozenset[int]) -> Dataset | UnreadableFile | None:
    """The fast header as a dataset of raw elements, decoded by pydicom exactly as from the file."""
    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    hdr = _read_fast_header(path, wanted)
    if not isinstance(hdr, fastread.FastHeader):
        return hdr
    from pydicom.dataset import Dataset

    ds = Dataset()
    for tag, (vr_bytes, value) in sorted(hdr.raw.items()):
        vr = vr_bytes.decode("ascii") if vr_bytes else dictionary_VR(tag)
        ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, hdr.implicit, True)
    return ds


def read_values(path: str, tags: Sequence[int]) -> Dataset | UnreadableFile:
    """Read only ``tags`` (top level, with their sequences) from ``path``; never pixel data.

    This is the single place search touches files. Flat public text elements
    (the common case: IDs, names, modality, dates) are read by the fast header
    parser; anything else by pydicom.
    """
    flat = _fast_plan(tuple(sorted(set(tags))))
    if flat is not None:
        fast = _read_fast(path, flat)
        if fast is not None:
            return fast
    # Same verdict as the scanner on cut-off headers and DICOMDIRs, so search and show agree.
    verdict = _read_fast_header(path, _NO_SEQUENCES)
    if isinstance(verdict, UnreadableFile):
        return verdict
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    _quiet_pydicom()
    wanted = sorted({*tags, SPECIFIC_CHARACTER_SET})
    last = max(t for t in wanted)

    def stop_when(tag: int, vr: object, length: int) -> bool:
        return tag > last or tag in PIXEL_TAGS

    try:
        with open(path, "rb") as fh:
            has_preamble, reason = sniff_dicom(fh.read(132))
            if reason:
                return UnreadableFile(path, reason)
            fh.seek(0)
            try:
                return read_partial(
                    fh, stop_when=stop_when, force=not has_preamble, specific_tags=list(wanted)
                )
            except InvalidDicomError as exc:
                return UnreadableFile(path, f"not DICOM: {_one_line(exc)}")
            except (EOFError, struct.error):
                return UnreadableFile(path, "truncated DICOM header")
    except MemoryError:
        return UnreadableFile(path, "unreadable: declared lengths exceed memory")
    except OSError as exc:
        return UnreadableFile(path, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # pydicom raises many types on corrupt data
        return UnreadableFile(path, f"corrupt DICOM: {type(exc).__name__}: {_one_line(exc)}")


def _search_flat(path: str, exprs: Sequence[Expression], flat: frozenset[int]) -> FileOutcome | None:
    """Evaluate single-step expressions on flat text elements without building a dataset."""
    hdr = _read_fast_header(path, flat)
    if hdr is None:
        return None
    if isinstance(hdr, UnreadableFile):
        return FileOutcome(path, False, reason=hdr.reason)
    codec = fastread.SIMPLE_CHARSETS.get(hdr.values.get(SPECIFIC_CHARACTER_SET, ""), "ascii")
    per_expr: list[list[str] | None] = []
    for e in exprs:
        tag = e.top_level_tag
        raw = hdr.raw.get(tag)
        if raw is None:
            per_expr.append(None)
            continue
        vr = raw[0].decode("ascii") if raw[0] else expr_mod.dictionary_VR(tag)  # implicit VR: look it up
        text = raw[1].decode(codec if vr in _CHARSET_VRS else "latin_1", errors="replace")
        m = e.evaluate_strings(vr, expr_mod.text_strings(vr, text))
        per_expr.append(None if m is None else list(m.values))
    return FileOutcome(path, True, combine(exprs, per_expr), per_expr=tuple(per_expr))


# VRs pydicom decodes with the Specific Character Set (the rest are default repertoire).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})


def flat_plan(exprs: Sequence[Expression], tags: Sequence[int]) -> frozenset[int] | None:
    """The tags to read straight from the bytes when every expression is a flat text element."""
    if all(len(e.path) == 1 for e in exprs):
        return _fast_plan(tuple(sorted(set(tags))))
    return None


_PLAN_UNKNOWN = frozenset({-1})


def search_file(
    path: str, exprs: Sequence[Expression], tags: Sequence[int], flat: frozenset[int] | None = _PLAN_UNKNOWN
) -> FileOutcome:
    """Read one file and evaluate every expression on it; never raises."""
    if flat is _PLAN_UNKNOWN:
        flat = flat_plan(exprs, tags)
    if flat is not None:
        outcome = _search_flat(path, exprs, flat)
        if outcome is not None:
            return outcome
    got = read_values(path, tags)
    if isinstance(got, UnreadableFile):
        return FileOutcome(path, False, reason=got.reason)
    try:
        per_expr = []
        for e in exprs:
            m = e.evaluate(got)
            per_expr.append(None if m is None else list(m.values))
    except Exception as exc:  # a value pydicom cannot convert (bad charset, corrupt number)
        return FileOutcome(
            path, False, reason=f"cannot decode values: {type(exc).__name__}: {_one_line(exc)}"
        )
    return FileOutcome(path, True, combine(exprs, per_expr), per_expr=tuple(per_expr))


def search_batch(
    paths: list[str], exprs: tuple[Expression, ...], tags: tuple[int, ...], flat: frozenset[int] | None
) -> list[FileOutcome]:
    """Worker entry point (module level so it pickles).

    Expressions travel parsed, with the read plan, so a worker on the flat
    path never imports pydicom.
    """
    if multiprocessing.parent_process() is not None:
        # A worker has no log handlers: pydicom's warnings would hit stderr raw.
        logging.getLogger("pydicom").setLevel(logging.ERROR)
    return [search_file(p, exprs, tags, flat) for p in paths]


def _batched(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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

    ``workers``: None picks a process pool of all cores when there are more than
    :data:`PARALLEL_THRESHOLD` files; 1 reads in this process; 2 or more always
    uses a pool of that size. Strings in ``exprs`` are parsed (may raise ExprError).
    """
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

    def walk_error(path: str, reason: str) -> None:
        result.unreadable.append(UnreadableFile(path, reason))

    paths = list(iter_files(root, pattern, on_error=walk_error))
    total = len(paths)
    result.files_scanned = total
    rep.started(total, root)
    done = 0

    stamps: dict[str, FileStamp] = {}
    fresh: dict[str, FileOutcome] = {}
    if cache is not None:
        stamps = cache.stamps(paths)
        fresh = _from_cache(cache, stamps, parsed)
        paths_to_read = [p for p in paths if p not in fresh]
    else:
        paths_to_read = paths

    def take(outcomes: list[FileOutcome]) -> None:
        nonlocal done
        if cache is not None and outcomes and outcomes[0].path not in fresh:
            _to_cache(cache, stamps, parsed, outcomes)
        for o in outcomes:
            if not o.dicom:
                result.unreadable.append(UnreadableFile(o.path, o.reason))
                continue
            result.dicom_files += 1
            if o.values is None:
                continue
            result.matches.append(SearchMatch(o.path, o.values))
            for p in shown:
                result.statistics[p].update(dict.fromkeys(o.values.get(p, []), 1))
        done += len(outcomes)

    def is_cancelled() -> bool:
        return cancel is not None and cancel.cancelled

    if fresh:
        take([fresh[p] for p in paths if p in fresh])
        rep.advanced(done, total)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    n_read = len(paths_to_read)
    # Deciding the read plan imports pydicom's dictionary: only worth it when files are read.
    flat = flat_plan(parsed, tags) if n_read else None
    use_pool = n_workers > 1 and n_read > 0 and (workers is not None or n_read > PARALLEL_THRESHOLD)
    if not use_pool:
        for i, path in enumerate(paths_to_read, 1):
            if is_cancelled():
                result.cancelled = True
                break
            take([search_file(path, parsed, tags, flat)])
            if i % PROGRESS_EVERY == 0:
                rep.advanced(done, total)
    else:
        def take_and_report(outcomes: list[FileOutcome]) -> None:
            take(outcomes)
            rep.advanced(done, total)

        batches = [paths_to_read[i : i + BATCH_SIZE] for i in range(0, n_read, BATCH_SIZE)]
        extra = (tuple(parsed), tuple(tags), flat)
        result.cancelled = run_batches(batches, search_batch, extra, n_workers, take_and_report, cancel)
    result.elapsed = time.monotonic() - started
    note = f"{result.matched} matched of {result.dicom_files} DICOM files"
    rep.finished(done, total, note + (" (cancelled)" if result.cancelled else ""))
    return result


UNREADABLE_KEY = "#unreadable"


def _expr_key(expr: Expression) -> str:
    return "expr:" + expr.source


def _from_cache(cache: IndexCache, stamps: dict[str, FileStamp], exprs: Sequence[Expression]) -> dict[str, FileOutcome]:
    """Outcomes for files whose every expression result (or unreadability) is cached and fresh."""
    out: dict[str, FileOutcome] = {}
    for path, reason in cache.lookup_elements(stamps, UNREADABLE_KEY).items():
        out[path] = FileOutcome(path, False, reason=str(reason))
    per_key = [cache.lookup_elements(stamps, _expr_key(e)) for e in exprs]
    for path in stamps:
        if path in out or not all(path in known for known in per_key):
            continue
        per_expr = tuple(known[path] for known in per_key)
        out[path] = FileOutcome(path, True, combine(exprs, per_expr), per_expr=per_expr)
    return out


def _to_cache(
    cache: IndexCache, stamps: dict[str, FileStamp], exprs: Sequence[Expression], outcomes: list[FileOutcome]
) -> None:
    transient = ("cannot read", "cannot stat", "symlink", "broken symlink")
    bad = {o.path: o.reason for o in outcomes if not o.dicom and not o.reason.startswith(transient)}
    cache.store_elements(UNREADABLE_KEY, bad, stamps)
    good = [o for o in outcomes if o.dicom and len(o.per_expr) == len(exprs)]
    for i, e in enumerate(exprs):
        cache.store_elements(_expr_key(e), {o.path: o.per_expr[i] for o in good}, stamps)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]
