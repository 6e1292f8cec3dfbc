"""``anonymize``, ``show`` and ``search`` on files nobody here wrote: the ``deid-data`` package.

deid-data (pinned in the test extra) ships the real, de-identified CT, US,
DX and secondary-capture files of pydicom/deid with fake PHI planted in them:
names written ``Wetzel, James^Chase`` or ``nameless waterfall`` (no ``^``),
institution names and addresses, IDs and accession numbers inside request
sequences, a 43 MB multi-frame ultrasound, JPEG-compressed images, three
images marked Burned In Annotation YES, and zip files and Python files among
them. Every original identifier is read here with pydicom from the inputs;
dciodvfy (dicom3tools) judges each output against its own input.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import deid_data
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.unit import anon_objects as o

pytestmark = pytest.mark.slow

DATA = Path(deid_data.__file__).parent / "data"
NEW = ("--newPatientId", "ANON1", "--newPatientName", "ANON^ONE")
DICOM_FILES = 14  # 13 shipped .dcm files + GREYSCALE_CINE.dcm from its zip
NOT_DICOM = {"README.md", "__init__.py", "GREYSCALE_CINE.zip", "RGB_CINE.zip"}
BURNED_IN = {"GREYSCALE_CINE.dcm", "GREYSCALE_IMAGE.dcm", "ultrasound-multiframe.dcm"}
# Identifier tags read from the originals at any depth (Request Attributes Sequence included).
ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber")
PLACE_KEYWORDS = ("InstitutionName", "InstitutionAddress")
# Values too short or generic to identify anyone: the multi-frame's Patient ID "1", birth date
# 19000101 and accession "PR\US", and "TEST" of "ZZZ TEST PATIENTFIVE", which the data's own
# free text uses as a word ("test\rRIS COMMENTS-").
NOT_IDENTIFYING = {"19000101", "TEST"}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deid-data's folders as shipped (zips, README and __init__.py included), plus the greyscale cine unzipped."""
    root = tmp_path_factory.mktemp("deid") / "in"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("__pycache__"))
    with zipfile.ZipFile(root / "ultrasounds" / "GREYSCALE_CINE.zip") as z:
        z.extractall(root / "ultrasounds")
    assert len([p for p in root.rglob("*.dcm")]) == DICOM_FILES
    return root


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomtools.core", *map(str, args)],
                          capture_output=True, text=True, timeout=240, check=False)


