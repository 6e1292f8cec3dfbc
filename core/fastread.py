"""A small header parser for the common case: image files in little-endian encodings.

pydicom's per-file overhead dominates a scan of thousands of CT/MR slices.
Images need only flat top-level text elements, so this parser walks the
element headers of a byte buffer, decodes the few wanted values and skips
everything else by length (undefined-length sequences included). Anything it
is not sure about returns None and the caller falls back to pydicom, so the
fast path can only be faster, never differently wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dicomtools.core.errors import DicomToolsError

_UNPACK_TAG = struct.Struct("<HH").unpack_from
_UNPACK_U16 = struct.Struct("<H").unpack_from
_UNPACK_U32 = struct.Struct("<I").unpack_from
_UNPACK_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_UNPACK_IMPLICIT = struct.Struct("<HHI").unpack_from

UNDEFINED = 0xFFFFFFFF
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
# VRs whose explicit-VR header carries a 4-byte length after two reserved bytes.
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
     b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
# Character sets whose text decodes with a plain codec (no ISO 2022 escapes).
SIMPLE_CHARSETS = {
    "": "ascii",
    "ISO_IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 192": "utf_8",
}


class NeedsFallback(DicomToolsError):
    """The buffer holds something this parser leaves to pydicom."""


@dataclass(slots=True)
class FastHeader:
    meta: dict[int, str] = field(default_factory=dict)
    values: dict[int, str] = field(default_factory=dict)
    raw: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # wanted tag -> (VR or b"", value bytes)
    sequences: set[int] = field(default_factory=set)  # wanted sequences that are present and non-empty
    pixel_offset: int | None = None  # where the Pixel Data element starts
    pixel_length: int | None = None  # its declared length (UNDEFINED for encapsulated)
    pixel_header: int = 0
    implicit: bool = False
    has_preamble: bool = False


class Truncated(DicomToolsError):
    """An element's declared length runs past the end of the file (a cut-off header)."""


class _Incomplete(DicomToolsError):
    """The buffer ended before the parse was done; read more and try again."""


def _element_header(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes, int, int]:
    """Return (tag, vr, length, value_start) of the element at ``pos``."""
    if pos + 8 > len(buf):
        raise _Incomplete
    group, elem = _UNPACK_TAG(buf, pos)
    tag = (group << 16) | elem
    if implicit or group == 0xFFFE:
        return tag, b"", _UNPACK_U32(buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        if pos + 12 > len(buf):
            raise _Incomplete
        return tag, vr, _UNPACK_U32(buf, pos + 8)[0], pos + 12
    if not (vr.isalpha() and vr.isupper()):
        raise NeedsFallback("bad VR")
    return tag, vr, _UNPACK_U16(buf, pos + 6)[0], pos + 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool, depth: int = 0) -> int:
    """Skip the items of an undefined-length sequence; return the position after its end."""
    if depth > 32:
        raise NeedsFallback("sequences nested too deep")
    while True:
        tag, _, length, start = _element_header(buf, pos, True)
        if tag == SEQ_END:
            return start
        if tag != ITEM:
            raise NeedsFallback("unexpected element in sequence")
        if length != UNDEFINED:
            pos = start + length
            continue
        pos = start
        while True:
            tag, vr, length, start = _element_header(buf, pos, implicit)
            if tag == ITEM_END:
                pos = start
                break
            if length == UNDEFINED:
                pos = _skip_undefined(buf, start, implicit and vr != b"UN", depth + 1)
            else:
                pos = start + length


def _check_encoding(buf: bytes, pos: int, implicit: bool) -> None:
    """Verify the declared VR encoding on the first data set element (meta can lie)."""
    if pos + 8 > len(buf):
        return
    looks_explicit = buf[pos + 4 : pos + 6] in SHORT_VRS or buf[pos + 4 : pos + 6] in LONG_VRS
    if implicit and looks_explicit:
        raise NeedsFallback("file meta says implicit VR, the data set is explicit")
    if not implicit and not looks_explicit and _UNPACK_U16(buf, pos)[0] != 0xFFFE:
        raise NeedsFallback("file meta says explicit VR, the data set is not")


_INTERESTING_CACHE: dict[tuple[frozenset[int], frozenset[int]], frozenset[int]] = {}


def _interesting(wanted: frozenset[int], wanted_sequences: frozenset[int]) -> frozenset[int]:
    key = (wanted, wanted_sequences)
    found = _INTERESTING_CACHE.get(key)
    if found is None:
        found = frozenset(wanted) | frozenset(wanted_sequences) | PIXEL_TAGS | {0x00080005}
        _INTERESTING_CACHE[key] = found
    return found


def _decode(raw: bytes, codec: str) -> str:
    return raw.decode(codec, errors="replace").strip(" \x00")


