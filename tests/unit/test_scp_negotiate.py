"""The SCP side of A-ASSOCIATE, by hand: requests pynetdicom encodes are read by ours, and our
answers are decoded again by pynetdicom's own PDU classes (not ours)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext

from dicomtools.core.net.scp_negotiate import (
    AssociateRequest,
    ContextResult,
    ProposedContext,
    accept_pdu,
    answer_contexts,
    decode_associate_rq,
    reject_pdu,
)
from dicomtools.core.net.ul import APPLICATION_CONTEXT, IMPLEMENTATION_UID

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"


def _only_ct_last(abstract: str, offered: Sequence[str]) -> str | None:
    return offered[-1] if abstract == CT else None


def _pynetdicom_rq(contexts: list[tuple[int, str, list[str]]], max_pdu: int | None) -> bytes:
    prim = A_ASSOCIATE()
    prim.application_context_name = APPLICATION_CONTEXT
    prim.calling_ae_title = "MOVE_SOURCE"
    prim.called_ae_title = "DICOMTOOLS"
    cxs = []
    for cx_id, abstract, syntaxes in contexts:
        cx = PresentationContext()
        cx.context_id = cx_id
        cx.abstract_syntax = abstract
        for ts in syntaxes:
            cx.add_transfer_syntax(ts)
        cxs.append(cx)
    prim.presentation_context_definition_list = cxs
    items: list[object] = []
    if max_pdu is not None:
        ml = MaximumLengthNotification()
        ml.maximum_length_received = max_pdu
        items.append(ml)
    ic = ImplementationClassUIDNotification()
    ic.implementation_class_uid = "1.2.3.4"
    items.append(ic)
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = CT
    role.scu_role = True
    role.scp_role = False
    items.append(role)
    prim.user_information = items
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(prim)
    return bytes(rq.encode())


def test_pynetdicoms_associate_rq_reads_back_in_ours() -> None:
    raw = _pynetdicom_rq([(1, CT, [EXPLICIT, JPEG_LS, IMPLICIT]), (3, MR, [IMPLICIT])], 28672)
    rq = decode_associate_rq(raw[6:])
    assert (rq.calling, rq.called) == ("MOVE_SOURCE", "DICOMTOOLS")
    assert rq.contexts == (ProposedContext(1, CT, (EXPLICIT, JPEG_LS, IMPLICIT)), ProposedContext(3, MR, (IMPLICIT,)))
    assert rq.peer_max_pdu == 28672


def test_peer_without_max_length_item_sets_no_limit() -> None:
    rq = decode_associate_rq(_pynetdicom_rq([(1, CT, [IMPLICIT])], None)[6:])
    assert rq.peer_max_pdu == 0


@pytest.mark.parametrize("cut", [10, 67, 80])
def test_truncated_associate_rq_is_a_value_error(cut: int) -> None:
    raw = _pynetdicom_rq([(1, CT, [IMPLICIT])], 16384)[6:]
    with pytest.raises(ValueError):
        decode_associate_rq(raw[:cut])


def test_contexts_follow_the_policy_and_refuse_with_the_given_reason() -> None:
    requested = [ProposedContext(1, CT, (EXPLICIT, JPEG_LS)), ProposedContext(3, MR, (EXPLICIT,)),
                 ProposedContext(5, CT, ())]
    results, table = answer_contexts(requested, _only_ct_last, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    assert table == {1: (CT, JPEG_LS)}
    assert [(r.context_id, r.result, r.transfer_syntax) for r in results] == [
        (1, 0x00, JPEG_LS),
        (3, 0x03, EXPLICIT),  # a refused context names the first offered syntax
        (5, 0x03, IMPLICIT),  # none offered: the policy is not asked
    ]


def test_reject_pdu_is_a_permanent_rejection_pynetdicom_reads() -> None:
    rj = A_ASSOCIATE_RJ()
    rj.decode(reject_pdu(7))
    assert (rj.result, rj.source, rj.reason_diagnostic) == (0x01, 0x01, 7)


def test_accept_pdu_carries_results_and_our_max_pdu() -> None:
    request = decode_associate_rq(_pynetdicom_rq([(1, CT, [EXPLICIT]), (3, MR, [IMPLICIT])], 16384)[6:])
    assert isinstance(request, AssociateRequest)
    results, _ = answer_contexts(request.contexts, _only_ct_last, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    ac = A_ASSOCIATE_AC()
    ac.decode(accept_pdu(request, results, 65536))
    prim = ac.to_primitive()
    assert str(prim.application_context_name) == APPLICATION_CONTEXT
    assert str(prim.called_ae_title).strip() == "DICOMTOOLS"
    assert str(prim.calling_ae_title).strip() == "MOVE_SOURCE"
    assert [(c.context_id, c.result, [str(t) for t in c.transfer_syntax])
            for c in prim.presentation_context_definition_results_list] == [(1, 0x00, [EXPLICIT]), (3, 0x03, [IMPLICIT])]
    max_len = [i.maximum_length_received for i in prim.user_information if isinstance(i, MaximumLengthNotification)]
    assert max_len == [65536]
    uids = [getattr(i, "implementation_class_uid", None) for i in prim.user_information]
    assert IMPLEMENTATION_UID in uids
