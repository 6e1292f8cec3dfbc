"""DIMSE command sets for the lean Upper Layer: C-STORE, C-ECHO, C-MOVE, C-CANCEL, encoded by hand.

Implicit VR little endian, group length first, as PS3.7 requires; only the
elements these services need.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_CANCEL_RQ = 0x0FFF
NO_DATASET = 0x0101


def _el(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _ae(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def encode_command(elements: Sequence[tuple[int, bytes]]) -> bytes:
    """Implicit VR little endian command set with its group length first."""
    body = b"".join(_el(tag, value) for tag, value in sorted(elements))
    return _el(0x00000000, struct.pack("<I", len(body))) + body


def decode_command(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    n = len(data)
    while off + 8 <= n:
        group, elem, length = struct.unpack_from("<HHI", data, off)
        off += 8
        out[(group << 16) | elem] = data[off : off + length]
        off += length
    return out


def cmd_us(cmd: dict[int, bytes], tag: int, default: int = -1) -> int:
    raw = cmd.get(tag)
    return struct.unpack("<H", raw[:2])[0] if raw and len(raw) >= 2 else default


def cmd_str(cmd: dict[int, bytes], tag: int) -> str:
    return cmd.get(tag, b"").rstrip(b"\0 ").decode("ascii", "replace")


def store_rq(msg_id: int, sop_class: str, sop_uid: str, priority: int = 0,
             move_ae: str = "", move_id: int | None = None) -> bytes:
    els = [
        (0x00000002, _uid(sop_class)),
        (0x00000100, struct.pack("<H", C_STORE_RQ)),
        (0x00000110, struct.pack("<H", msg_id & 0xFFFF)),
        (0x00000700, struct.pack("<H", priority)),
        (0x00000800, struct.pack("<H", 0x0000)),
        (0x00001000, _uid(sop_uid)),
    ]
    if move_ae:
        els.append((0x00001030, _ae(move_ae)))
    if move_id is not None:
        els.append((0x00001031, struct.pack("<H", move_id & 0xFFFF)))
    return encode_command(els)


_RSP_HEADS: dict[str, bytes] = {}  # by SOP Class UID; a peer sends few classes (emptied past 64)


def _store_rsp_head(sop_class: str) -> bytes:
    """(0000,0002) and (0000,0100) of a C-STORE-RSP: the same for every instance of a class."""
    head = _RSP_HEADS.get(sop_class)
    if head is None:
        if len(_RSP_HEADS) >= 64:
            _RSP_HEADS.clear()
        head = _RSP_HEADS[sop_class] = _el(0x00000002, _uid(sop_class)) + _el(0x00000100, struct.pack("<H", C_STORE_RSP))
    return head


_RSP_ID_STATUS = struct.Struct("<HHIHHHIHHHIH")  # (0000,0120) message ID, (0000,0800), (0000,0900) status


def store_rsp(msg_id: int, sop_class: str, sop_uid: str, status: int, comment: str = "") -> bytes:
    """C-STORE-RSP; the SCP answers each instance with one before anything else is done, so it is
    built from cached and packed pieces (~1 us) in the order :func:`encode_command` sorts them to."""
    body = b"".join((
        _store_rsp_head(sop_class),
        _RSP_ID_STATUS.pack(0, 0x0120, 2, msg_id & 0xFFFF, 0, 0x0800, 2, NO_DATASET, 0, 0x0900, 2, status),
        _el(0x00000902, _ae(comment[:64])) if comment else b"",
        _el(0x00001000, _uid(sop_uid)),
    ))
    return _el(0x00000000, struct.pack("<I", len(body))) + body


def move_rq(msg_id: int, model: str, destination: str, priority: int = 0) -> bytes:
    return encode_command([
        (0x00000002, _uid(model)),
        (0x00000100, struct.pack("<H", C_MOVE_RQ)),
        (0x00000110, struct.pack("<H", msg_id & 0xFFFF)),
        (0x00000600, _ae(destination)),
        (0x00000700, struct.pack("<H", priority)),
        (0x00000800, struct.pack("<H", 0x0000)),
    ])


def cancel_rq(msg_id: int) -> bytes:
    return encode_command([
        (0x00000100, struct.pack("<H", C_CANCEL_RQ)),
        (0x00000120, struct.pack("<H", msg_id & 0xFFFF)),
        (0x00000800, struct.pack("<H", NO_DATASET)),
    ])


class MoveStatus(NamedTuple):
    """The final C-MOVE response: status and sub-operation counts."""

    status: int = 0xFFFF
    completed: int = 0
    failed: int = 0
    warning: int = 0
    comment: str = ""


def echo_rq(msg_id: int) -> bytes:
    return encode_command([
        (0x00000002, _uid("1.2.840.10008.1.1")),
        (0x00000100, struct.pack("<H", C_ECHO_RQ)),
        (0x00000110, struct.pack("<H", msg_id & 0xFFFF)),
        (0x00000800, struct.pack("<H", NO_DATASET)),
    ])


def echo_rsp(msg_id: int, status: int = 0) -> bytes:
    return encode_command([
        (0x00000002, _uid("1.2.840.10008.1.1")),
        (0x00000100, struct.pack("<H", C_ECHO_RSP)),
        (0x00000120, struct.pack("<H", msg_id & 0xFFFF)),
        (0x00000800, struct.pack("<H", NO_DATASET)),
        (0x00000900, struct.pack("<H", status)),
    ])
