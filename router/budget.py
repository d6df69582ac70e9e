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

import asyncio
import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

RESERVE_FRACTION = 0.05
"""Share of the budget kept back for deciding and answering."""
MIN_RESERVE_S = 0.010
"""Smallest reserve, whatever the budget."""
MAX_RESERVE_S = 0.050
"""Largest reserve, whatever the budget."""


def reserve_for(budget_s: float) -> float:
    """The reserve (seconds) kept back from upstream calls for a budget of ``budget_s``."""
    return min(max(budget_s * RESERVE_FRACTION, MIN_RESERVE_S), MAX_RESERVE_S)


@dataclass(slots=True, eq=False)  # not frozen: one per call, and frozen fields cost
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
    crowd: Crowd | None = field(default=None, compare=False, repr=False)
    """The requests of this process waiting on upstreams, which may end this request's
    upstream waits earlier than ``upstream_expires_at`` (see :class:`Crowd`)."""

    @classmethod
    def start(
        cls,
        budget_ms: float,
        *,
        started_at: float | None = None,
        reserve_ms: float | None = None,
        crowd: Crowd | None = None,
    ) -> Deadline:
        """Start a budget of ``budget_ms`` milliseconds.

        ``started_at`` is the request's arrival (a ``time.monotonic()`` value,
        default now) so that time spent before the handler runs counts too;
        ``reserve_ms`` overrides the default reserve (:func:`reserve_for`); ``crowd`` paces
        the ends of the upstream waits of requests whose deadlines fall together.
        """
        budget_s = max(float(budget_ms), 0.0) / 1000.0
        reserve_s = reserve_for(budget_s) if reserve_ms is None else max(reserve_ms, 0.0) / 1000.0
        return cls(
            time.monotonic() if started_at is None else started_at, budget_s, reserve_s, crowd
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

    def upstream_window(self) -> UpstreamWindow:
        """``async with deadline.upstream_window():`` bounds an upstream wait (a lookup, a
        store round trip) by the upstream deadline, or earlier when the :class:`Crowd`
        needs this request to stop waiting sooner; ``TimeoutError`` when it ends."""
        return UpstreamWindow(self)


class UpstreamWindow:
    """One upstream wait of a request: an :func:`asyncio.timeout` its crowd may move up."""

    __slots__ = ("_deadline", "_timeout")

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> UpstreamWindow:
        deadline = self._deadline
        loop = asyncio.get_running_loop()
        when = loop.time() + (deadline.upstream_expires_at - time.monotonic())
        timeout = self._timeout = asyncio.timeout_at(when)
        await timeout.__aenter__()
        if deadline.crowd is not None:
            deadline.crowd.enter(deadline, timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._timeout is not None
        if self._deadline.crowd is not None:
            self._deadline.crowd.leave(self._deadline, self._timeout)
        await self._timeout.__aexit__(exc_type, exc, tb)
        return None


DEFAULT_ANSWER_COST_S = 0.0004
"""Time the event loop needs to answer one request whose upstream wait just ended (decide,
record, serialise, write), on a busy 2-core machine, with room to spare."""


class _Waiting:
    """A request of the crowd: its deadline and the upstream waits it has open."""

    __slots__ = ("cut", "deadline", "expires_at", "timeouts")

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.expires_at = deadline.expires_at
        self.timeouts: list[asyncio.Timeout] = []
        self.cut = False

    def __lt__(self, other: _Waiting) -> bool:
        return self.expires_at < other.expires_at


class Crowd:
    """The requests of one process waiting on upstreams, and when each must stop waiting.

    Each request keeps a reserve for deciding and answering once its upstream waits end.
    That is enough alone, but not when a burst of requests all wait on a hanging upstream:
    their deadlines fall within milliseconds, and the event loop answers them one after
    another. The crowd ends the waits early enough that they all answer in time: ordered by
    deadline ``D``, the ``k``-th request (counting the ones due no later than it) must stop
    waiting by ``D - reserve - k × answer_cost``, and no later than the one after it less
    one answer's cost. One timer serves the whole crowd; it cuts every wait due and re-arms
    for the next.

    The cost of one answer starts at :data:`DEFAULT_ANSWER_COST_S` and follows what the
    crowd measures: from the first cut made while no cut request was left unanswered to
    the moment all of them are answered (:meth:`answered`), divided by how many they were.
    If the loop keeps up, that is one answer's own time; if it falls behind, the cuts run
    together and it is the time per answer of the whole run. Either way a machine busier
    than expected gets earlier cuts at the next burst. ``clock`` is ``time.monotonic``.
    """

    __slots__ = (
        "_answer_cost_s",
        "_by_deadline",
        "_clock",
        "_due_at",
        "_measured_cost_s",
        "_purge_at",
        "_run_count",
        "_run_started",
        "_timer",
        "_unanswered",
        "_waiting",
    )

    def __init__(
        self,
        *,
        answer_cost_s: float = DEFAULT_ANSWER_COST_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._answer_cost_s = answer_cost_s
        self._measured_cost_s = answer_cost_s
        self._unanswered = 0
        self._purge_at = 0.0
        self._run_started = 0.0
        self._run_count = 0
        self._clock = clock
        self._waiting: list[_Waiting] = []
        self._by_deadline: dict[int, _Waiting] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due_at = float("inf")

    def __len__(self) -> int:
        """Requests waiting now."""
        return len(self._waiting)

    def enter(self, deadline: Deadline, timeout: asyncio.Timeout) -> None:
        """A wait of ``deadline``'s request begins, bounded by ``timeout``."""
        waiting = self._by_deadline.get(id(deadline))
        if waiting is None:
            waiting = self._by_deadline[id(deadline)] = _Waiting(deadline)
        if waiting.cut:  # the crowd already ended this request's waits: end this one too
            timeout.reschedule(asyncio.get_running_loop().time())
            return
        waiting.timeouts.append(timeout)
        if len(waiting.timeouts) > 1:
            return
        if not self._waiting or self._waiting[-1].expires_at <= waiting.expires_at:
            self._waiting.append(waiting)  # the usual case: budgets are alike
            due = waiting.expires_at - waiting.deadline.reserve_s
            due -= self._answer_cost_s * len(self._waiting)
        else:
            bisect.insort(self._waiting, waiting)
            due = self._cutoffs()[0]
        if due < self._due_at:
            self._arm(due)

    def leave(self, deadline: Deadline, timeout: asyncio.Timeout) -> None:
        """The wait bounded by ``timeout`` is over."""
        waiting = self._by_deadline.get(id(deadline))
        if waiting is None:
            return
        if timeout in waiting.timeouts:
            waiting.timeouts.remove(timeout)
        if waiting.timeouts or waiting.cut:
            return  # a cut request is remembered until its deadline passes (see _fire)
        del self._by_deadline[id(deadline)]
        index = bisect.bisect_left(self._waiting, waiting)
        while self._waiting[index] is not waiting:
            index += 1
        del self._waiting[index]
        # The timer stays armed: it may now fire a little early, and then re-arms.

    @property
    def answer_cost_s(self) -> float:
        """The time one answer is expected to take when many are due together."""
        return self._answer_cost_s

    def answered(self, deadline: Deadline) -> None:
        """``deadline``'s request has its answer: if the crowd cut its waits, learn how long
        answering takes."""
        waiting = self._by_deadline.get(id(deadline))
        if waiting is None or not waiting.cut:
            return
        del self._by_deadline[id(deadline)]
        self._settle(self._clock())

    def _settle(self, now: float) -> None:
        """One cut request is answered (or gone): at the end of a run, learn from it."""
        self._unanswered -= 1
        if self._unanswered > 0 or self._run_count == 0:
            return
        per_answer = (now - self._run_started) / self._run_count
        self._run_count = 0
        self._measured_cost_s += _LEARNING_RATE * (per_answer - self._measured_cost_s)
        self._answer_cost_s = min(
            max(self._measured_cost_s * _COST_MARGIN, _MIN_ANSWER_COST_S), _MAX_ANSWER_COST_S
        )

    def _cutoffs(self) -> list[float]:
        """When each waiting request must stop waiting (monotonic), in deadline order."""
        cost = self._answer_cost_s
        cutoffs = [0.0] * len(self._waiting)
        latest = float("inf")
        for index in range(len(self._waiting) - 1, -1, -1):
            waiting = self._waiting[index]
            latest = min(waiting.expires_at - waiting.deadline.reserve_s, latest) - cost
            cutoffs[index] = latest
        return cutoffs

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._due_at = due
        self._timer = loop.call_at(loop.time() + (due - self._clock()), self._fire)

    def _fire(self) -> None:
        """Cut every wait due now (with a millisecond's grace), then re-arm for the next."""
        self._timer = None
        due, self._due_at = self._due_at, float("inf")
        now = self._clock()
        if now - due > _LAG_S and self._unanswered > 0:
            # The loop is late while it is still answering the last cuts: the machine is
            # busier than the learnt cost says. Take more room now, not at the next burst.
            self._answer_cost_s = min(self._answer_cost_s * _LAG_BOOST, _MAX_ANSWER_COST_S)
        if now >= self._purge_at:  # cut requests that never said they were answered
            self._purge_at = now + _PURGE_EVERY_S
            for key, waiting in list(self._by_deadline.items()):
                if waiting.cut and waiting.expires_at < now:
                    del self._by_deadline[key]
                    self._settle(now)
        if not self._waiting:
            return
        cutoffs = self._cutoffs()
        loop_now = asyncio.get_running_loop().time()
        kept: list[_Waiting] = []
        cut: list[_Waiting] = []
        next_due = float("inf")
        for waiting, cutoff in zip(self._waiting, cutoffs, strict=True):
            if cutoff <= now + _GRACE_S:
                cut.append(waiting)
            else:
                kept.append(waiting)
                next_due = min(next_due, cutoff)
        if cut and self._unanswered <= 0:
            self._unanswered, self._run_started, self._run_count = 0, now, 0
        self._unanswered += len(cut)
        self._run_count += len(cut)
        for waiting in cut:
            waiting.cut = True
            for timeout in waiting.timeouts:
                timeout.reschedule(loop_now)
        self._waiting = kept
        if kept:
            self._arm(next_due)


_GRACE_S = 0.001
"""Waits due within this much of the crowd's timer are cut by the same firing."""
_LEARNING_RATE = 0.2
"""Weight of the latest measured run in the answer cost."""
_COST_MARGIN = 1.25
"""Room over the measured cost (writing the answer happens after it is counted)."""
_LAG_S = 0.002
"""The crowd's timer firing this late means the loop is behind."""
_LAG_BOOST = 1.5
_PURGE_EVERY_S = 1.0
_MIN_ANSWER_COST_S = 0.0001
_MAX_ANSWER_COST_S = 0.005
