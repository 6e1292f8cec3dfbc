"""Ctrl-C for a CLI process: exit 130 within a second, whatever is running.

Why not Python's default: pynetdicom runs each association in a non-daemon
thread, so after ``KeyboardInterrupt`` a process waiting for an A-ASSOCIATE
answer (a node that accepts TCP and never speaks) stays alive until the ACSE
timeout; a second Ctrl-C then lands in clean-up code and prints a traceback.

The first Ctrl-C raises ``KeyboardInterrupt`` in the main thread as usual, so
``finally`` blocks remove temporary folders and write what must be written;
a watchdog ends the process if that clean-up hangs. A second Ctrl-C ends the
process at once. Only for a real process (never inside a test runner).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from dicomtools.core.errors import ExitStatus
from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

EXIT_CODE = int(ExitStatus.INTERRUPTED)
GRACE = 0.8  # seconds the clean-up may take after the first Ctrl-C

_state = {"interrupted": False, "prefix": "dicomtools"}


def _write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def hard_exit(code: int) -> None:
    """Flush and end the process now, non-daemon threads or not."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _watchdog() -> None:
    threading.Event().wait(GRACE)
    _write(f"{_state['prefix']}: interrupted\n")
    hard_exit(EXIT_CODE)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _state["interrupted"]:
        _write(f"{_state['prefix']}: interrupted\n")
        hard_exit(EXIT_CODE)
    _state["interrupted"] = True
    threading.Thread(target=_watchdog, name="dicomtools-interrupt", daemon=True).start()
    raise KeyboardInterrupt


def install(prefix: str = "dicomtools") -> None:
    """Take over SIGINT (main thread only; elsewhere Python's default stays)."""
    _state["prefix"] = prefix
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def uninstall() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def set_prefix(prefix: str) -> None:
    _state["prefix"] = prefix


def interrupted() -> bool:
    return bool(_state["interrupted"])


def exit_now_if_threads_linger(code: int) -> None:
    """After an interrupt, pynetdicom's non-daemon threads would keep the process alive."""
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        log.debug("ending with %d non-daemon threads alive", len(stuck))
        hard_exit(code)
