"""Retrieve and Store screens against real peers on loopback (Orthanc, dcmtk storescp).

The peers come from ``tests/net/peers.py`` (plain functions and classes, no fixtures shared).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from dicomtools.core.archive.scan import scan
from dicomtools.core.config import Config, LocalConfig, NodeConfig
from dicomtools.core.phantom import generate
from dicomtools.tui.screens.browse import BrowseScreen
from dicomtools.tui.screens.retrieve import RetrieveScreen
from dicomtools.tui.screens.store import StoreScreen
from tests.net import peers
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_browse import goto_label

pytestmark = [pytest.mark.anyio, pytest.mark.net]

OUR_AE = "DICOMTOOLS"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tui-archive")
    generate(root, patients=2, seed=0)
    return root


@pytest.fixture(scope="module")
def scp_port() -> int:
    return peers.free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, archive: Path, scp_port: int) -> Iterator[peers.Orthanc]:
    """One Orthanc for the module; each test empties or loads what it needs."""
    peer = peers.Orthanc.start(tmp_path_factory.mktemp("orthanc"),
                               modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        yield peer
    finally:
        peer.stop()


def config_for(port: int, aet: str, scp_port: int, method: str = "move", **node: object) -> Config:
    cfg = Config(local=LocalConfig(ae_title=OUR_AE, scp_port=scp_port))
    cfg.nodes["pacs"] = NodeConfig(host=peers.HOST, port=port, called_ae=aet, retrieve_method=method,
                                   dimse_timeout=30.0, network_timeout=30.0, **node)  # type: ignore[arg-type]
    return cfg


async def mark_whole_patient(pilot, app, patient_id: str, new_id: str, new_name: str):  # type: ignore[no-untyped-def]
    """On the Retrieve screen: find ``patient_id``, mark its first row, enter the new identity."""
    await pilot.press("f3")
    await settle(pilot)
    screen = app.screen
    screen.query_one("#r-id", Input).value = patient_id
    await pilot.press("ctrl+f")
    await wait_for(pilot, lambda: bool(screen.rows), timeout=30)
    table = screen.query_one("#found", DataTable)
    table.focus()
    table.move_cursor(row=0)
    await pilot.press("space")
    screen.query_one("#r-new-id", Input).value = new_id
    screen.query_one("#r-new-name", Input).value = new_name
    return screen


def sendable(root: Path, patient: str) -> list:
    return [i for i in scan(str(root), workers=1).instances if not i.truncated and i.patient_id == patient]


async def test_store_marked_plans_to_orthanc(archive: Path, orthanc: peers.Orthanc, scp_port: int) -> None:
    orthanc.clear()
    app = make_app(archive, config_for(orthanc.port, orthanc.aet, scp_port))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await pilot.press("space")
        await goto_label(pilot, "PROTON_1")
        await pilot.press("space")
        browse = app.screen
        expected = {i.sop_instance_uid for _, plan in browse.marked_pairs() for i in plan.subtree_instances()
                    if not i.truncated}
        await pilot.press("t")
        await settle(pilot)
        store = app.screen
        assert isinstance(store, StoreScreen)
        text = screen_text(app)
        assert "2 plan(s)" in text and "^s sends" in text
        assert store.query_one("#machines", DataTable).row_count == 5  # 3 photon + 2 proton beams
        # by default RT images, records and registrations stay home (ARIA order, core default)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.last_result is not None, timeout=60)
        first = store.last_result
        assert first.ok, first.summary()
        assert 0 < first.stored < len(expected) and first.skipped
        assert "left out" in screen_text(app)
        assert orthanc.instance_uids() < expected
        # "All objects" sends everything the two plans reference
        store.query_one("#s-all").press()
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.last_result not in (None, first), timeout=60)
        result = store.last_result
        assert result.ok, result.summary()
        assert result.stored == len(expected)
        assert f"Store done: {len(expected)} stored" in screen_text(app)
    assert orthanc.instance_uids() == expected


async def test_unmapped_machines_block_the_send_until_mapped(
    archive: Path, orthanc: peers.Orthanc, scp_port: int
) -> None:
    orthanc.clear()
    cfg = config_for(orthanc.port, orthanc.aet, scp_port, machines=["TrueBeam1", "HALCYON"])
    app = make_app(archive, cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_B")  # beams without a machine name, model RDS
        await pilot.press("space", "t")
        await settle(pilot)
        store = app.screen
        assert "! 2 beam(s) with an unmapped machine: nothing will be sent." in screen_text(app)
        text = screen_text(app)
        # the machine model is named, and the Patient column tells the plans apart
        assert "PHANTOM-001  PLAN_B  G090  <empty>    <empty>  EMPTY: add default RDS=MACHINE" in text
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert store.job is None and orthanc.instance_count() == 0  # nothing left
        # the refused ^s says why where the user looks
        assert "! not sent: 2 beam(s) with an unmapped machine, e.g. plan PLAN_B beam G090" in screen_text(app)
        store.query_one("#s-defaults", Input).value = "RDS=HALCYON"
        await pilot.pause()
        assert "EMPTY" not in screen_text(app) and "HALCYON" in screen_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.last_result is not None, timeout=60)
        assert store.last_result.ok, store.last_result.summary()
    assert orthanc.instance_count() > 0


async def test_store_resumes_from_the_status_file(
    archive: Path, orthanc: peers.Orthanc, scp_port: int, tmp_path: Path
) -> None:
    orthanc.clear()
    status = tmp_path / "status.txt"
    app = make_app(archive, config_for(orthanc.port, orthanc.aet, scp_port))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        store = app.screen
        store.query_one("#s-status-file", Input).value = str(status)
        store.query_one("#s-folder", Input).value = str(archive / "PHANTOM-002")
        store.query_one("#s-defaults", Input).value = "RDS=HALCYON"
        await pilot.press("ctrl+t")  # read the folder, check machines
        await wait_for(pilot, lambda: store.instances is not None)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.last_result is not None, timeout=60)
        first = store.last_result
        assert first.stored > 0 and first.already == 0
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.last_result not in (None, first), timeout=60)
        second = store.last_result
        assert second.stored == 0 and second.already == first.stored
        assert f"{first.stored} skipped (already stored)" in screen_text(app)


async def test_cancel_a_running_store(archive: Path, tmp_path: Path, scp_port: int) -> None:
    slow = peers.StoreSCP.start(tmp_path / "slow", aet="SLOWSCP", extra=["--sleep-during", "1"])
    try:
        app = make_app(archive, config_for(slow.port, slow.aet, scp_port))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await goto_label(pilot, "PLAN_A")
            await pilot.press("space", "t")
            await settle(pilot)
            store = app.screen
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "store to pacs ━" in screen_text(app) or "1/" in screen_text(app),
                           timeout=30)
            assert app.jobs.running("store")
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: store.last_result is not None, timeout=30)
            result = store.last_result
            assert result.cancelled
            assert result.stored < 10
            assert "store to pacs [cancelled]" in screen_text(app)
            assert not app.jobs.running()
    finally:
        slow.stop()


async def test_find_and_retrieve_a_plan_into_the_browsed_folder(
    archive: Path, orthanc: peers.Orthanc, scp_port: int, tmp_path: Path
) -> None:
    orthanc.clear()
    orthanc.upload([Path(i.path) for i in sendable(archive, "PHANTOM-001")])
    dest = tmp_path / "incoming"
    dest.mkdir()
    app = make_app(dest, config_for(orthanc.port, orthanc.aet, scp_port, method="get"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.browse.forest == []
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RetrieveScreen)
        assert screen.query_one("#r-dest", Input).value == str(dest)
        screen.query_one("#r-name", Input).value = "PHANTOM^*"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: bool(screen.rows), timeout=30)
        row = screen.rows[0]
        assert row.patient_id == "PHANTOM-001" and row.plans_known
        labels = {p.plan_label: p for p in row.plans}
        assert {"PLAN_A", "PLAN_B", "QA_A", "PROTON_1"} <= set(labels)
        assert labels["PLAN_A"].approval_status == "APPROVED"
        text = screen_text(app)
        assert "PHANTOM-001  PHANTOM^ALPHA" in text and "UNAPPROVED" in text
        table = screen.query_one("#found", DataTable)
        table.focus()
        keys = [str(r.key.value) for r in table.ordered_rows]
        table.move_cursor(row=next(i for i, k in enumerate(keys) if k.endswith(labels["QA_A"].sop_instance_uid)))
        await pilot.press("space")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.jobs.running() and not screen.queue, timeout=120)
        assert "[done]" in screen_text(app), screen_text(app)
        # the result appears in Browse: QA_A with the plan it references (PLAN_A) and their data
        await pilot.press("f2")
        await wait_for(pilot, lambda: any(p.plans for p in app.browse.forest), timeout=30)
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen)
        plans = sorted(n.info.plan_label for p in app.browse.forest for n in p.plans)
        assert plans == ["PLAN_A", "QA_A"]
    assert any(dest.rglob("*.dcm"))


async def test_retrieve_whole_patient_by_move_with_new_id(
    archive: Path, orthanc: peers.Orthanc, scp_port: int, tmp_path: Path
) -> None:
    orthanc.clear()
    wanted = sendable(archive, "PHANTOM-002")
    orthanc.upload([Path(i.path) for i in wanted])
    dest = tmp_path / "moved"
    app = make_app(None, config_for(orthanc.port, orthanc.aet, scp_port, method="move"), retrieve_dir=str(dest))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await mark_whole_patient(pilot, app, "PHANTOM-002", "TEST-42", "TEST^FORTYTWO")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.jobs.running() and not screen.queue, timeout=120)
        assert "[done]" in screen_text(app), screen_text(app)
        await wait_for(pilot, lambda: bool(app.browse.forest), timeout=30)
        assert app.browse.root == str(dest)
        assert [p.patient_id for p in app.browse.forest] == ["TEST-42"]
    got = scan(str(dest), workers=1).instances
    assert len(got) == len(wanted)
    assert {i.patient_name for i in got} == {"TEST^FORTYTWO"}


async def test_find_failure_is_shown_not_raised(tmp_path: Path, scp_port: int) -> None:
    app = make_app(None, config_for(peers.free_port(), "NOBODY", scp_port, connect_timeout=2.0))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#r-id", Input).value = "X"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: "! C-FIND failed:" in screen_text(app), timeout=30)
        assert "connection refused" in screen_text(app)


async def test_retrieve_anonymized_leaves_no_original_identity(
    archive: Path, orthanc: peers.Orthanc, scp_port: int, tmp_path: Path
) -> None:
    orthanc.clear()
    wanted = sendable(archive, "PHANTOM-001")
    orthanc.upload([Path(i.path) for i in wanted])
    dest = tmp_path / "anon"
    app = make_app(None, config_for(orthanc.port, orthanc.aet, scp_port, method="get"), retrieve_dir=str(dest))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await mark_whole_patient(pilot, app, "PHANTOM-001", "ANON-7", "ANON^SEVEN")
        screen.query_one("#r-anon").press()
        await settle(pilot)
        assert "Anonymize: on" in screen_text(app)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.jobs.running() and not screen.queue, timeout=120)
        assert "[done]" in screen_text(app), screen_text(app)
    files = [p for p in dest.rglob("*.dcm")]
    assert len(files) == len(wanted)
    originals = {i.sop_instance_uid for i in wanted}
    for p in files:
        raw = p.read_bytes()
        assert b"PHANTOM-001" not in raw and b"PHANTOM^ALPHA" not in raw
    got = scan(str(dest), workers=1).instances
    assert {i.patient_id for i in got} == {"ANON-7"} and not originals & {i.sop_instance_uid for i in got}
    assert (dest / "anonymization_map.csv").exists()
