"""The TUI's screens: one module per top-level screen, dialogs in ``dialogs``."""
