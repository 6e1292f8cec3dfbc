"""DICOM values as text, and text made safe for a terminal.

One module for "a DICOM value as text", with one function per use, because
the uses differ on purpose:

* :func:`value_text` -- the summary's field (scan, tree): one string, trimmed;
* :func:`value_strings` -- what a search expression matches: one string per
  value, numbers in their DICOM spelling, bytes as text, hex or ``<N bytes>``;
* :func:`display_text` -- one short, safe line for the TUI's element list.

The anonymizer's own readers (``anonymize/valuetext.py``, ``values.py``) and
``net/find.py`` still have their own; moving them here is a follow-up.

Every text the tool shows comes from files it did not write: a value (or a
file name) may hold ESC, CR or C1 codes that would move the cursor, retitle
the window or hide output. :func:`sanitize` is applied where text is shown,
never to what is stored or written as JSON (JSON escapes control characters
itself and scripts want the decoded text).
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

REPLACEMENT = "\ufffd"
# C0 except TAB, DEL, C1: everything a terminal may act on; and the Unicode bidi embeddings,
# overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a terminal that lays out
# bidirectional text show the rest of the line reversed or moved ("Trojan Source"). The marks
# (LRM, RLM, ALM) open no run and stay: they occur in real Hebrew and Arabic names.
_CONTROL = {c: REPLACEMENT for c in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0),
                                     *range(0x202A, 0x202F), *range(0x2066, 0x206A))}

# VRs whose values are numbers: statistics count them by value, not by spelling.
NUMERIC_VRS = frozenset({"DS", "IS", "FD", "FL", "US", "SS", "UL", "SL", "UV", "SV"})
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
BYTES_SHOWN_AS_HEX = 32  # a short binary value is matched and shown as hex, a longer one as <N bytes>
MAX_DISPLAY_CHARS = 160


def has_control(text: str) -> bool:
    return not text.isprintable() and text.translate(_CONTROL) != text


def sanitize(text: str) -> str:
    """``text`` with every control character (C0 but TAB, DEL, C1, bidi runs) replaced by U+FFFD."""
    if text.isprintable():  # no C0, C1 or format character (most text): one pass in C, no regex to compile
        return text
    return text.translate(_CONTROL)


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def value_text(value: Any) -> str:
    """A DICOM value as a clean string ('' for missing); multi-values joined with ``\\``.

    Decoded, not sanitized: the summary keeps what the file says.
    """
    if value is None:
        return ""
    if _is_multi(value):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def pn_text(text: str) -> str:
    """A Person Name as pydicom decodes it: trailing empty component groups (``=``) dropped."""
    return "\\".join(v.rstrip("=") for v in text.split("\\")) if "=" in text else text


def canonical_number(vr: str, text: str) -> str:
    """One spelling per numeric value (``6``, ``6.0``, ``6.00000000000000`` -> ``6``).

    Text that is not a number, or a VR that is not numeric, comes back as given.
    """
    if vr not in NUMERIC_VRS:
        return text
    # imported here: only search compares numbers, and decimal costs ~1.5 ms of every start-up
    from decimal import Decimal, InvalidOperation

    stripped = text.strip()
    try:
        number = Decimal(stripped)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if number == number.to_integral_value():
        return str(int(number))
    as_float = float(number)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == number:
        return repr(as_float)
    return format(number.normalize(), "f")


def value_strings(elem: Any) -> list[str]:
    """The element's values as strings, one per value; empty list when the element is empty.

    Numbers and dates keep their DICOM string form, PN is its str, sequences show
    ``<N items>``, bytes that are printable text are decoded, other bytes are shown
    as hex (short) or ``<N bytes>``.
    """
    from pydicom.multival import MultiValue

    value = elem.value
    vr = str(elem.VR)
    if vr == "SQ":
        n = len(value)
        return [f"<{n} item{'' if n == 1 else 's'}>"] if n else []
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        return _bytes_strings(bytes(value))
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    out = [_scalar_string(v, vr) for v in items]
    return [] if out == [""] else out


def _scalar_string(v: object, vr: str) -> str:
    from pydicom.valuerep import DSfloat, PersonName

    if v is None:
        return ""
    if isinstance(v, PersonName):
        return str(v)
    if isinstance(v, bytes | bytearray):
        return "\\".join(_bytes_strings(bytes(v)))
    if isinstance(v, float) and not isinstance(v, DSfloat):
        return f"{v:.7g}" if vr == "FL" else repr(v)
    return str(v)


def _bytes_strings(data: bytes) -> list[str]:
    text = data.rstrip(b"\x00 ")
    if not text:
        return []
    if all(32 <= b < 127 for b in text):
        return text.decode("ascii").split("\\")
    if len(data) <= BYTES_SHOWN_AS_HEX:
        return [data.hex()]
    return [f"<{len(data)} bytes>"]


def display_text(elem: Any) -> str:
    """A short, single-line, sanitized text for an element's value (the TUI's element list)."""
    if elem.VR == "SQ":
        n = len(elem.value or [])
        return f"{n} item" + ("" if n == 1 else "s")
    value = elem.value
    if value is None or value == "":
        return ""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if elem.VR in BINARY_VRS:
        try:
            return f"<{len(value)} bytes>"
        except TypeError:
            return "<binary>"
    try:
        if _is_multi(value):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
    except Exception as exc:  # odd private data must not break the viewer
        text = f"<unprintable: {type(exc).__name__}>"
    text = sanitize(text.replace("\r", " ").replace("\n", " ").replace("\x00", ""))
    if len(text) > MAX_DISPLAY_CHARS:
        text = text[: MAX_DISPLAY_CHARS - 1] + "…"
    return text
