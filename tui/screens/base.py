"""What every top-level screen shares: a typed handle on the app, job start, refused keys.

``self.tool`` is the running :class:`DicomToolsApp` with its real type (config,
jobs, runner, clock...), so screens need no ``type: ignore`` to reach it.
``refuse`` is the one way a screen says no to a key: a bell plus a line saying
why, so no refused key press goes unanswered.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar, cast

from textual.screen import Screen
from textual.widgets import Input

from dicomtools.tui.jobs import Done, Job, Work
from dicomtools.tui.widgets.progress_pane import ProgressPane

if TYPE_CHECKING:
    from dicomtools.tui.app import DicomToolsApp

T = TypeVar("T")

log = logging.getLogger(__name__)


class AppScreen(Screen[None]):
    SCOPE = ""

    @property
    def tool(self) -> DicomToolsApp:
        return cast("DicomToolsApp", self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "q" quits only where it cannot be meant as a letter: in a text field it is typed
        # (and the footer stops offering it); ^q quits from anywhere
        if action == "quit_key" and isinstance(self.focused, Input):
            return False
        return True

    async def action_quit_key(self) -> None:
        await self.tool.action_quit()

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def refuse(self, why: str) -> None:
        """Answer a key press that cannot be done now: bell, the reason where the user looks,
        and the same line in the Log (a toast vanishes; the Log keeps it)."""
        self.app.bell()
        log.info("%s: not done: %s", self.SCOPE or "screen", why)
        self.say(f"! {why}")

    def say(self, text: str) -> None:
        """Show one line in the screen's status line (screens override; default: a toast)."""
        self.notify(text.removeprefix("! "), severity="warning" if text.startswith("!") else "information")

    def run_job(self, pane: ProgressPane, title: str, work: Work[T], done: Done[T], *,
                label: str | None = None, unit: str = "files") -> Job:
        return self.tool.runner.run(pane, self.SCOPE, title, work, done, label=label, unit=unit)

    def action_cancel(self) -> None:
        if not self.tool.runner.cancel(self.SCOPE):
            self.refuse("no job is running on this screen")
            return
        self.say("cancelling: stops after the item in flight")


