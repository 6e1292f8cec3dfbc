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

from dicomtools.core.archive.fastelem import (
    LONG_VRS,
    SEQ_END,
    SHORT_VRS,
    UNDEFINED,
    Incomplete,
    Item,
    NeedsFallback,
    SequenceSpec,
    element_header,
    read_items,
    skip_undefined,
)
from dicomtools.core.errors import DicomToolsError

_Incomplete = Incomplete  # the name this module's code uses
_UNPACK_U16 = struct.Struct("<H").unpack_from
_UNPACK_U32 = struct.Struct("<I").unpack_from


EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
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


class FastHeader:
    """What the fast parser read from one file's header (a plain class: see archive.model)."""

    __slots__ = ("meta", "values", "raw", "sequences", "items", "pixel_offset", "pixel_length",
                 "pixel_header", "implicit", "has_preamble")

    def __init__(self) -> None:
        self.meta: dict[int, str] = {}
        self.values: dict[int, str] = {}
        self.raw: dict[int, tuple[bytes, bytes]] = {}  # wanted tag -> (VR or b"", value bytes)
        self.sequences: set[int] = set()  # wanted sequences present, non-empty and not read
        self.items: dict[int, list[Item]] = {}  # sequences read by their spec
        self.pixel_offset: int | None = None  # where the Pixel Data element starts
        self.pixel_length: int | None = None  # its declared length (UNDEFINED for encapsulated)
        self.pixel_header = 0
        self.implicit = False
        self.has_preamble = False


class Truncated(DicomToolsError):
    """An element's declared length runs past the end of the file (a cut-off header)."""


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
            if tag not in self.wanted_sequences or element_header(buf, start, True)[0] != SEQ_END:
                hdr.sequences.add(tag)
            return skip_undefined(buf, start, implicit and vr != b"UN")
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
            return read_items(buf, start, length, implicit, spec, 0)
        except (_Incomplete, struct.error):
            if len(buf) < self.file_size:
                raise _Incomplete from None  # read the rest of the file first
            return None
        except NeedsFallback:
            return None


