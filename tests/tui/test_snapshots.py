"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Stable by construction: fixed phantom (seed 0) opened by a relative path,
fixed clock, no folder polling, no cursor blink, workers awaited before the
picture. Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.scenarios import by_name, make_archive

BOTH = [(80, 24), (120, 40)]
MAIN = ["browse", "browse-filter", "browse-marked", "store", "retrieve", "settings", "log"]
SMALL_ONLY = ["browse-filter-error", "flat-list", "keys", "browse-light", "browse-ansi", "browse-unreadable",
              "empty-start"]

CASES = [(name, size) for name in MAIN for size in BOTH] + [(name, (80, 24)) for name in SMALL_ONLY]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("snap")
    make_archive(folder)
    return folder


@pytest.mark.parametrize(("name", "size"), CASES, ids=[f"{n}-{w}x{h}" for n, (w, h) in CASES])
def test_screen_snapshot(name: str, size: tuple[int, int], workdir: Path, snap_compare, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(workdir)
    scenario = by_name(name)
    assert snap_compare(scenario.app(), run_before=scenario.steps, terminal_size=size)
