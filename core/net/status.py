"""What DIMSE status codes mean, in words a physicist can act on."""

from __future__ import annotations

from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

SUCCESS = "success"
WARNING = "warning"
FAILURE = "failure"
PENDING = "pending"
CANCEL = "cancel"

_EXACT = {
    0x0000: (SUCCESS, "success"),
    0x0001: (WARNING, "requested optional attributes are not supported"),
    0x0107: (WARNING, "attribute list error"),
    0x0116: (WARNING, "attribute value out of range"),
    0x0105: (FAILURE, "no such attribute"),
    0x0106: (FAILURE, "invalid attribute value"),
    0x0110: (FAILURE, "processing failure"),
    0x0111: (FAILURE, "duplicate SOP instance"),
    0x0112: (FAILURE, "no such SOP instance"),
    0x0117: (FAILURE, "invalid SOP instance"),
    0x0118: (FAILURE, "no such SOP class"),
    0x0119: (FAILURE, "class-instance conflict"),
    0x0120: (FAILURE, "missing attribute"),
    0x0121: (FAILURE, "missing attribute value"),
    0x0122: (FAILURE, "SOP class not supported"),
    0x0124: (FAILURE, "not authorised"),
    0x0210: (FAILURE, "duplicate invocation"),
    0x0211: (FAILURE, "unrecognised operation"),
    0x0212: (FAILURE, "mistyped argument"),
    0x0213: (FAILURE, "resource limitation"),
    0xA700: (FAILURE, "out of resources"),
    0xA701: (FAILURE, "out of resources: unable to calculate number of matches"),
    0xA702: (FAILURE, "out of resources: unable to perform sub-operations"),
    0xA801: (FAILURE, "move destination unknown (the peer has no such AE title configured)"),
    0xA900: (FAILURE, "data set does not match SOP class"),
    0xB000: (WARNING, "coercion of data elements / sub-operations completed with failures"),
    0xB006: (WARNING, "elements discarded"),
    0xB007: (WARNING, "data set does not match SOP class"),
    0xC000: (FAILURE, "cannot understand / unable to process"),
    0xFE00: (CANCEL, "cancelled"),
    0xFF00: (PENDING, "pending"),
    0xFF01: (PENDING, "pending (optional keys not supported)"),
}


def status_category(code: int) -> str:
    """``success``, ``warning``, ``failure``, ``pending`` or ``cancel``."""
    if code in _EXACT:
        return _EXACT[code][0]
    if 0xA700 <= code <= 0xA7FF or 0xA900 <= code <= 0xA9FF or 0xC000 <= code <= 0xCFFF:
        return FAILURE
    if 0xB000 <= code <= 0xBFFF:
        return WARNING
    if code in (0xFF00, 0xFF01):
        return PENDING
    return FAILURE


def describe_status(code: int) -> str:
    """``0xA700 out of resources``-style text for messages and summaries."""
    if code in _EXACT:
        text = _EXACT[code][1]
    elif 0xA700 <= code <= 0xA7FF:
        text = "out of resources"
    elif 0xA900 <= code <= 0xA9FF:
        text = "data set does not match SOP class"
    elif 0xC000 <= code <= 0xCFFF:
        text = "cannot understand"
    elif 0xB000 <= code <= 0xBFFF:
        text = "warning"
    else:
        text = "unknown status"
    return f"0x{code:04X} {text}"
