"""``store`` against real peers: Orthanc and dcmtk storescp, plus a refusing pynetdicom peer."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import RTPlanStorage  # type: ignore[attr-defined]

from dicomtools.core.archive.model import PLAN_CLASSES, RT_DOSE, RT_STRUCT
from dicomtools.core.archive.scan import scan
from dicomtools.core.cli.main import main
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.files import split_meta
from dicomtools.core.net.store import order_for_store, read_status_file, store
from dicomtools.core.net.ul import request_association
from dicomtools.core.progress import RecordingSink
from dicomtools.core.tree import build_forest
from tests.net import peers
from tests.net.conftest import OUR_AE, Archive

pytestmark = pytest.mark.net

MAPPING = ["--defaultMachines", "RDS=HALCYON"]


def node_args(peer: peers.Peer) -> list[str]:
    return ["--hostName", peers.HOST, "--hostPort", str(peer.port), "--calledAet", peer.aet, "--callingAet", OUR_AE]


def received_files(peer: peers.StoreSCP) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in peer.out_dir.iterdir():
        meta = split_meta(p.read_bytes())
        if meta is not None and meta.offset < p.stat().st_size:
            out.setdefault(meta.sop_instance_uid, p)
    return out


def test_store_archive_into_orthanc_matches_tree(orthanc: peers.Orthanc, archive: Archive, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["store", "--path", str(archive.root), *MAPPING, *node_args(orthanc)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    expected = {it.uid for it in order_for_store(archive.forest).items}
    assert orthanc.instance_uids() == expected
    # what the tree holds back without --include-all: REG, RT images, records, orphan doses
    held = {i.sop_instance_uid for i in archive.sendable()} - expected
    assert held and all(u not in expected for u in held)
    assert f"{len(expected)} stored" in out.out
    assert "ARIA refuses a dose without its plan" in out.err


def test_include_all_sends_every_readable_instance(orthanc: peers.Orthanc, archive: Archive) -> None:
    assert main(["store", "--path", str(archive.root), "--include-all", "--showMessages", "false",
                 *MAPPING, *node_args(orthanc)]) == 0
    assert orthanc.instance_uids() == {i.sop_instance_uid for i in archive.sendable()}


def test_storescp_receives_bytes_identical_except_mapped_machines(storescp: peers.StoreSCP, archive: Archive) -> None:
    rc = main(["store", "--path", str(archive.root), "--includeAll", "--machineMapping", "TrueBeam1=TB1",
               "GANTRY1=PROTON", *MAPPING, *node_args(storescp)])
    assert rc == 0
    got = received_files(storescp)
    sent = archive.sendable()
    assert set(got) == {i.sop_instance_uid for i in sent}
    mapped = 0
    for inst in sent:
        src = Path(inst.path).read_bytes()
        dst = got[inst.sop_instance_uid].read_bytes()
        meta_s, meta_d = split_meta(src), split_meta(dst)
        assert meta_d is not None
        body_s = src[meta_s.offset:] if meta_s else src
        body_d = dst[meta_d.offset:]
        if inst.sop_class_uid not in PLAN_CLASSES:
            assert body_d == body_s, inst.path
            continue
        a, b = dcmread(inst.path, force=True), dcmread(got[inst.sop_instance_uid])
        beams_a = list(a.get("BeamSequence", [])) + list(a.get("IonBeamSequence", []))
        beams_b = list(b.get("BeamSequence", [])) + list(b.get("IonBeamSequence", []))
        names = {str(x.get("TreatmentMachineName", "")) for x in beams_b}
        assert names <= {"TB1", "HALCYON", "PROTON"}, names
        if body_d != body_s:
            mapped += 1
        for x, y in zip(beams_a, beams_b, strict=True):
            x.TreatmentMachineName = y.TreatmentMachineName  # the only allowed difference
        assert a == b, inst.path
    assert mapped == sum(1 for i in sent if i.sop_class_uid in PLAN_CLASSES)  # every plan named a mapped machine


def test_source_files_are_never_modified(storescp: peers.StoreSCP, archive: Archive) -> None:
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in archive.root.rglob("RP.*.dcm")}
    assert main(["store", "--path", str(archive.root), "--machineMapping", "TrueBeam1=TB1", *MAPPING,
                 "--showMessages", "false", *node_args(storescp)]) == 0
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in digests} == digests


def test_order_per_patient_and_plan(archive: Archive, tmp_path: Path) -> None:
    """The order the peer sees: images, structure set, plan, CBCT, doses; referenced plan first."""
    from dicomtools.core.net.storescp import StorageSCP

    seen: list[str] = []
    with StorageSCP("ORDER", tmp_path / "in", on_received=lambda r: seen.append(r.sop_instance_uid)) as scp:
        node = NodeConfig(port=scp.port, called_ae="ORDER", calling_ae=OUR_AE)
        res = store(node, order_for_store(archive.forest, include_all=True), defaults={"RDS": "HALCYON"})
    assert res.ok, res.summary()
    pos = {uid: n for n, uid in enumerate(seen)}
    for pid, pm in archive.manifest.patients.items():
        for plan in pm.plans.values():
            p = pos[plan.sop_uid]
            tree = archive.patient(pid)
            series = [i.sop_instance_uid for i in tree.all_instances() if i.series_instance_uid == plan.image_series_uid]
            assert max(pos[u] for u in series) < pos[plan.structure_set_uid] < p
            for dose in plan.dose_uids:
                assert pos[dose] > p
            if plan.cbct_series_uid:
                cbct = [i.sop_instance_uid for i in tree.all_instances() if i.series_instance_uid == plan.cbct_series_uid]
                assert min(pos[u] for u in cbct) > p
            for ref in plan.referenced_plan_uids:
                assert pos[ref] < p
    # a patient is finished before the next one starts
    by_patient = [next(i.patient_id for i in archive.instances if i.sop_instance_uid == u) for u in seen]
    changes = sum(1 for a, b in zip(by_patient, by_patient[1:], strict=False) if a != b)
    assert changes == len(archive.manifest.patients) - 1


def test_rerun_with_status_file_skips_stored(storescp: peers.StoreSCP, archive: Archive, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status = tmp_path / "status.txt"
    args = ["store", "--path", str(archive.root), "--statusFileName", str(status), "--showMessages", "false",
            *MAPPING, *node_args(storescp)]
    assert main(args) == 0
    n = len(order_for_store(archive.forest).items)
    uids, _ = read_status_file(status)
    assert len(uids) == n == len(status.read_text().splitlines())
    before = len(list(storescp.out_dir.iterdir()))
    capsys.readouterr()
    assert main(args) == 0
    assert f"0 stored, {n} skipped (already stored)" in capsys.readouterr().out
    assert len(list(storescp.out_dir.iterdir())) == before


def test_unmapped_machine_stops_before_anything_is_sent(storescp: peers.StoreSCP, archive: Archive,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["store", "--path", str(archive.root), *node_args(storescp)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "PLAN_B" in err and "'RDS'" in err and "--defaultMachines RDS=" in err
    assert "nothing sent" in err
    assert list(storescp.out_dir.iterdir()) == []


def test_machine_unknown_to_node_is_refused_before_sending(storescp: peers.StoreSCP, archive: Archive,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[nodes.scp]\nhost = "127.0.0.1"\nport = {storescp.port}\ncalled_ae = "{storescp.aet}"\n'
                   'machines = ["TB1", "HALCYON"]\n')
    rc = main(["store", "--path", str(archive.root), "--config", str(cfg), "--node", "scp", *MAPPING,
               "--machineMapping", "TrueBeam1=TB1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "'GANTRY1' is not known to the node" in err and "--machineMapping GANTRY1=" in err
    assert list(storescp.out_dir.iterdir()) == []


def run_against_misbehaving_peer(archive: Archive, answers: dict[str, int], status_file: Path | None = None):  # type: ignore[no-untyped-def]
    """A small pynetdicom peer answering ``answers[uid]`` (else success); returns (result, stored, sink, plan)."""
    from pynetdicom import AllStoragePresentationContexts, build_context

    stored: list[str] = []

    def handle(event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        code = answers.get(uid, 0x0000)
        if code == 0 or code >= 0xB000 and code < 0xC000:
            stored.append(uid)
        return code

    ae = AE("REFUSER")
    ae.supported_contexts = [build_context(cx.abstract_syntax, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
                             for cx in AllStoragePresentationContexts]
    port = peers.free_port()
    server = ae.start_server((peers.HOST, port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle)])
    try:
        node = NodeConfig(port=port, called_ae="REFUSER", calling_ae=OUR_AE)
        plan = order_for_store(archive.forest)
        sink = RecordingSink()
        res = store(node, plan, defaults={"RDS": "HALCYON"}, sink=sink, status_file=status_file)
    finally:
        server.shutdown()
    return res, stored, sink, plan


def test_refused_plan_stops_that_patient_only(archive: Archive, tmp_path: Path) -> None:
    """PLAN_A of PHANTOM-001 refused with 0xA700: the rest of that patient is held back."""
    target = archive.manifest.patients["PHANTOM-001"].plans["PLAN_A"].sop_uid
    res, stored, sink, plan = run_against_misbehaving_peer(archive, {target: 0xA700})
    assert not res.ok
    assert list(res.stopped_patients) == ["PHANTOM-001"]
    assert [f.uid for f in res.failed] == [target]
    assert "0xA700 out of resources" in res.failed[0].text
    p1 = [it for it in plan.items if it.inst.patient_id == "PHANTOM-001"]
    idx = next(n for n, it in enumerate(p1) if it.uid == target)
    assert {it.uid for it in p1[:idx]} <= set(stored)  # before the plan: sent
    assert not {it.uid for it in p1[idx + 1:]} & set(stored)  # after it: nothing of that patient
    p2 = {it.uid for it in plan.items if it.inst.patient_id == "PHANTOM-002"}
    assert p2 <= set(stored)  # the next patient went on
    assert res.not_sent == len(p1) - idx - 1
    assert any("rest of this patient is not sent" in e.text for e in sink.events)
    kinds = sink.kinds()
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("advanced") == len(plan.items)


def test_image_failure_and_warning_go_on(archive: Archive, tmp_path: Path) -> None:
    pm = archive.manifest.patients["PHANTOM-002"]
    image = next(i.sop_instance_uid for i in archive.instances
                 if i.series_instance_uid == pm.plans["PLAN_A"].image_series_uid)
    ss = pm.plans["PLAN_A"].structure_set_uid
    assert ss is not None
    status = tmp_path / "status.txt"
    res, stored, _, plan = run_against_misbehaving_peer(archive, {image: 0xA900, ss: 0xB007}, status)
    assert [f.uid for f in res.failed] == [image] and "0xA900 data set does not match SOP class" in res.failed[0].text
    assert res.warned == 1 and not res.stopped_patients
    assert res.stored == len(plan.items) - 2
    assert "1 warned, 1 failed" in res.summary()
    uids, _ = read_status_file(status)
    assert ss in uids and image not in uids  # a warning is stored, a failure is not


def test_more_than_128_contexts_uses_several_associations(storescp: peers.StoreSCP, archive: Archive, tmp_path: Path) -> None:
    """70 SOP classes x (stored syntax + fallback) = 140 contexts > 128."""
    src = next(i for i in archive.instances if i.modality == "CT" and not i.truncated and i.transfer_syntax_uid)
    folder = tmp_path / "classes"
    folder.mkdir()
    for n in range(70):
        ds = dcmread(src.path)
        cls = f"1.2.826.0.1.3680043.10.999.{n + 1}"
        ds.SOPClassUID = cls
        ds.file_meta.MediaStorageSOPClassUID = cls
        uid = f"1.2.826.0.1.3680043.10.998.{n + 1}"
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.save_as(folder / f"X{n}.dcm")
    result = scan(str(folder), workers=1)
    plan = order_for_store(build_forest(result.instances), include_all=True)
    node = NodeConfig(port=storescp.port, called_ae=storescp.aet, calling_ae=OUR_AE)
    res = store(node, plan)
    assert res.ok and res.stored == 70, res.summary()
    assert len(received_files(storescp)) == 70


def test_peer_not_running(archive: Archive, capsys: pytest.CaptureFixture[str]) -> None:
    port = peers.free_port()
    rc = main(["store", "--path", str(archive.root), "--showMessages", "false", *MAPPING,
               "--hostName", peers.HOST, "--hostPort", str(port), "--calledAet", "NOBODY"])
    assert rc == 1
    assert f"connection refused by 127.0.0.1:{port}" in capsys.readouterr().err


def test_association_rejected_wrong_called_ae(orthanc_empty: peers.Orthanc, archive: Archive,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["store", "--path", str(archive.root), "--showMessages", "false", *MAPPING,
               "--hostName", peers.HOST, "--hostPort", str(orthanc_empty.port), "--calledAet", "WRONGAE"])
    err = capsys.readouterr().err.lower()
    assert rc == 1
    assert "association rejected" in err and "called ae title not recognised" in err


def test_sockets_have_tcp_nodelay(storescp: peers.StoreSCP) -> None:
    a = request_association(peers.HOST, storescp.port, OUR_AE, storescp.aet,
                            [(str(RTPlanStorage), "1.2.840.10008.1.2")])
    try:
        assert a.conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        a.release()


def test_small_files_go_fast(storescp: peers.StoreSCP, tmp_path: Path) -> None:
    """With Nagle on, each C-STORE costs ~40-90 ms: 300 files would take > 12 s."""
    from dicomtools.core.phantom import write_ct_series

    write_ct_series(tmp_path / "ct", 300)
    result = scan(str(tmp_path / "ct"), workers=1)
    node = NodeConfig(port=storescp.port, called_ae=storescp.aet, calling_ae=OUR_AE)
    res = store(node, order_for_store(build_forest(result.instances)))
    assert res.stored == 300
    assert res.elapsed < 6.0, res.summary()


def test_critical_categories(archive: Archive) -> None:
    plan = order_for_store(archive.forest, include_all=True)
    for it in plan.items:
        if it.inst.sop_class_uid in PLAN_CLASSES or it.inst.sop_class_uid == RT_DOSE:
            assert it.critical
        if it.inst.sop_class_uid == RT_STRUCT:
            assert not it.critical
