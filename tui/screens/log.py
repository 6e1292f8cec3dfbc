"""Log: everything logged (core, pydicom, pynetdicom, warnings) since the app started.

Records come from the app's buffering handler; keys 1-4 choose the lowest level shown.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from dicomtools.tui.actions import bindings_for
from dicomtools.tui.logbridge import LogLine
from dicomtools.tui.widgets.nav import NavBar

LEVEL_STYLE = {"WARNING": "bold", "ERROR": "bold reverse", "CRITICAL": "bold reverse"}


def format_line(line: LogLine, clock: Any) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(clock.wall(line.created) + " ", style="dim")
    text.append(f"{line.level:<7} ", style=LEVEL_STYLE.get(line.level, ""))
    text.append(f"{line.name}: ", style="dim")
    text.append(line.message)
    return text


class LogScreen(Screen[None]):
    SCOPE = "log"
    BINDINGS = bindings_for("top", "log")

    def __init__(self) -> None:
        super().__init__(id="log")
        self.min_level = logging.INFO
        self.last_seq = 0

    def compose(self) -> ComposeResult:
        yield NavBar("log")
        yield Static("", id="log-level", markup=False)
        yield RichLog(id="log-view", max_lines=20000, wrap=False, highlight=False, markup=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.refill()

    def on_screen_resume(self) -> None:
        self.refill()
        self.query_one(RichLog).focus()

    def action_level(self, name: str) -> None:
        self.min_level = logging.getLevelName(name)
        self.refill()

    def _header(self, shown: int) -> str:
        name = logging.getLevelName(self.min_level)
        return f"Showing {name} and above: {shown} lines.  1 debug  2 info  3 warning  4 errors"

    def refill(self) -> None:
        handler = self.app.log_handler  # type: ignore[attr-defined]
        clock = self.app.clock  # type: ignore[attr-defined]
        lines = handler.snapshot(self.min_level)
        view = self.query_one(RichLog)
        view.clear()
        for line in lines:
            view.write(format_line(line, clock))
        self.last_seq = handler.lines[-1].seq if handler.lines else 0
        self.shown = len(lines)
        self.query_one("#log-level", Static).update(self._header(self.shown))

    def append_new(self) -> None:
        """Add records newer than the last one shown (called on LogAppended)."""
        handler = self.app.log_handler  # type: ignore[attr-defined]
        clock = self.app.clock  # type: ignore[attr-defined]
        view = self.query_one(RichLog)
        for line in handler.snapshot(self.min_level):
            if line.seq > self.last_seq:
                view.write(format_line(line, clock))
                self.shown += 1
        if handler.lines:
            self.last_seq = handler.lines[-1].seq
        self.query_one("#log-level", Static).update(self._header(self.shown))
