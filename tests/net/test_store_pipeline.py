"""store encodes the next request while the peer works and counts an answer after the next
request left: the status file must still hold every confirmed instance before anything else
goes out (a kill between the two must not lose a confirmation), and a refused instance never.
The peer is a pynetdicom storage SCP; our status file is read at the moment each request is
written to the socket (the peer's own view of it would race with our next write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomtools.core.cli.main import main
from dicomtools.core.net import ul
from dicomtools.core.net.store import read_status_file
from dicomtools.core.phantom import write_ct_series
from tests.net import hostile

pytestmark = pytest.mark.net


class RefusingPeer(hostile.StoragePeer):
    """Refuses ``refuse``, confirms the rest, notes its answers in order."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse
        self.answers: list[tuple[str, int]] = []

    def _store(self, event: Any) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        code = 0xA700 if uid == self.refuse else 0x0000
        self.answers.append((uid, code))
        return code


def test_each_confirmation_is_in_the_status_file_before_the_next_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom import dcmread

    files = write_ct_series(tmp_path / "src", 12, patient_id="PIPE-1")
    uids = [str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    status = tmp_path / "status.txt"
    seen: list[set[str]] = []  # the status file's UIDs as each C-STORE request left
    send_framed = ul.Connection.send_framed

    def watched(self: ul.Connection, parts: list[bytes | memoryview]) -> None:
        if bytes(parts[0][:1]) == b"\x04":  # P-DATA: a request (we send no other)
            seen.append(read_status_file(status)[0])
        send_framed(self, parts)

    monkeypatch.setattr(ul.Connection, "send_framed", watched)
    with RefusingPeer(refuse=uids[5]) as peer:
        cfg = hostile.write_node_config(tmp_path / "c.toml", peer.port, peer.aet, hostile.free_port())
        rc = main(["store", "--path", str(tmp_path / "src"), "--statusFileName", str(status), "--noCache",
                   "--showMessages", "false", "--config", str(cfg), "--node", "peer"])
        cap = capsys.readouterr()
    assert rc == 1, cap.err  # one instance refused
    assert "11 stored" in cap.out and "1 failed" in cap.out, cap.out
    assert "failed: " in cap.err and "out of resources" in cap.err
    assert sorted(u for u, _ in peer.answers) == sorted(uids)
    confirmed: set[str] = set()
    for in_file, (uid, code) in zip(seen, peer.answers, strict=True):
        assert in_file == confirmed, uid  # every earlier success, nothing else
        if code == 0:
            confirmed.add(uid)
    done, _ = read_status_file(status)
    assert done == set(uids) - {uids[5]}
