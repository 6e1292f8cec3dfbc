"""``dicomtools anonymize`` on the phantom archive: leaks, tree preservation, layouts, batches, errors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomtools.core.anonymize.run import AnonymizeSettings, anonymize_files
from dicomtools.core.archive.read import sniff_dicom
from dicomtools.core.archive.scan import scan
from dicomtools.core.cli.main import main
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.progress import CancelToken, RecordingSink
from dicomtools.core.render.forest import forest_to_json
from dicomtools.core.tree import build_forest

NEW_ID, NEW_NAME = "ANON01", "ANON^ONE"
IDENTIFYING_KEYWORDS = {
    "PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "AccessionNumber",
    "ReferringPhysicianName", "OperatorsName", "ReviewerName", "OtherPatientIDs", "StudyID",
}
_UID_IN_TEXT = re.compile(r"\d+(?:\.\d+){3,}")


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["anonymize", *args])
    return rc, out.getvalue(), err.getvalue()


def fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def walk(ds: Dataset) -> Any:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from walk(item)


def read_all(root: Path) -> dict[Path, Dataset]:
    return {p: pydicom.dcmread(p) for p in sorted(root.rglob("*.dcm"))}


@dataclass
class Originals:
    texts: set[str]  # lower-cased identifying values
    uids: set[str]
    words: set[str]  # lower-cased name words, for file names


def originals(root: Path) -> Originals:
    texts: set[str] = set()
    uids: set[str] = set()
    words: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file() or sniff_dicom(path.read_bytes()[:132])[1]:
            continue
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        except Exception:
            continue
        for part in (ds.file_meta, ds) if hasattr(ds, "file_meta") else (ds,):
            for elem in walk(part):
                value = elem.value
                if value in (None, ""):
                    continue
                if elem.VR == "UI":
                    for v in value if isinstance(value, list | pydicom.multival.MultiValue) else [value]:
                        if not str(v).startswith("1.2.840.10008.") and "ClassUID" not in elem.keyword \
                                and elem.keyword not in ("TransferSyntaxUID", "ImplementationClassUID"):
                            uids.add(str(v))
                elif elem.keyword in IDENTIFYING_KEYWORDS and len(str(value)) >= 3:
                    texts.add(str(value).lower())
                    if elem.VR == "PN":
                        words |= {w.lower() for w in re.split(r"[\^ ]+", str(value)) if len(w) >= 3}
    return Originals(texts, uids, words)


@pytest.fixture(scope="module")
def originals_of_phantom(phantom: PhantomManifest) -> Originals:
    return originals(Path(phantom.root))


@dataclass
class Run:
    out: Path
    rc: int
    stdout: str
    input_changed: bool


@pytest.fixture(scope="module", params=["aria", "basic"])
def anonymized(request: pytest.FixtureRequest, phantom: PhantomManifest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = Path(phantom.root)
    out = tmp_path_factory.mktemp(f"anon-{request.param}") / "out"
    before = fingerprint(root)
    rc, stdout, _ = cli("--path", str(root), "--out", str(out), "--newPatientId", NEW_ID,
                        "--newPatientName", NEW_NAME, "--profile", request.param)
    return Run(out, rc, stdout, fingerprint(root) != before)


def _canonical(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Siblings sorted: the tree orders some of them by label, path or UID, all of which change."""
    return sorted(nodes, key=lambda n: json.dumps(n, sort_keys=True))


def shape(node: dict[str, Any]) -> dict[str, Any]:
    """A tree node without labels, UIDs and paths: what must survive anonymization."""
    out: dict[str, Any] = {"kind": node["kind"], "instances": len(node["instances"]),
                           "children": _canonical([shape(c) for c in node["children"]])}
    for key in ("approval_status", "machines", "plan_intent", "dose_summation_type", "fraction_number",
                "beam_number", "machine", "modality", "related"):
        if key in node:
            out[key] = node[key]
    if "note" in node:
        out["note"] = re.sub(r"\d+(?:\.\d+)+", "<uid>", node["note"])
    return out


