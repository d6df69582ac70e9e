"""One behaviour, every backend: the same store tests against memory, Redis, Redis Cluster
and Redis behind Sentinel.

This is the Store contract (router.store.base): pushes merge per namespace, either id
finds what was written under both, the conversation id's value wins, every value
expires after its own TTL, decisions are kept as JSON and found by both ids.

Time is moved, never waited for: the memory store's clock is advanced, and on Redis
every key of the test has its remaining TTL cut by the time skipped (a key whose TTL
runs out is deleted, as Redis would expire it). So no assertion depends on how fast a
loaded machine runs the test.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis

from router.store import MemoryStore, Store
from router.store.base import CACHE_HANDOFF, CACHE_RECORD, NOTHING_PUSHED, JSONMap, Known
from tests.fakes.clock import ManualClock
from tests.store.conftest import SHARED_REDIS_URL, MakeStore
from tests.store.redis_servers import command

TTL = 30.0
"""The TTL (seconds) of values that expire in a test: far longer than a test takes, so
only skipped time expires them."""

SKIP_TTL = """
local left = redis.call('PTTL', KEYS[1])
local skip = tonumber(ARGV[1])
if left > skip then
  return redis.call('PEXPIRE', KEYS[1], left - skip)
elseif left >= 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Lua: cut a key's remaining TTL by ``ARGV[1]`` ms, deleting it when none would be left
(atomic, so the TTL read and the TTL written are of the same moment)."""


@dataclass
class Backend:
    name: str
    store: Store
    advance: Callable[[float], Awaitable[None]]
    """Let ``seconds`` pass for the store's TTLs."""


@pytest.fixture(params=["memory", "redis", "redis-cluster", "redis-sentinel"])
async def backend(request: pytest.FixtureRequest, make_store: MakeStore) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = ManualClock()
        memory = MemoryStore(1000, clock=clock)

        async def tick(seconds: float) -> None:
            clock.advance(seconds)

        yield Backend("memory", memory, tick)
        await memory.close()
        return
    if request.param == "redis":
        url = request.getfixturevalue("shared_redis_url")
        nodes = [redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=10)]
    elif request.param == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        url = cluster.url
        nodes = [redis.Redis(port=node.port, socket_timeout=10) for node in cluster.nodes]
    else:
        sentinel = request.getfixturevalue("redis_sentinel")
        url = sentinel.url
        nodes = [redis.Redis(port=sentinel.master.port, socket_timeout=10)]
    prefix: str = request.getfixturevalue("prefix")

    async def skip(seconds: float) -> None:
        """Let ``seconds`` pass for every key of this test, on every node holding one."""
        for node in nodes:
            for key in node.scan_iter(match=f"{prefix}*", count=500):
                command(node, "EVAL", SKIP_TTL, 1, key, round(seconds * 1000))

    try:
        yield Backend(request.param, await make_store(url), skip)
    finally:
        for node in nodes:
            node.close()


def nothing(known: Known) -> bool:
    """Nothing pushed and nothing cached (a Redis read may still name a linked id)."""
    return known.pushed == NOTHING_PUSHED and known.cached == {}


# Pushed facts ---------------------------------------------------------------------


