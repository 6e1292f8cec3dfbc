"""Transfer syntaxes: which are lossy, which one to accept, re-encoding for a node that refuses ours.

Decoding goes through pydicom's pixel handlers with the pylibjpeg plugins
(JPEG, JPEG-LS, JPEG 2000, RLE), declared as dependencies so a node that
accepts only uncompressed syntaxes still gets every image.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomtools.core.lazylog import get_logger, ready
from dicomtools.core.net.files import (
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    UNCOMPRESSED,
)

log = get_logger(__name__)

LOSSY = frozenset({
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossy allowed)
    "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 (lossy allowed)
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",  # HTJ2K variants
})
# What our SCP accepts first when a context offers several: uncompressed, then lossless compressed.
LOSSLESS_PREFERENCE = [
    EXPLICIT_LE, IMPLICIT_LE, DEFLATED_LE, EXPLICIT_BE,
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5",
]
# For a node that refused the stored syntax: explicit VR keeps every VR, implicit is the one all take.
FALLBACK_ORDER = [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE]


def syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


def prefer_lossless(proposed: Sequence[str]) -> str:
    """The transfer syntax to accept from a proposed context: lossless before lossy, else the first."""
    for ts in LOSSLESS_PREFERENCE:
        if ts in proposed:
            return ts
    lossless_other = [ts for ts in proposed if ts not in LOSSY]
    return (lossless_other or list(proposed))[0]


def fallback_for(accepted: Sequence[str]) -> str:
    """The uncompressed syntax to re-encode into, of those the node accepted; '' when none."""
    return next((ts for ts in FALLBACK_ORDER if ts in accepted), "")


def reencode(path: str, ts: str, target: str) -> tuple[bytes, str]:
    """(data set bytes in ``target``, a warning or ''); ValueError in one line when it cannot be done."""
    ready()  # pydicom logs by itself: its records meet the CLI's handlers
    from pydicom import dcmread
    from pynetdicom.dsutils import encode

    ds = dcmread(path, force=True)
    note = ""
    if ts not in UNCOMPRESSED and ts != DEFLATED_LE and "PixelData" in ds:
        try:
            # the same instance, only re-encoded: pydicom would otherwise give it a new UID,
            # which would no longer match the one the C-STORE request announces
            ds.decompress(generate_instance_uid=False)
        except Exception as exc:  # noqa: BLE001 - codec errors come in many types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"the node does not take {syntax_name(ts)} and it cannot be decompressed here: "
                             f"{first}") from None
        if ts in LOSSY:
            note = (f"sent decompressed: the node does not take {syntax_name(ts)}; the image stays as lossy as "
                    "it was stored")
    data = encode(ds, target == IMPLICIT_LE, target != EXPLICIT_BE, False)
    if data is None:
        raise ValueError(f"cannot re-encode the data set as {syntax_name(target)}")
    return data, note


def even_deflated(payload: bytes | memoryview, ts: str) -> bytes | memoryview:
    """A deflated stream of odd length gets its one trailing null byte (PS3.5 A.5).

    Sent odd, a P-DATA value is malformed and some nodes wait for the missing
    byte until the DIMSE timeout instead of answering.
    """
    if ts == DEFLATED_LE and len(payload) % 2:
        return bytes(payload) + b"\0"
    return payload
