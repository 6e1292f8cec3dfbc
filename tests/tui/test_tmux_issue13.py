"""Issue 13 in a real terminal (tmux, 80x24, ``capture-pane``): what the SVG snapshots missed.

Items 1 (the filter shows what is typed), 2 (focus visible, Tab-then-type, keys typed
ahead), 4 (unreadable files named), 5 (the Log wraps, has each job's result, no
library chatter) and 7 (the flat list shows the part that differs, and saves).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.tui.test_tmux import Terminal, archive, assert_intact, command, terminal  # noqa: F401

W, H = 80, 24


def start(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    terminal.start(command(tmp_path, f"tui --path {shlex.quote(str(archive))}"), width=W, height=H)
    assert_intact(terminal.wait_for("2 patients, 8 plans"), H)


def joined(screen: str) -> str:
    """The screen's text with line breaks and box borders folded away (for wrapped lines)."""
    return " ".join(line.strip(" │┃") for line in screen.splitlines())


def test_filter_text_is_visible_while_typing(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    start(terminal, tmp_path, archive)
    terminal.keys("/")
    terminal.type("(300A,00B0)/(300A,00B2")
    screen = terminal.wait_for("Filter / ▌(300A,00B0)/(300A,00B2")
    assert "▔" not in screen
    assert "column" in terminal.wait_for("! ")
    terminal.type(")=?")
    terminal.wait_for("Filter / ▌(300A,00B0)/(300A,00B2)=?")
    terminal.keys("Enter")
    assert "filter [done]" in terminal.wait_for("filter [done]")
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")


def test_focus_shows_and_typing_goes_where_the_user_is(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    start(terminal, tmp_path, archive)
    terminal.keys("F3")
    terminal.wait_for("Patient ID ▌")  # the field with the focus is marked, without colour
    def marked(screen: str) -> list[str]:
        return [line for line in screen.splitlines() if "▌" in line]

    for _ in range(6):  # Tab, as a user would, until the folder field has the focus
        before = marked(terminal.screen())
        terminal.keys("Tab")
        after = terminal.wait(lambda t, before=before: marked(t) != before, "the focus mark to move")
        if "Into ▌" in after:
            break
    screen = terminal.wait_for("Into ▌")
    assert "Patient ID ▌" not in screen
    terminal.type("X")
    terminal.wait_for(f"{archive.name}X")  # added at the end of the prefilled folder, not replacing it
    # Browse: mark a plan and type into the anonymize dialog in one burst, as over SSH
    terminal.keys("F2")
    terminal.wait_for("PHANTOM-001")
    terminal.keys("Enter")
    terminal.wait_for("RT-Plan  PLAN_A")
    terminal.keys("Down", "Space")
    terminal.wait_for("[*] RT-Plan  PLAN_A")
    terminal.tmux("send-keys", "a", "/tmp/x", "Tab", "ANON01")
    screen = terminal.wait_for("▌ANON01")
    assert "Destination folder     /tmp/x " in screen and "New Patient ID        ▌ANON01" in screen
    terminal.keys("Escape")
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")


def test_unreadable_files_are_named_with_their_reason(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    start(terminal, tmp_path, archive)
    terminal.keys("Down", "Down")
    terminal.wait_for("Files the scan could not use")
    terminal.keys("Enter")
    screen = terminal.wait_for("empty.dcm: empty file")
    assert "notes.txt: not DICOM" in screen and "photo.jpg: not DICOM" in screen
    assert_intact(screen, H)
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")


def test_log_wraps_and_opens_at_the_newest_line(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    start(terminal, tmp_path, archive)
    terminal.keys("F6")
    screen = terminal.wait_for("job done: scan")
    assert "…" not in screen  # nothing cut at the pane width
    assert f"dicomtools TUI started (folder: {archive}" in joined(screen)  # a long line, read whole
    assert "pynetdicom" not in screen and "pydicom" not in screen
    assert "108 files, 103 DICOM, 5 unreadable" in joined(screen)  # the job's own result, at INFO
    terminal.keys("w")
    terminal.wait_for("w: wrap long lines")
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")


def test_flat_list_shows_the_part_that_differs_and_saves(terminal: Terminal, tmp_path: Path, archive: Path) -> None:  # noqa: F811
    start(terminal, tmp_path, archive)
    terminal.keys("Enter")
    terminal.wait_for("RT-Plan  PLAN_A")
    terminal.keys("Down", "Space", "f")
    screen = terminal.wait_for("Marked items (flat list)")
    assert "PHANTOM-001  RT-Plan: PLAN_A" in screen
    assert "RT-Struct: SS_CT" in screen and "Beam: G000 (1)" in screen
    out = tmp_path / "flat.txt"
    terminal.keys("s")
    terminal.wait_for("Save the flat list")
    terminal.type(str(out))
    terminal.keys("Enter")
    terminal.wait_for("saved to")
    text = out.read_text()
    assert "Patient: PHANTOM-001 (PHANTOM^ALPHA) / RT-Plan: PLAN_A, " in text
    terminal.keys("Escape")
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")