def forest_shape(root: Path, *, drop_truncated: bool = False) -> list[dict[str, Any]]:
    result = scan(str(root), workers=1)
    instances = [i for i in result.instances if not (drop_truncated and i.truncated)]
    doc = forest_to_json(build_forest(instances))
    return [{"plans": _canonical([shape(n) for n in p["plans"]]),
             "unconnected": _canonical([shape(n) for n in p["unconnected"]])}
            for p in doc["patients"]]


def test_run_succeeds_and_lists_what_it_did_not_copy(anonymized: Run, phantom: PhantomManifest) -> None:
    assert anonymized.rc == 0, anonymized.stdout
    skipped = len(phantom.broken_files) + len(phantom.truncated_pixel_files)
    assert f"{skipped} not copied" in anonymized.stdout
    assert "not copied: " in anonymized.stdout and "notes.txt: not DICOM" in anonymized.stdout
    assert f"patients: {NEW_ID}, {NEW_ID}-2" in anonymized.stdout
    written = list(anonymized.out.rglob("*.dcm"))
    assert len(written) == len(phantom.files) - len(phantom.truncated_pixel_files)
    assert not [p for p in anonymized.out.rglob("*") if p.name.startswith(".")]  # no staging left


def test_input_is_never_modified(anonymized: Run) -> None:
    assert not anonymized.input_changed


def test_tree_shape_is_preserved(anonymized: Run, phantom: PhantomManifest) -> None:
    """Same kinds, counts, nesting, approval statuses and machines, for both profiles."""
    before = forest_shape(Path(phantom.root), drop_truncated=True)
    after = forest_shape(anonymized.out)
    assert len(after) == len(before) == 2
    assert after == before


def test_no_original_identifier_in_any_element(anonymized: Run, originals_of_phantom: Originals) -> None:
    assert originals_of_phantom.uids and originals_of_phantom.texts
    leaks = []
    for path, ds in read_all(anonymized.out).items():
        for part in (ds.file_meta, ds):
            for elem in walk(part):
                if elem.tag.is_private:
                    leaks.append((path.name, elem.tag, "private element"))
                if elem.VR == "SQ" or elem.value is None or int(elem.tag) == 0x7FE00010:
                    continue
                text = str(elem.value)
                if elem.VR == "UI":
                    values = [str(v) for v in (elem.value if isinstance(elem.value, list | pydicom.multival.MultiValue) else [elem.value])]
                    leaks += [(path.name, elem.tag, v) for v in values if v in originals_of_phantom.uids]
                    continue
                low = text.lower()
                leaks += [(path.name, elem.tag, t) for t in originals_of_phantom.texts if t in low]
                leaks += [(path.name, elem.tag, u) for u in _UID_IN_TEXT.findall(text) if u in originals_of_phantom.uids]
    assert not leaks, leaks[:10]


def test_the_varian_private_element_is_gone(anonymized: Run) -> None:
    for ds in read_all(anonymized.out).values():
        assert not [e for e in ds if e.tag.group == 0x3253]
        assert ds.PatientIdentityRemoved == "YES"


def test_file_and_folder_names_hold_no_original_identifier(anonymized: Run, phantom: PhantomManifest,
                                                          originals_of_phantom: Originals) -> None:
    ids = [pid.lower() for pid in phantom.patients]
    for path in anonymized.out.rglob("*"):
        rel = str(path.relative_to(anonymized.out)).lower()
        assert not any(i in rel for i in ids), rel
        assert not any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", rel) for w in originals_of_phantom.words), rel
        assert not any(u in rel for u in _UID_IN_TEXT.findall(rel) if u in originals_of_phantom.uids), rel
    patients = sorted(p.name for p in anonymized.out.iterdir())
    assert patients == [NEW_ID, f"{NEW_ID}-2"]


def test_tree_layout_names_plans_and_kinds(anonymized: Run) -> None:
    plans = sorted(p.name for p in (anonymized.out / NEW_ID).iterdir())
    assert "Unconnected" in plans
    plan_dirs = [p for p in plans if p != "Unconnected"]
    if "aria" in str(anonymized.out):
        assert "PLAN_A" in plan_dirs  # ARIA keeps plan labels, so folders carry them
    else:
        assert all(re.fullmatch(r"Plan\d+(_\d+)?", p) for p in plan_dirs)  # cleaned labels: numbered
    kinds = {p.name for p in (anonymized.out / NEW_ID).glob("*/*")}
    assert {"RT-Plan", "RT-Struct", "Image", "RT-Dose", "RT-Record"} <= kinds
    assert all(re.fullmatch(r"[A-Z]{2,8}\.2\.25\.\d+\.dcm", p.name) for p in anonymized.out.rglob("*.dcm"))


