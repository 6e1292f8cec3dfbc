"""Vendor habits seen in real exports, written by hand with pydicom, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomtools.core.archive.scan import scan
from dicomtools.core.cli.main import main
from dicomtools.core.dicom.text import has_control, sanitize
from dicomtools.core.tree import build_forest
from tests import vendor_files as vf


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicomtools.core", *args], capture_output=True, text=True, timeout=120
    )


def show_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["show", "--path", str(path), "--noCache", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_raystation_plan_and_structure_set_under_two_patient_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uids = vf.raystation_split_export(tmp_path)
    doc = show_json(tmp_path, capsys)
    patients = {p["patient_id"]: p for p in doc["patients"]}  # type: ignore[attr-defined]
    plan_patient, data_patient = patients["WTR-PLAN"], patients["WTR303030"]
    ss = plan_patient["plans"][0]["children"][0]
    assert ss["kind"] == "RT-Struct" and ss["label"] == uids["ss"]
    assert ss["note"] == "referenced structure set in this folder under patient WTR303030"
    dose = next(n for n in data_patient["unconnected"] if n["kind"] == "RT-Dose")
    assert dose["note"] == "referenced plan in this folder under patient WTR-PLAN"
    struct = next(n for n in data_patient["unconnected"] if n["kind"] == "RT-Struct")
    assert struct["note"] == "referenced by a plan in this folder under patient WTR-PLAN"
    assert struct["children"][0]["series_instance_uid"] == uids["ct"]
    assert any("WTR303030" in w and "another Patient ID" in w for w in plan_patient["warnings"])
    assert any("WTR-PLAN" in w and "another Patient ID" in w for w in data_patient["warnings"])
    assert main(["show", "--path", str(tmp_path), "--noCache"]) == 0
    out = capsys.readouterr().out
    assert "[referenced structure set in this folder under patient WTR303030]" in out
    assert "  warning: " in out


def test_structure_set_naming_only_its_frame_shows_its_series_whatever_else_is_there(tmp_path: Path) -> None:
    frame = generate_uid()
    alone = tmp_path / "alone"
    series = vf.ct_series(alone, "FOR-1", frame)
    ss_uid = vf.structure_set(alone, "FOR-1", "FOR_ONLY", frame, None)
    both = tmp_path / "both"
    for f in alone.iterdir():  # the same files, plus an unrelated structure set naming the series
        (both / f.name).parent.mkdir(exist_ok=True)
        (both / f.name).write_bytes(f.read_bytes())
    vf.structure_set(both, "FOR-1", "EXPLICIT", frame, series)

    def struct_children(root: Path) -> list[str]:
        tree = build_forest(scan(str(root), workers=1).instances)[0]
        node = next(n for n in tree.unconnected if n.instances and n.instances[0].sop_instance_uid == ss_uid)
        return [c.info.series_instance_uid for c in node.children]

    assert struct_children(alone) == [series]
    assert struct_children(both) == [series]


def test_one_patient_id_with_two_names_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = generate_uid()
    vf.save(vf.base(vf.CT, "123456", "DOE^JOHN", FrameOfReferenceUID=frame), tmp_path / "a.dcm")
    vf.save(vf.base(vf.CT, "123456", "SMITH^JANE", FrameOfReferenceUID=frame), tmp_path / "b.dcm")
    doc = show_json(tmp_path, capsys)
    warnings = doc["patients"][0]["warnings"]  # type: ignore[index]
    assert warnings == ["Patient ID 123456 has 2 different Patient Names: DOE^JOHN, SMITH^JANE"]


def test_one_uid_in_two_files_is_a_warning_naming_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = vf.base(vf.CT, "DUP-1")
    vf.save(ds, tmp_path / "a.dcm")
    ds.SeriesDescription = "changed"
    vf.save(ds, tmp_path / "b.dcm")
    doc = show_json(tmp_path, capsys)
    (warning,) = doc["patients"][0]["warnings"]  # type: ignore[index]
    assert warning.startswith(f"duplicate SOP Instance UID {ds.SOPInstanceUID}: ")
    assert str(tmp_path / "a.dcm") in warning and str(tmp_path / "b.dcm") in warning


def test_iso_2022_ir_58_name_is_decoded_and_no_escape_reaches_the_screen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vf.ir58_file(tmp_path / "gb2312.dcm")
    want = "Zhang^XiaoDong=张^小东"  # pydicom drops the trailing empty group "="
    for fmt in ("tree", "flat"):
        assert main(["show", "--path", str(tmp_path), "--noCache", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert f"Patient: GB2312 ({want})" in out and "\x1b" not in out
    assert show_json(tmp_path, capsys)["patients"][0]["patient_name"] == want  # type: ignore[index]
    assert main(["search", "--path", str(tmp_path), "--noCache", "--tag", "PatientName=*小东*"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(f"PatientName={want}") and "\x1b" not in out


def test_terminal_sequences_in_values_and_names_are_replaced(tmp_path: Path) -> None:
    evil = "EVIL\x1b]0;pwned\x07\x1b[2J\r\x9bX"
    ds = vf.base(vf.CT, "CTRL-1", "CTRL^NAME", SeriesDescription=evil)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDescription = evil
    vf.save(ds, tmp_path / "ctrl.dcm")
    (tmp_path / "bad\x1b[31mname.txt").write_text("hello\n")
    runs = [
        run_cli("show", "--path", str(tmp_path), "--noCache"),
        run_cli("show", "--path", str(tmp_path), "--noCache", "--format", "flat"),
        run_cli("search", "--path", str(tmp_path), "--noCache", "--tag", "SeriesDescription=?", "--showStatistics"),
        run_cli("search", "--path", str(tmp_path), "--noCache", "--tag", "StudyDescription=?", "--format", "csv"),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        for line in (r.stdout + r.stderr).splitlines():
            assert not has_control(line), repr(line)
    assert "EVIL\ufffd]0;pwned" in runs[0].stdout
    as_json = run_cli("search", "--path", str(tmp_path), "--noCache", "--tag", "SeriesDescription=?", "--format", "json")
    values = json.loads(as_json.stdout)["matches"][0]["values"]["SeriesDescription"]
    assert values == [evil.rstrip()]  # JSON keeps the decoded text (escaped by JSON itself)


def test_bidi_overrides_in_values_are_replaced_on_screen_and_kept_in_json(tmp_path: Path) -> None:
    """A right-to-left override in a name shows the rest of a line reversed in a terminal that lays
    out bidirectional text ("Trojan Source"); the marks of real Hebrew or Arabic text stay."""
    trick = "SMITH\u202e^JOHN\u2066X\u2069"
    ds = vf.base(vf.CT, "BIDI-1", trick, SeriesDescription="A\u202dB")
    ds.SpecificCharacterSet = "ISO_IR 192"
    vf.save(ds, tmp_path / "bidi.dcm")
    runs = [
        run_cli("show", "--path", str(tmp_path), "--noCache"),
        run_cli("show", "--path", str(tmp_path), "--noCache", "--format", "flat"),
        run_cli("search", "--path", str(tmp_path), "--noCache", "--tag", "PatientName=?", "--showStatistics"),
        run_cli("search", "--path", str(tmp_path), "--noCache", "--tag", "SeriesDescription=?"),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            assert ch not in r.stdout + r.stderr
    assert "SMITH\ufffd^JOHN\ufffdX\ufffd" in runs[0].stdout
    doc = json.loads(run_cli("show", "--path", str(tmp_path), "--noCache", "--format", "json").stdout)
    assert doc["patients"][0]["patient_name"] == trick
    assert sanitize("\u05e9\u200f\u05dc\u200e\u061c") == "\u05e9\u200f\u05dc\u200e\u061c"


def test_utf8_text_file_is_a_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("Patientenübergabe: Straße, Größe, 線量\n" * 3, encoding="utf-8")
    doc = show_json(tmp_path, capsys)
    assert doc["unreadable"] == [{"path": str(tmp_path / "notes.txt"), "reason": "not DICOM: text file"}]


def test_meta_says_implicit_data_is_explicit_reads_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vf.implicit_meta_explicit_data(tmp_path / "liar.dcm")
    doc = show_json(tmp_path, capsys)
    assert doc["unreadable"] == [] and doc["patients"][0]["patient_id"] == "LIAR-1"  # type: ignore[index]
    assert main(["search", "--path", str(tmp_path), "--noCache", "--tag", "PatientID=LIAR-1"]) == 0
    assert capsys.readouterr().out.startswith(str(tmp_path / "liar.dcm"))
    out = tmp_path.parent / (tmp_path.name + "-anon")
    assert main(["anonymize", "--path", str(tmp_path), "--out", str(out), "--newPatientId", "A1",
                 "--newPatientName", "A^B"]) == 0
    assert len([p for p in out.rglob("*.dcm")]) == 1


def test_uids_only_in_meta_are_read_by_show_search_and_anonymize(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, uid = vf.uids_only_in_meta(tmp_path / "in" / "old.dcm")
    doc = show_json(tmp_path / "in", capsys)
    assert doc["unreadable"] == []
    assert doc["patients"][0]["unconnected"][0]["instances"][0]["sop_instance_uid"] == uid  # type: ignore[index]
    assert main(["search", "--path", str(tmp_path / "in"), "--noCache", "--tag", f"SOPInstanceUID={uid}"]) == 0
    assert capsys.readouterr().out.startswith(str(tmp_path / "in" / "old.dcm"))
    assert main(["anonymize", "--path", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--newPatientId", "A1", "--newPatientName", "A^B"]) == 0
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1


def test_numeric_statistics_count_values_not_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, thickness in enumerate(["6", "6.0", "6.00000000000000", "2.50"]):
        ds = vf.base(vf.CT, "NUM-1")
        ds.SliceThickness = thickness  # DS, written as given
        vf.save(ds, tmp_path / f"ct{i}.dcm")
    for i, rows in enumerate([512, 512]):
        ds = vf.base(vf.CT, "NUM-2")
        ds.Rows = rows  # US
        vf.save(ds, tmp_path / f"us{i}.dcm")
    assert main(["search", "--path", str(tmp_path), "--noCache", "--tag", "SliceThickness=?", "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)["statistics"]["values"]["SliceThickness"]
    assert stats == {"6": 3, "2.5": 1}
    assert main(["search", "--path", str(tmp_path), "--noCache", "--tag", "Rows=?", "--showStatistics"]) == 0
    assert "  2  512" in capsys.readouterr().out


def test_library_warnings_never_reach_stderr(tmp_path: Path) -> None:
    from pydicom.data import get_charset_files, get_testdata_file

    def copy(sources: list[str], folder: Path) -> Path:
        folder.mkdir()
        for source in sources:
            (folder / Path(source).name).write_bytes(Path(source).read_bytes())
        return folder

    charsets = [*get_charset_files("chrH3*.dcm"), *get_charset_files("chrX*.dcm"), *get_charset_files("chrJap*.dcm")]
    readable = copy([*charsets, get_testdata_file("ExplVR_BigEndNoMeta.dcm"), get_testdata_file("UN_sequence.dcm")],
                    tmp_path / "in")
    # SC_rgb_jpeg.dcm: file meta says explicit VR, the data set is implicit (pydicom warns)
    liar = copy([get_testdata_file("SC_rgb_jpeg.dcm")], tmp_path / "liar")
    runs = [
        run_cli("search", "--path", str(liar), "--noCache", "--tag", "(0010,0010)=*ü*"),
        run_cli("show", "--path", str(liar), "--noCache"),
        run_cli("search", "--path", str(readable), "--noCache", "--tag", "(0010,0010)=*ü*"),
        run_cli("search", "--path", str(readable), "--noCache", "--tag", "PatientName=?", "--showStatistics"),
        run_cli("show", "--path", str(readable), "--noCache"),
        run_cli("anonymize", "--path", str(readable), "--out", str(tmp_path / "out"),
                "--newPatientId", "A1", "--newPatientName", "A^B"),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr
    debug = run_cli("--debug", "search", "--path", str(liar), "--noCache", "--tag", "(0010,0010)=*ü*")
    assert "Expected explicit VR, but found implicit VR" in debug.stderr  # kept for --debug
