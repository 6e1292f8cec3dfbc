"""``dicomtools anonymize`` on hand-made hard cases: preamble and file meta, names in paths in any
script, burned-in annotation, damaged files that must not stop the run, and verify on pydicom's files."""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import subprocess
import unicodedata
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtools.core.anonymize.failures import failure_reason
from dicomtools.core.anonymize.filemeta import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dicomtools.core.cli.main import main

NEW = ("--newPatientId", "ANON1", "--newPatientName", "ANON^ONE")
CT = "1.2.840.10008.5.1.4.1.1.2"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
PREAMBLE_TEXT = b"PREAMBLE PID4711X Mueller"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["anonymize", *args])
    return rc, out.getvalue(), err.getvalue()


def instance(sop_class: str, uid: str, *, name: str = "Müller^Jürgen", pid: str = "PID4711X",
             charset: str | list[str] = "ISO_IR 100", modality: str = "CT") -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = "19610302"
    ds.StudyInstanceUID = uid + ".1"
    ds.SeriesInstanceUID = uid + ".2"
    ds.Modality = modality
    return ds


def save(ds: Dataset, path: Path, *, preamble: bytes = b"\0" * 128, ts: str = ExplicitVRLittleEndian,
         meta_extra: dict[str, object] | None = None) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.999.1"
    for keyword, value in (meta_extra or {}).items():
        setattr(meta, keyword, value)
    ds.file_meta = meta
    ds.preamble = preamble.ljust(128, b"\0")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def plan(uid: str, label: str, **kw: object) -> Dataset:
    ds = instance(RTPLAN, uid, modality="RTPLAN", **kw)  # type: ignore[arg-type]
    ds.RTPlanLabel = label
    ds.RTPlanDate = "20240115"
    return ds


# -- 4. preamble and file meta ------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["aria", "basic"])
def test_preamble_is_zeroed_and_file_meta_is_ours(tmp_path: Path, profile: str) -> None:
    options = ["--noDefaultOptions"] if profile == "basic" else []  # basic without Retain Device Identity
    src = tmp_path / "in"
    save(plan("1.2.3.4.100", "PLAN_A"), src / "rp.dcm", preamble=PREAMBLE_TEXT, meta_extra={
        "ImplementationVersionName": "HOSPX_PACS_1", "SourceApplicationEntityTitle": "MUELLER_WS",
        "PrivateInformationCreatorUID": "1.2.999.5", "PrivateInformation": b"PID4711X"})
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), "--profile", profile, *options, *NEW)
    assert rc == 0, stdout
    (written,) = list(out.rglob("*.dcm"))
    raw = written.read_bytes()
    assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
    assert b"PID4711X" not in raw and b"HOSPX" not in raw and b"1.2.999.1\0" not in raw
    ds = pydicom.dcmread(written)
    meta = ds.file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert "PrivateInformation" not in meta and "PrivateInformationCreatorUID" not in meta
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != "1.2.3.4.100"
    assert meta.MediaStorageSOPClassUID == RTPLAN
    # Source AE Title: a device identifier, kept only under Retain Device Identity (the default options)
    if profile == "basic":
        assert "SourceApplicationEntityTitle" not in meta
    else:
        assert meta.SourceApplicationEntityTitle == "ANON_ONE_WS"  # retained, cleaned of the name
    # dcmtk reads the file meta as we wrote it
    dump = subprocess.run(["dcmdump", "-M", str(written)], capture_output=True, text=True, check=True).stdout
    assert IMPLEMENTATION_CLASS_UID in dump and "(0002,0102)" not in dump


# -- 5. names in paths ----------------------------------------------------------------------------


def _folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
                   if not unicodedata.combining(c)).casefold()


FORBIDDEN = ["muller", "mueller", "m_ller", "jurgen", "juergen", "j_rgen", "pid4711x", "19610302", "1961-03-02",
             "yamada", "tarou", "山田", "太郎", "やまだ", "たろう", "jp0815"]


def _names_in(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if any(f in _folded(part) for part in p.relative_to(root).parts for f in FORBIDDEN)]


