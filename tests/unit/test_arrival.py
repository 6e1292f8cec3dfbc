"""Writing a received data set: batched writes that survive short writes, no half file left behind,
a second copy compared and never replacing the first, the header kept for a summary from memory."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.archive.summarize import read_summary, summary_from_head
from dicomtools.core.net import arrival
from dicomtools.core.net.arrival import (
    HEAD_FIRST,
    HEAD_KEPT,
    file_meta,
    hold,
    report_written,
    write_arrival,
    write_new,
)
from tests.pydicom_files import pydicom_corpus

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _chunks() -> list[bytes | memoryview]:
    return [b"a" * 10, b"", memoryview(b"b" * (700 * 1024)), b"c" * (600 * 1024), b"d"]


def test_write_new_writes_every_byte_and_refuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "x.dcm"
    assert write_new(target, iter(_chunks())) == target.stat().st_mtime_ns
    assert target.read_bytes() == b"".join(bytes(c) for c in _chunks())
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert write_new(target, iter([b"other"])) is None
    assert target.read_bytes()[:10] == b"a" * 10


def test_write_new_resumes_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, parts: list[bytes | memoryview]) -> int:  # a third of the first buffer each call
        first = memoryview(parts[0])
        return real(fd, [first[: max(1, len(first) // 3)]]) if len(first) else real(fd, parts[:1])

    monkeypatch.setattr(os, "writev", short)
    target = tmp_path / "short.dcm"
    write_new(target, iter(_chunks()))
    assert target.read_bytes() == b"".join(bytes(c) for c in _chunks())


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, parts: list[bytes | memoryview]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(OSError, match="No space"):
        write_new(tmp_path / "x.dcm", iter([b"data"]))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_fragments_leave_no_file(tmp_path: Path) -> None:
    def frags() -> Iterator[bytes]:
        yield b"x" * (2 * 1024 * 1024)  # one batch written already
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_new(tmp_path / "x.dcm", frags())
    assert list(tmp_path.iterdir()) == []


def test_hold_stops_at_the_limit_and_returns_the_rest() -> None:
    parts = [b"meta"]
    assert hold(parts, iter([b"1" * 10, b"2" * 10]), limit=100) is None
    assert parts == [b"meta", b"1" * 10, b"2" * 10]
    parts = [b"meta"]
    rest = hold(parts, iter([b"1" * 60, b"2" * 60, b"3" * 60]), limit=100)
    assert rest is not None and parts == [b"meta", b"1" * 60, b"2" * 60]
    assert list(rest) == [b"3" * 60]


def _dataset_bytes(name: str) -> tuple[bytes, str, str]:
    """The data set part of a pydicom test file, re-encoded as Explicit VR LE, and its SOP class / UID."""
    path = get_testdata_file(name)
    assert isinstance(path, str)
    ds = dcmread(path)
    raw = Path(path).read_bytes()
    # the data set follows the file meta group: preamble (128) + DICM (4) + group length element + group
    meta_len = int.from_bytes(raw[140:144], "little")
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    return raw[144 + meta_len:], str(ds.SOPClassUID), str(ds.SOPInstanceUID)


@pytest.mark.parametrize("rest_split", [None, 1000])
def test_write_arrival_head_gives_the_summary_of_the_written_file(tmp_path: Path, rest_split: int | None) -> None:
    data, cls, uid = _dataset_bytes("CT_small.dcm")
    parts = [file_meta(cls, uid, EXPLICIT, "ORTHANC")]
    rest = None
    if rest_split is None:
        parts.append(data)
    else:  # streamed: the first fragment held, the others written as they come
        parts.append(data[:rest_split])
        rest = iter([data[rest_split:]])
    target = tmp_path / f"{uid}.dcm"
    done = write_arrival(target, parts, rest, scratch=True)
    assert done.how == "new" and done.size == target.stat().st_size
    assert done.head == target.read_bytes()[: None if rest is None else HEAD_KEPT]
    assert dcmread(target).SOPInstanceUID == uid  # a DICOM file pydicom reads
    assert done.mtime_ns is not None
    from_memory = summary_from_head(str(target), done.head, done.size, done.mtime_ns)
    assert from_memory is not None and from_memory == read_summary(str(target))


def test_write_arrival_second_copy_is_compared_not_written(tmp_path: Path) -> None:
    target = tmp_path / "1.2.3.dcm"
    assert write_arrival(target, [b"first"], None, scratch=True).how == "new"
    assert write_arrival(target, [b"first"], None, scratch=True).how == "same"
    assert write_arrival(target, [b"other"], None, scratch=True).how == "differs"
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.2.3.dcm"]


def test_outside_a_scratch_folder_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(path: Path) -> int:
        raise AssertionError("write_new used outside a scratch folder")

    monkeypatch.setattr(arrival, "_create", never)
    done = write_arrival(tmp_path / "a.dcm", [b"x", b"y"], None, scratch=False)
    assert done.how == "new" and (tmp_path / "a.dcm").read_bytes() == b"xy"


def test_a_big_held_arrival_keeps_it_all_a_streamed_one_its_head(tmp_path: Path) -> None:
    parts = [b"m" * 300, os.urandom(700 * 1024), os.urandom(900 * 1024), os.urandom(5)]
    whole = b"".join(parts)
    held = write_arrival(tmp_path / "held.dcm", parts, None, scratch=True)
    assert (tmp_path / "held.dcm").read_bytes() == whole and held.size == len(whole)
    assert held.head == whole[:300 + 700 * 1024]  # whole fragments up to HEAD_FIRST
    offered: list[bytes] = []

    def short(path: str, head: bytes, size: int, mtime_ns: int) -> bool:
        offered.append(head)
        return len(head) == size  # "the header runs on": the first bytes are not enough

    report_written(short, str(tmp_path / "held.dcm"), held)
    assert offered == [held.head, whole]  # a header past HEAD_KEPT is still read from memory
    streamed = write_arrival(tmp_path / "streamed.dcm", parts[:2], iter(parts[2:]), scratch=True)
    assert (tmp_path / "streamed.dcm").read_bytes() == whole and streamed.size == len(whole)
    assert streamed.head == whole[:HEAD_KEPT]


@pytest.mark.parametrize(("head_first", "fragment"), [(HEAD_FIRST, 16384), (1024, 512)])
def test_held_arrivals_summarised_from_their_first_bytes_as_from_all_of_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head_first: int, fragment: int) -> None:
    """Every DICOM file of pydicom's corpus, received in fragments and held: the summary made from
    its first HEAD_FIRST bytes (all of them when those fall short of the header) is the one made
    from every byte, as before the head was cut, and the one read back from the written file.
    With a 1 KB HEAD_FIRST nearly every file is cut, and every header past it takes the second try."""
    monkeypatch.setattr(arrival, "HEAD_FIRST", head_first)
    compared = cut = retried = 0
    for n, path in enumerate(pydicom_corpus()):
        raw = Path(path).read_bytes()
        if raw[128:132] != b"DICM":
            continue
        try:
            ds = dcmread(path, stop_before_pixels=True)
            cls, uid, ts = str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.file_meta.TransferSyntaxUID)
        except Exception:  # noqa: BLE001 - not a data set a C-STORE could carry
            continue
        data = raw[144 + int.from_bytes(raw[140:144], "little"):]
        parts = [file_meta(cls, uid, ts, "PEER"), *(data[i:i + fragment] for i in range(0, len(data), fragment))]
        target = str(tmp_path / f"{n}.dcm")
        done = write_arrival(target, parts, None, scratch=True)
        assert done.how == "new" and done.mtime_ns is not None
        whole = Path(target).read_bytes()
        assert whole == b"".join(parts)
        got: list[InstanceSummary | None] = []

        def summarise(p: str, head: bytes, size: int, mtime_ns: int, got: list[InstanceSummary | None] = got) -> bool:
            got.append(summary_from_head(p, head, size, mtime_ns))
            return got[-1] is not None

        report_written(summarise, target, done)
        assert got[-1] == summary_from_head(target, whole, done.size, done.mtime_ns), path
        if got[-1] is not None:
            assert got[-1] == read_summary(target), path
        compared += 1
        cut += len(done.head) < len(whole)
        retried += len(got) == 2
    assert compared > 100 and cut >= 8  # enough files, and of them bigger than HEAD_FIRST
    if head_first < 4096:
        assert cut > 100 and retried > 20