def parse(buf: bytes, file_size: int, wanted: frozenset[int], wanted_sequences: frozenset[int]) -> FastHeader:
    """Parse file bytes (at least the part before Pixel Data).

    Raises :class:`NeedsFallback` when pydicom must do it, and returns
    ``None``-free data otherwise. ``wanted_sequences`` are sequence tags the
    caller needs the content of: when one is present and non-empty the caller
    falls back, which it learns from ``FastHeader.sequences``.
    """
    hdr = FastHeader()
    pos = 0
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        hdr.has_preamble = True
        pos = 132
        while pos + 8 <= len(buf) and _UNPACK_U16(buf, pos)[0] == 0x0002:
            tag, vr, length, start = _element_header(buf, pos, False)
            if start + length > file_size:
                raise Truncated("file meta runs past the end of the file")
            if length == UNDEFINED or start + length > len(buf):
                raise NeedsFallback("odd file meta")
            if vr in (b"UI", b"SH", b"AE", b"CS", b"LO"):
                hdr.meta[tag] = _decode(buf[start : start + length], "ascii")
            pos = start + length
        ts = hdr.meta.get(0x00020010, EXPLICIT_LE)
    else:
        # No file meta: only a data set that starts with a little-endian group 0008
        # element is ours; big endian (00 08 ...) and anything else go to pydicom.
        if len(buf) < 8 or _UNPACK_U16(buf, 0)[0] != 0x0008:
            raise NeedsFallback("no file meta and no little-endian group 0008 at the start")
        ts = EXPLICIT_LE if buf[4:6] in SHORT_VRS or buf[4:6] in LONG_VRS else IMPLICIT_LE
    if ts == IMPLICIT_LE:
        hdr.implicit = True
    elif ts != EXPLICIT_LE:
        # Big endian, deflated, or a compressed syntax whose data set we have not
        # verified: never guess, let pydicom read it.
        if ts in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99") or not ts.startswith("1.2.840.10008.1.2."):
            raise NeedsFallback("big endian, deflated or unknown transfer syntax")
    _check_encoding(buf, pos, hdr.implicit)
    codec = "ascii"
    implicit = hdr.implicit
    tag = 0
    nbuf = len(buf)
    interesting = _interesting(wanted, wanted_sequences)
    try:
        while pos < file_size:
            # Element header, inlined: this loop runs ~60 times per CT slice.
            if pos + 8 > nbuf:
                raise _Incomplete
            if implicit:
                group, elem, length = _UNPACK_IMPLICIT(buf, pos)
                vr = b""
                start = pos + 8
            else:
                group, elem, vr, length = _UNPACK_EXPLICIT(buf, pos)
                if vr in LONG_VRS:
                    if pos + 12 > nbuf:
                        raise _Incomplete
                    length = _UNPACK_U32(buf, pos + 8)[0]
                    start = pos + 12
                elif vr in SHORT_VRS:
                    start = pos + 8
                else:
                    raise NeedsFallback("bad VR")
            tag = (group << 16) | elem
            if tag in interesting:
                if tag in PIXEL_TAGS:
                    hdr.pixel_offset = pos
                    hdr.pixel_length = length
                    hdr.pixel_header = start - pos
                    return hdr
                if tag == 0x00080005:
                    if start + length > nbuf:
                        raise _Incomplete
                    hdr.raw[tag] = (vr, buf[start : start + length])
                    charset = _decode(hdr.raw[tag][1], "ascii")
                    if charset not in SIMPLE_CHARSETS:
                        raise NeedsFallback(f"character set {charset}")
                    codec = SIMPLE_CHARSETS[charset]
                    hdr.values[tag] = charset
                elif tag in wanted_sequences:
                    if length == UNDEFINED:
                        # non-empty unless the sequence ends at once
                        if _element_header(buf, start, True)[0] != SEQ_END:
                            hdr.sequences.add(tag)
                        pos = _skip_undefined(buf, start, implicit and vr != b"UN")
                        continue
                    if length:
                        hdr.sequences.add(tag)
                else:
                    if length == UNDEFINED:
                        # Only pydicom decodes this; walk on so the verdict on the
                        # rest of the file does not depend on which tags were asked for.
                        hdr.sequences.add(tag)
                        pos = _skip_undefined(buf, start, implicit and vr != b"UN")
                        continue
                    if start + length > nbuf:
                        raise _Incomplete
                    value = buf[start : start + length]
                    hdr.raw[tag] = (vr, value)
                    hdr.values[tag] = _decode(value, codec)
            if length == UNDEFINED:
                pos = _skip_undefined(buf, start, implicit and vr != b"UN")
            else:
                pos = start + length
    except _Incomplete:
        if len(buf) < file_size:
            raise
        raise Truncated(f"header ends inside element ({tag >> 16:04X},{tag & 0xFFFF:04X})") from None
    if pos > file_size:
        raise Truncated(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the file")
    return hdr


Incomplete = _Incomplete
