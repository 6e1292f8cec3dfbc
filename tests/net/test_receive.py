"""``dicomtools receive`` as a real process, with dcmtk ``storescu`` and Orthanc pushing to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.net.receive.filing import INCOMING, MARKER
from dicomtools.core.phantom.bulk import write_ct_series
from tests.net import peers
from tests.net.conftest import Archive

pytestmark = pytest.mark.net

AE = "RECEIVER"


class Receiver:
    def __init__(self, out: Path, log: Path, proc: subprocess.Popen[bytes], port: int) -> None:
        self.out, self.log, self.proc, self.port = out, log, proc, port

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"receive ended before {what}: {self.text()}")
            time.sleep(0.01)
        raise AssertionError(f"not {what} after {timeout} s: {self.text()}")

    def wait_line(self, needle: str, count: int = 1) -> None:
        self.wait_for(lambda: self.text().count(needle) >= count, f"{needle!r} x{count}")

    def stop(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(60)

    def files(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("*.dcm") if INCOMING not in p.parts)


@pytest.fixture
def receive(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*args: str, out: Path | None = None) -> Receiver:
        out = out or tmp_path / "in"
        port = peers.free_port()
        log = tmp_path / f"receive-{port}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "dicomtools.core", "receive", "--path", str(out),
                                     "--port", str(port), "--aeTitle", AE, *args],
                                    stdout=fh, stderr=subprocess.STDOUT, env=peers.peer_env())
        r = Receiver(out, log, proc, port)
        started.append(r)
        r.wait_line("listening on")
        return r

    yield start
    for r in started:
        peers.stop_process(r.proc)  # type: ignore[arg-type]


def send(r: Receiver, files: list[Path], calling: str = "STORESCU", *extra: str) -> subprocess.CompletedProcess[bytes]:
    return peers.storescu(r.port, AE, files, calling=calling, extra=["-R", *extra])


def files_of(archive: Archive, pid: str) -> list[Path]:
    return [Path(i.path) for i in archive.sendable() if i.patient_id == pid]


def same_dataset(received: Path, source: Path) -> bool:
    """Every element equal, pixel data included (pydicom compares; the file meta is the receiver's)."""
    got, want = dcmread(received), dcmread(source, force=True)
    return got == want and len(got) == len(want) > 0


def test_allowed_and_refused_callers_two_patients_in_one_association(receive: Callable[..., Receiver],
                                                                    archive: Archive) -> None:
    r = receive("--allow", "STORESCU@127.0.0.1", "OTHERHOST@10.255.255.1", "--showTree", "--ascii")
    p1, p2 = files_of(archive, "PHANTOM-001"), files_of(archive, "PHANTOM-002")
    res = send(r, p1 + p2)
    assert res.returncode == 0, res.stderr[-800:]
    refused = send(r, p1[:1], "STRANGER")
    assert refused.returncode != 0 and b"Calling AE Title Not Recognized" in refused.stderr
    wrong_host = send(r, p1[:1], "OTHERHOST")
    assert wrong_host.returncode != 0
    r.wait_line("refused", 2)
    assert r.stop() == 0
    text = r.text()
    assert "accepting only STORESCU@127.0.0.1, OTHERHOST@10.255.255.1" in text
    line = next(ln for ln in text.splitlines() if "STORESCU@127.0.0.1:" in ln)
    assert f"{len(p1) + len(p2)} instances (PHANTOM-001: {len(p1)}, PHANTOM-002: {len(p2)})" in line
    assert "into PHANTOM-001/, PHANTOM-002/" in line and "released" in line
    assert "refused 'STRANGER' from 127.0.0.1: calling AE title 'STRANGER' is not in the allow-list" in text
    assert "'OTHERHOST' is allowed only from 10.255.255.1, not from 127.0.0.1" in text
    assert "Patient: PHANTOM-001 (PHANTOM^ALPHA)" in text and "+-- RT-Plan: PLAN_A" in text
    # every instance once, in its own patient's folder, bytes as sent
    by_uid = {str(dcmread(p, stop_before_pixels=True, force=True).SOPInstanceUID): p for p in p1 + p2}
    got = r.files()
    assert len(got) == len(by_uid)
    for f in got:
        ds = dcmread(f, stop_before_pixels=True)
        assert f.relative_to(r.out).parts[0] == ds.PatientID
        assert same_dataset(f, by_uid[str(ds.SOPInstanceUID)])
    assert sorted(p.name for p in r.out.iterdir()) == [INCOMING, "PHANTOM-001", "PHANTOM-002"]
    assert (r.out / "PHANTOM-001" / MARKER).read_text() == "PHANTOM-001"
    assert not list((r.out / INCOMING).iterdir())


def test_duplicates_identical_and_different(receive: Callable[..., Receiver], archive: Archive,
                                            tmp_path: Path) -> None:
    r = receive()
    plan = next(p for p in files_of(archive, "PHANTOM-001") if p.name == "RP.PLAN_A.dcm")
    res = send(r, [plan, plan])
    assert res.returncode == 0, res.stderr[-800:]
    r.wait_line("1 identical duplicate not written again")
    changed = tmp_path / "changed.dcm"
    ds = dcmread(plan)
    ds.RTPlanName = "CHANGED"
    ds.save_as(changed)
    assert send(r, [changed]).returncode == 0
    r.wait_line("kept beside")
    assert r.stop() == 0
    text = r.text()
    assert "warning: no allow-list" in text
    files = r.files()
    assert len(files) == 2
    first = next(f for f in files if ".dup-" not in f.name)
    beside = next(f for f in files if ".dup-" in f.name)
    assert beside.parent == first.parent and beside.name == first.name.replace(".dcm", ".dup-2.dcm")
    assert same_dataset(first, plan) and dcmread(beside).RTPlanName == "CHANGED"
    assert f"kept beside: {beside} (first: {first})" in text
    # a restart still knows the first copy: identical bytes again are not written
    r2 = receive(out=r.out)
    assert send(r2, [plan]).returncode == 0
    r2.wait_line("1 identical duplicate")
    assert r2.stop() == 0 and len(r2.files()) == 2


@pytest.fixture(scope="module")
def big_series(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_ct_series(tmp_path_factory.mktemp("receive-ct"), 1500, patient_id="BULK-TERM", rows=64)


def test_sigterm_mid_transfer(receive: Callable[..., Receiver], big_series: list[Path]) -> None:
    r = receive("--allow", "STORESCU")
    sender = subprocess.Popen([peers.find_binary("storescu"), "-v", "-aet", "STORESCU", "-aec", AE, "-R",
                               peers.HOST, str(r.port), *map(str, big_series)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=peers.peer_env())
    try:
        r.wait_for(lambda: len(r.files()) >= 50, "50 files filed")
        rc = r.stop()
        log = sender.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        peers.stop_process(sender)  # type: ignore[arg-type]
    assert rc == 0, r.text()
    text = r.text()
    assert "stopping: no new associations; finishing the instances in flight" in text
    assert "stopped by us" in text and "receive: stopped;" in text
    files = r.files()
    assert 50 <= len(files) < len(big_series)  # stopped mid-transfer
    acked = log.count("Received Store Response (Success)")
    assert acked == len(files)  # every acknowledged instance is on disk, nothing else is
    by_uid = {str(dcmread(p, stop_before_pixels=True, force=True).SOPInstanceUID): p for p in big_series}
    for f in files:  # no partial file under a final name
        uid = str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        assert same_dataset(f, by_uid[uid])
    assert not list((r.out / INCOMING).iterdir())


def test_orthanc_pushes_to_a_preset_node(receive: Callable[..., Receiver], orthanc: peers.Orthanc,
                                         archive: Archive, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[nodes.pacs]\nhost = "127.0.0.1"\nport = {orthanc.port}\ncalled_ae = "{orthanc.aet}"\n')
    r = receive("--config", str(cfg), "--node", "pacs")
    files = files_of(archive, "PHANTOM-002")
    orthanc.upload(files)
    orthanc.add_modality("receiver", AE, peers.HOST, r.port)
    patients = orthanc.rest("GET", "/patients")
    orthanc.rest("POST", "/modalities/receiver/store", {"Resources": patients, "Synchronous": True})
    r.wait_for(lambda: len(r.files()) == len(files), "all files filed")
    assert r.stop() == 0
    text = r.text()
    assert f"accepting only {orthanc.aet}@127.0.0.1" in text
    lines = [ln for ln in text.splitlines() if f" {orthanc.aet}@127.0.0.1: " in ln]
    counts = [int(ln.split(": ")[1].split()[0]) for ln in lines]  # Orthanc may use several associations
    assert sum(counts) == len(files) and all("into PHANTOM-002/;" in ln for ln in lines)
    assert f"receive: stopped; {len(files)} instances in {len(lines)} association" in text
    by_uid = {str(dcmread(p, stop_before_pixels=True, force=True).SOPInstanceUID): p for p in files}
    got = {str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in r.files()}
    assert got == set(by_uid)


def test_bad_options_are_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--allow", "A@"], "empty host after '@'"),
        (["--allow", "WAY-TOO-LONG-AE-TITLE"], "1-16 printable ASCII"),
        (["--node", "nope"], "no node [nodes.nope]"),
        (["--port", "70000"], "out of range"),
    ):
        res = subprocess.run([sys.executable, "-m", "dicomtools.core", "receive", "--path", str(tmp_path / "x"),
                              *args], capture_output=True, text=True, env=peers.peer_env(), timeout=60)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.stderr


def test_sigterm_finishes_the_instance_in_flight(receive: Callable[..., Receiver], big_series: list[Path]) -> None:
    """Half a data set sent, SIGTERM, then the other half: it is answered Success and filed whole."""
    import struct

    from pynetdicom.dsutils import encode

    from dicomtools.core.net.ul import PDU_DATA, request_association, store_rq

    r = receive()
    ds = dcmread(big_series[0])
    ct, uid, ts = str(ds.SOPClassUID), str(ds.SOPInstanceUID), "1.2.840.10008.1.2.1"
    data = encode(ds, False, True)
    assert data is not None
    a = request_association(peers.HOST, r.port, "RAWSCU", AE, [(ct, ts)])
    cx = a.context_for(ct, ts)
    assert cx is not None

    def pdv(chunk: bytes, last: bool) -> bytes:
        return struct.pack(">BBIIBB", PDU_DATA, 0, len(chunk) + 6, len(chunk) + 2, cx, 0x02 if last else 0x00) + chunk

    half = len(data) // 2
    a.conn.send_message(cx, store_rq(1, ct, uid))
    a.conn.send(pdv(data[:half], False))
    time.sleep(0.3)
    os.kill(r.proc.pid, signal.SIGTERM)
    r.wait_line("stopping: no new associations")
    time.sleep(0.3)
    assert not r.files()  # not filed before it is whole
    a.conn.send(pdv(data[half:], True))
    _, rsp = a.conn.read_command()
    assert struct.unpack("<H", rsp[0x00000900][:2])[0] == 0x0000
    assert r.proc.wait(30) == 0
    files = r.files()
    assert len(files) == 1 and same_dataset(files[0], big_series[0])
    assert "RAWSCU@127.0.0.1: 1 instance (BULK-TERM: 1)" in r.text() and "stopped by us" in r.text()
    a.conn.close()


def test_tls_from_the_preset(receive: Callable[..., Receiver], archive: Archive, tmp_path: Path) -> None:
    """storescu over TLS with a certificate our CA signed is filed; one from a rogue CA is turned away."""
    from tests.net.test_tls import make_pki

    pki = make_pki(tmp_path / "pki")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[receive]\nallow = ["STORESCU"]\n[receive.tls]\nenabled = true\nca = "{pki.ca}"\n'
                   f'cert = "{pki.server[0]}"\nkey = "{pki.server[1]}"\n')
    r = receive("--config", str(cfg))
    files = files_of(archive, "PHANTOM-001")[:5]
    tls = ["+tls", str(pki.client[1]), str(pki.client[0]), "+cf", str(pki.ca)]
    ok = send(r, files, "STORESCU", *tls)
    assert ok.returncode == 0, ok.stderr[-800:]
    rogue = send(r, files[:1], "STORESCU", "+tls", str(pki.rogue_server[1]), str(pki.rogue_server[0]),
                 "+cf", str(pki.ca))
    assert rogue.returncode != 0
    plain = send(r, files[:1], "STORESCU")
    assert plain.returncode != 0
    r.wait_line("TLS handshake failed", 2)
    assert r.stop() == 0
    text = r.text()
    assert f"TLS ({cfg}: [receive.tls])" in text
    assert "STORESCU@127.0.0.1: 5 instances (PHANTOM-001: 5)" in text
    assert len(r.files()) == 5


def test_hostile_patient_id_and_sigint(receive: Callable[..., Receiver], archive: Archive, tmp_path: Path) -> None:
    """A vendor file with a path-like Patient ID holding an escape sequence: a safe folder, a clean line."""
    plan = next(p for p in files_of(archive, "PHANTOM-002") if p.name == "RP.PLAN_A.dcm")
    ds = dcmread(plan)
    ds.PatientID = "../..\x1b[2J/etc"
    hostile = tmp_path / "hostile.dcm"
    ds.save_as(hostile)
    r = receive()
    assert send(r, [hostile]).returncode == 0
    r.wait_line("1 instance")
    os.kill(r.proc.pid, signal.SIGINT)  # Ctrl-C: the same clean stop as SIGTERM
    assert r.proc.wait(60) == 0
    text = r.text()
    assert "\x1b" not in text and "(../..\ufffd[2J/etc: 1)" in text
    (f,) = r.files()
    top = f.relative_to(r.out).parts[0]
    assert top.startswith("2J_etc-") and top.isprintable()  # cleaned, plus a hash of the original
    assert r.out in f.parents and "\x1b" not in str(f) and ".." not in f.relative_to(r.out).parts
    assert (r.out / top / MARKER).read_bytes().decode() == "../..\x1b[2J/etc"
    assert "receive: stopped; 1 instance in 1 association" in text


def test_bad_data_sets_are_refused_and_the_association_goes_on(receive: Callable[..., Receiver],
                                                               big_series: list[Path]) -> None:
    """Garbage, and a data set that is not the instance the request announced: 0xC000, nothing filed."""

    from pynetdicom.dsutils import encode

    from dicomtools.core.net.ul import request_association

    r = receive()
    ds = dcmread(big_series[1])
    ct, uid, ts = str(ds.SOPClassUID), str(ds.SOPInstanceUID), "1.2.840.10008.1.2.1"
    data = encode(ds, False, True)
    assert data is not None
    a = request_association(peers.HOST, r.port, "RAWSCU", AE, [(ct, ts)])
    cx = a.context_for(ct, ts)
    assert cx is not None
    status, comment = a.c_store(cx, ct, "1.2.3.4", b"\x08\x00\x16\x00garbage!")
    assert status == 0xC000
    status, comment = a.c_store(cx, ct, "1.2.3.4", data)  # announces 1.2.3.4, carries another UID
    assert status == 0xC000 and comment.startswith("SOP Instance UID differs from the C-STORE request")
    assert a.c_store(cx, ct, uid, data)[0] == 0x0000
    a.release()
    r.wait_line("RAWSCU@127.0.0.1:")
    assert r.stop() == 0
    assert "1 instance (BULK-TERM: 1) into BULK-TERM/; 2 failed" in r.text()
    assert len(r.files()) == 1 and not list((r.out / INCOMING).iterdir())


def test_c_echo_from_dcmtk(receive: Callable[..., Receiver]) -> None:
    r = receive("--allow", "ECHOSCU")
    ok = subprocess.run([peers.find_binary("echoscu"), "-aet", "ECHOSCU", "-aec", AE, peers.HOST, str(r.port)],
                        capture_output=True, env=peers.peer_env(), timeout=60)
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run([peers.find_binary("echoscu"), "-aet", "NOBODY", "-aec", AE, peers.HOST, str(r.port)],
                             capture_output=True, env=peers.peer_env(), timeout=60)
    assert refused.returncode != 0
    r.wait_line("ECHOSCU@127.0.0.1: 0 instances")
    assert r.stop() == 0 and "refused 'NOBODY'" in r.text() and not r.files()
