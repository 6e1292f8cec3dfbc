"""The Textual application: installs the screens, the keys and the command palette.

Kept small on purpose: behaviour lives in the screens, keys in ``actions``,
layout in ``app.tcss``. ``run_app`` is what ``dicomtools tui`` (and plain
``dicomtools`` in a terminal) calls.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.command import CommandPalette, SearchIcon
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from dicomtools.core.config import Config, ConfigError, default_config_path, load_config
from dicomtools.tui.actions import SCREENS, actions_for, bindings_for
from dicomtools.tui.clock import Clock
from dicomtools.tui.jobs import JobRegistry, JobRunner, error_text
from dicomtools.tui.logbridge import BufferHandler, LogCapture
from dicomtools.tui.messages import FolderChanged, LogAppended
from dicomtools.tui.screens.browse import BrowseScreen
from dicomtools.tui.screens.dialogs import ConfirmDialog, ErrorDialog, KeysDialog
from dicomtools.tui.screens.log import LogScreen
from dicomtools.tui.screens.receive import ReceiveScreen
from dicomtools.tui.screens.retrieve import RetrieveScreen
from dicomtools.tui.screens.settings import SettingsScreen
from dicomtools.tui.screens.store import StoreScreen
from dicomtools.tui.widgets.inputs import deliver_typed_ahead

log = logging.getLogger(__name__)


class DicomToolsApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "dicomtools"
    BINDINGS = bindings_for("app")

    def __init__(
        self,
        path: str | None = None,
        config: Config | None = None,
        node: str | None = None,
        *,
        pattern: str | None = None,
        demo: bool = False,
        clock: Clock | None = None,
        poll_interval: float = 5.0,
        scan_workers: int | None = None,
        cursor_blink: bool = True,
        log_handler: BufferHandler | None = None,
        retrieve_dir: str | None = None,
        index_cache: Any = None,
        user_preset: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_path = path
        self.pattern = pattern
        self.config: Config = config if config is not None else Config()
        self.node_name = node
        self.demo = demo
        self.clock = clock or Clock()
        self.poll_interval = poll_interval
        self.scan_workers = scan_workers
        self.cursor_blink_enabled = cursor_blink
        self.log_handler = log_handler or BufferHandler()
        self.retrieve_dir = retrieve_dir or path
        # zero-argument factory of a core IndexCache (None: no cache); called in the worker
        # thread because SQLite connections belong to one thread
        self.index_cache = index_cache
        self.jobs = JobRegistry()
        self.runner = JobRunner(self.jobs)
        # where Settings saves: the demo runs on a scratch copy of the preset, but a node the
        # user adds there is meant for real use, so it goes to the user's own preset file
        self.user_preset = user_preset

    # ------------------------------------------------------------------ start
    def on_mount(self) -> None:
        self.log_handler.notify = self._log_notify
        self.install_screen(BrowseScreen(self.start_path, self.pattern), "browse")
        self.install_screen(RetrieveScreen(), "retrieve")
        self.install_screen(StoreScreen(), "store")
        self.install_screen(SettingsScreen(), "settings")
        self.install_screen(LogScreen(), "log")
        self.install_screen(ReceiveScreen(), "receive")
        self.push_screen("browse")
        log.info("dicomtools TUI started (folder: %s, node: %s)", self.start_path or "-", self.node_name or "-")

    def _log_notify(self) -> None:
        self.post_message(LogAppended())

    def on_log_appended(self, message: LogAppended) -> None:
        screen = self.screen
        if isinstance(screen, LogScreen):
            screen.append_new()

    # ------------------------------------------------------------------ screens
    def action_goto(self, name: str) -> None:
        if name not in SCREENS:
            return
        if isinstance(self.screen, ModalScreen):
            self.bell()
            return
        if self.screen is self.get_screen(name):
            return
        self.switch_screen(name)

    def open_store(self, instances: list[Any], title: str) -> None:
        """Browse hands the instances of its marks to the Store screen."""
        store = self.get_screen("store")
        assert isinstance(store, StoreScreen)
        store.set_files(instances, title, root=self.browse.root)
        self.action_goto("store")

    @property
    def browse(self) -> BrowseScreen:
        screen = self.get_screen("browse")
        assert isinstance(screen, BrowseScreen)
        return screen

    def open_index_cache(self) -> Any:
        """This thread's index cache, or None; a broken cache only costs speed (call in the worker)."""
        if self.index_cache is None:
            return None
        try:
            return self.index_cache()
        except Exception as exc:
            log.warning("index cache unavailable: %s", exc)
            return None

    def folder_changed(self, folder: str) -> None:
        """A job wrote into ``folder``: show it in Browse without losing the user's marks.

        Inside the browsed folder it is rescanned; another folder opens in
        Browse, after asking when that would drop marks made in the open one.
        """
        browse = self.browse
        if browse.root and _inside(os.path.abspath(folder), os.path.abspath(browse.root)):
            browse.post_message(FolderChanged(browse.root))
            return
        if not browse.marks:
            browse.open_folder(folder)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                browse.open_folder(folder)
            else:
                log.info("retrieved into %s; Browse stays on %s with its marks", folder, browse.root)

        self.push_screen(ConfirmDialog(
            f"Files were saved into {folder}.\nOpen it in Browse? The {len(browse.marks)} mark(s) in "
            f"{browse.root} would be dropped (n keeps them; o in Browse opens the folder later).",
            yes="Open"), answered)

    def action_keys(self) -> None:
        screen = self.screen
        scope = getattr(screen, "SCOPE", None)
        scopes = ["app"] + (["top", scope] if scope else [])
        if scope == "browse":
            scopes += ["filter", "elements"]
        self.push_screen(KeysDialog(scopes))

    # ------------------------------------------------------------------ quit
    async def action_quit(self) -> None:
        running = self.jobs.running()
        settings = self.get_screen("settings")
        unsaved = isinstance(settings, SettingsScreen) and settings.dirty
        if not running and not unsaved:
            self.exit(0)
            return
        lines = []
        if running:
            names = ", ".join(j.title for j in running[:3])
            lines.append(f"{len(running)} job(s) running: {names} (they are cancelled).")
        if unsaved:
            lines.append("Settings have unsaved changes (they are lost; F5 then ^s saves them).")

        def answered(yes: bool | None) -> None:
            if yes:
                self.jobs.cancel()
                self.jobs.cleanup_all()
                self.exit(0)

        self.push_screen(ConfirmDialog("\n".join(lines) + "\nQuit anyway?", yes="Quit"), answered)

    # ------------------------------------------------------------------ errors
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # jobs report their own errors through the runner; this catches the small UI workers
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            log.error("%s failed: %s", event.worker.name or "background task", error_text(err), exc_info=err)
            self.push_screen(ErrorDialog(error_text(err), title=f"{event.worker.name or 'task'} failed"))

    # ------------------------------------------------------------------ keys
    async def on_event(self, event: events.Event) -> None:
        # A form dialog takes Tab and typed characters here, where the app handles keys one at
        # a time in the order typed (FormDialog.route_key); Textual would queue them to the
        # field focused now and move the focus for a Tab only later.
        if isinstance(event, events.Key) and not event.is_forwarded and self.screen_stack:
            route = getattr(self.screen_stack[-1], "route_key", None)
            if route is not None and route(event):
                return
        await super().on_event(event)

    async def _on_key(self, event: events.Key) -> None:
        # A printable key that bubbled up to here while a text field has the focus was typed
        # ahead: it reached a widget before a dialog (opened by an earlier key) took the focus.
        # It belongs in the field the user is now in, not lost or taken as a shortcut.
        # (Textual then runs App._on_key itself, unless the key was delivered: prevent_default.)
        deliver_typed_ahead(self.screen, event)

    # ------------------------------------------------------------------ palette
    def action_command_palette(self) -> None:
        if self.use_command_palette and not any(isinstance(s, CommandPalette) for s in self.screen_stack):
            self.push_screen(Palette(id="--command-palette"))

    # ------------------------------------------------------------------ palette
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        scope = getattr(screen, "SCOPE", None)
        ours = actions_for("app", scope) if scope else actions_for("app")
        titles = {a.description for a in ours}
        for a in ours:
            if not a.palette:
                continue
            target = self if a.scope == "app" else screen
            yield SystemCommand(
                f"{a.description} ({a.key_display})",
                a.help or a.description,
                functools.partial(self._run_palette_action, a.action, target),
            )
        for cmd in super().get_system_commands(screen):
            if cmd.title not in titles:
                yield cmd

    async def _run_palette_action(self, action: str, target: Any) -> None:
        await self.run_action(action, target)


