"""Per-folder snapshots in the index cache: a warm scan does one read per folder, not one per file.

A snapshot holds, for one folder and one scope (the name pattern; for a
search also its expressions), the stamp of every file the walk gave (name,
size, mtime, inode, ctime) and every file's result (summary fields, search
outcome or unreadable reason), marshalled as one blob of plain values. It is used only
when the folder's files and their stamps, taken now, are exactly the stored
ones; any difference (a file added, deleted, renamed, rewritten or replaced)
sends that folder, and only it, through the per-file rows of the cache, and
a new snapshot is written from what that scan found.
"""

from __future__ import annotations

import marshal
import operator
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from itertools import chain

from dicomtools.core.archive.cache import FileStamp, IndexCache
from dicomtools.core.archive.model import (
    SUMMARY_FIELDS,
    InstanceSummary,
    UnreadableFile,
    beam_infos,
    plain_beams,
)
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import CancelToken

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any, TypeAlias

log = get_logger(__name__)

Result: TypeAlias = InstanceSummary | UnreadableFile
CACHE_CHUNK = 4096
_fields_but_path = operator.attrgetter(*SUMMARY_FIELDS[1:])
# bumped when the blob's layout changes (the schema version guards the tables); 4: marshal, not pickle
# (marshal is built in: a warm start does not import pickle, ~0.9 ms; it reads as fast)
_FORMAT = 4


