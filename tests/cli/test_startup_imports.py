"""Start-up hygiene: ``--version`` and every ``-h`` answer without importing the heavy libraries,
and the run paths of ``show`` and a warm ``search`` import no standard-library module they do not use.

Start-up time is what a user feels on every call; pydicom, pynetdicom and Textual
cost hundreds of milliseconds to import, a needless standard-library module a few.
Each case runs a fresh interpreter and asserts on ``sys.modules`` (an import
assertion, not a timing one). Positive controls prove each probe sees an import
when one happens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtools.core.cli.main import COMMANDS  # every registered command, the new ones too

HEAVY = ("pydicom", "pynetdicom", "textual", "rich", "numpy")

PROBE = """
import json, sys
before = set(sys.modules)  # what the interpreter and the environment's .pth hooks loaded already
from dicomtools.tui.entry import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
mods = sorted(sys.modules)
sys.stdout.flush()
ours = sorted(set(mods) - before)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "modules": mods, "ours": ours}) + "\\n")
"""



def run_probe(args: list[str], tmp_path: Path) -> tuple[dict[str, object], str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                          timeout=120)
    line = [x for x in done.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr
    return json.loads(line[-1][len("PROBE "):]), done.stdout


def heavy_in(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})


def test_version_builds_no_command_parser_and_imports_nothing_heavy(tmp_path: Path) -> None:
    result, out = run_probe(["--version"], tmp_path)
    assert result["code"] == 0
    assert out.startswith("dicomtools ")
    assert heavy_in(result["modules"]) == []
    mods = result["modules"]
    assert isinstance(mods, list)
    built = [m for m in mods if m.startswith("dicomtools.core.cli.") and m.split(".")[-1] in COMMANDS]
    assert built == []


def test_top_level_help_lists_every_command_without_heavy_imports(tmp_path: Path) -> None:
    result, out = run_probe(["-h"], tmp_path)
    assert result["code"] == 0
    for name in COMMANDS:
        assert name in out
    assert heavy_in(result["modules"]) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_imports_nothing_heavy(command: str, tmp_path: Path) -> None:
    result, out = run_probe([command, "-h"], tmp_path)
    assert result["code"] == 0
    assert f"dicomtools {command}" in out  # the usage line: the parser was really built
    assert heavy_in(result["modules"]) == []


# Standard-library modules a help screen has no use for; in a clean venv each costs 2-4 ms of a
# ~9 ms interpreter start (logging with traceback; hashlib loads OpenSSL; sqlite3; dataclasses
# with inspect). pathlib is not listed: the editable install's own finder imports it first.
NOT_FOR_HELP = ("logging", "hashlib", "sqlite3", "dataclasses", "tomllib", "ssl")


@pytest.mark.parametrize("args", [["--version"], ["-h"]] + [[c, "-h"] for c in COMMANDS],
                         ids=lambda a: " ".join(a))
def test_help_imports_no_standard_library_module_it_does_not_use(args: list[str], tmp_path: Path) -> None:
    result, _ = run_probe(args, tmp_path)
    assert result["code"] == 0
    ours = result["ours"]
    assert isinstance(ours, list)
    assert [m for m in ours if m.split(".")[0] in NOT_FOR_HELP] == []


def test_the_probe_sees_a_standard_library_import_of_ours(tmp_path: Path) -> None:
    # positive control for the test above: anonymize sets logging up before pydicom runs, and a
    # search opens the index cache (SQLite), both through our code
    result, _ = run_probe(["anonymize", "--listProfiles"], tmp_path)
    assert isinstance(result["ours"], list) and "logging" in result["ours"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result, _ = run_probe(["search", "--path", str(empty), "--tag", "(0010,0020)=?"], tmp_path)
    assert isinstance(result["ours"], list) and "sqlite3" in result["ours"]


def test_bad_arguments_are_refused_before_heavy_imports(tmp_path: Path) -> None:
    # argparse rejects the line before any run function (and its imports) is reached
    result, _ = run_probe(["store", "--path"], tmp_path)
    assert result["code"] == 2
    assert heavy_in(result["modules"]) == []


def test_show_on_an_empty_folder_imports_nothing_heavy(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result, out = run_probe(["show", "--path", str(empty), "--format", "json"], tmp_path)
    assert result["code"] == 0
    assert json.loads(out)["stats"]["instances"] == 0
    assert heavy_in(result["modules"]) == []


def test_a_warm_show_reads_no_file_and_imports_no_reader(tmp_path: Path) -> None:
    """Answered by the index cache's folder snapshots (marshal), a warm show needs neither the
    per-file reader (fast parser, sequence rules, pydicom fallback) nor pickle; the cold run that
    filled the cache imported both (control)."""
    from pydicom.data import get_testdata_file

    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("CT_small.dcm", "rtplan.dcm", "MR_small.dcm"):
        source = get_testdata_file(name)
        assert source is not None
        (folder / name).write_bytes(Path(str(source)).read_bytes())
    args = ["show", "--path", str(folder), "--format", "json", "--workers", "1"]
    cold, cold_out = run_probe(args, tmp_path)
    warm, warm_out = run_probe(args, tmp_path)  # same XDG_CACHE_HOME: the cache the cold run filled
    assert cold["code"] == warm["code"] == 0
    reader = ("dicomtools.core.archive.summarize", "dicomtools.core.archive.fastread", "pickle")
    assert isinstance(cold["modules"], list) and isinstance(warm["modules"], list)
    assert [m for m in reader if m in cold["modules"]] == list(reader)
    assert [m for m in reader if m in warm["modules"]] == []
    strip = lambda out: {k: v for k, v in json.loads(out).items() if k != "stats"}  # noqa: E731
    assert strip(warm_out) == strip(cold_out) and "rtplan" in warm_out


def test_probe_sees_the_network_stack_once_a_command_runs(tmp_path: Path) -> None:
    """Positive control: echo to a closed local port imports pynetdicom in its run function."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: the echo is refused
    result, _ = run_probe(["echo", "--hostName", "127.0.0.1", "--hostPort", str(port), "--calledAet", "NOBODY"],
                          tmp_path)
    assert result["code"] != 0
    assert "pynetdicom" in heavy_in(result["modules"])


