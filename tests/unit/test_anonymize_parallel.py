"""A parallel anonymize run gives exactly what a serial one gives: same files, bytes, report and UID map.

Inputs nobody here wrote (pydicom's test files and charset files, the deid-data
package) and the phantom with several patients, plus hand-made files for the
two things a worker can guess wrong: a patient whose first file is not copied
(burned-in), which moves the ``-2`` suffixes, and a retained AE title naming a
person met in an earlier file of another process. Each runs once serial and
once with worker processes, with the same salt.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import deid_data
import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtools.core.anonymize import parallel as par
from dicomtools.core.anonymize.fileanon import Outcome
from dicomtools.core.anonymize.run import AnonymizeReport, AnonymizeSettings, anonymize_files
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.archive.walk import iter_files
from dicomtools.core.phantom import generate
from dicomtools.core.progress import CancelToken, ProgressEvent

SALT = bytes(range(32))
CT = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Result:
    files: dict[str, bytes]  # relative path -> bytes
    uid_map: str
    report: dict[str, Any]
    worker_pids: set[int]


def _report(rep: AnonymizeReport, out: Path) -> dict[str, Any]:
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731
    verify = None
    if rep.verify is not None:
        verify = ([(rel(f.path) if os.path.isabs(f.path) else f.path, f.element, f.keyword, f.category, f.level, f.value)
                   for f in rep.verify.findings], rep.verify.files_checked, rep.verify.ok)
    return {
        "written": [(w.source, rel(w.dest), w.sop_instance_uid, w.patient_id) for w in rep.written],
        "skipped": [(s.path, s.reason) for s in rep.skipped],
        "failed": [(s.path, s.reason) for s in rep.failed],
        "burned_in_kept": rep.burned_in_kept, "patients": rep.patients, "files_seen": rep.files_seen,
        "cancelled": rep.cancelled, "options": rep.options, "profile": rep.profile, "verify": verify,
    }


def run(paths: list[str], root: Path, work: Path, parallel: bool, monkeypatch: pytest.MonkeyPatch,
        layout: str = "tree", start_map: Path | None = None, **settings: Any) -> Result:
    if threading.active_count() > 1:  # a thread another test left: fork anyway, as a single-threaded CLI would
        import dicomtools.core.archive.pool as pool

        monkeypatch.setattr(pool, "start_method", lambda available: "fork")
    name = "parallel" if parallel else "serial"
    work.mkdir(parents=True, exist_ok=True)
    out, map_path = work / f"out-{name}", work / f"map-{name}.csv"
    if start_map is not None:  # continue a saved map: loaded from the file, saved over it
        shutil.copy(start_map, map_path)
    else:
        settings["uid_map"] = UidMap(salt=SALT)
    pids: set[int] = set()
    settle = par.settle

    def spy(out_: Outcome, *args: Any) -> Outcome:
        pids.add(out_.pid)
        return settle(out_, *args)

    monkeypatch.setattr(par, "settle", spy)
    s = AnonymizeSettings("ANON1", "ANON^ONE", uid_map_path=str(map_path), **settings)
    rep = anonymize_files(paths, str(out), s, root=str(root), layout=layout, parallel=parallel)
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return Result(files, map_path.read_text(), _report(rep, out), pids - {0, os.getpid()})


def both(paths: list[str], root: Path, work: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Result:
    serial = run(paths, root, work, False, monkeypatch, **dict(settings))
    parallel = run(paths, root, work, True, monkeypatch, **dict(settings))
    assert not serial.worker_pids
    assert parallel.worker_pids, "no file was anonymized in a worker process"
    assert sorted(parallel.files) == sorted(serial.files)
    for rel, data in serial.files.items():
        assert parallel.files[rel] == data, rel
    assert parallel.report == serial.report
    assert parallel.uid_map == serial.uid_map
    assert serial.files and serial.report["written"]
    return serial


def test_pydicom_test_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "in"
    shutil.copytree(Path(get_testdata_file("CT_small.dcm")).parent, root / "test_files")
    shutil.copytree(Path(get_charset_files("chrX1.dcm")[0]).parent, root / "charset_files")
    paths = list(iter_files(str(root)))
    assert len(paths) > 150
    got = both(paths, root, tmp_path, monkeypatch)
    assert got.report["skipped"]  # text files, DICOMDIRs, files without SOP UIDs
    assert len(got.report["patients"]) > 5


def test_deid_data_with_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "in"
    shutil.copytree(Path(deid_data.__file__).parent / "data", root, ignore=shutil.ignore_patterns("__pycache__"))
    paths = list(iter_files(str(root)))
    got = both(paths, root, tmp_path, monkeypatch, verify=True)
    assert got.report["verify"] is not None and got.report["verify"][2], "verify found a leak"
    assert len(got.report["failed"]) == 2  # burned-in images (the third one sits in a zip here)


def test_phantom_patients_with_kept_burned_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = generate(tmp_path / "in", patients=3, seed=5)
    paths = list(iter_files(manifest.root))
    got = both(paths, Path(manifest.root), tmp_path, monkeypatch, verify=True, keep_burned_in=True)
    assert len(got.report["patients"]) == 3 and got.report["verify"][2]


def test_phantom_in_the_input_layout_continuing_a_saved_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = generate(tmp_path / "first", patients=2, seed=7)
    saved = tmp_path / "first.csv"
    anonymize_files(list(iter_files(first.root)), str(tmp_path / "first-out"),
                    AnonymizeSettings("ANON1", "ANON^ONE", uid_map_path=str(saved)), root=first.root, parallel=False)
    second = generate(tmp_path / "in", patients=4, seed=7)  # two patients of the first batch, two new ones
    paths = list(iter_files(second.root))
    got = both(paths, Path(second.root), tmp_path, monkeypatch, layout="keep", start_map=saved)
    assert len(got.report["patients"]) == 4
    assert got.uid_map.startswith(saved.read_text()[:200])  # the same salt, continued


def _file(path: Path, pid: str, name: str, *, operator: str = "", station: str = "", burned_in: bool = False) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = "CT", pid, name
    if operator:
        ds.OperatorsName = operator
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CT, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if station:
        ds.file_meta.SourceApplicationEntityTitle = station
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_what_a_worker_guesses_wrong_is_redone_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=par.__name__)
    root = tmp_path / "in"
    # patient A's first file is not copied (burned-in): the header pass sees A first, a serial run names B first
    _file(root / "a00.dcm", "PAT-A", "ALPHA^ANN", burned_in=True)
    for i in range(1, 40):
        _file(root / f"b{i:02}.dcm", "PAT-B", "BRAVO^BEN", operator="WETHERBY^OLGA")
    for i in range(40):  # stations named after the operator of B's files, in files of A
        _file(root / f"c{i:02}.dcm", "PAT-A", "ALPHA^ANN", station="WETHERBY_CT")
    paths = sorted(str(p) for p in root.iterdir())
    got = both(paths, root, tmp_path, monkeypatch)
    assert got.report["patients"] == ["ANON1", "ANON1-2"]
    assert "anonymized again in order" in caplog.text  # the guesses were wrong, the output is not
    one = pydicom.dcmread(tmp_path / "out-serial" / next(r for r in got.files if r.startswith("ANON1-2/")))
    assert one.PatientID == "ANON1-2"
    assert "WETHERBY" not in one.file_meta.SourceApplicationEntityTitle


def test_cancel_stops_the_workers_and_leaves_only_complete_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if threading.active_count() > 1:  # a thread another test left: fork anyway, as a single-threaded CLI would
        import dicomtools.core.archive.pool as pool

        monkeypatch.setattr(pool, "start_method", lambda available: "fork")
    pids: set[int] = set()
    settle = par.settle

    def spy(out_: Outcome, *args: Any) -> Outcome:
        pids.add(out_.pid)
        return settle(out_, *args)

    monkeypatch.setattr(par, "settle", spy)
    manifest = generate(tmp_path / "in", patients=2, seed=3, ct_slices=60)
    paths = list(iter_files(manifest.root))
    cancel = CancelToken()
    done: list[int] = []

    def sink(event: ProgressEvent) -> None:
        if event.kind == "advanced":
            done.append(event.done)
            if len(done) == 5:
                cancel.cancel()

    out = tmp_path / "out"
    rep = anonymize_files(paths, str(out), AnonymizeSettings("ANON1", "ANON^ONE"), root=manifest.root,
                          sink=sink, cancel=cancel, parallel=True)
    assert rep.cancelled
    assert pids - {0, os.getpid()}, "no worker process ran"
    assert done == sorted(done) and len(set(done)) == len(done)
    assert 5 <= len(done) < len(paths)
    on_disk = sorted(str(p) for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(w.dest for w in rep.written)  # no staging left, nothing unreported
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    for path in on_disk:
        assert pydicom.dcmread(path).PatientIdentityRemoved == "YES"


def _mixed_patients(root: Path) -> list[str]:
    for i in range(30):  # three patients interleaved, B's first file burned-in (not copied)
        pid, name = [("PAT-A", "ALPHA^ANN"), ("PAT-B", "BRAVO^BEN"), ("PAT-C", "CHARLIE^CY")][i % 3]
        _file(root / f"f{i:02}.dcm", pid, name, burned_in=i == 1, operator="WETHERBY^OLGA" if i == 7 else "",
              station="WETHERBY_CT" if i > 20 else "")
    return sorted(str(p) for p in root.iterdir())


def test_no_plan_or_no_pool_still_gives_the_serial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "in"
    paths = _mixed_patients(root)
    serial = run(paths, root, tmp_path / "serial", False, monkeypatch)

    def no_plan(*args: Any) -> Any:
        raise RuntimeError("header pass failed")

    with monkeypatch.context() as m:
        m.setattr(par, "preassign", no_plan)  # every process assigns patients in its own order
        guessed = run(paths, root, tmp_path / "guessed", True, monkeypatch)
    assert guessed.worker_pids

    def no_pool(*args: Any) -> Any:
        raise OSError("no processes here")

    import dicomtools.core.archive.pool as pool

    with monkeypatch.context() as m:
        m.setattr(pool, "make_pool", no_pool)
        alone = run(paths, root, tmp_path / "alone", True, monkeypatch)
    assert not alone.worker_pids
    for other in (guessed, alone):
        assert other.files == serial.files
        assert other.report == serial.report
        assert other.uid_map == serial.uid_map
    assert serial.report["patients"] == ["ANON1", "ANON1-2", "ANON1-3"]


def test_the_patient_id_guess_reads_the_usual_encodings(tmp_path: Path) -> None:
    from pydicom.uid import ImplicitVRLittleEndian

    for n, syntax in enumerate((ExplicitVRLittleEndian, ImplicitVRLittleEndian)):
        path = tmp_path / f"{n}.dcm"
        _file(path, f" ID-{n} ", "X^Y")
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(path, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian)
        assert par.patient_id_guess(str(path)) == f"ID-{n}" == str(pydicom.dcmread(path).PatientID).strip()
    big = get_testdata_file("MR_small_bigendian.dcm")  # explicit VR big endian, written by others
    assert par.patient_id_guess(big) == str(pydicom.dcmread(big).PatientID) == "4MR1"
    no_id = tmp_path / "no-id.dcm"
    _file(no_id, "X", "X^Y")
    ds = pydicom.dcmread(no_id)
    del ds.PatientID
    ds.save_as(no_id)
    assert par.patient_id_guess(str(no_id)) == ""  # the patient "" of a serial run
    (tmp_path / "notes.txt").write_text("no DICOM here")
    assert par.patient_id_guess(str(tmp_path / "notes.txt")) is None
    assert par.patient_id_guess(str(tmp_path / "missing.dcm")) is None


def test_ctrl_c_stops_the_workers_and_leaves_no_partial_output(tmp_path: Path) -> None:
    """SIGINT to the process group (a terminal's Ctrl-C) while workers run: exit 130, one line, no traceback."""
    import signal
    import subprocess
    import sys
    import time

    from dicomtools.core.phantom.bulk import write_ct_series

    src, out = tmp_path / "in", tmp_path / "out"
    write_ct_series(src / "a", 600, patient_id="BULK-A")
    write_ct_series(src / "b", 600, patient_id="BULK-B", seed=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicomtools.core", "anonymize", "--path", str(src), "--out", str(out),
         "--newPatientId", "ANON1", "--newPatientName", "ANON^ONE"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, par.ENV: "1"},  # workers even when the shared machine is busy
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # wait until files are being staged
        if any(len(os.listdir(d)) > 20 for d in out.glob(".anonymize-*")):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert list(out.iterdir()) == []  # the staging folder is gone, nothing was placed
