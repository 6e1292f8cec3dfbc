"""The scanner on messy real input: it reports, it never crashes, it never reads pixels."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.scan import scan
from dicomtools.core.archive.summarize import _read_with_pydicom, read_summary
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.progress import RecordingSink


def test_phantom_broken_files_are_reported(phantom: PhantomManifest) -> None:
    result = scan(phantom.root, workers=1)
    bad = {os.path.relpath(u.path, phantom.root).replace(os.sep, "/"): u.reason for u in result.unreadable}
    assert set(bad) == set(phantom.broken_files)
    reasons = {phantom.broken_files[k]: v for k, v in bad.items()}
    assert reasons["empty"] == "empty file"
    assert reasons["text"].startswith("not DICOM: text")
    assert reasons["jpeg"].startswith("not DICOM: JPEG")
    assert reasons["truncated-header"].startswith("truncated DICOM header")
    assert reasons["dicomdir"].startswith("DICOMDIR")
    assert {i.sop_instance_uid for i in result.instances} == {f.sop_uid for f in phantom.files.values()}


def test_truncated_pixels_flagged_but_readable(phantom: PhantomManifest) -> None:
    for rel in phantom.truncated_pixel_files:
        s = read_summary(os.path.join(phantom.root, rel))
        assert isinstance(s, InstanceSummary) and s.truncated
    ok = read_summary(os.path.join(phantom.root, next(iter(phantom.files))))
    assert isinstance(ok, InstanceSummary) and not ok.truncated


def test_no_preamble_file_reads(phantom: PhantomManifest) -> None:
    assert phantom.no_preamble_files
    for rel in phantom.no_preamble_files:
        path = os.path.join(phantom.root, rel)
        assert open(path, "rb").read(132)[128:132] != b"DICM"
        s = read_summary(path)
        assert isinstance(s, InstanceSummary)
        assert s.sop_instance_uid == phantom.files[rel].sop_uid


def test_fast_reader_agrees_with_pydicom_on_every_file(phantom: PhantomManifest) -> None:
    """The fast path may only be faster: same summary as the general pydicom reader."""
    for rel in phantom.files:
        path = os.path.join(phantom.root, rel)
        fast, slow = read_summary(path), _read_with_pydicom(path)
        assert isinstance(fast, InstanceSummary) and isinstance(slow, InstanceSummary)
        for name in InstanceSummary.__slots__:
            if name in ("size", "mtime_ns", "truncated"):
                continue
            assert getattr(fast, name) == getattr(slow, name), (rel, name)


@pytest.mark.parametrize("name", ["rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "CT_small.dcm", "MR_small.dcm"])
def test_pydicom_bundled_files(name: str) -> None:
    path = get_testdata_file(name)
    s = read_summary(path)
    assert isinstance(s, InstanceSummary)
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    assert s.sop_instance_uid == ds.SOPInstanceUID
    assert s.patient_id == str(ds.PatientID)


def test_truncated_plan_header_is_unreadable() -> None:
    s = read_summary(get_testdata_file("rtplan_truncated.dcm"))
    assert isinstance(s, UnreadableFile) and "truncated" in s.reason


def test_cut_at_every_offset_never_raises(tmp_path: Path) -> None:
    data = open(get_testdata_file("rtplan.dcm"), "rb").read()
    beam_seq = data.find(bytes.fromhex("0a30b000"))  # (300A,00B0) Beam Sequence, little endian
    assert beam_seq > 0
    target = tmp_path / "cut.dcm"
    for n in range(0, len(data), 3):
        target.write_bytes(data[:n])
        result = read_summary(str(target))
        assert isinstance(result, InstanceSummary | UnreadableFile)
        # a cut inside the Beam Sequence can never pass for a complete file
        if beam_seq < n < beam_seq + 200:
            assert isinstance(result, UnreadableFile), n


def test_symlink_loop_and_permissions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "a" / "ct.dcm")
    os.symlink(root, root / "a" / "loop")
    locked = root / "locked.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), locked)
    locked.chmod(0)
    sink = RecordingSink()
    try:
        result = scan(str(root), sink=sink, workers=1)
    finally:
        locked.chmod(0o644)
    reasons = [u.reason for u in result.unreadable]
    assert any("symlink loop" in r for r in reasons)
    assert len(result.instances) >= 1
    if os.geteuid() != 0:  # root reads a 000 file anyway
        assert any("permission" in r.lower() for r in reasons)
    kinds = sink.kinds()
    assert kinds[0] == "started" and kinds[-1] == "finished"


def test_search_pattern_is_case_insensitive(phantom: PhantomManifest) -> None:
    upper = scan(phantom.root, "*.DCM", workers=1)
    lower = scan(phantom.root, "*.dcm", workers=1)
    assert {i.path for i in upper.instances} == {i.path for i in lower.instances}
    everything = scan(phantom.root, workers=1)
    assert len(lower.instances) < len(everything.instances)  # files without extension exist
    plans = scan(phantom.root, "RP*", workers=1)
    assert plans.instances and all(i.is_plan for i in plans.instances)


def test_process_pool_gives_the_same_result(phantom: PhantomManifest, monkeypatch: pytest.MonkeyPatch) -> None:
    import dicomtools.core.archive.scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(scan_mod, "FORK_THRESHOLD", 1 << 30)  # the pool, not the plain forked readers
    monkeypatch.setattr(scan_mod, "BATCH_SIZE", 16)
    pooled = scan_mod.scan(phantom.root, workers=2)
    single = scan_mod.scan(phantom.root, workers=1)
    assert sorted(i.sop_instance_uid for i in pooled.instances) == sorted(i.sop_instance_uid for i in single.instances)
    assert len(pooled.unreadable) == len(single.unreadable)


def test_walk_skips_only_our_own_artefacts(tmp_path: Path) -> None:
    from dicomtools.core.archive.walk import iter_files

    ct = get_testdata_file("CT_small.dcm")
    assert ct is not None
    for name in (".part-1234.tmp", ".dicomtools-status", ".hidden.dcm", "a.DCM", "b"):
        shutil.copy(ct, tmp_path / name)
    (tmp_path / "sub").mkdir()
    shutil.copy(ct, tmp_path / "sub" / ".part-x.tmp")
    shutil.copy(ct, tmp_path / "sub" / "c.dcm")
    names = [os.path.relpath(p, tmp_path) for p in iter_files(str(tmp_path))]
    assert names == [".hidden.dcm", "a.DCM", "b", os.path.join("sub", "c.dcm")]
    assert [os.path.basename(p) for p in iter_files(str(tmp_path), "*.dcm")] == [".hidden.dcm", "a.DCM", "c.dcm"]
