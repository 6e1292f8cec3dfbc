"""Our Storage SCP: only the expected peer, sanitized names, received bytes written as sent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.files import split_meta
from dicomtools.core.net.storescp import StorageSCP, safe_uid_name
from dicomtools.core.net.ul import request_association
from dicomtools.core.phantom import write_ct_series
from tests.net import peers

pytestmark = pytest.mark.net

CT = "1.2.840.10008.5.1.4.1.1.2"
ELE = "1.2.840.10008.1.2.1"


def test_dcmtk_storescu_into_our_scp(tmp_path: Path) -> None:
    """storescu re-encodes what it sends, so compare data sets; bytes are checked below."""
    files = write_ct_series(tmp_path / "src", 50)
    with StorageSCP("OURSCP", tmp_path / "in", allowed_aes={"STORESCU"}, allowed_hosts={"127.0.0.1"}) as scp:
        r = peers.storescu(scp.port, "OURSCP", files)
        assert r.returncode == 0, r.stderr
        assert scp.count == 50
    for src in files:
        data = src.read_bytes()
        meta = split_meta(data)
        assert meta is not None
        got = (tmp_path / "in" / safe_uid_name(meta.sop_instance_uid)).read_bytes()
        got_meta = split_meta(got)
        assert got_meta is not None and got_meta.transfer_syntax_uid == meta.transfer_syntax_uid
        a, b = dcmread(src), dcmread(tmp_path / "in" / safe_uid_name(meta.sop_instance_uid))
        assert a == b
        assert b.file_meta.SourceApplicationEntityTitle == "STORESCU"
    assert not [p for p in (tmp_path / "in").iterdir() if p.name.startswith(".")]  # no temp files left


def test_received_bytes_written_as_sent(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "src", 20)
    with StorageSCP("OURSCP", tmp_path / "in") as scp:
        a = request_association(peers.HOST, scp.port, "ANY", "OURSCP", [(CT, ELE)])
        for src in files:
            data = src.read_bytes()
            meta = split_meta(data)
            assert meta is not None
            status, _ = a.c_store(a.context_for(CT, ELE) or 0, CT, meta.sop_instance_uid, data[meta.offset:])
            assert status == 0
        a.release()
    for src in files:
        data = src.read_bytes()
        meta = split_meta(data)
        assert meta is not None
        got = (tmp_path / "in" / safe_uid_name(meta.sop_instance_uid)).read_bytes()
        got_meta = split_meta(got)
        assert got_meta is not None
        assert got[got_meta.offset:] == data[meta.offset:]


def test_unexpected_calling_ae_is_refused(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "src", 2)
    with StorageSCP("OURSCP", tmp_path / "in", allowed_aes={"ORTHANC"}) as scp:
        r = peers.storescu(scp.port, "OURSCP", files, calling="INTRUDER")
        assert r.returncode != 0
        assert b"Calling AE Title Not Recognized" in r.stderr
        assert scp.count == 0 and "INTRUDER" in scp.stats.refused[0]
    assert list((tmp_path / "in").iterdir()) == []


def test_unexpected_host_is_refused(tmp_path: Path) -> None:
    with StorageSCP("OURSCP", tmp_path / "in", allowed_hosts={"10.9.8.7"}) as scp:
        with pytest.raises(NetError, match="rejected"):
            request_association(peers.HOST, scp.port, "ANY", "OURSCP", [(CT, ELE)])
        assert "127.0.0.1" in scp.stats.refused[0]


def test_wrong_called_ae_is_refused(tmp_path: Path) -> None:
    with StorageSCP("OURSCP", tmp_path / "in") as scp:
        with pytest.raises(NetError, match="called AE title not recognised"):
            request_association(peers.HOST, scp.port, "ANY", "NOTUS", [(CT, ELE)])


@pytest.mark.parametrize("uid", ["../../etc/passwd", "/tmp/evil", "1.2.3/../../x", "a" * 80, "1.2..3", ""])
def test_path_like_uid_never_becomes_a_path(tmp_path: Path, uid: str) -> None:
    name = safe_uid_name(uid)
    assert "/" not in name and ".." not in name and name.endswith(".dcm") and name.startswith("x")
    with StorageSCP("OURSCP", tmp_path / "in") as scp:
        a = request_association(peers.HOST, scp.port, "ANY", "OURSCP", [(CT, ELE)])
        status, _ = a.c_store(a.context_for(CT, ELE) or 0, CT, uid, b"\x08\x00\x18\x00UI\x02\x00x\x00")
        a.release()
    assert status == 0
    assert [p.name for p in (tmp_path / "in").iterdir()] == [name]
    assert not list(tmp_path.glob("*.dcm")) and not Path("/tmp/evil").exists()


def test_scp_socket_has_tcp_nodelay(tmp_path: Path) -> None:
    seen: list[int] = []
    scp = StorageSCP("OURSCP", tmp_path / "in")
    orig = scp._negotiate

    def spy(conn, host):  # type: ignore[no-untyped-def]
        seen.append(conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return orig(conn, host)

    scp._negotiate = spy  # type: ignore[method-assign]
    with scp:
        a = request_association(peers.HOST, scp.port, "ANY", "OURSCP", [(CT, ELE)])
        a.release()
    assert seen and seen[0] != 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with StorageSCP("A", tmp_path / "a") as first:
        with pytest.raises(NetError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            StorageSCP("B", tmp_path / "b", port=first.port).start()
