"""Browse: the reference tree of a folder (filled live while scanning), details, filter, marks.

Work is done by core functions through the app's job runner: ``scan`` (with
``on_batch`` feeding partial forests), ``build_forest``, ``search`` for the
filter. Results come back only as messages. The folder is polled for changes
(directory mtimes) and rescanned when something appears or goes. What marks
do (store, export, anonymize, flat list) lives in ``browse_marks``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane, Tree

from dicomtools.core.dicom.text import sanitize
from dicomtools.core.progress import ProgressSink
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, JobOutcome, JobState, Summary
from dicomtools.tui.marks import Mark
from dicomtools.tui.messages import FolderChanged, ForestUpdated
from dicomtools.tui.screens.browse_marks import MarkActions
from dicomtools.tui.screens.dialogs import Field, FormDialog
from dicomtools.tui.widgets.details import DetailsPane
from dicomtools.tui.widgets.filter_bar import FilterBar
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.progress_pane import ProgressPane
from dicomtools.tui.widgets.ref_tree import RefTree, TreeItem, node_key, patient_key

log = logging.getLogger(__name__)

PARTIAL_EVERY = 0.3  # seconds between live tree updates while scanning
NO_FILTER = "No filter applied. Press / and type an expression."
EMPTY_HINT = "No folder open.\n\nPress o to open a folder of DICOM files\n(or start with: dicomtools tui --path DIR)."
EXPAND_MATCHES = 20  # a filter opens the matching patients when there are at most this many


def folder_signature(root: str) -> tuple[tuple[str, int], ...]:
    """Cheap change detector: every folder below ``root`` with its mtime.

    Adding, removing or renaming a file changes its folder's mtime.
    """
    out: list[tuple[str, int]] = []
    for dirpath, dirnames, _files in os.walk(root):
        dirnames.sort()
        try:
            out.append((dirpath, os.stat(dirpath).st_mtime_ns))
        except OSError:
            continue
    return tuple(out)


def allowed_keys(forest: list[Any], matched_paths: set[str]) -> set[str]:
    """Tree keys (patients, plans, unconnected items) whose files include a matched path."""
    allowed: set[str] = set()
    for patient in forest:
        pkey = patient_key(patient)
        hit = False
        for i, plan in enumerate(patient.plans):
            if any(inst.path in matched_paths for inst in plan.subtree_instances()):
                allowed.add(node_key(pkey, plan, i))
                hit = True
        ukey = pkey + "/unconnected"
        for i, node in enumerate(patient.unconnected):
            if any(inst.path in matched_paths for inst in node.subtree_instances()):
                allowed.add(node_key(ukey, node, i))
                hit = True
        if hit:
            allowed.add(pkey)
    return allowed


def forest_counts(forest: list[Any]) -> str:
    patients = len(forest)
    plans = sum(len(p.plans) for p in forest)
    return f"{patients} patient{'s' if patients != 1 else ''}, {plans} plan{'s' if plans != 1 else ''}"


class BrowseScreen(MarkActions):
    SCOPE = "browse"
    BINDINGS = bindings_for("top", "browse")

    def __init__(self, root: str | None = None, pattern: str | None = None) -> None:
        super().__init__(id="browse")
        self.root = root
        self.pattern = pattern
        self.forest: list[Any] = []
        self.scan_result: Any = None
        self.scan_job: Job | None = None
        self.search_job: Job | None = None
        self.search_result: Any = None
        self.filter_text = ""
        self.marks: dict[str, Mark] = {}
        self.signature: tuple[tuple[str, int], ...] | None = None
        self.first_scan_done = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield NavBar("browse")
        yield FilterBar(id="filter")
        with Horizontal(id="browse-main"):
            yield Static(EMPTY_HINT, id="empty-hint", markup=False)
            yield RefTree(id="tree")
            with TabbedContent(id="right", initial="tab-details"):
                with TabPane("Details d", id="tab-details"):
                    yield DetailsPane(id="details")
                with TabPane("Results r", id="tab-results"):
                    with Vertical():
                        yield Static(NO_FILTER, id="results-stats", markup=False)
                        yield DataTable(id="results", cursor_type="row")
                with TabPane("Marked m", id="tab-marked"):
                    with Vertical():
                        yield Static(self._marked_help(), id="marked-help", markup=False)
                        yield DataTable(id="marked", cursor_type="row")
        yield ProgressPane(self.tool.clock, id="progress")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ProgressPane).display = False
        marked = self.query_one("#marked", DataTable)
        marked.add_columns("Patient", "Marked", "Files")
        tree = self.query_one(RefTree)
        tree.border_title = self._root_title()
        tree.base = self.root
        self._show_empty_hint()
        tree.focus()
        if self.root:
            self.start_scan()
        interval = float(self.tool.poll_interval or 0)
        if interval > 0:
            self.set_interval(interval, self._poll)

    def _show_empty_hint(self) -> None:
        empty = not self.root
        self.query_one("#empty-hint").display = empty
        self.ref_tree.display = not empty
        self.query_one("#right").display = not empty

    def _root_title(self) -> str:
        return self.root or "no folder"

    @property
    def ref_tree(self) -> RefTree:
        return self.query_one(RefTree)

    @property
    def pane(self) -> ProgressPane:
        return self.query_one(ProgressPane)

    # ------------------------------------------------------------------ scanning
    def start_scan(self, live: bool = True) -> None:
        """(Re)scan ``self.root``; ``live`` shows partial trees while reading."""
        if not self.root:
            return
        if self.scan_job is not None:
            self.scan_job.cancel.cancel()
        root, pattern = self.root, self.pattern
        defaults = dict(self.tool.config.machines.defaults)
        workers = self.tool.scan_workers
        live = live and not self.first_scan_done
        self.ref_tree.border_subtitle = "scanning..."
        self.pane.drop_titled("scan")  # a rescan replaces the line of the last one

        def run(sink: ProgressSink, job: Job) -> Any:
            return self._scan(sink, job, root, pattern, defaults, workers, live)

        self.scan_job = self.run_job(self.pane, f"scan {root}", run, self._scan_done, label="scan")

    def _scan(self, sink: ProgressSink, job: Job, root: str, pattern: str | None, defaults: dict[str, str],
              workers: int | None, live: bool) -> Any:
        from dicomtools.core.archive.scan import scan
        from dicomtools.core.tree import build_forest

        seen: list[Any] = []
        last = [time.monotonic(), PARTIAL_EVERY]

        def on_batch(batch: list[Any]) -> None:
            seen.extend(batch)
            now = time.monotonic()
            if live and now - last[0] >= last[1]:
                started = time.monotonic()
                forest = build_forest(list(seen), defaults)
                took = time.monotonic() - started
                last[0] = time.monotonic()
                last[1] = max(PARTIAL_EVERY, 4 * took)  # big archives: rebuild less often
                self.post_message(ForestUpdated(root, forest, final=False))

        cache = self.tool.open_index_cache()
        try:
            signature = folder_signature(root)
            result = scan(root, pattern, sink=sink, cancel=job.cancel, workers=workers, on_batch=on_batch,
                          cache=cache)
            forest = build_forest(result.instances, defaults)
        finally:
            if cache is not None:
                cache.close()
        self.post_message(ForestUpdated(root, forest, final=True, scan_result=(result, signature)))
        return result

    def _scan_done(self, outcome: JobOutcome[Any]) -> Summary:
        if outcome.job is self.scan_job:
            self.scan_job = None
        if outcome.error:
            self.ref_tree.border_subtitle = f"scan failed: {outcome.error}"
            return outcome.error
        r = outcome.value
        text = f"{r.files_seen} files, {len(r.instances)} DICOM"
        if r.unreadable:
            text += f", {len(r.unreadable)} unreadable (listed at the end of the tree)"
        return text

    @on(ForestUpdated)
    def _forest(self, message: ForestUpdated) -> None:
        if message.root != self.root:
            return
        self.forest = message.forest
        if message.final and message.scan_result is not None:
            self.scan_result, self.signature = message.scan_result
            self.first_scan_done = True
            self.ref_tree.unreadable = list(self.scan_result.unreadable)
        if self.search_result is not None:
            self.ref_tree.allowed = allowed_keys(self.forest, {m.path for m in self.search_result.matches})
        self.ref_tree.set_forest(self.forest)
        self._update_subtitle(final=message.final)
        self._refresh_marked()
        self._show_details()

    def _update_subtitle(self, final: bool = True) -> None:
        text = forest_counts(self.forest)
        if self.scan_result is not None and final:
            r = self.scan_result
            text += f", {len(r.instances)} DICOM, {len(r.unreadable)} unreadable"
        if self.search_result is not None:
            shown = self.ref_tree.visible_patients()
            plans = sum(1 for k in self.ref_tree.allowed or () if k.count("/") == 1)
            text = f"filter: {len(shown)} of {len(self.forest)} patients, {plans} plans"
        if not final:
            text += " (scanning)"
        self.ref_tree.border_subtitle = text

    def _poll(self) -> None:
        if not self.root or not self.first_scan_done:
            return
        if self.scan_job is not None and self.tool.jobs.get(self.scan_job.id):
            return
        self._check_folder(self.root, self.signature)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _check_folder(self, root: str, old: Any) -> None:
        try:
            new = folder_signature(root)
        except OSError:
            return
        if new != old:
            log.info("folder changed: %s", root)
            self.post_message(FolderChanged(root))

    @on(FolderChanged)
    def _folder_changed(self, message: FolderChanged) -> None:
        if self.root and os.path.abspath(message.root) == os.path.abspath(self.root):
            self.start_scan(live=False)

    # ------------------------------------------------------------------ details
    @on(Tree.NodeHighlighted, "#tree")
    def _highlighted(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        self._show_details(event.node.data)

    def _show_details(self, item: TreeItem | None = None) -> None:
        if item is None:
            item = self.ref_tree.cursor_item
        self.query_one(DetailsPane).show_item(item, self.root)

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"

    # ------------------------------------------------------------------ filter
    def action_filter(self) -> None:
        # now, not after a refresh: what is typed right after "/" belongs in the filter
        self.set_focus(self.query_one(FilterBar).input)

    @on(FilterBar.Applied)
    def _apply_filter(self, message: FilterBar.Applied) -> None:
        if not self.root:
            self.query_one(FilterBar).show_error("open a folder first (o)")
            self.app.bell()
            return
        if self.search_job is not None:
            self.search_job.cancel.cancel()
        self.filter_text = message.text
        root, pattern, exprs = self.root, self.pattern, message.expressions
        workers = self.tool.scan_workers

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.search.folder import search

            cache = self.tool.open_index_cache()
            try:
                return search(root, exprs, pattern, sink=sink, cancel=job.cancel, workers=workers, cache=cache)
            finally:
                if cache is not None:
                    cache.close()

        self.search_job = self.run_job(self.pane, f"filter {message.text}", run, self._search_done, label="filter")

    def _search_done(self, outcome: JobOutcome[Any]) -> Summary:
        if outcome.job is not self.search_job:
            return ("replaced by a newer filter or cleared", JobState.CANCELLED)  # Esc came first
        self.search_job = None
        if outcome.error:
            self.query_one(FilterBar).show_error(outcome.error)
            return outcome.error
        if outcome.cancelled:
            return "cancelled"
        self._apply_search(outcome.value)
        return f"{outcome.value.matched} matched"

    def _apply_search(self, result: Any) -> None:
        self.search_result = result
        matched = {m.path for m in result.matches}
        self.ref_tree.set_allowed(allowed_keys(self.forest, matched))
        shown = self.ref_tree.visible_patients()
        if len(shown) <= EXPAND_MATCHES:  # the point of a filter is to see what matched
            for patient in shown:
                self.ref_tree.expand_key(patient_key(patient))
        self._update_subtitle()
        self._fill_results(result)
        self.ref_tree.focus()

    def _fill_results(self, result: Any) -> None:
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        shown = list(dict.fromkeys(k for m in result.matches for k in m.values))
        for key in shown:  # the values first: they are what a "=?" filter asks for
            table.add_column(key, key=key)
        table.add_column("File", key="path")
        for m in result.matches:
            rel = os.path.relpath(m.path, self.root) if self.root else m.path
            cells = [Text(sanitize("\\".join(m.values.get(k, []))), no_wrap=True, overflow="ellipsis")
                     for k in shown]
            table.add_row(*cells, sanitize(rel))
        lines = [
            f"{result.matched} matched of {result.dicom_files} DICOM files "
            f"({result.files_scanned} scanned, {len(result.unreadable)} unreadable)"
        ]
        for path, counter in result.statistics.items():
            values = ", ".join(f"{v or '<empty>'} ({n})" for v, n in counter.most_common(8))
            lines.append(f"{path}: {values}")
        self.query_one("#results-stats", Static).update("\n".join(lines))

    def action_clear_filter(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.filter_text or self.query_one(FilterBar).input.value:
            self.post_message(FilterBar.Cleared())

    @on(FilterBar.Cleared)
    def _clear_filter(self, message: FilterBar.Cleared) -> None:
        if self.search_job is not None:
            self.search_job.cancel.cancel()
            self.search_job = None  # a result arriving after Esc is dropped
        self.query_one(FilterBar).clear()
        self.filter_text = ""
        self.search_result = None
        self.ref_tree.set_allowed(None)
        self.pane.drop_titled("filter")
        self.query_one("#results", DataTable).clear(columns=True)
        self.query_one("#results-stats", Static).update(NO_FILTER)
        self._update_subtitle()
        self.ref_tree.focus()

    # ------------------------------------------------------------------ folder
    def action_open_folder(self) -> None:
        def check(values: dict[str, str]) -> str:
            path = os.path.expanduser(values.get("path", ""))
            if not path:
                return "give a folder"
            if not os.path.isdir(path):
                return f"not a folder: {path}"
            return ""

        def done(values: dict[str, str] | None) -> None:
            if values:
                self.open_folder(os.path.expanduser(values["path"]), values.get("pattern") or None)

        self.app.push_screen(
            FormDialog(
                "Open folder",
                [
                    Field("path", "Folder", value=self.root or "", placeholder="e.g. /data/dicom"),
                    Field("pattern", "File name pattern (empty: all files)", value=self.pattern or "",
                          placeholder="e.g. *.dcm"),
                ],
                ok="Open",
                check=check,
            ),
            done,
        )

    def open_folder(self, path: str, pattern: str | None = None) -> None:
        if self.scan_job is not None:
            self.scan_job.cancel.cancel()
        self.root = path
        self.pattern = pattern
        self.forest = []
        self.scan_result = None
        self.signature = None
        self.first_scan_done = False
        self.search_result = None
        self.action_clear_marks()
        self.query_one(FilterBar).clear()
        self.ref_tree.allowed = None
        self.ref_tree.unreadable = []
        self.ref_tree.base = path
        self.ref_tree.expanded_keys.clear()
        self.ref_tree.set_forest([])
        self.ref_tree.border_title = self._root_title()
        self._show_empty_hint()
        self.ref_tree.focus()
        self.start_scan()

    def action_rescan(self) -> None:
        if not self.root:
            self.refuse("no folder open: press o to open one")
            return
        self.start_scan(live=False)