async def test_a_push_is_read_back_by_either_id(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", "s1", data={"r": "refund"}, state={"tier": "gold"}, ttl_s=60)
    for known in (await store.read_known("c1", None), await store.read_known(None, "s1")):
        assert known.pushed.handoff == {"r": "refund"}
        assert known.pushed.state == {"tier": "gold"}
        assert known.pushed.conversation is None
        assert (known.pushed.conversation_id, known.pushed.shared_id) == ("c1", "s1")


async def test_a_push_keeps_numbers_plain_json_cannot_carry(backend: Backend) -> None:
    # A request body may hold these (pydantic reads them); orjson refuses or nulls them.
    store = backend.store
    state = {"big": 2**70, "inf": math.inf, "nested": {"nan": math.nan}, "none": None}
    await store.push("c1", None, state=state, data={"ok": True}, ttl_s=60)
    read = (await store.read_known("c1", None)).pushed
    assert read.state is not None
    assert read.state["big"] == 2**70
    assert read.state["inf"] == math.inf
    assert math.isnan(read.state["nested"]["nan"])
    assert read.state["none"] is None
    assert read.handoff == {"ok": True}


async def test_unknown_ids_read_as_nothing(backend: Backend) -> None:
    assert nothing(await backend.store.read_known("nope", "nope"))
    assert nothing(await backend.store.read_known(None, "nope"))
    assert nothing(await backend.store.read_known(None, None))


async def test_a_later_push_replaces_only_the_namespaces_it_carries(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", None, data={"a": "1"}, state={"x": "1", "y": "1"}, ttl_s=60)
    await store.push("c1", None, state={"x": "2"}, ttl_s=60)
    known = await store.read_known("c1", None)
    assert known.pushed.handoff == {"a": "1"}
    assert known.pushed.state == {"x": "2"}


async def test_the_conversation_ids_push_wins_over_the_shared_ids(backend: Backend) -> None:
    store = backend.store
    await store.push(None, "s1", state={"from": "sid"}, conversation={"c": "sid"}, ttl_s=60)
    await store.push("c1", None, state={"from": "cid"}, ttl_s=60)
    known = await store.read_known("c1", "s1")
    assert known.pushed.state == {"from": "cid"}
    assert known.pushed.conversation == {"c": "sid"}  # filled from the other id


async def test_by_shared_id_the_latest_push_of_each_namespace_wins(backend: Backend) -> None:
    store = backend.store
    await store.push(None, "s1", data={"h": "sid"}, state={"from": "sid"}, ttl_s=60)
    await store.push("c1", "s1", state={"from": "both"}, ttl_s=60)
    by_sid = await store.read_known(None, "s1")
    assert by_sid.pushed.state == {"from": "both"}
    assert by_sid.pushed.handoff == {"h": "sid"}
    assert by_sid.pushed.conversation_id == "c1"
    await store.push(None, "s1", state={"from": "sid again"}, ttl_s=60)
    assert (await store.read_known(None, "s1")).pushed.state == {"from": "sid again"}
    assert (await store.read_known("c1", None)).pushed.state == {"from": "both"}
    assert (await store.read_known("c1", "s1")).pushed.state == {"from": "both"}


async def test_a_push_is_a_copy_of_what_was_given(backend: Backend) -> None:
    state = {"tier": "gold"}
    await backend.store.push("c1", None, state=state, ttl_s=60)
    state["tier"] = "changed"
    assert (await backend.store.read_known("c1", None)).pushed.state == {"tier": "gold"}


async def test_pushed_facts_expire_after_their_ttl(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", "s1", state={"tier": "gold"}, ttl_s=TTL)
    await backend.advance(TTL / 2)
    assert (await store.read_known("c1", None)).pushed.state == {"tier": "gold"}
    assert (await store.read_known(None, "s1")).pushed.state == {"tier": "gold"}
    await backend.advance(TTL / 2 + 0.05)
    assert nothing(await store.read_known("c1", "s1"))
    assert nothing(await store.read_known(None, "s1"))


async def test_each_pushed_namespace_expires_on_its_own(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", None, data={"h": 1}, ttl_s=TTL)
    await backend.advance(TTL / 2)
    await store.push("c1", None, state={"s": 1}, ttl_s=TTL)
    await backend.advance(TTL / 2 + 0.05)
    known = await store.read_known("c1", None)
    assert known.pushed.handoff is None
    assert known.pushed.state == {"s": 1}


async def test_concurrent_pushes_to_one_conversation_all_land(backend: Backend) -> None:
    store = backend.store
    await asyncio.gather(
        store.push("c1", None, data={"d": 1}, ttl_s=60),
        store.push("c1", "s1", state={"s": 1}, ttl_s=60),
        store.push(None, "s1", conversation={"c": 1}, ttl_s=60),
    )
    known = await store.read_known("c1", "s1")
    assert known.pushed.handoff == {"d": 1}
    assert known.pushed.state == {"s": 1}
    assert known.pushed.conversation == {"c": 1}


# Lookup cache -----------------------------------------------------------------------


async def test_cached_lookups_are_read_by_either_id_until_the_ttl(backend: Backend) -> None:
    store = backend.store
    lookups: dict[str, JSONMap] = {
        CACHE_HANDOFF: {"id": "c1", "shared_id": "s1", "reason": "refund"},
        CACHE_RECORD: {"state": {"tier": "gold"}, "conversation": {"channel": "voice"}},
    }
    await store.cache_lookups("c1", "s1", lookups, ttl_s=TTL)
    assert (await store.read_known(None, "s1")).cached == lookups
    assert (await store.read_known("c1", None)).cached == lookups
    await backend.advance(TTL + 0.05)
    assert (await store.read_known("c1", "s1")).cached == {}
    assert (await store.read_known(None, "s1")).cached == {}


async def test_cache_and_push_have_their_own_ttls(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", None, state={"p": 1}, ttl_s=60)
    await store.cache_lookups("c1", None, {CACHE_HANDOFF: {"h": 1}}, ttl_s=TTL)
    await backend.advance(TTL + 0.05)
    known = await store.read_known("c1", None)
    assert known.cached == {}
    assert known.pushed.state == {"p": 1}


async def test_a_zero_cache_ttl_stores_nothing(backend: Backend) -> None:
    await backend.store.cache_lookups("c1", None, {CACHE_HANDOFF: {"h": 1}}, ttl_s=0)
    assert nothing(await backend.store.read_known("c1", None))


# Decisions ----------------------------------------------------------------------------


async def test_latest_decision_by_conversation_and_shared_id(backend: Backend) -> None:
    store = backend.store
    first = {"decision_id": "d1", "conversation_id": "c1", "shared_id": "s1", "skills": ["a"]}
    second = {"decision_id": "d2", "conversation_id": "c1", "shared_id": "s1", "skills": []}
    await store.save_decision(first, ttl_s=TTL)
    await store.save_decision(second, ttl_s=TTL)
    assert await store.decision_for_conversation("c1") == second
    assert await store.decision_for_shared_id("s1") == second
    assert await store.decision_for_conversation("s1") is None  # ids do not mix
    assert await store.decision_for_shared_id("c1") is None
    await backend.advance(TTL + 0.05)
    assert await store.decision_for_conversation("c1") is None
    assert await store.decision_for_shared_id("s1") is None


async def test_a_decision_is_stored_as_json(backend: Backend) -> None:
    store = backend.store
    await store.save_decision({"conversation_id": "c1", "skills": ("a", "b")}, ttl_s=60)
    read = await store.decision_for_conversation("c1")
    assert read == {"conversation_id": "c1", "skills": ["a", "b"]}
    assert read is not None
    read["skills"].append("mutated")
    assert await store.decision_for_conversation("c1") == {
        "conversation_id": "c1",
        "skills": ["a", "b"],
    }


async def test_a_decision_by_one_id_is_found_by_that_id_only(backend: Backend) -> None:
    store = backend.store
    await store.save_decision({"conversation_id": "c1", "shared_id": None}, ttl_s=60)
    await store.save_decision({"conversation_id": None, "shared_id": "s2"}, ttl_s=60)
    assert await store.decision_for_conversation("c1") == {
        "conversation_id": "c1",
        "shared_id": None,
    }
    assert await store.decision_for_shared_id("s2") == {"conversation_id": None, "shared_id": "s2"}
    assert await store.decision_for_conversation("s2") is None
    assert await store.decision_for_shared_id("c1") is None


async def test_a_decision_by_both_ids_replaces_one_by_shared_id_alone(backend: Backend) -> None:
    store = backend.store
    await store.save_decision({"decision_id": "d1", "shared_id": "s1"}, ttl_s=60)
    both = {"decision_id": "d2", "conversation_id": "c1", "shared_id": "s1"}
    await store.save_decision(both, ttl_s=60)
    assert await store.decision_for_shared_id("s1") == both


async def test_a_decision_can_carry_the_lookups_to_cache(backend: Backend) -> None:
    store = backend.store
    decision = {"decision_id": "d1", "conversation_id": "c1", "shared_id": "s1"}
    lookups: dict[str, JSONMap] = {CACHE_HANDOFF: {"id": "c1", "shared_id": "s1"}}
    await store.save_decision(decision, ttl_s=60, lookups=lookups, cache_ttl_s=TTL)
    assert await store.decision_for_shared_id("s1") == decision
    assert (await store.read_known(None, "s1")).cached == lookups
    assert (await store.read_known("c1", None)).cached == lookups
    await backend.advance(TTL + 0.05)
    assert (await store.read_known("c1", None)).cached == {}
    assert await store.decision_for_conversation("c1") == decision


# Shared id -> conversation id ---------------------------------------------------------


async def test_a_shared_id_leads_to_its_conversation(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", "s1", conversation={"channel": "voice"}, ttl_s=60)
    await store.cache_lookups("c1", "s1", {CACHE_RECORD: {"state": {}}}, ttl_s=60)
    known = await store.read_known(None, "s1")
    assert known.pushed.conversation_id == "c1"
    assert known.pushed.conversation == {"channel": "voice"}
    assert known.cached == {CACHE_RECORD: {"state": {}}}
    if backend.name != "memory":  # Redis follows the link and says so
        assert known.linked_conversation_id == "c1"


async def test_timeouts_are_accepted_by_every_method(backend: Backend) -> None:
    store = backend.store
    await store.push("c1", "s1", state={"a": 1}, ttl_s=60, timeout_s=1.0)
    await store.cache_lookups("c1", "s1", {CACHE_HANDOFF: {}}, ttl_s=60, timeout_s=1.0)
    decision = {"conversation_id": "c1", "shared_id": "s1"}
    await store.save_decision(decision, ttl_s=60, timeout_s=1.0)
    assert (await store.read_known("c1", "s1", timeout_s=1.0)).pushed.state == {"a": 1}
    assert await store.decision_for_conversation("c1", timeout_s=1.0) == decision
    assert await store.decision_for_shared_id("s1", timeout_s=1.0) == decision
    assert await store.status() in ("memory", "ok")
