"""The value-to-text helpers every command shares."""

from __future__ import annotations

import logging

import pytest

from dicomtools.core.dicom.logformat import SanitizingFormatter
from dicomtools.core.dicom.text import (
    canonical_number,
    has_control,
    pn_text,
    sanitize,
)


def test_every_control_character_is_replaced_and_nothing_else() -> None:
    controls = [chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0))]
    for ch in controls:
        assert sanitize(f"a{ch}b") == "a\ufffdb", repr(ch)
    kept = "tab\there: Zhang^XiaoDong=张^小东 Ä ß ﾔﾏﾀﾞ \u00a0"
    assert sanitize(kept) == kept and not has_control(kept)


@pytest.mark.parametrize(
    ("vr", "text", "want"),
    [("DS", "6", "6"), ("DS", "6.0", "6"), ("DS", "6.00000000000000", "6"), ("IS", " 12", "12"),
     ("DS", "2.50", "2.5"), ("DS", "-0.0", "0"), ("FD", "1e3", "1000"), ("US", "512", "512"),
     ("DS", "abc", "abc"), ("LO", "6.0", "6.0"), ("DS", "0.1", "0.1")],
)
def test_numbers_have_one_spelling(vr: str, text: str, want: str) -> None:
    assert canonical_number(vr, text) == want


def test_person_name_drops_trailing_empty_groups_like_pydicom() -> None:
    from pydicom.valuerep import PersonName

    for raw in ["A^B=", "A^B==", "Wang^XiaoDong=王^小東=", "A^^", "=X", "A"]:
        assert pn_text(raw) == str(PersonName(raw)), raw


def test_log_formatter_keeps_lines_and_removes_controls() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "file %s\nnext", ("a\x1b[2Jb",), None)
    assert SanitizingFormatter("%(message)s").format(record) == "file a\ufffd[2Jb\nnext"
    assert record.getMessage() == "file a\x1b[2Jb\nnext"  # the record itself is untouched
