"""``dicomtools tui`` argument handling, core import hygiene, and ``core.elements`` rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dicomtools.core.archive.elements import ElementRow, dataset_rows, matching_rows, visible_rows
from dicomtools.core.cli.main import main


def test_core_and_the_tui_command_never_import_textual() -> None:
    code = (
        "import sys; import dicomtools.core.cli.main as m; m.build_parser(); "
        "import dicomtools.core.cli.tui, dicomtools.core.archive.elements; "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_tui_command_needs_a_terminal_and_checks_the_folder(
    phantom_root: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    calls: list[dict] = []

    def launcher(**kwargs: object) -> int:
        calls.append(kwargs)
        return 0

    assert main(["tui", "--path", str(tmp_path / "missing")], tui_launcher=launcher) == 2
    assert "not a folder" in capsys.readouterr().err
    # pytest's stdin is not a terminal: one line, exit 2, the launcher is never called
    assert main(["tui", "--path", str(phantom_root), "--node", "aria"], tui_launcher=launcher) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a terminal" in err
    assert calls == []
    assert main(["tui"], tui_launcher=None) == 1
    assert "not part of this installation" in capsys.readouterr().err


def test_tui_command_accepts_both_spellings(phantom_root: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[dict] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    rc = main(["tui", "--path", str(phantom_root), "--search-pattern", "*.dcm", "--config", "x.toml",
               "--node", "aria", "--noCache"], tui_launcher=lambda **kw: calls.append(kw) or 0)
    assert rc == 0
    assert calls == [{"path": str(phantom_root), "config": "x.toml", "node": "aria", "pattern": "*.dcm",
                      "cache": None, "no_cache": True, "debug": False}]


def test_dataset_rows_of_a_plan_with_sequences(phantom_root: Path) -> None:
    plan = next(phantom_root.rglob("RP.PLAN_A.dcm"))
    rows = dataset_rows(str(plan))
    keywords = [r.keyword for r in rows]
    assert keywords[0] == "FileMetaInformationGroupLength"
    assert "PixelData" not in keywords
    beams = keywords.index("BeamSequence")
    assert rows[beams].vr == "SQ" and rows[beams].value == "3 items"
    assert rows[beams + 1] == ElementRow(rows[beams].depth + 1, "(FFFE,E000)", "Item 1", "", "")
    machine = next(r for r in rows if r.keyword == "TreatmentMachineName")
    assert machine.value == "TrueBeam1" and machine.depth == rows[beams].depth + 2
    without_meta = dataset_rows(str(plan), include_meta=False)
    assert not any(r.tag.startswith("(0002,") for r in without_meta)


def test_folding_and_searching_rows() -> None:
    rows = [
        ElementRow(0, "(0008,0060)", "Modality", "CS", "RTPLAN"),
        ElementRow(0, "(300A,00B0)", "BeamSequence", "SQ", "1 item"),
        ElementRow(1, "(FFFE,E000)", "Item 1", "", ""),
        ElementRow(2, "(300A,00B2)", "TreatmentMachineName", "SH", "TB1"),
        ElementRow(0, "(300A,0002)", "RTPlanLabel", "SH", "PLAN_A"),
    ]
    assert visible_rows(rows, {1}) == [0, 1, 4]
    assert visible_rows(rows, {2}) == [0, 1, 2, 4]
    assert visible_rows(rows, set()) == [0, 1, 2, 3, 4]
    assert matching_rows(rows, "tb1") == [1, 2, 3]  # the hit with its sequence and item
    assert matching_rows(rows, "") == [0, 1, 2, 3, 4]
    assert matching_rows(rows, "nothing") == []
