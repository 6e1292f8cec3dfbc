"""Where our files live (the preset, the caches), answered without importing their readers.

``show`` asks on every run and reads the preset only when the file exists:
the reader (:mod:`dicomtools.core.config`: TOML, typed sections) costs ~10 ms
to import, a sixth of a 1,000-file scan. The cache folder is asked for by the
index cache and by anonymize's parsed-profile cache, which must not import
SQLite for it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)

if TYPE_CHECKING:
    from pathlib import Path


def default_config_file() -> str:
    """``$XDG_CONFIG_HOME/dicomtools/config.toml`` (``~/.config`` when unset), as text."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "dicomtools", "config.toml")


def default_cache_folder() -> str:
    """``$XDG_CACHE_HOME/dicomtools`` (``~/.cache`` when unset), as text: every cache of ours lives below it."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dicomtools")


def default_cache_dir() -> Path:
    """:func:`default_cache_folder` as a Path."""
    from pathlib import (
        Path,  # here: `-h` and `--version` never ask, and pathlib costs ~2.5 ms to import
    )

    return Path(default_cache_folder())
