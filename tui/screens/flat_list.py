"""The flat list of marked items: one row per object, the part that differs first.

The CLI's ``show --format flat`` line starts with ``Patient … / RT-Plan: …``
on every row, so at 80 columns the rows look alike. Here each row shows the
patient, the object itself, then the chain it hangs under; the table scrolls
both ways, and ``s`` saves exactly the CLI's flat text (same facts) to a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from dicomtools.tui.screens.dialogs import Field, FormDialog

log = logging.getLogger(__name__)


def flat_rows(forest: list[Any]) -> Iterator[tuple[str, str, str]]:
    """(patient, object, under) for every object of ``forest``, in tree order."""
    from dicomtools.core.tree.labels import UNCONNECTED_TITLE, node_title, short_title

    def walk(node: Any, patient: str, chain: list[str], depth: int) -> Iterator[tuple[str, str, str]]:
        title = node_title(node)
        yield patient, "  " * depth + title, " / ".join(chain)
        for child in node.children:
            yield from walk(child, patient, [*chain, short_title(node)], depth + 1)

    for p in forest:
        pid = p.patient_id or "<no id>"
        for plan in p.plans:
            yield from walk(plan, pid, [], 0)
        for node in p.unconnected:
            yield from walk(node, pid, [UNCONNECTED_TITLE], 0)


class FlatListDialog(ModalScreen[None]):
    DEFAULT_CSS = """
    FlatListDialog #flat { height: 1fr; }
    FlatListDialog #flat-status { height: auto; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("s", "save", "Save to file"),
    ]

    def __init__(self, forest: list[Any], root: str | None) -> None:
        super().__init__()
        self.forest = forest
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Static(Text("Marked items (flat list)   s saves, esc closes", style="bold"),
                         classes="dialog-title")
            yield DataTable(id="flat", cursor_type="row", zebra_stripes=True)
            yield Static("", id="flat-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Patient", key="patient")
        table.add_column("Object", key="object")
        table.add_column("Under", key="under")
        for patient, obj, under in flat_rows(self.forest):
            table.add_row(patient, obj, under)
        table.focus()

    def text(self) -> str:
        from dicomtools.core.render.forest import render_flat

        return render_flat(self.forest)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        def check(values: dict[str, str]) -> str:
            path = os.path.abspath(os.path.expanduser(values.get("path", "")))
            if not values.get("path"):
                return "give a file name"
            if os.path.isdir(path):
                return f"{path} is a folder: give a file name"
            if not os.path.isdir(os.path.dirname(path)):
                return f"no such folder: {os.path.dirname(path)}"
            return ""

        def done(values: dict[str, str] | None) -> None:
            if values:
                self.save(os.path.abspath(os.path.expanduser(values["path"])))

        self.app.push_screen(
            FormDialog("Save the flat list", [Field("path", "File", placeholder="e.g. /tmp/marked.txt")],
                       ok="Save", note="The same text as: dicomtools show --format flat", check=check),
            done,
        )

    def save(self, path: str) -> None:
        from dicomtools.core.atomic import atomic_write_bytes

        status = self.query_one("#flat-status", Static)
        try:
            atomic_write_bytes(path, self.text().encode("utf-8"))
        except OSError as exc:
            status.update(f"! not saved: {exc.strerror or exc}: {path}")
            return
        log.info("flat list saved to %s", path)
        status.update(f"saved to {path}")
