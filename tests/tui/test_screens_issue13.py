"""Issue 13, "Screens": flat list, Store, Retrieve, demo settings, Settings, filter results,
and the smaller ones (empty start, palette glyphs, footer under dialogs, node list)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.command import CommandPalette, SearchIcon
from textual.widgets import DataTable, Input, Select, Static

from dicomtools.core.cli.main import main as cli_main
from dicomtools.core.config import Config, NodeConfig, load_config, save_config
from dicomtools.tui.marks import subforest
from dicomtools.tui.screens.dialogs import ConfirmDialog, FormDialog
from dicomtools.tui.screens.flat_list import FlatListDialog
from dicomtools.tui.screens.store import StoreScreen
from dicomtools.tui.widgets.node_picker import NodePicker
from dicomtools.tui.widgets.progress_pane import ProgressPane
from dicomtools.tui.widgets.ref_tree import RefTree
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_browse import goto_label, visible_labels

pytestmark = pytest.mark.anyio


async def mark_both_patients(pilot) -> None:
    await goto_label(pilot, "PHANTOM-001")
    await pilot.press("space")
    await goto_label(pilot, "PHANTOM-002")
    await pilot.press("space")


# ---------------------------------------------------------------- 7 flat list
async def test_flat_list_shows_the_part_that_differs_scrolls_and_saves(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await pilot.press("space")
        await goto_label(pilot, "PLAN_B")
        await pilot.press("space", "f")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, FlatListDialog)
        text = screen_text(app)
        # at 80 columns each row shows what it is, not the same "Patient ... / RT-Plan ..." start
        assert "PHANTOM-001  RT-Plan: PLAN_A" in text
        assert "RT-Struct: SS_CT" in text and "Beam: G000 (1)" in text
        table = dialog.query_one(DataTable)
        assert table.row_count > 20
        for _ in range(30):
            await pilot.press("right")
        await pilot.pause()
        assert table.scroll_x > 0  # the rest of a row can be reached
        # s saves exactly what `show --format flat` prints for these plans
        out = tmp_path / "marked.txt"
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog)
        await pilot.press(*str(out), "enter")
        await pilot.pause()
        assert app.screen is dialog and "saved to" in screen_text(app)
        assert str(dialog.query_one("#flat-status", Static).content) == f"saved to {out}"
        saved = out.read_text()
    assert cli_main(["show", "--path", str(phantom_root), "--format", "flat", "--noCache"]) == 0
    cli_lines = set(capsys.readouterr().out.splitlines())
    plan_lines = [line for line in saved.splitlines() if " / RT-Plan: " in line]
    assert plan_lines and all(line in cli_lines for line in plan_lines)


# ---------------------------------------------------------------- 8 store
async def test_store_counts_plans_per_patient_names_model_and_itemises_left_out(phantom_root: Path) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD",
                                   machines=["TrueBeam1", "GANTRY1"])
    app = make_app(phantom_root, cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await mark_both_patients(pilot)
        await pilot.press("t")
        await settle(pilot)
        store = app.screen
        assert isinstance(store, StoreScreen)
        text = screen_text(app)
        assert "2 patient(s), 8 plan(s)" in text  # PLAN_A of each patient counts twice
        table = store.query_one("#machines", DataTable)
        patients = {str(table.get_row_at(i)[0]) for i in range(table.row_count)}
        assert patients == {"PHANTOM-001", "PHANTOM-002"}
        assert "EMPTY: add default RDS=MACHINE" in text  # the model to map is named
        # what the order leaves out is itemised: a line per reason, ^l every file with its reason
        assert "left out 26: REG, RT image, record or other object" in text
        assert "left out 2: dose not sent: referenced plan not in folder" in text
        await pilot.press("ctrl+l")
        await pilot.pause()
        listed = screen_text(app)
        assert f"Left out of the store: {len(store.skipped)} file(s)" in listed
        assert "RD.ORPHAN.PLAN.dcm: dose not sent" in listed


async def test_store_node_is_a_picker_that_sees_a_node_added_in_settings(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD")
    save_config(cfg, path)
    app = make_app(None, load_config(path))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        picker = app.screen.query_one(NodePicker)
        assert picker.node_name == "aria"
        await pilot.press("f5")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        app.screen.query_one("#f-node-called_ae", Input).value = "ORTHANC"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("f4")
        await settle(pilot)
        options = [value for _, value in picker._options]
        assert "node1" in options and "aria" in options
        assert picker.node_name == "aria"  # the choice made is kept


# ---------------------------------------------------------------- 9 retrieve
async def test_a_retrieve_into_another_folder_asks_before_dropping_marks(phantom_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "retrieved"
    other.mkdir()
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await pilot.press("space")
        app.folder_changed(str(other))  # what a finished retrieve calls
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "1 mark(s)" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.browse.root == str(phantom_root) and len(app.browse.marks) == 1
        app.folder_changed(str(other))
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert app.browse.root == str(other)


async def test_the_progress_pane_shows_the_newest_job_first_at_80x24(phantom_root: Path) -> None:
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        pane = app.screen.query_one(ProgressPane)
        for n in range(1, 8):
            app.runner.run(pane, "retrieve", f"job {n}", lambda sink, job, n=n: n, lambda o: f"result {o.result}",
                           label=f"PATIENT-{n}")
            await wait_for(pilot, lambda: not app.jobs.running())
        await settle(pilot)
        text = screen_text(app)
        assert "PATIENT-7 [done] result 7" in text  # the latest result is on screen
        assert text.index("PATIENT-7") < text.index("PATIENT-6")


# ---------------------------------------------------------------- 10 demo
async def test_demo_settings_go_to_the_users_own_preset(tmp_path: Path) -> None:
    real = tmp_path / "home" / "config.toml"
    scratch = tmp_path / "scratch" / "demo-preset.toml"
    cfg = Config()
    cfg.nodes["demo"] = NodeConfig(host="127.0.0.1", port=40000, called_ae="DEMO")
    cfg.path = scratch
    app = make_app(None, cfg, node="demo", demo=True, user_preset=real)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        text = screen_text(app)
        assert str(real) in text and "Demo: ^s saves your nodes to this preset" in text
        await pilot.press("ctrl+n")
        await pilot.pause()
        app.screen.query_one("#f-node-host", Input).value = "10.0.0.5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)  # said before saving
        await pilot.press("y")
        await pilot.pause()
    saved = load_config(real)
    assert list(saved.nodes) == ["node1"] and saved.nodes["node1"].host == "10.0.0.5"
    assert not scratch.exists()


# ---------------------------------------------------------------- 11 settings
async def test_settings_fresh_start_choice_error_clears_and_one_default_port(tmp_path: Path) -> None:
    assert Config().local.scp_port == 11112
    path = tmp_path / "new.toml"
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD")
    cfg.path = path  # not written yet
    app = make_app(None, cfg)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        text = screen_text(app)
        assert "[saved]" not in text and "not saved yet" in text
        assert "Our SCP port       11112" in text
        assert isinstance(app.screen.query_one("#f-node-retrieve_method"), Select)
        port = app.screen.query_one("#f-node-port", Input)
        port.value = "x"
        await pilot.pause()
        assert "! Port:" in screen_text(app)
        port.value = "57347"  # back to the saved value: the error goes
        await pilot.pause()
        assert "! Port:" not in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = screen_text(app)
        assert "(a new file)" in text and ".bak" not in text
    assert not Path(str(path) + ".bak").exists() and load_config(path).nodes["aria"].port == 57347


# ---------------------------------------------------------------- 12 filter results
async def test_filter_values_first_patients_open_and_an_orphan_dose_can_be_exported(
    phantom_root: Path, tmp_path: Path
) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"RTPlanLabel=QA*; (300A,00B0)/(300A,00B2)=?", "enter")
        await settle(pilot)
        text = screen_text(app)
        assert "filter: 2 of 2 patients, 2 plans" in text
        assert "RT-Plan  QA_A" in text  # the matching patients opened by themselves
        await pilot.press("r")
        await pilot.pause()
        assert "TrueBeam1" in screen_text(app)  # the asked-for value is in view at 80 columns
        await pilot.press("escape")
        await pilot.pause()
        assert app.browse.search_result is None
        # an unconnected dose can be marked and exported
        tree = app.screen.query_one(RefTree)
        await goto_label(pilot, "Unconnected (6)")
        await pilot.press("right")
        await pilot.pause()
        orphan = next(label for label in visible_labels(tree) if "RT-Dose" in label and "[ ]" in label)
        await goto_label(pilot, orphan)
        await pilot.press("space")
        pairs = app.browse.marked_pairs()
        assert len(pairs) == 1 and pairs[0][1].kind == "RT-Dose"
        assert subforest(pairs)[0].unconnected  # it stays an unconnected item
        dest = tmp_path / "export"
        await pilot.press("e", *str(dest), "enter")
        await wait_for(pilot, lambda: not app.jobs.running())
        copied = [p for p in dest.rglob("*") if p.is_file()]
        assert [p.name for p in copied] == [os.path.basename(i.path) for i in pairs[0][1].instances]


# ---------------------------------------------------------------- 13 smaller
async def test_empty_start_palette_dialog_footer_and_node_list(tmp_path: Path) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="aria-dicom.example.org", port=57347, called_ae="VMSDBD_LONG_AE")
    app = make_app(None, cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        hint = next(i for i, line in enumerate(lines) if "No folder open." in line)
        assert 6 <= hint <= 14 and "Press o to open a folder" in "\n".join(lines)
        assert lines[hint].index("No folder open.") > 20  # centred, not in a corner
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        assert app.screen.query_one(SearchIcon).icon == ">"
        assert "🔎" not in screen_text(app)
        await pilot.press("escape", "o")
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "esc Close" in footer and "Filter" not in footer  # the dialog's keys, not Browse's
        await pilot.press("escape", "f5")
        await settle(pilot)
        assert "VMSDBD_LONG_AE" in screen_text(app)


async def test_quitting_with_unsaved_settings_asks_first(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    save_config(Config(), path)
    app = make_app(None, load_config(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        app.screen.query_one("#f-local-ae_title", Input).value = "PHYSICS9"
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "Settings have unsaved changes" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running
    assert load_config(path).local.ae_title == "DICOMTOOLS"
