"""Per-folder snapshots of the index cache: a warm scan reads no file, and no change slips past them.

Each test first scans twice (the second scan must be answered by the
snapshots alone: no file read, no per-file row consulted), then changes the
archive the way a user or a copy tool would, and checks that exactly the
changed files are read again and the result shows the change.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pydicom
import pytest

import dicomtools.core.archive.scan as scan_mod
from dicomtools.core.archive.cache import IndexCache
from dicomtools.core.archive.model import BeamInfo
from dicomtools.core.archive.snapshot import FolderCache
from dicomtools.core.phantom import generate


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    generate(root, patients=2, seed=11)
    return root


class RowCountingCache(IndexCache):
    """A real index cache that records which paths went to the per-file rows."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.per_file: list[str] = []

    def lookup(self, paths):  # type: ignore[no-untyped-def]
        self.per_file.extend(paths)
        return super().lookup(paths)


def _warm(archive: Path, cache: IndexCache, counting: list[str]) -> scan_mod.ScanResult:
    first = scan_mod.scan(str(archive), cache=cache, workers=1)
    counting.clear()
    second = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == []
    assert sorted(i.path for i in second.instances) == sorted(i.path for i in first.instances)
    return second


def _plan(archive: Path) -> Path:
    return next(p for p in sorted(archive.rglob("RP*")) if p.is_file())


def _relabel(path: Path, label: str) -> bytes:
    """The file's bytes with its plan label replaced by one of the same length (same file size)."""
    data = path.read_bytes()
    old = pydicom.dcmread(path).RTPlanLabel
    new = (label * len(old))[: len(old)]
    assert new != old
    return data.replace(old.encode(), new.encode())


