"""Issue 13, "Every problem in one place": unreadable files are named with their reason,
dialogs check what was typed and stay open, refused keys answer, failed jobs say what went
wrong without a Python class name (and the Log keeps it)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from dicomtools.core.archive.scan import scan
from dicomtools.core.config import Config, NodeConfig
from dicomtools.tui.jobs import error_text
from dicomtools.tui.logbridge import BufferHandler, LogCapture
from dicomtools.tui.widgets.ref_tree import RefTree
from tests.tui.helpers import make_app, open_anonymize_dialog, screen_text, settle, wait_for
from tests.tui.test_browse import goto_label, visible_labels

pytestmark = pytest.mark.anyio


async def test_unreadable_files_are_listed_with_path_and_reason(phantom_root: Path) -> None:
    expected = scan(str(phantom_root), workers=1).unreadable  # what the CLI lists
    assert len(expected) == 5
    app = make_app(phantom_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = app.screen.query_one(RefTree)
        await goto_label(pilot, "Unreadable files (5)")
        text = screen_text(app)
        assert "Files the scan could not use" in text  # the details pane explains the line
        await pilot.press("enter")
        await pilot.pause()
        labels = visible_labels(tree)
        for bad in expected:
            rel = os.path.relpath(bad.path, phantom_root)
            assert f"{rel}: {bad.reason}" in labels
        # a file's details name it in full with the reason
        await goto_label(pilot, "empty.dcm")
        text = screen_text(app)
        assert "Unreadable file" in text and "reason: empty file" in text


async def test_anonymize_dialog_checks_inline_and_stays_open(phantom_root: Path, tmp_path: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_anonymize_dialog(pilot)
        # no destination
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "! give a destination folder" in screen_text(app)
        # a destination inside the browsed folder
        dialog.query_one("#field-dest", Input).value = str(phantom_root / "out")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "inside the browsed folder" in screen_text(app)
        # a file where a folder is needed
        afile = tmp_path / "afile"
        afile.write_text("x")
        dialog.query_one("#field-dest", Input).value = str(afile)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "! not a folder:" in screen_text(app)
        assert str(dialog.query_one("#dialog-error", Static).content) == f"! not a folder: {afile}"
        # an empty new ID
        dialog.query_one("#field-dest", Input).value = str(tmp_path / "anon")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "! give a new Patient ID" in screen_text(app)
        # everything typed so far is still there
        assert dialog.values()["dest"] == str(tmp_path / "anon")
        assert not (tmp_path / "anon").exists()


async def test_a_failed_job_says_why_without_a_class_name_and_the_log_keeps_it(
    phantom_root: Path, tmp_path: Path
) -> None:
    handler = BufferHandler()
    with LogCapture(handler, logging.INFO):
        await run_failing_anonymize(phantom_root, tmp_path, handler)


async def run_failing_anonymize(phantom_root: Path, tmp_path: Path, handler: BufferHandler) -> None:
    app = make_app(phantom_root, log_handler=handler)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_anonymize_dialog(pilot)
        for key, value in (("dest", str(tmp_path / "anon")), ("patient_id", "ANON01"),
                           ("patient_name", "ANON^ONE"), ("options", "NoSuchOption")):
            dialog.query_one(f"#field-{key}", Input).value = value
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.jobs.running())
        await settle(pilot)
        text = screen_text(app)
        line = next(line for line in text.splitlines() if "anonymize [FAILED]" in line)
        assert "NoSuchOption" in line
        assert "Error" not in line and "Exception" not in line  # no AnonymizeError: ...
        failures = [r.message for r in app.log_handler.snapshot(logging.WARNING) if "job failed" in r.message]
        assert failures and "NoSuchOption" in failures[-1]


def test_error_text_has_no_class_names() -> None:
    assert error_text(FileNotFoundError(2, "No such file or directory", "/x/y")) == "No such file or directory: /x/y"
    assert error_text(ValueError("bad  value\nsecond line")) == "bad value second line"
    assert "Error" not in error_text(RuntimeError())


async def test_every_refused_key_answers(phantom_root: Path) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD", machines=["TB1"])
    app = make_app(phantom_root, cfg)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)

        def toasts() -> str:
            return " ".join(str(n.message) for n in app._notifications)

        # Browse: marking a beam, store/export with no marks, cancel with no job
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_B")
        await pilot.press("right")
        await goto_label(pilot, "Beam  G090")
        await pilot.press("space")
        await pilot.pause()
        assert "only patients, plans and unconnected items can be marked" in toasts()
        await pilot.press("e")
        await pilot.pause()
        assert "nothing marked" in toasts()
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert "no job is running" in toasts()
        # Store: ^s with an unmapped machine says so on the screen
        await goto_label(pilot, "PLAN_B")
        await pilot.press("space", "t")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "! not sent: 2 beam(s) with an unmapped machine" in screen_text(app)
        # Retrieve: ^r with nothing found, ^f with nothing typed
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "! nothing marked" in screen_text(app)
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert "! give a Patient ID or a name" in screen_text(app)
