"""Settings: DICOM nodes (add, edit, delete, C-ECHO), local AE/port, anonymization, machines.

Edits go to a working copy of the preset; ctrl+s saves it through
``core.config.save_config`` (validated round trip, previous file kept as
``.bak``), so the CLI and the TUI write the same file the same way.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from dicomtools.core.config import (
    RETRIEVE_METHODS,
    Config,
    ConfigError,
    NodeConfig,
    default_config_path,
    resolve_node,
    save_config,
)
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job
from dicomtools.tui.messages import JobFinished
from dicomtools.tui.screens.dialogs import ConfirmDialog
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar

log = logging.getLogger(__name__)

# (input id, label, section); node fields start with "node-"
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("node-name", "Name", "Node"),
    ("node-host", "Host", "Node"),
    ("node-port", "Port", "Node"),
    ("node-called_ae", "Called AE", "Node"),
    ("node-calling_ae", "Calling AE", "Node"),
    ("node-retrieve_method", "Retrieve by", "Node"),
    ("node-machines", "Known machines", "Node"),
    ("local-ae_title", "Our AE title", "Local"),
    ("local-scp_port", "Our SCP port", "Local"),
    ("local-scp_bind", "SCP bind address", "Local"),
    ("anon-profile", "Profile", "Anonymize"),
    ("anon-options", "Options", "Anonymize"),
    ("mach-mapping", "Mapping A=B", "Machines"),
    ("mach-defaults", "Defaults MODEL=M", "Machines"),
)

PLACEHOLDERS = {
    "node-retrieve_method": "move or get",
    "node-calling_ae": "empty: our AE title",
    "node-machines": "TB1 HALCYON (empty: any)",
    "local-scp_bind": "empty: address used to reach the node",
    "anon-options": "CleanDesc RetainDeviceIdent",
    "mach-mapping": "TrueBeam1=TB1 OLD=NEW",
    "mach-defaults": "RDS=HALCYON",
}


def format_pairs(pairs: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def parse_pairs(text: str) -> dict[str, str]:
    """``A=B C=D`` -> dict; raises ValueError naming the bad part."""
    out: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{part!r}: expected NAME=VALUE")
        out[key] = value
    return out


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"port {text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return port


class SettingsScreen(Screen[None]):
    SCOPE = "settings"
    BINDINGS = bindings_for("top", "settings")

    def __init__(self) -> None:
        super().__init__(id="settings")
        self.work: Config = Config()
        self.selected: str | None = None
        self.dirty = False
        self.errors: dict[str, str] = {}
        self.echo_job: Job | None = None
        self._programmatic: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield NavBar("settings")
        yield Static("", id="settings-status", markup=False)
        with Horizontal(id="settings-main"):
            with Vertical(id="nodes-side"):
                yield Static("Nodes  ^n new  ^y delete  ^t echo", classes="section")
                yield DataTable(id="nodes", cursor_type="row")
            with VerticalScroll(id="settings-form"):
                section = ""
                for fid, label, sec in FIELDS:
                    if sec != section:
                        section = sec
                        yield Static(sec, classes="section")
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield TextInput(id=f"f-{fid}", placeholder=PLACEHOLDERS.get(fid, ""), compact=True)
        yield Static("", id="echo-result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.add_columns("Name", "Address", "AE")
        self.load(self.app.config)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ model <-> form
    def load(self, config: Config) -> None:
        self.work = copy.deepcopy(config)
        self.work.path = config.path
        self.dirty = False
        self.errors.clear()
        names = list(self.work.nodes)
        preferred = getattr(self.app, "node_name", None)
        self.selected = preferred if preferred in self.work.nodes else (names[0] if names else None)
        self.refresh_nodes()
        self.fill_form()
        self.update_status()

    def refresh_nodes(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.clear()
        for name, node in self.work.nodes.items():
            table.add_row(name, f"{node.host}:{node.port}", node.called_ae, key=name)
        if self.selected in self.work.nodes:
            table.move_cursor(row=list(self.work.nodes).index(self.selected), animate=False)

    def _set(self, fid: str, value: str) -> None:
        inp = self.query_one(f"#f-{fid}", Input)
        if inp.value != value:
            self._programmatic[fid] = value  # its Changed message is ours, not the user's
            inp.value = value

    def fill_form(self) -> None:
        node = self.work.nodes.get(self.selected) if self.selected else None
        for fid, _, _ in FIELDS:
            if fid.startswith("node-"):
                self.query_one(f"#f-{fid}", Input).disabled = node is None
        if node is not None and self.selected is not None:
            self._set("node-name", self.selected)
            self._set("node-host", node.host)
            self._set("node-port", str(node.port))
            self._set("node-called_ae", node.called_ae)
            self._set("node-calling_ae", node.calling_ae)
            self._set("node-retrieve_method", node.retrieve_method)
            self._set("node-machines", " ".join(node.machines))
        else:
            for fid, _, _ in FIELDS:
                if fid.startswith("node-"):
                    self._set(fid, "")
        self._set("local-ae_title", self.work.local.ae_title)
        self._set("local-scp_port", str(self.work.local.scp_port))
        self._set("local-scp_bind", self.work.local.scp_bind)
        self._set("anon-profile", self.work.anonymize.profile)
        self._set("anon-options", " ".join(self.work.anonymize.options))
        self._set("mach-mapping", format_pairs(self.work.machines.mapping))
        self._set("mach-defaults", format_pairs(self.work.machines.defaults))

    def update_status(self, extra: str = "") -> None:
        path = self.work.path or default_config_path()
        state = "unsaved changes (^s saves)" if self.dirty else "saved"
        text = f"Preset: {path}  [{state}]"
        if self.errors:
            fid, err = next(iter(self.errors.items()))
            text += f"\n! {dict((f, lbl) for f, lbl, _ in FIELDS)[fid]}: {err}"
        elif extra:
            text += f"\n{extra}"
        self.query_one("#settings-status", Static).update(text)

    @on(DataTable.RowHighlighted, "#nodes")
    def _node_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not event.data_table.has_focus:
            return  # the table moved because we rebuilt it, not because the user chose a node
        name = event.row_key.value if event.row_key is not None else None
        if name is not None and name != self.selected and name in self.work.nodes:
            self.selected = name
            self.fill_form()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        fid = (event.input.id or "")[2:]
        if not fid:
            return
        if fid in self._programmatic:
            if self._programmatic[fid] == event.value:
                del self._programmatic[fid]
                return
        try:
            changed = self.apply(fid, event.value.strip())
        except ValueError as exc:
            self.errors[fid] = str(exc)
            event.input.add_class("-invalid")
            self.update_status()
            return
        self.errors.pop(fid, None)
        event.input.remove_class("-invalid")
        if changed:
            self.dirty = True
            self.update_status()

    def apply(self, fid: str, value: str) -> bool:
        """Write one form value into the working copy; True if it changed anything."""
        section, _, key = fid.partition("-")
        if section == "node":
            if self.selected is None or self.selected not in self.work.nodes:
                return False
            node = self.work.nodes[self.selected]
            if key == "name":
                return self._rename(value)
            if key == "port":
                new: Any = parse_port(value)
            elif key == "machines":
                new = value.replace(",", " ").split()
            elif key == "retrieve_method":
                if value not in RETRIEVE_METHODS:
                    raise ValueError("expected 'move' or 'get'")
                new = value
            elif key in ("called_ae", "calling_ae"):
                if (value or key == "called_ae") and (not value or len(value) > 16 or not value.isascii()):
                    raise ValueError("AE title must be 1-16 ASCII characters")
                new = value
            else:
                if key == "host" and not value:
                    raise ValueError("host must not be empty")
                new = value
            if getattr(node, key) == new:
                return False
            setattr(node, key, new)
            if key in ("host", "port", "called_ae"):
                self.refresh_nodes()
            return True
        if section == "local":
            new = parse_port(value) if key == "scp_port" else value
            if key == "ae_title" and (not value or len(value) > 16 or not value.isascii()):
                raise ValueError("AE title must be 1-16 ASCII characters")
            if getattr(self.work.local, key) == new:
                return False
            setattr(self.work.local, key, new)
            return True
        if section == "anon":
            new = value.split() if key == "options" else value
            if getattr(self.work.anonymize, key) == new:
                return False
            setattr(self.work.anonymize, key, new)
            return True
        if section == "mach":
            new = parse_pairs(value)
            if getattr(self.work.machines, key) == new:
                return False
            setattr(self.work.machines, key, new)
            return True
        return False

    def _rename(self, name: str) -> bool:
        old = self.selected
        if old is None or name == old:
            return False
        if not name or any(c in name for c in " .[]\"'="):
            raise ValueError("name must be non-empty, without spaces, dots, quotes or brackets")
        if name in self.work.nodes:
            raise ValueError(f"a node called {name!r} exists")
        self.work.nodes = {(name if k == old else k): v for k, v in self.work.nodes.items()}
        self.selected = name
        self.refresh_nodes()
        return True

    # ------------------------------------------------------------------ actions
    def action_new_node(self) -> None:
        n = 1
        while f"node{n}" in self.work.nodes:
            n += 1
        name = f"node{n}"
        self.work.nodes[name] = NodeConfig()
        self.selected = name
        self.dirty = True
        self.refresh_nodes()
        self.fill_form()
        self.update_status(f"added {name}: fill in host, port and AE titles")
        self.query_one("#f-node-name", Input).focus()

    def action_delete_node(self) -> None:
        name = self.selected
        if name is None:
            self.app.bell()
            return

        def answered(yes: bool | None) -> None:
            if not yes or name not in self.work.nodes:
                return
            del self.work.nodes[name]
            self.selected = next(iter(self.work.nodes), None)
            self.dirty = True
            self.refresh_nodes()
            self.fill_form()
            self.update_status(f"deleted {name} (^s saves)")

        self.app.push_screen(ConfirmDialog(f"Delete node {name!r}?", yes="Delete"), answered)

    def action_save(self) -> None:
        if self.errors:
            self.app.bell()
            self.update_status()
            return
        try:
            path = save_config(self.work, self.work.path)
        except ConfigError as exc:
            self.update_status(f"! not saved: {exc}")
            return
        except OSError as exc:
            self.update_status(f"! not saved: {exc.strerror or exc}")
            return
        saved = copy.deepcopy(self.work)
        saved.path = path
        self.app.config = saved  # type: ignore[attr-defined]
        self.dirty = False
        log.info("preset saved to %s", path)
        self.update_status(f"saved to {path} (previous kept as {path.name}.bak)")

    def action_echo(self) -> None:
        if self.selected is None:
            self.app.bell()
            return
        try:
            node = resolve_node(self.work, self.selected)
        except ConfigError as exc:
            self.query_one("#echo-result", Static).update(f"! {exc}")
            return
        job = self.app.jobs.start(f"echo {self.selected}", "settings")  # type: ignore[attr-defined]
        self.echo_job = job
        self.query_one("#echo-result", Static).update(
            f"C-ECHO {self.selected} ({node.called_ae}@{node.host}:{node.port}) ..."
        )
        self._echo(job, self.selected, node)

    @work(thread=True, group="echo", exit_on_error=False)
    def _echo(self, job: Job, name: str, node: NodeConfig) -> None:
        from dicomtools.core.net.echo import echo

        try:
            result = echo(node)
        except Exception as exc:
            self.post_message(JobFinished(job.id, error=f"{name}: {exc}"))
            return
        self.post_message(JobFinished(job.id, (name, result)))

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        self.app.jobs.finish(message.job_id)  # type: ignore[attr-defined]
        out = self.query_one("#echo-result", Static)
        if message.error:
            out.update(f"! C-ECHO failed: {message.error}")
            log.warning("C-ECHO failed: %s", message.error)
            return
        name, result = message.result
        if result.ok:
            out.update(f"C-ECHO {name}: OK (association {result.associate_ms:.0f} ms, echo {result.echo_ms:.0f} ms)")
        else:
            out.update(f"! C-ECHO {name}: status 0x{result.status:04X}")
