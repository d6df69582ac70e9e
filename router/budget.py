"""The latency budget of one request, measured on the monotonic clock.

A :class:`Deadline` starts when the request arrives and is passed down
explicitly to every await that may be slow (store round trips, PolyAI
lookups). Upstream calls get :meth:`Deadline.upstream_timeout`: what is left
minus a *reserve* kept back for evaluating the rules and writing the answer,
so that the answer leaves within budget even when every upstream hangs.

The reserve is 5 % of the budget, but never less than 10 ms nor more than
50 ms: 10 ms comfortably covers a rule evaluation (well under 1 ms) plus
serialising and sending the answer on a loaded event loop, and 5 % lets a
long budget keep proportionally more slack for scheduling jitter without
wasting seconds of a 5 s budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

RESERVE_FRACTION = 0.05
"""Share of the budget kept back for deciding and answering."""
MIN_RESERVE_S = 0.010
"""Smallest reserve, whatever the budget."""
MAX_RESERVE_S = 0.050
"""Largest reserve, whatever the budget."""


def reserve_for(budget_s: float) -> float:
    """The reserve (seconds) kept back from upstream calls for a budget of ``budget_s``."""
    return min(max(budget_s * RESERVE_FRACTION, MIN_RESERVE_S), MAX_RESERVE_S)


@dataclass(frozen=True, slots=True)
class Deadline:
    """When one request's answer must leave, on the ``time.monotonic`` clock.

    >>> d = Deadline.start(400)
    >>> 0 < d.upstream_timeout() < d.remaining() <= 0.4
    True
    """

    started_at: float
    """``time.monotonic()`` when the request arrived."""
    budget_s: float
    """The whole budget, in seconds."""
    reserve_s: float
    """Kept back from upstream calls for deciding and answering."""

    @classmethod
    def start(
        cls,
        budget_ms: float,
        *,
        started_at: float | None = None,
        reserve_ms: float | None = None,
    ) -> Deadline:
        """Start a budget of ``budget_ms`` milliseconds.

        ``started_at`` is the request's arrival (a ``time.monotonic()`` value,
        default now) so that time spent before the handler runs counts too;
        ``reserve_ms`` overrides the default reserve (:func:`reserve_for`).
        """
        budget_s = max(float(budget_ms), 0.0) / 1000.0
        reserve_s = reserve_for(budget_s) if reserve_ms is None else max(reserve_ms, 0.0) / 1000.0
        return cls(
            started_at=time.monotonic() if started_at is None else started_at,
            budget_s=budget_s,
            reserve_s=reserve_s,
        )

    @property
    def expires_at(self) -> float:
        """The monotonic time by which the answer must have left."""
        return self.started_at + self.budget_s

    @property
    def upstream_expires_at(self) -> float:
        """The monotonic time by which every upstream call must have given up."""
        return self.expires_at - self.reserve_s

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.monotonic() - self.started_at

    def remaining(self) -> float:
        """Seconds left until the answer must leave (never negative)."""
        return max(self.expires_at - time.monotonic(), 0.0)

    def upstream_timeout(self) -> float:
        """Seconds an upstream call may still take: remaining minus the reserve, >= 0."""
        return max(self.upstream_expires_at - time.monotonic(), 0.0)

    def expired(self) -> bool:
        """True when no time is left for upstream calls."""
        return self.upstream_timeout() <= 0.0
