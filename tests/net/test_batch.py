"""Batch retrieve over a patient list (text, CSV, hand-off JSON) from a real Orthanc and dcmqrscp."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.net.retrieve import select
from dicomtools.core.tree import build_forest
from tests.net import peers
from tests.net.conftest import OUR_AE, Archive

pytestmark = pytest.mark.net

P1, P2 = "PHANTOM-001", "PHANTOM-002"


def expected(archive: Archive, pid: str, plans: list[str] | None = None) -> set[str]:
    forest = build_forest([i for i in archive.sendable() if i.patient_id == pid])
    selected, _, problems = select(forest, plans or [], False)
    assert not problems
    return {i.sop_instance_uid for i in selected}


def uids_in(folder: Path) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in folder.rglob("*") if p.is_file()}


def batch(peer: peers.Peer, listfile: Path, out: Path, scp_port: int, *extra: str) -> int:
    return main(["retrieve", "--patientList", str(listfile), "--path", str(out), "--hostName", peers.HOST,
                 "--hostPort", str(peer.port), "--calledAet", peer.aet, "--callingAet", OUR_AE,
                 "--scpPort", str(scp_port), *extra])


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_text_list_one_unknown_then_rerun_skips_then_force_redoes(
        orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path, scp_port: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    lst = tmp_path / "patients.txt"
    lst.write_text(f"# from the ward list\n{P1}\n\nNOBODY 7\n{P2}\n")
    out = tmp_path / "out"
    assert batch(orthanc_loaded, lst, out, scp_port) == 1
    text = capsys.readouterr().out
    assert uids_in(out / P1) == expected(archive, P1)
    assert uids_in(out / P2) == expected(archive, P2)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [P1, P2]
    assert "[2/3] NOBODY 7: failed: patient 'NOBODY 7' not found" in text
    table = text[text.index("\npatient ") + 1:]
    assert table.splitlines()[0].split() == ["patient", "plans", "instances", "seconds", "result"]
    row1 = next(r for r in table.splitlines() if r.startswith(P1))
    assert row1.split()[1:3] == ["all", str(len(expected(archive, P1)))] and row1.endswith("ok")
    assert "2 retrieved, 0 skipped (complete), 1 failed, 0 not done" in text

    before = snapshot(out / P1) | {f"2/{k}": v for k, v in snapshot(out / P2).items()}
    assert batch(orthanc_loaded, lst, out, scp_port) == 1  # the unknown one still fails
    text = capsys.readouterr().out
    assert f"[1/3] {P1}: skipped, complete" in text and f"[3/3] {P2}: skipped, complete" in text
    row1 = next(r for r in text.splitlines() if r.startswith(P1))
    assert row1.split()[1:3] == ["all", str(len(expected(archive, P1)))] and row1.endswith("skipped (complete)")
    assert "0 retrieved, 2 skipped (complete), 1 failed" in text
    after = snapshot(out / P1) | {f"2/{k}": v for k, v in snapshot(out / P2).items()}
    assert after == before  # files untouched

    lst.write_text(f"{P1}\n")
    assert batch(orthanc_loaded, lst, out, scp_port, "--force") == 0
    assert uids_in(out / P1) == expected(archive, P1)
    assert set(snapshot(out / P1).values()).isdisjoint(before.values())  # rewritten


def test_csv_plans_per_patient_with_get_in_parallel(orthanc_loaded: peers.Orthanc, archive: Archive,
                                                    tmp_path: Path, scp_port: int,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    lst = tmp_path / "list.csv"
    lst.write_text(f"PatientId;PlanId\n{P1};PLAN_A\n{P1};QA_A\nUNKNOWN-9;PLAN_A\n{P2};\n")
    out = tmp_path / "out"
    assert batch(orthanc_loaded, lst, out, scp_port, "--useGet", "--parallel", "2", "--showTree") == 1
    text = capsys.readouterr().out
    assert f"Patient: {P1} (PHANTOM^ALPHA)" in text and "RT-Plan: QA_A" in text
    assert text.count("RT-Plan: PLAN_B") == 1  # PHANTOM-002 (whole patient) only
    assert uids_in(out / P1) == expected(archive, P1, ["PLAN_A", "QA_A"])
    assert uids_in(out / P2) == expected(archive, P2)
    assert "UNKNOWN-9: failed: patient 'UNKNOWN-9' not found" in text
    assert "(CSV list" in text and "C-GET" in text
    # a different plan selection for a complete patient is not silently skipped
    lst.write_text(f"PatientId,PlanId\n{P1},PLAN_B\n")
    assert batch(orthanc_loaded, lst, out, scp_port, "--useGet") == 1
    assert "holds an earlier retrieve of other plans" in capsys.readouterr().out


def handoff(path: Path, patients: list[tuple[str, bool, list[tuple[str, bool]]]]) -> Path:
    data = {"Patients": [
        {"PatientId": pid, "IsSelected": sel, "HasObjectives": False, "ObjectiveFiles": [],
         "Plans": [{"PlanId": plan, "CourseId": "C1", "IsSelected": psel} for plan, psel in plans]}
        for pid, sel, plans in patients]}
    path.write_text(json.dumps(data, indent=2))
    return path


def test_handoff_json_with_anonymize_numbers_in_list_order(orthanc_loaded: peers.Orthanc, archive: Archive,
                                                            tmp_path: Path, scp_port: int,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lst = handoff(tmp_path / "handoff.json", [
        (P2, True, [("PLAN_A", True), ("PLAN_B", False)]),
        ("GHOST-1", True, []),
        ("NOT-CHOSEN", False, [("PLAN_A", True)]),
        (P1, True, [("PLAN_B", False)]),  # no selected plan: the whole patient
    ])
    out = tmp_path / "anon"
    rc = batch(orthanc_loaded, lst, out, scp_port, "--anonymize", "--newPatientId", "STUDY",
               "--newPatientName", "TRIAL")
    captured = capsys.readouterr()
    assert rc == 1, captured.err
    assert "GHOST-1" in captured.out and "NOT-CHOSEN" not in captured.out
    assert sorted(p.name for p in out.iterdir()) == [".dicomtools-batch", "STUDY-01", "STUDY-03",
                                                     "anonymization_map.csv"]
    originals = expected(archive, P2, ["PLAN_A"]) | expected(archive, P1)
    for folder, want_id, want_name, n in (("STUDY-01", "STUDY-01", "TRIAL^01", len(expected(archive, P2, ["PLAN_A"]))),
                                          ("STUDY-03", "STUDY-03", "TRIAL^03", len(expected(archive, P1)))):
        files = [p for p in (out / folder).rglob("*.dcm")]
        assert len(files) == n
        for p in files:
            ds = dcmread(p, stop_before_pixels=True)
            assert ds.PatientID == want_id and str(ds.PatientName) == want_name
            assert str(ds.SOPInstanceUID) not in originals
    rows = list(csv.reader((out / "anonymization_map.csv").open()))
    assert rows[0][:4] == ["original_patient_id", "original_patient_name", "new_patient_id", "new_patient_name"]
    assert [r[:4] for r in rows[1:]] == [[P2, "PHANTÖM^BRAVO", "STUDY-01", "TRIAL^01"],
                                         [P1, "PHANTOM^ALPHA", "STUDY-03", "TRIAL^03"]]
    assert "sensitive" in captured.err
    # rerun: same numbers, nothing redone, no new map rows
    assert batch(orthanc_loaded, lst, out, scp_port, "--anonymize", "--newPatientId", "STUDY",
                 "--newPatientName", "TRIAL") == 1
    assert "[3/3] PHANTOM-001 -> STUDY-03: skipped" in capsys.readouterr().out
    assert len(list(csv.reader((out / "anonymization_map.csv").open()))) == 3


def test_bad_list_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = tmp_path / "l.json"
    lst.write_text('{"Patients": [{"PatientId": "A", "IsSelected": false}]}')
    rc = main(["retrieve", "--patientList", str(lst), "--path", str(tmp_path / "o"), "--hostName", peers.HOST,
               "--hostPort", "1", "--calledAet", "X"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no selected patient in the list" in err
    assert not (tmp_path / "o").exists()
    for args, message in ((["--patientList", str(lst), "--patientId", "A"], "not both"),
                          ([], "give --patientId ID or --patientList FILE"),
                          (["--patientList", str(lst), "--planId", "P"], "put the plans in the list")):
        rc = main(["retrieve", *args, "--path", str(tmp_path / "o"), "--hostName", peers.HOST, "--hostPort", "1",
                   "--calledAet", "X"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, err


@pytest.fixture(scope="module")
def qrscp(tmp_path_factory: pytest.TempPathFactory, archive: Archive, scp_port: int) -> Iterator[peers.Dcmqrscp]:
    peer = peers.Dcmqrscp.start(tmp_path_factory.mktemp("dcmqrscp-batch"),
                                hosts={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        r = peers.storescu(peer.port, peer.aet, [Path(i.path) for i in archive.sendable()], extra=["-R"])
        assert r.returncode == 0, r.stderr[-500:]
        yield peer
    finally:
        peer.stop()


def test_batch_from_dcmqrscp(qrscp: peers.Dcmqrscp, archive: Archive, tmp_path: Path, scp_port: int,
                             capsys: pytest.CaptureFixture[str]) -> None:
    lst = tmp_path / "ids.txt"
    lst.write_text(f"{P2}\n{P1}\n")
    csvlist = tmp_path / "plans.csv"
    csvlist.write_text(f"PatientId,PlanId\n{P2},PLAN_A\n")
    out = tmp_path / "out"
    assert batch(qrscp, csvlist, out, scp_port) == 0, capsys.readouterr().err
    assert uids_in(out / P2) == expected(archive, P2, ["PLAN_A"])
    out2 = tmp_path / "out2"
    assert batch(qrscp, lst, out2, scp_port, "--parallel", "3") == 0
    assert "note: --parallel 3 needs C-GET" in capsys.readouterr().err
    assert uids_in(out2 / P1) == expected(archive, P1) and uids_in(out2 / P2) == expected(archive, P2)


def test_ctrl_c_keeps_complete_patients_and_a_rerun_does_the_rest(orthanc: peers.Orthanc, tmp_path: Path,
                                                                   scp_port: int) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from dicomtools.core.phantom.bulk import write_ct_series

    small = write_ct_series(tmp_path / "s", 3, patient_id="SMALL-1")
    # big enough that BIG-2 is still arriving when the Ctrl-C lands (a faster retrieve needs more)
    big = write_ct_series(tmp_path / "b", 1000, patient_id="BIG-2", rows=64)
    sent = peers.storescu(orthanc.port, orthanc.aet, small + big, extra=["-R"])  # faster than REST
    assert sent.returncode == 0, sent.stderr[-500:]
    lst = tmp_path / "l.txt"
    lst.write_text("SMALL-1\nBIG-2\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dicomtools.core", "retrieve", "--patientList", str(lst), "--path", str(out),
            "--hostName", peers.HOST, "--hostPort", str(orthanc.port), "--calledAet", orthanc.aet,
            "--callingAet", OUR_AE, "--scpPort", str(scp_port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=peers.peer_env())
    end = time.monotonic() + 60
    while not (out / "SMALL-1").exists() and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGINT)
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, text
    assert "[2/2] BIG-2: not done (interrupted)" in text and "1 retrieved, 0 skipped (complete), 0 failed, 1 not done" in text
    assert len(list((out / "SMALL-1").iterdir())) == 3
    assert not (out / "BIG-2").exists()
    assert [p.name for p in (out / ".dicomtools-batch").iterdir()] == ["SMALL-1.json"]  # no work folder left
    rerun = subprocess.run(argv, capture_output=True, text=True, env=peers.peer_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "[1/2] SMALL-1: skipped" in rerun.stdout and "[2/2] BIG-2: 1000 instances saved" in rerun.stdout
