"""Route every log record (core, pydicom, pynetdicom, warnings) into the app while it runs.

A stray line on stderr corrupts a full-screen terminal UI, so while the TUI
runs all stream handlers are detached and one buffering handler collects the
records for the Log screen; everything is put back when the app exits.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dicomtools.core.dicom.text import sanitize

log = logging.getLogger(__name__)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# their INFO is per-PDU / per-instance chatter ("Received Store Request" thousands of times):
# kept, but at DEBUG, so the INFO view shows our jobs and their results
CHATTY_LIBRARIES = frozenset({"pynetdicom", "pydicom"})


@dataclass(frozen=True, slots=True)
class LogLine:
    """A formatted record kept for display."""

    seq: int
    created: float
    level: str
    levelno: int
    name: str
    message: str

    def clock(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.created))


class BufferHandler(logging.Handler):
    """Keeps the last ``capacity`` records and calls ``notify`` (from any thread) on each."""

    def __init__(self, capacity: int = 20000) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[LogLine] = collections.deque(maxlen=capacity)
        self.notify: Callable[[], None] | None = None
        self._seq = 0
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                exc = record.exc_info[1]
                if exc is not None:
                    message = f"{message}: {type(exc).__name__}: {exc}"
        except Exception:
            message = str(record.msg)
        # log lines quote file names and values; line breaks are the log screen's to lay out
        message = "\n".join(sanitize(line) for line in message.split("\n"))
        levelno, levelname = record.levelno, record.levelname
        if levelno == logging.INFO and record.name.split(".", 1)[0] in CHATTY_LIBRARIES:
            levelno, levelname = logging.DEBUG, "DEBUG"
        with self._lines_lock:
            self._seq += 1
            self.lines.append(LogLine(self._seq, record.created, levelname, levelno, record.name, message))
        notify = self.notify
        if notify is not None:
            try:
                notify()
            except Exception:  # the app may be shutting down
                pass

    def snapshot(self, min_level: int = logging.DEBUG) -> list[LogLine]:
        with self._lines_lock:
            return [line for line in self.lines if line.levelno >= min_level]


class LogCapture:
    """Installs a :class:`BufferHandler` on the root logger and silences stream handlers."""

    def __init__(self, handler: BufferHandler, level: int = logging.INFO) -> None:
        self.handler = handler
        self.level = level
        self._removed: list[tuple[logging.Logger, logging.Handler]] = []
        self._root_level = logging.WARNING
        self._captured_warnings = False

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._root_level = root.level
        loggers: list[logging.Logger] = [root]
        for obj in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(obj, logging.Logger):
                loggers.append(obj)
        for lg in loggers:
            for h in list(lg.handlers):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    lg.removeHandler(h)
                    self._removed.append((lg, h))
        root.addHandler(self.handler)
        root.setLevel(self.level)
        logging.captureWarnings(True)
        self._captured_warnings = True
        log.info("log capture started")
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self._root_level)
        for lg, h in self._removed:
            lg.addHandler(h)
        self._removed.clear()
        if self._captured_warnings:
            logging.captureWarnings(False)
        self.handler.notify = None
