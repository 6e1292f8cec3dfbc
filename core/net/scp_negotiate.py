"""A-ASSOCIATE negotiation shared by our two Storage SCPs.

The ``receive`` service (:mod:`dicomtools.core.net.receive.server`) and the
C-MOVE destination (:mod:`dicomtools.core.net.storescp`) refuse callers by
their own rules and accept presentation contexts by their own policy; reading
the request, answering each context, the user information (maximum PDU,
implementation class) and the A-ASSOCIATE-AC/RJ PDUs are built here once, so
the two cannot drift apart. So are the steps before it: the listening
socket, the accept loop (one thread per association) and the TLS handshake.
The PDUs are decoded and encoded by hand (PS3.8 9.3), like the requestor's
in :mod:`ul_pdu`: pynetdicom's PDU classes cost a retrieve ~0.3 s of imports.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from dicomtools.core.net.assoc import NetError, set_nodelay, tls_error_text
from dicomtools.core.net.ul import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_UID,
    IMPLEMENTATION_VERSION,
    PDU_ASSOC_AC,
    PDU_ASSOC_RJ,
    PDU_ASSOC_RQ,
    Connection,
)
from dicomtools.core.net.ul_pdu import pdu_item, pdu_items

if TYPE_CHECKING:
    import ssl  # only with TLS, by whoever builds the context (~5 ms of start-up otherwise)

IMPLICIT_VR_LE = "1.2.840.10008.1.2"

#: accepted presentation contexts: context ID -> (abstract syntax, transfer syntax)
ContextTable = dict[int, tuple[str, str]]

#: a policy: (abstract syntax, offered transfer syntaxes, never empty) -> the one to accept, or None
ChooseSyntax = Callable[[str, Sequence[str]], str | None]


class ContextResult(IntEnum):
    """Result of one presentation context in the A-ASSOCIATE-AC (PS3.8 9.3.3.2)."""

    ACCEPTANCE = 0x00
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 0x04


@dataclass(frozen=True, slots=True)
class ProposedContext:
    """One presentation context of an A-ASSOCIATE-RQ (item 0x20)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContextAnswer:
    """One presentation context of our A-ASSOCIATE-AC (item 0x21)."""

    context_id: int
    result: int
    transfer_syntax: str


@dataclass(frozen=True, slots=True)
class AssociateRequest:
    """A decoded A-ASSOCIATE-RQ with its AE titles stripped of padding.

    Decoded by hand (PS3.8 9.3.2), not with pynetdicom's PDU classes: importing
    them pulls in pydicom and numpy, ~0.3 s before a C-MOVE destination could
    answer its first association.
    """

    calling: str
    called: str
    contexts: tuple[ProposedContext, ...] = ()
    peer_max_pdu: int = 0  # 0: the peer announced no limit
    titles: bytes = b" " * 32  # called + calling AE title fields as sent, echoed in the AC


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("ascii", "replace").strip()


def decode_associate_rq(body: bytes) -> AssociateRequest:
    """``body``: the A-ASSOCIATE-RQ after its 6-byte PDU header. ``ValueError`` when malformed."""
    if len(body) < 68:
        raise ValueError("A-ASSOCIATE-RQ too short")
    contexts: list[ProposedContext] = []
    max_pdu = 0
    for kind, value in pdu_items(body, 68):
        if kind == 0x20 and len(value) >= 4:
            sub = pdu_items(value, 4)
            abstract = next((_text(v) for k, v in sub if k == 0x30), "")
            contexts.append(ProposedContext(value[0], abstract, tuple(_text(v) for k, v in sub if k == 0x40)))
        elif kind == 0x50:
            for sub_kind, sval in pdu_items(value):
                if sub_kind == 0x51 and len(sval) >= 4:
                    max_pdu = struct.unpack(">I", sval[:4])[0]
    return AssociateRequest(_text(body[20:36]), _text(body[4:20]), tuple(contexts), max_pdu, bytes(body[4:36]))


def read_associate_rq(conn: Connection) -> AssociateRequest:
    """Read the first PDU of an association; anything but an A-ASSOCIATE-RQ is a :class:`NetError`."""
    pdu_type, body = conn.read_pdu()
    if pdu_type != PDU_ASSOC_RQ:
        raise NetError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02X}")
    try:
        return decode_associate_rq(body)
    except ValueError as exc:
        raise NetError(f"malformed A-ASSOCIATE-RQ: {exc}") from None


