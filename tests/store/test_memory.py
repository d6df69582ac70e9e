"""The memory store: keys by both ids, TTLs, the LRU bound, decisions."""

from __future__ import annotations

import gc

import pytest

from router.settings import load_settings
from router.store import MemoryStore, Store, open_store
from router.store.base import CACHE_HANDOFF, CACHE_RECORD, NOTHING_KNOWN, JSONMap
from tests.fakes.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> MemoryStore:
    return MemoryStore(100, clock=clock)


async def test_open_store_gives_a_bounded_memory_store() -> None:
    store = open_store(load_settings(ROUTER_STORE="memory", ROUTER_MEMORY_MAX_ENTRIES=2))
    assert isinstance(store, MemoryStore)
    assert not store.shared
    assert await store.status() == "memory"
    for n in range(5):
        await store.push(f"c{n}", None, state={"n": n}, ttl_s=60)
    assert len(store) == 2


async def test_open_store_gives_a_redis_store_for_a_redis_url() -> None:
    store = open_store(load_settings(ROUTER_STORE="redis://localhost:6379/0"))
    assert isinstance(store, Store)
    assert store.shared
    assert store.kind == "redis"  # what logs call it
    await store.close()  # nothing was dialled


# Pushed facts ---------------------------------------------------------------------


async def test_a_push_is_read_back_by_either_id(store: MemoryStore) -> None:
    await store.push("c1", "s1", data={"r": "refund"}, state={"tier": "gold"}, ttl_s=60)
    by_cid = await store.read_known("c1", None)
    by_sid = await store.read_known(None, "s1")
    for known in (by_cid, by_sid):
        assert known.pushed.handoff == {"r": "refund"}
        assert known.pushed.state == {"tier": "gold"}
        assert known.pushed.conversation is None
        assert (known.pushed.conversation_id, known.pushed.shared_id) == ("c1", "s1")


async def test_unknown_ids_read_as_nothing(store: MemoryStore) -> None:
    assert await store.read_known("nope", "nope") == NOTHING_KNOWN
    assert await store.read_known(None, None) == NOTHING_KNOWN


async def test_a_later_push_replaces_only_the_namespaces_it_carries(store: MemoryStore) -> None:
    await store.push("c1", None, data={"a": "1"}, state={"x": "1", "y": "1"}, ttl_s=60)
    await store.push("c1", None, state={"x": "2"}, ttl_s=60)
    known = await store.read_known("c1", None)
    assert known.pushed.handoff == {"a": "1"}
    assert known.pushed.state == {"x": "2"}


async def test_the_conversation_ids_push_wins_over_the_shared_ids(store: MemoryStore) -> None:
    await store.push(None, "s1", state={"from": "sid"}, conversation={"c": "sid"}, ttl_s=60)
    await store.push("c1", None, state={"from": "cid"}, ttl_s=60)
    known = await store.read_known("c1", "s1")
    assert known.pushed.state == {"from": "cid"}
    assert known.pushed.conversation == {"c": "sid"}  # filled from the other key


async def test_a_push_is_a_copy_of_what_was_given(store: MemoryStore) -> None:
    state = {"tier": "gold"}
    await store.push("c1", None, state=state, ttl_s=60)
    state["tier"] = "changed"
    assert (await store.read_known("c1", None)).pushed.state == {"tier": "gold"}


async def test_pushed_facts_expire_after_their_ttl(store: MemoryStore, clock: ManualClock) -> None:
    await store.push("c1", "s1", state={"tier": "gold"}, ttl_s=60)
    clock.advance(59)
    assert (await store.read_known("c1", None)).pushed.state == {"tier": "gold"}
    clock.advance(1)
    assert await store.read_known("c1", "s1") == NOTHING_KNOWN
    assert len(store) == 0  # expired keys are dropped when touched


async def test_changing_what_a_read_returned_does_not_change_the_store(
    store: MemoryStore,
) -> None:
    state = {"tier": "gold", "history": {"steps": ["a"]}}
    lookups: dict[str, JSONMap] = {CACHE_RECORD: {"state": {"x": 1}, "conversation": {}}}
    await store.push("c1", "s1", data={"r": "refund"}, state=state, ttl_s=60)
    await store.cache_lookups("c1", "s1", lookups, ttl_s=60)
    read = await store.read_known("c1", "s1")
    assert isinstance(read.pushed.state, dict)
    assert isinstance(read.pushed.handoff, dict)
    read.pushed.state["history"]["steps"].append("mutated")
    read.pushed.state["tier"] = "mutated"
    read.pushed.handoff.clear()
    cached_record = read.cached[CACHE_RECORD]
    assert isinstance(cached_record, dict)
    cached_record["state"]["x"] = "mutated"
    lookups[CACHE_RECORD]["state"]["x"] = "mutated too"  # nor does changing what was cached
    for again in (await store.read_known("c1", None), await store.read_known(None, "s1")):
        assert again.pushed.state == {"tier": "gold", "history": {"steps": ["a"]}}
        assert again.pushed.handoff == {"r": "refund"}
        assert again.cached == {CACHE_RECORD: {"state": {"x": 1}, "conversation": {}}}


# Lookup cache -----------------------------------------------------------------------


async def test_cached_lookups_are_read_by_either_id_until_the_ttl(
    store: MemoryStore, clock: ManualClock
) -> None:
    lookups: dict[str, JSONMap] = {
        CACHE_HANDOFF: {"id": "c1"},
        CACHE_RECORD: {"state": {}, "conversation": {}},
    }
    await store.cache_lookups("c1", "s1", lookups, ttl_s=600)
    assert (await store.read_known(None, "s1")).cached == lookups
    assert (await store.read_known("c1", None)).cached == lookups
    clock.advance(600)
    assert (await store.read_known("c1", "s1")).cached == {}


