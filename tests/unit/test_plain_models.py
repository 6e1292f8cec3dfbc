"""The scan and tree records are plain classes (start-up speed): they must behave as the dataclasses did."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtools.core.archive.model import (
    SUMMARY_FIELDS,
    BeamInfo,
    InstanceSummary,
    ScanResult,
    UnreadableFile,
)
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.tree.model import (
    DoseInfo,
    Node,
    NodeKind,
    PatientTree,
    RtImageInfo,
    SeriesInfo,
)


def test_summary_fields_are_the_constructor_the_slots_and_the_values() -> None:
    params = list(inspect.signature(InstanceSummary).parameters)
    assert params == list(SUMMARY_FIELDS) == list(InstanceSummary.__slots__)
    s = InstanceSummary("p", "1.2", "1.3", patient_id="X", beams=(BeamInfo(1, "A"),))
    assert s.values() == tuple(getattr(s, f) for f in SUMMARY_FIELDS)
    assert InstanceSummary(*s.values()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert "patient_id='X'" in repr(s)
    assert not hasattr(s, "__dict__")  # slotted: a 100,000-file scan holds 100,000 of them


def test_summary_equality_is_field_by_field_and_unhashable() -> None:
    a = InstanceSummary("p", "1.2", "1.3")
    b = InstanceSummary("p", "1.2", "1.3")
    assert a == b
    b.roi_count = 3
    assert a != b
    assert a != ("p", "1.2", "1.3")
    with pytest.raises(TypeError):
        hash(a)


def test_defaults_are_not_shared_between_results() -> None:
    one, two = ScanResult("a"), ScanResult("b")
    one.instances.append(InstanceSummary("p", "1", "2"))
    one.unreadable.append(UnreadableFile("q", "not DICOM", ReasonKind.NOT_DICOM))
    assert two.instances == [] and two.unreadable == []
    n1, n2 = Node(NodeKind.IMAGE, "x"), Node("Image", "y")
    n1.children.append(n2)
    assert n2.children == [] and n2.kind is NodeKind.IMAGE
    assert PatientTree("1", "A").plans is not PatientTree("1", "A").plans


def test_nodes_with_equal_values_but_other_info_kinds_differ() -> None:
    """Two NamedTuple records of one text field compare equal as tuples; the nodes must not."""
    assert Node(NodeKind.DOSE, "x", info=DoseInfo("A")) != Node(NodeKind.DOSE, "x", info=RtImageInfo("A"))
    assert Node(NodeKind.DOSE, "x", info=DoseInfo("A")) == Node(NodeKind.DOSE, "x", info=DoseInfo("A"))


def test_series_info_is_immutable() -> None:
    info = SeriesInfo("1.2", "CT", 3, "1.9")
    with pytest.raises(AttributeError):
        info.count = 4  # type: ignore[misc]
    assert info.with_count(4) == SeriesInfo("1.2", "CT", 4, "1.9")
    assert info.count == 3 and hash(info) == hash(SeriesInfo("1.2", "CT", 3, "1.9"))


def test_the_show_path_creates_no_dataclass() -> None:
    """Creating a dataclass costs ~0.7 ms and importing ``dataclasses`` ~4 ms: none on ``show``'s path."""
    probe = (
        "import sys\n"
        "import dicomtools.core.cli.main, dicomtools.core.cli.show\n"
        "import dicomtools.core.archive.scan, dicomtools.core.archive.forkread\n"
        "import dicomtools.core.tree, dicomtools.core.render.forest, dicomtools.core.progress\n"
        "print('dataclasses' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


SHOW_PATH = (
    "dicomtools.tui.entry", "dicomtools.core.cli.main", "dicomtools.core.cli.show",
    "dicomtools.core.archive.scan", "dicomtools.core.archive.forkread", "dicomtools.core.tree",
    "dicomtools.core.render.forest", "dicomtools.core.progress", "dicomtools.core.render.jsontext",
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
