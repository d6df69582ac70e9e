"""Single-flight: concurrent requests for the same key share one upstream call.

A platform that retries a transfer, or two legs of one call routed at once,
must not multiply the load on PolyAI. The first caller for a key starts the
call as its own task; later callers await the same task until it ends. The
task is shielded, so a caller that gives up (its own deadline, or a
cancelled request) never cancels the call the others are waiting on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from router.budget import Deadline

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Flight(Generic[T]):
    """One call in flight: its task and the deadline it runs under (the first caller's)."""

    task: asyncio.Task[T]
    deadline: Deadline


class SingleFlight(Generic[T]):
    """Calls in flight by key; a key is free again as soon as its call ends."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[Hashable, Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def get(self, key: Hashable) -> Flight[T] | None:
        """The call in flight for ``key``, if any."""
        return self._flights.get(key)

    def start(self, key: Hashable, call: Coroutine[Any, Any, T], deadline: Deadline) -> Flight[T]:
        """Run ``call`` as the one flight for ``key`` (there must be none yet)."""
        if key in self._flights:
            call.close()
            raise RuntimeError("a call for this key is already in flight")
        task = asyncio.create_task(call)
        flight = Flight(task, deadline)
        self._flights[key] = flight

        def _done(_: asyncio.Task[T]) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]

        task.add_done_callback(_done)
        return flight

    @staticmethod
    async def wait(flight: Flight[T], deadline: Deadline) -> T:
        """Await ``flight`` for as long as ``deadline`` allows; ``TimeoutError`` when it doesn't.

        A flight ends by its own deadline, so a caller whose upstream time
        lasts at least as long simply waits for it (bounded, as a safety net,
        by the caller's whole remaining budget). A caller with less time stops
        waiting at its own upstream deadline and leaves the call running for
        the others.
        """
        if deadline.upstream_expires_at >= flight.deadline.upstream_expires_at:
            async with asyncio.timeout(deadline.remaining()):
                return await asyncio.shield(flight.task)
        async with deadline.upstream_window():
            return await asyncio.shield(flight.task)
