"""DICOM values as text, and text made safe for a terminal.

Every text the tool shows comes from files it did not write: a value (or a
file name) may hold ESC, CR or C1 codes that would move the cursor, retitle
the window or hide output. :func:`sanitize` is applied where text is shown,
never to what is stored or written as JSON (JSON escapes control characters
itself and scripts want the decoded text).
"""

from __future__ import annotations

import logging
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

REPLACEMENT = "\ufffd"
# C0 except TAB, DEL, C1: everything a terminal may act on.
_CONTROL = {c: REPLACEMENT for c in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0))}
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

# VRs whose values are numbers: statistics count them by value, not by spelling.
NUMERIC_VRS = frozenset({"DS", "IS", "FD", "FL", "US", "SS", "UL", "SL", "UV", "SV"})


def has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def sanitize(text: str) -> str:
    """``text`` with every control character (C0 but TAB, DEL, C1) replaced by U+FFFD."""
    if _CONTROL_RE.search(text) is None:
        return text
    return text.translate(_CONTROL)


def value_text(value: Any) -> str:
    """A DICOM value as a clean string ('' for missing); multi-values joined with ``\\``.

    Decoded, not sanitized: the summary keeps what the file says.
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
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


class SanitizingFormatter(logging.Formatter):
    """A log formatter for terminals: every line of the record loses its control characters.

    A formatter, not a filter, so other handlers of the same record (a log
    screen, a file) still get the message as logged.
    """

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(sanitize(line) for line in super().format(record).split("\n"))
