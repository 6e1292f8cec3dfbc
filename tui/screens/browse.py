"""Browse: the reference tree of a folder (filled live while scanning), details, filter, marks.

Work is done by core functions in thread workers: ``scan`` (with ``on_batch``
feeding partial forests), ``build_forest``, ``search`` for the filter, the
export copy. Results come back only as messages. The folder is polled for
changes (directory mtimes) and rescanned when something appears or goes.
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
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane, Tree

from dicomtools.core.dicom.text import sanitize
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, MessageSink
from dicomtools.tui.marks import Mark, instances_of, iter_markables, resolve, subforest
from dicomtools.tui.messages import FolderChanged, ForestUpdated, JobFinished, JobProgress
from dicomtools.tui.screens.dialogs import Field, FormDialog, TextDialog
from dicomtools.tui.widgets.details import DetailsPane
from dicomtools.tui.widgets.filter_bar import FilterBar
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.progress_pane import ProgressPane
from dicomtools.tui.widgets.ref_tree import RefTree, TreeItem, node_key, patient_key

log = logging.getLogger(__name__)

PARTIAL_EVERY = 0.3  # seconds between live tree updates while scanning


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


def open_cache(app: Any) -> Any:
    """The app's index cache for this thread, or None; a broken cache only costs speed."""
    factory = getattr(app, "index_cache", None)
    if factory is None:
        return None
    try:
        return factory()
    except Exception as exc:
        log.warning("index cache unavailable: %s", exc)
        return None


def forest_counts(forest: list[Any]) -> str:
    patients = len(forest)
    plans = sum(len(p.plans) for p in forest)
    return f"{patients} patient{'s' if patients != 1 else ''}, {plans} plan{'s' if plans != 1 else ''}"


