"""Redis faults never cost a decision: a private redis-server killed, paused and restarted.

Each test starts its own ``redis-server`` (see redis_servers.py) so that breaking it
touches nobody else. No assertion depends on how fast a loaded machine runs:

- the store's breaker runs on a :class:`~tests.fakes.clock.SkippingClock`, so a test
  moves past ``ROUTER_BREAKER_RESET_S`` at once instead of sleeping through it, and the
  breaker never half-opens by itself while the test runs;
- a dead Redis refuses at once, so tests of a dead Redis give the store a long timeout
  and expect ``error``, never a ``timeout`` a busy machine could cause;
- wall-clock bounds only tell "bounded" from "not bounded", with a margin of at least
  the bound itself (and "never waited" is checked without a clock: the call finishes
  without yielding to the event loop);
- what must happen once Redis is back is waited for, with generous deadlines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from prometheus_client import REGISTRY

from router.budget import Deadline
from router.facts import FactGatherer, GatheredFacts
from router.store.base import CACHE_HANDOFF, StoreError
from router.store.redis import RedisStore
from tests.fakes.clock import SkippingClock
from tests.fakes.polyai import SAMPLE_CONVERSATION
from tests.store.redis_servers import RedisServer
from tests.store.saving import save_with_lookups
from tests.waiting import eventually

T = TypeVar("T")
MakeGatherer = Callable[..., tuple[FactGatherer, RedisStore]]
Faulty = Callable[..., tuple[FactGatherer, RedisStore, SkippingClock]]

BUDGET_MS = 1000
"""A request's budget: its store call, bounded at the store timeout, always has the
store's whole timeout (so a timeout counts against the breaker)."""
STORE_TIMEOUT_MS = 50
"""The store timeout of tests with a hung Redis (each hung call costs this much)."""
LONG_STORE_TIMEOUT_MS = 5000
"""The store timeout of tests that need Redis's answers or its refusals, never timeouts."""
FAILURES = 3
RESET_S = 30.0
"""The breaker's reset, on the store's clock: only the test moves past it."""
DECISION_TTL_S = 3600
"""Longer than any time the tests skip, so a queued decision does not expire."""
HEAL_WITHIN_S = 30.0
"""How long a test waits for the store to work again once Redis is back."""
STORE_FAILED = {"timeout", "error", "circuit_open"}


@pytest.fixture
def faulty(private_redis: RedisServer, make_gatherer: MakeGatherer) -> Faulty:
    """``faulty(**settings) -> (gatherer, store, clock)`` over the private Redis, with a
    quick breaker (3 failures; reset when the test moves ``clock`` by ``RESET_S``) and a
    50 ms store timeout."""

    def make(**overrides: Any) -> tuple[FactGatherer, RedisStore, SkippingClock]:
        settings: dict[str, Any] = {
            "ROUTER_STORE": private_redis.url,
            "ROUTER_STORE_TIMEOUT_MS": STORE_TIMEOUT_MS,
            "ROUTER_BREAKER_FAILURES": FAILURES,
            "ROUTER_BREAKER_RESET_S": RESET_S,
            **overrides,
        }
        clock = SkippingClock()
        gatherer, store = make_gatherer(clock=clock, **settings)
        return gatherer, store, clock

    return make


