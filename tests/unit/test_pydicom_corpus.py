"""Every file of pydicom's own test data through show, search, anonymize and verify.

Files nobody here wrote (86 test files, 18 character-set files, DICOMDIRs,
text and images): no traceback; each file is in the tree or unreadable with a
reason; every command gives the same verdict; names and values are what
pydicom decodes. Runs in-process on a copy of the installed folders.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset

from dicomtools.core.anonymize import run as anonymize_run
from dicomtools.core.anonymize import verify as anonymize_verify
from dicomtools.core.anonymize.run import AnonymizeSettings, anonymize_files
from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.read import read_instance
from dicomtools.core.archive.scan import scan
from dicomtools.core.archive.summarize import read_summary
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.dicom.pydicom_setup import configure
from dicomtools.core.dicom.text import has_control, value_text
from dicomtools.core.render.forest import forest_to_json, render_flat, render_tree
from dicomtools.core.search.folder import search, search_file
from dicomtools.core.tree import build_forest

pytestmark = pytest.mark.slow

TEST_FILES = Path(get_testdata_file("CT_small.dcm")).parent
CHARSET_FILES = Path(get_charset_files("chrX1.dcm")[0]).parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pydicom-corpus")
    shutil.copytree(TEST_FILES, root / "test_files")
    shutil.copytree(CHARSET_FILES, root / "charset_files")
    return root


def all_files(root: Path) -> list[str]:
    files = list(iter_files(str(root)))
    assert len(files) > 150, "pydicom's test data is missing from the installed wheel"
    return files


def reference(path: str) -> Dataset:
    configure()
    return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def show_verdicts(root: Path) -> dict[str, str]:
    result = scan(str(root), workers=1)
    out = {i.path: "instance" for i in result.instances}
    out.update({u.path: u.reason for u in result.unreadable})
    return out


def test_every_file_is_in_the_tree_or_unreadable_with_a_reason(corpus: Path) -> None:
    result = scan(str(corpus), workers=1)
    patients = build_forest(result.instances)
    doc = forest_to_json(patients, result.unreadable)
    json.dumps(doc)  # serialisable
    shown = {
        inst["path"]
        for p in doc["patients"]
        for top in p["plans"] + p["unconnected"]
        for node in _walk(top)
        for inst in node["instances"]
    }
    duplicates = " ".join(w for p in doc["patients"] for w in p["warnings"] if w.startswith("duplicate"))
    unreadable = {u["path"]: u["reason"] for u in doc["unreadable"]}
    for path in all_files(corpus):
        assert path in shown or path in unreadable or path in duplicates, path
        if path in unreadable:
            assert unreadable[path] and "\n" not in unreadable[path]
    for text in (render_tree(patients, False, result.unreadable), render_flat(patients, result.unreadable)):
        assert not any(has_control(line) for line in text.splitlines())


def _walk(node: dict[str, object]) -> list[dict[str, object]]:
    out = [node]
    for child in node["children"]:  # type: ignore[attr-defined]
        out.extend(_walk(child))
    return out


def test_same_verdict_from_every_command(corpus: Path) -> None:
    """show, search (fast and pydicom paths), anonymize's read and verify agree on each file."""
    shown = show_verdicts(corpus)
    for path in all_files(corpus):
        want = shown[path]
        flat = search_file(path, [_parse("PatientID=?")], [0x00100020])
        deep = search_file(path, [_parse("(300A,00B0)/(300A,00B2)=?")], [0x300A00B0])
        for outcome in (flat, deep):
            assert ("instance" if outcome.dicom else outcome.reason) == want, (path, outcome)
        got = anonymize_run._read(path)
        summary = read_summary(path)
        if isinstance(got, str) and isinstance(summary, InstanceSummary) and summary.truncated:
            assert got.startswith("truncated: pixel data"), path  # read alike; anonymize does not copy it
        elif isinstance(got, str):
            assert got == want, path
        else:
            assert want == "instance" and isinstance(summary, InstanceSummary), path
            assert str(got.SOPInstanceUID) == summary.sop_instance_uid, path
        not_dicom = anonymize_verify._not_dicom(path)
        assert (not_dicom or "instance") == want, path


def test_names_and_values_equal_what_pydicom_decodes(corpus: Path) -> None:
    checked = 0
    for path in all_files(corpus):
        summary = read_summary(path)
        if not isinstance(summary, InstanceSummary):
            continue
        ds = reference(path)
        meta = ds.file_meta if getattr(ds, "file_meta", None) else {}
        assert summary.sop_instance_uid == (
            value_text(ds.get("SOPInstanceUID")) or value_text(meta.get("MediaStorageSOPInstanceUID"))
        ), path
        assert summary.patient_name == value_text(ds.get("PatientName")), path
        assert summary.patient_id == value_text(ds.get("PatientID")), path
        assert summary.modality == value_text(ds.get("Modality")), path
        name = search_file(path, [_parse("PatientName=?")], [0x00100010])
        if "PatientName" in ds and value_text(ds.PatientName):
            assert name.values == {"PatientName": [str(v) for v in _values(ds.PatientName)]}, path
        checked += 1
    assert checked > 120


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]


