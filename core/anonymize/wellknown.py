"""Which UIDs are *well known*: the DICOM registry's (SOP classes, transfer syntaxes, coding schemes,
well-known frames of reference), and nothing else.

A prefix test on ``1.2.840.10008`` is not enough: Elekta Monaco writes SOP
Instance UIDs as ``1.2.840.10008.5.1.4.1.1.481.3.<unix time>``. pydicom's UID
dictionary is the registry. (The engine's own well-known function replaces
this helper once both are merged.)
"""

from __future__ import annotations

from pydicom.uid import UID_dictionary

DICOM_ROOT = "1.2.840.10008."


def is_registered_uid(uid: str) -> bool:
    return uid.strip().rstrip("\0") in UID_dictionary


def is_unregistered_under_root(uid: str) -> bool:
    """A UID that poses as the standard's but is an instance's (it must have been remapped)."""
    u = uid.strip().rstrip("\0")
    return u.startswith(DICOM_ROOT) and u not in UID_dictionary
