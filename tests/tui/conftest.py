"""TUI tests are anyio tests pinned to asyncio (Textual's loop); modules set ``pytestmark``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
