"""Browse's marks and what they do: store, export, anonymize, flat list.

A mark is kept by tree key (see ``tui.marks``) and resolved when an action
needs it. Export and anonymize are core service calls (``core.export``,
``core.anonymize.run``) through the app's job runner, with the same options
the CLI takes; their dialogs check what was typed and stay open on an error.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable, TabbedContent

from dicomtools.core.progress import ProgressSink
from dicomtools.core.tree.labels import node_name
from dicomtools.tui.jobs import Job, JobOutcome, Summary
from dicomtools.tui.marks import Mark, instances_of, iter_markables, resolve, subforest
from dicomtools.tui.screens.base import AppScreen
from dicomtools.tui.screens.dialogs import Field, FormDialog
from dicomtools.tui.screens.flat_list import FlatListDialog

if TYPE_CHECKING:
    from dicomtools.tui.widgets.progress_pane import ProgressPane
    from dicomtools.tui.widgets.ref_tree import RefTree

MARK_HELP = ("space marks a patient, a plan or an unconnected item. "
             "t store, e export, a anonymize, f flat list, u unmark all.")


def destination_problem(dest: str, root: str | None) -> str:
    """Why ``dest`` cannot take a copy (empty when it can)."""
    if not dest:
        return "give a destination folder"
    path = os.path.abspath(os.path.expanduser(dest))
    if os.path.exists(path) and not os.path.isdir(path):
        return f"not a folder: {path}"
    if root:
        base = os.path.abspath(root)
        try:
            if os.path.commonpath([path, base]) == base:
                return f"the destination is inside the browsed folder {base}: choose a folder outside it"
        except ValueError:
            pass
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        return f"cannot write in {parent}"
    return ""


class MarkActions(AppScreen):
    """The mark-related actions of the Browse screen (mixed into :class:`BrowseScreen`)."""

    root: str | None
    forest: list[Any]
    marks: dict[str, Mark]
    scan_result: Any

    @property
    def ref_tree(self) -> RefTree:  # the screen's tree widget (BrowseScreen)
        raise NotImplementedError

    @property
    def pane(self) -> ProgressPane:  # the screen's progress pane (BrowseScreen)
        raise NotImplementedError

    def action_mark(self) -> None:
        item = self.ref_tree.cursor_item
        if item is None or not item.markable:
            self.refuse("only patients, plans and unconnected items can be marked")
            return
        if item.key in self.marks:
            del self.marks[item.key]
            self.ref_tree.marked_keys.discard(item.key)
        else:
            if item.node is not None:
                title = f"{item.kind} {node_name(item.node)}"
            else:
                title = "whole patient"
            self.marks[item.key] = Mark(item.key, item.kind, item.patient.patient_id, title)
            self.ref_tree.marked_keys.add(item.key)
        self.ref_tree.relabel(item.key)
        self._refresh_marked()

    def action_clear_marks(self) -> None:
        keys = list(self.marks)
        self.marks.clear()
        self.ref_tree.marked_keys.clear()
        for key in keys:
            self.ref_tree.relabel(key)
        self._refresh_marked()

    def _marked_help(self) -> str:
        return MARK_HELP

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
            self.refuse("nothing marked: press space on a patient, plan or unconnected item first")
            return None
        return pairs

    # ------------------------------------------------------------------ actions
    def action_flat_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        self.app.push_screen(FlatListDialog(subforest(pairs), self.root))

    def action_store_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        self.tool.open_store(instances_of(pairs), f"{len(pairs)} marked item(s)")

    def action_export_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        files = [i.path for i in instances_of(pairs)]
        root = self.root

        def done(values: dict[str, str] | None) -> None:
            if values:
                self._start_export(files, os.path.abspath(os.path.expanduser(values["dest"])))

        self.app.push_screen(
            FormDialog(
                f"Export {len(files)} files",
                [Field("dest", "Destination folder", placeholder="e.g. /tmp/export")],
                ok="Export",
                note="Files keep their paths below the browsed folder.",
                check=lambda v: destination_problem(v.get("dest", ""), root),
            ),
            done,
        )

    def _start_export(self, files: list[str], dest: str) -> None:
        root = self.root

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.archive.export import export_files

            return export_files(files, dest, root, sink=sink, cancel=job.cancel)

        self.run_job(self.pane, f"export to {dest}", run, self._export_done, label="export")

    def _export_done(self, outcome: JobOutcome[Any]) -> Summary:
        if outcome.error:
            return outcome.error
        return str(outcome.value.summary())

    def action_anonymize_marks(self) -> None:
        pairs = self._need_marks()
        if pairs is None:
            return
        files = [i.path for i in instances_of(pairs)]
        config = self.tool.config
        root = self.root

        def check(values: dict[str, str]) -> str:
            problem = destination_problem(values.get("dest", ""), root)
            if problem:
                return problem
            if not values.get("patient_id"):
                return "give a new Patient ID (the anonymized patient's ID)"
            if not values.get("patient_name"):
                return "give a new Patient Name"
            return profile_problem(values.get("profile", ""))

        def done(values: dict[str, str] | None) -> None:
            if values:
                self._start_anonymize(files, values)

        self.app.push_screen(
            FormDialog(
                f"Anonymize {len(files)} files",
                [
                    Field("dest", "Destination folder", placeholder="e.g. /tmp/anon1"),
                    Field("patient_id", "New Patient ID", placeholder="e.g. ANON01"),
                    Field("patient_name", "New Patient Name", placeholder="e.g. ANON^ONE"),
                    Field("profile", "Profile", value=config.anonymize.profile, placeholder="e.g. aria"),
                    Field("options", "Options (empty: none)", value=" ".join(config.anonymize.options),
                          placeholder="e.g. CleanDesc RetainDeviceIdent"),
                ],
                ok="Anonymize",
                check=check,
            ),
            done,
        )

    def _start_anonymize(self, files: list[str], values: dict[str, str]) -> None:
        from dicomtools.core.anonymize.run import AnonymizeSettings

        dest = os.path.abspath(os.path.expanduser(values["dest"]))
        settings = AnonymizeSettings(
            new_patient_id=values["patient_id"],
            new_patient_name=values["patient_name"],
            profile=values.get("profile") or "aria",
            options=(values.get("options") or "").split(),  # what the field shows is what runs
        )

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.anonymize.run import anonymize_files

            os.makedirs(dest, exist_ok=True)
            return anonymize_files(files, dest, settings, sink=sink, cancel=job.cancel)

        self.run_job(self.pane, f"anonymize to {dest}", run, self._anonymize_done, label="anonymize")

    def _anonymize_done(self, outcome: JobOutcome[Any]) -> Summary:
        if outcome.error:
            return outcome.error
        r = outcome.value
        return f"{len(r.written)} written, {len(r.not_copied)} not copied, into {r.out_dir}"


def profile_problem(name: str) -> str:
    from dicomtools.core.anonymize.profile_files import load_profile

    try:
        load_profile(name or "aria")
    except Exception as exc:  # the profile module says what is wrong in its message
        return f"profile {name!r}: {' '.join(str(exc).split())}"
    return ""
