"""What the ops page shows of this process's traffic: the latest answers and per-queue counts.

Kept in memory, per process, and bounded: a ring of the last :data:`RECENT_MAX` answers
and one counter per queue per minute for the last hour. This is a view for people, not a
record: decision records for replay (contract §8) are kept elsewhere.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from router.service.answer import Answer

RECENT_MAX = 200
"""Answers kept for the ops page's recent decisions."""
TRAFFIC_MINUTES = 60
"""Minutes of per-queue counts kept for the ops page's chart."""
TRAFFIC_QUEUES_MAX = 50
"""Most queues counted per minute (more are counted under :data:`OTHER_QUEUES`)."""
OTHER_QUEUES = "(other queues)"


@dataclass(frozen=True, slots=True)
class RecentDecision:
    """One answer and when it was given."""

    at: datetime
    answer: Answer


@dataclass(frozen=True, slots=True)
class Traffic:
    """Decisions per queue per minute over the last hour, oldest minute first."""

    minutes: tuple[datetime, ...]
    """The start of each minute (UTC)."""
    counts: dict[str, tuple[int, ...]]
    """Queue → one count per minute of :attr:`minutes`."""


class RecentDecisions:
    """A bounded ring of the latest answers plus per-minute counts per queue."""

    def __init__(
        self, max_entries: int = RECENT_MAX, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._ring: deque[tuple[float, Answer]] = deque(maxlen=max_entries)
        self._minutes: dict[int, Counter[str]] = {}
        self._clock = clock

    def add(self, answer: Answer) -> None:
        """Note one answer (O(1), no I/O: this runs on every routed call)."""
        now = self._clock()
        self._ring.append((now, answer))  # made a RecentDecision only when asked for
        minute = int(now // 60)
        counts = self._minutes.get(minute)
        if counts is None:
            counts = self._minutes[minute] = Counter()
            for old in [m for m in self._minutes if m <= minute - TRAFFIC_MINUTES]:
                del self._minutes[old]
        queue = answer.queue
        if queue not in counts and len(counts) >= TRAFFIC_QUEUES_MAX:
            queue = OTHER_QUEUES
        counts[queue] += 1

    def latest(self, n: int) -> list[RecentDecision]:
        """The ``n`` latest answers, newest first."""
        ring = self._ring
        count = min(max(n, 0), len(ring))
        return [
            RecentDecision(datetime.fromtimestamp(ring[-1 - i][0], UTC), ring[-1 - i][1])
            for i in range(count)
        ]

    def traffic(self) -> Traffic:
        """Per-queue counts for each of the last :data:`TRAFFIC_MINUTES` minutes."""
        now_minute = int(self._clock() // 60)
        minutes = range(now_minute - TRAFFIC_MINUTES + 1, now_minute + 1)
        queues = sorted({q for m in minutes for q in self._minutes.get(m, ())})
        counts = {
            queue: tuple(self._minutes.get(m, Counter()).get(queue, 0) for m in minutes)
            for queue in queues
        }
        return Traffic(tuple(datetime.fromtimestamp(m * 60, UTC) for m in minutes), counts)
