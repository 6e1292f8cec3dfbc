"""Which UID values are "well known": the DICOM registry's, never an instance's.

Only a UID listed in the DICOM registry (PS3.6 Annex A, as carried by
pydicom's UID dictionary: SOP classes, transfer syntaxes, coding schemes,
well-known frames of reference and SOP instances, LDAP OIDs) names a class or
a convention rather than an instance, so only those are kept as they are.
Everything else is an instance and is remapped, even under the DICOM root:
Elekta Monaco writes SOP Instance UIDs as
``1.2.840.10008.5.1.4.1.1.481.3.<unix time>`` (its RT Structure Set class
UID plus a timestamp), and a prefix test would keep those.

The anonymizer (engine) and the leak checker (verify) use this one function so
they agree on what may survive.
"""

from __future__ import annotations

from pydicom.uid import UID_dictionary

# Attributes whose values name classes, syntaxes, schemes or software, never an instance:
# kept whatever their value (a private SOP class such as Varian's 1.2.246.352.70.1.70 too).
CLASS_UID_TAGS: frozenset[int] = frozenset({
    0x00000002, 0x00000003, 0x00020002, 0x00020010, 0x00020012, 0x00020032, 0x00020100,
    0x00041510, 0x00041512, 0x0004151A, 0x00080016, 0x0008001A, 0x0008001B, 0x00080062,
    0x0008010C, 0x0008010D, 0x00080117, 0x00080118, 0x0008040E, 0x00081150, 0x0008115A,
    0x00083002, 0x00089123, 0x00340003, 0x04000010, 0x04000510, 0x3010001F, 0x30100052,
    0x30100053,
})

_REGISTRY: frozenset[str] = frozenset(str(uid) for uid in UID_dictionary)


def is_well_known_uid(value: str) -> bool:
    """True when ``value`` is a UID of the DICOM registry (exact match, padding ignored)."""
    return value.strip("\0 ") in _REGISTRY


def is_kept_uid(tag: int, value: str) -> bool:
    """True when a UI value in attribute ``tag`` must not be remapped."""
    return tag in CLASS_UID_TAGS or is_well_known_uid(value)
