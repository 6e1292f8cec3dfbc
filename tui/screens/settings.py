"""Settings: DICOM nodes (add, edit, delete, C-ECHO), local AE/port, anonymization, machines.

Edits go to a working copy of the preset; ctrl+s saves it through
``core.config.save_config`` (validated round trip, previous file kept as
``.bak``), so the CLI and the TUI write the same file the same way. In the
demo the app runs on a scratch copy; saving asks first and writes the user's
own preset (without the built-in demo node), so nothing typed there is lost.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from dicomtools.core.config import (
    RETRIEVE_METHODS,
    Config,
    ConfigError,
    NodeConfig,
    default_config_path,
    parse_pairs,
    resolve_node,
    save_config,
)
from dicomtools.core.progress import ProgressSink
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.jobs import Job, JobOutcome, Summary
from dicomtools.tui.screens.base import AppScreen
from dicomtools.tui.screens.dialogs import ConfirmDialog
from dicomtools.tui.widgets.inputs import TextInput
from dicomtools.tui.widgets.nav import NavBar
from dicomtools.tui.widgets.progress_pane import ProgressPane

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

# what to type, never something that could pass for a value (empty means what it says)
PLACEHOLDERS = {
    "node-calling_ae": "empty = our AE title",
    "node-machines": "empty = any; e.g. TB1 HALCYON",
    "local-scp_bind": "empty = the address used to reach the node",
    "anon-options": "empty = no options; e.g. CleanDesc",
    "mach-mapping": "empty = none; e.g. TrueBeam1=TB1",
    "mach-defaults": "empty = none; e.g. RDS=HALCYON",
}


def format_pairs(pairs: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"port {text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return port


class SettingsScreen(AppScreen):
    SCOPE = "settings"
    BINDINGS = bindings_for("top", "settings")

    def __init__(self) -> None:
        super().__init__(id="settings")
        self.work: Config = Config()
        self.selected: str | None = None
        self.dirty = False
        self.errors: dict[str, str] = {}
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
                        if fid == "node-retrieve_method":
                            yield Select([(m, m) for m in RETRIEVE_METHODS], id=f"f-{fid}", compact=True,
                                         allow_blank=False, value="move")
                        else:
                            yield TextInput(id=f"f-{fid}", placeholder=PLACEHOLDERS.get(fid, ""), compact=True)
        yield Static("", id="echo-result", markup=False)
        yield ProgressPane(self.tool.clock, keep=1, id="echo-progress")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.add_columns("Name", "AE", "Address")
        self.query_one(ProgressPane).display = False
        self.load(self.tool.config)

    # ------------------------------------------------------------------ model <-> form
    def load(self, config: Config) -> None:
        self.work = copy.deepcopy(config)
        self.work.path = config.path
        self.dirty = False
        self.errors.clear()
        names = list(self.work.nodes)
        preferred = self.tool.node_name
        self.selected = preferred if preferred in self.work.nodes else (names[0] if names else None)
        self.refresh_nodes()
        self.fill_form()
        self.update_status()

    def refresh_nodes(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.clear()
        for name, node in self.work.nodes.items():
            table.add_row(name, node.called_ae, f"{node.host}:{node.port}", key=name)
        if self.selected in self.work.nodes:
            table.move_cursor(row=list(self.work.nodes).index(self.selected), animate=False)

    def _set(self, fid: str, value: str) -> None:
        if fid == "node-retrieve_method":
            choice = self.query_one(f"#f-{fid}", Select)
            if value in RETRIEVE_METHODS and choice.value != value:
                with choice.prevent(Select.Changed):
                    choice.value = value
            return
        inp = self.query_one(f"#f-{fid}", Input)
        if inp.value != value:
            self._programmatic[fid] = value  # its Changed message is ours, not the user's
            inp.value = value

    def fill_form(self) -> None:
        node = self.work.nodes.get(self.selected) if self.selected else None
        for fid, _, _ in FIELDS:
            if fid.startswith("node-"):
                self.query_one(f"#f-{fid}").disabled = node is None
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

    def save_path(self) -> Path:
        """Where ^s writes: the user's own preset (in the demo too, see the module doc)."""
        return Path(self.tool.user_preset or self.work.path or default_config_path())

    def update_status(self, extra: str = "") -> None:
        path = self.save_path()
        if self.dirty:
            state = "unsaved changes (^s saves)"
        elif not path.exists():
            state = "not saved yet: defaults (^s writes the file)"
        else:
            state = "saved"
        text = f"Preset: {path}  [{state}]"
        if self.tool.user_preset is not None:
            text += "\nDemo: ^s saves your nodes to this preset; the demo node itself is not kept."
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

    @on(Select.Changed, "#f-node-retrieve_method")
    def _method_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and self.apply("node-retrieve_method", event.value):
            self.dirty = True
            self.update_status()

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
        had_error = self.errors.pop(fid, None) is not None
        event.input.remove_class("-invalid")
        if changed:
            self.dirty = True
        if changed or had_error:  # a fixed value clears its error even when it equals the saved one
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
        if self.tool.user_preset is None:
            self._save()
            return
        path = self.save_path()

        def answered(yes: bool | None) -> None:
            if yes:
                self._save()

        self.app.push_screen(ConfirmDialog(
            f"Demo mode. Save your settings to your own preset {path}?\n"
            "The built-in demo node is left out; everything else you set here is kept.", yes="Save"), answered)

    def _save(self) -> None:
        path = self.save_path()
        to_write = self.work
        if self.tool.user_preset is not None:
            to_write = copy.deepcopy(self.work)
            to_write.nodes.pop("demo", None)
        existed = path.exists()
        try:
            path = save_config(to_write, path)
        except ConfigError as exc:
            self.update_status(f"! not saved: {exc}")
            return
        except OSError as exc:
            self.update_status(f"! not saved: {exc.strerror or exc}")
            return
        saved = copy.deepcopy(self.work)
        saved.path = self.work.path if self.tool.user_preset is not None else path
        self.tool.config = saved
        self.dirty = False
        log.info("preset saved to %s", path)
        kept = f" (previous kept as {path.name}.bak)" if existed else " (a new file)"
        self.update_status(f"saved to {path}{kept}")

    def action_echo(self) -> None:
        if self.selected is None:
            self.refuse("no node selected: ^n adds one")
            return
        out = self.query_one("#echo-result", Static)
        try:
            node = resolve_node(self.work, self.selected)
        except ConfigError as exc:
            self.app.bell()
            out.update(f"! {exc}")
            return
        name = self.selected
        out.update(f"C-ECHO {name} ({node.called_ae}@{node.host}:{node.port}) ...")

        def run(sink: ProgressSink, job: Job) -> Any:
            from dicomtools.core.net.echo import echo

            return echo(node)

        def done(outcome: JobOutcome[Any]) -> Summary:
            if outcome.error:
                out.update(f"! C-ECHO {name} failed: {outcome.error}")
                return outcome.error
            result = outcome.value
            if result.ok:
                text = f"C-ECHO {name}: OK (association {result.associate_ms:.0f} ms, echo {result.echo_ms:.0f} ms)"
            else:
                text = f"! C-ECHO {name}: status 0x{result.status:04X}"
            out.update(text)
            return text.removeprefix("! ")

        self.run_job(self.query_one(ProgressPane), f"echo {name}", run, done, label=f"echo {name}", unit="")
