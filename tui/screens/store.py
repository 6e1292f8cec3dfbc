"""Store: send marked plans (or a folder) to a node, machine names checked before anything goes.

The machine table shows every beam's Treatment Machine Name as stored and as
it will be sent (preset defaults and mapping, editable here); beams whose
machine is empty or unknown to the node are highlighted and block the send.
The check is the store command's own (``core.net.machines.plan_problems``),
and what the ordering leaves out is listed before sending. Sending is
``core.net.store.store`` through the app's job runner: ordered, resumable
through a status file, cancellable, with a stored/skipped/failed summary.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from dicomtools.core.config import ConfigError, parse_pairs, resolve_node
from dicomtools.core.progress import ProgressSink
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, JobOutcome, JobState, Summary
from dicomtools.tui.screens.base import AppScreen
from dicomtools.tui.screens.dialogs import TextDialog
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.node_picker import NodePicker
from dicomtools.tui.widgets.progress_pane import ProgressPane

if TYPE_CHECKING:
    from dicomtools.core.net.store_order import StorePlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BeamCheck:
    patient: str
    plan: str
    plan_uid: str
    beam: str
    stored: str
    sent: str
    model: str
    state: str  # "ok", "empty", "unknown"

    def label(self) -> str:
        if self.state == "empty":
            return f"EMPTY: add default {self.model}=MACHINE" if self.model else "EMPTY: no model to map"
        if self.state == "unknown":
            return f"UNKNOWN: add mapping {self.sent}=MACHINE"
        return "ok"


def check_machines(instances: list[Any], mapping: dict[str, str], defaults: dict[str, str],
                   known: list[str]) -> list[BeamCheck]:
    """Every beam of every plan among ``instances``, judged by the store command's check."""
    from dicomtools.core.net.machines import plan_problems, resolve_machine

    out: list[BeamCheck] = []
    for inst in instances:
        if not inst.is_plan:
            continue
        bad = {p.beam: p for p in plan_problems(inst, mapping, defaults, known)}
        for beam in inst.beams:
            name = beam.name or str(beam.number)
            sent = resolve_machine(beam.machine, beam.machine_model, mapping, defaults)
            problem = bad.get(name)
            out.append(BeamCheck(inst.patient_id, inst.plan_label or inst.sop_instance_uid, inst.sop_instance_uid,
                                 name, beam.machine, sent, beam.machine_model,
                                 problem.reason if problem is not None else "ok"))
    return out


_UID = re.compile(r"\d+(?:\.\d+){3,}")


def left_out_lines(skipped: list[tuple[Any, str]], limit: int = 3) -> list[str]:
    """What the store order leaves out: one line per kind of reason (UIDs folded), a few names each.

    ``^l`` lists every file with its full reason.
    """
    by_reason: dict[str, list[str]] = {}
    for inst, why in skipped:
        by_reason.setdefault(screen_words(_UID.sub("…", why)), []).append(os.path.basename(inst.path))
    lines = []
    for why, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(names[:limit]) + (f" +{len(names) - limit}" if len(names) > limit else "")
        lines.append(f"left out {len(names)}: {why} ({shown})")
    return lines


def screen_words(why: str) -> str:
    """The core's reason in this screen's words: the CLI's --include-all is the All objects toggle."""
    return why.replace("with --include-all", "with All objects on").replace("--include-all", "All objects on")


def report_text(lines: list[str]) -> Text:
    """One screen line per report line: the list stays short, the Log and ^l have the rest."""
    return Text("\n".join(lines), no_wrap=True, overflow="ellipsis")


