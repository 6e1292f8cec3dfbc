"""The app's text input: the cursor lands at the end on focus, never a select-all.

Tabbing into a prefilled field and typing must extend the value, not replace
it (a folder, a node name or a mapping was wiped that way). Honours the
app-wide cursor-blink switch (off in tests and screenshots).
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
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


def deliver_typed_ahead(screen: Screen[Any], event: events.Key) -> bool:
    """Put a printable key that reached ``screen`` or the app into the field the user is in.

    Keys typed in a burst (over SSH: ``a`` then the destination) are all
    handed to the widget focused when they arrive; a dialog opened by the
    first key takes the focus only afterwards, so the rest would bubble up
    unused. The focused text field gets them instead (a key the field itself
    received never gets here: the field stops it). True when delivered.
    """
    if not event.is_printable or event.character is None:
        return False
    hold = getattr(screen, "take_early_key", None)  # a dialog whose fields are not there yet
    if hold is not None and hold(event.character):
        event.stop()
        event.prevent_default()
        return True
    target = screen.focused
    if target is None:
        target = next(iter(screen.query(Input)), None)
        if target is not None:
            screen.set_focus(target)
    if not isinstance(target, Input) or target.disabled:
        return False
    event.stop()
    event.prevent_default()
    target.insert_text_at_cursor(event.character)
    return True