def test_keep_layout_keeps_no_name_in_any_script(tmp_path: Path) -> None:
    src = tmp_path / "in"
    # a Yamada file sorts before any Müller file yet sits in a folder named after Müller
    save(instance(CT, "1.2.3.9.1", name="Yamada^Tarou=山田^太郎=やまだ^たろう", pid="JP0815",
                  charset=["", "ISO 2022 IR 87"]), src / "0_Müller_Jürgen_copy" / "jp.dcm")
    save(instance(CT, "1.2.3.5.1"), src / "Müller_Jürgen" / "CT" / "ct1.dcm")
    save(instance(CT, "1.2.3.5.2"), src / "MUELLER_JUERGEN_PID4711X" / "1961-03-02" / "ct2.dcm")
    save(instance(CT, "1.2.3.5.3"), src / "M_ller" / "ct3_Jürgen.dcm")
    save(instance(CT, "1.2.3.9.2", name="Yamada^Tarou=山田^太郎=やまだ^たろう", pid="JP0815",
                  charset=["", "ISO 2022 IR 87"]), src / "山田太郎_やまだ" / "ｔａｒｏｕ" / "jp2.dcm")
    (src / "Müller_Jürgen" / "notes.txt").write_text("not dicom")
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), "--keepLayout", *NEW)
    assert rc == 0, stdout
    assert len(list(out.rglob("*.dcm"))) == 5
    assert not _names_in(out), _names_in(out)
    # Müller is the second patient seen (ANON^ONE2); the rest of each name survives
    assert (out / "ANON_ONE2_ANON_ONE2" / "CT" / "ct1.dcm").is_file()
    assert (out / "0_ANON_ONE2_ANON_ONE2_copy" / "jp.dcm").is_file()
    assert list(out.glob("*/*/jp2.dcm"))


def test_default_layout_turns_a_name_label_into_a_numbered_plan(tmp_path: Path) -> None:
    src = tmp_path / "in"
    save(plan("1.2.3.6.1", "Jürgen Müller"), src / "a.dcm")
    save(plan("1.2.3.6.2", "Prostata Größe"), src / "b.dcm")
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), *NEW)
    assert rc == 0, stdout
    plans = sorted(p.name for p in (out / "ANON1").iterdir())
    assert not _names_in(out), _names_in(out)
    assert "Prostata_Grosse" in plans, plans  # letters transliterated, never "_"
    assert any(p.startswith("Plan") for p in plans), plans


# -- 6. burned-in annotation ----------------------------------------------------------------------


def _burned_in_folder(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "in"
    burned = instance(US_MULTIFRAME, "1.2.3.7.1", modality="US")
    burned.BurnedInAnnotation = "YES"
    save(burned, src / "us_burned.dcm")
    clean = instance(CT, "1.2.3.7.2")
    clean.BurnedInAnnotation = "NO"
    save(clean, src / "ct.dcm")
    return src, src / "us_burned.dcm"


def test_burned_in_image_is_not_copied_by_default(tmp_path: Path) -> None:
    src, burned = _burned_in_folder(tmp_path)
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), *NEW)
    assert rc == 1
    assert f"not copied: {burned}: burned-in annotation (0028,0301) = YES" in stdout
    (written,) = list(out.rglob("*.dcm"))
    assert pydicom.dcmread(written).Modality == "CT"


def test_keep_burned_in_copies_it_and_says_so(tmp_path: Path) -> None:
    src, _ = _burned_in_folder(tmp_path)
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), "--keep-burned-in", *NEW)
    assert rc == 0, stdout
    assert "copied anyway (--keepBurnedIn): 1 image(s) with burned-in annotation" in stdout
    assert sorted(pydicom.dcmread(p).Modality for p in out.rglob("*.dcm")) == ["CT", "US"]


# -- 7. one file never stops the run --------------------------------------------------------------


def _implicit(group: int, element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


def damaged_files(folder: Path) -> list[Path]:
    """Files pydicom reads but cannot re-encode: stray sequence delimiters, built byte by byte."""
    stray_top = instance(US_MULTIFRAME, "1.2.3.8.1", modality="US")
    a = save(stray_top, folder / "us_stray_delimiter.dcm", ts=ImplicitVRLittleEndian)
    a.write_bytes(a.read_bytes() + _implicit(0xFFFE, 0xE0DD, b"") + _implicit(0x0020, 0x0010, b"STUDY1"))
    in_item = instance(US_MULTIFRAME, "1.2.3.8.2", modality="US")
    b = save(in_item, folder / "us_delimiter_in_item.dcm", ts=ImplicitVRLittleEndian)
    inner = _implicit(0x0008, 0x1150, CT.encode() + b"\0") + _implicit(0xFFFE, 0xE0DD, b"")
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
    b.write_bytes(b.read_bytes() + _implicit(0x0008, 0x1140, item))
    no_vr = instance(US_MULTIFRAME, "1.2.3.8.3", modality="US")  # an implicit element inside explicit VR
    c = save(no_vr, folder / "us_element_without_vr.dcm")
    c.write_bytes(c.read_bytes() + _implicit(0x0020, 0x0011, b"1 "))
    return [a, b, c]


def test_damaged_files_are_listed_and_the_rest_is_written(tmp_path: Path) -> None:
    src = tmp_path / "in"
    bad = damaged_files(src)
    for k in range(40):
        save(instance(CT, f"1.2.3.10.{k}"), src / "good" / f"ct{k:02d}.dcm")
    (src / "readme.txt").write_text("not dicom")
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), *NEW)
    assert rc == 1
    assert len(list(out.rglob("*.dcm"))) == 40
    words = ["a sequence delimiter (FFFE,E0DD) out of place has no usable value representation ('NONE')"] * 2
    words.append("element (0020,0011) has no value representation to write")  # TypeError: encoding without...
    for path, want in zip(bad, words, strict=True):
        line = next(li for li in stdout.splitlines() if li.startswith(f"not copied: {path}: "))
        assert want in line and "Traceback" not in line, line
    assert "4 not copied (3 readable DICOM instance(s))" in stdout
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no staging or temp file left


