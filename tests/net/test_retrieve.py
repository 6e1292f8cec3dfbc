"""``retrieve`` from a real Orthanc: move and get, filters, new ID/name, UID by UID against the tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.assoc import associate, make_ae, release
from dicomtools.core.net.find import find_instances, query_patient
from dicomtools.core.net.retrieve import RetrieveOptions, retrieve, select
from dicomtools.core.tree import build_forest
from tests.net import peers
from tests.net.conftest import OUR_AE, Archive

pytestmark = pytest.mark.net

PID = "PHANTOM-001"


def source_forest(archive: Archive, pid: str = PID):  # type: ignore[no-untyped-def]
    """The tree of what Orthanc holds for the patient (it holds every sendable instance)."""
    return build_forest([i for i in archive.sendable() if i.patient_id == pid])


def expected_uids(archive: Archive, plan_ids: list[str] | None = None, approved: bool = False) -> set[str]:
    selected, _, problems = select(source_forest(archive), plan_ids or [], approved)
    assert not problems
    return {i.sop_instance_uid for i in selected}


def saved_uids(folder: Path) -> set[str]:
    out = set()
    for p in folder.iterdir():
        if p.is_file():
            out.add(str(dcmread(p, stop_before_pixels=True).SOPInstanceUID))
    return out


def run(orthanc: peers.Orthanc, out: Path, scp_port: int, *extra: str) -> int:
    return main(["retrieve", "--patientId", PID, "--path", str(out), "--hostName", peers.HOST,
                 "--hostPort", str(orthanc.port), "--calledAet", orthanc.aet, "--callingAet", OUR_AE,
                 "--scpPort", str(scp_port), *extra])


def no_temp_left(folder: Path) -> bool:
    return not any(p.name.startswith(".dicomtools-retrieve-") for p in folder.iterdir())


def test_c_find_lists_the_patient(orthanc_loaded: peers.Orthanc, archive: Archive) -> None:
    node = NodeConfig(port=orthanc_loaded.port, called_ae=orthanc_loaded.aet, calling_ae=OUR_AE)
    ae = make_ae(OUR_AE, node)
    from dicomtools.core.net.retrieve import FIND_CONTEXTS

    for cx in FIND_CONTEXTS:
        ae.add_requested_context(cx)
    assoc = associate(ae, node)
    try:
        q = query_patient(assoc, PID)
        src = [i for i in archive.sendable() if i.patient_id == PID]
        assert {s.study_uid for s in q.studies} == {i.study_instance_uid for i in src}
        assert {s.series_uid for s in q.series} == {i.series_instance_uid for i in src}
        assert q.instance_count == len(src)
        assert q.series_modality_known
        plan_series = next(s for s in q.series if s.modality == "RTPLAN")
        inst = find_instances(assoc, q.model, PID, plan_series.study_uid, plan_series.series_uid,
                              ["RTPlanLabel", "ApprovalStatus"])
        assert inst and inst[0].plan_label  # Orthanc answers RT keys with StorageAccessOnFind=Always
    finally:
        release(assoc)


@pytest.mark.parametrize("method", ["move", "get"])
def test_whole_patient(orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path, scp_port: int,
                       method: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    extra = ["--useGet"] if method == "get" else []
    assert run(orthanc_loaded, out, scp_port, *extra) == 0, capsys.readouterr().err
    assert saved_uids(out) == expected_uids(archive)
    assert no_temp_left(out)
    text = capsys.readouterr().out
    assert "whole patient" in text and ("C-GET" if method == "get" else "C-MOVE") in text


@pytest.mark.parametrize("method", ["move", "get"])
def test_plan_id_selective(orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path, scp_port: int,
                           method: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    extra = ["--useGet"] if method == "get" else []
    assert run(orthanc_loaded, out, scp_port, "--planId", "PLAN_A", "--showTree", *extra) == 0
    assert saved_uids(out) == expected_uids(archive, ["PLAN_A"])
    captured = capsys.readouterr().out
    assert "RT-Plan: PLAN_A" in captured and "PLAN_B" not in captured
    assert "selective" in captured


def test_selective_fetches_only_what_the_plan_needs(orthanc_loaded: peers.Orthanc, archive: Archive,
                                                    tmp_path: Path, scp_port: int) -> None:
    node = NodeConfig(port=orthanc_loaded.port, called_ae=orthanc_loaded.aet, calling_ae=OUR_AE)
    res = retrieve(node, RetrieveOptions(PID, tmp_path / "sel", plan_ids=["PLAN_A"], scp_port=scp_port))
    assert res.ok and res.selective, res.problems
    whole = {f.what.split()[-1] for f in res.fetches if f.what.startswith("series ")}
    sampled = {f.what.split()[-1] for f in res.fetches if f.what.startswith("sample of series")}
    pm = archive.manifest.patients[PID]
    plan = pm.plans["PLAN_A"]
    assert {plan.image_series_uid, plan.cbct_series_uid, plan.registered_series_uid} <= whole
    old = set(pm.unconnected.series)
    assert old & sampled and not old & whole  # the unconnected CT: one sample, never the series
    assert res.received < len([i for i in archive.sendable() if i.patient_id == PID])
    assert {i.sop_instance_uid for i in res.saved} == expected_uids(archive, ["PLAN_A"])
    assert res.received == res.reported


def test_plan_by_uid_and_only_approved(orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path,
                                       scp_port: int) -> None:
    uid = archive.manifest.patients[PID].plans["PROTON_1"].sop_uid
    out = tmp_path / "uid"
    assert run(orthanc_loaded, out, scp_port, "--planId", uid) == 0
    assert saved_uids(out) == expected_uids(archive, [uid])
    out2 = tmp_path / "approved"
    assert run(orthanc_loaded, out2, scp_port, "--onlyApprovedPlans", "--useGet") == 0
    want = expected_uids(archive, approved=True)
    assert saved_uids(out2) == want
    plan_b = archive.manifest.patients[PID].plans["PLAN_B"].sop_uid
    assert plan_b not in want


def test_new_patient_id_and_name(orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path, scp_port: int) -> None:
    out = tmp_path / "renamed"
    assert run(orthanc_loaded, out, scp_port, "--planId", "QA_A", "--newPatientId", "TEST-9",
               "--newPatientName", "TEST^NINE") == 0
    files = list(out.iterdir())
    assert {str(dcmread(p).SOPInstanceUID) for p in files} == expected_uids(archive, ["QA_A"])
    for p in files:
        ds = dcmread(p)
        assert ds.PatientID == "TEST-9" and str(ds.PatientName) == "TEST^NINE"


def test_unknown_plan_fails(orthanc_loaded: peers.Orthanc, tmp_path: Path, scp_port: int,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run(orthanc_loaded, tmp_path / "x", scp_port, "--planId", "NOPE") == 1
    err = capsys.readouterr().err
    assert "no plan with label or UID 'NOPE'" in err and "PLAN_A" in err


def test_move_to_unknown_ae_is_clear(orthanc_loaded: peers.Orthanc, tmp_path: Path, scp_port: int,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    rc = main(["retrieve", "--patientId", PID, "--path", str(out), "--hostName", peers.HOST,
               "--hostPort", str(orthanc_loaded.port), "--calledAet", orthanc_loaded.aet,
               "--callingAet", "STRANGER", "--scpPort", str(scp_port)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "refused" in err and "know our AE title 'STRANGER' as a move destination" in err
    assert not out.exists()  # created by us, nothing saved: removed again


def test_patient_not_found(orthanc_loaded: peers.Orthanc, tmp_path: Path, scp_port: int,
                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["retrieve", "--patientId", "NOBODY-1", "--path", str(tmp_path / "o"), "--hostName", peers.HOST,
               "--hostPort", str(orthanc_loaded.port), "--calledAet", orthanc_loaded.aet, "--useGet"])
    assert rc == 1
    assert "patient 'NOBODY-1' not found" in capsys.readouterr().err


def test_existing_folder_needs_force(orthanc_loaded: peers.Orthanc, tmp_path: Path, scp_port: int,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert run(orthanc_loaded, out, scp_port) == 1
    assert "exists and is not empty (use --force" in capsys.readouterr().err
    assert run(orthanc_loaded, out, scp_port, "--force", "--planId", "PLAN_B") == 0
    assert (out / "keep.txt").read_text() == "x" and no_temp_left(out)


def test_anonymize_writes_map_and_new_identity(orthanc_loaded: peers.Orthanc, archive: Archive, tmp_path: Path,
                                               scp_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "anon"
    args = ["--planId", "PLAN_A", "--anonymize", "--newPatientId", "ANON-1", "--newPatientName", "ANON^ONE"]
    assert run(orthanc_loaded, out, scp_port, *args) == 0, capsys.readouterr().err
    assert "anonymization_map.csv" in capsys.readouterr().err
    dicoms = [p for p in out.rglob("*.dcm")]
    assert len(dicoms) == len(expected_uids(archive, ["PLAN_A"]))
    originals = expected_uids(archive, ["PLAN_A"])
    for p in dicoms:
        ds = dcmread(p)
        assert ds.PatientID == "ANON-1" and str(ds.PatientName) == "ANON^ONE"
        assert str(ds.SOPInstanceUID) not in originals
    assert run(orthanc_loaded, out, scp_port, "--force", *args) == 0
    rows = (out / "anonymization_map.csv").read_text().splitlines()
    assert rows[0].startswith("original_patient_id,original_patient_name,new_patient_id")
    assert len(rows) == 3 and all(r.startswith(f"{PID},PHANTOM^ALPHA,ANON-1,ANON^ONE,") for r in rows[1:])
    assert no_temp_left(out)


def test_anonymize_needs_new_identity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["retrieve", "--patientId", PID, "--path", str(tmp_path / "a"), "--anonymize",
               "--hostName", peers.HOST, "--hostPort", "1", "--calledAet", "X"])
    assert rc == 2
    assert "--anonymize needs --newPatientId and --newPatientName" in capsys.readouterr().err
