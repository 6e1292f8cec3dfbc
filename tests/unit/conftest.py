"""Fixtures shared by the index-cache tests."""

from __future__ import annotations

import pytest

import dicomtools.core.archive.summarize as summarize


@pytest.fixture()
def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the scanner really reads (a warm scan served by the cache reads none)."""
    seen: list[str] = []
    real = summarize.read_batch

    def counted(paths: list[str]) -> list:
        seen.extend(paths)
        return real(paths)

    monkeypatch.setattr(summarize, "read_batch", counted)
    return seen
