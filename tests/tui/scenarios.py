"""Deterministic app states for snapshot tests and the screenshot script.

Each scenario builds an app on a phantom archive given by a *relative* path
(the caller chdirs next to it) with a fixed clock and no polling, then drives
it with real key presses. Nothing in what is drawn depends on the machine,
the date or the temp folder.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from dicomtools.core.config import Config, LocalConfig, MachinesConfig, NodeConfig
from dicomtools.tui.app import DicomToolsApp
from dicomtools.tui.logbridge import BufferHandler
from tests.tui.helpers import make_app, settle

ARCHIVE = "archive"  # relative to the working directory


def demo_config() -> Config:
    cfg = Config(local=LocalConfig(ae_title="PHYSICS1", scp_port=11112),
                 machines=MachinesConfig(mapping={"TrueBeam1": "TB1"}, defaults={}))
    cfg.nodes["aria"] = NodeConfig(host="aria-dicom.example.org", port=57347, called_ae="VMSDBD",
                                   machines=["TB1", "HALCYON", "GANTRY1"])
    cfg.nodes["orthanc"] = NodeConfig(host="127.0.0.1", port=4242, called_ae="ORTHANC", retrieve_method="get")
    cfg.path = Path("site.toml")
    return cfg


def fixed_log() -> BufferHandler:
    handler = BufferHandler()
    records = [
        (logging.INFO, "dicomtools.tui.app", "dicomtools TUI started (folder: archive, node: aria)"),
        (logging.INFO, "dicomtools.core.archive.scan", "scan of archive: 108 files, 103 DICOM, 5 unreadable"),
        (logging.WARNING, "dicomtools.core.archive.scan", "archive/broken/empty.dcm: empty file"),
        (logging.INFO, "pynetdicom.assoc", "Association Accepted"),
        (logging.WARNING, "dicomtools.core.net.store", "peer refused RT Dose: 0xA700 out of resources"),
        (logging.ERROR, "dicomtools.core.net.retrieve", "C-MOVE failed: 0xA801 move destination unknown"),
        (logging.DEBUG, "dicomtools.core.net.ul", "P-DATA-TF 16384 bytes"),
    ]
    for level, name, msg in records:
        handler.handle(logging.LogRecord(name, level, __file__, 0, msg, None, None))
    return handler


async def expand_first_patient(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("enter")
    await pilot.pause()


async def cursor_to(pilot: Pilot[Any], text: str) -> None:
    from dicomtools.tui.widgets.ref_tree import RefTree

    tree = pilot.app.screen.query_one(RefTree)
    for i in range(tree.last_line + 1):
        node = tree.get_node_at_line(i)
        if node is not None and text in node.label.plain:
            tree.cursor_line = i
            await pilot.pause()
            return
    raise AssertionError(f"{text!r} not in the tree")


async def browse(pilot: Pilot[Any]) -> None:
    await expand_first_patient(pilot)
    await cursor_to(pilot, "PLAN_A")
    await pilot.press("right")
    await settle(pilot)


async def browse_filter(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("slash", *"RTPlanLabel=QA*; (300A,00B0)/(300A,00B2)=?", "enter")
    await settle(pilot)
    await pilot.press("r")
    await pilot.press("enter")
    await settle(pilot)


async def browse_filter_error(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("slash", *"(300A,00B0)/(300A,00B2")
    await settle(pilot)


async def browse_unreadable(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await cursor_to(pilot, "Unreadable files")
    await pilot.press("enter")
    await cursor_to(pilot, "empty.dcm")
    await settle(pilot)


async def empty_start(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def browse_marked(pilot: Pilot[Any]) -> None:
    await expand_first_patient(pilot)
    await cursor_to(pilot, "PLAN_A")
    await pilot.press("space")
    await cursor_to(pilot, "PLAN_B")
    await pilot.press("space", "m")
    await settle(pilot)


async def flat_list(pilot: Pilot[Any]) -> None:
    await browse_marked(pilot)
    await pilot.press("f")
    await settle(pilot)


async def store(pilot: Pilot[Any]) -> None:
    await browse_marked(pilot)
    await pilot.press("t")
    await settle(pilot)


async def retrieve(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("f3")
    await settle(pilot)


async def settings(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("f5")
    await settle(pilot)


async def log_screen(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("f6")
    await settle(pilot)


async def keys(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("f1")
    await settle(pilot)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: Callable[[Pilot[Any]], Awaitable[None]]
    theme: str = ""
    path: str | None = ARCHIVE

    def app(self) -> DicomToolsApp:
        app = make_app(self.path, demo_config(), node="aria", log_handler=fixed_log(), retrieve_dir="retrieved")
        if self.theme:
            app.theme = self.theme
        return app


SCENARIOS = [
    Scenario("browse", browse),
    Scenario("browse-filter", browse_filter),
    Scenario("browse-filter-error", browse_filter_error),
    Scenario("browse-marked", browse_marked),
    Scenario("browse-unreadable", browse_unreadable),
    Scenario("empty-start", empty_start, path=None),
    Scenario("flat-list", flat_list),
    Scenario("store", store),
    Scenario("retrieve", retrieve),
    Scenario("settings", settings),
    Scenario("log", log_screen),
    Scenario("keys", keys),
    Scenario("browse-light", browse, theme="textual-light"),
    Scenario("browse-ansi", browse, theme="ansi-dark"),
]


def by_name(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def make_archive(folder: Path) -> Path:
    """The phantom archive the scenarios open, as ``folder/archive``."""
    from dicomtools.core.config import save_config
    from dicomtools.core.phantom import generate

    root = folder / ARCHIVE
    if not root.exists():
        generate(root, patients=2, seed=0)
    preset = folder / "site.toml"  # the scenarios' preset exists, as a user's would
    if not preset.exists():
        save_config(demo_config(), preset)
    return root