class StoreScreen(AppScreen):
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
        self.skipped: list[tuple[Any, str]] = []
        self.last_result: Any = None
        self._send_after_scan = False
        self.include_all = False  # also RT images, records and REG objects (core: include_all)

    def compose(self) -> ComposeResult:
        yield NavBar("store")
        with Horizontal(classes="form-line"):
            yield Label("Node", classes="inline-label")
            yield NodePicker(id="s-node")
            yield Label("Status file", classes="inline-label")
            yield TextInput(id="s-status-file", placeholder="optional, e.g. store.status", compact=True)
            yield Button("All objects: off", id="s-all", compact=True)
        with Horizontal(classes="form-line"):
            yield Label("Folder", classes="inline-label")
            yield TextInput(id="s-folder", placeholder="e.g. /data/plans (or mark plans in Browse, press t)",
                            compact=True)
        with Horizontal(classes="form-line"):
            yield Label("Mapping", classes="inline-label")
            yield TextInput(id="s-mapping", placeholder="e.g. TrueBeam1=TB1", compact=True)
            yield Label("Defaults", classes="inline-label")
            yield TextInput(id="s-defaults", placeholder="e.g. RDS=HALCYON", compact=True)
        yield Static("Nothing to send yet.", id="s-status", markup=False)
        yield DataTable(id="machines", cursor_type="row")
        yield Static("", id="s-failures", markup=False)
        yield ProgressPane(self.tool.clock, id="s-progress")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#machines", DataTable)
        table.add_columns("Patient", "Plan", "Beam", "Stored as", "Sent as", "")
        self.query_one(ProgressPane).display = False
        config = self.tool.config
        self.query_one(NodePicker).fill(config, self.tool.node_name)
        self.query_one("#s-mapping", Input).value = " ".join(f"{k}={v}" for k, v in config.machines.mapping.items())
        self.query_one("#s-defaults", Input).value = " ".join(
            f"{k}={v}" for k, v in config.machines.defaults.items()
        )
        self.recheck()

    def on_screen_resume(self) -> None:
        self.query_one(NodePicker).fill(self.tool.config)  # a node added in Settings shows up here
        self.recheck()
        if self.instances is not None:
            self.query_one("#machines", DataTable).focus()

    def say(self, text: str) -> None:
        self.query_one("#s-status", Static).update(text)

    status = say

    # ------------------------------------------------------------------ source
    def set_files(self, instances: list[Any], title: str, root: str | None = None) -> None:
        """Browse hands over the instances of its marks."""
        self.instances = list(instances)
        self.source_title = title
        self.root = root
        if self.is_mounted:
            folder = self.query_one("#s-folder", Input)
            with folder.prevent(Input.Changed):
                folder.value = ""
            self.recheck()

    @on(Input.Changed, "#s-mapping, #s-defaults")
    def _inputs_changed(self, event: Input.Changed) -> None:
        self.recheck()

    @on(Select.Changed, "#s-node")
    def _node_changed(self, event: Select.Changed) -> None:
        self.recheck()

    @on(Input.Changed, "#s-folder")
    def _folder_changed(self, event: Input.Changed) -> None:
        if event.value.strip() and self.instances is not None:
            dropped = self.source_title
            self.instances = None
            self.source_title = ""
            self.recheck()
            if dropped.endswith("marked item(s)"):
                self.say(f"Folder replaces the {dropped} from Browse (t in Browse hands them over again).")

    def _rules(self) -> tuple[dict[str, str], dict[str, str]] | None:
        try:
            mapping = parse_pairs(self.query_one("#s-mapping", Input).value)
            defaults = parse_pairs(self.query_one("#s-defaults", Input).value)
        except ValueError as exc:
            self.say(f"! machine rules: {exc}")
            return None
        return mapping, defaults

    def _known(self) -> list[str]:
        node = self.tool.config.nodes.get(self.query_one(NodePicker).node_name)
        return list(node.machines) if node is not None else []

    def recheck(self) -> list[BeamCheck]:
        """Refresh the machine table and the left-out list; returns the problem rows."""
        table = self.query_one("#machines", DataTable)
        table.clear()
        report = self.query_one("#s-failures", Static)
        rules = self._rules()
        if rules is None:
            return []
        if self.instances is None:
            folder = self.query_one("#s-folder", Input).value.strip()
            self.checks = []
            self.skipped = []
            report.update("")
            self.say(f"Folder {folder}: ^t reads it and checks the machines, ^s sends." if folder
                     else "Nothing to send: mark plans in Browse (F2) and press t, or type a folder.")
            return []
        mapping, defaults = rules
        defaults = {**self.tool.config.machines.defaults, **defaults}
        plan = self._store_plan(defaults)
        held = {inst.sop_instance_uid for inst, _ in plan.conflicts}  # not sent: not checked either
        sendable = [i for i in self.instances if i.sop_instance_uid not in held]
        self.checks = check_machines(sendable, mapping, defaults, self._known())
        for c in self.checks:
            style = "bold reverse" if c.state != "ok" else ""
            table.add_row(c.patient, c.plan, c.beam, c.stored or "<empty>", Text(c.sent or "<empty>", style=style),
                          Text(c.label(), style=style))
        self.skipped = list(plan.skipped)
        report.update(report_text(left_out_lines(self.skipped)))
        problems = [c for c in self.checks if c.state != "ok"]
        plans = len({c.plan_uid for c in self.checks})
        patients = len({i.patient_id for i in self.instances})
        text = (f"{len(self.instances)} files ({self.source_title}), {patients} patient(s), "
                f"{plans} plan(s), {len(self.checks)} beams.")
        if problems:
            text += f"\n! {len(problems)} beam(s) with an unmapped machine: nothing will be sent."
        else:
            text += "  ^s sends."
        self.say(text)
        return problems

    def _store_plan(self, defaults: dict[str, str]) -> StorePlan:
        """The store command's own plan (core ``plan_store``): same order, same files held back."""
        from dicomtools.core.net.store_order import plan_store

        assert self.instances is not None
        return plan_store(self.instances, defaults, include_all=self.include_all)

    def action_left_out(self) -> None:
        if not self.skipped:
            self.refuse("nothing is left out" if self.instances is not None else "nothing to send yet")
            return
        root = self.root
        lines = [f"{os.path.relpath(i.path, root) if root else i.path}: {screen_words(why)}"
                 for i, why in self.skipped]
        self.app.push_screen(TextDialog(f"Left out of the store: {len(lines)} file(s)", "\n".join(lines)))

    @on(Button.Pressed, "#s-all")
    def _toggle_all(self, event: Button.Pressed) -> None:
        self.include_all = not self.include_all
        event.button.label = f"All objects: {'on' if self.include_all else 'off'}"
        self.recheck()

    # ------------------------------------------------------------------ actions
    def action_check(self) -> None:
        folder = self.query_one("#s-folder", Input).value.strip()
        if folder and self.instances is None:
            self._start_scan(os.path.expanduser(folder))
        else:
            self.recheck()

    def _start_scan(self, folder: str) -> None:
        if not os.path.isdir(folder):
            self.refuse(f"not a folder: {folder}")
            return
        if self.scan_job is not None:
            self.refuse("the folder is still being read")
            return

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.archive.scan import scan

            cache = self.tool.open_index_cache()
            try:
                return scan(folder, sink=sink, cancel=job.cancel, cache=cache)
            finally:
                if cache is not None:
                    cache.close()

        def done(outcome: JobOutcome[Any]) -> Summary:
            self.scan_job = None
            send = self._send_after_scan
            self._send_after_scan = False
            if outcome.error or outcome.cancelled:
                return outcome.error or "cancelled"
            result = outcome.value
            self.instances = list(result.instances)
            self.source_title = f"folder {folder}"
            self.root = folder
            if not self.recheck() and send:
                self.call_after_refresh(self.action_send)
            return f"{len(result.instances)} DICOM files"

        self.scan_job = self.run_job(self.query_one(ProgressPane), f"read {folder}", run, done, label="read")

    def action_send(self) -> None:
        if self.job is not None:
            self.refuse("a store is running (^g cancels it)")
            return
        name = self.query_one(NodePicker).node_name
        if not name:
            self.refuse("no node: add one in Settings (F5)")
            return
        try:
            node = resolve_node(self.tool.config, name)
        except ConfigError as exc:
            self.refuse(str(exc))
            return
        if self.instances is None:
            folder = self.query_one("#s-folder", Input).value.strip()
            if not folder:
                self.refuse("nothing to send: mark plans in Browse (F2) and press t, or type a folder")
                return
            self._send_after_scan = True
            self._start_scan(os.path.expanduser(folder))
            return
        problems = self.recheck()
        if problems:
            self.app.bell()
            first = problems[0]
            self.say(f"! not sent: {len(problems)} beam(s) with an unmapped machine, e.g. plan {first.plan} "
                     f"beam {first.beam}: {first.label()}")
            return
        rules = self._rules()
        if rules is None:
            self.app.bell()
            return
        status_file = self.query_one("#s-status-file", Input).value.strip() or None
        self.query_one("#s-failures", Static).update(report_text(left_out_lines(self.skipped)))
        mapping = rules[0]
        defaults = {**self.tool.config.machines.defaults, **rules[1]}
        instances, include_all = list(self.instances), self.include_all

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.net.store import store
            from dicomtools.core.net.store_order import plan_store

            plan = plan_store(instances, defaults, include_all=include_all)
            for inst, why in plan.conflicts:
                log.warning("store: %s: %s", inst.path, why)
            return store(node, plan, status_file=status_file, mapping=mapping, defaults=defaults,
                         sink=sink, cancel=job.cancel)

        self.job = self.run_job(self.query_one(ProgressPane), f"store to {name}", run, self._store_done,
                                unit="instances")

    def _store_done(self, outcome: JobOutcome[Any]) -> Summary:
        self.job = None
        if outcome.error:
            self.say(f"! store failed: {outcome.error}")
            return outcome.error
        result = outcome.value
        self.last_result = result
        state = JobState.CANCELLED if outcome.cancelled else (JobState.DONE if result.ok else JobState.FAILED)
        lines = [f"! {p.message()}" for p in result.problems]
        if result.aborted:
            lines.append(f"! aborted: {result.aborted}")
        for patient, why in result.stopped_patients.items():
            lines.append(f"! patient {patient} stopped: {why}")
        for f in result.failed[:4]:
            lines.append(f"failed {os.path.basename(f.path)}: {f.text}")
        if len(result.failed) > 4:
            lines.append(f"... {len(result.failed) - 4} more failures in the Log (F6)")
        lines.extend(left_out_lines(list(result.skipped)))
        for f in result.failed:
            log.warning("store failed: %s: %s", f.path, f.text)
        for inst, why in result.skipped:
            log.info("store left out %s: %s", inst.path, why)
        self.query_one("#s-failures", Static).update(report_text(lines))
        self.say(f"Store {state.value}: {result.summary()}")
        return (result.summary(), state)

