"""Why one file could not be anonymized, in words a person can act on (the run goes on without it).

pydicom reads lazily, so a damaged element (a stray sequence delimiter, an
item delimiter with a VR, an element whose VR is unknown) often surfaces only
when the engine touches it or the writer re-encodes it, as exceptions like
``NotImplementedError: Unknown Value Representation 'NONE' in tag (FFFE,E0DD)``
or ``TypeError: encoding without a string argument``.
"""

from __future__ import annotations

import re

# the one terminal sanitizer (core.dicom.text.sanitize), cut at a limit
from dicomtools.core.safename import printable

_UNKNOWN_VR = re.compile(r"Unknown Value Representation '([^']*)'(?: in tag (\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)))?")
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")
_DELIMITERS = {"FFFE,E000": "an item tag", "FFFE,E00D": "an item delimiter", "FFFE,E0DD": "a sequence delimiter"}


def _where(tag: str | None) -> str:
    if not tag:
        return "an element"
    key = tag.strip("()").upper()
    what = _DELIMITERS.get(key)
    return f"{what} {tag.upper()} out of place" if what else f"element {tag.upper()}"


def failure_reason(exc: BaseException, stage: str) -> str:
    """``stage`` is what we were doing: "read", "anonymize" or "write" the file."""
    text = str(exc)
    m = _UNKNOWN_VR.search(text)
    if m:
        return printable(f"cannot {stage} it: {_where(m.group(2))} has no usable value representation "
                         f"('{m.group(1)}'); the file is damaged there and pydicom cannot re-encode it")
    if isinstance(exc, TypeError) and "encoding without a string argument" in text:
        tag = _TAG.search(text)
        where = _where(f"({tag.group(1)},{tag.group(2)})") if tag else "an element"
        return printable(f"cannot {stage} it: {where} has no value representation to write "
                         "(missing or invalid in an explicit-VR file); pydicom cannot re-encode it")
    first = text.splitlines()[0] if text else ""
    return printable(f"cannot {stage} it: {type(exc).__name__}: {first}".rstrip(": "))
