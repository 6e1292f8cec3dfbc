"""The index cache: hits read no file, changes and deletions are noticed, sharing and corruption are safe."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

import dicomtools.core.scan as scan_mod
from dicomtools.core.cache import IndexCache
from dicomtools.core.phantom import generate
from dicomtools.core.tree import build_forest


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    generate(root, patients=1, seed=5)
    return root


@pytest.fixture()
def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = scan_mod.read_batch

    def counted(paths: list[str]) -> list:
        seen.extend(paths)
        return real(paths)

    monkeypatch.setattr(scan_mod, "read_batch", counted)
    return seen


def test_second_scan_reads_no_file(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = IndexCache(tmp_path / "cache")
    first = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert len(counting) == first.files_seen
    counting.clear()
    second = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == []
    key = lambda r: sorted((i.path, i.sop_instance_uid, i.truncated) for i in r.instances)  # noqa: E731
    assert key(first) == key(second)
    assert sorted(u.reason for u in first.unreadable) == sorted(u.reason for u in second.unreadable)
    assert [p.patient_id for p in build_forest(second.instances)] == ["PHANTOM-001"]


def test_changed_and_deleted_files_are_reread(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = IndexCache(tmp_path / "cache")
    scan_mod.scan(str(archive), cache=cache, workers=1)
    plan_path = next(p for p in archive.rglob("RP*") if p.is_file())
    ds = pydicom.dcmread(plan_path)
    ds.RTPlanLabel = "RENAMED"
    ds.save_as(plan_path)
    victim = next(p for p in archive.rglob("CT*") if p.is_file())
    victim.unlink()
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == [str(plan_path)]
    assert "RENAMED" in {i.plan_label for i in again.instances}
    assert str(victim) not in {i.path for i in again.instances}


def test_same_size_same_second_change_is_noticed(archive: Path, tmp_path: Path) -> None:
    """mtime is compared in nanoseconds: a rewrite in the same second is still a change."""
    cache = IndexCache(tmp_path / "cache")
    scan_mod.scan(str(archive), cache=cache, workers=1)
    plan_path = next(p for p in archive.rglob("RP*") if p.is_file())
    data = plan_path.read_bytes()
    old = pydicom.dcmread(plan_path).RTPlanLabel
    new = ("Z" * len(old))[: len(old)]
    assert new != old
    plan_path.write_bytes(data.replace(old.encode(), new.encode()))
    st = plan_path.stat()
    os.utime(plan_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert new in {i.plan_label for i in again.instances}


def test_corrupt_cache_is_rebuilt(archive: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING):
        cache = IndexCache(folder)
        result = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert any("rebuilding" in r.message for r in caplog.records)
    assert len(result.instances) > 40
    assert list(folder.glob("index.sqlite.corrupt-*"))
    again = scan_mod.scan(str(archive), cache=IndexCache(folder), workers=1)
    assert len(again.instances) == len(result.instances)


def test_two_processes_share_one_cache(archive: Path, tmp_path: Path) -> None:
    copies = []
    for i in range(2):
        dst = tmp_path / f"copy{i}"
        shutil.copytree(archive, dst)
        copies.append(dst)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "shared"))
    cmd = [sys.executable, "-m", "dicomtools.core", "show", "--format", "json", "--path"]
    procs = [
        subprocess.Popen([*cmd, str(c)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for c in copies * 2
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    import json

    counts = [json.loads(o[0])["stats"]["instances"] for o in outs]
    assert len(set(counts)) == 1 and counts[0] > 40
    warm = subprocess.run([*cmd, str(copies[0])], capture_output=True, env=env, timeout=120)
    assert json.loads(warm.stdout)["stats"]["instances"] == counts[0]
