"""Shared fixtures: one phantom archive per test session (read-only for tests)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtools.core.phantom import generate
from dicomtools.core.phantom.manifest import PhantomManifest

# Never touch the user's real cache or config: every test process (and the CLI
# subprocesses it starts) gets private XDG folders.
_XDG = tempfile.mkdtemp(prefix="dicomtools-tests-xdg-")
os.environ["XDG_CACHE_HOME"] = os.path.join(_XDG, "cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_XDG, "config")


@pytest.fixture(scope="session")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> PhantomManifest:
    """A two-patient archive with broken files; tests must not modify it."""
    root = tmp_path_factory.mktemp("phantom")
    return generate(root, patients=2, seed=0)


@pytest.fixture(scope="session")
def phantom_root(phantom: PhantomManifest) -> Path:
    return Path(phantom.root)


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """CLI runs in-process set logger levels (as a real process would); undo that per test."""
    import logging

    names = ["", "pynetdicom", "pydicom", "dicomtools"]
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in saved.items():
        logging.getLogger(n).setLevel(level)
