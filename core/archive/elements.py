"""Flatten one DICOM file into display rows (tag, keyword, VR, value) for the TUI details pane.

The TUI never parses DICOM itself: it asks for these plain rows from a worker
thread. Sequences become a row for the sequence, one row per item and the
item's elements one level deeper, so a viewer can fold them by ``depth``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dicomtools.core.dicom.pydicom_setup import pydicom as configured_pydicom
from dicomtools.core.dicom.text import MAX_DISPLAY_CHARS, display_text

log = logging.getLogger(__name__)

MAX_VALUE_CHARS = MAX_DISPLAY_CHARS
MAX_ROWS = 20000  # a pathological file must not freeze a viewer


@dataclass(frozen=True, slots=True)
class ElementRow:
    """One displayed line: an element, or an ``Item`` marker inside a sequence."""

    depth: int
    tag: str  # "(0008,0016)"; items use "(FFFE,E000)"
    keyword: str  # keyword, dictionary name for private tags, "Item 1" for items
    vr: str  # "" for item markers
    value: str  # display text, shortened

    @property
    def is_container(self) -> bool:
        """True for rows that have children (sequences and items)."""
        return self.vr == "SQ" or self.tag == ITEM_TAG


ITEM_TAG = "(FFFE,E000)"


def _keyword(elem: Any) -> str:
    if elem.keyword:
        return str(elem.keyword)
    try:
        name = str(elem.name)
    except Exception:
        name = ""
    return name or "Private tag"


def _tag(tag: Any) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def dataset_rows(path: str, *, include_meta: bool = True) -> list[ElementRow]:
    """All elements of ``path`` (without pixel data) as display rows, in file order.

    Raises ``OSError`` / pydicom errors for unreadable files; the caller shows them.
    """
    ds = configured_pydicom().dcmread(path, stop_before_pixels=True, force=True, defer_size="256 KB")
    rows: list[ElementRow] = []

    def add(dataset: Any, depth: int) -> None:
        for elem in dataset:
            if len(rows) >= MAX_ROWS:
                return
            rows.append(ElementRow(depth, _tag(elem.tag), _keyword(elem), elem.VR, display_text(elem)))
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or [], start=1):
                    rows.append(ElementRow(depth + 1, ITEM_TAG, f"Item {i}", "", ""))
                    add(item, depth + 2)

    if include_meta and getattr(ds, "file_meta", None) is not None:
        add(ds.file_meta, 0)
    add(ds, 0)
    return rows


def visible_rows(rows: list[ElementRow], collapsed: set[int]) -> list[int]:
    """Indexes of the rows shown when the container rows in ``collapsed`` are folded."""
    shown: list[int] = []
    hide_below: int | None = None
    for i, row in enumerate(rows):
        if hide_below is not None:
            if row.depth > hide_below:
                continue
            hide_below = None
        shown.append(i)
        if i in collapsed and row.is_container:
            hide_below = row.depth
    return shown


def matching_rows(rows: list[ElementRow], text: str) -> list[int]:
    """Indexes of rows whose tag, keyword, VR or value contains ``text`` (case-insensitive),
    with the containers above each hit kept so the hit stays in context."""
    needle = text.strip().lower()
    if not needle:
        return list(range(len(rows)))
    keep: set[int] = set()
    parents: list[int] = []  # stack of container indexes by depth
    for i, row in enumerate(rows):
        while parents and rows[parents[-1]].depth >= row.depth:
            parents.pop()
        hay = f"{row.tag} {row.keyword} {row.vr} {row.value}".lower()
        if needle in hay:
            keep.add(i)
            keep.update(parents)
        if row.is_container:
            parents.append(i)
    return sorted(keep)
