"""Retrieve: query a node for patients (by ID and/or name), mark patients or plans, retrieve them.

C-FIND and the retrieve run in thread workers (pynetdicom blocks); each
marked patient is one job with its own line in the progress pane, run one
after another (C-MOVE needs our one Storage SCP port). When a job saved
files, Browse opens (or rescans) the target folder.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from dicomtools.core.config import ConfigError, resolve_node
from dicomtools.core.net.session import PatientRow, RetrieveRequest
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, MessageSink
from dicomtools.tui.messages import JobFinished, JobProgress
from dicomtools.tui.screens.dialogs import ConfirmDialog
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
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


class RetrieveScreen(Screen[None]):
    SCOPE = "retrieve"
    BINDINGS = bindings_for("top", "retrieve")

    def __init__(self) -> None:
        super().__init__(id="retrieve")
        self.rows: list[PatientRow] = []
        self.marks: set[str] = set()
        self.find_job: Job | None = None
        self.queue: list[tuple[Job, RetrieveRequest]] = []
        self.anonymize = False
        self.node_label = ""
        self.list_name = ""

    def compose(self) -> ComposeResult:
        yield NavBar("retrieve")
        with Horizontal(classes="form-line"):
            yield Label("Node", classes="inline-label")
            yield TextInput(id="r-node", compact=True, classes="short")
            yield Label("Patient ID", classes="inline-label")
            yield TextInput(id="r-id", placeholder="exact or with *", compact=True)
            yield Label("Name", classes="inline-label")
            yield TextInput(id="r-name", placeholder="DOE^J*", compact=True)
        yield Static("Enter a Patient ID or name and press ^f (or Enter).", id="r-status", markup=False)
        yield DataTable(id="found", cursor_type="row")
        with Horizontal(classes="form-line"):
            yield Label("Into", classes="inline-label")
            yield TextInput(id="r-dest", compact=True)
        with Horizontal(classes="form-line"):
            yield Label("New ID", classes="inline-label")
            yield TextInput(id="r-new-id", placeholder="keep", compact=True)
            yield Label("New name", classes="inline-label")
            yield TextInput(id="r-new-name", placeholder="keep", compact=True)
            yield Button("Anonymize: off", id="r-anon", compact=True)
        yield ProgressPane(getattr(self.app, "clock", None), keep=6, id="r-progress")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#found", DataTable)
        table.add_column("", key="mark", width=3)
        table.add_column("Patient / plan", key="what")
        table.add_column("Approval", key="approval")
        table.add_column("Date", key="date")
        table.add_column("Info", key="info")
        self.query_one(ProgressPane).display = False
        config = self.app.config  # type: ignore[attr-defined]
        names = list(config.nodes)
        node = self.app.node_name or (names[0] if names else "")  # type: ignore[attr-defined]
        node_input = self.query_one("#r-node", Input)
        node_input.suggester = SuggestFromList(names, case_sensitive=False)
        node_input.value = node or ""
        dest = self.app.retrieve_dir or os.path.join(os.getcwd(), "retrieved")  # type: ignore[attr-defined]
        self.query_one("#r-dest", Input).value = dest
        self.query_one("#r-id", Input).focus()

    def on_screen_resume(self) -> None:
        names = list(self.app.config.nodes)  # type: ignore[attr-defined]
        self.query_one("#r-node", Input).suggester = SuggestFromList(names, case_sensitive=False)

    def status(self, text: str) -> None:
        self.query_one("#r-status", Static).update(text)

    # ------------------------------------------------------------------ find
    @on(Input.Submitted, "#r-id, #r-name, #r-node")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_find()

    def _node(self) -> tuple[str, Any] | None:
        name = self.query_one("#r-node", Input).value.strip()
        config = self.app.config  # type: ignore[attr-defined]
        if not name:
            self.status("! no node: add one in Settings (F5) or type its name")
            return None
        try:
            return name, resolve_node(config, name)
        except ConfigError as exc:
            self.status(f"! {exc}")
            return None

    def action_find(self) -> None:
        got = self._node()
        if got is None:
            return
        name, node = got
        pid = self.query_one("#r-id", Input).value.strip()
        pname = self.query_one("#r-name", Input).value.strip()
        if not pid and not pname:
            self.status("! give a Patient ID or a name (wildcards * and ? allowed)")
            return
        if self.find_job is not None:
            self.app.bell()
            return
        job = self.app.jobs.start(f"find on {name}", "retrieve")  # type: ignore[attr-defined]
        self.find_job = job
        self.node_label = name
        self.status(f"querying {node.called_ae}@{node.host}:{node.port} ...")
        self._find(job, node, pid, pname)

    @work(thread=True, group="find", exit_on_error=False)
    def _find(self, job: Job, node: Any, pid: str, pname: str) -> None:
        from dicomtools.core.net.session import find_patients

        try:
            rows = find_patients(node, pid, pname)
        except Exception as exc:
            self.post_message(JobFinished(job.id, error=str(exc)))
            return
        self.post_message(JobFinished(job.id, rows))

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
                table.add_row("[ ]", f"   {plan.label or plan.sop_instance_uid}", plan.approval, plan.date,
                              "", key=plan_key(row.patient_id, plan.sop_instance_uid))

    def action_mark(self) -> None:
        table = self.query_one("#found", DataTable)
        if not self.rows or table.cursor_row < 0:
            self.app.bell()
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        if key is None:
            return
        if key in self.marks:
            self.marks.discard(key)
        else:
            self.marks.add(key)
        table.update_cell(key, "mark", "[*]" if key in self.marks else "[ ]")
        self.status(f"{len(self.marks)} marked; ^r retrieves them into the folder below")

    # ------------------------------------------------------------------ retrieve
    @on(Button.Pressed, "#r-anon")
    def _toggle_anon(self, event: Button.Pressed) -> None:
        self.anonymize = not self.anonymize
        event.button.label = f"Anonymize: {'on' if self.anonymize else 'off'}"

    def action_retrieve(self) -> None:
        if self.queue:
            self.app.bell()
            self.status("! a retrieve is running (^g cancels it)")
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
            self.app.bell()
            self.status("! nothing marked: space marks a patient (everything) or plans")
            return
        if self.anonymize and not (new_id and new_name):
            self.status("! anonymization needs a new Patient ID and a new Patient Name")
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
        pane = self.query_one(ProgressPane)
        jobs = self.app.jobs  # type: ignore[attr-defined]
        for req in reqs:
            what = "whole patient" if not req.plan_uids else f"{len(req.plan_uids)} plan(s)"
            job = jobs.start(f"retrieve {req.patient_id} ({what}) from {name}", "retrieve")
            pane.start(job.id, f"{req.patient_id} ({what})", unit="instances")
            self.queue.append((job, req))
        self.status(f"retrieving {len(reqs)} patient(s) from {name} into {reqs[0].dest}")
        self._retrieve(list(self.queue), node, self.app.config)  # type: ignore[attr-defined]

    @work(thread=True, group="retrieve", exit_on_error=False)
    def _retrieve(self, queue: list[tuple[Job, RetrieveRequest]], node: Any, config: Any) -> None:
        from dicomtools.core.net.session import run_retrieve

        for job, req in queue:
            if job.cancelled:
                self.post_message(JobFinished(job.id, None, cancelled=True))
                continue
            try:
                outcome = run_retrieve(node, config, req, sink=MessageSink(self, job.id), cancel=job.cancel,
                                       temp_dirs=job.temp_dirs)
            except Exception as exc:
                log.warning("retrieve of %s failed: %s", req.patient_id, exc)
                self.post_message(JobFinished(job.id, error=str(exc)))
                continue
            self.post_message(JobFinished(job.id, outcome, cancelled=outcome.cancelled))

    # ------------------------------------------------------------------ patient list (retrieve_list)
    def action_load_list(self) -> None:
        from dicomtools.tui.screens.dialogs import Field, FormDialog

        fields = [Field("path", "Patient list (text, CSV or hand-off JSON)", placeholder="/path/to/list.json")]
        self.app.push_screen(FormDialog("Load a patient list", fields, ok="Load"), self._list_chosen)

    def _list_chosen(self, values: dict[str, str] | None) -> None:
        from dicomtools.core.patientlist import PatientListError, load_patient_list

        if not values or not values.get("path"):
            return
        got = self._node()
        if got is None:
            return
        try:
            plist = load_patient_list(os.path.expanduser(values["path"]))
        except PatientListError as exc:
            self.status(f"! {exc}")
            return
        self.node_label = got[0]
        self.list_name = os.path.basename(values["path"])
        self.status(f"looking up {len(plist.entries)} patient(s) of {self.list_name} on {got[0]} ...")
        self._find_list(got[1], plist.entries)

    @work(thread=True, group="find", exit_on_error=False)
    def _find_list(self, node: Any, entries: Any) -> None:
        from dicomtools.tui.screens.retrieve_list import ListLoaded, find_listed, marks_for

        try:
            self.post_message(ListLoaded(marks_for(entries, find_listed(node, entries))))
        except Exception as exc:
            self.post_message(ListLoaded(None, str(exc)))

    def on_list_loaded(self, message: Any) -> None:
        from dicomtools.tui.screens.retrieve_list import summary

        if message.result is None:
            self.status(f"! C-FIND failed: {message.error}")
            return
        self.show_rows(message.result.rows)
        table = self.query_one("#found", DataTable)
        for key in message.result.marks:
            self.marks.add(key)
            table.update_cell(key, "mark", "[*]")
        self.status(summary(message.result, self.list_name))
        table.focus()

    def action_cancel(self) -> None:
        if not self.app.jobs.cancel("retrieve"):  # type: ignore[attr-defined]
            self.app.bell()
            return
        self.status("cancelling: stops after the instances in flight")

    # ------------------------------------------------------------------ messages
    @on(JobProgress)
    def _progress(self, message: JobProgress) -> None:
        self.query_one(ProgressPane).update_event(message.job_id, message.event)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        jobs = self.app.jobs  # type: ignore[attr-defined]
        jobs.finish(message.job_id)
        if self.find_job is not None and message.job_id == self.find_job.id:
            self.find_job = None
            if message.error:
                self.status(f"! C-FIND failed: {message.error}")
                return
            rows = message.result
            self.show_rows(rows)
            plans = sum(len(r.plans) for r in rows)
            self.status(f"{len(rows)} patient(s), {plans} plan(s) on {self.node_label}. "
                        "space marks, ^r retrieves.")
            self.query_one("#found", DataTable).focus()
            return
        pane = self.query_one(ProgressPane)
        self.queue = [(j, r) for j, r in self.queue if j.id != message.job_id]
        if message.error:
            pane.finish(message.job_id, message.error, "failed")
        elif message.cancelled:
            pane.finish(message.job_id, message.result.summary() if message.result else "cancelled", "cancelled")
        else:
            outcome = message.result
            state = "done" if not outcome.problems else "failed"
            pane.finish(message.job_id, outcome.summary(), state)
            for problem in outcome.problems[:5]:
                log.warning("retrieve %s: %s", outcome.request.patient_id, problem)
            if outcome.result is not None and outcome.result.saved:
                self.app.folder_changed(outcome.request.dest)  # type: ignore[attr-defined]
        if not self.queue:
            self.status("retrieve finished: the folder is open in Browse (F2); problems are in the Log (F6)")