def reject_pdu(diagnostic: int) -> bytes:
    """A-ASSOCIATE-RJ, rejected-permanent by the service user, with ``diagnostic`` (PS3.8 9.3.4)."""
    return struct.pack(">BBIBBBB", PDU_ASSOC_RJ, 0, 4, 0, 0x01, 0x01, diagnostic)


def user_info(max_pdu: int) -> bytes:
    """User information item we announce: the largest PDU we take, and who we are."""
    return pdu_item(0x50, pdu_item(0x51, struct.pack(">I", max_pdu))
                 + pdu_item(0x52, IMPLEMENTATION_UID.encode("ascii"))
                 + pdu_item(0x55, IMPLEMENTATION_VERSION.encode("ascii", "replace")[:16]))


def answer_contexts(
    requested: Iterable[ProposedContext], choose: ChooseSyntax, refusal: ContextResult
) -> tuple[list[ContextAnswer], ContextTable]:
    """Answer each proposed context: the syntax ``choose`` picks, or ``refusal``.

    A context offering no transfer syntax is refused without asking ``choose``.
    A refused context names the first offered syntax (Implicit VR LE when none).
    """
    results: list[ContextAnswer] = []
    contexts: ContextTable = {}
    for rq_cx in requested:
        offered = list(rq_cx.transfer_syntaxes)
        ts = choose(rq_cx.abstract_syntax, offered) if offered else None
        if ts is not None:
            results.append(ContextAnswer(rq_cx.context_id, int(ContextResult.ACCEPTANCE), ts))
            contexts[rq_cx.context_id] = (rq_cx.abstract_syntax, ts)
        else:
            results.append(ContextAnswer(rq_cx.context_id, int(refusal), offered[0] if offered else IMPLICIT_VR_LE))
    return results, contexts


def _uid(uid: str) -> bytes:
    return uid.encode("ascii", "replace")


def accept_pdu(request: AssociateRequest, results: Sequence[ContextAnswer], max_pdu: int) -> bytes:
    """A-ASSOCIATE-AC answering ``request`` with the context ``results``, announcing ``max_pdu``."""
    items = [pdu_item(0x10, _uid(APPLICATION_CONTEXT))]
    for r in results:
        items.append(pdu_item(0x21, struct.pack(">BBBB", r.context_id, 0, r.result, 0)
                           + pdu_item(0x40, _uid(r.transfer_syntax))))
    items.append(user_info(max_pdu))
    body = struct.pack(">HH", 1, 0) + request.titles + b"\0" * 32 + b"".join(items)
    return struct.pack(">BBI", PDU_ASSOC_AC, 0, len(body)) + body


def accept(
    conn: Connection, request: AssociateRequest, choose: ChooseSyntax, refusal: ContextResult, max_pdu: int
) -> ContextTable:
    """Send the A-ASSOCIATE-AC; returns the accepted contexts. Also sets the peer's PDU limit on ``conn``."""
    conn.peer_max_pdu = request.peer_max_pdu
    results, contexts = answer_contexts(request.contexts, choose, refusal)
    conn.send(accept_pdu(request, results, max_pdu))
    return contexts


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket polled every 0.2 s (so a stop is noticed); the OSError of a failed bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    sock.settimeout(0.2)
    return sock


def accept_loop(sock: socket.socket, stopping: threading.Event, serve: Callable[[socket.socket, str], None],
                thread_name: str, workers: list[threading.Thread]) -> None:
    """Accept until ``stopping`` or the socket is closed; ``serve(client, host)`` in a daemon thread each.

    ``workers`` is updated in place (finished threads dropped) so the owner can join them on stop.
    """
    while not stopping.is_set():
        try:
            client, addr = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        t = threading.Thread(target=serve, args=(client, addr[0]), name=thread_name, daemon=True)
        workers[:] = [w for w in workers if w.is_alive()] + [t]
        t.start()


class HandshakeFailed(NetError):
    """The TLS handshake with a caller failed; the message names the host and why."""


def prepare(client: socket.socket, host: str, timeout: float, ssl_context: ssl.SSLContext | None) -> socket.socket:
    """No Nagle delay, the network timeout, and TLS when configured. Raises :class:`HandshakeFailed`."""
    set_nodelay(client)
    client.settimeout(timeout)
    if ssl_context is None:
        return client
    try:
        return ssl_context.wrap_socket(client, server_side=True)
    except OSError as exc:  # ssl.SSLError is one
        raise HandshakeFailed(f"{host}: TLS handshake failed: {tls_error_text(exc)}") from None
