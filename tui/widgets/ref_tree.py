"""The reference tree: patients → plans → structure set → series …, unconnected last.

Lazy: only patients are created up front; a node's children are added when it
is expanded, so a 100,000-file archive paints at once. Each Textual node keeps
its domain object in ``node.data`` (:class:`TreeItem`) with a stable key, so a
rebuild (scan progress, folder change, filter) keeps what was expanded, the
cursor and the marks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.tree import Node
from dicomtools.core.tree.labels import short_label

log = logging.getLogger(__name__)

CHUNK = 250  # top-level nodes added per step, so a huge archive never blocks a frame
UNREADABLE_KEY = "U:unreadable"


@dataclass
class TreeItem:
    """What a tree line stands for: a patient, the unconnected group, or a core ``Node``."""

    key: str
    kind: str  # "patient", "unconnected", "unreadable", "unreadable-file" or a NodeKind
    patient: Any  # core.tree.PatientTree
    node: Any = None  # core.tree.Node
    loaded: bool = False

    @property
    def is_plan(self) -> bool:
        return isinstance(self.node, Node) and self.node.kind.is_plan

    @property
    def markable(self) -> bool:
        """Patients, their plans, and what no plan references (an orphan dose can be exported)."""
        if self.kind == "patient":
            return True
        depth = self.key.count("/")
        return (self.is_plan and depth == 1) or (depth == 2 and "/unconnected/" in self.key)

    def instances(self) -> list[Any]:
        """All instances under this line (unique, tree order)."""
        if self.kind in ("unreadable", "unreadable-file"):
            return []
        if self.node is not None:
            return list(self.node.subtree_instances())
        if self.kind == "unconnected":
            return _unique(i for n in self.patient.unconnected for i in n.subtree_instances())
        return patient_instances(self.patient)


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for inst in items:
        if inst.sop_instance_uid not in seen:
            seen.add(inst.sop_instance_uid)
            out.append(inst)
    return out


def patient_instances(patient: Any) -> list[Any]:
    if hasattr(patient, "all_instances"):
        return list(patient.all_instances())
    return _unique(i for n in [*patient.plans, *patient.unconnected] for i in n.subtree_instances())


def display_path(path: str, base: str | None) -> str:
    if base:
        try:
            rel = os.path.relpath(path, base)
        except ValueError:
            return path
        if not rel.startswith(".."):
            return rel
    return path


def patient_key(patient: Any) -> str:
    return f"P:{patient.patient_id}|{patient.patient_name}"


def node_key(parent_key: str, node: Node, index: int) -> str:
    """Stable across rebuilds: kind + first SOP Instance UID (or label), index as a tie-break."""
    ident = node.instances[0].sop_instance_uid if node.instances else node.label
    return f"{parent_key}/{node.kind}:{ident}"


def patient_label(patient: Any) -> Text:
    text = Text()
    text.append(sanitize(patient.patient_id) or "(no ID)", style="bold")
    if patient.patient_name:
        text.append(f"  {sanitize(patient.patient_name)}")
    n_plans = len(patient.plans)
    n_unc = len(patient.unconnected)
    extra = f"{n_plans} plan" + ("" if n_plans == 1 else "s")
    if n_unc:
        extra += f", {n_unc} unconnected"
    text.append(f"  ({extra})", style="dim")
    return text


def node_label(node: Node) -> Text:
    text = Text()
    text.append(node.kind.value, style="bold" if node.kind.is_plan else "")
    label = short_label(node)
    if label:
        text.append(f"  {label}")
    if node.note:
        text.append(f"  [{sanitize(node.note)}]", style="italic dim")
    if any(getattr(i, "truncated", False) for i in node.instances):
        text.append("  [TRUNCATED]", style="bold")
    return text


class RefTree(Tree[TreeItem]):
    """Tree of one folder's patients; the screen gives it forests, it keeps the view state."""

    ALLOW_MAXIMIZE = True
    ICON_NODE = "+ "
    ICON_NODE_EXPANDED = "- "

    BINDINGS = [
        Binding("space", "screen.mark", "Mark", id="browse.mark"),
        Binding("right", "expand_cursor", "Expand", show=False),
        Binding("left", "collapse_or_parent", "Collapse", show=False),
    ]

    DEFAULT_CSS = """
    RefTree { scrollbar-size-vertical: 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("archive", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self.forest: list[Any] = []
        self.allowed: set[str] | None = None  # filter: keys of patients / top nodes to show
        self.expanded_keys: set[str] = set()
        self.marked_keys: set[str] = set()
        self.by_key: dict[str, TreeNode[TreeItem]] = {}
        self.unreadable: list[Any] = []  # core UnreadableFile: shown last, path and reason
        self.base: str | None = None  # the browsed folder: paths are shown relative to it
        self._rebuilding = False
        self._generation = 0

    # ------------------------------------------------------------------ building
    def set_forest(self, forest: list[Any]) -> None:
        """Show a new forest (possibly partial) keeping expansion, cursor and marks."""
        self.forest = forest
        self.rebuild()

    def set_allowed(self, allowed: set[str] | None) -> None:
        self.allowed = allowed
        self.rebuild()

    def visible_patients(self) -> list[Any]:
        if self.allowed is None:
            return list(self.forest)
        return [p for p in self.forest if patient_key(p) in self.allowed]

    def rebuild(self) -> None:
        cursor = self.cursor_node
        cursor_key = cursor.data.key if cursor is not None and cursor.data is not None else None
        cursor_line = self.cursor_line
        self._generation += 1
        self._rebuilding = True
        try:
            self.clear()
            self.by_key = {}
            patients = self.visible_patients()
            for patient in patients[:CHUNK]:
                self._add_patient(patient)
        finally:
            self._rebuilding = False
        if len(patients) > CHUNK:
            self._add_rest(patients[CHUNK:], self._generation)
        else:
            self._add_unreadable()
        self._restore_cursor(cursor_key, cursor_line)

    def set_unreadable(self, files: list[Any]) -> None:
        self.unreadable = list(files)
        self.rebuild()

    def _add_unreadable(self) -> None:
        """A last line naming every file the scan could not use, so none is only a count."""
        if not self.unreadable or self.allowed is not None:  # a filter shows only what matched
            return
        item = TreeItem(UNREADABLE_KEY, "unreadable", None)
        tnode = self.root.add(self._label(item), item, allow_expand=True)
        self.by_key[item.key] = tnode
        if item.key in self.expanded_keys:
            self._load(tnode)
            tnode.expand()

    def _add_rest(self, patients: list[Any], generation: int) -> None:
        """Add further patients in chunks, yielding to the UI between chunks."""

        def step(start: int) -> None:
            if generation != self._generation:
                return  # a newer rebuild took over
            self._rebuilding = True
            try:
                for patient in patients[start : start + CHUNK]:
                    self._add_patient(patient)
            finally:
                self._rebuilding = False
            if start + CHUNK < len(patients):
                self.call_after_refresh(step, start + CHUNK)
            else:
                self._add_unreadable()

        self.call_after_refresh(step, 0)

    def _restore_cursor(self, key: str | None, line: int) -> None:
        last = self.last_line  # builds the line index, so node lines are known
        if key is not None and key in self.by_key and self.by_key[key].line >= 0:
            self.move_cursor(self.by_key[key], animate=False)
        elif self.root.children:
            self.cursor_line = max(0, min(line, last))

    def _add_patient(self, patient: Any) -> None:
        key = patient_key(patient)
        item = TreeItem(key, "patient", patient)
        tnode = self.root.add(self._label(item), item, allow_expand=True)
        self.by_key[key] = tnode
        if key in self.expanded_keys:
            self._load(tnode)
            tnode.expand()

    def _children_of(self, item: TreeItem) -> list[TreeItem]:
        out: list[TreeItem] = []
        if item.kind == "patient":
            for i, plan in enumerate(item.patient.plans):
                key = node_key(item.key, plan, i)
                if self.allowed is None or key in self.allowed:
                    out.append(TreeItem(key, plan.kind, item.patient, plan))
            unconnected = item.patient.unconnected
            if self.allowed is not None:
                unconnected = [
                    n for i, n in enumerate(unconnected)
                    if node_key(item.key + "/unconnected", n, i) in self.allowed
                ]
            if unconnected:
                out.append(TreeItem(item.key + "/unconnected", "unconnected", item.patient))
        elif item.kind == "unconnected":
            for i, node in enumerate(item.patient.unconnected):
                key = node_key(item.key, node, i)
                if self.allowed is None or key in self.allowed:
                    out.append(TreeItem(key, node.kind, item.patient, node))
        elif item.kind == "unreadable":
            for i, bad in enumerate(self.unreadable):
                out.append(TreeItem(f"{UNREADABLE_KEY}/{i}", "unreadable-file", None, bad))
        elif item.node is not None and item.kind != "unreadable-file":
            for i, child in enumerate(item.node.children):
                out.append(TreeItem(node_key(item.key, child, i), child.kind, item.patient, child))
        return out

    def _has_children(self, item: TreeItem) -> bool:
        if item.kind in ("patient", "unconnected", "unreadable"):
            return True
        if item.kind == "unreadable-file":
            return False
        return bool(item.node is not None and item.node.children)

    def _load(self, tnode: TreeNode[TreeItem]) -> None:
        item = tnode.data
        if item is None or item.loaded:
            return
        item.loaded = True
        for child in self._children_of(item):
            cnode = tnode.add(self._label(child), child, allow_expand=self._has_children(child))
            self.by_key[child.key] = cnode
            if child.key in self.expanded_keys and self._has_children(child):
                self._load(cnode)
                cnode.expand()

    def _label(self, item: TreeItem) -> Text:
        if item.kind == "patient":
            label = patient_label(item.patient)
        elif item.kind == "unconnected":
            n = len(item.patient.unconnected)
            label = Text(f"Unconnected ({n})", style="italic")
        elif item.kind == "unreadable":
            label = Text(f"Unreadable files ({len(self.unreadable)})", style="bold")
        elif item.kind == "unreadable-file":
            label = Text(f"{display_path(item.node.path, self.base)}: {item.node.reason}")
        else:
            label = node_label(item.node)
        if item.markable:
            prefix = Text("[*] ", style="bold") if item.key in self.marked_keys else Text("[ ] ", style="dim")
            label = prefix + label
        return label

    def relabel(self, key: str) -> None:
        tnode = self.by_key.get(key)
        if tnode is not None and tnode.data is not None:
            tnode.set_label(self._label(tnode.data))

    # ------------------------------------------------------------------ events
    def _on_tree_node_expanded(self, event: Tree.NodeExpanded[TreeItem]) -> None:
        if event.node.data is not None:
            self._load(event.node)
            if not self._rebuilding:
                self.expanded_keys.add(event.node.data.key)

    def _on_tree_node_collapsed(self, event: Tree.NodeCollapsed[TreeItem]) -> None:
        if event.node.data is not None and not self._rebuilding:
            self.expanded_keys.discard(event.node.data.key)

    def expand_key(self, key: str) -> bool:
        """Expand the line with ``key`` (loading its children); False if not shown."""
        tnode = self.by_key.get(key)
        if tnode is None:
            return False
        self._load(tnode)
        tnode.expand()
        if tnode.data is not None:
            self.expanded_keys.add(tnode.data.key)
        return True

    def action_expand_cursor(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            self._load(node)
            node.expand()
        elif node.children:
            self.action_cursor_down()

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and not node.parent.is_root:
            self.move_cursor(node.parent, animate=False)

    @property
    def cursor_item(self) -> TreeItem | None:
        node = self.cursor_node
        return node.data if node is not None else None
