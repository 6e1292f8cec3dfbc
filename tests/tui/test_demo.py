"""The embedded demo node and ``dicomtools demo``: retrieve and store with no PACS at hand."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from dicomtools.core.archive.scan import scan
from dicomtools.core.config import Config, NodeConfig
from dicomtools.core.net.demo_node import DemoNode
from dicomtools.core.phantom import generate
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_tmux import Terminal, assert_intact, command

pytestmark = pytest.mark.net


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "dicomtools-demo"
    generate(root, patients=2, seed=0)
    return root


@pytest.fixture
def node(archive: Path) -> Iterator[DemoNode]:
    peer = DemoNode.start(str(archive))
    try:
        yield peer
    finally:
        peer.stop()


def demo_config(node: DemoNode) -> Config:
    cfg = Config()
    cfg.nodes["demo"] = NodeConfig(host="127.0.0.1", port=node.port, called_ae=node.ae_title,
                                   retrieve_method="get", machines=[])
    return cfg


@pytest.mark.anyio
async def test_find_retrieve_and_store_against_the_demo_node(
    archive: Path, node: DemoNode, tmp_path: Path
) -> None:
    dest = tmp_path / "retrieved"
    app = make_app(archive, demo_config(node), node="demo", retrieve_dir=str(dest), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "DEMO" in screen_text(app).splitlines()[0]
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#r-name", Input).value = "PHANTÖM*"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: bool(screen.rows), timeout=30)
        assert [r.patient_id for r in screen.rows] == ["PHANTOM-002"]
        screen.query_one("#r-name", Input).value = "PHANT*"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: len(screen.rows) == 2, timeout=30)
        plans = {p.plan_label: p for p in screen.rows[0].plans}
        assert set(plans) == {"PLAN_A", "PLAN_B", "QA_A", "PROTON_1"}
        assert plans["PLAN_B"].approval_status == "UNAPPROVED" and plans["PLAN_A"].plan_date == "20240115"
        table = screen.query_one("#found", DataTable)
        table.focus()
        keys = [str(r.key.value) for r in table.ordered_rows]
        table.move_cursor(row=keys.index(f"L|PHANTOM-001|{plans['PROTON_1'].sop_instance_uid}"))
        await pilot.press("space", "ctrl+r")
        await wait_for(pilot, lambda: not app.jobs.running() and not screen.queue, timeout=120)
        assert "[done]" in screen_text(app), screen_text(app)
        await wait_for(pilot, lambda: app.browse.root == str(dest) and bool(app.browse.forest), timeout=30)
        assert [n.info.plan_label for p in app.browse.forest for n in p.plans] == ["PROTON_1"]
        # store what was retrieved back under a new ID: the node's index grows
        before = len(node.index)
        await pilot.press("f4")
        await settle(pilot)
        store = app.screen
        store.query_one("#s-folder", Input).value = str(dest)
        await pilot.press("ctrl+s")  # reads the folder first, then sends
        await wait_for(pilot, lambda: store.last_result is not None, timeout=60)
        assert store.last_result.ok, store.last_result.summary()
        assert len(node.index) == before  # same instances: already there, nothing new
        assert store.last_result.stored > 0
    got = scan(str(dest), workers=1).instances
    assert any(i.plan_label == "PROTON_1" for i in got)


def test_dicomtools_demo_in_a_real_terminal(tmp_path: Path) -> None:
    term = Terminal(f"dicomtools-demo-{tmp_path.name[-8:]}")
    try:
        term.start(f"cd {shlex.quote(str(tmp_path))} && " + command(tmp_path, "demo"), width=100, height=30)
        screen = term.wait_for("2 patients, 8 plans", timeout=60)
        assert_intact(screen, 30)
        assert "DEMO" in screen.splitlines()[0]
        term.keys("F3")
        term.wait_for("Enter a Patient ID or name")  # the ID field has the focus
        time.sleep(0.3)
        term.type("PHANTOM-001")
        term.keys("Enter")
        screen = term.wait_for("PHANTOM-001  PHANTOM^ALPHA", timeout=30)
        assert "PLAN_A" in screen and "UNAPPROVED" in screen
        term.keys("C-q")
        term.wait_for("EXIT=0")
    finally:
        term.tmux("kill-server")