class BrowseScreen(Screen[None]):
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
            yield RefTree(id="tree")
            with TabbedContent(id="right", initial="tab-details"):
                with TabPane("Details d", id="tab-details"):
                    yield DetailsPane(id="details")
                with TabPane("Results r", id="tab-results"):
                    with Vertical():
                        yield Static("No filter applied. Press / and type an expression.", id="results-stats", markup=False)
                        yield DataTable(id="results", cursor_type="row")
                with TabPane("Marked m", id="tab-marked"):
                    with Vertical():
                        yield Static(self._marked_help(), id="marked-help", markup=False)
                        yield DataTable(id="marked", cursor_type="row")
        yield ProgressPane(self.app_clock(), id="progress")
        yield Footer()

    def app_clock(self) -> Any:
        return getattr(self.app, "clock", None)

    def on_mount(self) -> None:
        self.query_one(ProgressPane).display = False
        marked = self.query_one("#marked", DataTable)
        marked.add_columns("Patient", "Marked", "Files")
        tree = self.query_one(RefTree)
        tree.border_title = self._root_title()
        tree.focus()
        if self.root:
            self.start_scan()
        else:
            tree.border_subtitle = "no folder: press o to open one"
        interval = float(getattr(self.app, "poll_interval", 0) or 0)
        if interval > 0:
            self.set_interval(interval, self._poll)

    def _root_title(self) -> str:
        return self.root or "no folder"

    @property
    def tree(self) -> RefTree:
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
        jobs = self.app.jobs  # type: ignore[attr-defined]
        job = jobs.start(f"scan {self.root}", "browse")
        self.scan_job = job
        self.pane.start(job.id, "scan", unit="files")
        self.tree.border_subtitle = "scanning..."
        defaults = dict(self.app.config.machines.defaults)  # type: ignore[attr-defined]
        workers = getattr(self.app, "scan_workers", None)
        self._scan(job, self.root, self.pattern, defaults, workers, live and not self.first_scan_done)

    @work(thread=True, group="scan", exit_on_error=False)
    def _scan(
        self, job: Job, root: str, pattern: str | None, defaults: dict[str, str], workers: int | None,
        live: bool,
    ) -> None:
        from dicomtools.core.scan import scan
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

        cache = None
        try:
            cache = open_cache(self.app)
            signature = folder_signature(root)
            result = scan(root, pattern, sink=MessageSink(self, job.id), cancel=job.cancel,
                          workers=workers, on_batch=on_batch, cache=cache)
            forest = build_forest(result.instances, defaults)
        except Exception as exc:
            log.exception("scan of %s failed", root)
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        finally:
            if cache is not None:
                cache.close()
        self.post_message(ForestUpdated(root, forest, final=True, scan_result=(result, signature)))
        self.post_message(JobFinished(job.id, result, cancelled=job.cancel.cancelled))

    @on(ForestUpdated)
    def _forest(self, message: ForestUpdated) -> None:
        if message.root != self.root:
            return
        self.forest = message.forest
        if message.final and message.scan_result is not None:
            self.scan_result, self.signature = message.scan_result
            self.first_scan_done = True
        if self.search_result is not None:
            self.tree.allowed = allowed_keys(self.forest, {m.path for m in self.search_result.matches})
        self.tree.set_forest(self.forest)
        self._update_subtitle(final=message.final)
        self._refresh_marked()
        self._show_details()

    def _update_subtitle(self, final: bool = True) -> None:
        text = forest_counts(self.forest)
        if self.scan_result is not None and final:
            r = self.scan_result
            text += f", {len(r.instances)} DICOM, {len(r.unreadable)} unreadable"
        if self.search_result is not None:
            text += f" | filter: {len(self.tree.visible_patients())} shown"
        if not final:
            text += " (scanning)"
        self.tree.border_subtitle = text

    def _poll(self) -> None:
        if not self.root or not self.first_scan_done:
            return
        if self.scan_job is not None and self.app.jobs.get(self.scan_job.id):  # type: ignore[attr-defined]
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

    # ------------------------------------------------------------------ jobs
    @on(JobProgress)
    def _progress(self, message: JobProgress) -> None:
        self.pane.update_event(message.job_id, message.event)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        jobs = self.app.jobs  # type: ignore[attr-defined]
        job = jobs.get(message.job_id)
        jobs.finish(message.job_id)
        state = "failed" if message.error else ("cancelled" if message.cancelled else "done")
        if self.scan_job is not None and message.job_id == self.scan_job.id:
            self.scan_job = None
            if message.error:
                self.pane.finish(message.job_id, message.error, "failed")
                self.tree.border_subtitle = f"scan failed: {message.error}"
            else:
                r = message.result
                self.pane.finish(message.job_id, f"{r.files_seen} files, {len(r.instances)} DICOM", state)
            return
        if self.search_job is not None and message.job_id == self.search_job.id:
            self.search_job = None
            if message.error:
                self.pane.finish(message.job_id, message.error, "failed")
                self.query_one(FilterBar).show_error(message.error)
            elif message.cancelled:
                self.pane.finish(message.job_id, "cancelled", "cancelled")
            else:
                self.pane.finish(message.job_id, f"{message.result.matched} matched", state)
                self._apply_search(message.result)
            return
        summary = message.error or getattr(message.result, "summary", lambda: "done")()
        self.pane.finish(message.job_id, summary, state)
        title = job.title if job is not None else "job"
        self.app.notify(f"{title}: {summary}", severity="error" if message.error else "information")

    def action_cancel(self) -> None:
        if not self.app.jobs.cancel("browse"):  # type: ignore[attr-defined]
            self.app.bell()

    # ------------------------------------------------------------------ details
    @on(Tree.NodeHighlighted, "#tree")
    def _highlighted(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        self._show_details(event.node.data)

    def _show_details(self, item: TreeItem | None = None) -> None:
        if item is None:
            item = self.tree.cursor_item
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
        self.query_one(FilterBar).input.focus()

    @on(FilterBar.Applied)
    def _apply_filter(self, message: FilterBar.Applied) -> None:
        if not self.root:
            self.query_one(FilterBar).show_error("open a folder first (o)")
            return
        if self.search_job is not None:
            self.search_job.cancel.cancel()
        self.filter_text = message.text
        jobs = self.app.jobs  # type: ignore[attr-defined]
        job = jobs.start(f"filter {message.text}", "browse")
        self.search_job = job
        self.pane.start(job.id, "filter", unit="files")
        self._search(job, self.root, self.pattern, message.expressions)

    @work(thread=True, group="search", exit_on_error=False)
    def _search(self, job: Job, root: str, pattern: str | None, exprs: list[Any]) -> None:
        from dicomtools.core.search import search

        cache = None
        try:
            cache = open_cache(self.app)
            result = search(root, exprs, pattern, sink=MessageSink(self, job.id), cancel=job.cancel,
                            workers=getattr(self.app, "scan_workers", None), cache=cache)
        except Exception as exc:
            log.exception("filter search failed")
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        finally:
            if cache is not None:
                cache.close()
        self.post_message(JobFinished(job.id, result, cancelled=result.cancelled))

    def _apply_search(self, result: Any) -> None:
        self.search_result = result
        matched = {m.path for m in result.matches}
        self.tree.set_allowed(allowed_keys(self.forest, matched))
        self._update_subtitle()
        self._fill_results(result)
        self.tree.focus()

    def _fill_results(self, result: Any) -> None:
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        shown = list(dict.fromkeys(k for m in result.matches for k in m.values))
        table.add_column("Path", key="path")
        for key in shown:
            table.add_column(key, key=key)
        for m in result.matches:
            rel = os.path.relpath(m.path, self.root) if self.root else m.path
            cells = [sanitize(rel)] + [
                Text(sanitize("\\".join(m.values.get(k, []))), no_wrap=True, overflow="ellipsis") for k in shown
            ]
            table.add_row(*cells)
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
        self.query_one(FilterBar).clear()
        self.filter_text = ""
        self.search_result = None
        self.tree.set_allowed(None)
        self.query_one("#results", DataTable).clear(columns=True)
        self.query_one("#results-stats", Static).update("No filter applied. Press / and type an expression.")
        self._update_subtitle()
        self.tree.focus()

    # ------------------------------------------------------------------ marks
    def action_mark(self) -> None:
        item = self.tree.cursor_item
        if item is None or not self._markable(item):
            self.app.bell()
            self.notify("Only patients and plans can be marked.", severity="warning")
            return
        if item.key in self.marks:
            del self.marks[item.key]
            self.tree.marked_keys.discard(item.key)
        else:
            title = item.node.label.split(",")[0] if item.node is not None else "whole patient"
            self.marks[item.key] = Mark(item.key, item.kind, item.patient.patient_id, f"{item.kind} {title}")
            self.tree.marked_keys.add(item.key)
        self.tree.relabel(item.key)
        self._refresh_marked()

    def _markable(self, item: TreeItem) -> bool:
        return item.kind == "patient" or (item.is_plan and item.key.count("/") == 1)

    def action_clear_marks(self) -> None:
        keys = list(self.marks)
        self.marks.clear()
        self.tree.marked_keys.clear()
        for key in keys:
            self.tree.relabel(key)
        self._refresh_marked()

    def _marked_help(self) -> str:
        return "space marks a plan or patient. t store, e export, a anonymize, f flat list, u unmark all."

    def _refresh_marked(self) -> None:
        table = self.query_one("#marked", DataTable)
        table.clear()
        present = {key for key, _, _ in iter_markables(self.forest)}
        for mark in self.marks.values():
            pairs = resolve(self.forest, [mark.key])
            files = len(instances_of(pairs)) if pairs else 0
            title = mark.title if mark.key in present else f"{mark.title} (not in folder)"
            table.add_row(mark.patient_id, title, str(files))
        tabs = self.query_one(TabbedContent)
        tab = tabs.get_tab("tab-marked")
        tab.label = f"Marked m ({len(self.marks)})" if self.marks else "Marked m"  # type: ignore[assignment]

    def marked_pairs(self) -> list[tuple[Any, Any]]:
        return resolve(self.forest, list(self.marks))

    def _need_marks(self) -> list[tuple[Any, Any]] | None:
        pairs = self.marked_pairs()
        if not pairs:
            self.app.bell()
            self.notify("Nothing marked: press space on a plan or patient first.", severity="warning")
            return None
        return pairs

    def action_flat_marks(self) -> None:
        from dicomtools.core.render import render_flat

        pairs = self._need_marks()
        if pairs is None:
            return
        self.app.push_screen(TextDialog("Marked items (flat list)", render_flat(subforest(pairs))))

    def action_store_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        self.app.open_store(instances_of(pairs), f"{len(pairs)} marked item(s)")  # type: ignore[attr-defined]

    def action_export_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        files = [i.path for i in instances_of(pairs)]

        def done(values: dict[str, str] | None) -> None:
            if not values or not values.get("dest"):
                return
            self._start_export(files, os.path.abspath(os.path.expanduser(values["dest"])))

        self.app.push_screen(
            FormDialog(
                f"Export {len(files)} files",
                [Field("dest", "Destination folder", placeholder="/path/to/folder")],
                ok="Export",
                note="Files keep their paths below the browsed folder.",
            ),
            done,
        )

    def _start_export(self, files: list[str], dest: str) -> None:
        jobs = self.app.jobs  # type: ignore[attr-defined]
        job = jobs.start(f"export to {dest}", "browse")
        self.pane.start(job.id, "export", unit="files")
        self._export(job, files, dest, self.root)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, job: Job, files: list[str], dest: str, root: str | None) -> None:
        from dicomtools.core.export import export_files

        try:
            result = export_files(files, dest, root, sink=MessageSink(self, job.id), cancel=job.cancel)
        except Exception as exc:
            log.exception("export failed")
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(JobFinished(job.id, result, cancelled=result.cancelled))

    def action_anonymize_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        files = [i.path for i in instances_of(pairs)]
        config = self.app.config  # type: ignore[attr-defined]

        def done(values: dict[str, str] | None) -> None:
            if not values or not values.get("dest"):
                return
            self._start_anonymize(files, values)

        self.app.push_screen(
            FormDialog(
                f"Anonymize {len(files)} files",
                [
                    Field("dest", "Destination folder", placeholder="/path/to/folder"),
                    Field("patient_id", "New Patient ID (required)"),
                    Field("patient_name", "New Patient Name (required)"),
                    Field("profile", "Profile", value=config.anonymize.profile),
                    Field("options", "Options", value=" ".join(config.anonymize.options)),
                ],
                ok="Anonymize",
            ),
            done,
        )

    def _start_anonymize(self, files: list[str], values: dict[str, str]) -> None:
        jobs = self.app.jobs  # type: ignore[attr-defined]
        dest = os.path.abspath(os.path.expanduser(values["dest"]))
        job = jobs.start(f"anonymize to {dest}", "browse")
        self.pane.start(job.id, "anonymize", unit="files")
        self._anonymize(job, files, dest, values)

    @work(thread=True, group="anonymize", exit_on_error=False)
    def _anonymize(self, job: Job, files: list[str], dest: str, values: dict[str, str]) -> None:
        from dicomtools.core.net.session import anonymize_files

        try:
            result = anonymize_files(
                files,
                dest,
                profile=values.get("profile") or "",
                options=(values.get("options") or "").split(),
                patient_id=values.get("patient_id") or None,
                patient_name=values.get("patient_name") or None,
                sink=MessageSink(self, job.id),
                cancel=job.cancel,
            )
        except Exception as exc:
            log.exception("anonymize failed")
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(JobFinished(job.id, result, cancelled=job.cancel.cancelled))

    # ------------------------------------------------------------------ folder
    def action_open_folder(self) -> None:
        def done(values: dict[str, str] | None) -> None:
            if not values or not values.get("path"):
                return
            path = os.path.expanduser(values["path"])
            if not os.path.isdir(path):
                self.notify(f"not a folder: {path}", severity="error")
                return
            self.open_folder(path, values.get("pattern") or None)

        self.app.push_screen(
            FormDialog(
                "Open folder",
                [
                    Field("path", "Folder", value=self.root or "", placeholder="/path/to/dicom"),
                    Field("pattern", "File name pattern (empty: all files)", value=self.pattern or "",
                          placeholder="*.dcm"),
                ],
                ok="Open",
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
        self.tree.allowed = None
        self.tree.expanded_keys.clear()
        self.tree.set_forest([])
        self.tree.border_title = self._root_title()
        self.start_scan()

    def action_rescan(self) -> None:
        self.start_scan(live=False)
