"""Writing a received data set: its safe file name, its File Meta header, the atomic write.

Why a module of its own: the C-GET writer, the C-MOVE destination, the
``receive`` service and the retrieve's save step all need these few helpers;
kept apart from the SCP so importing them costs no socket or negotiation code.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import functools
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.net.ul import IMPLEMENTATION_UID, IMPLEMENTATION_VERSION

WRITE_BATCH = 1024 * 1024  # bytes gathered before one writev
# A data set up to this size is read whole, answered, then written (the node prepares the next meanwhile).
HOLD_MAX = 32 * 1024 * 1024
HEAD_KEPT = 1024 * 1024  # bytes of each arrival kept in memory for its summary (the header, mostly)
# A held data set above this size is written from its fragments, its head being only its first bytes:
# joining 0.5 MB into one buffer costs ~250 us of page faults, a CT's header fits in its first fragment.
HEAD_FIRST = 64 * 1024
# (path, the file's first bytes, its size, its mtime): a new file was written, its header is in memory.
# Returns False when those bytes fell short of the header (see :func:`report_written`).
OnWritten = Callable[[str, bytes, int, int], "bool | None"]

_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def plausible_uid(uid: str) -> bool:
    """Digits and dots only, no empty component (``../x``, ``a/b`` are not UIDs).

    Length is not checked: over-long UIDs exist in old archives; they are
    saved under a hashed name by :func:`safe_uid_name`.
    """
    return bool(_UID_RE.fullmatch(uid))


def safe_uid_name(uid: str) -> str:
    """A file name from a SOP Instance UID that can never be a path.

    A valid UID (digits and dots, at most 64) is used as is; anything else a
    peer might send (``../x``, ``/etc``, control characters) becomes a hash.
    """
    if 0 < len(uid) <= 64 and _UID_RE.fullmatch(uid):
        return f"{uid}.dcm"
    import hashlib  # rare: ~1 ms of import saved on every retrieve

    return "x" + hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:40] + ".dcm"


def _meta_el(group_elem: int, vr: bytes, value: bytes) -> bytes:
    tag = struct.pack("<HH", 0x0002, group_elem)
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return tag + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _pad(value: str, pad: bytes = b"\0") -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


@functools.lru_cache(maxsize=64)
def _meta_around_uid(sop_class: str, transfer_syntax: str, source_ae: str) -> tuple[bytes, bytes]:
    """The File Meta elements before and after (0002,0003): the same for every instance of a class."""
    before = _meta_el(0x0001, b"OB", b"\x00\x01") + _meta_el(0x0002, b"UI", _pad(sop_class))
    after = b"".join([
        _meta_el(0x0010, b"UI", _pad(transfer_syntax)),
        _meta_el(0x0012, b"UI", _pad(IMPLEMENTATION_UID)),
        _meta_el(0x0013, b"SH", _pad(IMPLEMENTATION_VERSION, b" ")),
        _meta_el(0x0016, b"AE", _pad(source_ae.strip() or "UNKNOWN", b" ")),
    ])
    return before, after


def file_meta(sop_class: str, sop_uid: str, transfer_syntax: str, source_ae: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information group for a received data set."""
    before, after = _meta_around_uid(sop_class, transfer_syntax, source_ae)
    body = before + _meta_el(0x0003, b"UI", _pad(sop_uid)) + after
    return _PREAMBLE + _meta_el(0x0000, b"UL", struct.pack("<I", len(body))) + body


_PREAMBLE = b"\0" * 128 + b"DICM"


def _create(target: str | Path) -> int:
    """A new file, only ours to read (as ``mkstemp`` makes them); ``FileExistsError`` when it is there."""
    return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)


def _write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    """``os.writev`` until every byte of ``parts`` is written (a short write resumes where it stopped)."""
    while parts:
        done = os.writev(fd, parts)
        if done == 0 and any(len(p) for p in parts):
            raise OSError(errno.EIO, "write made no progress")
        while parts and done >= len(parts[0]):
            done -= len(parts[0])
            parts.pop(0)
        if parts and done:
            parts[0] = memoryview(parts[0])[done:]


def write_new(target: str | Path, chunks: Iterable[bytes | memoryview]) -> int | None:
    """Write an arrival straight under its name in a private temporary folder; its mtime.

    For a folder that is itself the temporary one (hidden, removed in every
    case, its files renamed out of it when complete): one ``open`` per file
    instead of a stat, a temporary name and a rename, 0.1-1 ms each on a
    loaded disk; the fragments go out by ``writev`` in batches of up to
    ``WRITE_BATCH`` bytes (a small instance: one system call, no file object).
    A failed write removes what it wrote. None when the file exists (a second
    copy: the caller compares it through :func:`write_received`).
    """
    try:
        fd = _create(target)
    except FileExistsError:
        return None
    try:
        batch: list[bytes | memoryview] = []
        size = 0
        for chunk in chunks:
            batch.append(chunk)
            size += len(chunk)
            if size >= WRITE_BATCH or len(batch) >= 512:
                _write_all(fd, batch)
                size = 0
        if batch:
            _write_all(fd, batch)
        return os.fstat(fd).st_mtime_ns
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    finally:
        os.close(fd)


