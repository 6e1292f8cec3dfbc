"""A received instance's summary from the bytes in memory equals the one read from its file.

Checked on pydicom's own test files (nobody here wrote them): whatever the
in-memory path answers must be what ``read_summary`` says; where it cannot
(header past the bytes kept, sequences for pydicom), it says None and the
file is read as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.data import get_charset_files, get_testdata_file

from dicomtools.core.archive.model import SUMMARY_FIELDS, InstanceSummary
from dicomtools.core.archive.summarize import read_summary, summary_from_head

TEST_FILES = sorted(p for p in Path(get_testdata_file("CT_small.dcm")).parent.iterdir()
                    if p.suffix == ".dcm" and p.is_file())
FILES = [*TEST_FILES, *map(Path, get_charset_files("chr*.dcm"))]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_summary_as_from_the_file(path: Path) -> None:
    data = path.read_bytes()
    mtime = os.stat(path).st_mtime_ns
    want = read_summary(str(path))
    for head in (data, data[:65536], data[:600]):
        got = summary_from_head(str(path), head, len(data), mtime)
        if got is None:
            continue
        assert isinstance(want, InstanceSummary), want
        assert dict(zip(SUMMARY_FIELDS, got.values(), strict=True)) == dict(
            zip(SUMMARY_FIELDS, want.values(), strict=True))


def test_most_small_files_need_no_reread() -> None:
    """The point of it: a plain CT slice is summarized from memory."""
    path = Path(get_testdata_file("CT_small.dcm"))
    data = path.read_bytes()
    assert summary_from_head(str(path), data, len(data), 0) is not None


def test_not_dicom_is_left_to_the_file_reader(tmp_path: Path) -> None:
    data = b"\0" * 128 + b"DICM" + b"\xff" * 40
    assert summary_from_head(str(tmp_path / "x.dcm"), data, len(data), 0) is None
