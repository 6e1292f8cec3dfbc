"""What ``store`` puts on the wire: P-DATA framing when fragments are gathered into few writes,
files nobody here wrote arriving byte-identical through a peer with a small maximum PDU, and
a plain-TCP store that loads no TLS code (an import assertion, not a timing one)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomtools.core.net.files import split_meta
from dicomtools.core.net.ul import PDU_DATA, Connection
from dicomtools.core.phantom import write_ct_series
from tests.net import peers

pytestmark = pytest.mark.net

# pydicom's own test files: uncompressed, JPEG, JPEG 2000, overlays, a waveform (30 KB to 320 KB)
PYDICOM_FILES = ["CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm", "waveform_ecg.dcm",
                 "examples_palette.dcm", "SC_rgb_jpeg_dcmd.dcm", "examples_jpeg2k.dcm", "examples_rgb_color.dcm"]


class _Dribble:
    """A socket whose ``sendmsg`` writes at most ``limit`` bytes per call (forces partial writes)."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._sock = sock
        self.limit = limit
        self.calls = 0

    def sendmsg(self, buffers: list[Any]) -> int:
        self.calls += 1
        out, room = [], self.limit
        for b in buffers:
            view = memoryview(b)[:room]
            out.append(view)
            room -= len(view)
            if not room:
                break
        return self._sock.sendmsg(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _read_pdvs(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(PDU length, context ID, message control header, value) for every PDV in ``data``."""
    out, off = [], 0
    while off < len(data):
        pdu_type, _, length = struct.unpack_from(">BBI", data, off)
        assert pdu_type == PDU_DATA
        end, off = off + 6 + length, off + 6
        while off < end:
            item_len, cx, header = struct.unpack_from(">IBB", data, off)
            out.append((length, cx, header, data[off + 6 : off + 4 + item_len]))
            off += 4 + item_len
    return out


def test_gathered_fragments_survive_partial_writes() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    received = bytearray()

    def reader() -> None:
        while chunk := server.recv(65536):
            received.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    dataset = bytes(range(256)) * 1200 + b"end"  # 307,203 bytes: odd, not a multiple of the fragment
    command = b"C" * 150
    dribble = _Dribble(client, 777)
    conn = Connection(dribble, peer_max_pdu=4096)  # type: ignore[arg-type]
    conn.send_message(7, command, dataset)
    client.shutdown(socket.SHUT_WR)
    thread.join(10)
    conn.close()
    server.close()
    listener.close()
    assert dribble.calls > len(dataset) // 777  # the partial-write path really ran
    pdvs = _read_pdvs(bytes(received))
    assert all(length <= 4096 for length, *_ in pdvs)
    assert {cx for _, cx, _, _ in pdvs} == {7}
    commands = [p for p in pdvs if p[2] & 0x01]
    data = [p for p in pdvs if not p[2] & 0x01]
    assert b"".join(v for *_, v in commands) == command and commands[-1][2] == 0x03
    assert b"".join(v for *_, v in data) == dataset
    assert [h for _, _, h, _ in data] == [0x00] * (len(data) - 1) + [0x02]


def test_pydicom_files_arrive_byte_identical_through_a_4k_pdu_peer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in PYDICOM_FILES:
        path = get_testdata_file(name)
        assert path is not None, name
        shutil.copy(path, src / name)
    scp = peers.StoreSCP.start(tmp_path / "scp", extra=["--max-pdu", "4096"])
    try:
        done = subprocess.run([sys.executable, "-m", "dicomtools.core", "store", "--path", str(src),
                               "--hostName", peers.HOST, "--hostPort", str(scp.port), "--calledAet", scp.aet,
                               "--noCache", "--includeAll", "--showMessages", "false"],
                              capture_output=True, text=True, timeout=120, env=peers.peer_env())
    finally:
        scp.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    got = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
           for p in scp.out_dir.rglob("*") if p.is_file()}
    assert len(got) == len(PYDICOM_FILES)
    for name in PYDICOM_FILES:
        raw = (src / name).read_bytes()
        meta = split_meta(raw)
        assert meta is not None
        uid = str(dcmread(src / name, stop_before_pixels=True).SOPInstanceUID)
        out = got[uid].read_bytes()
        out_meta = split_meta(out)
        assert out_meta is not None
        assert out[out_meta.offset:] == raw[meta.offset:], name


PROBE = """
import json, sys
from dicomtools.core.cli.main import main
code = main(sys.argv[1:])
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def test_plain_tcp_store_loads_no_tls_code(tmp_path: Path) -> None:
    """``ssl`` (OpenSSL) costs ~5 ms of start-up; only a TLS node needs it."""
    src = tmp_path / "src"
    write_ct_series(src, 3, patient_id="NOTLS-1")
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
        done = subprocess.run([sys.executable, "-c", PROBE, "store", "--path", str(src), "--hostName", peers.HOST,
                               "--hostPort", str(scp.port), "--calledAet", scp.aet, "--noCache", "--includeAll",
                               "--showMessages", "false"], capture_output=True, text=True, env=env, timeout=120)
    finally:
        scp.stop()
    line = [x for x in done.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr
    result = json.loads(line[-1][len("PROBE "):])
    assert result["code"] == 0, done.stdout + done.stderr
    assert "3 stored" in done.stdout
    assert "ssl" not in result["modules"] and "_ssl" not in result["modules"]
