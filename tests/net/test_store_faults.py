"""Process-level faults for ``store``: the peer killed mid-transfer, Ctrl-C, parallel associations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dicomtools.core.net.files import split_meta
from dicomtools.core.net.store import read_status_file
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

COUNT = 3000


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    folder = tmp_path_factory.mktemp("bulk")
    paths = write_ct_series(folder, COUNT, patient_id="FAULT-001")
    uids = {split_meta(p.read_bytes()).sop_instance_uid for p in paths}  # type: ignore[union-attr]
    return folder, uids


def start_store(folder: Path, port: int, status: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "dicomtools.core", "store", "--path", str(folder), "--statusFileName", str(status),
            "--showMessages", "false", "--hostName", peers.HOST, "--hostPort", str(port), "--calledAet", "STORESCP",
            "--callingAet", OUR_AE, "--noCache", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=peers.peer_env())


def wait_for_files(folder: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(1 for _ in os.scandir(folder)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"store ended before {n} files arrived: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError(f"fewer than {n} files after {timeout} s")


def valid_uids(folder: Path) -> list[str]:
    out = []
    for p in folder.iterdir():
        data = p.read_bytes()
        meta = split_meta(data)
        if meta is not None and len(data) - meta.offset > 1000:  # complete data set (files are ~1.4 kB)
            out.append(meta.sop_instance_uid)
    return out


def test_peer_killed_mid_transfer_then_resume(tmp_path: Path, ct_folder: tuple[Path, set[str]]) -> None:
    folder, all_uids = ct_folder
    status = tmp_path / "status.txt"
    first = peers.StoreSCP.start(tmp_path / "first")
    proc = start_store(folder, first.port, status)
    try:
        wait_for_files(first.out_dir, 200, proc)
        first.kill()  # SIGKILL by PID: no release, no goodbye
        out, err = proc.communicate(timeout=60)
    finally:
        first.kill()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (out, err)
    assert "stopped:" in err and "rerun" not in out
    done_first, _ = read_status_file(status)
    assert 0 < len(done_first) < COUNT
    assert done_first <= set(valid_uids(first.out_dir))  # everything confirmed really arrived

    second = peers.StoreSCP.start(tmp_path / "second", port=first.port)
    try:
        proc = start_store(folder, second.port, status)
        out, err = proc.communicate(timeout=120)
    finally:
        second.stop()
    assert proc.returncode == 0, err
    assert f"{len(done_first)} skipped (already stored)" in out
    got_second = valid_uids(second.out_dir)
    assert len(got_second) == len(set(got_second))  # nothing twice in the resumed run
    assert not set(got_second) & done_first  # nothing confirmed is sent again
    assert set(got_second) | done_first == all_uids
    lines = status.read_text().splitlines()
    assert len(lines) == len(set(lines)) == COUNT  # every instance confirmed exactly once
    # only the instance in flight at the kill may have reached the first peer unconfirmed
    assert len(set(valid_uids(first.out_dir)) - done_first) <= 1


def test_ctrl_c_stops_after_the_file_in_flight(tmp_path: Path, ct_folder: tuple[Path, set[str]]) -> None:
    folder, all_uids = ct_folder
    status = tmp_path / "status.txt"
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        proc = start_store(folder, scp.port, status)
        wait_for_files(scp.out_dir, 200, proc)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        assert "interrupted" in err
        text = status.read_text()
        assert text.endswith("\n")
        done, _ = read_status_file(status)
        assert 0 < len(done) < COUNT
        arrived = set(valid_uids(scp.out_dir))
        assert done <= arrived and len(arrived - done) <= 1
        proc = start_store(folder, scp.port, status)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert set(valid_uids(scp.out_dir)) == all_uids
    finally:
        scp.stop()


def test_parallel_associations(tmp_path: Path, ct_folder: tuple[Path, set[str]]) -> None:
    folder, all_uids = ct_folder
    scp = peers.StoreSCP.start(tmp_path / "scp", extra=["--fork"])
    try:
        proc = start_store(folder, scp.port, tmp_path / "status.txt", "--associations", "3")
        out, err = proc.communicate(timeout=120)
    finally:
        scp.stop()
    assert proc.returncode == 0, err
    assert f"{COUNT} stored" in out
    assert set(valid_uids(scp.out_dir)) == all_uids
