"""Shared fixtures: one phantom archive per test session (read-only for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicomtools.core.phantom import generate
from dicomtools.core.phantom_manifest import PhantomManifest


@pytest.fixture(scope="session")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> PhantomManifest:
    """A two-patient archive with broken files; tests must not modify it."""
    root = tmp_path_factory.mktemp("phantom")
    return generate(root, patients=2, seed=0)


@pytest.fixture(scope="session")
def phantom_root(phantom: PhantomManifest) -> Path:
    return Path(phantom.root)
