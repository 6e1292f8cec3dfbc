"""A-ASSOCIATE negotiation shared by our two Storage SCPs.

The ``receive`` service (:mod:`dicomtools.core.net.receive.server`) and the
C-MOVE destination (:mod:`dicomtools.core.net.storescp`) refuse callers by
their own rules and accept presentation contexts by their own policy; reading
the request, answering each context, the user information (maximum PDU,
implementation class) and the A-ASSOCIATE-AC/RJ PDUs are built here once, so
the two cannot drift apart.
"""

from __future__ import annotations

import struct
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

from dicomtools.core.net.assoc import NetError
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
