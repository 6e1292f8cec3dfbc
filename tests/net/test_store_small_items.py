"""Smaller store/association promises, each against dcmtk storescp on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.hostile import write_node_config

pytestmark = pytest.mark.net


def run_store(cfg: Path, folder: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["store", "--config", str(cfg), "--node", "peer", "--path", str(folder), "--noCache", *extra])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def received_uids(scp: peers.StoreSCP) -> list[str]:
    return [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in scp.out_dir.iterdir()]


def test_max_pdu_from_the_preset_is_announced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scp = peers.StoreSCP.start(tmp_path / "scp", extra=["-d"])
    try:
        cfg = write_node_config(tmp_path / "c.toml", scp.port, scp.aet, peers.free_port(), max_pdu=20480)
        write_ct_series(tmp_path / "src", 2, patient_id="PDU-1")
        rc, text = run_store(cfg, tmp_path / "src", capsys)
        assert rc == 0, text
        assert main(["echo", "--config", str(cfg), "--node", "peer"]) == 0
    finally:
        scp.stop()
    theirs = [line for line in scp.log_text().splitlines() if "Their Max PDU Receive Size" in line]
    # wait_port's probe announces nothing (0); the store (lean UL) and the echo (pynetdicom) 20480, never 4 MiB
    assert theirs[0].endswith(" 0")
    assert len(theirs) >= 3 and all(line.endswith(" 20480") for line in theirs[1:]), theirs


def test_two_associations_against_a_node_that_takes_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """storescp without --fork serves one association at a time: fall back to one and say so."""
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        cfg = write_node_config(tmp_path / "c.toml", scp.port, scp.aet, peers.free_port(), timeout=3.0)
        files = write_ct_series(tmp_path / "src", 30, patient_id="ONE-AT-A-TIME")
        rc, text = run_store(cfg, tmp_path / "src", capsys, "--associations", "2")
    finally:
        scp.stop()
    assert rc == 0, text
    assert "took only 1 association(s) at a time; continuing with 1 instead of 2" in text
    assert sorted(received_uids(scp)) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)


def test_same_uid_in_two_different_files_sends_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    files = write_ct_series(src / "a", 4, patient_id="DUP-1")
    twin = src / "b" / "changed.dcm"
    twin.parent.mkdir(parents=True)
    ds = dcmread(files[0])
    ds.SliceLocation = 999.0  # same UID, different content
    ds.save_as(twin)
    shutil.copy(files[1], src / "b" / "identical.dcm")  # same UID, same bytes: one instance
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        cfg = write_node_config(tmp_path / "c.toml", scp.port, scp.aet, peers.free_port())
        rc, text = run_store(cfg, src, capsys)
    finally:
        scp.stop()
    assert rc == 0, text
    uid0 = str(ds.SOPInstanceUID)
    assert f"warning: {files[0]}: not sent: SOP Instance UID {uid0} is also in {twin} with different content" in text
    assert f"warning: {twin}: not sent: SOP Instance UID {uid0} is also in {files[0]}" in text
    assert "2 left out" in text
    got = received_uids(scp)
    assert uid0 not in got
    assert sorted(got) == sorted(str(dcmread(f).SOPInstanceUID) for f in files[1:])