def test_only_non_dicom_left_out_exits_zero(tmp_path: Path) -> None:
    src = tmp_path / "in"
    save(instance(CT, "1.2.3.11.1"), src / "ct.dcm")
    (src / "readme.txt").write_text("not dicom")
    (src / "cut.dcm").write_bytes((src / "ct.dcm").read_bytes()[:200])
    rc, stdout, _ = cli("--path", str(src), "--out", str(tmp_path / "out"), *NEW)
    assert rc == 0 and "(0 readable DICOM instance(s))" in stdout, stdout


def test_failure_words_for_pydicom_errors() -> None:
    words = failure_reason(NotImplementedError("Unknown Value Representation 'NONE' in tag (FFFE,E0DD)"), "write")
    assert words.startswith("cannot write it: a sequence delimiter (FFFE,E0DD) out of place")
    words = failure_reason(TypeError("With tag (FFFE,E00D) got exception: encoding without a string argument"),
                           "write")
    assert "an item delimiter (FFFE,E00D) out of place has no value representation" in words
    assert "\x1b" not in failure_reason(ValueError("bad \x1b[31m value\nsecond line"), "read")


def test_retrieve_anonymize_lists_what_it_could_not_copy(tmp_path: Path) -> None:
    from dicomtools.core.archive.model import InstanceSummary
    from dicomtools.core.archive.summarize import read_summary
    from dicomtools.core.net.retrieve import _save_anonymized
    from dicomtools.core.progress import CancelToken
    from dicomtools.core.services.anonymize import RetrieveAnonymizer

    src = tmp_path / "tmp"
    bad = damaged_files(src)
    good = save(instance(CT, "1.2.3.12.1"), src / "ct.dcm")
    summaries = [read_summary(str(p)) for p in [*bad, good]]
    assert all(isinstance(s, InstanceSummary) for s in summaries)
    problems: list[str] = []
    saved = _save_anonymized(summaries, tmp_path / "out", RetrieveAnonymizer("ANON1", "ANON^ONE"),
                             None, CancelToken(), problems)
    assert len(saved) == 1 and len(problems) == 3
    assert all(p.startswith("not copied: US instance 1.2.3.8.") and "cannot write it" in p for p in problems)


# -- 8. verify of a correct output of files nobody here wrote ---------------------------------------


def test_verify_of_pydicoms_test_files_has_no_false_findings(tmp_path: Path) -> None:
    data = Path(get_testdata_file("CT_small.dcm")).parent.parent  # type: ignore[arg-type]
    src = tmp_path / "in"
    for sub in ("test_files", "charset_files"):
        shutil.copytree(data / sub, src / sub)
    out = tmp_path / "out"
    rc, stdout, _ = cli("--path", str(src), "--out", str(out), "--verify", *NEW)
    assert rc == 0 and "OK: no leaks" in stdout, stdout[-3000:]
    assert "(0 readable DICOM instance(s))" in stdout
    written = len(list(out.rglob("*.dcm")))
    assert written > 100
    rc, stdout, _ = cli("--verify", str(out), "--original", str(src))
    assert rc == 0 and f"verify: {written} files checked, OK: no leaks" in stdout, stdout[-3000:]
    assert "LEAK" not in stdout
    # and the same check fails once one name is put back
    victim = next(out.rglob("*.dcm"))
    ds = pydicom.dcmread(victim)
    ds.ContentSequence = Sequence([Dataset()])
    ds.ContentSequence[0].PersonName = "Riesmeier^Jörg"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.save_as(victim)
    rc, stdout, _ = cli("--verify", str(out), "--original", str(src))
    assert rc == 1 and "PersonName: name in 'Riesmeier^Jörg'" in stdout, stdout[-2000:]
