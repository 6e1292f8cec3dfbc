"""A module's logger that imports :mod:`logging` only when something is logged.

Why: ``import logging`` (with ``traceback``, ``string``, ``threading``) costs
~4 ms, a twelfth of ``show`` on 1,000 files, and a run that logs nothing never
needs it. ``log = get_logger(__name__)`` stands for ``logging.getLogger(__name__)``
(mypy sees a ``Logger``): the first attribute used imports logging, runs the
configuration the CLI deferred (:func:`when_ready`) and binds the real logger
of that name, so there is still one logger per module, configured by the root.

Code that hands control to a library that logs by itself (pydicom) calls
:func:`ready` first, so the library's records meet the same handlers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from logging import Logger
    from typing import Any

_pending: list[Callable[[], None]] = []


def when_ready(configure: Callable[[], None]) -> None:
    """Run ``configure`` now when logging is imported already, else just before the first use."""
    if "logging" in sys.modules:
        configure()
    else:
        _pending.append(configure)


def ready() -> None:
    """Import logging and run the deferred configuration (once)."""
    import logging  # noqa: F401  (the import is the point)

    while _pending:
        _pending.pop(0)()


class _LazyLogger:
    """Binds ``logging.getLogger(name)`` on first use; its methods are then the real logger's."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        ready()
        import logging

        value = getattr(logging.getLogger(self._name), attr)
        if callable(value):
            self.__dict__[attr] = value  # a bound method of the real logger: the next call is direct
        return value


def get_logger(name: str) -> Logger:
    """``logging.getLogger(name)``, bound on first use."""
    return _LazyLogger(name)  # type: ignore[return-value]  # stands for a Logger
