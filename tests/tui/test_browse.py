"""Browse screen: scan a real phantom archive, expand, details, filter, marks, export, polling."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable

from dicomtools.core.archive.cache import IndexCache
from dicomtools.core.phantom import generate
from dicomtools.tui.screens.browse import BrowseScreen
from dicomtools.tui.screens.dialogs import ConfirmDialog, KeysDialog
from dicomtools.tui.screens.flat_list import FlatListDialog
from dicomtools.tui.widgets.details import ElementTable
from dicomtools.tui.widgets.filter_bar import FilterBar
from dicomtools.tui.widgets.ref_tree import RefTree
from tests.tui.helpers import make_app, screen_text, settle, wait_for

pytestmark = pytest.mark.anyio


def tree_of(app) -> RefTree:
    return app.screen.query_one(RefTree)


def visible_labels(tree: RefTree) -> list[str]:
    return [tree.get_node_at_line(i).label.plain for i in range(tree.last_line + 1)]


async def goto_label(pilot, text: str) -> None:
    """Move the tree cursor to the first visible line containing ``text``."""
    tree = tree_of(pilot.app)
    for i, label in enumerate(visible_labels(tree)):
        if text in label:
            tree.cursor_line = i
            await pilot.pause()
            return
    raise AssertionError(f"{text!r} not in tree: {visible_labels(tree)}")


async def test_opens_phantom_archive_and_shows_patients(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen)
        labels = visible_labels(tree_of(app))
        assert len(labels) == 3  # two patients, then the files the scan could not use
        assert "PHANTOM-001" in labels[0] and "4 plans" in labels[0]
        assert "PHANTOM-002" in labels[1]
        assert labels[2] == "Unreadable files (5)"
        text = screen_text(app)
        assert "2 patients, 8 plans" in text
        assert "scan [done]" in text


async def test_expand_patient_and_plan_lazily(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tree = tree_of(app)
        first = tree.get_node_at_line(0)
        assert len(first.children) == 0  # lazy: nothing below a patient until it is opened
        await pilot.press("enter")
        await pilot.pause()
        labels = visible_labels(tree)
        assert any("RT-Plan  PLAN_A  APPROVED  TrueBeam1" in s for s in labels)
        assert any("RT-Ion-Plan  PROTON_1" in s for s in labels)
        assert any("Unconnected (6)" in s for s in labels)
        await goto_label(pilot, "PLAN_A")
        await pilot.press("right")
        await pilot.pause()
        labels = visible_labels(tree)
        assert any("RT-Struct  SS_CT" in s for s in labels)
        assert any(s.strip().startswith("+ Beam") or "Beam  G000 (1)" in s for s in labels)
        assert any("Registrations" in s for s in labels)
        # left collapses again
        await goto_label(pilot, "PLAN_A")
        await pilot.press("left")
        await pilot.pause()
        assert not any("RT-Struct  SS_CT" in s for s in visible_labels(tree))


async def test_details_pane_reads_elements_of_the_plan(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await settle(pilot)
        table = app.screen.query_one(ElementTable)
        keywords = [r.keyword for r in table.rows_all]
        assert "RTPlanLabel" in keywords
        label_row = table.rows_all[keywords.index("RTPlanLabel")]
        assert label_row.value == "PLAN_A" and label_row.tag == "(300A,0002)"
        text = screen_text(app)
        assert "RT-Plan  PLAN_A" in text and "RP.PLAN_A.dcm" in text
        # sequences start folded; Enter on the Beam Sequence unfolds its items
        shown_before = len(table.shown)
        beam_seq = keywords.index("BeamSequence")
        table.focus()
        table.move_cursor(row=table.shown.index(beam_seq))
        await pilot.press("enter")
        await pilot.pause()
        assert len(table.shown) > shown_before
        assert any(table.rows_all[i].keyword == "Item 1" for i in table.shown)
        # the search box keeps only matching rows (and their parent rows)
        search = app.screen.query_one("#element-search")
        search.focus()
        await pilot.press(*"TreatmentMachineName")
        await pilot.pause()
        shown = [table.rows_all[i] for i in table.shown]
        assert any(r.keyword == "TreatmentMachineName" and r.value == "TrueBeam1" for r in shown)
        assert all(r.keyword in ("TreatmentMachineName", "BeamSequence") or r.keyword.startswith("Item") for r in shown)
        await pilot.press("escape")
        await pilot.pause()
        assert search.value == ""


async def test_filter_narrows_tree_and_lists_results(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.press(*"RTPlanLabel=QA*")
        await pilot.press("enter")
        await settle(pilot)
        tree = tree_of(app)
        # both patients have a QA plan; they open by themselves and show only QA_A
        labels = visible_labels(tree)
        assert [s.split()[2] for s in labels if "PHANTOM-" in s] == ["PHANTOM-001", "PHANTOM-002"]
        plans = [s for s in labels if "RT-Plan" in s or "RT-Ion-Plan" in s]
        assert len(plans) == 2 and all("QA_A" in s for s in plans)
        assert "filter: 2 of 2 patients, 2 plans" in screen_text(app)
        results = app.screen.query_one("#results", DataTable)
        assert results.row_count == 2
        assert "2 matched of " in str(app.screen.query_one("#results-stats").render())
        # Esc in the filter clears it and brings every plan back
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert app.screen.query_one(FilterBar).input.value == ""
        plans = [s for s in visible_labels(tree) if "Plan" in s]
        assert len(plans) == 8  # both patients stay open, now with every plan
        # nothing of the old result is left on screen
        assert results.row_count == 0
        text = screen_text(app)
        assert "filter [done]" not in text and "filter:" not in text and "2 matched" not in text


async def test_filter_shows_errors_inline_while_typing(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"(300A,00B2")
        await pilot.pause()
        bar = app.screen.query_one(FilterBar)
        assert bar.error
        assert "! " + bar.error in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.search_result is None  # nothing was searched
        await pilot.press(*")=?")
        await pilot.pause()
        assert bar.error == ""


async def test_typing_q_in_the_filter_does_not_quit(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("slash", "q", "question_mark")
        await pilot.pause()
        assert app.is_running
        assert app.screen.query_one(FilterBar).input.value == "q?"


async def test_mark_two_plans_flat_list_and_export(phantom_root: Path, tmp_path: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await goto_label(pilot, "PLAN_A")
        await pilot.press("space")
        await goto_label(pilot, "PLAN_B")
        await pilot.press("space")
        await pilot.pause()
        screen = app.screen
        assert len(screen.marks) == 2
        assert sum("[*]" in s for s in visible_labels(tree_of(app))) == 2
        marked = screen.query_one("#marked", DataTable)
        assert marked.row_count == 2
        # a beam cannot be marked
        await goto_label(pilot, "PLAN_A")
        await pilot.press("right")
        await goto_label(pilot, "Beam  G000")
        await pilot.press("space")
        await pilot.pause()
        assert len(screen.marks) == 2
        # flat list of the marks
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FlatListDialog)
        body = app.screen.text()  # what s saves: the CLI's flat text
        assert "/ RT-Plan: PLAN_A, " in body and "/ RT-Plan: PLAN_B, " in body and "QA_A" not in body
        assert "PHANTOM-001  RT-Plan: PLAN_A" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        # export: every file of both plans, paths kept
        pairs = screen.marked_pairs()
        expected = {i.path for _, plan in pairs for i in plan.subtree_instances()}
        dest = tmp_path / "export"
        await pilot.press("e")
        await pilot.pause()
        await pilot.press(*str(dest), "enter")
        await settle(pilot)
        await wait_for(pilot, lambda: not app.jobs.running())
        written = {p for p in dest.rglob("*") if p.is_file()}
        assert len(written) == len(expected)
        for src in expected:
            rel = Path(src).relative_to(phantom_root)
            assert (dest / rel).read_bytes() == Path(src).read_bytes()
        assert f"{len(expected)} copied" in screen_text(app)


async def test_folder_changes_show_up_without_restart(phantom_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(phantom_root / "PHANTOM-001", root / "PHANTOM-001")
    app = make_app(root, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert len(visible_labels(tree_of(app))) == 1
        await pilot.press("enter")  # expanded state must survive the rescan
        await pilot.pause()
        shutil.copytree(phantom_root / "PHANTOM-002", root / "PHANTOM-002")
        await wait_for(pilot, lambda: len(app.browse.forest) == 2)
        await settle(pilot)
        labels = visible_labels(tree_of(app))
        assert any("PHANTOM-002" in s for s in labels)
        assert any("PLAN_A" in s for s in labels)  # patient 1 still open
        shutil.rmtree(root / "PHANTOM-002")
        await wait_for(pilot, lambda: len(app.browse.forest) == 1)


class GatedCache(IndexCache):
    """A real index cache (in a temp folder) whose look-up waits at a gate the test opens:
    a scan that stays running until the test says so."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def lookup(self, paths):  # type: ignore[no-untyped-def]
        self.entered.set()
        self.gate.wait(30)
        return super().lookup(paths)


