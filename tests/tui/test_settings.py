"""Settings screen: edit nodes and preset values, save through core.config, read the TOML back; C-ECHO."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select

from dicomtools.core.config import Config, NodeConfig, load_config, save_config
from dicomtools.tui.screens.dialogs import ConfirmDialog
from dicomtools.tui.screens.settings import SettingsScreen
from tests.net.peers import StoreSCP, free_port
from tests.tui.helpers import make_app, screen_text, settle, wait_for

pytestmark = pytest.mark.anyio


def preset(tmp_path: Path) -> Path:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD")
    cfg.nodes["old"] = NodeConfig(host="127.0.0.1", port=104, called_ae="OLDPACS")
    path = tmp_path / "site.toml"
    save_config(cfg, path)
    return path


async def type_into(pilot, field: str, text: str) -> None:
    """Replace a field's text: short values are typed key by key, long ones pasted."""
    inp = pilot.app.screen.query_one(f"#f-{field}", Input)
    inp.focus()
    inp.value = ""
    await pilot.pause()
    if len(text) <= 6:
        await pilot.press(*text)
    else:
        inp.insert_text_at_cursor(text)
    await pilot.pause()


async def test_edit_nodes_and_preset_then_read_the_toml_back(tmp_path: Path) -> None:
    path = preset(tmp_path)
    before = path.read_text()
    app = make_app(None, load_config(path))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert "[saved]" in screen_text(app)
        # edit the selected node (aria)
        await type_into(pilot, "node-host", "127.0.0.2")
        await type_into(pilot, "node-port", "11112")
        # "Retrieve by" is a choice, made with the keyboard
        choice = screen.query_one("#f-node-retrieve_method", Select)
        choice.focus()
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert choice.value == "get"
        await type_into(pilot, "node-machines", "TB1, HALCYON")
        assert "unsaved changes" in screen_text(app)
        # add a node
        await pilot.press("ctrl+n")
        await pilot.pause()
        await type_into(pilot, "node-name", "orthanc")
        await type_into(pilot, "node-port", "4242")
        await type_into(pilot, "node-called_ae", "ORTHANC")
        # delete "old"
        table = screen.query_one("#nodes", DataTable)
        table.focus()
        table.move_cursor(row=list(screen.work.nodes).index("old"))
        await pilot.pause()
        assert screen.selected == "old"
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        # preset-wide values
        await type_into(pilot, "local-ae_title", "PHYSICS1")
        await type_into(pilot, "local-scp_port", "11113")
        await type_into(pilot, "anon-profile", "basic")
        await type_into(pilot, "mach-mapping", "TrueBeam1=TB1 OLD=NEW")
        await type_into(pilot, "mach-defaults", "RDS=HALCYON")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "[saved]" in screen_text(app)
        assert app.config.local.ae_title == "PHYSICS1"
    cfg = load_config(path)
    assert list(cfg.nodes) == ["aria", "orthanc"]
    aria = cfg.nodes["aria"]
    assert (aria.host, aria.port, aria.called_ae, aria.retrieve_method) == ("127.0.0.2", 11112, "VMSDBD", "get")
    assert aria.machines == ["TB1", "HALCYON"]
    orthanc = cfg.nodes["orthanc"]
    assert (orthanc.port, orthanc.called_ae) == (4242, "ORTHANC")
    assert cfg.local.ae_title == "PHYSICS1" and cfg.local.scp_port == 11113
    assert cfg.anonymize.profile == "basic"
    assert cfg.machines.mapping == {"TrueBeam1": "TB1", "OLD": "NEW"}
    assert cfg.machines.defaults == {"RDS": "HALCYON"}
    assert (tmp_path / "site.toml.bak").read_text() == before


async def test_invalid_values_are_flagged_and_not_saved(tmp_path: Path) -> None:
    path = preset(tmp_path)
    before = path.read_bytes()
    app = make_app(None, load_config(path))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        await type_into(pilot, "node-port", "70000")
        assert "! Port: port 70000 out of range 1-65535" in screen_text(app)
        await type_into(pilot, "node-called_ae", "THIS-AE-TITLE-IS-TOO-LONG")
        await type_into(pilot, "mach-mapping", "TrueBeam1")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "unsaved changes" in screen_text(app)
    assert path.read_bytes() == before
    assert not (tmp_path / "site.toml.bak").exists()


async def test_echo_a_real_peer_and_a_closed_port(tmp_path: Path) -> None:
    peer = StoreSCP.start(tmp_path / "scp", aet="ECHOSCP")
    try:
        cfg = Config()
        cfg.nodes["scp"] = NodeConfig(host="127.0.0.1", port=peer.port, called_ae="ECHOSCP")
        cfg.nodes["nobody"] = NodeConfig(host="127.0.0.1", port=free_port(), called_ae="NOBODY",
                                         connect_timeout=2.0)
        app = make_app(None, cfg)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("f5")
            await settle(pilot)
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "C-ECHO scp: OK" in screen_text(app))
            table = app.screen.query_one("#nodes", DataTable)
            table.focus()
            table.move_cursor(row=1)
            await pilot.pause()
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "! C-ECHO nobody failed:" in screen_text(app))
            assert not app.jobs.running()
    finally:
        peer.stop()
