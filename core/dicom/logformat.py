"""The log formatter for terminals; apart from :mod:`.text` because it needs :mod:`logging`.

``dicom.text`` is on every command's start-up path and logging is imported
only when something is logged (:mod:`dicomtools.core.lazylog`).
"""

from __future__ import annotations

import logging

from dicomtools.core.dicom.text import sanitize


class SanitizingFormatter(logging.Formatter):
    """A log formatter for terminals: every line of the record loses its control characters.

    A formatter, not a filter, so other handlers of the same record (a log
    screen, a file) still get the message as logged.
    """

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(sanitize(line) for line in super().format(record).split("\n"))
