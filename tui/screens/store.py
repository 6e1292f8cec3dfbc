"""Store: send marked plans (or a folder) to a node, machine names checked before anything goes.

The machine table shows every beam's Treatment Machine Name as stored and as
it will be sent (preset defaults and mapping, editable here); beams whose
machine is empty or unknown to the node are highlighted and block the send.
Sending is ``core.net.store.store`` in a thread worker: ordered, resumable
through a status file, cancellable, with a stored/skipped/failed summary.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from dicomtools.core.config import ConfigError, resolve_node
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, MessageSink
from dicomtools.tui.messages import JobFinished, JobProgress
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.progress_pane import ProgressPane

log = logging.getLogger(__name__)


def parse_pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{part!r}: expected NAME=VALUE")
        out[key] = value
    return out


@dataclass(frozen=True)
class BeamCheck:
    plan: str
    beam: str
    stored: str
    sent: str
    state: str  # "ok", "empty", "unknown"


def check_machines(instances: list[Any], mapping: dict[str, str], defaults: dict[str, str],
                   known: list[str]) -> list[BeamCheck]:
    """Every beam of every plan among ``instances`` with the machine it will be sent with."""
    from dicomtools.core.net.machines import resolve_machine

    out: list[BeamCheck] = []
    for inst in instances:
        if not inst.is_plan:
            continue
        for beam in inst.beams:
            sent = resolve_machine(beam.machine, beam.machine_model, mapping, defaults)
            state = "empty" if not sent else ("unknown" if known and sent not in known else "ok")
            out.append(BeamCheck(inst.plan_label or inst.sop_instance_uid, beam.name or str(beam.number),
                                 beam.machine, sent, state))
    return out


class StoreScreen(Screen[None]):
    SCOPE = "store"
    BINDINGS = bindings_for("top", "store")

    def __init__(self) -> None:
        super().__init__(id="store")
        self.instances: list[Any] | None = None
        self.source_title = ""
        self.root: str | None = None
        self.job: Job | None = None
        self.scan_job: Job | None = None
        self.checks: list[BeamCheck] = []
        self.last_result: Any = None
        self._send_after_scan = False
        self.include_all = False  # also RT images, records and REG objects (core: include_all)

    def compose(self) -> ComposeResult:
        yield NavBar("store")
        with Horizontal(classes="form-line"):
            yield Label("Node", classes="inline-label")
            yield TextInput(id="s-node", compact=True, classes="short")
            yield Label("Status file", classes="inline-label")
            yield TextInput(id="s-status-file", placeholder="optional: resume file", compact=True)
            yield Button("All objects: off", id="s-all", compact=True)
        with Horizontal(classes="form-line"):
            yield Label("Folder", classes="inline-label")
            yield TextInput(id="s-folder", placeholder="folder to send (or mark plans in Browse and press t)",
                            compact=True)
        with Horizontal(classes="form-line"):
            yield Label("Mapping", classes="inline-label")
            yield TextInput(id="s-mapping", placeholder="TrueBeam1=TB1 (stored name=name on the node)", compact=True)
            yield Label("Defaults", classes="inline-label")
            yield TextInput(id="s-defaults", placeholder="RDS=HALCYON (model=machine)", compact=True)
        yield Static("Nothing to send yet.", id="s-status", markup=False)
        yield DataTable(id="machines", cursor_type="row")
        yield Static("", id="s-failures", markup=False)
        yield ProgressPane(getattr(self.app, "clock", None), id="s-progress")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#machines", DataTable)
        table.add_columns("Plan", "Beam", "Stored as", "Sent as", "")
        self.query_one(ProgressPane).display = False
        config = self.app.config  # type: ignore[attr-defined]
        names = list(config.nodes)
        node_input = self.query_one("#s-node", Input)
        node_input.suggester = SuggestFromList(names, case_sensitive=False)
        node_input.value = self.app.node_name or (names[0] if names else "")  # type: ignore[attr-defined]
        self.query_one("#s-mapping", Input).value = " ".join(f"{k}={v}" for k, v in config.machines.mapping.items())
        self.query_one("#s-defaults", Input).value = " ".join(
            f"{k}={v}" for k, v in config.machines.defaults.items()
        )
        self.recheck()

    def on_screen_resume(self) -> None:
        names = list(self.app.config.nodes)  # type: ignore[attr-defined]
        self.query_one("#s-node", Input).suggester = SuggestFromList(names, case_sensitive=False)

    def status(self, text: str) -> None:
        self.query_one("#s-status", Static).update(text)

    # ------------------------------------------------------------------ source
    def set_files(self, instances: list[Any], title: str, root: str | None = None) -> None:
        """Browse hands over the instances of its marks."""
        self.instances = list(instances)
        self.source_title = title
        self.root = root
        if self.is_mounted:
            self.query_one("#s-folder", Input).value = ""
            self.recheck()

    @on(Input.Changed, "#s-mapping, #s-defaults, #s-node")
    def _inputs_changed(self, event: Input.Changed) -> None:
        self.recheck()

    @on(Input.Changed, "#s-folder")
    def _folder_changed(self, event: Input.Changed) -> None:
        if event.value.strip():
            self.instances = None
            self.source_title = ""
            self.recheck()

    def _rules(self) -> tuple[dict[str, str], dict[str, str]] | None:
        try:
            mapping = parse_pairs(self.query_one("#s-mapping", Input).value)
            defaults = parse_pairs(self.query_one("#s-defaults", Input).value)
        except ValueError as exc:
            self.status(f"! machine rules: {exc}")
            return None
        return mapping, defaults

    def _known(self) -> list[str]:
        name = self.query_one("#s-node", Input).value.strip()
        node = self.app.config.nodes.get(name)  # type: ignore[attr-defined]
        return list(node.machines) if node is not None else []

    def recheck(self) -> list[BeamCheck]:
        """Refresh the machine table; returns the problem rows."""
        table = self.query_one("#machines", DataTable)
        table.clear()
        rules = self._rules()
        if rules is None:
            return []
        if self.instances is None:
            folder = self.query_one("#s-folder", Input).value.strip()
            self.checks = []
            self.status(f"Folder {folder}: ^t reads it and checks the machines, ^s sends." if folder
                        else "Nothing to send: mark plans in Browse (F2) and press t, or type a folder.")
            return []
        self.checks = check_machines(self.instances, rules[0], rules[1], self._known())
        for c in self.checks:
            bad = c.state != "ok"
            style = "bold reverse" if bad else ""
            label = {"ok": "ok", "empty": "EMPTY: add a default", "unknown": "UNKNOWN: add a mapping"}[c.state]
            table.add_row(c.plan, c.beam, c.stored or "<empty>", Text(c.sent or "<empty>", style=style),
                          Text(label, style=style))
        problems = [c for c in self.checks if c.state != "ok"]
        plans = len({c.plan for c in self.checks})
        text = f"{len(self.instances)} files ({self.source_title}), {plans} plan(s), {len(self.checks)} beams."
        if problems:
            text += f"  ! {len(problems)} beam(s) with an unmapped machine: nothing will be sent."
        else:
            text += "  ^s sends."
        self.status(text)
        return problems

    @on(Button.Pressed, "#s-all")
    def _toggle_all(self, event: Button.Pressed) -> None:
        self.include_all = not self.include_all
        event.button.label = f"All objects: {'on' if self.include_all else 'off'}"

    # ------------------------------------------------------------------ actions
    def action_check(self) -> None:
        folder = self.query_one("#s-folder", Input).value.strip()
        if folder and self.instances is None:
            self._start_scan(os.path.expanduser(folder))
        else:
            self.recheck()

    def _start_scan(self, folder: str) -> None:
        if not os.path.isdir(folder):
            self.status(f"! not a folder: {folder}")
            return
        if self.scan_job is not None:
            return
        job = self.app.jobs.start(f"read {folder}", "store")  # type: ignore[attr-defined]
        self.scan_job = job
        self.query_one(ProgressPane).start(job.id, "read", unit="files")
        self._scan(job, folder)

    @work(thread=True, group="store-scan", exit_on_error=False)
    def _scan(self, job: Job, folder: str) -> None:
        from dicomtools.core.scan import scan
        from dicomtools.tui.screens.browse import open_cache

        cache = None
        try:
            cache = open_cache(self.app)
            result = scan(folder, sink=MessageSink(self, job.id), cancel=job.cancel, cache=cache)
        except Exception as exc:
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        finally:
            if cache is not None:
                cache.close()
        self.post_message(JobFinished(job.id, (folder, result), cancelled=job.cancelled))

    def action_send(self) -> None:
        if self.job is not None:
            self.app.bell()
            self.status("! a store is running (^g cancels it)")
            return
        name = self.query_one("#s-node", Input).value.strip()
        try:
            node = resolve_node(self.app.config, name) if name else None  # type: ignore[attr-defined]
        except ConfigError as exc:
            self.status(f"! {exc}")
            return
        if node is None:
            self.status("! no node: add one in Settings (F5) or type its name")
            return
        if self.instances is None:
            folder = self.query_one("#s-folder", Input).value.strip()
            if not folder:
                self.app.bell()
                self.recheck()
                return
            self._send_after_scan = True
            self._start_scan(os.path.expanduser(folder))
            return
        if self.recheck():
            self.app.bell()
            return
        rules = self._rules()
        if rules is None:
            return
        status_file = self.query_one("#s-status-file", Input).value.strip() or None
        job = self.app.jobs.start(f"store to {name}", "store")  # type: ignore[attr-defined]
        self.job = job
        self.last_result = None
        self.query_one("#s-failures", Static).update("")
        self.query_one(ProgressPane).start(job.id, f"store to {name}", unit="instances")
        defaults = {**self.app.config.machines.defaults, **rules[1]}  # type: ignore[attr-defined]
        self._store(job, node, list(self.instances), rules[0], defaults, status_file, self.include_all)

    @work(thread=True, group="store", exit_on_error=False)
    def _store(self, job: Job, node: Any, instances: list[Any], mapping: dict[str, str],
               defaults: dict[str, str], status_file: str | None, include_all: bool) -> None:
        from dicomtools.core.net.store import order_for_store, store
        from dicomtools.core.tree import build_forest

        try:
            plan = order_for_store(build_forest(instances, defaults), include_all=include_all)
            result = store(node, plan, status_file=status_file, mapping=mapping, defaults=defaults,
                           sink=MessageSink(self, job.id), cancel=job.cancel)
        except Exception as exc:
            log.warning("store failed: %s", exc)
            self.post_message(JobFinished(job.id, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(JobFinished(job.id, result, cancelled=result.cancelled))

    def action_cancel(self) -> None:
        if not self.app.jobs.cancel("store"):  # type: ignore[attr-defined]
            self.app.bell()
            return
        self.status("cancelling: stops after the instances in flight")

    # ------------------------------------------------------------------ messages
    @on(JobProgress)
    def _progress(self, message: JobProgress) -> None:
        self.query_one(ProgressPane).update_event(message.job_id, message.event)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        self.app.jobs.finish(message.job_id)  # type: ignore[attr-defined]
        pane = self.query_one(ProgressPane)
        if self.scan_job is not None and message.job_id == self.scan_job.id:
            self.scan_job = None
            send = self._send_after_scan
            self._send_after_scan = False
            if message.error or message.cancelled:
                pane.finish(message.job_id, message.error or "cancelled", "failed" if message.error else "cancelled")
                return
            folder, result = message.result
            pane.finish(message.job_id, f"{len(result.instances)} DICOM files", "done")
            self.instances = list(result.instances)
            self.source_title = f"folder {folder}"
            self.root = folder
            if not self.recheck() and send:
                self.action_send()
            return
        self.job = None
        if message.error:
            pane.finish(message.job_id, message.error, "failed")
            self.status(f"! store failed: {message.error}")
            return
        result = message.result
        self.last_result = result
        state = "cancelled" if message.cancelled else ("done" if result.ok else "failed")
        pane.finish(message.job_id, result.summary(), state)
        lines = []
        for p in result.problems:
            lines.append(f"! {p.message()}")
        if result.aborted:
            lines.append(f"! aborted: {result.aborted}")
        for patient, why in result.stopped_patients.items():
            lines.append(f"! patient {patient} stopped: {why}")
        for f in result.failed[:4]:
            lines.append(f"failed {os.path.basename(f.path)}: {f.text}")
        if len(result.failed) > 4:
            lines.append(f"... {len(result.failed) - 4} more failures in the Log (F6)")
        for f in result.failed:
            log.warning("store failed: %s: %s", f.path, f.text)
        self.query_one("#s-failures", Static).update("\n".join(lines))
        self.status(f"Store {state}: {result.summary()}")
