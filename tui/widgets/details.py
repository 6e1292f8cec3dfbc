"""Details of the selected tree line: key facts, then the elements of its first instance.

The element table is read by ``core.elements.dataset_rows`` in a thread worker
(a big file never stalls the UI); sequences start folded and open with Enter;
the search input keeps only rows that contain the text (and their parents).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from dicomtools.core.archive.elements import ElementRow, dataset_rows, matching_rows, visible_rows
from dicomtools.core.dicom.text import sanitize
from dicomtools.core.tree.labels import node_facts, short_label
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.messages import DetailsLoaded
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.ref_tree import TreeItem

log = logging.getLogger(__name__)

FACT_FIELDS_MAX = 6


def describe_item(item: TreeItem | None, root: str | None, width: int = 60) -> Text:
    """The key facts of a tree line as a few short lines."""
    text = Text(overflow="fold")
    if item is None:
        text.append("Nothing selected.", style="dim")
        return text
    if item.kind == "unreadable":
        text.append("Files the scan could not use", style="bold")
        text.append("\nExpand this line: each file with the reason. They are left out of every tree.")
        return text
    if item.kind == "unreadable-file":
        text.append("Unreadable file", style="bold")
        text.append(f"\n{item.node.path}\n")
        text.append("reason: ", style="dim")
        text.append(item.node.reason)
        return text
    patient = item.patient
    text.append(sanitize(f"{patient.patient_id}"), style="bold")
    if patient.patient_name:
        text.append(f"  {sanitize(patient.patient_name)}")
    if item.kind == "patient":
        insts = item.instances()
        text.append(
            f"\n{len(patient.plans)} plans, {len(patient.unconnected)} unconnected, {len(insts)} instances"
        )
        for warning in getattr(patient, "warnings", [])[:3]:
            text.append(f"\nwarning: {sanitize(warning)}", style="bold")
        return text
    if item.kind == "unconnected":
        text.append(f"\nUnconnected: {len(patient.unconnected)} items no plan references")
        return text
    node = item.node
    text.append(f"\n{node.kind}", style="bold")
    label = short_label(node)
    if label:
        text.append(f"  {label}")
    n_own = len(node.instances)
    n_all = len(item.instances())
    text.append(f"\n{n_own} instance" + ("" if n_own == 1 else "s"))
    if n_all != n_own:
        text.append(f", {n_all} with everything below")
    facts = node_facts(node)
    used = width  # pack "key: value" pairs into lines no wider than the pane
    for key, value in facts[:FACT_FIELDS_MAX]:
        size = len(key) + 2 + len(value)
        if used + 3 + size > width:
            text.append("\n")
            used = 0
        else:
            text.append("   ")
            used += 3
        text.append(f"{key}: ", style="dim")
        text.append(value)
        used += size
    if node.note:
        text.append(f"\n{sanitize(node.note)}", style="italic")
    if node.instances:
        path = node.instances[0].path
        if root:
            try:
                path = os.path.relpath(path, root)
            except ValueError:
                pass
        text.append("\nfile: ", style="dim")
        text.append(sanitize(path))
    return text


class ElementTable(DataTable[Any]):
    """Element rows with fold/unfold of sequences on Enter."""

    BINDINGS = [Binding("enter", "toggle_row", "Fold", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.rows_all: list[ElementRow] = []
        self.collapsed: set[int] = set()
        self.search = ""
        self.shown: list[int] = []

        self._laid_out_width = -1
        self.show_tags = True

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        """Keyword column sized to the pane, so the value keeps room at 80 columns."""
        width = self.size.width or 80
        self._laid_out_width = width
        self.show_tags = width >= 60  # narrow (80-column terminal): tag column dropped, z zooms
        fixed = (11 + 2 if self.show_tags else 0) + 2 + 8
        keyword = max(12, min(30, (width - fixed) // 2))
        if self.show_tags:
            self.add_column("Tag", key="tag", width=11)
        self.add_column("Keyword", key="keyword", width=keyword)
        self.add_column("VR", key="vr", width=2)
        self.add_column("Value", key="value")

    def on_resize(self) -> None:
        if self.size.width != self._laid_out_width:
            self.redraw()

    def set_rows(self, rows: list[ElementRow]) -> None:
        self.rows_all = rows
        self.collapsed = {i for i, r in enumerate(rows) if r.vr == "SQ"}
        self.redraw()

    def redraw(self) -> None:
        cursor_index = self.shown[self.cursor_row] if 0 <= self.cursor_row < len(self.shown) else None
        if self.search:
            self.shown = matching_rows(self.rows_all, self.search)
        else:
            self.shown = visible_rows(self.rows_all, self.collapsed)
        self.clear(columns=True)
        self._add_columns()
        for i in self.shown:
            r = self.rows_all[i]
            if r.is_container:
                fold = "+" if (i in self.collapsed and not self.search) else "-"
            else:
                fold = " "
            keyword = Text("  " * r.depth + fold + " " + r.keyword, no_wrap=True, overflow="ellipsis")
            value = Text(r.value, no_wrap=True, overflow="ellipsis")
            cells = (r.tag, keyword, r.vr, value) if self.show_tags else (keyword, r.vr, value)
            self.add_row(*cells, key=str(i))
        if cursor_index is not None and cursor_index in self.shown:
            self.move_cursor(row=self.shown.index(cursor_index), animate=False)

    def action_toggle_row(self) -> None:
        if not (0 <= self.cursor_row < len(self.shown)) or self.search:
            return
        i = self.shown[self.cursor_row]
        if not self.rows_all[i].is_container:
            return
        if i in self.collapsed:
            self.collapsed.discard(i)
        else:
            self.collapsed.add(i)
        self.redraw()


class ElementSearch(TextInput):
    BINDINGS = bindings_for("elements")

    def action_clear(self) -> None:
        self.value = ""
        self.screen.focus_next()


class DetailsPane(Vertical):
    """Facts + element table for one tree line."""

    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    DetailsPane { height: 1fr; }
    DetailsPane #facts { height: auto; max-height: 9; }
    DetailsPane #element-search { height: 1; border: none; padding: 0 1; }
    DetailsPane ElementTable { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root: str | None = None
        self.item: TreeItem | None = None
        self.path: str | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Static(describe_item(None, None), id="facts")
        yield ElementSearch(placeholder="search elements (tag, keyword, value)", id="element-search")
        yield ElementTable(id="elements")

    def show_item(self, item: TreeItem | None, root: str | None) -> None:
        self.item = item
        self.root = root
        self.query_one("#facts", Static).update(describe_item(item, root, self._width()))
        path = None
        if item is not None and item.node is not None and getattr(item.node, "instances", None):
            path = item.node.instances[0].path
        if path != self.path:
            self.path = path
            table = self.query_one(ElementTable)
            table.set_rows([])
            table.display = path is not None
            self.query_one(ElementSearch).display = path is not None
            if path is not None:
                table.loading = True
                self._read(path)

    def _width(self) -> int:
        return max(20, (self.size.width or 60) - 1)

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def _read(self, path: str) -> None:
        try:
            rows = dataset_rows(path, include_meta=False)
        except Exception as exc:  # unreadable file: say why in the pane
            log.warning("cannot read elements of %s: %s", path, exc)
            self.post_message(DetailsLoaded(path, [], f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(DetailsLoaded(path, rows))

    @on(DetailsLoaded)
    def _loaded(self, message: DetailsLoaded) -> None:
        message.stop()
        if message.path != self.path:
            return
        table = self.query_one(ElementTable)
        table.loading = False
        table.display = True
        self.error = message.error
        if message.error:
            facts = describe_item(self.item, self.root, self._width())
            facts.append(f"\ncannot read elements: {message.error}", style="bold")
            self.query_one("#facts", Static).update(facts)
        table.set_rows(message.rows)

    @on(Input.Changed, "#element-search")
    def _search(self, event: Input.Changed) -> None:
        table = self.query_one(ElementTable)
        table.search = event.value
        table.redraw()
