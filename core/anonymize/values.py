"""Element values the engine writes: dummies per VR and raw puts.

Reading a value as text is :mod:`valuetext`'s job (one reader for the engine,
the batch run, the leak checker and the path namer).
"""

from __future__ import annotations

from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomtools.core.anonymize.dates import DUMMY_DA, DUMMY_DT

DUMMY_TEXT = "ANONYMIZED"

_DUMMY: dict[str, Any] = {
    "AE": DUMMY_TEXT, "AS": "000Y", "CS": DUMMY_TEXT, "DA": DUMMY_DA, "DT": DUMMY_DT, "TM": "000000",
    "DS": "0", "IS": "0", "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "PN": DUMMY_TEXT, "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UT": DUMMY_TEXT, "UR": DUMMY_TEXT,
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0, "SV": 0, "UV": 0, "AT": 0,
    "OB": b"\0\0", "OD": b"\0" * 8, "OF": b"\0" * 4, "OL": b"\0" * 4, "OV": b"\0" * 8, "OW": b"\0\0",
    "UN": b"\0\0",
}
_ZEROS = {"FL": 4, "FD": 8, "SL": 4, "SS": 2, "UL": 4, "US": 2, "SV": 8, "UV": 8, "AT": 4}
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT", None})
TEXT_VRS = frozenset({"AE", "AS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
DATE_VRS = frozenset({"DA", "DT"})


def pad(data: bytes, vr: str) -> bytes:
    if len(data) % 2:
        data += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return data


def _dummy_bytes(vr: str) -> bytes:
    if vr in _ZEROS:
        return b"\0" * _ZEROS[vr]
    value = _DUMMY.get(vr, b"\0\0")
    return pad(value if isinstance(value, bytes) else str(value).encode("ascii"), vr)


DUMMY_BYTES: dict[str, bytes] = {vr: _dummy_bytes(vr) for vr in _DUMMY}


def put_raw(ds: Dataset, tag: int, vr: str, data: bytes, implicit: bool = False, little: bool = True) -> None:
    """Store an already encoded value: written as-is, so nothing is encoded twice.

    Only for values whose bytes do not depend on byte order or character set
    (ASCII text, UIDs, zeros), which is everything the engine writes itself.
    """
    btag = tag if isinstance(tag, BaseTag) else BaseTag(tag)
    ds._dict[btag] = RawDataElement(btag, vr, len(data), data, 0, implicit, little)


def put_text(ds: Dataset, tag: int, vr: str, value: str) -> None:
    """Set a text value: raw bytes when ASCII, else a normal element pydicom encodes."""
    if value.isascii():
        put_raw(ds, tag, vr, pad(value.encode("ascii"), vr))
    else:
        ds[tag] = DataElement(tag, vr, value)
