"""A-ASSOCIATE negotiation shared by our two Storage SCPs.

The ``receive`` service (:mod:`dicomtools.core.net.receive.server`) and the
C-MOVE destination (:mod:`dicomtools.core.net.storescp`) refuse callers by
their own rules and accept presentation contexts by their own policy; reading
the request, answering each context, the user information (maximum PDU,
implementation class) and the A-ASSOCIATE-AC/RJ PDUs are built here once, so
the two cannot drift apart. So are the steps before it: the listening
socket, the accept loop (one thread per association) and the TLS handshake.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

from dicomtools.core.net.assoc import NetError, set_nodelay, tls_error_text
from dicomtools.core.net.ul import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_UID,
    IMPLEMENTATION_VERSION,
    PDU_ASSOC_RQ,
    Connection,
)

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
class AssociateRequest:
    """A decoded A-ASSOCIATE-RQ with its AE titles stripped of padding."""

    primitive: A_ASSOCIATE
    calling: str
    called: str


def user_info(max_pdu: int) -> list[Any]:
    """User information items we announce: the largest PDU we take, and who we are."""
    ml = MaximumLengthNotification()
    ml.maximum_length_received = max_pdu
    ic = ImplementationClassUIDNotification()
    ic.implementation_class_uid = IMPLEMENTATION_UID
    iv = ImplementationVersionNameNotification()
    iv.implementation_version_name = IMPLEMENTATION_VERSION
    return [ml, ic, iv]


def peer_max_pdu(primitive: A_ASSOCIATE) -> int:
    """The largest PDU the peer takes; 0 (no limit) when it announces none."""
    for item in primitive.user_information or []:
        if isinstance(item, MaximumLengthNotification):
            return int(item.maximum_length_received or 0)
    return 0


def read_associate_rq(conn: Connection) -> AssociateRequest:
    """Read the first PDU of an association; anything but an A-ASSOCIATE-RQ is a :class:`NetError`."""
    pdu_type, body = conn.read_pdu()
    if pdu_type != PDU_ASSOC_RQ:
        raise NetError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02X}")
    rq = A_ASSOCIATE_RQ()
    rq.decode(struct.pack(">BBI", pdu_type, 0, len(body)) + body)
    prim = rq.to_primitive()
    return AssociateRequest(prim, str(prim.calling_ae_title).strip(), str(prim.called_ae_title).strip())


def reject_pdu(diagnostic: int) -> bytes:
    """A-ASSOCIATE-RJ, rejected-permanent by the service user, with ``diagnostic`` (PS3.8 9.3.4)."""
    prim = A_ASSOCIATE()
    prim.result = 0x01
    prim.result_source = 0x01
    prim.diagnostic = diagnostic
    rj = A_ASSOCIATE_RJ()
    rj.from_primitive(prim)
    return bytes(rj.encode())


def answer_contexts(
    requested: Iterable[PresentationContext], choose: ChooseSyntax, refusal: ContextResult
) -> tuple[list[PresentationContext], ContextTable]:
    """Answer each proposed context: the syntax ``choose`` picks, or ``refusal``.

    A context offering no transfer syntax is refused without asking ``choose``.
    A refused context names the first offered syntax (Implicit VR LE when none).
    """
    results: list[PresentationContext] = []
    contexts: ContextTable = {}
    for rq_cx in requested:
        cx = PresentationContext()
        cx.context_id = rq_cx.context_id
        cx.abstract_syntax = rq_cx.abstract_syntax
        uid = str(rq_cx.abstract_syntax)
        offered = [str(t) for t in rq_cx.transfer_syntax]
        ts = choose(uid, offered) if offered else None
        if ts is not None:
            cx.add_transfer_syntax(ts)
            cx.result = int(ContextResult.ACCEPTANCE)
            contexts[int(rq_cx.context_id or 0)] = (uid, ts)
        else:
            cx.add_transfer_syntax(offered[0] if offered else IMPLICIT_VR_LE)
            cx.result = int(refusal)
        results.append(cx)
    return results, contexts


def accept_pdu(request: A_ASSOCIATE, results: list[PresentationContext], max_pdu: int) -> bytes:
    """A-ASSOCIATE-AC answering ``request`` with the context ``results``, announcing ``max_pdu``."""
    prim = A_ASSOCIATE()
    prim.application_context_name = APPLICATION_CONTEXT
    prim.calling_ae_title = request.calling_ae_title
    prim.called_ae_title = request.called_ae_title
    prim.result = 0x00
    prim.result_source = 0x01
    prim.presentation_context_definition_results_list = results
    prim.user_information = user_info(max_pdu)
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(prim)
    return bytes(ac.encode())


def accept(
    conn: Connection, request: AssociateRequest, choose: ChooseSyntax, refusal: ContextResult, max_pdu: int
) -> ContextTable:
    """Send the A-ASSOCIATE-AC; returns the accepted contexts. Also sets the peer's PDU limit on ``conn``."""
    conn.peer_max_pdu = peer_max_pdu(request.primitive)
    results, contexts = answer_contexts(request.primitive.presentation_context_definition_list, choose, refusal)
    conn.send(accept_pdu(request.primitive, results, max_pdu))
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
    except (ssl.SSLError, OSError) as exc:
        raise HandshakeFailed(f"{host}: TLS handshake failed: {tls_error_text(exc)}") from None
