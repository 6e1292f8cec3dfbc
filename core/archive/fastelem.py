"""The element-stepping primitives of the fast parser, and the reader of wanted sequences' items.

:mod:`.fastread` walks a data set's top level with these; what is inside a
sequence the summary needs is read by :func:`read_items`, everything else is
skipped by length (undefined-length sequences item by item). Anything unusual
raises :class:`NeedsFallback` and pydicom reads the file.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from dicomtools.core.errors import DicomToolsError

_UNPACK_TAG = struct.Struct("<HH").unpack_from
_UNPACK_U16 = struct.Struct("<H").unpack_from
_UNPACK_U32 = struct.Struct("<I").unpack_from

UNDEFINED = 0xFFFFFFFF
# VRs whose explicit-VR header carries a 4-byte length after two reserved bytes.
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
     b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD

# What to read inside a wanted sequence: inner tag -> None (a flat value, kept as
# text) or the spec of a nested sequence. Everything else in an item is skipped.
SequenceSpec = Mapping[int, "SequenceSpec | None"]
Item = dict[int, "str | list[Item]"]
MAX_DEPTH = 8


class NeedsFallback(DicomToolsError):
    """The buffer holds something this parser leaves to pydicom."""


class Incomplete(DicomToolsError):
    """The buffer ended before the parse was done; read more and try again."""


HEADER_LEN: dict[bytes, int] = {**dict.fromkeys(SHORT_VRS, 8), **dict.fromkeys(LONG_VRS, 12)}



def element_header(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes, int, int]:
    """Return (tag, vr, length, value_start) of the element at ``pos``."""
    if pos + 8 > len(buf):
        raise Incomplete
    group, elem = _UNPACK_TAG(buf, pos)
    tag = (group << 16) | elem
    if implicit or group == 0xFFFE:
        return tag, b"", _UNPACK_U32(buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        if pos + 12 > len(buf):
            raise Incomplete
        return tag, vr, _UNPACK_U32(buf, pos + 8)[0], pos + 12
    if not (vr.isalpha() and vr.isupper()):
        raise NeedsFallback("bad VR")
    return tag, vr, _UNPACK_U16(buf, pos + 6)[0], pos + 8


def skip_undefined(buf: bytes, pos: int, implicit: bool, depth: int = 0) -> int:
    """Skip the items of an undefined-length sequence; return the position after its end."""
    if depth > 32:
        raise NeedsFallback("sequences nested too deep")
    while True:
        tag, _, length, start = element_header(buf, pos, True)
        if tag == SEQ_END:
            return start
        if tag != ITEM:
            raise NeedsFallback("unexpected element in sequence")
        if length != UNDEFINED:
            pos = start + length
            continue
        pos = start
        while True:
            tag, vr, length, start = element_header(buf, pos, implicit)
            if tag == ITEM_END:
                pos = start
                break
            if length == UNDEFINED:
                pos = skip_undefined(buf, start, implicit and vr != b"UN", depth + 1)
            else:
                pos = start + length


# VRs an item value may have to be kept as text ("" in implicit VR): a binary
# value (US, FD, AT...) decoded as ASCII would not be what pydicom reads.
_ITEM_TEXT_VRS = frozenset(
    {b"", b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"PN", b"SH", b"ST", b"TM", b"UC",
     b"UI", b"UR", b"UT"}
)


def read_items(
    buf: bytes, start: int, length: int, implicit: bool, spec: SequenceSpec, depth: int
) -> tuple[list[Item], int]:
    if depth > MAX_DEPTH:
        raise NeedsFallback("sequences nested too deep")
    items: list[Item] = []
    pos = start
    limit = None if length == UNDEFINED else start + length
    while True:
        if limit is not None and pos >= limit:
            if pos != limit:
                raise NeedsFallback("item runs past its sequence")
            return items, pos
        tag, _, item_length, item_start = element_header(buf, pos, True)
        if tag == SEQ_END and limit is None:
            return items, item_start
        if tag != ITEM:
            raise NeedsFallback("unexpected element in sequence")
        item, pos = _read_item(buf, item_start, item_length, implicit, spec, depth)
        items.append(item)


def _read_item(
    buf: bytes, start: int, length: int, implicit: bool, spec: SequenceSpec, depth: int
) -> tuple[Item, int]:
    item: Item = {}
    pos = start
    limit = None if length == UNDEFINED else start + length
    while True:
        if limit is not None and pos >= limit:
            if pos != limit:
                raise NeedsFallback("element runs past its item")
            return item, pos
        tag, vr, vlength, vstart = element_header(buf, pos, implicit)
        if tag == ITEM_END and limit is None:
            return item, vstart
        if tag >> 16 == 0xFFFE or tag == 0x00080005 or (vr and vr not in HEADER_LEN):
            raise NeedsFallback("unexpected element in item")
        if tag not in spec:
            if vlength == UNDEFINED:
                pos = skip_undefined(buf, vstart, implicit and vr != b"UN")
            else:
                pos = vstart + vlength
            continue
        inner = spec[tag]
        if inner is not None:
            if vr not in (b"SQ", b""):
                raise NeedsFallback("a wanted sequence with another VR")
            item[tag], pos = read_items(buf, vstart, vlength, implicit, inner, depth + 1)
            continue
        end = vstart + vlength
        if vlength == UNDEFINED or vr not in _ITEM_TEXT_VRS or end > len(buf):
            if end > len(buf) and vlength != UNDEFINED:
                raise Incomplete
            raise NeedsFallback("a wanted value that is not flat")
        raw = buf[vstart:end]
        if not raw.isascii() or b"\\" in raw:
            raise NeedsFallback("non-ASCII or multi-valued value in a sequence")
        item[tag] = raw.decode("ascii").strip(" \x00")
        pos = end
