#!/usr/bin/env python
"""Write SVG screenshots of every TUI screen into ``screenshots/`` by driving the real app.

Usage (from the repository root): ``python screenshots/make_screenshots.py [OUT_DIR]``

The app runs headless (``App.run_test``) on a freshly generated phantom
archive, with the fixed clock and the scenarios the snapshot tests use, so
the pictures change only when the UI does. ``retrieve-demo.svg`` talks to
the embedded demo node on loopback. Two pictures show work under way and so
vary a little run to run: ``browse-scanning.svg`` (the tree filling while a
4,000-file archive is read) and ``store-progress.svg`` (a store to dcmtk's
``storescp``, slowed to one instance a second, half done).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textual.widgets import DataTable, Input  # noqa: E402

from tests.tui.helpers import make_app, settle, wait_for  # noqa: E402
from tests.tui.scenarios import ARCHIVE, SCENARIOS, Scenario, cursor_to, demo_config, make_archive  # noqa: E402

WIDE = (120, 40)
SMALL = (80, 24)
# (file name, scenario, size)
SHOTS: list[tuple[str, str, tuple[int, int]]] = [
    ("browse.svg", "browse", WIDE),
    ("browse-80x24.svg", "browse", SMALL),
    ("browse-filter.svg", "browse-filter", WIDE),
    ("browse-filter-error.svg", "browse-filter-error", SMALL),
    ("browse-marked.svg", "browse-marked", WIDE),
    ("flat-list.svg", "flat-list", WIDE),
    ("flat-list-80x24.svg", "flat-list", SMALL),
    ("browse-unreadable.svg", "browse-unreadable", SMALL),
    ("empty-start.svg", "empty-start", SMALL),
    ("store.svg", "store", WIDE),
    ("retrieve.svg", "retrieve", WIDE),
    ("settings.svg", "settings", WIDE),
    ("log.svg", "log", WIDE),
    ("keys.svg", "keys", WIDE),
    ("browse-light.svg", "browse-light", WIDE),
    ("browse-ansi.svg", "browse-ansi", WIDE),
]


async def shoot(scenario: Scenario, size: tuple[int, int], out: Path, name: str) -> None:
    app = scenario.app()
    async with app.run_test(size=size) as pilot:
        await scenario.steps(pilot)
        app.save_screenshot(name, path=str(out))


async def shoot_demo(out: Path, name: str = "retrieve-demo.svg") -> None:
    """Retrieve a plan from the embedded demo node; the finished job in the progress pane."""
    from dicomtools.core.config import NodeConfig
    from dicomtools.core.net.demo_node import DemoNode

    node = DemoNode.start(ARCHIVE)
    try:
        cfg = demo_config()
        cfg.nodes = {"demo": NodeConfig(host="127.0.0.1", port=node.port, called_ae=node.ae_title,
                                        retrieve_method="get")}
        app: Any = make_app(ARCHIVE, cfg, node="demo", demo=True, retrieve_dir="retrieved")
        async with app.run_test(size=WIDE) as pilot:
            await settle(pilot)
            await pilot.press("f3")
            await settle(pilot)
            screen = app.screen
            screen.query_one("#r-name", Input).value = "PHANT*"
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda: len(screen.rows) == 2)
            table = screen.query_one("#found", DataTable)
            table.focus()
            table.move_cursor(row=1)  # PLAN_A of the first patient
            await pilot.press("space")
            table.move_cursor(row=4)  # QA_A
            await pilot.press("space", "ctrl+r")
            await wait_for(pilot, lambda: not app.jobs.running() and not screen.queue, timeout=120)
            await settle(pilot)
            app.save_screenshot(name, path=str(out))
    finally:
        node.stop()


async def shoot_scanning(work: Path, out: Path, name: str = "browse-scanning.svg") -> None:
    """A big archive: the tree fills while the scan runs (patients appear, the pane counts)."""
    from dicomtools.core.phantom import generate

    big = work / "big"
    if not big.exists():
        generate(big, patients=30, seed=1, ct_slices=120, broken=False)
    app: Any = make_app("big", demo_config(), node="aria")
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: len(app.browse.forest) >= 4 and app.browse.scan_job is not None,
                       timeout=120, step=0.02)
        app.save_screenshot(name, path=str(out))
        app.jobs.cancel()
        await settle(pilot)


async def shoot_store_progress(work: Path, out: Path, name: str = "store-progress.svg") -> None:
    """A store half way: one job's bar, count and current file in the progress pane."""
    from dicomtools.core.config import NodeConfig
    from tests.net.peers import StoreSCP

    peer = StoreSCP.start(work / "scp", aet="STORESCP", extra=["--sleep-during", "1"])
    try:
        cfg = demo_config()
        cfg.nodes = {"storescp": NodeConfig(host="127.0.0.1", port=peer.port, called_ae="STORESCP",
                                            machines=["TB1", "HALCYON", "GANTRY1"])}
        cfg.machines.defaults = {"RDS": "HALCYON"}
        app: Any = make_app(ARCHIVE, cfg, node="storescp")
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await cursor_to(pilot, "PLAN_A")
            await pilot.press("space", "t")
            await settle(pilot)
            await pilot.press("ctrl+s")
            store = app.screen
            await wait_for(pilot, lambda: store.job is not None and 3 <= _done(store) <= 8, timeout=60)
            app.save_screenshot(name, path=str(out))
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: store.job is None, timeout=60)
    finally:
        peer.stop()


def _done(store: Any) -> int:
    from dicomtools.tui.widgets.progress_pane import ProgressPane

    views = list(store.query_one(ProgressPane).jobs.values())
    return views[-1].done if views else 0


async def main(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="dicomtools-shots-") as work:
        make_archive(Path(work))
        here = os.getcwd()
        os.chdir(work)  # the archive is opened by the relative name "archive"
        try:
            by_name = {s.name: s for s in SCENARIOS}
            for name, scenario, size in SHOTS:
                await shoot(by_name[scenario], size, out, name)
                written.append(name)
            await shoot_demo(out)
            written.append("retrieve-demo.svg")
            await shoot_scanning(Path(work), out)
            written.append("browse-scanning.svg")
            await shoot_store_progress(Path(work), out)
            written.append("store-progress.svg")
        finally:
            os.chdir(here)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "screenshots"
    for name in asyncio.run(main(target.resolve())):
        print(target / name)