async def gather_in_budget(gatherer: FactGatherer, cid: str) -> GatheredFacts:
    """Gather with a 1 s budget; assert it was not held past it and got every fact.

    The store's part is never cached now (``cache_with_decision``), so that each gather
    makes exactly one store call and the breaker counts are predictable.
    """
    started = time.monotonic()
    got = await gatherer.gather(
        conversation_id=cid, deadline=Deadline.start(BUDGET_MS), cache_with_decision=True
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2 * BUDGET_MS / 1000, f"took {elapsed * 1000:.0f} ms"
    assert got.sources["handoff"] == "ok"
    assert got.sources["state"] == "ok"
    assert got.facts["state"] == SAMPLE_CONVERSATION["state"]
    assert not got.degraded  # a store fault alone does not degrade the decision
    return got


async def within(seconds: float, call: Coroutine[Any, Any, T]) -> T:
    """Await ``call`` and assert it returned (or raised) in less than ``seconds``."""
    started = time.monotonic()
    try:
        return await call
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"took {elapsed * 1000:.0f} ms"


def at_once(call: Coroutine[Any, Any, T]) -> T:
    """What ``call`` returns, asserting it never waited (never yielded to the event loop)."""
    try:
        call.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    call.close()
    raise AssertionError("it waited")


def reopen_if_open(store: RedisStore, clock: SkippingClock) -> None:
    """Move the store's clock past the breaker's reset if the breaker is open, so that
    the next call probes Redis."""
    if store.breaker_state == "open":
        clock.advance(RESET_S)


async def gather_until_the_store_answers(
    gatherer: FactGatherer, store: RedisStore, clock: SkippingClock
) -> GatheredFacts:
    """Gather until the store's part is ``ok`` (Redis is back), letting the breaker probe."""
    deadline = time.monotonic() + HEAL_WITHIN_S
    while True:
        reopen_if_open(store, clock)
        got = await gather_in_budget(gatherer, "c-after")
        if got.sources["store"] == "ok":
            return got
        assert time.monotonic() < deadline, f"the store never answered: {got.sources}"


async def drained(store: RedisStore, clock: SkippingClock) -> None:
    """Wait until the outbox has written everything, letting the breaker probe."""

    def empty() -> bool:
        reopen_if_open(store, clock)
        return store.outbox_pending == 0

    await eventually(empty, within=HEAL_WITHIN_S)


def store_up() -> float | None:
    return REGISTRY.get_sample_value("router_store_up")


def decision(n: int, **fields: Any) -> dict[str, Any]:
    return {"decision_id": f"d{n}", "conversation_id": f"c{n}", "shared_id": f"s{n}", **fields}


# A hung Redis (SIGSTOP) ----------------------------------------------------------------


async def test_a_hung_redis_costs_one_store_timeout_until_the_breaker_opens(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    gatherer, store, clock = faulty()
    await store.connect()

    private_redis.pause()
    seen = [(await gather_in_budget(gatherer, f"c{n}")).sources["store"] for n in range(6)]
    assert seen == ["timeout"] * FAILURES + ["circuit_open"] * (6 - FAILURES)
    assert store.breaker_state == "open"
    assert REGISTRY.get_sample_value("router_breaker_open", {"source": "store"}) == 1.0
    assert store_up() == 0.0
    assert at_once(store.status()) == "down"  # the breaker knows: no round trip

    private_redis.resume()
    await gather_until_the_store_answers(gatherer, store, clock)
    assert store.breaker_state == "closed"
    assert store_up() == 1.0
    assert await store.status() == "ok"


async def test_a_timeout_cut_short_by_the_budget_does_not_open_the_breaker(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    _, store, _ = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.pause()
    for _ in range(FAILURES + 2):
        with pytest.raises(StoreError) as caught:
            # at its 10 ms budget, long before the store timeout
            await within(LONG_STORE_TIMEOUT_MS / 2000, store.read_known("c1", None, timeout_s=0.01))
        assert caught.value.fault == "timeout"
    assert store.breaker_state == "closed"
    with pytest.raises(StoreError, match="no time left"):
        await store.read_known("c1", None, timeout_s=0)


async def test_the_store_waits_no_longer_than_the_budget_left(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    gatherer, store, _ = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.pause()
    for n in range(FAILURES + 1):
        got = await within(
            LONG_STORE_TIMEOUT_MS / 2000,  # a 40 ms budget, not the 5 s store timeout
            gatherer.gather(
                conversation_id=f"c{n}",
                inline_handoff={"handoff_reason": "refund"},
                inline_state={"customer_tier": "gold"},
                deadline=Deadline.start(40),
            ),
        )
        assert got.sources == {
            "handoff": "inline",
            "state": "inline",
            "conversation": "skipped",
            "store": "timeout",
        }
    assert store.breaker_state == "closed"  # the budget cut it short, not Redis


# A crashed Redis (SIGKILL), then restarted ----------------------------------------------


async def test_a_dead_redis_is_an_error_then_circuit_open_and_a_restart_heals_it(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    gatherer, store, clock = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.kill()
    seen = [(await gather_in_budget(gatherer, f"c{n}")).sources["store"] for n in range(5)]
    assert seen == ["error"] * FAILURES + ["circuit_open"] * (5 - FAILURES)
    assert at_once(store.status()) == "down"

    private_redis.start()  # same port, empty
    await gather_until_the_store_answers(gatherer, store, clock)
    assert store.breaker_state == "closed"


async def test_a_push_that_cannot_be_stored_raises_and_is_not_acknowledged(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    _, store, clock = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.pause()
    with pytest.raises(StoreError) as caught:
        await within(
            LONG_STORE_TIMEOUT_MS / 2000,
            store.push("c1", "s1", state={"a": 1}, ttl_s=60, timeout_s=0.05),
        )
    assert caught.value.fault == "timeout"
    private_redis.kill()
    faults = []
    for _ in range(FAILURES + 1):
        with pytest.raises(StoreError) as caught:
            await within(LONG_STORE_TIMEOUT_MS / 2000, store.push("c1", None, state={}, ttl_s=60))
        faults.append(caught.value.fault)
    assert faults == ["error"] * FAILURES + ["circuit_open"]

    private_redis.start()
    clock.advance(RESET_S)
    await store.push("c1", "s1", state={"a": 2}, ttl_s=60)
    assert (await store.read_known(None, "s1")).pushed.state == {"a": 2}


async def test_decisions_made_while_redis_is_down_are_written_when_it_is_back(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    gatherer, store, clock = faulty(
        ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS, ROUTER_DECISION_TTL_S=DECISION_TTL_S
    )
    await store.connect()
    private_redis.kill()
    gathered = await gather_in_budget(gatherer, "c0")
    assert gathered.sources["store"] == "error"
    await within(
        LONG_STORE_TIMEOUT_MS / 2000,  # refused at once, not held for the store timeout
        save_with_lookups(
            store,
            decision(0, shared_id=gathered.shared_id),
            gathered,
            deadline=Deadline.start(100),
        ),
    )
    for n in range(1, 5):  # queued behind the first: no round trip at all
        at_once(store.save_decision(decision(n), ttl_s=DECISION_TTL_S))
    assert store.outbox_pending == 5
    assert REGISTRY.get_sample_value("router_store_outbox_pending") == 5.0

    private_redis.start()
    await drained(store, clock)
    assert REGISTRY.get_sample_value("router_store_outbox_pending") == 0.0
    first = await store.decision_for_conversation("c0")
    assert first is not None
    assert first["decision_id"] == "d0"
    for n in range(1, 5):
        assert await store.decision_for_conversation(f"c{n}") == decision(n)
        assert await store.decision_for_shared_id(f"s{n}") == decision(n)
    # The lookups of the outage are not kept (a cache is not worth a decision's care).
    assert CACHE_HANDOFF not in (await store.read_known("c0", None)).cached


async def test_an_older_queued_decision_never_overwrites_a_newer_one(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    _, store, clock = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.kill()
    await store.save_decision(decision(1, decision_id="older"), ttl_s=DECISION_TTL_S)
    assert store.outbox_pending == 1
    private_redis.start()
    # Redis answers again, but nothing has run since: the older decision still waits, so
    # the newer one queues behind it (no round trip) instead of landing first.
    at_once(store.save_decision(decision(1, decision_id="newer"), ttl_s=DECISION_TTL_S))
    assert store.outbox_pending == 2
    await drained(store, clock)
    assert (await store.decision_for_conversation("c1") or {})["decision_id"] == "newer"


async def test_the_outbox_is_bounded_and_drops_the_oldest_first(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    _, store, clock = faulty(
        ROUTER_STORE_OUTBOX_MAX=3, ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS
    )
    await store.connect()
    dropped_before = REGISTRY.get_sample_value("router_store_outbox_dropped_total") or 0.0
    private_redis.kill()
    for n in range(5):
        await store.save_decision(decision(n), ttl_s=DECISION_TTL_S)
    assert store.outbox_pending == 3
    dropped = REGISTRY.get_sample_value("router_store_outbox_dropped_total") or 0.0
    assert dropped - dropped_before == 2

    private_redis.start()
    await drained(store, clock)
    assert await store.decision_for_conversation("c0") is None
    assert await store.decision_for_conversation("c1") is None
    for n in (2, 3, 4):
        assert await store.decision_for_conversation(f"c{n}") == decision(n)


async def test_closing_writes_what_the_outbox_still_holds(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    _, store, clock = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    private_redis.kill()
    await store.save_decision(decision(7), ttl_s=DECISION_TTL_S)
    private_redis.start()
    reopen_if_open(store, clock)  # the flusher may have failed often enough to open it
    await store.close(flush_within_s=HEAL_WITHIN_S)
    _, reader, _ = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    assert await reader.decision_for_conversation("c7") == decision(7)


async def test_every_gather_answers_in_budget_while_redis_restarts(
    private_redis: RedisServer, faulty: Faulty
) -> None:
    gatherer, store, clock = faulty(ROUTER_STORE_TIMEOUT_MS=LONG_STORE_TIMEOUT_MS)
    await store.connect()
    seen: list[str] = []
    stop = asyncio.Event()

    async def keep_gathering() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            seen.append((await gather_in_budget(gatherer, f"c{n}")).sources["store"])
            await asyncio.sleep(0.005)  # pacing, so the test's own steps get to run

    traffic = asyncio.create_task(keep_gathering())
    try:
        for _ in range(2):
            await eventually(lambda: "ok" in seen[-1:], within=HEAL_WITHIN_S)
            before = len(seen)

            def noticed(since: int = before) -> bool:
                return bool(STORE_FAILED & set(seen[since:]))

            await asyncio.to_thread(private_redis.kill)
            await eventually(noticed, within=HEAL_WITHIN_S)  # down until a gather met it
            await asyncio.to_thread(private_redis.start)

            def healed() -> bool:
                reopen_if_open(store, clock)
                return "ok" in seen[-1:]

            await eventually(healed, within=HEAL_WITHIN_S)
    finally:
        stop.set()
        await traffic
    assert set(seen) <= {"ok"} | STORE_FAILED
    assert seen[-1] == "ok"