def test_warm_scan_uses_only_snapshots(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = RowCountingCache(tmp_path / "cache")
    scan_mod.scan(str(archive), cache=cache, workers=1)
    cache.per_file.clear()
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == [] and cache.per_file == []
    assert len(again.instances) > 40
    assert {p.patient_id for p in again.instances} == {"PHANTOM-001", "PHANTOM-002"}


def test_replaced_file_with_same_size_and_mtime_is_reread(
    archive: Path, tmp_path: Path, counting: list[str]
) -> None:
    """A copy tool keeping size and mtime (cp -p, rsync -t) replaces the inode: that is a change."""
    cache = IndexCache(tmp_path / "cache")
    _warm(archive, cache, counting)
    plan = _plan(archive)
    st = plan.stat()
    fresh = plan.with_name("incoming.tmp")
    fresh.write_bytes(_relabel(plan, "Q"))
    os.utime(fresh, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(fresh, plan)
    now = plan.stat()
    assert (now.st_size, now.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == [str(plan)]
    assert any(set(i.plan_label) == {"Q"} for i in again.instances if i.path == str(plan))


def test_rewrite_in_place_with_mtime_put_back_is_reread(
    archive: Path, tmp_path: Path, counting: list[str]
) -> None:
    """Same inode, same size, mtime set back (touch -r): only the ctime shows the write."""
    cache = IndexCache(tmp_path / "cache")
    _warm(archive, cache, counting)
    plan = _plan(archive)
    st = plan.stat()
    plan.write_bytes(_relabel(plan, "W"))
    os.utime(plan, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = plan.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == [str(plan)]
    assert any(set(i.plan_label) == {"W"} for i in again.instances if i.path == str(plan))


def test_added_and_deleted_files_touch_only_their_folder(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = RowCountingCache(tmp_path / "cache")
    before = _warm(archive, cache, counting)
    plan = _plan(archive)
    added = plan.with_name("added-copy.dcm")
    added.write_bytes(plan.read_bytes())
    victim = next(p for p in sorted(plan.parent.iterdir()) if p.is_file() and p not in (plan, added))
    victim.unlink()
    cache.per_file.clear()
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == [str(added)]
    assert all(os.path.dirname(p) == str(plan.parent) for p in cache.per_file)
    paths = {i.path for i in again.instances} | {u.path for u in again.unreadable}
    assert str(added) in paths and str(victim) not in paths
    assert len(again.instances) == len(before.instances)  # one in, one out
    # and the folder's new snapshot holds again: a third scan reads nothing
    counting.clear()
    scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == []


def test_damaged_snapshot_is_a_miss_not_an_error(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = IndexCache(tmp_path / "cache")
    before = _warm(archive, cache, counting)
    cache.conn.execute("UPDATE folders SET snapshot = x'80049500'")
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == []  # the per-file rows still answer
    assert sorted(i.path for i in again.instances) == sorted(i.path for i in before.instances)


def test_snapshots_of_another_schema_are_never_trusted(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    folder = tmp_path / "cache"
    cache = IndexCache(folder)
    before = _warm(archive, cache, counting)
    cache.close()
    conn = sqlite3.connect(folder / "index.sqlite")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    counting.clear()
    again = scan_mod.scan(str(archive), cache=IndexCache(folder), workers=1)
    assert len(counting) == before.files_seen  # everything read again
    assert len(again.instances) == len(before.instances)


def test_name_pattern_keeps_its_own_snapshot(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    cache = IndexCache(tmp_path / "cache")
    everything = _warm(archive, cache, counting)
    plans = scan_mod.scan(str(archive), "RP*", cache=cache, workers=1)
    assert plans.instances and all(os.path.basename(i.path).startswith("RP") for i in plans.instances)
    counting.clear()
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    assert counting == []
    assert len(again.instances) == len(everything.instances)


def test_search_snapshot_notices_a_same_size_same_mtime_replacement(archive: Path, tmp_path: Path) -> None:
    from dicomtools.core.search.folder import search

    cache = IndexCache(tmp_path / "cache")
    expression = "(300A,0002)=?"
    first = search(str(archive), [expression], workers=1, cache=cache)
    assert search(str(archive), [expression], workers=1, cache=cache).statistics == first.statistics
    assert cache.conn.execute("SELECT count(*) FROM folders WHERE key LIKE '%search%'").fetchone()[0] > 0
    plan = _plan(archive)
    st = plan.stat()
    fresh = plan.with_name("incoming.tmp")
    fresh.write_bytes(_relabel(plan, "Q"))
    os.utime(fresh, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(fresh, plan)
    again = search(str(archive), [expression], workers=1, cache=cache)
    labels = {m.path: m.values[expression.split("=")[0]] for m in again.matches}
    assert set(labels[str(plan)][0]) == {"Q"}
    # a different expression is never answered from this expression's snapshot
    other = search(str(archive), ["(0010,0020)=?"], workers=1, cache=cache)
    assert set(other.statistics["(0010,0020)"]) == {"PHANTOM-001", "PHANTOM-002"}


def test_snapshot_gives_back_every_field_of_every_summary(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    """Plans with beams, structure sets, records, images: the warm summaries equal a fresh read's."""
    cold = scan_mod.scan(str(archive), workers=1)
    warm = _warm(archive, IndexCache(tmp_path / "cache"), counting)
    key = lambda r: sorted(r.instances, key=lambda i: i.path)  # noqa: E731
    assert key(warm) == key(cold)
    assert any(i.beams for i in warm.instances) and any(i.referenced_series for i in warm.instances)
    # the blob holds plain tuples (marshal carries no named tuple): the beams come back as BeamInfo
    assert {type(b) for i in warm.instances for b in i.beams} == {BeamInfo}
    assert sorted(warm.unreadable, key=lambda u: u.path) == sorted(cold.unreadable, key=lambda u: u.path)


def test_undecodable_file_name_keeps_its_snapshot(archive: Path, tmp_path: Path, counting: list[str]) -> None:
    """A name that is not UTF-8 (a copy from an old Windows share) still round-trips through the blob."""
    plan = _plan(archive)
    odd = os.path.join(os.fsencode(plan.parent), b"plan-\xff\xfe.dcm")
    with open(odd, "wb") as fh:
        fh.write(plan.read_bytes())
    warm = _warm(archive, IndexCache(tmp_path / "cache"), counting)
    assert os.fsdecode(odd) in {i.path for i in warm.instances}
    from dicomtools.core.search.folder import search

    cache = IndexCache(tmp_path / "cache-search")
    for _ in range(2):
        found = search(str(archive), ["(300A,0002)=?"], workers=1, cache=cache)
        assert os.fsdecode(odd) in {m.path for m in found.matches}


def test_snapshots_of_deleted_folders_are_pruned(archive: Path, tmp_path: Path) -> None:
    """A deleted patient folder leaves neither file rows nor folder snapshots behind; others stay."""
    import shutil

    cache = IndexCache(tmp_path / "cache")
    scan_mod.scan(str(archive), cache=cache, workers=1)
    db = tmp_path / "cache" / "index.sqlite"

    def folders() -> set[str]:
        with sqlite3.connect(db) as conn:
            return {k.split("\0", 1)[0] for (k,) in conn.execute("SELECT key FROM folders")}

    before = folders()
    victim = sorted(p for p in archive.iterdir() if p.is_dir())[0]
    inside = {f for f in before if f == str(victim) or f.startswith(str(victim) + os.sep)}
    assert inside, before
    shutil.rmtree(victim)
    again = scan_mod.scan(str(archive), cache=cache, workers=1)
    cache.close()
    assert folders() == before - inside
    with sqlite3.connect(db) as conn:
        rows = {p for (p,) in conn.execute("SELECT path FROM files")}
    assert rows and not any(p.startswith(str(victim) + os.sep) for p in rows)
    assert {i.path for i in again.instances} <= rows


@pytest.mark.parametrize("root", [".", "archive", "./archive/"])
def test_relative_roots_are_answered_by_snapshots(
    root: str, archive: Path, tmp_path: Path, counting: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are stat-ed relative to their open folder: a relative root (files directly in the
    working folder too) must give the same stamps as the walk's paths."""
    (archive / "top-level-plan.dcm").write_bytes(_plan(archive).read_bytes())
    monkeypatch.chdir(archive if root == "." else archive.parent)
    warm = _warm(Path(root), IndexCache(tmp_path / "cache"), counting)
    assert any(os.path.basename(i.path) == "top-level-plan.dcm" for i in warm.instances)


def test_a_row_marshal_cannot_carry_leaves_the_folder_unsnapshotted(archive: Path, tmp_path: Path) -> None:
    """A result holding a value of no plain type is not stored: that folder is simply read next time."""
    paths = sorted(str(p) for p in _plan(archive).parent.iterdir() if p.is_file())

    def stored(value: object) -> int:
        cache = IndexCache(tmp_path / f"cache-{type(value).__name__}")
        folders = FolderCache(cache, "", encode_row=lambda item, stamp: (value, 1), varying=())
        found, rest = folders.lookup([(str(_plan(archive).parent), paths)])
        assert found == {} and rest == paths
        folders.save(dict.fromkeys(paths, "result"))
        return int(cache.conn.execute("SELECT count(*) FROM folders").fetchone()[0])

    assert stored("plain text") == 1  # control: a plain row is stored
    assert stored(object()) == 0
