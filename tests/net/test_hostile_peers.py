"""Hostile and failing peers: retrieve and store must end cleanly, keep only good files, resume.

Every fault test checks the same promises: a clear message and a non-zero
exit code when data is missing, the target folder holding only complete
files of the requested patient under ``<prefix>.<SOP Instance UID>.dcm``, no
temporary folder or file left, and a rerun (``--force`` into the same folder,
or the same ``--statusFileName``) against the healed peer finishing the job
with every instance present exactly once.
"""

from __future__ import annotations

import copy
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomtools.core.cli.main import main
from dicomtools.core.net.store import read_status_file
from dicomtools.core.net.storescp import StorageSCP
from dicomtools.core.phantom import write_ct_series
from tests.net import hostile
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "HOSTILE-1"
OTHER = "OTHER-2"
COUNT = 20


@dataclass
class Data:
    files: list[Path]
    datasets: list[Dataset]
    uids: set[str]
    others: list[Dataset]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("hostile-src")
    files = write_ct_series(root / "pid", COUNT, patient_id=PID)
    datasets = hostile.load(files)
    others = hostile.load(write_ct_series(root / "other", 2, patient_id=OTHER, seed=1))
    return Data(files, datasets, {str(d.SOPInstanceUID) for d in datasets}, others)


@dataclass
class Setup:
    peer: hostile.QRPeer
    config: Path
    scp_port: int
    out: Path


@pytest.fixture
def qr(data: Data, tmp_path: Path) -> Iterator[Setup]:
    scp_port = hostile.free_port()
    peer = hostile.QRPeer(data.datasets, {OUR_AE: (hostile.HOST, scp_port)}).start()
    try:
        cfg = hostile.write_node_config(tmp_path / "config.toml", peer.port, peer.aet, scp_port, timeout=10.0)
        yield Setup(peer, cfg, scp_port, tmp_path / "out")
    finally:
        peer.stop()


def retrieve(s: Setup, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["retrieve", "--config", str(s.config), "--node", "peer", "--patientId", PID,
               "--path", str(s.out), *extra])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def saved(out: Path, pid: str = PID) -> Counter[str]:
    """SOP Instance UIDs in ``out``, checking every file: complete, named after its UID, of ``pid``."""
    found: Counter[str] = Counter()
    if not out.exists():
        return found
    for p in out.iterdir():
        assert not p.name.startswith("."), f"temporary left behind: {p.name}"
        assert p.is_file(), p
        ds = dcmread(p)  # complete: pixel data included
        uid = str(ds.SOPInstanceUID)
        assert p.name == f"CT.{uid}.dcm"
        assert ds.PatientID == pid
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
        found[uid] += 1
    return found


