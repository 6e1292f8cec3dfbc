"""dcmtk ``dcmqrscp`` as a second Q/R peer: no RT keys in C-FIND, plans must be read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.assoc import associate, make_ae, release
from dicomtools.core.net.find import find_instances, query_patient
from dicomtools.core.net.retrieve import FIND_CONTEXTS, RetrieveOptions, retrieve, select
from dicomtools.core.tree import build_forest
from tests.net import peers
from tests.net.conftest import OUR_AE, Archive

pytestmark = pytest.mark.net

PID = "PHANTOM-002"


@pytest.fixture(scope="module")
def qrscp(tmp_path_factory: pytest.TempPathFactory, archive: Archive, scp_port: int) -> Iterator[peers.Dcmqrscp]:
    peer = peers.Dcmqrscp.start(tmp_path_factory.mktemp("dcmqrscp"),
                                hosts={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        files = [Path(i.path) for i in archive.sendable() if i.patient_id == PID]
        r = peers.storescu(peer.port, peer.aet, files, extra=["-R"])  # -R: only the needed contexts
        assert r.returncode == 0, r.stderr[-500:]
        yield peer
    finally:
        peer.stop()


def expected(archive: Archive, plans: list[str]) -> set[str]:
    forest = build_forest([i for i in archive.sendable() if i.patient_id == PID])
    selected, _, problems = select(forest, plans, False)
    assert not problems
    return {i.sop_instance_uid for i in selected}


def test_c_find_has_no_rt_keys(qrscp: peers.Dcmqrscp) -> None:
    node = NodeConfig(port=qrscp.port, called_ae=qrscp.aet, calling_ae=OUR_AE)
    ae = make_ae(OUR_AE, node)
    for cx in FIND_CONTEXTS:
        ae.add_requested_context(cx)
    assoc = associate(ae, node)
    try:
        q = query_patient(assoc, PID)
        assert q.series_modality_known
        plan_series = [s for s in q.series if s.modality == "RTPLAN"]
        assert plan_series
        found = find_instances(assoc, q.model, PID, plan_series[0].study_uid, plan_series[0].series_uid,
                               ["RTPlanLabel", "ApprovalStatus"])
        assert found and all(i.plan_label == "" and i.approval_status == "" for i in found)
    finally:
        release(assoc)


def test_plan_selected_by_reading_the_plans(qrscp: peers.Dcmqrscp, archive: Archive, tmp_path: Path,
                                            scp_port: int) -> None:
    node = NodeConfig(port=qrscp.port, called_ae=qrscp.aet, calling_ae=OUR_AE)
    res = retrieve(node, RetrieveOptions(PID, tmp_path / "out", plan_ids=["PLAN_A"], scp_port=scp_port))
    assert res.ok, res.problems
    assert res.selective
    assert {i.sop_instance_uid for i in res.saved} == expected(archive, ["PLAN_A"])
    assert res.received == res.reported


def test_cli_whole_patient_from_dcmqrscp(qrscp: peers.Dcmqrscp, archive: Archive, tmp_path: Path,
                                         scp_port: int) -> None:
    out = tmp_path / "all"
    rc = main(["retrieve", "--patientId", PID, "--path", str(out), "--hostName", peers.HOST, "--hostPort",
               str(qrscp.port), "--calledAet", qrscp.aet, "--callingAet", OUR_AE, "--scpPort", str(scp_port)])
    assert rc == 0
    got = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in out.iterdir()}
    assert got == expected(archive, [])


def test_c_get_from_dcmqrscp_without_sop_classes_in_c_find(qrscp: peers.Dcmqrscp, archive: Archive,
                                                             tmp_path: Path) -> None:
    """dcmqrscp returns no SOP Class UID at image level: the usual classes are proposed, all arrive."""
    out = tmp_path / "get"
    node = NodeConfig(port=qrscp.port, called_ae=qrscp.aet, calling_ae=OUR_AE)
    res = retrieve(node, RetrieveOptions(PID, out, method="get"))
    assert res.ok, res.problems
    assert any("listed no SOP classes" in n for n in res.notes)
    assert {i.sop_instance_uid for i in res.saved} == expected(archive, [])
