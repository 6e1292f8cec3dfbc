"""A-ASSOCIATE-RQ encoded, A-ASSOCIATE-AC / -RJ decoded by hand (PS3.8 9.3.2-9.3.4).

Why not pynetdicom's PDU classes: importing pynetdicom pulls in pydicom and
numpy, ~0.45 s before a ``store`` sends its first byte, longer than storing a
thousand small files takes. The requestor side needs only these three PDUs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

PDU_ASSOC_RQ = 0x01


def _ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def pdu_item(kind: int, body: bytes) -> bytes:
    """One association PDU item or sub-item: type, reserved byte, 16-bit length, body."""
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _uid_item(kind: int, uid: str) -> bytes:
    return pdu_item(kind, uid.encode("ascii"))


def encode_associate_rq(calling_ae: str, called_ae: str, app_context: str, contexts: Sequence[tuple[int, str, str]],
                        max_pdu: int, impl_uid: str, impl_version: str, scp_roles: Sequence[str] = ()) -> bytes:
    """``contexts``: (context ID, abstract syntax, transfer syntax); ``scp_roles``: classes we serve as SCP."""
    items = [_uid_item(0x10, app_context)]
    for cx_id, abstract, ts in contexts:
        items.append(pdu_item(0x20, struct.pack(">BBBB", cx_id, 0, 0, 0) + _uid_item(0x30, abstract)
                           + _uid_item(0x40, ts)))
    user = [pdu_item(0x51, struct.pack(">I", max_pdu)), _uid_item(0x52, impl_uid),
            pdu_item(0x55, impl_version.encode("ascii", "replace")[:16])]
    for cls in scp_roles:
        raw = cls.encode("ascii")
        user.append(pdu_item(0x54, struct.pack(">H", len(raw)) + raw + b"\x00\x01"))  # SCU role no, SCP role yes
    items.append(pdu_item(0x50, b"".join(user)))
    body = struct.pack(">HH", 1, 0) + _ae(called_ae) + _ae(calling_ae) + b"\0" * 32 + b"".join(items)
    return struct.pack(">BBI", PDU_ASSOC_RQ, 0, len(body)) + body


class AssociateAC:
    """What the acceptor answered: per context ID (result, transfer syntax), its maximum PDU length."""

    __slots__ = ("results", "peer_max_pdu")

    def __init__(self) -> None:
        self.results: dict[int, tuple[int, str]] = {}
        self.peer_max_pdu = 0


def pdu_items(data: bytes, off: int = 0) -> list[tuple[int, bytes]]:
    """The (type, body) items of an association PDU body from ``off``; ValueError on an overrun."""
    out = []
    n = len(data)
    while off + 4 <= n:
        kind, _, length = struct.unpack_from(">BBH", data, off)
        off += 4
        if off + length > n:
            raise ValueError("association PDU item runs past the end")
        out.append((kind, data[off : off + length]))
        off += length
    return out


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


def decode_associate_ac(body: bytes) -> AssociateAC:
    """``body``: the PDU after its 6-byte header."""
    if len(body) < 68:
        raise ValueError("A-ASSOCIATE-AC too short")
    ac = AssociateAC()
    for kind, value in pdu_items(body, 68):
        if kind == 0x21 and len(value) >= 4:
            cx_id, _, result, _ = struct.unpack_from(">BBBB", value, 0)
            ts = next((_text(v) for k, v in pdu_items(value, 4) if k == 0x40), "")
            ac.results[cx_id] = (result, ts)
        elif kind == 0x50:
            for sub, sval in pdu_items(value, 0):
                if sub == 0x51 and len(sval) >= 4:
                    ac.peer_max_pdu = struct.unpack(">I", sval[:4])[0]
    return ac


def decode_associate_rj(body: bytes) -> tuple[int, int, int]:
    """(result, source, reason/diagnostic) of an A-ASSOCIATE-RJ body."""
    if len(body) < 4:
        return 1, 1, 1
    return body[1], body[2], body[3]
