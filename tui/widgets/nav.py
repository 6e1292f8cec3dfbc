"""The top line of every screen: the screens with their keys, the current one highlighted.

Built from the action table, so the keys shown are the keys bound.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from dicomtools.tui.actions import actions_for


class NavBar(Widget):
    DEFAULT_CSS = """
    NavBar { height: 1; width: 1fr; }
    """

    def __init__(self, current: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.current = current
        self.status = ""

    def set_status(self, status: str) -> None:
        self.status = status
        self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" dicomtools ", style="bold")
        for a in actions_for("app"):
            if not a.id.startswith("screen."):
                continue
            name = a.id.split(".", 1)[1]
            out.append("│")
            label = f" {a.key_display} {a.description} "
            if name == self.current:
                out.append(label, style="bold reverse")
            else:
                out.append(label)
        out.append("│")
        status = self.status or ("DEMO" if getattr(self.app, "demo", False) else "")
        if status:
            pad = self.size.width - out.cell_len - len(status) - 1
            out.append(" " * max(1, pad))
            out.append(status, style="bold reverse" if status == "DEMO" else "dim")
        return out
