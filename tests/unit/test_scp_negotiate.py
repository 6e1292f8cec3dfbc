"""The shared A-ASSOCIATE answers, decoded again by pynetdicom's own PDU classes (not ours)."""

from __future__ import annotations

from collections.abc import Sequence

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ
from pynetdicom.presentation import PresentationContext

from dicomtools.core.net.scp_negotiate import (
    ContextResult,
    accept_pdu,
    answer_contexts,
    peer_max_pdu,
    reject_pdu,
    user_info,
)
from dicomtools.core.net.ul import IMPLEMENTATION_UID

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"


def _rq(cx_id: int, abstract: str, syntaxes: Sequence[str]) -> PresentationContext:
    cx = PresentationContext()
    cx.context_id = cx_id
    cx.abstract_syntax = abstract
    for ts in syntaxes:
        cx.add_transfer_syntax(ts)
    return cx


def _only_ct_last(abstract: str, offered: Sequence[str]) -> str | None:
    return offered[-1] if abstract == CT else None


def test_contexts_follow_the_policy_and_refuse_with_the_given_reason() -> None:
    requested = [_rq(1, CT, [EXPLICIT, JPEG_LS]), _rq(3, MR, [EXPLICIT]), _rq(5, CT, [])]
    results, table = answer_contexts(requested, _only_ct_last, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    assert table == {1: (CT, JPEG_LS)}
    assert [(r.context_id, r.result, r.transfer_syntax[0]) for r in results] == [
        (1, 0x00, JPEG_LS),
        (3, 0x03, EXPLICIT),  # a refused context names the first offered syntax
        (5, 0x03, IMPLICIT),  # none offered: the policy is not asked
    ]


def test_reject_pdu_is_a_permanent_rejection_pynetdicom_reads() -> None:
    rj = A_ASSOCIATE_RJ()
    rj.decode(reject_pdu(7))
    assert (rj.result, rj.source, rj.reason_diagnostic) == (0x01, 0x01, 7)


def test_accept_pdu_carries_results_and_our_max_pdu() -> None:
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    request = A_ASSOCIATE()
    request.calling_ae_title = "PEER"
    request.called_ae_title = "US"
    results, _ = answer_contexts([_rq(1, CT, [EXPLICIT])], _only_ct_last, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    ac = A_ASSOCIATE_AC()
    ac.decode(accept_pdu(request, results, 65536))
    prim = ac.to_primitive()
    assert peer_max_pdu(prim) == 65536
    assert [(c.context_id, c.result) for c in prim.presentation_context_definition_results_list] == [(1, 0x00)]
    uids = [getattr(i, "implementation_class_uid", None) for i in prim.user_information]
    assert IMPLEMENTATION_UID in uids


def test_peer_without_max_length_item_sets_no_limit() -> None:
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    prim = A_ASSOCIATE()
    prim.user_information = user_info(1234)[1:]  # implementation class and version only
    assert peer_max_pdu(prim) == 0
