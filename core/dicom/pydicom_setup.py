"""The one pydicom configuration, applied once per process before any file is read.

- Reading never validates: a bad value is the reader's one-line verdict or is
  shown as found, never a flood of warnings.
- pydicom and pynetdicom chatter (Python warnings and pydicom's logger) goes to
  logging at DEBUG (``--debug`` shows it, the TUI's log screen keeps it), never
  straight to stderr.
- ISO 2022 IR 58 (GB2312) text is decoded with its escape sequences removed:
  pydicom 3 lists ``iso_ir_58`` among the encodings whose Python codec handles
  ISO 2022 escapes itself, but Python's gb2312 codec does not, so
  ``ESC $ ) A`` reached the screen. Taking it off that list makes pydicom strip
  the designation on reading and write it on encoding, as the standard says.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from types import ModuleType
from typing import Any

log = logging.getLogger("dicomtools.pydicom")

_LOCK = threading.Lock()
_DONE = False
_LIBRARIES = ("pydicom", "pynetdicom")
_OWN_CODE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # dicomtools.core


class _ToDebug(logging.Filter):
    """Demote every record of pydicom's logger to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A propagated record meets only the handlers' levels, not the root
        # logger's: drop it here unless someone listens at DEBUG (--debug, the TUI log).
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        if record.levelno > logging.DEBUG:
            record.msg = f"[{record.levelname}] {record.msg}"
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
        return True


def _from_library(filename: str, category: type[Warning]) -> bool:
    module = getattr(category, "__module__", "") or ""
    if module.split(".")[0] in _LIBRARIES:
        return True
    path = filename.replace("\\", "/")
    if any(f"/{name}/" in path for name in _LIBRARIES):
        return True
    # pydicom warns with a stack level that points at its caller: our reading code.
    return os.path.abspath(filename).startswith(_OWN_CODE + os.sep)


def _install_warning_hook() -> None:
    original = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if _from_library(filename, category):
            log.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)
            return
        original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _fix_iso_ir_58() -> None:
    from pydicom import charset

    handled = tuple(e for e in charset.handled_encodings if e != "iso_ir_58")
    setattr(charset, "handled_encodings", handled)  # noqa: B010 - patching a module constant


def configure() -> None:
    """Apply the configuration (idempotent, thread-safe)."""
    global _DONE
    if _DONE:
        return
    with _LOCK:
        if _DONE:
            return
        from pydicom import config

        config.settings.reading_validation_mode = config.IGNORE
        _fix_iso_ir_58()
        # pydicom logs through the one "pydicom" logger; pynetdicom's own loggers
        # (association events) stay as they are: the network commands report them.
        logger = logging.getLogger("pydicom")
        if not any(isinstance(f, _ToDebug) for f in logger.filters):
            logger.addFilter(_ToDebug())
        _install_warning_hook()
        _DONE = True


def pydicom() -> ModuleType:
    """The pydicom module, configured."""
    configure()
    import pydicom as module

    return module
