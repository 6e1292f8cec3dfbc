"""Process-level faults for ``retrieve``: Ctrl-C and a peer killed mid-transfer.

The temporary folder must be gone in both cases, and the exit code must say
the retrieve did not complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

COUNT = 2000
PID = "BULK-RETRIEVE"


@pytest.fixture(scope="module")
def bulk_orthanc(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[peers.Orthanc]:
    """One Orthanc for the module; the last test kills it."""
    work = tmp_path_factory.mktemp("bulk-orthanc")
    peer = peers.Orthanc.start(work / "orthanc", modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        files = write_ct_series(work / "src", COUNT, patient_id=PID)
        r = peers.storescu(peer.port, peer.aet, files)
        assert r.returncode == 0 and peer.instance_count() == COUNT
        yield peer
    finally:
        peer.stop()


def start(peer: peers.Orthanc, out: Path, scp_port: int, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "dicomtools.core", "retrieve", "--patientId", PID, "--path", str(out),
            "--hostName", peers.HOST, "--hostPort", str(peer.port), "--calledAet", peer.aet,
            "--callingAet", OUR_AE, "--scpPort", str(scp_port), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=peers.peer_env())


def wait_receiving(out: Path, proc: subprocess.Popen[str], n: int = 200) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        temps = [p for p in out.glob(".dicomtools-retrieve-*")] if out.exists() else []
        if temps and sum(1 for _ in os.scandir(temps[0])) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"retrieve ended early: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("nothing arrived")


def test_ctrl_c_removes_the_temporary_folder(bulk_orthanc: peers.Orthanc, tmp_path: Path, scp_port: int) -> None:
    out = tmp_path / "out"
    proc = start(bulk_orthanc, out, scp_port)
    wait_receiving(out, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not out.exists() or not list(out.glob(".dicomtools-retrieve-*"))


def test_ctrl_c_while_saving_anonymized_keeps_the_map_row(bulk_orthanc: peers.Orthanc, tmp_path: Path,
                                                          scp_port: int) -> None:
    """Interrupted while anonymized files are being written: the map row linking them is there.

    The anonymizer stages its files in a hidden folder and renames them into
    the tree at the end; the row is written before the first staged file, so
    whatever reached ``out`` is linked, and the hidden folders are gone.
    """
    out = tmp_path / "out"
    proc = start(bulk_orthanc, out, scp_port, "--anonymize", "--newPatientId", "ANON-1",
                 "--newPatientName", "ANON^ONE")
    end = time.monotonic() + 120
    while time.monotonic() < end:
        saved = [p for p in out.rglob("*.dcm") if ".dicomtools-retrieve-" not in str(p)] if out.exists() else []
        # staged (in the anonymizer's hidden folder) or already in the tree: the save has begun
        if saved:
            break
        if proc.poll() is not None:
            raise AssertionError(f"retrieve ended early: {proc.communicate()}")
        time.sleep(0.005)
    else:
        raise AssertionError("nothing anonymized was saved")
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rows = (out / "anonymization_map.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"{PID},") and ",ANON-1,ANON^ONE," in rows[1]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp or staging folder left
    assert len(list(out.rglob("*.dcm"))) < COUNT


def test_peer_killed_mid_retrieve(bulk_orthanc: peers.Orthanc, tmp_path: Path, scp_port: int) -> None:
    out = tmp_path / "out"
    proc = start(bulk_orthanc, out, scp_port)
    wait_receiving(out, proc)
    bulk_orthanc.kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "C-MOVE study" in err and ("connection" in err or "aborted" in err)
    assert not out.exists() or not list(out.glob(".dicomtools-retrieve-*"))
