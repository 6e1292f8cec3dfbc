"""Issue 13, "Seeing and typing": the filter shows what is typed, focus is visible everywhere,
Tab-then-type extends a field, keys typed ahead land where the user will be, placeholders
say what to type and never pose as values (and what is saved is what is shown)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button, DataTable, Input

from dicomtools.core.config import Config, NodeConfig, load_config, save_config
from dicomtools.tui.screens.dialogs import FormDialog
from dicomtools.tui.screens.retrieve import RetrieveScreen
from dicomtools.tui.screens.settings import FIELDS, SettingsScreen
from tests.tui.helpers import make_app, open_anonymize_dialog, screen_text, settle
from tests.tui.test_browse import goto_label

pytestmark = pytest.mark.anyio

FOCUS_MARK = "▌"  # the bar drawn at the left edge of the focused field, button or table


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


async def test_filter_shows_text_cursor_and_error_column_while_typing(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"(300A,00B0)/(300A,00B2")
        await pilot.pause()
        text = screen_text(app)
        line = line_with(text, "Filter /")
        assert "(300A,00B0)/(300A,00B2" in line  # the typed text, on the filter line, before Enter
        assert "▔" not in text  # no tall border eating the one-line bar
        error = line_with(text, "! ")
        assert "column" in error  # the error's column points into text that is visible
        await pilot.press(*")=?")
        await pilot.pause()
        text = screen_text(app)
        assert "(300A,00B0)/(300A,00B2)=?" in line_with(text, "Filter /")
        assert "! " not in text.split("\n")[2]  # valid now: the error line is gone


async def test_focus_is_visible_on_inputs_buttons_and_tables(phantom_root: Path) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD")
    app = make_app(phantom_root, cfg, retrieve_dir="/tmp/demo-retrieved")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RetrieveScreen)
        text = screen_text(app)
        assert f"Patient ID {FOCUS_MARK}" in text  # the ID field has the focus, and it shows
        assert f"Into {FOCUS_MARK}" not in text
        screen.query_one("#r-dest", Input).focus()
        await pilot.pause()
        text = screen_text(app)
        assert f"Into {FOCUS_MARK}/tmp/demo-retrieved" in text and f"Patient ID {FOCUS_MARK}" not in text
        screen.query_one("#r-anon", Button).focus()
        await pilot.pause()
        assert re.search(f"{FOCUS_MARK} *Anonymize: off", screen_text(app))
        # the Store toggle does not look focused when it is not
        await pilot.press("f4")
        await settle(pilot)
        text = screen_text(app)
        assert "All objects: off" in text and not re.search(f"{FOCUS_MARK} *All objects", text)
        # a table with the focus shows it too
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#nodes", DataTable).focus()
        await pilot.pause()
        assert f"{FOCUS_MARK} aria" in screen_text(app)


async def test_tab_then_type_adds_to_a_prefilled_field(phantom_root: Path) -> None:
    app = make_app(phantom_root, Config(), retrieve_dir="/tmp/demo-retrieved")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        dest = screen.query_one("#r-dest", Input)
        for _ in range(8):  # Tab until the folder field has the focus, as a user would
            if dest.has_focus:
                break
            await pilot.press("tab")
        assert dest.has_focus
        await pilot.press("X")
        assert dest.value == "/tmp/demo-retrievedX"  # extended, not replaced


async def test_tab_through_settings_and_type_keeps_every_value(tmp_path: Path) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD", machines=["TB1"])
    cfg.machines.mapping = {"TrueBeam1": "TB1"}
    path = tmp_path / "site.toml"
    save_config(cfg, path)
    app = make_app(None, load_config(path))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        inputs = [screen.query_one(f"#f-{fid}") for fid, _, _ in FIELDS]
        before = {i.id: i.value for i in inputs if isinstance(i, Input)}
        typed = 0
        for _ in range(40):
            await pilot.press("tab")
            focused = screen.focused
            if isinstance(focused, Input) and focused.value:
                await pilot.press("end")  # harmless: the cursor is already at the end
                typed += 1
        assert typed >= 8
        after = {i.id: i.value for i in inputs if isinstance(i, Input)}
        assert after == before  # nothing emptied by moving through the form


async def test_q_in_a_text_field_is_a_letter_and_the_footer_says_so(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert "q Quit" in screen_text(app)
        folder = app.screen.query_one("#s-folder", Input)
        folder.focus()
        await pilot.pause()
        assert "q Quit" not in screen_text(app)  # the footer no longer promises q
        await pilot.press("q")
        await pilot.pause()
        assert folder.value == "q" and app.is_running


async def test_keys_typed_ahead_into_a_dialog_land_in_the_fields_they_were_meant_for(
    phantom_root: Path,
) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await pilot.press("space")
        # one burst, as over SSH: open the dialog and type into it before it has drawn
        await pilot.press("a", *"/tmp/anon1", "tab", *"ANON01", "tab", *"ANON^ONE")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, FormDialog)
        values = dialog.values()
        assert (values["dest"], values["patient_id"], values["patient_name"]) == (
            "/tmp/anon1", "ANON01", "ANON^ONE")


async def test_a_burst_into_an_open_dialog_keeps_the_order_of_tab_and_characters(phantom_root: Path) -> None:
    """Keys queued in one go (no wait between them, as tmux and SSH deliver them): a Tab moves on
    before the characters typed after it, though Textual queues each key to the field focused when
    it takes it (tests/tui/test_tmux_issue13.py saw the ID land in the folder field under load)."""
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_anonymize_dialog(pilot)
        burst = [*"/tmp/x", "tab", *"ANON01", "tab", *"ANON^ONE", "shift+tab", *"2"]
        for key in burst:
            character = key if len(key) == 1 else ("\t" if key == "tab" else None)
            app.post_message(events.Key(key, character))
        await pilot.pause()
        await pilot.pause()
        values = dialog.values()
        assert (values["dest"], values["patient_id"], values["patient_name"]) == ("/tmp/x", "ANON012", "ANON^ONE")


async def test_placeholders_say_what_to_type_and_never_pose_as_values(tmp_path: Path, phantom_root: Path) -> None:
    app = make_app(phantom_root, Config())
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        seen = 0
        for key in ("f2", "f3", "f4", "f5"):
            await pilot.press(key)
            await settle(pilot)
            for inp in app.screen.query(Input):
                if inp.placeholder:
                    seen += 1
                    assert inp.placeholder.startswith(("e.g.", "empty =", "optional", "search")), inp.placeholder
        assert seen >= 12


async def test_cleared_options_save_as_shown_empty(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    save_config(Config(), path)
    app = make_app(None, load_config(path))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        options = app.screen.query_one("#f-anon-options", Input)
        assert options.value == "CleanDesc RetainDeviceIdent"
        options.focus()
        options.value = ""
        await pilot.pause()
        assert options.placeholder == "empty = no options; e.g. CleanDesc"  # empty says what it means
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert load_config(path).anonymize.options == []