_META_TEXT_VRS = frozenset({b"UI", b"SH", b"AE", b"CS", b"LO"})


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
        nbuf = len(buf)
        meta = hdr.meta
        while pos + 8 <= nbuf:
            t, vr, length = _UNPACK_EXPLICIT_SWAPPED(buf, pos)
            if t & 0xFFFF != 0x0002:
                break
            if vr in SHORT_VRS:
                start = pos + 8
            else:
                _, vr, length, start = element_header(buf, pos, False)
            end = start + length
            if end > file_size:
                raise Truncated("file meta runs past the end of the file")
            if length == UNDEFINED or end > nbuf:
                raise NeedsFallback("odd file meta")
            if vr in _META_TEXT_VRS:
                meta[0x00020000 | (t >> 16)] = buf[start:end].decode("ascii", "replace").strip(" \x00")
            pos = end
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
    state = _State(hdr, wanted_sequences, specs or {}, file_size)
    walk = _walk_implicit if hdr.implicit else _walk_explicit
    swapped = _swapped(_interesting(wanted, wanted_sequences))
    last = 0  # the last element header read (swapped tag), for the messages
    try:
        pos, last = walk(buf, pos, file_size, swapped, _plain(wanted, wanted_sequences), state)
    except _Walked as stop:
        last = stop.last
        if len(buf) < file_size:
            raise _Incomplete from None
        tag = _unswap(last)
        raise Truncated(f"header ends inside element ({tag >> 16:04X},{tag & 0xFFFF:04X})") from None
    if pos == PIXEL_STOP:
        return hdr
    if pos > file_size:
        tag = _unswap(last)
        raise Truncated(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the file")
    return hdr


# The walk: ~60 elements per CT slice, so the loops below do as little as possible
# per element. Tags are read as one little-endian 32-bit number, element number in
# the high half ("swapped"), and compared against swapped tag sets; only a wanted
# element is turned back into a (group << 16) | element tag.
_UNPACK_EXPLICIT_SWAPPED = struct.Struct("<I2sH").unpack_from
_UNPACK_IMPLICIT_SWAPPED = struct.Struct("<II").unpack_from


def _unswap(t: int) -> int:
    return ((t & 0xFFFF) << 16) | (t >> 16)


_SWAPPED_CACHE: dict[frozenset[int], frozenset[int]] = {}


def _swapped(tags: frozenset[int]) -> frozenset[int]:
    found = _SWAPPED_CACHE.get(tags)
    if found is None:
        found = _SWAPPED_CACHE[tags] = frozenset(_unswap(t) for t in tags)  # the swap is its own inverse
    return found


PIXEL_STOP = -1  # what the walk returns as its position when it stopped at Pixel Data


class _Walked(DicomToolsError):
    """The walk ran out of bytes after element ``last`` (swapped tag); control flow, never shown."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last


def _wanted(
    buf: bytes, t: int, vr: bytes, pos: int, start: int, length: int, implicit: bool,
    plain: frozenset[int], state: _State,
) -> int:
    """Keep one wanted element; the position after it, or :data:`PIXEL_STOP` at Pixel Data."""
    tag = _unswap(t)
    if tag in plain and length != UNDEFINED:
        end = start + length
        if end > len(buf):
            raise _Incomplete
        value = buf[start:end]
        hdr = state.hdr
        hdr.raw[tag] = (vr, value)
        hdr.values[tag] = value.decode(state.codec, errors="replace").strip(" \x00")
        return end
    if tag in PIXEL_TAGS:
        hdr = state.hdr
        hdr.pixel_offset = pos
        hdr.pixel_length = length
        hdr.pixel_header = start - pos
        return PIXEL_STOP
    return state.take(buf, tag, vr, start, length, implicit)


def _walk_explicit(
    buf: bytes, pos: int, file_size: int, swapped: frozenset[int], plain: frozenset[int], state: _State
) -> tuple[int, int]:
    """Step over explicit VR little endian elements; returns (position, last swapped tag)."""
    unpack = _UNPACK_EXPLICIT_SWAPPED
    unpack_u32 = _UNPACK_U32
    short_vrs = SHORT_VRS
    long_vrs = LONG_VRS
    nbuf = len(buf)
    raw = state.hdr.raw
    values = state.hdr.values
    t = 0
    try:
        while pos < file_size:
            t, vr, length = unpack(buf, pos)
            if vr in short_vrs:
                if t not in swapped:
                    pos += 8 + length
                    continue
                tag = ((t & 0xFFFF) << 16) | (t >> 16)
                if tag in plain:  # a wanted text value: the common case, inlined
                    end = pos + 8 + length
                    if end > nbuf:
                        raise _Incomplete
                    value = buf[pos + 8 : end]
                    raw[tag] = (vr, value)
                    values[tag] = value.decode(state.codec, "replace").strip(" \x00")
                    pos = end
                else:
                    pos = _wanted(buf, t, vr, pos, pos + 8, length, False, plain, state)
            elif vr in long_vrs:
                length = unpack_u32(buf, pos + 8)[0]
                if t in swapped:
                    pos = _wanted(buf, t, vr, pos, pos + 12, length, False, plain, state)
                    if pos == PIXEL_STOP:
                        break
                elif length == UNDEFINED:
                    pos = skip_undefined(buf, pos + 12, False)
                else:
                    pos += 12 + length
            else:
                raise NeedsFallback("bad VR")
    except (_Incomplete, struct.error):
        raise _Walked(t) from None
    return pos, t


def _walk_implicit(
    buf: bytes, pos: int, file_size: int, swapped: frozenset[int], plain: frozenset[int], state: _State
) -> tuple[int, int]:
    """Step over implicit VR little endian elements; returns (position, last swapped tag)."""
    unpack = _UNPACK_IMPLICIT_SWAPPED
    t = 0
    try:
        while pos < file_size:
            t, length = unpack(buf, pos)
            if t in swapped:
                pos = _wanted(buf, t, b"", pos, pos + 8, length, True, plain, state)
                if pos == PIXEL_STOP:
                    break
            elif length == UNDEFINED:
                pos = skip_undefined(buf, pos + 8, True)
            else:
                pos += 8 + length
    except (_Incomplete, struct.error):
        raise _Walked(t) from None
    return pos, t


