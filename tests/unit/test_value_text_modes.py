"""The three forms of "a DICOM value as text" (summary, match, display), on pydicom's own test files."""

from __future__ import annotations

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dicomtools.core.dicom.text import MAX_DISPLAY_CHARS, display_text, value_strings, value_text


def test_the_three_forms_on_a_real_file() -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    orient = ds["ImageOrientationPatient"]
    assert value_text(orient.value) == "\\".join(str(v) for v in orient.value)
    assert value_strings(orient) == [str(v) for v in orient.value]
    assert display_text(orient) == value_text(orient.value)
    assert value_text(ds.PatientName) == "CompressedSamples^CT1" == display_text(ds["PatientName"])
    assert display_text(ds["PixelData"]) == f"<{len(ds.PixelData)} bytes>"
    assert value_strings(ds["PixelData"]) == [f"<{len(ds.PixelData)} bytes>"]


def test_sequences_binary_and_hostile_text() -> None:
    ds = Dataset()
    ds.ReferencedImageSequence = [Dataset(), Dataset()]
    assert value_strings(ds["ReferencedImageSequence"]) == ["<2 items>"]
    assert display_text(ds["ReferencedImageSequence"]) == "2 items"
    short = DataElement(0x00091010, "OB", b"\x01\x02\xff")
    assert value_strings(short) == ["0102ff"]
    hostile = DataElement(0x00081030, "LO", "Study\x1b]0;owned\x07\nline2" + "x" * 300)
    shown = display_text(hostile)
    assert "\x1b" not in shown and "\n" not in shown and len(shown) == MAX_DISPLAY_CHARS
    assert value_strings(hostile)[0].startswith("Study\x1b")  # matching sees the value as stored
    assert value_text(None) == "" and value_strings(DataElement(0x00100010, "PN", None)) == []
