"""Monotonic clocks for tests that move when told (breaker resets, TTLs)."""

from __future__ import annotations

import time


class ManualClock:
    """Call it for the time; :meth:`advance` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SkippingClock:
    """The real monotonic clock plus whatever the test has skipped with :meth:`advance`.

    For a store whose round trips need real time to pass (timers on the event loop)
    while its breaker and TTLs run on this clock: a test moves past a breaker's reset
    at once instead of sleeping through it.
    """

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds
