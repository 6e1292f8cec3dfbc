"""The one pydicom configuration, applied once per process before any file is read.

- Reading never validates: a bad value is the reader's one-line verdict or is
  shown as found, never a flood of warnings.
- pydicom chatter goes to logging at DEBUG (``--debug`` shows it, on stderr
  or in the TUI's log screen), never straight to stderr; the Python warnings pydicom
  and pynetdicom raise alongside are dropped (pydicom logs the same text).
- ISO 2022 IR 58 (GB2312) text is decoded with its escape sequences removed:
  pydicom 3 lists ``iso_ir_58`` among the encodings whose Python codec handles
  ISO 2022 escapes itself, but Python's gb2312 codec does not, so
  ``ESC $ ) A`` reached the screen. Taking it off that list makes pydicom strip
  the designation on reading and write it on encoding, as the standard says.
"""

from __future__ import annotations

import logging
import threading
import warnings
from types import ModuleType

_LOCK = threading.Lock()
_DONE = False


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


def _silence_library_warnings() -> None:
    """pydicom's ``warn_and_log`` both logs (demoted to DEBUG above) and warns: drop the warning.

    Filters, not a ``showwarning`` hook, so whoever else routes warnings (the
    TUI's log capture, pytest) keeps working. A warning is attributed to the
    module its stack level points at: pydicom, pynetdicom, or our reading code.
    """
    for module in (r"pydicom(\.|$)", r"pynetdicom(\.|$)", r"dicomtools(\.|$)"):
        warnings.filterwarnings("ignore", module=module)


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
        _silence_library_warnings()
        _DONE = True


def pydicom() -> ModuleType:
    """The pydicom module, configured."""
    configure()
    import pydicom as module

    return module
