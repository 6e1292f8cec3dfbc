"""Hostile and broken files: the reader reports or reads, never raises, never hangs.

Mutations are made by hypothesis from real files (pydicom's bundled RT files and
a phantom CT), so every byte position of real headers gets its turn.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.scan import scan
from dicomtools.core.archive.summarize import read_batch, read_summary
from dicomtools.core.cli.main import main
from dicomtools.core.tree import build_forest

SOURCES = {name: open(get_testdata_file(name), "rb").read() for name in ("rtplan.dcm", "rtdose.dcm", "CT_small.dcm", "rtstruct.dcm")}
HOSTILE = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(path: Path) -> InstanceSummary | UnreadableFile:
    result = read_summary(str(path))
    assert isinstance(result, InstanceSummary | UnreadableFile)
    if isinstance(result, UnreadableFile):
        assert result.reason and "\n" not in result.reason
    return result


@HOSTILE
@given(name=st.sampled_from(sorted(SOURCES)), data=st.data())
def test_truncated_anywhere(tmp_path: Path, name: str, data: st.DataObject) -> None:
    raw = SOURCES[name]
    cut = data.draw(st.integers(0, len(raw)))
    target = tmp_path / "cut.dcm"
    target.write_bytes(raw[:cut])
    _check(target)


@HOSTILE
@given(
    name=st.sampled_from(sorted(SOURCES)),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=4)), min_size=1, max_size=8),
)
def test_mutated_bytes(tmp_path: Path, name: str, edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(SOURCES[name])
    for pos, chunk in edits:
        pos %= len(raw)
        raw[pos : pos + len(chunk)] = chunk
    target = tmp_path / "mut.dcm"
    target.write_bytes(bytes(raw))
    _check(target)


@HOSTILE
@given(length=st.sampled_from([0xFFFFFFF0, 0x7FFFFFFF, 0x10000000, 0xFFFFFFFF]), where=st.integers(0, 30))
def test_huge_declared_lengths(tmp_path: Path, length: int, where: int) -> None:
    raw = bytearray(SOURCES["CT_small.dcm"])
    # patch the 4-byte length of an explicit-VR long element (OB/OW/UN/SQ/UT) or a short one
    positions = [i for i in range(132, 2000) if raw[i : i + 2] in (b"OB", b"SQ", b"UT", b"UN", b"OW")]
    pos = positions[where % len(positions)]
    raw[pos + 4 : pos + 8] = struct.pack("<I", length)
    target = tmp_path / "huge.dcm"
    target.write_bytes(bytes(raw))
    _check(target)


def _file_with(ds: Dataset) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _plan(uid: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    ds.SOPInstanceUID = uid
    ds.PatientID = "HOSTILE"
    ds.RTPlanLabel = "DEEP"
    return ds


@pytest.mark.parametrize("depth", [40, 3000])
def test_deeply_nested_sequences(tmp_path: Path, depth: int) -> None:
    """Sequences nested far deeper than any writer would (built by hand, undefined lengths)."""
    head = _file_with(_plan(generate_uid()))
    open_seq = struct.pack("<HH", 0x300A, 0x00B0) + b"SQ\0\0" + b"\xff\xff\xff\xff"
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_seq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    body = (open_seq + open_item) * depth + (close_item + close_seq) * depth
    target = tmp_path / "deep.dcm"
    target.write_bytes(head + body)
    _check(target)


def test_undefined_length_sequence_never_closed(tmp_path: Path) -> None:
    head = _file_with(_plan(generate_uid()))
    open_seq = struct.pack("<HH", 0x300A, 0x00B0) + b"SQ\0\0" + b"\xff\xff\xff\xff"
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    name = struct.pack("<HH", 0x300A, 0x00C2) + b"LO" + struct.pack("<H", 4) + b"OPEN"
    target = tmp_path / "open.dcm"
    target.write_bytes(head + open_seq + open_item + name)
    result = _check(target)
    assert isinstance(result, UnreadableFile)


@pytest.mark.parametrize("charset", ["ISO 2022 IR 87", "GB18030", "NOT A CHARSET", "ISO_IR 192"])
def test_odd_character_sets(tmp_path: Path, charset: str) -> None:
    ds = _plan(generate_uid())
    ds.SpecificCharacterSet = charset
    ds.add_new(0x00100010, "PN", b"\x1b$B\xff\xfe^\x80\x81")
    target = tmp_path / "cs.dcm"
    target.write_bytes(_file_with(ds))
    _check(target)


def test_plans_referencing_each_other_and_themselves(tmp_path: Path) -> None:
    a, b = generate_uid(), generate_uid()
    for uid, refs in ((a, [a, b]), (b, [a])):
        ds = _plan(uid)
        items = []
        for ref in refs:
            it = Dataset()
            it.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
            it.ReferencedSOPInstanceUID = ref
            items.append(it)
        ds.ReferencedRTPlanSequence = Sequence(items)
        (tmp_path / f"{uid}.dcm").write_bytes(_file_with(ds))
    result = scan(str(tmp_path), workers=1)
    (patient,) = build_forest(result.instances)
    assert len(patient.plans) == 2
    assert all(n.instances for p in patient.plans for n in p.walk())


def test_vanishing_and_odd_file_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = SOURCES["CT_small.dcm"]
    odd = [b"with space.dcm", b"semi;colon$(x)&.dcm", b"\xff\xfe-not-utf8.dcm", "ünïcode.dcm".encode()]
    for name in odd:
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as fh:
            fh.write(src)
    gone = tmp_path / "gone.dcm"
    gone.write_bytes(src)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    gone.unlink()  # listed, then deleted before it is read
    results = read_batch(paths)
    bad = [r for r in results if isinstance(r, UnreadableFile)]
    assert [r.path for r in bad] == [str(gone)] and "cannot read" in bad[0].reason
    assert sum(isinstance(r, InstanceSummary) for r in results) == len(odd)
    for fmt in ("tree", "flat", "json"):
        assert main(["show", "--path", str(tmp_path), "--format", fmt, "--noCache"]) == 0
    out = capsys.readouterr().out
    assert "not-utf8" in out


def test_pydicom_reads_what_we_flag_truncated_only_partially() -> None:
    """Sanity for the fixtures above: the CT source really has pixel data after its header."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert "PixelData" in ds
