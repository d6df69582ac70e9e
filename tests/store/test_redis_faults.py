"""Redis faults never cost a decision: a private redis-server killed, paused and restarted.

Each test starts its own ``redis-server`` (see redis_servers.py) so that breaking it
touches nobody else. The only timing assertion allowed is "answered within budget plus
a small margin".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from router.budget import Deadline
from router.facts import FactGatherer, GatheredFacts
from router.store.base import CACHE_HANDOFF, StoreError
from router.store.redis import RedisStore
from tests.fakes.polyai import SAMPLE_CONVERSATION
from tests.store.redis_servers import RedisServer
from tests.store.saving import save_with_lookups
from tests.waiting import eventually

MakeGatherer = Callable[..., tuple[FactGatherer, RedisStore]]

BUDGET_MS = 300
MARGIN_S = 0.05
"""Allowed beyond the budget: scheduling on a loaded test machine."""
STORE_TIMEOUT_MS = 50
FAILURES = 3
RESET_S = 0.5
STORE_FAILED = {"timeout", "error", "circuit_open"}


@pytest.fixture
def faulty(private_redis: RedisServer, make_gatherer: MakeGatherer) -> Callable[..., Any]:
    """``faulty(**settings) -> (gatherer, store)`` over the private Redis, with a quick
    breaker (3 failures, 0.5 s reset) and a 50 ms store timeout."""

    def make(**overrides: Any) -> tuple[FactGatherer, RedisStore]:
        settings: dict[str, Any] = {
            "ROUTER_STORE": private_redis.url,
            "ROUTER_STORE_TIMEOUT_MS": STORE_TIMEOUT_MS,
            "ROUTER_BREAKER_FAILURES": FAILURES,
            "ROUTER_BREAKER_RESET_S": RESET_S,
            **overrides,
        }
        return make_gatherer(**settings)

    return make


async def gather_in_budget(gatherer: FactGatherer, cid: str) -> GatheredFacts:
    """Gather with a 300 ms budget; assert it answered within budget and with every fact.

    The store's part is never cached now (``cache_with_decision``), so that each gather
    makes exactly one store call and the breaker counts are predictable.
    """
    started = time.monotonic()
    got = await gatherer.gather(
        conversation_id=cid, deadline=Deadline.start(BUDGET_MS), cache_with_decision=True
    )
    elapsed = time.monotonic() - started
    assert elapsed <= BUDGET_MS / 1000 + MARGIN_S, f"took {elapsed * 1000:.0f} ms"
    assert got.sources["handoff"] == "ok"
    assert got.sources["state"] == "ok"
    assert got.facts["state"] == SAMPLE_CONVERSATION["state"]
    assert not got.degraded  # a store fault alone does not degrade the decision
    return got


async def within(seconds: float, call: Any) -> Any:
    """Await ``call`` and assert it took at most ``seconds`` plus the margin."""
    started = time.monotonic()
    try:
        return await call
    finally:
        elapsed = time.monotonic() - started
        assert elapsed <= seconds + MARGIN_S, f"took {elapsed * 1000:.0f} ms"


def store_up() -> float | None:
    return REGISTRY.get_sample_value("router_store_up")


def decision(n: int, **fields: Any) -> dict[str, Any]:
    return {"decision_id": f"d{n}", "conversation_id": f"c{n}", "shared_id": f"s{n}", **fields}


# A hung Redis (SIGSTOP) ----------------------------------------------------------------


async def test_a_hung_redis_costs_one_store_timeout_until_the_breaker_opens(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    gatherer, store = faulty()
    await store.connect()
    assert (await gather_in_budget(gatherer, "c-before")).sources["store"] == "ok"

    private_redis.pause()
    seen = [(await gather_in_budget(gatherer, f"c{n}")).sources["store"] for n in range(6)]
    assert seen == ["timeout"] * FAILURES + ["circuit_open"] * (6 - FAILURES)
    assert store.breaker_state == "open"
    assert REGISTRY.get_sample_value("router_breaker_open", {"source": "store"}) == 1.0
    assert store_up() == 0.0
    assert await within(0.001, store.status()) == "down"  # the breaker knows: no round trip

    private_redis.resume()
    await asyncio.sleep(RESET_S)
    assert (await gather_in_budget(gatherer, "c-after")).sources["store"] == "ok"
    assert store.breaker_state == "closed"
    assert store_up() == 1.0
    assert await store.status() == "ok"


async def test_a_timeout_cut_short_by_the_budget_does_not_open_the_breaker(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    _, store = faulty()
    await store.connect()
    private_redis.pause()
    for _ in range(FAILURES + 2):
        with pytest.raises(StoreError) as caught:
            await within(0.01, store.read_known("c1", None, timeout_s=0.01))
        assert caught.value.fault == "timeout"
    assert store.breaker_state == "closed"
    with pytest.raises(StoreError, match="no time left"):
        await store.read_known("c1", None, timeout_s=0)


async def test_the_store_waits_no_longer_than_the_budget_left(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    gatherer, store = faulty(ROUTER_STORE_TIMEOUT_MS=1000)
    await store.connect()
    private_redis.pause()
    for n in range(FAILURES + 1):
        started = time.monotonic()
        got = await gatherer.gather(
            conversation_id=f"c{n}",
            inline_handoff={"handoff_reason": "refund"},
            inline_state={"customer_tier": "gold"},
            deadline=Deadline.start(40),
        )
        elapsed = time.monotonic() - started
        assert elapsed <= 0.04 + MARGIN_S, f"took {elapsed * 1000:.0f} ms"
        assert got.sources == {
            "handoff": "inline",
            "state": "inline",
            "conversation": "skipped",
            "store": "timeout",
        }
    assert store.breaker_state == "closed"  # the budget cut it short, not Redis


# A crashed Redis (SIGKILL), then restarted ----------------------------------------------


async def test_a_dead_redis_is_an_error_then_circuit_open_and_a_restart_heals_it(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    gatherer, store = faulty()
    await store.connect()
    private_redis.kill()
    seen = [(await gather_in_budget(gatherer, f"c{n}")).sources["store"] for n in range(5)]
    assert seen == ["error"] * FAILURES + ["circuit_open"] * (5 - FAILURES)
    assert await store.status() == "down"

    private_redis.start()  # same port, empty
    await asyncio.sleep(RESET_S)
    assert (await gather_in_budget(gatherer, "c-after")).sources["store"] == "ok"
    assert store.breaker_state == "closed"


async def test_a_push_that_cannot_be_stored_raises_and_is_not_acknowledged(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    _, store = faulty()
    await store.connect()
    private_redis.pause()
    with pytest.raises(StoreError) as caught:
        await within(STORE_TIMEOUT_MS / 1000, store.push("c1", "s1", state={"a": 1}, ttl_s=60))
    assert caught.value.fault == "timeout"
    private_redis.kill()
    faults = []
    for _ in range(FAILURES + 1):
        with pytest.raises(StoreError) as caught:
            await within(STORE_TIMEOUT_MS / 1000, store.push("c1", None, state={}, ttl_s=60))
        faults.append(caught.value.fault)
    assert faults[-1] == "circuit_open"
    assert set(faults[:-1]) <= {"error", "circuit_open"}

    private_redis.start()
    await asyncio.sleep(RESET_S)
    await store.push("c1", "s1", state={"a": 2}, ttl_s=60)
    assert (await store.read_known(None, "s1")).pushed.state == {"a": 2}


async def test_decisions_made_while_redis_is_down_are_written_when_it_is_back(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    gatherer, store = faulty()
    await store.connect()
    private_redis.kill()
    gathered = await gather_in_budget(gatherer, "c0")
    assert gathered.sources["store"] == "error"
    await within(
        BUDGET_MS / 1000,
        save_with_lookups(
            store,
            decision(0, shared_id=gathered.shared_id),
            gathered,
            deadline=Deadline.start(100),
        ),
    )
    for n in range(1, 5):
        await within(STORE_TIMEOUT_MS / 1000, store.save_decision(decision(n), ttl_s=60))
    assert store.outbox_pending == 5
    assert REGISTRY.get_sample_value("router_store_outbox_pending") == 5.0

    private_redis.start()
    await eventually(lambda: store.outbox_pending == 0, within=5)
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
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    _, store = faulty()
    await store.connect()
    private_redis.kill()
    await store.save_decision(decision(1, decision_id="older"), ttl_s=60)
    private_redis.start()
    await store.save_decision(decision(1, decision_id="newer"), ttl_s=60)
    await eventually(lambda: store.outbox_pending == 0, within=5)
    assert (await store.decision_for_conversation("c1") or {})["decision_id"] == "newer"


async def test_the_outbox_is_bounded_and_drops_the_oldest_first(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    _, store = faulty(ROUTER_STORE_OUTBOX_MAX=3)
    await store.connect()
    dropped_before = REGISTRY.get_sample_value("router_store_outbox_dropped_total") or 0.0
    private_redis.kill()
    for n in range(5):
        await store.save_decision(decision(n), ttl_s=60)
    assert store.outbox_pending == 3
    dropped = REGISTRY.get_sample_value("router_store_outbox_dropped_total") or 0.0
    assert dropped - dropped_before == 2

    private_redis.start()
    await eventually(lambda: store.outbox_pending == 0, within=5)
    assert await store.decision_for_conversation("c0") is None
    assert await store.decision_for_conversation("c1") is None
    for n in (2, 3, 4):
        assert await store.decision_for_conversation(f"c{n}") == decision(n)


async def test_closing_writes_what_the_outbox_still_holds(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    _, store = faulty()
    await store.connect()
    private_redis.kill()
    await store.save_decision(decision(7), ttl_s=60)
    private_redis.start()
    await store.close(flush_within_s=2.0)
    _, reader = faulty()
    assert await reader.decision_for_conversation("c7") == decision(7)


async def test_every_gather_answers_in_budget_while_redis_restarts(
    private_redis: RedisServer, faulty: Callable[..., Any]
) -> None:
    gatherer, store = faulty()
    await store.connect()
    seen: list[str] = []
    stop = asyncio.Event()

    async def keep_gathering() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            seen.append((await gather_in_budget(gatherer, f"c{n}")).sources["store"])
            await asyncio.sleep(0.005)

    traffic = asyncio.create_task(keep_gathering())
    try:
        for _ in range(2):
            await asyncio.sleep(0.1)
            await asyncio.to_thread(private_redis.restart)
        await asyncio.sleep(RESET_S + 0.1)
        await eventually(lambda: seen[-1] == "ok", within=3)
    finally:
        stop.set()
        await traffic
    assert set(seen) <= {"ok"} | STORE_FAILED
    assert set(seen) & STORE_FAILED, "the restarts went unnoticed"
    assert seen[-1] == "ok"