def rerun_completes(s: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    s.peer.faults = hostile.MoveFaults()
    rc, text = retrieve(s, capsys, "--force")
    assert rc == 0, text
    got = saved(s.out)
    assert set(got) == data.uids and set(got.values()) == {1}


# ------------------------------------------------------------------ C-MOVE lies


def test_honest_peer_baseline(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text
    assert set(saved(qr.out)) == data.uids
    assert f"{COUNT} received / {COUNT} reported" in text


def test_reports_more_than_it_sends(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(report=COUNT + 5, skip=2)
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"the node reported {COUNT + 5} sent, {COUNT - 2} arrived" in text
    assert set(saved(qr.out)) < data.uids
    rerun_completes(qr, data, capsys)


def test_sends_fewer_than_c_find_listed(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(skip=3)  # and reports honestly what it sent
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"C-FIND listed {COUNT} instances, {COUNT - 3} arrived" in text
    assert len(saved(qr.out)) == COUNT - 3
    rerun_completes(qr, data, capsys)


def test_reports_fewer_than_it_sends(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(report=5)
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text  # everything C-FIND listed arrived: a note, not a failure
    assert "note: study" in text and f"{COUNT} instances arrived, the node reported 5" in text
    assert set(saved(qr.out)) == data.uids


def test_same_instance_twice(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(duplicate=2)
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text
    assert "2 instances arrived twice (kept once)" in text
    got = saved(qr.out)
    assert set(got) == data.uids and set(got.values()) == {1}


def test_duplicate_cannot_hide_a_missing_instance(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    """Found: the arrival count included duplicates, so N-1 instances + 1 resent passed as complete."""
    qr.peer.faults = hostile.MoveFaults(skip=1, duplicate=1)  # reports COUNT: one resent, one never sent
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"C-FIND listed {COUNT} instances, {COUNT - 1} arrived (1 sent twice)" in text
    assert len(saved(qr.out)) == COUNT - 1
    rerun_completes(qr, data, capsys)


def test_failed_sub_operations(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(skip=4, report_failed=4)
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert "4 sub-operations failed" in text
    rerun_completes(qr, data, capsys)


# ------------------------------------------------------------------ hostile instances


@pytest.mark.parametrize("uid", ["1.2.3/../../evil", "../../../tmp/evil", "1.2.3\\..\\evil", "/etc/evil", "1.2..3"])
def test_path_like_sop_instance_uid(qr: Setup, data: Data, tmp_path: Path, uid: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = copy.deepcopy(data.datasets[0])
    bad.SOPInstanceUID = uid
    qr.peer.faults = hostile.MoveFaults(extra=[hostile.RawStore(uid, bad)])
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"refused an instance with an invalid SOP Instance UID {uid!r}" in text
    assert set(saved(qr.out)) == data.uids  # the good ones, under their own names
    names = {p.name for p in tmp_path.rglob("*")}
    assert not any("evil" in n for n in names) and not Path("/tmp/evil").exists()
    rerun_completes(qr, data, capsys)


@pytest.mark.parametrize("inside", ["path-like", "another instance"])
def test_data_set_uid_differs_from_announced(qr: Setup, data: Data, tmp_path: Path, inside: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The C-STORE request announces one UID, the data set holds another: never saved."""
    ds = copy.deepcopy(data.others[0])
    ds.PatientID = PID  # looks like ours
    ds.SOPInstanceUID = "../../evil" if inside == "path-like" else str(data.datasets[3].SOPInstanceUID)
    qr.peer.faults = hostile.MoveFaults(extra=[hostile.RawStore("1.2.826.0.1.3680043.10.1234.77", ds)])
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    if inside == "path-like":
        assert "refused an instance with an invalid SOP Instance UID '../../evil'" in text
    else:
        assert (f"refused instance {data.datasets[3].SOPInstanceUID}: the C-STORE request announced "
                "'1.2.826.0.1.3680043.10.1234.77'") in text
    got = saved(qr.out)
    assert set(got) == data.uids
    # the instance the forged one tried to shadow is the genuine one
    genuine = dcmread(qr.out / f"CT.{data.datasets[3].SOPInstanceUID}.dcm")
    assert genuine.PixelData == data.datasets[3].PixelData and genuine.StudyInstanceUID == data.datasets[3].StudyInstanceUID
    rerun_completes(qr, data, capsys)


def test_instance_of_another_patient(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(extra=list(data.others))
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"the node sent instances of other patients: {OTHER} (ignored)" in text
    assert set(saved(qr.out)) == data.uids  # saved() also checks every file is of PID
    rerun_completes(qr, data, capsys)


def test_sub_association_aborted_mid_c_store(qr: Setup, data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    qr.peer.faults = hostile.MoveFaults(abort_at=7)
    rc, text = retrieve(qr, capsys)
    assert rc == 1
    assert f"C-FIND listed {COUNT} instances, 7 arrived" in text
    assert len(saved(qr.out)) == 7  # the half data set never appears, not even as a temp file
    rerun_completes(qr, data, capsys)


def test_c_move_never_answered(data: Data, qr: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    hostile.write_node_config(qr.config, qr.peer.port, qr.peer.aet, qr.scp_port, timeout=1.5)
    qr.peer.faults = hostile.MoveFaults(hang=True)
    t0 = time.monotonic()
    rc, text = retrieve(qr, capsys)
    assert time.monotonic() - t0 < 10
    assert rc == 1
    assert "C-MOVE study" in text and "no answer from the peer within 1.5 s" in text
    assert not qr.out.exists()  # created by us, nothing saved: removed, temp folder included
    rerun_completes(qr, data, capsys)


# ------------------------------------------------------------------ our Storage SCP


@pytest.mark.parametrize("how", ["calling AE", "host"])
def test_scp_refuses_strangers(qr: Setup, data: Data, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    if how == "calling AE":
        qr.peer.faults = hostile.MoveFaults(intruder_ae="INTRUDER")
        expect = "refused association: calling AE title 'INTRUDER' from 127.0.0.1 is not the expected peer"
    else:  # the right AE title from another address (loopback alias as source; we only connect to 127.0.0.1)
        qr.peer.faults = hostile.MoveFaults(intruder_bind="127.0.0.2")
        expect = "refused association: host 127.0.0.2 is not the expected peer"
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text
    assert expect in text
    assert qr.peer.log.intruder_accepted == [False]
    got = saved(qr.out)
    assert set(got) == data.uids and set(got.values()) == {1}


@pytest.mark.parametrize("bind", ["", "127.0.0.1", "0.0.0.0"])
def test_scp_binds_the_configured_interface(qr: Setup, data: Data, bind: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Default: the local address used to reach the node, never 0.0.0.0 unless written in the preset."""
    hostile.write_node_config(qr.config, qr.peer.port, qr.peer.aet, qr.scp_port, timeout=10.0, scp_bind=bind)
    seen: list[set[str]] = []
    qr.peer.faults = hostile.MoveFaults(on_move=lambda: seen.append(hostile.listening_addresses(qr.scp_port)))
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text
    assert seen == [{bind or "127.0.0.1"}]
    assert hostile.listening_addresses(qr.scp_port) == set()  # stopped afterwards


def test_scp_drops_a_silent_peer_after_network_timeout(qr: Setup, data: Data,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """[nodes.X] network_timeout reaches our SCP: a peer that connects and says nothing is dropped."""
    hostile.write_node_config(qr.config, qr.peer.port, qr.peer.aet, qr.scp_port, timeout=10.0, network_timeout=1.0)
    closed_after: list[float] = []

    def silent_client() -> None:
        with socket.create_connection((hostile.HOST, qr.scp_port), timeout=5) as c:
            t0 = time.monotonic()
            assert c.recv(1) == b""  # closed by our SCP, not by our 5 s timeout
            closed_after.append(time.monotonic() - t0)

    qr.peer.faults = hostile.MoveFaults(on_move=silent_client)
    rc, text = retrieve(qr, capsys)
    assert rc == 0, text
    assert len(closed_after) == 1 and 0.8 < closed_after[0] < 3.0


def test_scp_network_timeout_mid_association(tmp_path: Path) -> None:
    """Associated, one data set half sent, then silence: dropped after network_timeout, no file left."""
    files = write_ct_series(tmp_path / "src", 1)
    ds = dcmread(files[0])
    with StorageSCP("OURSCP", tmp_path / "in", network_timeout=1.0) as scp:
        from pynetdicom import AE, build_context

        ae = AE(ae_title="PEER")
        assoc = ae.associate(hostile.HOST, scp.port, ae_title="OURSCP",
                             contexts=[build_context(ds.SOPClassUID, hostile.EXPLICIT_LE)])
        assert assoc.is_established
        cx = assoc.accepted_contexts[0]
        cmd = hostile.encode_command({"AffectedSOPClassUID": ds.SOPClassUID, "CommandField": 1, "MessageID": 1,
                                      "Priority": 0, "CommandDataSetType": 0,
                                      "AffectedSOPInstanceUID": ds.SOPInstanceUID})
        sock = hostile.assoc_socket(assoc)
        cx_id = int(cx.context_id or 0)
        sock.sendall(hostile.pdata(cx_id, cmd, True, True) + hostile.pdata(cx_id, b"\x08\x00" * 8, False, False))
        t0 = time.monotonic()
        while assoc.is_established and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert not assoc.is_established and time.monotonic() - t0 < 3
        assert scp.count == 0
    assert list((tmp_path / "in").iterdir()) == []


# ------------------------------------------------------------------ peers that never answer


NEVER: dict[str, tuple[type[hostile.FullBacklog | hostile.MuteListener], str]] = {
    "connect": (hostile.FullBacklog, "no answer from 127.0.0.1:{port} within 1 s"),
    "acse": (hostile.MuteListener, "no answer to the association request from ANY@127.0.0.1:{port} within 1 s"),
}


@pytest.mark.parametrize("command", ["echo", "store", "retrieve"])
@pytest.mark.parametrize("stage", ["connect", "acse", "dimse"])
def test_timeouts_are_honoured(tmp_path: Path, data: Data, command: str, stage: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    peer: hostile.HangingSCP | hostile.FullBacklog | hostile.MuteListener
    peer = hostile.HangingSCP("ANY") if stage == "dimse" else NEVER[stage][0]()
    with peer:
        cfg = hostile.write_node_config(tmp_path / "c.toml", peer.port, "ANY", hostile.free_port(), timeout=1.0)
        args = {"echo": ["echo"],
                "store": ["store", "--path", str(data.files[0].parent), "--noCache", "--showMessages", "false",
                          "--statusFileName", str(tmp_path / "status.txt")],
                "retrieve": ["retrieve", "--patientId", PID, "--path", str(tmp_path / "out")]}[command]
        t0 = time.monotonic()
        rc = main([*args, "--config", str(cfg), "--node", "peer"])
        took = time.monotonic() - t0
        err = capsys.readouterr().err
    assert rc == 1, err
    assert took < 6, took
    if stage == "dimse":
        expect = {"echo": f"no C-ECHO response from ANY@127.0.0.1:{peer.port} within 1 s",
                  "store": "stopped: no answer from the peer within 1 s (sending CT.",
                  "retrieve": "C-FIND: no response from the node within 1 s"}[command]
    else:
        expect = NEVER[stage][1].format(port=peer.port)
    assert expect in err
    assert err.count("\n") <= 3 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    if command == "store":
        assert read_status_file(tmp_path / "status.txt") == (set(), set())


# ------------------------------------------------------------------ store into a failing peer


def store(folder: Path, peer_port: int, status: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
          aet: str = "STOREPEER") -> tuple[int, str, str]:
    cfg = hostile.write_node_config(tmp_path / "store.toml", peer_port, aet, hostile.free_port(), timeout=10.0)
    rc = main(["store", "--path", str(folder), "--statusFileName", str(status), "--noCache",
               "--showMessages", "false", "--config", str(cfg), "--node", "peer"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def big_slices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """64x64 slices: 8 kB of pixels, several PDUs per data set at the peer's 4 kB max PDU."""
    folder = tmp_path_factory.mktemp("store-src")
    files = write_ct_series(folder, 30, patient_id="STORE-1", rows=64)
    return folder, {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}


def test_store_peer_aborts_mid_c_store_then_resume(tmp_path: Path, big_slices: tuple[Path, set[str]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder, uids = big_slices
    status = tmp_path / "status.txt"
    with hostile.StoragePeer(abort_after=10) as peer:
        rc, out, err = store(folder, peer.port, status, tmp_path, capsys)
        assert rc == 1, err
        assert peer.aborted == 1, err
        assert "stopped: peer aborted the association" in err and "(sending CT." in err
        assert "rerun with the same --statusFileName" in err
        done, _ = read_status_file(status)
        assert done == set(peer.stored) and len(done) == 10
        rc, out, err = store(folder, peer.port, status, tmp_path, capsys)  # the peer behaves now
        assert rc == 0, err
        assert "10 skipped (already stored)" in out and "20 stored" in out
        assert set(peer.stored) == uids and len(peer.stored) == len(uids)  # each exactly once
    done, _ = read_status_file(status)
    assert done == uids


def test_store_peer_never_answers_then_resume(tmp_path: Path, big_slices: tuple[Path, set[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder, uids = big_slices
    status = tmp_path / "status.txt"
    with hostile.HangingSCP("STOREPEER") as hang:
        cfg = hostile.write_node_config(tmp_path / "h.toml", hang.port, "STOREPEER", hostile.free_port(), timeout=1.0)
        rc = main(["store", "--path", str(folder), "--statusFileName", str(status), "--noCache",
                   "--showMessages", "false", "--config", str(cfg), "--node", "peer"])
        err = capsys.readouterr().err
    assert rc == 1 and "no answer from the peer within 1 s" in err
    with hostile.StoragePeer() as good:
        rc, out, err = store(folder, good.port, status, tmp_path, capsys)
        assert rc == 0, err
        assert Counter(good.stored) == Counter({u: 1 for u in uids})


# ------------------------------------------------------------------ pynetdicom's reactor race


def test_response_grabbed_by_the_reactor_goes_back_to_the_waiting_request(qr: Setup) -> None:
    """Found: under load pynetdicom's reactor can swallow a C-FIND/C-STORE response
    ("Received unexpected C-FIND service message") and the request then waits out its DIMSE
    timeout. Our associations hand such a response back to the waiting request."""
    from pynetdicom.dimse_primitives import C_ECHO
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from dicomtools.core.config import NodeConfig
    from dicomtools.core.net.assoc import associate, make_ae, release

    node = NodeConfig(port=qr.peer.port, called_ae=qr.peer.aet, calling_ae=OUR_AE)
    ae = make_ae(OUR_AE, node)
    ae.add_requested_context(Verification)
    assoc = associate(ae, node)
    try:
        rsp = C_ECHO()
        rsp.MessageIDBeingRespondedTo = 7
        rsp.Status = 0x0000
        assert rsp.is_valid_response and not rsp.is_valid_request
        assoc._reactor_checkpoint.clear()  # a send_*() is waiting for its response...
        try:
            assoc._serve_request(rsp, 1)  # ...and the reactor got it first
            assert assoc.dimse.msg_queue.get_nowait() == (1, rsp)
        finally:
            assoc._reactor_checkpoint.set()
        assert assoc.send_c_echo().Status == 0x0000  # the association is still in step
    finally:
        release(assoc)
