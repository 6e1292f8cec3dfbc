"""``kill -9`` of the tool mid-store and mid-retrieve, then a rerun: nothing lost, nothing twice.

SIGKILL runs no cleanup at all, so these tests prove what the design
promises without it: confirmed instances are in the status file before the
next one is sent, files appear under their final name only complete (temp
name + rename), and a rerun removes what the dead run left (its temp
folder's lock died with it) and finishes the job.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.net.retrieve import TEMP_PREFIX, remove_stale_temp_folders
from dicomtools.core.net.store import read_status_file
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

COUNT = 2000


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dicomtools.core", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=peers.peer_env())


def node(peer: peers.Orthanc) -> list[str]:
    return ["--hostName", peers.HOST, "--hostPort", str(peer.port), "--calledAet", peer.aet, "--callingAet", OUR_AE]


def wait_until(cond: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"ended before {what}: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError(f"not {what} after {timeout} s")


def kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def orthanc_uids(peer: peers.Orthanc) -> Counter[str]:
    return Counter(i["MainDicomTags"]["SOPInstanceUID"] for i in peer.rest("GET", "/instances?expand"))


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out, err)
    return out, err


# ------------------------------------------------------------------ store


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    folder = tmp_path_factory.mktemp("kill-store")
    files = write_ct_series(folder, COUNT, patient_id="KILL-STORE")
    return folder, {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}


def status_lines(status: Path) -> list[str]:
    return status.read_text().splitlines() if status.exists() else []


def test_kill9_mid_store_then_rerun(orthanc: peers.Orthanc, ct: tuple[Path, set[str]], tmp_path: Path) -> None:
    folder, uids = ct
    status = tmp_path / "status.txt"
    args = ["store", "--path", str(folder), "--statusFileName", str(status), "--showMessages", "false",
            "--noCache", *node(orthanc)]
    proc = cli(*args)
    wait_until(lambda: len(status_lines(status)) >= 300, proc, "300 instances confirmed")
    kill9(proc)
    done, _ = read_status_file(status)
    assert 300 <= len(done) < COUNT
    at_peer = orthanc_uids(orthanc)
    assert done <= set(at_peer)  # every confirmed instance really is there
    assert len(set(at_peer) - done) <= 1  # at most the one in flight arrived unconfirmed

    out, _ = finish(cli(*args))
    assert f"{len(done)} skipped (already stored)" in out
    at_peer = orthanc_uids(orthanc)
    assert set(at_peer) == uids and set(at_peer.values()) == {1}
    assert orthanc.instance_count() == COUNT
    done, _ = read_status_file(status)
    assert done == uids
    # every instance confirmed once (a line torn by the kill is the only other thing allowed)
    per_uid = Counter(line.split("\t")[0] for line in status_lines(status) if "\t" in line)
    assert sum(1 for n in per_uid.values() if n > 1) <= 1


# ------------------------------------------------------------------ retrieve

PID = "KILL-RETRIEVE"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[tuple[peers.Orthanc, set[str]]]:
    work = tmp_path_factory.mktemp("kill-retrieve")
    peer = peers.Orthanc.start(work / "orthanc", modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        files = write_ct_series(work / "src", COUNT, patient_id=PID, seed=7)
        r = peers.storescu(peer.port, peer.aet, files)
        assert r.returncode == 0 and peer.instance_count() == COUNT
        yield peer, {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
    finally:
        peer.stop()


def temp_folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)] if out.exists() else []


def finals(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []


def check_saved(out: Path, uids: set[str], patient_id: str = PID) -> None:
    """Exactly the patient's instances, once each, complete, no temp folder or file left."""
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    seen: Counter[str] = Counter()
    for p in out.iterdir():
        ds = dcmread(p)
        assert p.name == f"CT.{ds.SOPInstanceUID}.dcm" and ds.PatientID == patient_id
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
        seen[str(ds.SOPInstanceUID)] += 1
    assert set(seen) == uids and set(seen.values()) == {1}


def test_kill9_while_receiving_then_rerun(loaded: tuple[peers.Orthanc, set[str]], tmp_path: Path,
                                          scp_port: int) -> None:
    peer, uids = loaded
    out = tmp_path / "out"
    args = ["retrieve", "--patientId", PID, "--path", str(out), "--scpPort", str(scp_port), *node(peer)]
    proc = cli(*args)
    wait_until(lambda: bool(temp_folders(out)) and len(os.listdir(temp_folders(out)[0])) >= 200, proc,
               "200 instances received")
    kill9(proc)
    stale = temp_folders(out)
    assert len(stale) == 1 and (stale[0] / ".lock").exists()
    assert finals(out) == []  # nothing reaches the folder before everything arrived
    # The private temporary folder is hidden and never a result: arrivals are written there under
    # their names directly (arrival.write_new), so the one being written when the kill came may be
    # short. Everything in it is the rerun's to discard.
    assert stale[0].name.startswith(".")

    _, err = finish(cli(*args, "--force"))
    assert temp_folders(out) == []  # the dead run's temp folder is gone too
    check_saved(out, uids)


def test_kill9_while_saving_then_rerun(loaded: tuple[peers.Orthanc, set[str]], tmp_path: Path,
                                       scp_port: int) -> None:
    """With a new Patient ID every file is rewritten: killed in that phase, no half file in ``out``."""
    peer, uids = loaded
    out = tmp_path / "out"
    args = ["retrieve", "--patientId", PID, "--path", str(out), "--scpPort", str(scp_port),
            "--newPatientId", "NEW-9", "--newPatientName", "NEW^NINE", *node(peer)]
    proc = cli(*args)
    wait_until(lambda: len(finals(out)) >= 100, proc, "100 files saved", timeout=120)
    kill9(proc)
    saved = finals(out)
    assert 100 <= len(saved) < COUNT
    for p in saved:  # under a final name: complete and already renamed
        ds = dcmread(p)
        assert ds.PatientID == "NEW-9" and len(ds.PixelData) == ds.Rows * ds.Columns * 2
    assert not [p for p in out.iterdir() if p.name.startswith(".part-")]

    finish(cli(*args, "--force"))
    check_saved(out, uids, "NEW-9")


def test_stale_temp_folders_only_when_their_owner_is_gone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = out / f"{TEMP_PREFIX}dead"
    alive = out / f"{TEMP_PREFIX}alive"
    young = out / f"{TEMP_PREFIX}young"  # no lock file yet: a run that just started
    old = out / f"{TEMP_PREFIX}old"
    for d in (dead, alive, young, old):
        d.mkdir(parents=True)
        (d / "x.dcm").write_bytes(b"x")
    (dead / ".lock").write_bytes(b"")
    (alive / ".lock").write_bytes(b"")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    with open(alive / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a concurrent retrieve
        removed = remove_stale_temp_folders(out)
    assert sorted(removed) == sorted([dead.name, old.name])
    assert sorted(p.name for p in out.iterdir()) == sorted([alive.name, young.name])