# Run paths, in a bare interpreter: no .pth hook (the editable install's finder) imports a module
# before our code could, so a module our code imports needlessly cannot hide behind one.
SHOW_PATH = (
    "dicomtools.tui.entry", "dicomtools.core.cli.main", "dicomtools.core.cli.show",
    "dicomtools.core.archive.scan", "dicomtools.core.archive.summarize", "dicomtools.core.archive.forkread",
    "dicomtools.core.tree", "dicomtools.core.render.forest", "dicomtools.core.progress",
    "dicomtools.core.render.jsontext",
)
# a warm show or search opens the index cache and reads its folder snapshots
WARM_PATH = (
    *SHOW_PATH, "dicomtools.core.cli.search", "dicomtools.core.search.folder", "dicomtools.core.search.fastpath",
    "dicomtools.core.archive.cache", "dicomtools.core.archive.snapshot",
)
# standard-library modules these paths have no use for, with what each cost a clean venv's start
# (~10 ms): typing ~1.4 ms (+ ~0.2 ms a typing.NamedTuple class), locale via argparse's gettext
# look-up ~1.5 ms, dataclasses with inspect ~6 ms, logging ~4 ms, pathlib ~2.5 ms, shutil ~2 ms
NOT_ON_THE_PATH = ("typing", "locale", "dataclasses", "logging", "pathlib", "shutil")


def _bare_interpreter_probe(tmp_path: Path, modules: tuple[str, ...], argv: list[str]) -> list[str]:
    """Which of :data:`NOT_ON_THE_PATH` a bare interpreter (``-S``: no .pth hook imports them
    first) has after importing ``modules`` and parsing ``argv`` as the CLI does."""
    root = Path(__file__).resolve().parents[2]
    pkg = tmp_path / "dicomtools"
    pkg.mkdir()
    (pkg / "core").symlink_to(root / "core")
    (pkg / "tui").symlink_to(root / "tui")
    probe = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "from dicomtools.core.cli.main import build_parser\n"
        f"build_parser(None, {argv[0]!r}).parse_args({argv!r})\n"
        f"print(','.join(m for m in {NOT_ON_THE_PATH!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_the_show_path_imports_no_module_it_does_not_use(tmp_path: Path) -> None:
    """typing, argparse's gettext look-up (locale) and the rest were ~10 % of a 1,000-file show."""
    assert _bare_interpreter_probe(tmp_path, SHOW_PATH, ["show", "--path", ".", "--format", "json"]) == []


def test_the_warm_search_path_imports_no_module_it_does_not_use(tmp_path: Path) -> None:
    """dataclasses, logging, typing, pathlib and shutil were ~20 % of a warm 5,000-file search."""
    argv = ["search", "--path", ".", "--tag", "(0010,0020)=?"]
    assert _bare_interpreter_probe(tmp_path, WARM_PATH, argv) == []


def test_the_bare_interpreter_probe_sees_typing(tmp_path: Path) -> None:
    """Positive control: a module that imports typing at run time (the store command's) is seen."""
    argv = ["show", "--path", "."]
    assert "typing" in _bare_interpreter_probe(tmp_path, (*SHOW_PATH, "dicomtools.core.net.store"), argv)
