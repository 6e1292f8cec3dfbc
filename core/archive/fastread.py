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
from collections.abc import Mapping
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


# What to read inside a wanted sequence: inner tag -> None (a flat value, kept as
# text) or the spec of a nested sequence. Everything else in an item is skipped.
SequenceSpec = Mapping[int, "SequenceSpec | None"]
Item = dict[int, "str | list[Item]"]
MAX_DEPTH = 8


class NeedsFallback(DicomToolsError):
    """The buffer holds something this parser leaves to pydicom."""


@dataclass(slots=True)
class FastHeader:
    meta: dict[int, str] = field(default_factory=dict)
    values: dict[int, str] = field(default_factory=dict)
    raw: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # wanted tag -> (VR or b"", value bytes)
    sequences: set[int] = field(default_factory=set)  # wanted sequences present, non-empty and not read
    items: dict[int, list[Item]] = field(default_factory=dict)  # sequences read by their spec
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


# VRs an item value may have to be kept as text ("" in implicit VR): a binary
# value (US, FD, AT...) decoded as ASCII would not be what pydicom reads.
_ITEM_TEXT_VRS = frozenset(
    {b"", b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"PN", b"SH", b"ST", b"TM", b"UC",
     b"UI", b"UR", b"UT"}
)


def _read_items(
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
        tag, _, item_length, item_start = _element_header(buf, pos, True)
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
        tag, vr, vlength, vstart = _element_header(buf, pos, implicit)
        if tag == ITEM_END and limit is None:
            return item, vstart
        if tag >> 16 == 0xFFFE or tag == 0x00080005 or (vr and vr not in _HEADER_LEN):
            raise NeedsFallback("unexpected element in item")
        if tag not in spec:
            if vlength == UNDEFINED:
                pos = _skip_undefined(buf, vstart, implicit and vr != b"UN")
            else:
                pos = vstart + vlength
            continue
        inner = spec[tag]
        if inner is not None:
            if vr not in (b"SQ", b""):
                raise NeedsFallback("a wanted sequence with another VR")
            item[tag], pos = _read_items(buf, vstart, vlength, implicit, inner, depth + 1)
            continue
        end = vstart + vlength
        if vlength == UNDEFINED or vr not in _ITEM_TEXT_VRS or end > len(buf):
            if end > len(buf) and vlength != UNDEFINED:
                raise _Incomplete
            raise NeedsFallback("a wanted value that is not flat")
        raw = buf[vstart:end]
        if not raw.isascii() or b"\\" in raw:
            raise NeedsFallback("non-ASCII or multi-valued value in a sequence")
        item[tag] = raw.decode("ascii").strip(" \x00")
        pos = end


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


_PLAIN_CACHE: dict[tuple[frozenset[int], frozenset[int]], frozenset[int]] = {}


def _plain(wanted: frozenset[int], wanted_sequences: frozenset[int]) -> frozenset[int]:
    """Wanted tags kept as plain values: not the character set, a sequence or Pixel Data."""
    key = (wanted, wanted_sequences)
    found = _PLAIN_CACHE.get(key)
    if found is None:
        found = _PLAIN_CACHE[key] = frozenset(wanted) - wanted_sequences - PIXEL_TAGS - {0x00080005}
    return found


def _decode(raw: bytes, codec: str) -> str:
    return raw.decode(codec, errors="replace").strip(" \x00")


_HEADER_LEN: dict[bytes, int] = {**dict.fromkeys(SHORT_VRS, 8), **dict.fromkeys(LONG_VRS, 12)}


class _State:
    """What the walk keeps between wanted elements: the header and the text codec."""

    __slots__ = ("hdr", "codec", "wanted_sequences", "specs", "file_size")

    def __init__(
        self, hdr: FastHeader, wanted_sequences: frozenset[int], specs: Mapping[int, SequenceSpec], file_size: int
    ) -> None:
        self.hdr = hdr
        self.codec = "ascii"
        self.wanted_sequences = wanted_sequences
        self.specs = specs
        self.file_size = file_size

    def take(self, buf: bytes, tag: int, vr: bytes, start: int, length: int, implicit: bool) -> int:
        """Keep one wanted element; return the position after it."""
        hdr = self.hdr
        if tag == 0x00080005:
            end = start + length
            if end > len(buf):
                raise _Incomplete
            hdr.raw[tag] = (vr, buf[start:end])
            charset = _decode(buf[start:end], "ascii")
            if charset not in SIMPLE_CHARSETS:
                raise NeedsFallback(f"character set {charset}")
            self.codec = SIMPLE_CHARSETS[charset]
            hdr.values[tag] = charset
            return end
        spec = self.specs.get(tag)
        if spec is not None and tag in self.wanted_sequences and vr in (b"SQ", b""):
            read = self.read_items(buf, start, length, implicit, spec)
            if read is not None:
                self.hdr.items[tag] = read[0]
                return read[1]
            # Unsure: as if no spec were given (the same verdict on cut-off files).
        if length == UNDEFINED:
            # Only pydicom decodes this; walk on so the verdict on the rest of
            # the file does not depend on which tags were asked for. A wanted
            # sequence is non-empty unless it ends at once.
            if tag not in self.wanted_sequences or _element_header(buf, start, True)[0] != SEQ_END:
                hdr.sequences.add(tag)
            return _skip_undefined(buf, start, implicit and vr != b"UN")
        end = start + length
        if tag in self.wanted_sequences:
            if length:
                hdr.sequences.add(tag)
            return end
        if end > len(buf):
            raise _Incomplete
        value = buf[start:end]
        hdr.raw[tag] = (vr, value)
        hdr.values[tag] = value.decode(self.codec, errors="replace").strip(" \x00")
        return end

    def read_items(
        self, buf: bytes, start: int, length: int, implicit: bool, spec: SequenceSpec
    ) -> tuple[list[Item], int] | None:
        """The items of a wanted sequence, as far as ``spec`` asks, and the position after it.

        None for anything unusual inside (a character set of its own, a
        non-ASCII value, a multi-value, an item that does not end where it
        says, a cut): the caller then treats the sequence as if it had no spec.
        """
        try:
            return _read_items(buf, start, length, implicit, spec, 0)
        except (_Incomplete, struct.error):
            if len(buf) < self.file_size:
                raise _Incomplete from None  # read the rest of the file first
            return None
        except NeedsFallback:
            return None


def parse(
    buf: bytes,
    file_size: int,
    wanted: frozenset[int],
    wanted_sequences: frozenset[int],
    specs: Mapping[int, SequenceSpec] | None = None,
) -> FastHeader:
    """Parse file bytes (at least the part before Pixel Data).

    Raises :class:`NeedsFallback` when pydicom must do it, and returns
    ``None``-free data otherwise. ``wanted_sequences`` are sequence tags the
    caller needs the content of: when one is present and non-empty the caller
    falls back, which it learns from ``FastHeader.sequences`` -- unless
    ``specs`` says what to read inside it (``FastHeader.items``).
    """
    hdr = FastHeader()
    pos = 0
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        hdr.has_preamble = True
        pos = 132
        while pos + 8 <= len(buf) and _UNPACK_U16(buf, pos)[0] == 0x0002:
            group, elem, vr, length = _UNPACK_EXPLICIT(buf, pos)
            if vr in SHORT_VRS:
                tag, start = (group << 16) | elem, pos + 8
            else:
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
    implicit = hdr.implicit
    interesting = _interesting(wanted, wanted_sequences)
    state = _State(hdr, wanted_sequences, specs or {}, file_size)
    plain = _plain(wanted, wanted_sequences)
    raw = hdr.raw
    values = hdr.values
    nbuf = len(buf)
    header_len = _HEADER_LEN.get
    unpack_explicit = _UNPACK_EXPLICIT
    unpack_implicit = _UNPACK_IMPLICIT
    unpack_u32 = _UNPACK_U32
    tag = 0
    try:
        # The element walk: this loop runs ~60 times per CT slice, so it only
        # steps over headers; the few wanted elements go to _State.take.
        while pos < file_size:
            if implicit:
                group, elem, length = unpack_implicit(buf, pos)
                vr = b""
                start = pos + 8
            else:
                group, elem, vr, length = unpack_explicit(buf, pos)
                hl = header_len(vr)
                if hl is None:
                    raise NeedsFallback("bad VR")
                if hl == 12:
                    length = unpack_u32(buf, pos + 8)[0]
                start = pos + hl
            tag = (group << 16) | elem
            if tag in interesting:
                if tag in plain and length != UNDEFINED:
                    # a wanted flat value (the common case, inlined)
                    end = start + length
                    if end > nbuf:
                        raise _Incomplete
                    value = buf[start:end]
                    raw[tag] = (vr, value)
                    values[tag] = value.decode(state.codec, errors="replace").strip(" \x00")
                    pos = end
                    continue
                if tag in PIXEL_TAGS:
                    hdr.pixel_offset = pos
                    hdr.pixel_length = length
                    hdr.pixel_header = start - pos
                    return hdr
                pos = state.take(buf, tag, vr, start, length, implicit)
            elif length == UNDEFINED:
                pos = _skip_undefined(buf, start, implicit and vr != b"UN")
            else:
                pos = start + length
    except (_Incomplete, struct.error):
        if len(buf) < file_size:
            raise _Incomplete from None
        raise Truncated(f"header ends inside element ({tag >> 16:04X},{tag & 0xFFFF:04X})") from None
    if pos > file_size:
        raise Truncated(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the file")
    return hdr


Incomplete = _Incomplete
