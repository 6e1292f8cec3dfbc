"""The app's text input: the cursor lands at the end on focus, never a select-all.

Tabbing into a prefilled field and typing must extend the value, not replace
it (a folder, a node name or a mapping was wiped that way). Honours the
app-wide cursor-blink switch (off in tests and screenshots).
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widgets import Input


class TextInput(Input):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("select_on_focus", False)
        super().__init__(*args, **kwargs)

    def on_mount(self) -> None:
        self.cursor_blink = bool(getattr(self.app, "cursor_blink_enabled", True))

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self.cursor_position = len(self.value)
