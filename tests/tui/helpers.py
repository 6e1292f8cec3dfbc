"""Plain helpers for the TUI tests: build a deterministic app, read the screen as text."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from textual.pilot import Pilot

from dicomtools.core.config import Config
from dicomtools.tui.app import DicomToolsApp
from dicomtools.tui.clock import FixedClock
from dicomtools.tui.screens.dialogs import FormDialog


def make_app(path: str | None = None, config: Config | None = None, **kwargs: Any) -> DicomToolsApp:
    """An app with everything that varies turned off: fixed clock, no polling, no blink."""
    kwargs.setdefault("clock", FixedClock())
    kwargs.setdefault("poll_interval", 0)
    kwargs.setdefault("cursor_blink", False)
    kwargs.setdefault("scan_workers", 1)
    return DicomToolsApp(str(path) if path is not None else None, config or Config(), **kwargs)


def screen_text(app: DicomToolsApp) -> str:
    """What a user sees right now, as plain text (no colours)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
        record=True, legacy_windows=False, safe_box=False,
    )
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True
    )
    console.print(update)
    return console.export_text()


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Let workers finish and their messages be handled."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_anonymize_dialog(pilot: Pilot[Any], plan: str = "PLAN_A") -> FormDialog:
    """From a freshly opened archive: open the first patient, mark ``plan``, press ``a``."""
    from tests.tui.test_browse import goto_label  # the tree helpers live with the browse tests

    await settle(pilot)
    await pilot.press("enter")
    await goto_label(pilot, plan)
    await pilot.press("space", "a")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, FormDialog)
    return dialog


async def wait_for(pilot: Pilot[Any], predicate: Any, timeout: float = 20.0, step: float = 0.05) -> None:
    """Pump the app until ``predicate()`` holds; fail with the screen on timeout."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await pilot.pause(step)
        if predicate():
            return
    raise AssertionError("condition not met; screen:\n" + screen_text(pilot.app))  # type: ignore[arg-type]
