"""Single-flight: one call per key however many callers wait on it."""

from __future__ import annotations

import asyncio

import pytest

from router.budget import Deadline
from router.facts.singleflight import SingleFlight
from tests.waiting import eventually


async def test_concurrent_callers_share_one_call() -> None:
    calls = 0
    release = asyncio.Event()

    async def call() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    flights: SingleFlight[str] = SingleFlight()
    deadline = Deadline.start(10_000)
    joined = 0

    async def caller() -> str:
        nonlocal joined
        flight = flights.get("k") or flights.start("k", call(), deadline)
        joined += 1
        return await SingleFlight.wait(flight, deadline)

    waiting = [asyncio.create_task(caller()) for _ in range(10)]
    await eventually(lambda: joined == 10)  # every caller holds the flight before it ends
    release.set()
    assert await asyncio.gather(*waiting) == ["answer"] * 10
    assert calls == 1
    assert len(flights) == 0  # the key is free once the call ends


async def test_a_caller_with_less_time_gives_up_without_cancelling_the_call() -> None:
    release = asyncio.Event()

    async def call() -> str:
        await release.wait()
        return "answer"

    flights: SingleFlight[str] = SingleFlight()
    leader = flights.start("k", call(), Deadline.start(2000))
    with pytest.raises(TimeoutError):
        await SingleFlight.wait(leader, Deadline.start(50))
    assert not leader.task.done()
    release.set()
    assert await SingleFlight.wait(leader, leader.deadline) == "answer"


async def test_starting_a_second_flight_for_a_key_is_refused() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def call() -> int:
        await asyncio.sleep(0)  # not done before the second start below
        return 1

    flights.start("k", call(), Deadline.start(100))
    with pytest.raises(RuntimeError):
        flights.start("k", call(), Deadline.start(100))
    flight = flights.get("k")
    assert flight is not None
    assert await flight.task == 1
