"""A choice of the preset's nodes (no free text): refreshed when the preset changes."""

from __future__ import annotations

from typing import Any

from textual.widgets import Select


class NodePicker(Select[str]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__([], prompt="no node: add one in Settings (F5)", compact=True, allow_blank=True,
                         **kwargs)

    def fill(self, config: Any, preferred: str | None = None) -> None:
        """Offer ``config``'s nodes; keep the current choice if it still exists."""
        names = list(config.nodes)
        current = self.node_name or preferred
        with self.prevent(Select.Changed):
            self.set_options([(name, name) for name in names])
            if current and current in names:
                self.value = current
            elif names:
                self.value = names[0]
        if self.node_name != current:
            self.post_message(Select.Changed(self, self.value))

    @property
    def node_name(self) -> str:
        value = self.value
        return value if isinstance(value, str) else ""
