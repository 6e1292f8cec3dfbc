"""Query/retrieve identifiers encoded and decoded by hand, for the flat keys we ask for.

Why not pydicom: importing it (and numpy behind it) costs ~0.3 s, more under
load, longer than a C-FIND takes; a retrieve needs only a dozen flat text
keys. Identifiers go out in UTF-8 (Specific Character Set ``ISO_IR 192``);
answers are decoded in the character set they declare. What this decoder
cannot read (an undefined-length element, a character set other than
ASCII / Latin-1 / UTF-8, e.g. ISO 2022 escapes) returns ``None`` and the
caller falls back to pydicom for that one answer.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping

log = logging.getLogger(__name__)

CHARSET = "ISO_IR 192"  # UTF-8: every identifier says how its text is encoded

# keyword -> (tag, VR): every key the retrieve, the patient search and the fetch send or read
KEYS: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "QueryRetrieveLevel": (0x00080052, "CS"),
    "Modality": (0x00080060, "CS"),
    "ModalitiesInStudy": (0x00080061, "CS"),
    "SOPClassesInStudy": (0x00080062, "UI"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "NumberOfPatientRelatedStudies": (0x00201200, "IS"),
    "NumberOfSeriesRelatedInstances": (0x00201209, "IS"),
    "RTPlanLabel": (0x300A0002, "SH"),
    "RTPlanDate": (0x300A0006, "DA"),
    "ApprovalStatus": (0x300E0002, "CS"),
}
_BY_TAG = {tag: (kw, vr) for kw, (tag, vr) in KEYS.items()}
_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC"}  # decoded in the declared character set
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
# Specific Character Set -> Python codec, for the single-byte / UTF-8 sets we decode ourselves
_CODECS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


def _value(vr: str, text: str) -> bytes:
    raw = text.encode("utf-8" if vr in _TEXT_VRS else "ascii", "strict")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def encode_identifier(keys: Mapping[str, str], explicit: bool = False) -> bytes:
    """Little endian identifier of ``keys`` (keywords of :data:`KEYS`), ``ISO_IR 192`` declared.

    Raises ``KeyError`` for a keyword not in :data:`KEYS`, ``UnicodeEncodeError``
    for a non-ASCII character in a non-text key (a UID, a code string).
    """
    items = dict(keys)
    items.setdefault("SpecificCharacterSet", CHARSET)
    out = []
    for tag, kw in sorted((KEYS[k][0], k) for k in items):
        vr = KEYS[kw][1]
        value = _value(vr, items[kw])
        if explicit:
            out.append(struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)))
        else:
            out.append(struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)))
        out.append(value)
    return b"".join(out)


def _clean(text: str) -> str:
    """Trailing padding off, each value of a multi-valued element stripped (as pydicom's reading)."""
    return "\\".join(v.strip(" \0") for v in text.split("\\"))


def decode_identifier(data: bytes, explicit: bool = False) -> dict[str, str] | None:
    """The keys of :data:`KEYS` in ``data`` as text; ``None`` when only pydicom can read it."""
    raw: dict[str, bytes] = {}
    off, n = 0, len(data)
    while off + 8 <= n:
        group, elem = struct.unpack_from("<HH", data, off)
        if explicit:
            if data[off + 4 : off + 6] in _LONG_VRS:
                if off + 12 > n:
                    return None
                length = struct.unpack_from("<I", data, off + 8)[0]
                off += 12
            else:
                length = struct.unpack_from("<H", data, off + 6)[0]
                off += 8
        else:
            length = struct.unpack_from("<I", data, off + 4)[0]
            off += 8
        if length == 0xFFFFFFFF or off + length > n:
            return None  # a sequence of undefined length, or a truncated element
        known = _BY_TAG.get((group << 16) | elem)
        if known is not None:
            raw[known[0]] = data[off : off + length]
        off += length
    charset = raw.get("SpecificCharacterSet", b"").decode("ascii", "replace").strip(" \0").split("\\")
    codec = _CODECS.get(charset[0]) if len(charset) == 1 else None
    if codec is None:
        return None  # ISO 2022 or another code page: pydicom knows them all
    out: dict[str, str] = {}
    for kw, value in raw.items():
        try:
            out[kw] = _clean(value.decode(codec if KEYS[kw][1] in _TEXT_VRS else "ascii"))
        except UnicodeDecodeError:
            return None
    return out


def decode_with_pydicom(data: bytes, explicit: bool = False) -> dict[str, str]:
    """The fallback: pydicom reads the identifier (any character set, sequences), we keep our keys."""
    from io import BytesIO

    from pydicom.filereader import read_dataset
    from pydicom.multival import MultiValue

    ds = read_dataset(BytesIO(data), is_implicit_VR=not explicit, is_little_endian=True)
    out: dict[str, str] = {}
    for kw in KEYS:
        if kw not in ds:
            continue
        value = ds.get(kw)
        if value is None:
            out[kw] = ""
        elif isinstance(value, MultiValue | list | tuple):
            out[kw] = "\\".join(str(v).strip() for v in value)
        else:
            out[kw] = str(value).strip()
    return out


def read_identifier(data: bytes, explicit: bool = False) -> dict[str, str]:
    """Ours when we can, pydicom's when we cannot (and only then is pydicom imported)."""
    got = decode_identifier(data, explicit)
    if got is not None:
        return got
    log.debug("identifier needs pydicom (character set or sequence)")
    return decode_with_pydicom(data, explicit)
