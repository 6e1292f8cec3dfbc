"""``dicomtools search`` end to end: output formats, options, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtools.core.archive.model import RT_PLAN
from dicomtools.core.cli.main import main

MACHINE = "(300A,00B0)/(300A,00B2)"


def bundled(name: str) -> str:
    """Path of one of pydicom's bundled test files."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


def write_plan(path: Path, patient_id: str, machines: list[str]) -> None:
    ds = Dataset()
    ds.SOPClassUID = RT_PLAN
    ds.SOPInstanceUID = generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = patient_id
    ds.PatientName = "Phantöm^Eins"
    ds.Modality = "RTPLAN"
    beams = []
    for name in machines:
        beam = Dataset()
        beam.TreatmentMachineName = name
        beams.append(beam)
    ds.BeamSequence = Sequence(beams)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RT_PLAN
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_plan(root / "p1/RP.a.dcm", "Phantom-1", ["TrueBeam1", "TrueBeam1"])
    write_plan(root / "p1/RP.b.dcm", "Phantom-1", [""])
    write_plan(root / "p2/sub/RP.c.dcm", "Phantom-2", ["TrueBeam1"])
    shutil.copy(bundled("CT_small.dcm"), root / "p2/CT.small.dcm")
    (root / "p2/readme.txt").write_text("hello\n")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_lists_files_with_shown_values(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--tag", "(0010,0020)=Phantom-1", "--tag", "(0008,0060)=?", "--path", str(data))
    assert code == 0, err
    assert out.splitlines() == [
        f"{data / 'p1/RP.a.dcm'}  (0008,0060)=RTPLAN",
        f"{data / 'p1/RP.b.dcm'}  (0008,0060)=RTPLAN",
    ]


def test_text_shows_empty_value_and_statistics(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--tag", f"{MACHINE}=?", "--path", str(data), "--searchPattern", "rp*.DCM", "--showStatistics")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == [
        f"{data / 'p1/RP.a.dcm'}  {MACHINE}=TrueBeam1",
        f"{data / 'p1/RP.b.dcm'}  {MACHINE}=\"\"",
        f"{data / 'p2/sub/RP.c.dcm'}  {MACHINE}=TrueBeam1",
    ]
    stats = "\n".join(lines[3:])
    assert "files scanned: 3" in stats and "matched:       3" in stats
    assert f"Values of {MACHINE} (files per value):\n  2  TrueBeam1\n  1  \"\"" in stats


def test_statistics_list_unreadable_files(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--tag", "Modality=CT", "--path", str(data), "--showStatistics")
    assert code == 0
    assert out.startswith(f"{data / 'p2/CT.small.dcm'}\n")  # exact '=' values are not repeated
    assert "unreadable:    1" in out
    assert f"{data / 'p2/readme.txt'}: not DICOM: text file" in out


def test_json_contract(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--tag", "PatientID=Phantom-*", "--tag", f"{MACHINE}=?", "--tag", "PatientName",
        "--path", str(data), "--format", "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert [m["path"] for m in doc["matches"]] == [
        str(data / "p1/RP.a.dcm"), str(data / "p1/RP.b.dcm"), str(data / "p2/sub/RP.c.dcm")
    ]
    assert doc["matches"][0]["values"] == {
        "PatientID": ["Phantom-1"], MACHINE: ["TrueBeam1"], "PatientName": ["Phantöm^Eins"]
    }
    stats = doc["statistics"]
    assert (stats["files_scanned"], stats["dicom_files"], stats["unreadable"], stats["matched"]) == (5, 4, 1, 3)
    assert stats["values"] == {MACHINE: {"TrueBeam1": 2, "": 1}}
    assert list(stats["values"][MACHINE]) == ["TrueBeam1", ""]  # by count, descending
    assert stats["unreadable_files"] == [{"path": str(data / "p2/readme.txt"), "reason": "not DICOM: text file"}]


def test_csv_output(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--tag", "PatientID=Phantom-1", "--tag", f"{MACHINE}=?", "--path", str(data),
        "--format", "csv", "--showStatistics",
    )
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["path", "PatientID", MACHINE],
        [str(data / "p1/RP.a.dcm"), "Phantom-1", "TrueBeam1"],
        [str(data / "p1/RP.b.dcm"), "Phantom-1", ""],
    ]
    assert "matched:       2" in err  # statistics go to stderr so stdout stays CSV


def test_only_directories_text_and_json(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--tag", "Modality=RTPLAN", "--path", str(data), "--showOnlyDirectories")
    assert code == 0
    assert out.splitlines() == [str(data / "p1"), str(data / "p2/sub")]
    code, out, _ = run(capsys, "--tag", "Modality=RTPLAN", "--path", str(data), "--show-only-directories", "--format", "json")
    assert json.loads(out)["directories"] == [str(data / "p1"), str(data / "p2/sub")]


def test_kebab_case_options(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--tag", f"{MACHINE}=?", "--path", str(data), "--search-pattern", "RP.c*", "--show-statistics"
    )
    assert code == 0
    assert out.splitlines()[0] == f"{data / 'p2/sub/RP.c.dcm'}  {MACHINE}=TrueBeam1"
    assert "files scanned: 1" in out


def test_malformed_tag_is_one_line_exit_2(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--tag", "(0010,002)=x", "--path", str(data))
    assert code == 2 and out == ""
    assert err == 'dicomtools search: --tag "(0010,002)=x": tag needs 4+4 hex digits\n'
    code, _, err = run(capsys, "--tag", "Modality=CT", "--tag", "StudyDate>soon", "--path", str(data))
    assert code == 2
    assert err.count("\n") == 1 and "needs a number or a date/time" in err


def test_missing_path_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, out, err = run(capsys, "--tag", "Modality=CT", "--path", str(missing))
    assert code == 1 and out == ""
    assert err == f"dicomtools search: --path {str(missing)!r}: no such file or folder\n"


def test_tag_is_required(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["search", "--path", str(data)])
    assert info.value.code == 2
    assert "--tag" in capsys.readouterr().err


def test_subprocess_with_worker_pool(data: Path) -> None:
    """The installed module entry point, forcing the process pool (forkserver) path."""
    proc = subprocess.run(
        [sys.executable, "-m", "dicomtools.core", "search", "--tag", f"{MACHINE}=TrueBeam*",
         "--path", str(data), "--workers", "2", "--format", "json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert [m["path"] for m in doc["matches"]] == [str(data / "p1/RP.a.dcm"), str(data / "p2/sub/RP.c.dcm")]
