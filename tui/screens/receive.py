"""Receive: run the ``receive`` Storage SCP service and watch arrivals grow into the reference tree.

The service is core's :class:`ReceiveServer` (same settings code as the
CLI); its association threads post messages here. The tree is rebuilt from
the received instances at most twice a second, so a fast sender never
floods the UI. Stopping lets every association finish its instance in
flight, in a worker thread.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, RichLog, Static

from dicomtools.core.config import ConfigError
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.receive import AllowError, AssociationReport, Filed
from dicomtools.core.net.receive.setup import settings_from
from dicomtools.core.safename import printable
from dicomtools.core.tree import build_forest
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.ref_tree import RefTree

log = logging.getLogger(__name__)


class Arrived(Message):
    def __init__(self, filed: Filed) -> None:
        super().__init__()
        self.filed = filed


class Line(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Stopped(Message):
    pass


def association_line(r: AssociationReport) -> str:
    patients = ", ".join(f"{printable(pid) or '<no id>'}: {n}" for pid, n in r.patients.items())
    extra = f", {r.identical} identical duplicates" if r.identical else ""
    extra += f", {len(r.different)} kept beside" if r.different else ""
    extra += f", {len(r.failed)} failed" if r.failed else ""
    return f"{r.calling_ae}@{r.host}: {r.instances} instances ({patients}){extra}, {r.ended}"


class ReceiveScreen(Screen[None]):
    SCOPE = "receive"
    BINDINGS = bindings_for("top", "receive")

    def __init__(self) -> None:
        super().__init__(id="receive")
        self.server: Any = None
        self.job: Job | None = None
        self.summaries: dict[str, Any] = {}  # final path -> InstanceSummary
        self.dirty = False
        self.total = 0
        self.listening = ""

    def compose(self) -> ComposeResult:
        yield NavBar("receive")
        with Horizontal(classes="form-line"):
            yield Label("Into", classes="inline-label")
            yield TextInput(id="rv-path", compact=True)
            yield Label("Port", classes="inline-label")
            yield TextInput(id="rv-port", compact=True, classes="short")
            yield Label("Allow", classes="inline-label")
            yield TextInput(id="rv-allow", placeholder="AE[@HOST] ... (empty: anyone)", compact=True)
            yield Button("Start", id="rv-toggle", compact=True)
        yield Static("Stopped. ^s starts the Storage SCP.", id="rv-status", markup=False)
        yield RefTree(id="rv-tree")
        yield RichLog(id="rv-log", max_lines=500, wrap=False, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        rc = self.app.config.receive  # type: ignore[attr-defined]
        self.query_one("#rv-path", Input).value = rc.folder or os.path.join(os.getcwd(), "received")
        self.query_one("#rv-port", Input).value = str(rc.port)
        self.query_one("#rv-allow", Input).value = " ".join(rc.allow)
        self.query_one("#rv-log", RichLog).styles.height = 6
        self.set_interval(0.5, self._refresh)

    def status(self, text: str) -> None:
        self.query_one("#rv-status", Static).update(text)

    # ------------------------------------------------------------------ start / stop
    @on(Button.Pressed, "#rv-toggle")
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_start_stop()

    def action_start_stop(self) -> None:
        if self.server is None:
            self.start()
        elif not self.server.stopping:
            self.stop()

    def start(self) -> None:
        port_text = self.query_one("#rv-port", Input).value.strip()
        if not port_text.isdigit():
            self.status(f"! port {port_text!r}: a number, e.g. 11112")
            return
        try:
            settings = settings_from(self.app.config,  # type: ignore[attr-defined]
                                     path=self.query_one("#rv-path", Input).value.strip() or None,
                                     port=int(port_text), allow=self.query_one("#rv-allow", Input).value.split())
            server = settings.server(on_instance=self._on_instance, on_association=self._on_association,
                                     on_refused=lambda why: self.post_message(Line(f"refused {why}")))
            server.start()
        except (ConfigError, AllowError, NetError, OSError) as exc:
            self.status(f"! {exc}")
            return
        self.server = server
        self.summaries.clear()
        self.total = 0
        self.job = self.app.jobs.start(f"receive on port {server.port}", "receive")  # type: ignore[attr-defined]
        who = "anyone (no allow-list)" if settings.allow.open else str(settings.allow)
        self.listening = f"{settings.ae_title} on {settings.bind}:{server.port} into {settings.path}, from {who}"
        self.status(f"listening: {self.listening}. ^s stops.")
        self.query_one("#rv-toggle", Button).label = "Stop"
        log.info("receive: %s", self.listening)

    def stop(self) -> None:
        self.status("stopping: finishing the instances in flight ...")
        self._stop(self.server)

    @work(thread=True, group="receive-stop", exit_on_error=False)
    def _stop(self, server: Any) -> None:
        server.stop(30.0)
        self.post_message(Stopped())

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        if self.job is not None:
            self.app.jobs.finish(self.job.id)  # type: ignore[attr-defined]
            self.job = None
        self.server = None
        self.query_one("#rv-toggle", Button).label = "Start"
        self.status(f"Stopped: {self.total} instances received. ^s starts again.")

    # ------------------------------------------------------------------ arrivals (association threads)
    def _on_instance(self, report: AssociationReport, filed: Filed) -> None:
        self.post_message(Arrived(filed))

    def _on_association(self, report: AssociationReport) -> None:
        self.post_message(Line(association_line(report)))

    @on(Arrived)
    def _arrived(self, message: Arrived) -> None:
        filed = message.filed
        if filed.summary is not None and filed.path:
            self.summaries[filed.path] = filed.summary
            self.total += 1
            self.dirty = True
        elif filed.reason:
            self.query_one("#rv-log", RichLog).write(f"failed: {printable(filed.reason)}")

    @on(Line)
    def _line(self, message: Line) -> None:
        self.query_one("#rv-log", RichLog).write(message.text)
        log.info("receive: %s", message.text)

    def _refresh(self) -> None:
        if self.job is not None and self.job.cancelled and self.server is not None and not self.server.stopping:
            self.stop()  # quit (or ^g) cancelled the job
        if not self.dirty:
            return
        self.dirty = False
        self.query_one("#rv-tree", RefTree).set_forest(build_forest(self.summaries.values()))
        if self.server is not None and not self.server.stopping:
            self.status(f"listening: {self.listening}. {self.total} instances received. ^s stops.")
