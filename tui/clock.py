"""Time for the UI, injectable so snapshots and screenshots are identical run to run."""

from __future__ import annotations

import time


class Clock:
    """Real time: ``monotonic`` for rates, ``wall`` for log timestamps."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self, created: float) -> str:
        return time.strftime("%H:%M:%S", time.localtime(created))


class FixedClock(Clock):
    """A clock that never moves (rates show as unknown); wall times all read 12:00:00."""

    def __init__(self, now: float = 1000.0) -> None:
        self._now = now

    def monotonic(self) -> float:
        return self._now

    def wall(self, created: float) -> str:
        return "12:00:00"
