"""VRs of the tags searched and shown most, known without importing pydicom.

Importing pydicom costs ~0.3-0.5 s; a warm search that reads no file needs
only the VR of the tags it shows (to count numbers by value), and these cover
what users search most. ``tests/unit/test_common_vrs.py`` checks every entry
against pydicom's dictionary.
"""

from __future__ import annotations

COMMON_VRS: dict[int, str] = {
    0x00080005: "CS", 0x00080008: "CS", 0x00080016: "UI", 0x00080018: "UI", 0x00080020: "DA",
    0x00080021: "DA", 0x00080030: "TM", 0x00080050: "SH", 0x00080060: "CS", 0x00080070: "LO",
    0x00080080: "LO", 0x00080090: "PN", 0x00081010: "SH", 0x00081030: "LO", 0x0008103E: "LO",
    0x00081090: "LO", 0x00100010: "PN", 0x00100020: "LO", 0x00100030: "DA", 0x00100040: "CS",
    0x00180015: "CS", 0x00180050: "DS", 0x00181030: "LO", 0x0020000D: "UI", 0x0020000E: "UI",
    0x00200010: "SH", 0x00200011: "IS", 0x00200013: "IS", 0x00200052: "UI", 0x30060002: "SH",
    0x300A0002: "SH", 0x300A0003: "LO", 0x300A0006: "DA", 0x300A000A: "CS", 0x300A00B2: "SH",
    0x300A00C0: "IS", 0x300A00C2: "LO", 0x300E0002: "CS",
}
