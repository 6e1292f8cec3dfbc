"""Where the preset file is, answered without importing the preset's reader.

``show`` asks on every run and reads the preset only when the file exists:
the reader (:mod:`dicomtools.core.config`: TOML, typed sections) costs ~10 ms
to import, a sixth of a 1,000-file scan.
"""

from __future__ import annotations

import os


def default_config_file() -> str:
    """``$XDG_CONFIG_HOME/dicomtools/config.toml`` (``~/.config`` when unset), as text."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "dicomtools", "config.toml")
