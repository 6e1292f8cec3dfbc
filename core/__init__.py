"""dicomtools core: headless logic shared by the CLI and the TUI (never imports Textual)."""

from __future__ import annotations

__version__ = "0.1.0"