async def test_cancel_a_running_scan(phantom_root: Path, tmp_path: Path) -> None:
    caches: list[GatedCache] = []

    def factory() -> GatedCache:
        caches.append(GatedCache(tmp_path / "cache"))
        return caches[-1]

    app = make_app(phantom_root, index_cache=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: bool(caches) and caches[0].entered.is_set())
        assert "scan ─" in screen_text(app)  # running: an empty bar
        await pilot.press("ctrl+g")
        caches[0].gate.set()
        await settle(pilot)
        assert "scan [cancelled]" in screen_text(app)
        assert not app.jobs.running()
        assert app.browse.forest == []  # no file was read after the cancel


async def test_quit_asks_when_a_job_runs(phantom_root: Path, tmp_path: Path) -> None:
    cache = GatedCache(tmp_path / "cache")
    app = make_app(phantom_root, index_cache=lambda: cache)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, cache.entered.is_set)
        job = app.jobs.running()[0]
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "1 job(s) running: scan" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, BrowseScreen)
        assert not job.cancelled
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code == 0
        assert job.cancelled
        cache.gate.set()


async def test_q_quits_when_idle(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0


async def test_keys_dialog_and_command_palette_come_from_the_action_table(phantom_root: Path) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, KeysDialog)
        text = screen_text(app)
        assert "space" in text and "Mark" in text and "Export" in text and "^q" in text
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysDialog)
        await pilot.press("escape")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export (e)" in titles and "Retrieve (F3)" in titles and "Quit (^q)" in titles
        # running a palette command runs the screen's action
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Flat list")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert "nothing marked" in "".join(str(n.message) for n in app._notifications)


@pytest.mark.parametrize("size", [(80, 24)])
async def test_usable_at_80x24(phantom_root: Path, size: tuple[int, int]) -> None:
    app = make_app(phantom_root)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = screen_text(app)
        lines = text.splitlines()
        assert len(lines) == 24
        assert "F2 Browse" in lines[0] and "F6 Log" in lines[0]
        assert "q Quit" in lines[-1]
        assert "PHANTOM-001" in text


async def test_open_another_folder(phantom_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate(other, patients=1, seed=5, broken=False)
    app = make_app(phantom_root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await pilot.pause()
        inp = app.screen.query_one("#field-path")
        inp.value = str(other)
        await pilot.press("enter")
        await settle(pilot)
        assert app.browse.root == str(other)
        assert len(visible_labels(tree_of(app))) == 1
