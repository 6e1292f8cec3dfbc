"""DICOM files as bytes: split off the file meta to send, add one to save what arrived."""

from __future__ import annotations

import struct
from typing import NamedTuple

from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UC", b"UR", b"UN", b"SV", b"UV"}

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
UNCOMPRESSED = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})


class FileMeta(NamedTuple):
    """What ``store`` needs of a file's meta (a NamedTuple: no dataclass on the store path)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    offset: int  # where the data set starts


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


def split_meta(data: bytes | memoryview) -> FileMeta | None:
    """Parse preamble + File Meta Information; None when the file has none.

    Only group 0002 in explicit VR little endian, as Part 10 requires; the
    data set bytes after it are left untouched.
    """
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        return None
    off = 132
    values: dict[int, bytes] = {}
    n = len(data)
    while off + 8 <= n:
        group, elem = struct.unpack_from("<HH", data, off)
        if group != 0x0002:
            break
        vr = bytes(data[off + 4 : off + 6])
        if vr in _LONG_VRS:
            if off + 12 > n:
                return None
            length = struct.unpack_from("<I", data, off + 8)[0]
            start = off + 12
        else:
            length = struct.unpack_from("<H", data, off + 6)[0]
            start = off + 8
        if start + length > n:
            return None
        values[elem] = bytes(data[start : start + length])
        off = start + length
    return FileMeta(
        _text(values.get(0x0002, b"")),
        _text(values.get(0x0003, b"")),
        _text(values.get(0x0010, b"")),
        off,
    )