def _elements(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _elements(item)
        else:
            yield elem


def _values(elem: pydicom.DataElement) -> list[str]:
    value = elem.value
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def identifiers(root: Path, places: bool = True) -> set[str]:
    """Every patient name (whole, and each word of 4+ letters), ID, birth date, accession, institution."""
    found: set[str] = set()
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for elem in _elements(ds):
            if elem.keyword == "PatientName":
                for name in _values(elem):
                    found.add(name.strip("^"))
                    found.update(w for w in re.split(r"[\^=,\s]+", name) if len(w) >= 4)
            elif elem.keyword in ID_KEYWORDS or (places and elem.keyword in PLACE_KEYWORDS):
                found.update(_values(elem))
    return {v for v in found if len(v) >= 4 and v not in NOT_IDENTIFYING}


def header_bytes(path: Path) -> bytes:
    """The file up to its Pixel Data: 43 MB of ultrasound pixels hold 'CCHS' and 'abcd' by chance."""
    with path.open("rb") as fh:
        pydicom.dcmread(fh, stop_before_pixels=True)
        end = fh.tell()
    return path.read_bytes()[:end]


def leaks(out: Path, needles: set[str]) -> list[str]:
    found = []
    def word(needle: str, flags: int = 0) -> re.Pattern[bytes]:
        return re.compile(rb"(?<![A-Za-z0-9])" + re.escape(needle.encode("latin-1")) + rb"(?![A-Za-z0-9])", flags)

    # bytes as the originals wrote them ("flat" of the name "flat glade", not a CT's Filter Type FLAT);
    # paths in any case
    patterns = {n: (word(n), word(n, re.IGNORECASE)) for n in needles}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = header_bytes(path)
        rel = str(path.relative_to(out)).encode("utf-8", "replace")
        for needle, (exact, any_case) in patterns.items():
            if exact.search(data) or any_case.search(rel):
                found.append(f"{rel.decode()}: {needle!r}")
    return found


def new_dciodvfy_errors(originals: Path, out: Path, uid_map: Path) -> dict[str, list[str]]:
    """Per output, the dciodvfy errors its input did not already have (UIDs blanked, as anon_objects does)."""
    with uid_map.open(newline="") as fh:
        new_uid = {row["original"]: row["new"] for row in csv.DictReader(fh) if row["kind"] == "uid"}
    sources: dict[str, list[Path]] = {}
    for path in originals.rglob("*.dcm"):
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        sources.setdefault(new_uid[uid], []).append(path)  # ctbrain1/2 share one SOP Instance UID
    before = {uid: set().union(*(o.dciodvfy_errors(p) for p in paths)) for uid, paths in sources.items()}
    result: dict[str, list[str]] = {}
    for path in sorted(out.rglob("*.dcm")):
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert uid in before, f"{path}: no input has this (new) SOP Instance UID"
        result[str(path.relative_to(out))] = [e for e in o.dciodvfy_errors(path) if e not in before[uid]]
    return result


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    """Only the run's own one-line reports: no traceback, no pydicom warning (a 122-character LO is read quietly)."""
    for line in (proc.stdout + proc.stderr).splitlines():
        assert "Traceback" not in line and "Warning" not in line and "WARNING" not in line, line
    for line in proc.stderr.splitlines():
        assert line.startswith(("not copied: ", "copied anyway ")), line


OPTION_SETS = {
    "basic-defaults": ("--profile", "basic"),
    "aria-keep-layout": ("--profile", "aria", "--keepLayout"),
    "basic-no-options": ("--profile", "basic", "--noDefaultOptions"),
    "aria-retain-and-clean": ("--profile", "aria", "--option", "RetainInstitutionIdent", "RetainPatientChars",
                              "RetainLongModifDates", "RetainSafePrivate", "CleanGraph", "CleanStructdCont"),
}


@pytest.mark.parametrize("name", OPTION_SETS)
def test_every_file_anonymized_verified_and_still_valid(originals: Path, tmp_path: Path, name: str) -> None:
    out, uid_map = tmp_path / "out", tmp_path / "uids.csv"
    proc = cli("anonymize", "--path", originals, "--out", out, *NEW, *OPTION_SETS[name], "--keepBurnedIn",
               "--uidMap", uid_map, "--verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # only non-DICOM files were left out
    assert_clean(proc)
    report = proc.stdout + proc.stderr
    not_copied = {Path(line.split(": ")[1]).name for line in report.splitlines() if line.startswith("not copied")}
    assert not_copied == NOT_DICOM
    assert f"anonymized {DICOM_FILES} of {DICOM_FILES + len(NOT_DICOM)} files" in proc.stdout
    assert "copied anyway (--keepBurnedIn): 3 image(s)" in report
    assert f"verify: {DICOM_FILES} files checked, OK: no leaks" in proc.stdout, proc.stdout
    assert "LEAK" not in proc.stdout
    assert "CodingSchemeDesignator" not in proc.stdout  # 'SIEMENS_RIS' is vocabulary, not 'RIS' of a name

    outputs = sorted(out.rglob("*.dcm"))
    assert len(outputs) == DICOM_FILES
    retained_places = "RetainInstitutionIdent" in OPTION_SETS[name]
    needles = identifiers(originals, places=not retained_places)
    assert {"SIMPSON", "Wetzel", "nameless waterfall", "00007041776", "999887722", "E40404040404"} <= needles
    assert ("SGH SPRINGFIELD GENERAL HOSPITAL" in needles) is not retained_places
    assert leaks(out, needles) == []
    if retained_places:  # kept as asked, and verify did not call them leaks (RetainInstitutionIdent)
        kept = {str(pydicom.dcmread(p, stop_before_pixels=True).get("InstitutionName", "")) for p in outputs}
        assert "SGH SPRINGFIELD GENERAL HOSPITAL" in kept

    new_errors = new_dciodvfy_errors(originals, out, uid_map)
    assert len(new_errors) == DICOM_FILES
    assert {path: errors for path, errors in new_errors.items() if errors} == {}

    again = cli("anonymize", "--verify", out, "--original", originals)  # the standalone check agrees
    assert again.returncode == 0 and "OK: no leaks" in again.stdout, again.stdout + again.stderr
    assert_clean(again)


def test_burned_in_images_are_left_out_by_default(originals: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("anonymize", "--path", originals, "--out", out, *NEW, "--verify")
    assert proc.returncode == 1  # readable instances were not copied
    assert_clean(proc)
    report = proc.stdout + proc.stderr
    burned = {Path(line.split(": ")[1]).name for line in report.splitlines() if "burned-in annotation" in line}
    assert burned == BURNED_IN
    written = DICOM_FILES - len(BURNED_IN)
    assert f"anonymized {written} of {DICOM_FILES + len(NOT_DICOM)} files" in proc.stdout
    assert f"verify: {written} files checked, OK: no leaks" in proc.stdout
    assert len(list(out.rglob("*.dcm"))) == written
    assert leaks(out, identifiers(originals)) == []


def test_verify_names_leaks_written_the_way_these_files_write_names(originals: Path, tmp_path: Path) -> None:
    """'Wetzel, James^Chase' and 'nameless waterfall' (no ^): either, planted in an output, is a leak."""
    source = tmp_path / "in"
    source.mkdir()
    for name in ("animals/cat.dcm", "dicom-cookies/image1.dcm", "ultrasounds/RGB_IMAGE.dcm"):
        shutil.copy(originals / name, source / Path(name).name)
    out = tmp_path / "out"
    assert cli("anonymize", "--path", source, "--out", out, *NEW, "--verify").returncode == 0
    outputs = sorted(out.rglob("*.dcm"))
    planted = [("OperatorsName", "WETZEL^JAMES"), ("StudyDescription", "follow-up of nameless waterfall"),
               ("PerformingPhysicianName", "Waterfall^N"), ("ImageComments", "ZZZDOWNTIME MARY")]
    for path, (keyword, value) in zip(outputs, planted, strict=False):
        ds = pydicom.dcmread(path)
        setattr(ds, keyword, value)
        ds.save_as(path)
    proc = cli("anonymize", "--verify", out, "--original", source)
    assert proc.returncode == 1, proc.stdout
    leaked = [line for line in proc.stdout.splitlines() if line.startswith("LEAK")]
    for keyword, value in planted[: len(outputs)]:
        assert any(f"{keyword}: name in {value!r}" in line for line in leaked), (keyword, proc.stdout)


def test_show_json_lists_every_file_in_the_tree_or_as_unreadable(originals: Path) -> None:
    proc = cli("show", "--path", originals, "--format", "json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    in_tree: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "sop_instance_uid" in node and "path" in node:
                in_tree.add(Path(node["path"]).name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["patients"])
    unreadable = {Path(u["path"]).name: u["reason"] for u in doc["unreadable"]}
    assert set(unreadable) == NOT_DICOM and all(unreadable.values())
    warnings = " ".join(w for p in doc["patients"] for w in p.get("warnings", []))
    # ctbrain2.dcm repeats ctbrain1.dcm's SOP Instance UID: the tree keeps the first and says so
    assert "duplicate SOP Instance UID" in warnings and "ctbrain2.dcm" in warnings
    dicom_names = {p.name for p in originals.rglob("*.dcm")}
    assert in_tree == dicom_names - {"ctbrain2.dcm"}
    assert doc["stats"]["files_scanned"] == DICOM_FILES + len(NOT_DICOM)


def test_search_matches_every_dicom_file_and_lists_the_rest(originals: Path) -> None:
    proc = cli("search", "--path", originals, "--tag", "(0010,0010)=?", "--format", "json", "--noCache")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    matched = {Path(m["path"]).name: m["values"] for m in doc["matches"]}
    assert set(matched) == {p.name for p in originals.rglob("*.dcm")}
    assert matched["cat.dcm"]["(0010,0010)"] == ["Wetzel, James^Chase"]
    stats = doc["statistics"]
    unreadable = {Path(u["path"]).name: u["reason"] for u in stats["unreadable_files"]}
    assert set(unreadable) == NOT_DICOM and all(unreadable.values())
    nested = cli("search", "--path", originals, "--tag", "(0040,0275)/(0008,0050)=999887722", "--format", "json",
                 "--noCache")
    assert nested.returncode == 0, nested.stderr
    assert {Path(m["path"]).name for m in json.loads(nested.stdout)["matches"]} == {"ctbrain1.dcm", "ctbrain2.dcm"}