def test_refuses_output_inside_or_equal_to_input(phantom: PhantomManifest) -> None:
    root = Path(phantom.root)
    for out in (root / "anon", root):
        rc, _, err = cli("--path", str(root), "--out", str(out), "--newPatientId", "X", "--newPatientName", "X")
        assert rc == 2 and "inside the input folder" in err
    assert not (root / "anon").exists()


def test_new_identity_is_required(phantom: PhantomManifest, tmp_path: Path) -> None:
    rc, _, err = cli("--path", phantom.root, "--out", str(tmp_path / "o"), "--newPatientName", "X")
    assert rc == 2 and "--newPatientId is required" in err
    rc, _, err = cli("--path", phantom.root, "--out", str(tmp_path / "o"), "--newPatientId", "Ö", "--newPatientName", "X")
    assert rc == 2 and "ASCII" in err


def test_bad_user_profile_names_the_line(phantom: PhantomManifest, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('tag,action\n"(0010,0010)",Z\n"(0010,0020)",REMOVE\n', encoding="utf-8")
    rc, _, err = cli("--path", phantom.root, "--out", str(tmp_path / "o"), "--newPatientId", "X",
                     "--newPatientName", "X", "--profile", str(bad))
    assert rc == 2 and "bad.csv:3: unknown action 'REMOVE'" in err
    rc, _, err = cli("--path", phantom.root, "--out", str(tmp_path / "o"), "--newPatientId", "X",
                     "--newPatientName", "X", "--option", "RetainEverything")
    assert rc == 2 and "unknown option 'RetainEverything'" in err
    assert not (tmp_path / "o").exists()


def test_keep_layout_replaces_identifiers_in_names(phantom: PhantomManifest, tmp_path: Path,
                                                   originals_of_phantom: Originals) -> None:
    out = tmp_path / "keep"
    rc, stdout, _ = cli("--path", phantom.root, "--out", str(out), "--newPatientId", NEW_ID,
                        "--newPatientName", NEW_NAME, "--keep-layout")
    assert rc == 0, stdout
    rels = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert f"{NEW_ID}/2024-01-15/RTPLAN" in {str(Path(r).parent) for r in rels}
    assert f"{NEW_ID}-2/2024-01-15/CT" in {str(Path(r).parent) for r in rels}
    assert not any("phantom" in r.lower() for r in rels)
    assert len(rels) == len(phantom.files) - len(phantom.truncated_pixel_files)


def _split_patient_one(phantom: PhantomManifest, tmp_path: Path) -> tuple[Path, Path, Path]:
    src = Path(phantom.root) / "PHANTOM-001"
    whole, first, second = tmp_path / "whole", tmp_path / "first", tmp_path / "second"
    shutil.copytree(src, whole / "PHANTOM-001")
    shutil.copytree(src, first / "PHANTOM-001", ignore=lambda d, names: ["CT"] if d.endswith("2024-01-15") else [])
    shutil.copytree(src / "2024-01-15" / "CT", second / "CT")
    return whole, first, second


def test_two_batches_with_a_saved_uid_map_link_to_each_other(phantom: PhantomManifest, tmp_path: Path) -> None:
    whole, first, second = _split_patient_one(phantom, tmp_path)
    uid_map = tmp_path / "map.csv"
    joined = tmp_path / "joined"
    for batch, name in ((first, "a"), (second, "b")):
        rc, stdout, _ = cli("--path", str(batch), "--out", str(joined / name), "--newPatientId", NEW_ID,
                            "--newPatientName", NEW_NAME, "--uid-map", str(uid_map))
        assert rc == 0, stdout
    assert forest_shape(joined, drop_truncated=True) == forest_shape(whole, drop_truncated=True)
    assert "uid," in uid_map.read_text() and "salt" in uid_map.read_text()
    # without the map the second batch gets other UIDs and the CT no longer belongs to the plan
    apart = tmp_path / "apart"
    for batch, name in ((first, "a"), (second, "b")):
        assert cli("--path", str(batch), "--out", str(apart / name), "--newPatientId", NEW_ID,
                   "--newPatientName", NEW_NAME)[0] == 0
    assert forest_shape(apart) != forest_shape(whole, drop_truncated=True)


def test_verify_mode_finds_a_planted_leak(anonymized: Run, phantom: PhantomManifest, tmp_path: Path) -> None:
    rc, stdout, _ = cli("--verify", str(anonymized.out), "--original", phantom.root)
    assert rc == 0 and "OK: no leaks" in stdout
    copy = tmp_path / "copy"
    shutil.copytree(anonymized.out, copy)
    victim = next(copy.rglob("RP.*.dcm"))
    ds = pydicom.dcmread(victim)
    ds.StudyDescription = f"plan for {phantom.patients['PHANTOM-001'].patient_name}"
    ds.save_as(victim)
    rc, stdout, _ = cli("--verify", str(copy), "--original", phantom.root)
    assert rc == 1 and "LEAK: " in stdout and "StudyDescription" in stdout


def test_verify_during_the_run_and_modified_dates(phantom: PhantomManifest, tmp_path: Path) -> None:
    out = tmp_path / "o"
    rc, stdout, _ = cli("--path", phantom.root, "--out", str(out), "--newPatientId", NEW_ID,
                        "--newPatientName", NEW_NAME, "--option", "retain-longitudinal-modified-dates", "--verify")
    assert rc == 0 and "OK: no leaks" in stdout, stdout
    plan = pydicom.dcmread(next(out.rglob("RP.*.dcm")))
    assert plan.LongitudinalTemporalInformationModified == "MODIFIED"
    assert plan.StudyDate and plan.StudyDate != "20240115"


def test_list_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anonymize", "--list-profiles"]) == 0
    out = capsys.readouterr().out
    assert "aria:" in out and "basic:" in out and "retain-longitudinal-modified-dates" in out


def test_api_reports_progress_and_honours_cancel(phantom: PhantomManifest, tmp_path: Path) -> None:
    paths = sorted(str(p) for p in (Path(phantom.root) / "PHANTOM-001" / "2024-01-15" / "RTPLAN").iterdir())
    sink = RecordingSink()
    report = anonymize_files(paths, str(tmp_path / "o"), AnonymizeSettings(NEW_ID, NEW_NAME), sink=sink)
    assert len(report.written) == len(paths) and not report.cancelled
    assert sink.kinds()[0] == "started" and sink.kinds()[-1] == "finished"
    assert {e.job for e in sink.events} == {"anonymize"}
    cancel = CancelToken()
    cancel.cancel()
    report = anonymize_files(paths, str(tmp_path / "c"), AnonymizeSettings(NEW_ID, NEW_NAME), cancel=cancel)
    assert report.cancelled and not report.written


def test_verify_does_not_change_what_is_written(tmp_path: Path) -> None:
    """Collecting --verify's identifiers from the originals must not decode them in place: pydicom
    then wrote an explicit-UN Manufacturer as LO and an odd-padded Image Type without its padding
    (pydicom's rtdose_rle.dcm and SC_rgb_gdcm_KY.dcm)."""
    from pydicom.data import get_testdata_file

    src = tmp_path / "in"
    src.mkdir()
    for name in ("rtdose_rle.dcm", "SC_rgb_gdcm_KY.dcm", "rtplan.dcm", "CT_small.dcm"):
        shutil.copy(str(get_testdata_file(name)), src / name)
    common = ["--path", str(src), "--newPatientId", "A1", "--newPatientName", "A^B", "--keepLayout"]
    code, _, err = cli(*common, "--out", str(tmp_path / "plain"), "--uidMap", str(tmp_path / "map.csv"))
    assert code == 0, err
    shutil.copy(tmp_path / "map.csv", tmp_path / "map2.csv")  # the same UIDs in the second run
    code, out, err = cli(*common, "--out", str(tmp_path / "verified"), "--uidMap", str(tmp_path / "map2.csv"),
                         "--verify")
    assert code == 0, err + out
    written = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*.dcm"))
    assert len(written) == 4
    for rel in written:
        assert (tmp_path / "plain" / rel).read_bytes() == (tmp_path / "verified" / rel).read_bytes(), rel