def test_search_sequence_private_and_non_ascii_wildcard(corpus: Path) -> None:
    machines = search(str(corpus), ["(300A,00B0)/(300A,00B2)=?"], workers=1)
    private = search(str(corpus), ["(0009,0010)=?"], workers=1)
    german = search(str(corpus), ["PatientName=*ü*"], workers=1)
    shown = show_verdicts(corpus)
    for result in (machines, private, german):
        bad = {u.path: u.reason for u in result.unreadable}
        assert bad == {p: r for p, r in shown.items() if r != "instance"}
    want_machines: dict[str, list[str]] = {}
    want_private: dict[str, list[str]] = {}
    want_german: set[str] = set()
    for path, verdict in shown.items():
        if verdict != "instance":
            continue
        ds = reference(path)
        names = [str(b.TreatmentMachineName) for b in ds.get("BeamSequence", []) if "TreatmentMachineName" in b]
        if "BeamSequence" in ds:
            want_machines[path] = list(dict.fromkeys(names)) if names else [""]
        if 0x00090010 in ds:
            want_private[path] = [str(v) for v in _values(ds[0x00090010].value)]
        if "ü" in str(ds.get("PatientName", "")):
            want_german.add(path)
    assert {m.path: m.values["(300A,00B0)/(300A,00B2)"] for m in machines.matches} == want_machines
    assert {m.path: m.values["(0009,0010)"] for m in private.matches} == want_private
    assert {m.path for m in german.matches} == want_german and want_german


def test_big_endian_ion_plan_without_meta_is_in_the_tree_and_found(corpus: Path) -> None:
    path = str(corpus / "test_files" / "ExplVR_BigEndNoMeta.dcm")
    found = read_instance(path)
    assert not isinstance(found, UnreadableFile), found
    assert found.sop_class_uid == "1.2.840.10008.5.1.4.1.1.481.8"
    result = search(str(corpus), ["(0008,0060)=RTPLAN"], workers=1)
    assert path in {m.path for m in result.matches}
    patients = build_forest(scan(str(corpus / "test_files"), workers=1).instances)
    plans = [i.path for p in patients for n in p.plans for i in n.instances]
    assert path in plans


@pytest.mark.parametrize("name", ["UN_sequence.dcm", "priv_SQ.dcm", "chrSQEncoding.dcm", "chrSQEncoding1.dcm"])
def test_uids_only_in_file_meta_are_instances_for_every_command(corpus: Path, name: str) -> None:
    path = next(str(p) for p in corpus.rglob(name))
    summary = read_summary(path)
    assert isinstance(summary, InstanceSummary)
    got = anonymize_run._read(path)
    assert isinstance(got, Dataset) and str(got.SOPInstanceUID) == summary.sop_instance_uid
    assert search_file(path, [_parse("SOPInstanceUID=?")], [0x00080018]).values == {
        "SOPInstanceUID": [summary.sop_instance_uid]
    }


def _anonymize_params() -> list[object]:
    out = []
    for folder in (TEST_FILES, CHARSET_FILES):
        for name in sorted(os.listdir(folder)):
            if not (folder / name).is_file():
                continue
            out.append(pytest.param(folder.name, name, id=name))
    return out


@pytest.mark.parametrize(("folder", "name"), _anonymize_params())
def test_anonymize_every_file(corpus: Path, tmp_path: Path, folder: str, name: str) -> None:
    path = str(corpus / folder / name)
    report = anonymize_files([path], str(tmp_path / "out"), AnonymizeSettings("ANON", "ANON^ONE"))
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix == ".dcm"]
    verdict = read_summary(path)
    if isinstance(verdict, UnreadableFile):
        assert [u.reason for u in report.skipped] == [verdict.reason]
        assert not written
    elif verdict.truncated:
        assert report.skipped and not written
    else:
        assert len(written) == 1, report.skipped
        out = read_summary(str(written[0]))
        assert isinstance(out, InstanceSummary) and out.patient_id == "ANON"


def _parse(text: str) -> object:
    from dicomtools.core.search.expr import parse

    return parse(text)


def test_pixel_data_check_reads_the_encoding_of_the_bytes(corpus: Path) -> None:
    """SC_rgb_jpeg.dcm's meta says explicit VR over an implicit data set: not truncated, and writable."""
    liar = read_summary(str(corpus / "test_files" / "SC_rgb_jpeg.dcm"))
    cut = read_summary(str(corpus / "test_files" / "MR_truncated.dcm"))
    assert isinstance(liar, InstanceSummary) and not liar.truncated
    assert isinstance(cut, InstanceSummary) and cut.truncated


def test_a_damaged_value_keeps_the_file_an_instance_for_show_and_search(tmp_path: Path) -> None:
    """One bad VR inside a sequence: show and search both list the file (same verdict)."""
    raw = bytearray(Path(get_testdata_file("rtplan.dcm")).read_bytes())
    raw[272:273] = b"\x01"  # hypothesis found it: (300C,0060) gets an unknown VR inside
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(raw))
    summary = read_summary(str(path))
    assert isinstance(summary, InstanceSummary)
    outcome = search_file(str(path), [_parse("(300C,0060)/(0008,1155)=?")], [0x300C0060])
    assert outcome.dicom and outcome.values is not None
