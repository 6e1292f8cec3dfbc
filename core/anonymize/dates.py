"""Date shifting for "Retain Longitudinal Temporal Information with Modified Dates".

Every date of a patient moves by the same whole number of days, so intervals
(plan to first treatment, fraction to fraction) survive while the calendar
dates do not. Times of day are kept. A value we cannot read is replaced by a
dummy rather than kept: an unparseable date is still a date.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)

DUMMY_DA = "19000101"
DUMMY_DT = "19000101000000"


def _shift_date8(text: str, days: int) -> str | None:
    try:
        d = dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
    try:
        return (d + dt.timedelta(days=days)).strftime("%Y%m%d")
    except OverflowError:
        return None


def shift_da(value: str, days: int) -> str:
    """Shift one DA value (``YYYYMMDD``; a ``A-B`` range shifts both ends); bad values become a dummy."""
    v = value.strip()
    if not v:
        return v
    if "-" in v:
        return "-".join(shift_da(part, days) if part else "" for part in v.split("-"))
    if v.isdigit() and len(v) == 8:
        return _shift_date8(v, days) or DUMMY_DA
    if v.isdigit() and len(v) in (4, 6):  # partial date: shift its first day, keep the precision
        shifted = _shift_date8(v + "0101"[len(v) - 4 :] if len(v) == 4 else v + "01", days)
        return shifted[: len(v)] if shifted else DUMMY_DA[: len(v)]
    return DUMMY_DA


def shift_dt(value: str, days: int) -> str:
    """Shift the date part of one DT value, keeping time and UTC offset."""
    v = value.strip()
    if not v:
        return v
    body, offset = v, ""
    for sign in ("+", "-"):
        pos = v.find(sign, 4)
        if pos >= 0:
            body, offset = v[:pos], v[pos:]
            break
    date, rest = body[:8], body[8:]
    if not date.isdigit() or len(date) < 4:
        return DUMMY_DT
    return shift_da(date, days) + rest + offset


def shift_multi(text: str, vr: str, days: int) -> str:
    """Shift each backslash-separated value of a DA or DT element."""
    fn = shift_da if vr == "DA" else shift_dt
    return "\\".join(fn(part, days) for part in text.split("\\"))
