"""DIMSE status meanings (no peer needed)."""

from __future__ import annotations

import pytest

from dicomtools.core.net.status import describe_status, status_category


@pytest.mark.parametrize(
    ("code", "category", "text"),
    [
        (0x0000, "success", "success"),
        (0xA700, "failure", "out of resources"),
        (0xA7FF, "failure", "out of resources"),
        (0xA900, "failure", "does not match SOP class"),
        (0xA9AB, "failure", "does not match SOP class"),
        (0xC123, "failure", "cannot understand"),
        (0xB000, "warning", "coercion"),
        (0xB007, "warning", "does not match SOP class"),
        (0xB0FF, "warning", "warning"),
        (0xFF00, "pending", "pending"),
        (0xFE00, "cancel", "cancelled"),
        (0xA801, "failure", "move destination unknown"),
        (0x0122, "failure", "SOP class not supported"),
    ],
)
def test_status_meaning(code: int, category: str, text: str) -> None:
    assert status_category(code) == category
    assert describe_status(code).startswith(f"0x{code:04X} ")
    assert text in describe_status(code)
