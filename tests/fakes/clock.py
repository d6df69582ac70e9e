"""A monotonic clock for tests that moves only when told (breaker resets, TTLs)."""

from __future__ import annotations


class ManualClock:
    """Call it for the time; :meth:`advance` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
