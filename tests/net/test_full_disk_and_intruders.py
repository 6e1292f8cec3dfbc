"""A full disk names itself; an uninvited sender is a problem, never silent.

Full disk: a real 16 KiB tmpfs where this process may mount one (root, as in
CI here), else a write hook raising ENOSPC after a few files; the hook
variant always runs too, so both code paths are covered on a machine that
can mount.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.net import arrival
from dicomtools.core.net.store_status import _StatusFile
from dicomtools.core.phantom import write_ct_series
from tests.net import hostile, peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "DISK-1"
COUNT = 20


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return hostile.load(write_ct_series(tmp_path_factory.mktemp("disk-src"), COUNT, patient_id=PID))


@pytest.fixture
def peer(datasets: list[Any], tmp_path: Path) -> Iterator[tuple[hostile.QRPeer, Path]]:
    scp_port = hostile.free_port()
    qr = hostile.QRPeer(datasets, {OUR_AE: (hostile.HOST, scp_port)}).start()
    try:
        yield qr, hostile.write_node_config(tmp_path / "config.toml", qr.port, qr.aet, scp_port, timeout=10.0)
    finally:
        qr.stop()


def retrieve(cfg: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["retrieve", "--config", str(cfg), "--node", "peer", "--patientId", PID, "--path", str(out),
               "--force", *extra])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def enospc_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The SCP's file writes succeed ``n`` times, then fail as on a full disk."""
    real = arrival.atomic_writer
    calls = {"n": 0}

    @contextlib.contextmanager
    def writer(path: Any, durable: bool = False) -> Iterator[Any]:
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        with real(path, durable) as fh:
            yield fh

    monkeypatch.setattr(arrival, "atomic_writer", writer)
    real_create = arrival._create

    def create(path: Path) -> int:  # C-GET writes its arrivals straight into the temporary folder
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_create(path)

    monkeypatch.setattr(arrival, "_create", create)


@contextlib.contextmanager
def small_disk(path: Path, monkeypatch: pytest.MonkeyPatch, size: str = "16k") -> Iterator[str]:
    """A real tmpfs of ``size`` at ``path`` when mounting is allowed, else the ENOSPC hook."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        enospc_after(monkeypatch, 3)
        yield "hook"
        return
    try:
        yield "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def assert_full_disk_named(rc: int, text: str, out: Path) -> None:
    assert rc == 1, text
    assert f"No space left on device in {out}" in text, text
    assert "AE title" not in text and "SCP role" not in text, text
    assert text.count("cannot write") <= 1, text  # one line, not one per instance
    assert "Traceback" not in text
    assert not list(out.glob(".dicomtools-retrieve-*"))
    assert not list(out.glob("CT.*"))  # nothing half-saved


@pytest.mark.parametrize("method", ["move", "get"])
def test_full_disk_hook(peer: tuple[hostile.QRPeer, Path], tmp_path: Path, method: str,
                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    enospc_after(monkeypatch, 5)
    out = tmp_path / "out"
    rc, text = retrieve(peer[1], out, capsys, *(["--useGet"] if method == "get" else []))
    assert_full_disk_named(rc, text, out)


@pytest.mark.parametrize("method", ["move", "get"])
def test_full_disk_small_tmpfs(peer: tuple[hostile.QRPeer, Path], tmp_path: Path, method: str,
                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small"
    with small_disk(out, monkeypatch):
        rc, text = retrieve(peer[1], out, capsys, *(["--useGet"] if method == "get" else []))
        assert_full_disk_named(rc, text, out)


def test_status_file_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    write_ct_series(src, 10, patient_id=PID)
    calls = {"n": 0}
    real_add = _StatusFile.add

    def add(self: _StatusFile, uid: str, path: str) -> None:
        calls["n"] += 1
        if calls["n"] > 4:
            assert self._fh is not None
            self._fh.write("x" * 10)
            raise_from = OSError(errno.ENOSPC, "No space left on device")
            from dicomtools.core.net.store_status import StatusFileError

            raise StatusFileError(f"cannot write the status file {self.path}: {raise_from.strerror}")
        real_add(self, uid, path)

    monkeypatch.setattr(_StatusFile, "add", add)
    status = tmp_path / "status.txt"
    with hostile.StoragePeer() as node:
        rc = main(["store", "--path", str(src), "--noCache", "--statusFileName", str(status), "--hostName",
                   peers.HOST, "--hostPort", str(node.port), "--calledAet", node.aet, "--callingAet", OUR_AE])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"cannot write the status file {status}: No space left on device" in err
    assert "rerun with the same --statusFileName" in err
    assert "Traceback" not in err


def test_status_file_real_enospc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/full answers every write with ENOSPC: the status file's own write path, not a hook."""
    src = tmp_path / "src"
    write_ct_series(src, 3, patient_id=PID)
    sf = _StatusFile(tmp_path / "s.txt")
    sf._fh = open("/dev/full", "a", encoding="utf-8")  # noqa: SIM115
    from dicomtools.core.net.store_status import StatusFileError

    with pytest.raises(StatusFileError, match="No space left on device"):
        sf.add("1.2.3", "x.dcm")
    sf.close()


def test_intruder_adds_an_instance(peer: tuple[hostile.QRPeer, Path], datasets: list[Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A process calling our SCP with the node's AE title adds one instance of the same patient."""
    qr, cfg = peer
    extra = hostile.load(write_ct_series(tmp_path / "extra", 1, patient_id=PID, seed=7))
    qr.faults = hostile.MoveFaults(intruder_ae=qr.aet, intruder_sends=extra)
    rc, text = retrieve(cfg, tmp_path / "out", capsys)
    assert rc == 1, text
    assert f"{COUNT + 1} instances arrived, the node reported {COUNT}" in text
    assert "another sender" in text


def test_modified_second_copy_is_not_kept(peer: tuple[hostile.QRPeer, Path], datasets: list[Any],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qr, cfg = peer
    import copy

    forged = copy.deepcopy(datasets[0])
    forged.PatientName = "FORGED^COPY"
    qr.faults = hostile.MoveFaults(report=COUNT, extra=[forged])
    out = tmp_path / "out"
    rc, text = retrieve(cfg, out, capsys)
    assert rc == 1, text
    uid = str(datasets[0].SOPInstanceUID)
    assert f"instance {uid} arrived a second time with different content" in text
    kept = dcmread(next(out.glob(f"*{uid}.dcm")))
    assert str(kept.PatientName) == str(datasets[0].PatientName)  # the first copy, not the forged one
