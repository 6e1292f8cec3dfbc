"""Writing a received data set: its safe file name, its File Meta header, the atomic write.

Why a module of its own: the C-GET writer, the C-MOVE destination, the
``receive`` service and the retrieve's save step all need these few helpers;
kept apart from the SCP so importing them costs no socket or negotiation code.
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.net.ul import IMPLEMENTATION_UID, IMPLEMENTATION_VERSION

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
    return "x" + hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:40] + ".dcm"


def _meta_el(group_elem: int, vr: bytes, value: bytes) -> bytes:
    tag = struct.pack("<HH", 0x0002, group_elem)
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return tag + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _pad(value: str, pad: bytes = b"\0") -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta(sop_class: str, sop_uid: str, transfer_syntax: str, source_ae: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information group for a received data set."""
    body = b"".join([
        _meta_el(0x0001, b"OB", b"\x00\x01"),
        _meta_el(0x0002, b"UI", _pad(sop_class)),
        _meta_el(0x0003, b"UI", _pad(sop_uid)),
        _meta_el(0x0010, b"UI", _pad(transfer_syntax)),
        _meta_el(0x0012, b"UI", _pad(IMPLEMENTATION_UID)),
        _meta_el(0x0013, b"SH", _pad(IMPLEMENTATION_VERSION, b" ")),
        _meta_el(0x0016, b"AE", _pad(source_ae.strip() or "UNKNOWN", b" ")),
    ])
    return b"\0" * 128 + b"DICM" + _meta_el(0x0000, b"UL", struct.pack("<I", len(body))) + body


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
