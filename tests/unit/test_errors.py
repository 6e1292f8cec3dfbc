"""One error model: every core exception has one root, and the CLI maps them to exit statuses in one place."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import dicomtools.core as core
from dicomtools.core.anonymize.profile import ProfileError
from dicomtools.core.anonymize.run import AnonymizeError
from dicomtools.core.cli import main as cli_main
from dicomtools.core.cli import show as cli_show
from dicomtools.core.cli.common import RunError, UsageError
from dicomtools.core.cli.status import failure
from dicomtools.core.config import ConfigError
from dicomtools.core.errors import DicomToolsError, ExitStatus
from dicomtools.core.net.assoc import NetError
from dicomtools.core.search.expr import ExprError, parse


def _core_exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(core.__path__, "dicomtools.core."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, BaseException):
                found.append(obj)
    return found


def test_every_core_exception_derives_from_one_base() -> None:
    classes = _core_exception_classes()
    names = {c.__name__ for c in classes}
    # the ones the issue counted, so the walk above cannot silently find nothing
    assert {"ConfigError", "ExprError", "NetError", "ProfileError", "AnonymizeError", "UidMapError",
            "UsageError", "RunError", "IodDataError", "NeedsFallback", "Truncated"} <= names
    strays = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, DicomToolsError)]
    assert strays == []


def test_builtin_bases_are_kept_for_existing_except_clauses() -> None:
    with pytest.raises(ValueError):
        parse("(0010,0020")
    assert issubclass(ProfileError, ValueError)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (UsageError("bad option"), ExitStatus.USAGE),
        (RunError("no such folder"), ExitStatus.FAILED),
        (RunError("stopped", code=130), ExitStatus.INTERRUPTED),
        (ConfigError("preset.toml: [nodes.x] port: not a number"), ExitStatus.USAGE),
        (ExprError("empty expression"), ExitStatus.USAGE),
        (ProfileError("unknown option"), ExitStatus.USAGE),
        (AnonymizeError("--out inside --path"), ExitStatus.USAGE),
        (NetError("association rejected"), ExitStatus.FAILED),
        (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
        (BrokenPipeError(), ExitStatus.OK),
        (KeyError("x"), ExitStatus.FAILED),
    ],
)
def test_failure_maps_each_error_to_its_exit_status(exc: BaseException, status: ExitStatus) -> None:
    assert failure(exc).status == status


def test_messages_name_no_python_class() -> None:
    for exc in (KeyError("PatientID"), ValueError(), FileNotFoundError(2, "No such file or directory", "/x")):
        text = failure(exc).message
        assert type(exc).__name__ not in text and "Error" not in text, text
    assert failure(FileNotFoundError(2, "No such file or directory", "/x")).message == "No such file or directory: /x"
    shown = failure(UsageError("--tag: bad\x1b[31m")).message
    assert shown.startswith("--tag: bad") and "\x1b" not in shown  # no terminal control from a file


def test_unexpected_error_in_a_command_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(args: object) -> int:
        raise KeyError("SeriesInstanceUID")

    monkeypatch.setattr(cli_show, "run", boom)
    assert cli_main.main(["show", "--path", str(tmp_path)]) == ExitStatus.FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError" not in err and "SeriesInstanceUID" in err
    with pytest.raises(KeyError):  # --debug keeps the traceback for a bug report
        cli_main.main(["--debug", "show", "--path", str(tmp_path)])


def test_exit_status_values_are_the_documented_ones() -> None:
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 130]