def hold(parts: list[bytes], frags: Iterator[bytes], limit: int | None = None) -> Iterator[bytes] | None:
    """Read ``frags`` into ``parts`` while they total at most ``limit`` bytes (``HOLD_MAX``).

    None when every fragment is held; else the fragments not read yet (the
    last one read is in ``parts``): the caller writes as they arrive.
    """
    limit = HOLD_MAX if limit is None else limit
    size = sum(len(p) for p in parts)
    for frag in frags:
        parts.append(frag)
        size += len(frag)
        if size > limit:
            return frags
    return None


@dataclass
class Written:
    """How an arrival went to disk: ``new``, ``same`` or ``differs`` (see :func:`write_received`), its size.

    For a new file written by :func:`write_new`: its first bytes (all of a
    held data set, else up to ``HEAD_KEPT``) and mtime, for a summary read from memory.
    """

    how: str
    head: bytes = b""
    size: int = 0
    mtime_ns: int | None = None
    held: list[bytes] | None = None  # every part, when ``head`` is only the first HEAD_FIRST bytes of them


def report_written(on_written: OnWritten | None, target: str, done: Written) -> None:
    """Hand a new file's head to ``on_written``; all of a held data set when its first bytes fell short
    (a big structure set or plan: its header runs on), so its summary never reads the file again."""
    if on_written is None or done.mtime_ns is None:
        return
    if on_written(target, done.head, done.size, done.mtime_ns) is False and done.held is not None:
        on_written(target, b"".join(done.held), done.size, done.mtime_ns)


def write_arrival(target: str | Path, parts: list[bytes], rest: Iterator[bytes] | None, scratch: bool) -> Written:
    """Write ``parts`` then ``rest`` to ``target``: straight under its name in a ``scratch`` folder
    (:func:`write_new`), else atomically; a copy already there is compared, never replaced."""
    if scratch and rest is None:
        # Held whole (the usual case): one write, and all of it can be the "head": a summary never has
        # to read the file again, even when the header runs past HEAD_KEPT (a big structure set).
        size = sum(map(len, parts))
        if size <= HEAD_FIRST:  # small: one buffer
            data = b"".join(parts)
            mtime_ns = write_new(target, [data])
            if mtime_ns is not None:
                return Written("new", data, size, mtime_ns)
        else:  # big: written from its fragments by writev; the head is its first bytes, the rest on demand
            mtime_ns = write_new(target, parts)
            if mtime_ns is not None:
                return Written("new", _first_bytes(parts, HEAD_FIRST), size, mtime_ns, held=parts)
    head: list[bytes] = []
    count = [0, 0]  # bytes in head, bytes written

    def chunks() -> Iterator[bytes]:
        for chunk in chain(parts, rest) if rest is not None else parts:
            room = HEAD_KEPT - count[0]
            if room > 0:
                head.append(chunk if len(chunk) <= room else chunk[:room])
                count[0] += len(head[-1])
            count[1] += len(chunk)
            yield chunk

    mtime_ns = write_new(target, chunks()) if scratch and rest is not None else None
    if mtime_ns is not None:
        return Written("new", b"".join(head), count[1], mtime_ns)
    how = write_received(Path(target), chunks())
    return Written(how, size=count[1])


def _first_bytes(parts: list[bytes], limit: int) -> bytes:
    """The first ``limit`` bytes of ``parts`` (the whole parts that reach it: a fragment is never cut)."""
    n = 0
    for i, p in enumerate(parts):
        n += len(p)
        if n >= limit:
            return b"".join(parts[: i + 1])
    return b"".join(parts)


def write_received(target: Path, chunks: Iterable[bytes | memoryview]) -> str:
    """Write an arrival atomically; ``new``, ``same`` (identical copy) or ``differs``.

    A second copy of an instance never replaces the first: an uninvited sender
    (or a confused node) must not swap data under us. It is written beside
    the first, compared byte by byte and removed.
    """
    if not target.exists():
        with atomic_writer(target) as fh:
            for chunk in chunks:
                fh.write(chunk)
        return "new"
    second = target.with_name(f".second-{target.name}")
    try:
        with atomic_writer(second) as fh:
            for chunk in chunks:
                fh.write(chunk)
        return "same" if filecmp.cmp(target, second, shallow=False) else "differs"
    finally:
        with contextlib.suppress(OSError):
            os.unlink(second)


def write_problem(exc: OSError, folder: Path) -> str:
    """``No space left on device in /data/out``: the local cause, named once."""
    return f"{exc.strerror or exc} in {folder}"