async def test_cache_and_push_have_their_own_ttls(store: MemoryStore, clock: ManualClock) -> None:
    await store.push("c1", None, state={"p": 1}, ttl_s=3600)
    await store.cache_lookups("c1", None, {CACHE_HANDOFF: {"h": 1}}, ttl_s=600)
    clock.advance(601)
    known = await store.read_known("c1", None)
    assert known.cached == {}
    assert known.pushed.state == {"p": 1}


async def test_a_zero_cache_ttl_stores_nothing(store: MemoryStore) -> None:
    await store.cache_lookups("c1", None, {CACHE_HANDOFF: {"h": 1}}, ttl_s=0)
    assert len(store) == 0


# Decisions ----------------------------------------------------------------------------


async def test_latest_decision_by_conversation_and_shared_id(
    store: MemoryStore, clock: ManualClock
) -> None:
    first = {"decision_id": "d1", "conversation_id": "c1", "shared_id": "s1", "skills": ("a",)}
    second = {"decision_id": "d2", "conversation_id": "c1", "shared_id": "s1", "skills": []}
    await store.save_decision(first, ttl_s=86400)
    await store.save_decision(second, ttl_s=86400)
    assert await store.decision_for_conversation("c1") == second
    assert await store.decision_for_shared_id("s1") == second
    assert await store.decision_for_conversation("s1") is None  # ids do not mix
    clock.advance(86400)
    assert await store.decision_for_conversation("c1") is None
    assert await store.decision_for_shared_id("s1") is None


async def test_a_decision_is_stored_as_json(store: MemoryStore) -> None:
    await store.save_decision({"conversation_id": "c1", "skills": ("a", "b")}, ttl_s=60)
    read = await store.decision_for_conversation("c1")
    assert read == {"conversation_id": "c1", "skills": ["a", "b"]}
    assert read is not None
    read["skills"].append("mutated")
    assert await store.decision_for_conversation("c1") == {
        "conversation_id": "c1",
        "skills": ["a", "b"],
    }


async def test_a_decision_without_a_shared_id_is_kept_by_conversation_only(
    store: MemoryStore,
) -> None:
    await store.save_decision({"conversation_id": "c1", "shared_id": None}, ttl_s=60)
    assert await store.decision_for_conversation("c1") is not None
    assert len(store) == 1


# Bounds -------------------------------------------------------------------------------


async def test_the_least_recently_used_key_goes_first(clock: ManualClock) -> None:
    store = MemoryStore(3, clock=clock)
    for n in range(3):
        await store.push(f"c{n}", None, state={"n": n}, ttl_s=60)
    await store.read_known("c0", None)  # c0 is now the most recently used
    await store.push("c3", None, state={"n": 3}, ttl_s=60)
    assert len(store) == 3
    assert (await store.read_known("c1", None)) == NOTHING_KNOWN  # evicted
    for n in (0, 2, 3):
        assert (await store.read_known(f"c{n}", None)).pushed.state == {"n": n}


async def test_memory_stays_bounded_however_many_conversations_pass(clock: ManualClock) -> None:
    store = MemoryStore(100, clock=clock)
    for n in range(5000):
        await store.push(f"c{n}", f"s{n}", state={"n": n}, ttl_s=3600)
        await store.cache_lookups(f"c{n}", f"s{n}", {CACHE_HANDOFF: {}}, ttl_s=600)
        await store.save_decision({"conversation_id": f"c{n}", "shared_id": f"s{n}"}, ttl_s=60)
        assert len(store) <= 100
    assert len(store) == 100
    assert (await store.read_known("c4999", None)).pushed.state == {"n": 4999}


async def test_expired_keys_are_swept_on_later_writes(clock: ManualClock) -> None:
    store = MemoryStore(1000, clock=clock)
    for n in range(10):
        await store.push(f"old{n}", None, state={}, ttl_s=1)
    clock.advance(2)
    for n in range(10):
        await store.push(f"new{n}", None, state={}, ttl_s=60)
    assert len(store) == 10


async def test_what_the_store_keeps_is_invisible_to_the_garbage_collector(
    clock: ManualClock,
) -> None:
    # Full collections must not walk every key's values: entries are flat immutable tuples of
    # untracked objects, so filling the store adds (almost) nothing for the collector to track.
    conversations = 5000
    store = MemoryStore(2 * conversations, clock=clock)
    gc.collect()
    tracked_before = len(gc.get_objects())
    for n in range(conversations):
        cid, sid = f"c{n}", f"s{n}"
        state = {"tier": "gold", "n": n, "history": {"steps": ["greet", "verify"], "ok": True}}
        await store.push(cid, sid, data={"reason": "refund"}, state=state, ttl_s=3600)
        lookups: dict[str, JSONMap] = {
            CACHE_HANDOFF: {"id": cid, "shared_id": sid, "data": {"reason": "refund"}},
            CACHE_RECORD: {"state": {"n": n}, "conversation": {"lang": "en"}},
        }
        await store.cache_lookups(cid, sid, lookups, ttl_s=600)
        decision = {"conversation_id": cid, "shared_id": sid, "skills": ["billing"], "n": n}
        await store.save_decision(decision, ttl_s=60, lookups=lookups, cache_ttl_s=600)
    clock.advance(61)  # the decisions expire: reads write the pruned entries back
    await store.read_known("c0", "s0")
    assert await store.decision_for_shared_id("s1") is None
    gc.collect()
    tracked_after = len(gc.get_objects())
    assert len(store) == 2 * conversations
    assert tracked_after - tracked_before < 200


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(0)