class Palette(CommandPalette):
    """Textual's command palette with a plain ``>`` instead of its emoji (only box glyphs promised)."""

    def on_mount(self) -> None:
        self.query_one(SearchIcon).icon = ">"


def _prestart_worker_processes() -> None:
    """Start multiprocessing's helper processes before Textual owns the terminal.

    Core reads big folders on a forkserver pool. Started later, the helpers
    would get Textual's stderr stand-in (fileno -1: the pool fails to start)
    or the real terminal (a worker's warning would corrupt the screen). They
    are started here with stderr pointing at /dev/null.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    try:
        from multiprocessing import forkserver, resource_tracker

        multiprocessing.get_context("forkserver").set_forkserver_preload(
            # what a worker runs: the scanner, and search with the reader and fast path it imports lazily
            ["dicomtools.core.archive.scan", "dicomtools.core.search.folder", "dicomtools.core.archive.read",
             "dicomtools.core.search.fastpath"]
        )
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            resource_tracker.ensure_running()
            forkserver.ensure_running()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    except Exception as exc:  # only costs speed: core falls back to reading in-process
        log.debug("could not prestart worker processes: %s", exc)


def _with_demo_node(cfg: Config, path: str) -> tuple[Config, str, Any]:
    """Start the embedded demo peer on loopback and add it to a scratch copy of the preset."""
    import copy
    from pathlib import Path

    from dicomtools.core.config import NodeConfig
    from dicomtools.core.net.demo_node import DemoNode

    node = DemoNode.start(path, destinations={cfg.local.ae_title: ("127.0.0.1", cfg.local.scp_port)})
    demo = copy.deepcopy(cfg)
    demo.nodes["demo"] = NodeConfig(host="127.0.0.1", port=node.port, called_ae=node.ae_title,
                                    retrieve_method="get", connect_timeout=5.0)
    demo.path = Path(node.storage) / "demo-preset.toml"  # Settings saves here, not over the real preset
    return demo, "demo", node


def _error_line(text: str) -> None:
    """One line on stderr, over the "starting" line the launcher may have written."""
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{clear}{text}\n")


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False


def _open_cache(folder: str | None) -> Any:
    from dicomtools.core.archive.cache import IndexCache

    return IndexCache(folder)


def _resolve_config(config: Any) -> Config:
    if isinstance(config, Config):
        return config
    return load_config(config)


def run_app(
    path: str | None = None,
    config: Any = None,
    node: str | None = None,
    demo: bool = False,
    pattern: str | None = None,
    debug: bool = False,
    cache: str | None = None,
    no_cache: bool = False,
    **kwargs: Any,
) -> int:
    """Start the TUI and return its exit code.

    ``config`` is a preset path (or a loaded ``Config``; None = the default
    preset, defaults if missing). All logging goes to the Log screen while the
    app runs; errors before start are one line on stderr (exit 2).
    """
    try:
        cfg = _resolve_config(config)
        if node and node not in cfg.nodes:
            cfg.node(node)  # raises ConfigError naming the known nodes
    except ConfigError as exc:
        _error_line(f"dicomtools tui: {exc}")
        return 2
    if path is not None and not os.path.isdir(path):
        _error_line(f"dicomtools tui: not a folder: {path}")
        return 2
    handler = BufferHandler()
    level = logging.DEBUG if debug else logging.INFO
    if not no_cache:
        kwargs.setdefault("index_cache", functools.partial(_open_cache, cache))
    _prestart_worker_processes()
    demo_node = None
    with LogCapture(handler, level):
        try:
            if demo and path is not None:
                kwargs.setdefault("user_preset", cfg.path or default_config_path())
                cfg, node, demo_node = _with_demo_node(cfg, path)
                kwargs.setdefault("retrieve_dir", os.path.abspath(path.rstrip("/\\")) + "-retrieved")
            app = DicomToolsApp(path, cfg, node, demo=demo, pattern=pattern, log_handler=handler, **kwargs)
            result = app.run()
        finally:
            if demo_node is not None:
                demo_node.stop()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


__all__ = ["DicomToolsApp", "run_app"]
