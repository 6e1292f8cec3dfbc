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
from hypothesis import given
from hypothesis import strategies as st

import dicomtools.core.archive.scan as scan_mod
from dicomtools.core.archive.cache import IndexCache, abs_paths
from dicomtools.core.phantom import generate
from dicomtools.core.tree import build_forest


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    generate(root, patients=1, seed=5)
    return root


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


@pytest.fixture()
def search_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import dicomtools.core.search.folder as search_mod

    seen: list[str] = []
    real = search_mod.search_file

    def counted(path: str, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        seen.append(path)
        return real(path, *args, **kw)

    monkeypatch.setattr(search_mod, "search_file", counted)
    return seen


@pytest.mark.parametrize("expression", ["(0010,0020)=?", "(300A,00B0)/(300A,00B2)=?"])
def test_search_uses_the_cache_and_notices_changes(
    archive: Path, tmp_path: Path, search_reads: list[str], expression: str
) -> None:
    from dicomtools.core.search.folder import search

    cache = IndexCache(tmp_path / "cache")
    first = search(str(archive), [expression], workers=1, cache=cache)
    assert len(search_reads) == first.files_scanned
    search_reads.clear()
    second = search(str(archive), [expression], workers=1, cache=cache)
    assert search_reads == []
    assert [(m.path, m.values) for m in second.matches] == [(m.path, m.values) for m in first.matches]
    assert second.dicom_files == first.dicom_files and len(second.unreadable) == len(first.unreadable)
    # change one plan, delete another file: only the changed file is read again
    plan_path = next(p for p in archive.rglob("RP.PLAN_A*") if p.is_file())
    ds = pydicom.dcmread(plan_path)
    ds.PatientID = "CHANGED-ID"
    ds.BeamSequence[0].TreatmentMachineName = "NEWMACHINE"
    ds.save_as(plan_path)
    victim = next(p for p in archive.rglob("CT*") if p.is_file())
    victim.unlink()
    search_reads.clear()
    third = search(str(archive), [expression], workers=1, cache=cache)
    assert search_reads == [str(plan_path)]
    values = {m.path: m.values for m in third.matches}
    assert str(victim) not in values
    shown = next(iter(values[str(plan_path)].values()))
    assert ("CHANGED-ID" in shown) or ("NEWMACHINE" in shown)


def test_reason_kind_decides_what_is_cached(tmp_path: Path) -> None:
    """Transient reasons (I/O, walk) are never cached; others come back with their kind."""
    from dicomtools.core.archive.cache import FileStamp, IndexCache
    from dicomtools.core.archive.model import UnreadableFile
    from dicomtools.core.archive.reasons import ReasonKind

    text, locked = tmp_path / "notes.txt", tmp_path / "locked.dcm"
    text.write_text("hello\n")
    locked.write_bytes(b"x" * 200)
    cache = IndexCache(tmp_path / "cache")
    items = [
        UnreadableFile(str(text), "not DICOM: text file", ReasonKind.TEXT),
        UnreadableFile(str(locked), "cannot read: Permission denied", ReasonKind.CANNOT_READ),
    ]
    stamps = {str(p): FileStamp.of(str(p)) for p in (text, locked)}
    cache.store(items, {k: v for k, v in stamps.items() if v is not None})
    found, _ = cache.lookup([str(text), str(locked)])
    assert found == {str(text): items[0]}
    assert ReasonKind.CANNOT_READ.transient and ReasonKind.WALK.transient and not ReasonKind.TEXT.transient


def test_cache_of_an_older_schema_is_rebuilt_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    from dicomtools.core.archive.cache import IndexCache

    folder = tmp_path / "cache"
    folder.mkdir()
    conn = sqlite3.connect(folder / "index.sqlite")
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema', '3');"
        "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " unreadable TEXT, summary BLOB);"
    )
    conn.commit()
    conn.close()
    with caplog.at_level("WARNING"):
        cache = IndexCache(folder)
        found, _ = cache.lookup([str(tmp_path / "nothing")])
    assert found == {} and not caplog.records
    assert not list(folder.glob("*.corrupt-*"))


@given(st.lists(st.lists(st.sampled_from(["a", "b", ".", "..", "", " c", "d.dcm", "é"]), max_size=5), max_size=8),
       st.booleans())
def test_abs_paths_equal_abspath(parts: list[list[str]], absolute: bool) -> None:
    """The per-folder shortcut gives exactly os.path.abspath, whatever the spelling."""
    paths = [("/" if absolute else "") + "/".join(p) for p in parts]
    assert abs_paths(paths) == [os.path.abspath(p) for p in paths]
    assert abs_paths(["/", "//x/y", "x", "./x", "x/./y", "x/../y", "/x/"]) == [
        os.path.abspath(p) for p in ["/", "//x/y", "x", "./x", "x/./y", "x/../y", "/x/"]
    ]
