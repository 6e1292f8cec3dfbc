"""Log: everything logged (core, pydicom, pynetdicom, warnings) since the app started.

Records come from the app's buffering handler; keys 1-4 choose the lowest level shown.
Long lines wrap (``w`` toggles), and the view opens at the newest line: what a
user told "the problem is in the Log" looks for is what just happened.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, RichLog, Static

from dicomtools.tui.actions import bindings_for
from dicomtools.tui.logbridge import LogLine
from dicomtools.tui.screens.base import AppScreen
from dicomtools.tui.widgets.nav import NavBar

LEVEL_STYLE = {"WARNING": "bold", "ERROR": "bold reverse", "CRITICAL": "bold reverse"}


def format_line(line: LogLine, clock: Any, wrap: bool = True) -> Text:
    text = Text(no_wrap=not wrap, overflow="fold" if wrap else "ellipsis")
    text.append(clock.wall(line.created) + " ", style="dim")
    text.append(f"{line.level:<7} ", style=LEVEL_STYLE.get(line.level, ""))
    text.append(f"{line.name}: ", style="dim")
    text.append(line.message)
    return text


class LogScreen(AppScreen):
    SCOPE = "log"
    BINDINGS = bindings_for("top", "log")

    def __init__(self) -> None:
        super().__init__(id="log")
        self.min_level = logging.INFO
        self.last_seq = 0
        self.shown = 0
        self.wrap = True

    def compose(self) -> ComposeResult:
        yield NavBar("log")
        yield Static("", id="log-level", markup=False)
        yield RichLog(id="log-view", max_lines=20000, wrap=True, highlight=False, markup=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.refill()

    def on_screen_resume(self) -> None:
        self.refill()
        self.query_one(RichLog).focus()

    def action_level(self, name: str) -> None:
        self.min_level = logging.getLevelName(name)
        self.refill()

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        self.query_one(RichLog).wrap = self.wrap
        self.refill()

    def _header(self, shown: int) -> str:
        name = logging.getLevelName(self.min_level)
        wrap = "w: one line each" if self.wrap else "w: wrap long lines"
        return f"Showing {name} and above: {shown} lines, newest last.  1-4 level  {wrap}"

    def refill(self) -> None:
        handler = self.tool.log_handler
        clock = self.tool.clock
        lines = handler.snapshot(self.min_level)
        view = self.query_one(RichLog)
        view.clear()
        for line in lines:
            view.write(format_line(line, clock, self.wrap), scroll_end=False)
        self.last_seq = handler.lines[-1].seq if handler.lines else 0
        self.shown = len(lines)
        self.query_one("#log-level", Static).update(self._header(self.shown))
        self.call_after_refresh(view.scroll_end, animate=False)

    def append_new(self) -> None:
        """Add records newer than the last one shown (called on LogAppended)."""
        handler = self.tool.log_handler
        clock = self.tool.clock
        view = self.query_one(RichLog)
        for line in handler.snapshot(self.min_level):
            if line.seq > self.last_seq:
                view.write(format_line(line, clock, self.wrap))
                self.shown += 1
        if handler.lines:
            self.last_seq = handler.lines[-1].seq
        self.query_one("#log-level", Static).update(self._header(self.shown))
