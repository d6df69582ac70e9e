"""A circuit breaker per dependency, so a dead one costs nothing while it is down.

Used by the fact sources (:mod:`router.facts`: one per PolyAI lookup) and by the
shared store (:mod:`router.store.redis`: one per store).

Closed: calls go through; ``failures`` consecutive failed calls open it.
Open: no call is made, the dependency reports ``circuit_open`` at once. After
``reset_s`` exactly one call (the half-open probe) is let through; its
result closes the breaker or opens it again for another ``reset_s``.

One *call* is one success or one failure, however many tries it made (a
lookup's HTTP retries, a Redis command's reconnect); the caller reports it
with :meth:`Breaker.record` the moment the call gives up, before any answer
depending on it leaves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from router.metrics import BREAKER_OPEN

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    """The circuit breaker of one dependency: a fact source (``handoff``, ``state``) or the
    shared store (``store``), named by ``source`` (the ``router_breaker_open`` label)."""

    __slots__ = (
        "_clock",
        "_failures",
        "_gauge",
        "_opened_at",
        "_probing",
        "_reset_s",
        "_state",
        "_threshold",
        "source",
    )

    def __init__(
        self,
        source: str,
        *,
        failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.source = source
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._gauge = BREAKER_OPEN.labels(source=source)
        self._gauge.set(0)

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (a probe is due or in flight)."""
        if self._state == "open" and self._clock() - self._opened_at >= self._reset_s:
            return "half_open"
        return self._state

    def acquire(self) -> Permit | None:
        """Permission for one call now, or ``None`` (the dependency is ``circuit_open``).

        While half-open only the first caller gets a permit (the probe). A
        permit must be settled with :meth:`record` or :meth:`abandon`.
        """
        if self._state == "closed":
            return _CALL
        if self._probing or self._clock() - self._opened_at < self._reset_s:
            return None
        self._state = "half_open"
        self._probing = True
        return _PROBE

    def record(self, permit: Permit, *, failed: bool) -> None:
        """Report how a permitted call ended: ``failed`` for timeout/error, else success.

        The probe's result closes or re-opens the breaker; results of calls
        that began before the breaker opened change nothing while it is open.
        """
        if permit.probe:
            self._probing = False
            if failed:
                self._open()
            else:
                self._close()
        elif self._state == "closed":
            if not failed:
                self._failures = 0
            else:
                self._failures += 1
                if self._failures >= self._threshold:
                    self._open()

    def abandon(self, permit: Permit) -> None:
        """A permitted call ended without a verdict (cancelled): let the next caller probe."""
        if permit.probe and self._probing:
            self._probing = False
            self._state = "open"

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._gauge.set(1)

    def _close(self) -> None:
        self._state = "closed"
        self._failures = 0
        self._gauge.set(0)


class Permit:
    """Leave to make one call; ``probe`` when it is the half-open probe."""

    __slots__ = ("probe",)

    def __init__(self, *, probe: bool) -> None:
        self.probe = probe


_CALL = Permit(probe=False)
_PROBE = Permit(probe=True)
