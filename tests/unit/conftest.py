"""Fixtures shared by the index-cache tests."""

from __future__ import annotations

import pytest

import dicomtools.core.archive.scan as scan_mod


@pytest.fixture()
def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the scanner really reads (a warm scan served by the cache reads none)."""
    seen: list[str] = []
    real = scan_mod.read_batch

    def counted(paths: list[str]) -> list:
        seen.extend(paths)
        return real(paths)

    monkeypatch.setattr(scan_mod, "read_batch", counted)
    return seen
