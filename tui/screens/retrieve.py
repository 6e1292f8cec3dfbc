"""Retrieve: query a node for patients (by ID and/or name), mark patients or plans, retrieve them.

C-FIND and the retrieve run through the app's job runner (pynetdicom
blocks); each marked patient is one job with its own line in the progress
pane (newest first), run one after another (C-MOVE needs our one Storage SCP
port). When jobs saved files, Browse opens (or rescans) the target folder;
if that would drop marks in another folder, it asks first.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from dicomtools.core.config import ConfigError, resolve_node
from dicomtools.core.net.find_model import PatientRow
from dicomtools.core.progress import ProgressSink
from dicomtools.core.services.retrieve import RetrieveRequest
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, JobOutcome, JobState, Summary
from dicomtools.tui.screens.base import AppScreen
from dicomtools.tui.screens.dialogs import ConfirmDialog
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.node_picker import NodePicker
from dicomtools.tui.widgets.progress_pane import ProgressPane

log = logging.getLogger(__name__)


def patient_key(pid: str) -> str:
    return f"P|{pid}"


def plan_key(pid: str, uid: str) -> str:
    return f"L|{pid}|{uid}"


def requests_for(marks: set[str], rows: list[PatientRow], dest: str, new_id: str, new_name: str,
                 anonymize: bool) -> list[RetrieveRequest]:
    """One request per patient with marks: the whole patient, or the marked plans."""
    out = []
    for row in rows:
        whole = patient_key(row.patient_id) in marks
        plans = [p.sop_instance_uid for p in row.plans if plan_key(row.patient_id, p.sop_instance_uid) in marks]
        if whole or plans:
            out.append(RetrieveRequest(row.patient_id, [] if whole else plans, dest,
                                       new_id or None, new_name or None, anonymize))
    return out


class RetrieveScreen(AppScreen):
    SCOPE = "retrieve"
    BINDINGS = bindings_for("top", "retrieve")

    def __init__(self) -> None:
        super().__init__(id="retrieve")
        self.rows: list[PatientRow] = []
        self.marks: set[str] = set()
        self.find_job: Job | None = None
        self.queue: list[RetrieveRequest] = []  # waiting or running, in order
        self.saved_into: set[str] = set()
        self.anonymize = False
        self.node_label = ""
        self.list_name = ""

    def compose(self) -> ComposeResult:
        yield NavBar("retrieve")
        with Horizontal(classes="form-line"):
            yield Label("Node", classes="inline-label")
            yield NodePicker(id="r-node")
            yield Label("Patient ID", classes="inline-label")
            yield TextInput(id="r-id", placeholder="e.g. 12345 or 123*", compact=True)
            yield Label("Name", classes="inline-label")
            yield TextInput(id="r-name", placeholder="e.g. DOE^J*", compact=True)
        yield Static("Enter a Patient ID or name and press ^f (or Enter).", id="r-status", markup=False)
        yield DataTable(id="found", cursor_type="row")
        with Horizontal(classes="form-line"):
            yield Label("Into", classes="inline-label")
            yield TextInput(id="r-dest", placeholder="e.g. /data/retrieved", compact=True)
        with Horizontal(classes="form-line"):
            yield Label("New ID", classes="inline-label")
            yield TextInput(id="r-new-id", placeholder="empty = keep", compact=True)
            yield Label("New name", classes="inline-label")
            yield TextInput(id="r-new-name", placeholder="empty = keep", compact=True)
            yield Button("Anonymize: off", id="r-anon", compact=True)
        yield ProgressPane(self.tool.clock, keep=6, id="r-progress")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#found", DataTable)
        table.add_column("", key="mark", width=3)
        table.add_column("Patient / plan", key="what")
        table.add_column("Approval", key="approval")
        table.add_column("Date", key="date")
        table.add_column("Info", key="info")
        self.query_one(ProgressPane).display = False
        self.query_one(NodePicker).fill(self.tool.config, self.tool.node_name)
        dest = self.tool.retrieve_dir or os.path.join(os.getcwd(), "retrieved")
        self.query_one("#r-dest", Input).value = dest
        self.query_one("#r-id", Input).focus()

    def on_screen_resume(self) -> None:
        self.query_one(NodePicker).fill(self.tool.config)  # a node added in Settings shows up here

    def say(self, text: str) -> None:
        self.query_one("#r-status", Static).update(text)

    status = say

    # ------------------------------------------------------------------ find
    @on(Input.Submitted, "#r-id, #r-name")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_find()

    def _node(self) -> tuple[str, Any] | None:
        name = self.query_one(NodePicker).node_name
        if not name:
            self.refuse("no node: add one in Settings (F5)")
            return None
        try:
            return name, resolve_node(self.tool.config, name)
        except ConfigError as exc:
            self.refuse(str(exc))
            return None

    def action_find(self) -> None:
        got = self._node()
        if got is None:
            return
        name, node = got
        pid = self.query_one("#r-id", Input).value.strip()
        pname = self.query_one("#r-name", Input).value.strip()
        if not pid and not pname:
            self.refuse("give a Patient ID or a name (wildcards * and ? allowed)")
            return
        if self.find_job is not None:
            self.refuse("a search is running (^g cancels it)")
            return
        self.node_label = name
        self.say(f"querying {node.called_ae}@{node.host}:{node.port} ...")

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.net.session import find_patients

            return find_patients(node, pid, pname)

        self.find_job = self.run_job(self.query_one(ProgressPane), f"find on {name}", run, self._found,
                                     label=f"find {pid or pname}", unit="patients")

    def _find_failed(self, outcome: JobOutcome[Any]) -> Summary | None:
        """The C-FIND job is over; its failure or cancellation as the pane's summary, else None."""
        self.find_job = None
        if outcome.error:
            self.say(f"! C-FIND failed: {outcome.error}")
            return outcome.error
        if outcome.cancelled:
            self.say("search cancelled")
            return "cancelled"
        return None

    def _found(self, outcome: JobOutcome[Any]) -> Summary:
        failed = self._find_failed(outcome)
        if failed is not None:
            return failed
        rows = outcome.value
        self.show_rows(rows)
        plans = sum(len(r.plans) for r in rows)
        self.say(f"{len(rows)} patient(s), {plans} plan(s) on {self.node_label}. space marks, ^r retrieves.")
        self.query_one("#found", DataTable).focus()
        return f"{len(rows)} patient(s), {plans} plan(s)"

    def show_rows(self, rows: list[PatientRow]) -> None:
        self.rows = rows
        self.marks.clear()
        table = self.query_one("#found", DataTable)
        table.clear()
        for row in rows:
            studies = f"{row.studies} studies" if row.studies is not None else ""
            info = row.note or (f"{len(row.plans)} plans, {studies}" if row.plans_known else studies)
            table.add_row("[ ]", Text(f"{row.patient_id}  {row.patient_name}", style="bold"), "", "", info,
                          key=patient_key(row.patient_id))
            for plan in row.plans:
                table.add_row("[ ]", f"   {plan.plan_label or plan.sop_instance_uid}", plan.approval_status, plan.plan_date,
                              "", key=plan_key(row.patient_id, plan.sop_instance_uid))

    def action_mark(self) -> None:
        table = self.query_one("#found", DataTable)
        if not self.rows or table.cursor_row < 0:
            self.refuse("nothing to mark: find patients first (^f)")
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        if key is None:
            return
        if key in self.marks:
            self.marks.discard(key)
        else:
            self.marks.add(key)
        table.update_cell(key, "mark", "[*]" if key in self.marks else "[ ]")
        self.say(f"{len(self.marks)} marked; ^r retrieves them into the folder below")

    # ------------------------------------------------------------------ retrieve
    @on(Button.Pressed, "#r-anon")
    def _toggle_anon(self, event: Button.Pressed) -> None:
        self.anonymize = not self.anonymize
        event.button.label = f"Anonymize: {'on' if self.anonymize else 'off'}"

    # ------------------------------------------------------------------ patient list
    def action_load_list(self) -> None:
        from dicomtools.tui.screens.dialogs import Field, FormDialog

        fields = [Field("path", "Patient list (text, CSV or hand-off JSON)", placeholder="e.g. /path/to/list.json")]
        self.app.push_screen(FormDialog("Load a patient list", fields, ok="Load"), self._list_chosen)

    def _list_chosen(self, values: dict[str, str] | None) -> None:
        """Read the list (core's parser, as ``retrieve --patientList``), then look each patient up."""
        from dicomtools.core.patientlist import PatientListError, load_patient_list

        if not values or not values.get("path"):
            return
        got = self._node()
        if got is None:
            return
        if self.find_job is not None:
            self.refuse("a search is running (^g cancels it)")
            return
        try:
            plist = load_patient_list(os.path.expanduser(values["path"]))
        except PatientListError as exc:
            self.say(f"! {exc}")
            return
        name, node = got
        self.node_label = name
        self.list_name = os.path.basename(values["path"])
        entries = plist.entries
        self.say(f"looking up {len(entries)} patient(s) of {self.list_name} on {name} ...")

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.tui.screens.retrieve_list import find_listed, marks_for

            return marks_for(entries, find_listed(node, entries))

        self.find_job = self.run_job(self.query_one(ProgressPane), f"find list on {name}", run, self._list_found,
                                     label=f"list {self.list_name}", unit="patients")

    def _list_found(self, outcome: JobOutcome[Any]) -> Summary:
        from dicomtools.tui.screens.retrieve_list import summary

        failed = self._find_failed(outcome)
        if failed is not None:
            return failed
        result = outcome.value
        self.show_rows(result.rows)
        table = self.query_one("#found", DataTable)
        for key in result.marks:
            self.marks.add(key)
            table.update_cell(key, "mark", "[*]")
        text = summary(result, self.list_name)
        self.say(text)
        table.focus()
        return text

    def action_retrieve(self) -> None:
        if self.queue:
            self.refuse("a retrieve is running (^g cancels it)")
            return
        got = self._node()
        if got is None:
            return
        name, node = got
        dest = os.path.abspath(os.path.expanduser(self.query_one("#r-dest", Input).value.strip() or "."))
        new_id = self.query_one("#r-new-id", Input).value.strip()
        new_name = self.query_one("#r-new-name", Input).value.strip()
        reqs = requests_for(self.marks, self.rows, dest, new_id, new_name, self.anonymize)
        if not reqs:
            self.refuse("nothing marked: space marks a patient (everything) or plans")
            return
        if self.anonymize and not (new_id and new_name):
            self.refuse("anonymization needs a new Patient ID and a new Patient Name")
            return

        def go(yes: bool | None = True) -> None:
            if yes:
                self._start(name, node, reqs)

        if os.path.isdir(dest) and any(not e.startswith(".") for e in os.listdir(dest)):
            self.app.push_screen(ConfirmDialog(f"{dest} is not empty. Retrieve into it anyway?",
                                               yes="Retrieve"), go)
        else:
            go()

    def _start(self, name: str, node: Any, reqs: list[RetrieveRequest]) -> None:
        self.queue = list(reqs)
        self.saved_into.clear()
        self.say(f"retrieving {len(reqs)} patient(s) from {name} into {reqs[0].dest}")
        self._next(name, node)

    def _next(self, name: str, node: Any) -> None:
        """Start the first waiting request (one at a time: C-MOVE has one SCP port)."""
        if not self.queue:
            self._all_done()
            return
        req = self.queue[0]
        config = self.tool.config
        what = "whole patient" if not req.plan_uids else f"{len(req.plan_uids)} plan(s)"

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.services.retrieve import run_retrieve

            return run_retrieve(node, config, req, sink=sink, cancel=job.cancel, temp_dirs=job.temp_dirs)

        def done(outcome: JobOutcome[Any]) -> Summary:
            self.queue = self.queue[1:]
            summary = self._retrieved(req, outcome)
            if outcome.cancelled:
                self.queue = []
            self._next(name, node)
            return summary

        self.run_job(self.query_one(ProgressPane), f"retrieve {req.patient_id} ({what}) from {name}", run, done,
                     label=f"{req.patient_id} ({what})", unit="instances")

    def _retrieved(self, req: RetrieveRequest, outcome: JobOutcome[Any]) -> Summary:
        if outcome.error:
            return outcome.error
        if outcome.cancelled:
            return outcome.result.summary() if outcome.result is not None else "cancelled"
        result = outcome.value
        for problem in result.problems:
            log.warning("retrieve %s: %s", req.patient_id, problem)
        if result.result is not None and result.result.saved:
            self.saved_into.add(req.dest)
        return (result.summary(), JobState.FAILED if result.problems else JobState.DONE)

    def _all_done(self) -> None:
        if not self.saved_into:
            self.say("retrieve finished: nothing was saved; the reasons are in the progress lines and the Log (F6)")
            return
        for folder in sorted(self.saved_into):
            self.tool.folder_changed(folder)
        self.say("retrieve finished: the folder is in Browse (F2); problems are in the Log (F6)")
