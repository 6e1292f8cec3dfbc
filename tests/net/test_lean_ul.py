"""The lean requestor: association PDUs written by hand, checked with pynetdicom's decoder; ``store``
sends without importing pydicom, pynetdicom or numpy (an import assertion, not a timing one)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext

from dicomtools.core.net.ul import APPLICATION_CONTEXT, IMPLEMENTATION_UID
from dicomtools.core.net.ul_pdu import decode_associate_ac, encode_associate_rq
from dicomtools.core.phantom import write_ct_series
from tests.net import peers

pytestmark = pytest.mark.net

CT = "1.2.840.10008.5.1.4.1.1.2"
GET_P = "1.2.840.10008.5.1.4.1.2.1.3"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


def test_our_associate_rq_reads_back_in_pynetdicom() -> None:
    raw = encode_associate_rq("CALLING", "CALLED_AE_TITLE1", APPLICATION_CONTEXT,
                              [(1, GET_P, IMPLICIT), (3, CT, EXPLICIT), (5, CT, IMPLICIT)],
                              123456, IMPLEMENTATION_UID, "DICOMTOOLS_9", scp_roles=[CT])
    rq = A_ASSOCIATE_RQ()
    rq.decode(raw)
    prim = rq.to_primitive()
    assert str(prim.calling_ae_title).strip() == "CALLING"
    assert str(prim.called_ae_title).strip() == "CALLED_AE_TITLE1"
    assert str(prim.application_context_name) == APPLICATION_CONTEXT
    got = [(int(cx.context_id or 0), str(cx.abstract_syntax), [str(t) for t in cx.transfer_syntax])
           for cx in prim.presentation_context_definition_list]
    assert got == [(1, GET_P, [IMPLICIT]), (3, CT, [EXPLICIT]), (5, CT, [IMPLICIT])]
    items = prim.user_information
    assert [int(i.maximum_length_received or 0) for i in items if isinstance(i, MaximumLengthNotification)] == [123456]
    roles = [(str(i.sop_class_uid), i.scu_role, i.scp_role) for i in items
             if isinstance(i, SCP_SCU_RoleSelectionNegotiation)]
    assert roles == [(CT, False, True)]


def test_pynetdicoms_associate_ac_reads_back_in_ours() -> None:
    prim = A_ASSOCIATE()
    prim.application_context_name = APPLICATION_CONTEXT
    prim.calling_ae_title = "CALLING"
    prim.called_ae_title = "CALLED"
    prim.result = 0
    prim.result_source = 1
    results = []
    for cx_id, result, ts in ((1, 0, IMPLICIT), (3, 4, IMPLICIT), (5, 0, EXPLICIT)):
        cx = PresentationContext()
        cx.context_id = cx_id
        cx.add_transfer_syntax(ts)
        cx.result = result
        results.append(cx)
    prim.presentation_context_definition_results_list = results
    ml = MaximumLengthNotification()
    ml.maximum_length_received = 16384
    prim.user_information = [ml]
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(prim)
    decoded = decode_associate_ac(ac.encode()[6:])
    assert decoded.results == {1: (0, IMPLICIT), 3: (4, IMPLICIT), 5: (0, EXPLICIT)}
    assert decoded.peer_max_pdu == 16384


PROBE = """
import json, sys
from dicomtools.core.cli.main import main
code = main(sys.argv[1:])
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def test_store_sends_without_pydicom_pynetdicom_or_numpy(tmp_path: Path) -> None:
    """Importing those costs more than storing a thousand small files: the store path never needs them."""
    src = tmp_path / "src"
    files = write_ct_series(src, 5, patient_id="LEAN-1")
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
        done = subprocess.run([sys.executable, "-c", PROBE, "store", "--path", str(src), "--hostName", peers.HOST,
                               "--hostPort", str(scp.port), "--calledAet", scp.aet, "--callingAet", "LEANTEST",
                               "--noCache", "--includeAll", "--showMessages", "false"],
                              capture_output=True, text=True, env=env, timeout=120)
    finally:
        scp.stop()
    line = [x for x in done.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr
    result = json.loads(line[-1][len("PROBE "):])
    assert result["code"] == 0, done.stdout + done.stderr
    assert "5 stored" in done.stdout
    assert len([p for p in scp.out_dir.rglob("*") if p.is_file()]) == len(files)
    heavy = sorted({m.split(".")[0] for m in result["modules"]} & {"pydicom", "pynetdicom", "numpy"})
    assert heavy == []


@pytest.mark.parametrize(("msg_id", "status", "comment"), [
    (1, 0x0000, ""), (65535, 0xA700, "out of resources: cannot write file"), (70001, 0xB000, "odd"),
])
@pytest.mark.parametrize(("cls", "uid"), [(CT, "1.2.3.4"), ("1.2.840.10008.5.1.4.1.1.481.5", "1.2.3.45")])
def test_store_response_reads_back_in_pydicom_and_goes_out_as_one_pdv(msg_id: int, status: int, comment: str,
                                                                      cls: str, uid: str) -> None:
    """The C-STORE-RSP built from cached pieces, decoded by pydicom; sent as one P-DATA-TF pynetdicom reads."""
    from io import BytesIO

    from pydicom.filereader import read_dataset
    from pynetdicom.pdu import P_DATA_TF

    from dicomtools.core.net.ul import Connection
    from dicomtools.core.net.ul_commands import store_rsp

    raw = store_rsp(msg_id, cls, uid, status, comment)
    ds = read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)
    assert ds.CommandGroupLength == len(raw) - 12
    assert (ds.AffectedSOPClassUID, ds.AffectedSOPInstanceUID) == (cls, uid)
    assert (ds.CommandField, ds.MessageIDBeingRespondedTo, ds.CommandDataSetType) == (0x8001, msg_id & 0xFFFF, 0x0101)
    assert ds.Status == status and ds.get("ErrorComment", "") == comment
    assert list(ds.keys()) == sorted(ds.keys())

    ours, theirs = socket.socketpair()
    with ours, theirs:
        Connection(ours).send_message(7, raw)
        ours.shutdown(socket.SHUT_WR)
        wire = b"".join(iter(lambda: theirs.recv(65536), b""))
    pdu = P_DATA_TF()
    pdu.decode(wire)
    assert len(wire) == len(pdu) and len(pdu.presentation_data_value_items) == 1  # one PDU, one PDV
    pdv = pdu.presentation_data_value_items[0]
    assert pdv.context_id == 7 and pdv.data == b"\x03" + raw  # message control header: command, last fragment


def test_data_waiting_never_blocks_and_sees_read_ahead_and_socket_bytes() -> None:
    """The C-MOVE loop naps only when nothing is waiting: bytes read ahead or in the socket both count."""
    import time

    from dicomtools.core.net.ul import Connection

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(7.0)
        conn = Connection(ours)
        started = time.monotonic()
        assert conn.data_waiting() is False and time.monotonic() - started < 1.0  # nothing: at once
        assert ours.gettimeout() == 7.0  # the DIMSE timeout is back
        theirs.sendall(b"\x04\x00\x00\x00\x00\x02ab\x04\x00\x00\x00\x00\x02cd")  # two P-DATA PDUs
        deadline = time.monotonic() + 5
        while not conn.data_waiting() and time.monotonic() < deadline:  # in the socket
            time.sleep(0.01)
        assert conn.read_pdu() == (4, b"ab")
        assert conn.data_waiting() is True  # the second PDU was read ahead with the first
        assert conn.read_pdu() == (4, b"cd")
        assert conn.data_waiting() is False and ours.gettimeout() == 7.0
