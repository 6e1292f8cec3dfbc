"""Receive screen (dcmtk storescu pushing to it) and Retrieve's "load list" (Orthanc), end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from textual.widgets import Input

from dicomtools.core.archive.scan import scan
from dicomtools.core.phantom import generate
from dicomtools.tui.screens.dialogs import FormDialog
from dicomtools.tui.screens.receive import ReceiveScreen
from dicomtools.tui.screens.retrieve import RetrieveScreen, patient_key, plan_key
from tests.net import peers
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_net_screens import OUR_AE, config_for

pytestmark = [pytest.mark.anyio, pytest.mark.net]

P1, P2 = "PHANTOM-001", "PHANTOM-002"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> list:
    root = tmp_path_factory.mktemp("tui-receive-archive")
    generate(root, patients=2, seed=0)
    return [i for i in scan(str(root), workers=1).instances if not i.truncated and i.patient_id]


async def test_receive_screen_shows_arrivals_live(archive: list, tmp_path: Path) -> None:
    app = make_app()
    port = peers.free_port()
    files = [Path(i.path) for i in archive if i.patient_id == P1]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f7")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReceiveScreen)
        screen.query_one("#rv-path", Input).value = str(tmp_path / "in")
        screen.query_one("#rv-port", Input).value = str(port)
        screen.query_one("#rv-allow", Input).value = "STORESCU@127.0.0.1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.server is not None)
        assert "listening: DICOMTOOLS on 127.0.0.1" in screen_text(app)
        res = await asyncio.to_thread(peers.storescu, port, "DICOMTOOLS", files, "STORESCU", ["-R"])
        assert res.returncode == 0, res.stderr[-500:]
        refused = await asyncio.to_thread(peers.storescu, port, "DICOMTOOLS", files[:1], "OTHER")
        assert refused.returncode != 0
        await wait_for(pilot, lambda: "refused 'OTHER'" in screen_text(app))
        await wait_for(pilot, lambda: f"{len(files)} instances received" in screen_text(app))
        text = screen_text(app)
        assert f"STORESCU@127.0.0.1: {len(files)} instances ({P1}: {len(files)}), released" in text
        tree_patients = [p.patient_id for p in screen.query_one("#rv-tree").forest]
        assert tree_patients == [P1]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.server is None, timeout=60)
        assert f"Stopped: {len(files)} instances received" in screen_text(app)
    got = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in (tmp_path / "in" / P1).rglob("*.dcm")}
    assert got == {i.sop_instance_uid for i in archive if i.patient_id == P1}


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, archive: list) -> Iterator[peers.Orthanc]:
    scp = peers.free_port()
    peer = peers.Orthanc.start(tmp_path_factory.mktemp("orthanc-list"), modalities={"dicomtools": (OUR_AE, peers.HOST, scp)})
    peer.scp_port = scp  # type: ignore[attr-defined]
    try:
        peer.upload([Path(i.path) for i in archive])
        yield peer
    finally:
        peer.stop()


async def test_retrieve_loads_a_handoff_list_and_marks_it(archive: list, orthanc: peers.Orthanc,
                                                          tmp_path: Path) -> None:
    lst = tmp_path / "handoff.json"
    lst.write_text(json.dumps({"Patients": [
        {"PatientId": P1, "IsSelected": True, "Plans": [{"PlanId": "PLAN_A", "CourseId": "C1", "IsSelected": True},
                                                        {"PlanId": "NO_SUCH", "CourseId": "C1", "IsSelected": True},
                                                        {"PlanId": "PLAN_B", "CourseId": "C1", "IsSelected": False}]},
        {"PatientId": "GHOST-1", "IsSelected": True, "Plans": []},
        {"PatientId": P2, "IsSelected": True, "Plans": []},
    ]}))
    plan_a = next(i.sop_instance_uid for i in archive if i.patient_id == P1 and i.plan_label == "PLAN_A")
    app = make_app(config=config_for(orthanc.port, orthanc.aet, orthanc.scp_port))  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RetrieveScreen)
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        app.screen.query_one("#field-path", Input).value = str(lst)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "listed patient(s) found" in screen_text(app), timeout=60)
        assert screen.marks == {plan_key(P1, plan_a), patient_key(P2)}
        text = screen_text(app)
        assert "2 listed patient(s) found, 2 marked from handoff.json" in text
        assert "not found: GHOST-1" in text and "plans not found: PHANTOM-001: NO_SUCH" in text
        assert [r.patient_id for r in screen.rows] == [P1, P2]
