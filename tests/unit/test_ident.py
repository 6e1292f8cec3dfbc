"""The hand-written C-FIND identifier codec against pydicom, on pydicom's own character-set files."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from dicomtools.core.net.ident import KEYS, decode_identifier, encode_identifier, read_identifier

CHARSET_FILES = sorted(get_charset_files("chr*.dcm"))
FLAT = ("SpecificCharacterSet", "PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "Modality")


def _bytes(ds: Dataset, explicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = not explicit
    write_dataset(fp, ds)
    return fp.getvalue()


def _pydicom_text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _answer_like(path: str, with_sequence: bool) -> Dataset:
    """A C-FIND answer made of one of pydicom's files: its flat keys (and a sequence, undefined length)."""
    src = dcmread(path)
    ds = Dataset()
    for kw in FLAT:
        if kw in src:
            ds[kw] = src[kw]
    if with_sequence:
        item = Dataset()
        item.ReferencedSOPInstanceUID = "1.2.3"
        ds.ReferencedSeriesSequence = [item]
        ds["ReferencedSeriesSequence"].is_undefined_length = True
    return ds


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("with_sequence", [False, True])
@pytest.mark.parametrize("path", CHARSET_FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_answers_read_as_pydicom_reads_them(path: str, explicit: bool, with_sequence: bool) -> None:
    ds = _answer_like(path, with_sequence)
    data = _bytes(ds, explicit)
    want = read_dataset(BytesIO(data), is_implicit_VR=not explicit, is_little_endian=True)
    got = read_identifier(data, explicit)
    for kw in FLAT:
        if kw in want:
            assert got[kw] == _pydicom_text(want, kw), (kw, got)
        else:
            assert kw not in got


@pytest.mark.parametrize("name", ["chrGerm.dcm", "chrFren.dcm", "chrX1.dcm"])
def test_single_byte_and_utf8_need_no_pydicom(name: str) -> None:
    """Latin-1 and UTF-8 answers are decoded by us; the fallback is for the rest."""
    path = next(p for p in CHARSET_FILES if p.endswith("/" + name))
    assert decode_identifier(_bytes(_answer_like(path, False), False)) is not None


@pytest.mark.parametrize("name", ["chrJapMulti.dcm", "chrH31.dcm", "chrRuss.dcm", "chrKoreanMulti.dcm", "chrX2.dcm"])
def test_iso_2022_and_other_code_pages_go_to_pydicom(name: str) -> None:
    path = next(p for p in CHARSET_FILES if p.endswith("/" + name))
    assert decode_identifier(_bytes(_answer_like(path, False), False)) is None


def test_undefined_length_sequence_goes_to_pydicom() -> None:
    ds = _answer_like(next(p for p in CHARSET_FILES if p.endswith("/chrX1.dcm")), True)
    assert decode_identifier(_bytes(ds, False)) is None


@pytest.mark.parametrize("explicit", [False, True])
def test_our_query_reads_back_in_pydicom(explicit: bool) -> None:
    keys = {"QueryRetrieveLevel": "STUDY", "PatientID": "Jörg?", "PatientName": "Müller^Jörg=山田^太郎",
            "StudyInstanceUID": "1.2.840.10008.1", "SOPClassesInStudy": "", "NumberOfSeriesRelatedInstances": "",
            "RTPlanLabel": "Plan 1"}
    data = encode_identifier(keys, explicit)
    ds = read_dataset(BytesIO(data), is_implicit_VR=not explicit, is_little_endian=True)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    for kw, value in keys.items():
        assert _pydicom_text(ds, kw) == value, kw
        assert ds[kw].VR == KEYS[kw][1]
    assert list(ds.keys()) == sorted(ds.keys())  # ascending tag order, as PS3.5 7.1 requires
    assert decode_identifier(data, explicit) == {**keys, "SpecificCharacterSet": "ISO_IR 192"}


def test_a_non_ascii_uid_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_identifier({"StudyInstanceUID": "1.2.ä"})
