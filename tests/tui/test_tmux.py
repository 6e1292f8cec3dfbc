"""The real program in a real terminal (tmux): start-up, keys, what a user sees, clean exit.

Catches what Pilot cannot: crashes before the first frame, terminal handling,
and stray log or warning output corrupting the screen (stderr must stay empty).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomtools.core.config import Config, NodeConfig, save_config
from dicomtools.core.phantom import generate

TMUX = shutil.which("tmux")


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        out = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        return out.stdout

    def start(self, command: str, width: int = 100, height: int = 30) -> None:
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def wait(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        return self.wait(lambda t: needle in t, repr(needle), timeout)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"dicomtools-test-{uuid.uuid4().hex[:8]}")
    try:
        yield term
    finally:
        term.tmux("kill-server")


def program() -> str:
    exe = shutil.which("dicomtools")
    if exe:
        return shlex.quote(exe)
    return f"{shlex.quote(sys.executable)} -m dicomtools.tui.entry"


def command(tmp_path: Path, args: str, env: dict[str, str] | None = None, stderr_file: bool = False) -> str:
    """The shell line tmux runs; Textual draws on stderr, so it stays on the terminal
    unless ``stderr_file`` (for runs that never start the UI)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "TERM": "xterm-256color",
        "TEXTUAL_ANIMATIONS": "none",
        "PATH": os.environ.get("PATH", ""),
    }
    base.update(env or {})
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in base.items())
    redirect = f" 2>{shlex.quote(str(tmp_path / 'stderr.txt'))}" if stderr_file else ""
    return f"env -i {assigns} {program()} {args}{redirect}; echo EXIT=$?; sleep 60"


def assert_intact(screen: str, height: int) -> None:
    """No stray output: the top line is the nav bar, the bottom line the footer, nothing scrolled."""
    lines = screen.rstrip("\n").splitlines()
    assert len(lines) <= height
    assert lines[0].startswith(" dicomtools │ F2 Browse"), screen
    assert "palette" in lines[-1] or "F1 Keys" in lines[-1], screen


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tmux-archive")
    generate(root, patients=2, seed=0)
    return root


def test_browse_filter_keys_log_and_quit_in_a_real_terminal(
    terminal: Terminal, tmp_path: Path, archive: Path
) -> None:
    cfg = Config()
    cfg.nodes["aria"] = NodeConfig(host="127.0.0.1", port=57347, called_ae="VMSDBD")
    preset = tmp_path / "site.toml"
    save_config(cfg, preset)
    terminal.start(command(tmp_path, f"tui --path {shlex.quote(str(archive))} --config {shlex.quote(str(preset))} "
                                     f"--node aria"))
    # the footer settles once the tree has focus (the scan may finish before that)
    screen = terminal.wait(lambda t: "2 patients, 8 plans" in t and "q Quit" in t, "the scanned tree")
    assert_intact(screen, 30)  # the archive's broken files made pydicom warn: none of it on screen
    assert "PHANTOM-001" in screen and "PHANTOM-002" in screen
    assert "q Quit" in screen and "F1 Keys" in screen
    # open the first patient
    terminal.keys("Enter")
    screen = terminal.wait_for("RT-Plan  PLAN_A  APPROVED")
    assert "RT-Ion-Plan  PROTON_1" in screen and "Unconnected (6)" in screen
    # filter: only the QA plans are left, Esc brings everything back
    terminal.keys("/")
    terminal.type("RTPlanLabel=QA*")
    terminal.keys("Enter")
    screen = terminal.wait_for("filter [done] 2 matched")
    assert "QA_A" in screen and "PLAN_B" not in screen
    terminal.keys("Escape")
    terminal.wait_for("PLAN_B")
    # keys dialog
    terminal.keys("F1")
    terminal.wait_for("Keys   (esc closes)")
    terminal.keys("Escape")
    terminal.wait(lambda t: "esc closes" not in t, "keys dialog to close")
    # the log screen shows what the core logged, nothing went to stderr
    terminal.keys("F6")
    screen = terminal.wait(lambda t: "dicomtools TUI started" in t and "4 Errors" in t, "the log screen")
    assert "job started: scan" in screen
    assert_intact(screen, 30)
    terminal.keys("q")
    terminal.wait_for("EXIT=0")


def test_starts_with_no_color_and_plain_dicomtools_opens_the_tui(
    terminal: Terminal, tmp_path: Path, archive: Path
) -> None:
    terminal.start(f"cd {shlex.quote(str(tmp_path))} && " + command(tmp_path, "", env={"NO_COLOR": "1"}),
                   width=80, height=24)
    screen = terminal.wait_for("No folder open.")  # the hint, in the middle of an empty start
    assert "Press o to open a folder" in screen
    terminal.keys("o")
    terminal.wait_for("Open folder")
    terminal.type(str(archive))
    terminal.keys("Enter")
    assert_intact(terminal.wait_for("2 patients, 8 plans"), 24)
    terminal.keys("C-q")
    terminal.wait_for("EXIT=0")


def test_bad_preset_is_one_line_and_exit_2(terminal: Terminal, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[nodes.aria]\nport = 'x'\n")
    terminal.start(command(tmp_path, f"tui --config {shlex.quote(str(bad))}", stderr_file=True))
    terminal.wait_for("EXIT=2")
    err = (tmp_path / "stderr.txt").read_text()
    assert err.count("\n") == 1 and "bad.toml" in err and "nodes.aria.port" in err