def folder_groups(paths: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """Consecutive runs of ``paths`` in one folder (the walk yields each folder's files together)."""
    sep = os.sep
    folder: str | None = None
    group: list[str] = []
    for p in paths:
        f = p.rpartition(sep)[0]
        if f != folder:
            if group:
                yield folder or "", group
            folder, group = f, []
        group.append(p)
    if group:
        yield folder or "", group


def pattern_scope(pattern: str | None) -> str:
    """The name-pattern part of a snapshot key (every spelling of "all files" is one)."""
    return "" if not pattern or pattern in ("*", "*.*") else pattern.lower()


_AT = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


def _stamps(paths: Sequence[str]) -> tuple[tuple[int, int, int, int], ...] | None:
    """Each file's stamp as a plain tuple (equal to its :class:`FileStamp`; a named tuple costs more to make).

    ``paths`` share one folder (:func:`folder_groups`): each file is stat-ed by
    name relative to the open folder, as ``find`` does, so the kernel does not
    walk the whole path again for every file (~15 % of a warm scan's stat time).
    """
    out = []
    stat = os.stat
    try:
        if not _AT:
            for p in paths:
                st = stat(p)
                out.append((st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
            return tuple(out)
        sep = os.sep
        fd = os.open(os.path.dirname(paths[0]) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            for p in paths:
                st = stat(p.rpartition(sep)[2], dir_fd=fd)
                out.append((st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
        finally:
            os.close(fd)
    except OSError:
        return None
    return tuple(out)


def _names(paths: Sequence[str]) -> str:
    """The folder's file names, in walk order, as one string (compared whole, loaded at once)."""
    sep = os.sep
    return "\0".join([p.rpartition(sep)[2] for p in paths])


def _packed(stamps: Sequence[tuple[int, int, int, int]]) -> bytes:
    """The stamps as one byte string: compared exactly, and ~100x cheaper to load than tuples."""
    try:
        return array("q", chain.from_iterable(stamps)).tobytes()
    except OverflowError:  # an inode above 2**63 (some network file systems): the text form
        return repr(tuple(stamps)).encode()


def _decode(
    blob: bytes,
    paths: list[str],
    stamps: tuple[tuple[int, int, int, int], ...],
    decode_row: Callable[[str, Any], Any],
    varying: tuple[int, ...],
) -> list[Any] | None:
    """The folder's results if the snapshot still describes it exactly, else None."""
    try:
        fmt, names, stored, templates, rows = marshal.loads(blob)
        if fmt != _FORMAT or stored != _packed(stamps) or names != _names(paths) or len(rows) != len(paths):
            return None
        if decode_row is decode_summary and varying == _SUMMARY_LAYOUT:
            return _summaries(paths, rows, templates)
        out = []
        for p, row in zip(paths, rows, strict=True):
            if type(row[0]) is int:  # a template's index, then the values that vary per file
                full = list(templates[row[0]])
                for i, v in zip(varying, row[1:], strict=True):
                    full[i] = v
                row = full
            out.append(decode_row(p, row))
        return out
    except Exception:  # a damaged blob is a miss, never an error
        log.debug("unusable folder snapshot", exc_info=True)
        return None


def _encode(
    paths: list[str],
    stamps: tuple[FileStamp, ...],
    results: dict[str, Any],
    encode_row: Callable[[Any, FileStamp], Any],
    varying: tuple[int, ...],
) -> bytes | None:
    """A snapshot of one folder, or None when any file's result must not be trusted next time.

    Rows ``varying`` applies to (those at least as long as its highest position)
    are stored as a template shared by the files of a series (series, study,
    patient fields, beams...) and only the values at the ``varying`` positions:
    the blob, and the time to load it, shrink several-fold.
    """
    rows: list[Any] = []
    templates: dict[tuple[Any, ...], int] = {}
    span = max(varying) if varying else -1
    for p, stamp in zip(paths, stamps, strict=True):
        item = results.get(p)
        row = None if item is None else encode_row(item, stamp)  # None: not read (cancelled)
        if row is None:
            return None
        if varying and len(row) > span and type(row[0]) is not int:
            full = list(row)
            values = tuple(full[i] for i in varying)
            for i in varying:
                full[i] = None
            try:
                row = (templates.setdefault(tuple(full), len(templates)), *values)
            except TypeError:  # an unhashable value: the row is stored whole
                pass
        rows.append(row)
    blob = (_FORMAT, _names(paths), _packed(stamps), tuple(templates), tuple(rows))
    try:
        return marshal.dumps(blob)
    except ValueError:  # a value marshal does not carry (only plain types): the folder is read next time
        log.debug("folder snapshot not written: a value marshal cannot carry", exc_info=True)
        return None


def encode_summary(item: Result, stamp: FileStamp) -> tuple[Any, ...] | None:
    """A scan result as a snapshot row; None when it must be read again next time."""
    if isinstance(item, InstanceSummary):
        if (item.size, item.mtime_ns) != (stamp.size, stamp.mtime_ns):
            return None  # changed while it was read
        row: tuple[Any, ...] = _fields_but_path(item)
        return plain_beams(row, _BEAMS) if item.beams else row
    if item.kind.transient:
        return None  # may read next time (I/O error, permission)
    return (item.reason, item.kind.value)


# Per-file fields of a summary row (the rest is shared by a series): positions in the row without the path.
SUMMARY_VARYING = tuple(
    SUMMARY_FIELDS[1:].index(name) for name in ("sop_instance_uid", "instance_number", "size", "mtime_ns")
)


_SUMMARY_LAYOUT = (0, 10, 14, 15)  # what _summaries spells out; another field order takes the generic path
_BEAMS = SUMMARY_FIELDS.index("beams") - 1  # position in a row without the path


def decode_summary(path: str, row: Sequence[Any]) -> Result:
    if len(row) > 2:
        return InstanceSummary(path, *(beam_infos(row, _BEAMS) if row[_BEAMS] else row))
    return UnreadableFile(path, row[0], ReasonKind(row[1]))


def _summaries(paths: list[str], rows: Sequence[tuple[Any, ...]], templates: Sequence[tuple[Any, ...]]) -> list[Result]:
    """Templated summary rows to objects without a per-field loop: 100,000 files spend most
    of a warm scan's own time here."""
    plain = [beam_infos(t, _BEAMS) if t[_BEAMS] else t for t in templates]
    parts = [(t[1:10], t[11:14], t[16:]) for t in plain]
    out: list[Result] = []
    for p, row in zip(paths, rows, strict=True):
        if type(row[0]) is int:
            a, b, c = parts[row[0]]
            # the template's slices fill the fields between (mypy cannot count star arguments)
            out.append(InstanceSummary(p, row[1], *a, row[2], *b, row[3], row[4], *c))  # type: ignore[call-arg]
        else:
            out.append(decode_summary(p, row))
    return out


class FolderCache:
    """One scan's or search's use of the snapshots: answer whole folders, remember which ones to write back."""

    def __init__(
        self,
        cache: IndexCache,
        scope: str,
        enabled: bool = True,
        encode_row: Callable[[Any, FileStamp], Any] = encode_summary,
        decode_row: Callable[[str, Any], Any] = decode_summary,
        varying: tuple[int, ...] = SUMMARY_VARYING,
    ) -> None:
        self.cache = cache
        self.scope = scope  # what else the results depend on (name pattern, search expressions)
        self.enabled = enabled
        self.encode_row = encode_row
        self.decode_row = decode_row
        self.varying = varying  # row positions that differ per file; the rest is stored once per template
        # key -> the folder's paths and stamps, for folders whose snapshot missed
        self._pending: dict[str, tuple[list[str], tuple[tuple[int, int, int, int], ...]]] = {}
        self.watch: set[str] = set()  # paths whose results a pending snapshot needs

    def lookup(self, groups: list[tuple[str, list[str]]]) -> tuple[dict[str, Any], list[str]]:
        """Results of the folders whose snapshot holds, and the paths left for the per-file rows."""
        if not self.enabled:
            return {}, [p for _, g in groups for p in g]
        keys = [f"{os.path.abspath(os.path.dirname(g[0]) or '.')}\0{self.scope}" for _, g in groups]
        blobs = self.cache.lookup_snapshots(keys)
        found: dict[str, Any] = {}
        rest: list[str] = []
        for key, (_, paths) in zip(keys, groups, strict=True):
            stamps = _stamps(paths)
            blob = blobs.get(key)
            results = None
            if blob is not None and stamps is not None:
                results = _decode(blob, paths, stamps, self.decode_row, self.varying)
            if results is not None:
                found.update(zip(paths, results, strict=True))
                continue
            rest.extend(paths)
            if stamps is not None:
                self._pending[key] = (paths, stamps)
                self.watch.update(paths)
        return found, rest

    def save(self, results: dict[str, Any]) -> None:
        """Write a snapshot of every folder that missed and was fully resolved in this scan."""
        rows = []
        for key, (paths, stamps) in self._pending.items():
            named = tuple(FileStamp._make(s) for s in stamps)
            blob = _encode(paths, named, results, self.encode_row, self.varying)
            if blob is not None:
                rows.append((key, blob))
        self._pending.clear()
        self.watch.clear()
        self.cache.store_snapshots(rows)


def from_cache(
    cache: IndexCache,
    folders: FolderCache,
    paths: list[str],
    take: Callable[[list[Result], bool], None],
    stamps: dict[str, FileStamp],
    cancel: CancelToken | None,
) -> tuple[list[str], int]:
    """Hand ``take`` what the cache answers (whole folders first, then per file); return what to read.

    In chunks of about CACHE_CHUNK files, so a live view gets its first nodes
    before the whole index is consulted.
    """
    to_read: list[str] = []
    hits = 0
    groups = list(folder_groups(paths))
    i = 0
    while i < len(groups):
        if cancel is not None and cancel.cancelled:
            break
        chunk = [groups[i]]
        n = len(groups[i][1])
        i += 1
        while i < len(groups) and n + len(groups[i][1]) <= CACHE_CHUNK:
            n += len(groups[i][1])
            chunk.append(groups[i])
            i += 1
        found, rest = folders.lookup(chunk)
        if rest:
            per_file, rest_stamps = cache.lookup(rest)
            found.update(per_file)
            stamps.update(rest_stamps)
        hits += len(found)
        if found:
            take([found[p] for _, g in chunk for p in g if p in found], False)
        to_read.extend(p for p in rest if p not in found)
    return to_read, hits
