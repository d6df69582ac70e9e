"""The store on a real 3-master Redis Cluster (``redis+cluster://``), started by the test.

The contract tests (test_redis_contract.py) also run against this cluster; these show
what is particular to it: one conversation's keys on one slot of one node, reads that
span two nodes in one round trip, and a dead node costing no decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from router.budget import Deadline
from router.facts import FactGatherer
from router.store.base import CACHE_HANDOFF, StoreError
from router.store.redis import RedisStore
from tests.store.conftest import MakeStore
from tests.store.redis_servers import RedisCluster, command
from tests.store.saving import save_with_lookups
from tests.store.test_redis_store import RoundTrips

MakeGatherer = Callable[..., tuple[FactGatherer, RedisStore]]


def keys_by_node(cluster: RedisCluster, prefix: str) -> dict[int, list[str]]:
    """Every key under ``prefix`` on each node (by port)."""
    found: dict[int, list[str]] = {}
    for node in cluster.nodes:
        client = redis.Redis(port=node.port, socket_timeout=2)
        try:
            keys = [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=500)]
        finally:
            client.close()
        if keys:
            found[node.port] = sorted(keys)
    return found


def node_of(cluster: RedisCluster, key: str) -> int:
    """The port of the master serving ``key``'s slot."""
    client = redis.Redis(port=cluster.nodes[0].port, socket_timeout=2)
    try:
        slot = key_slot(key.encode())
        for start, end, master, *_ in command(client, "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
    finally:
        client.close()
    raise AssertionError(f"no node serves slot {slot}")


async def test_a_conversations_keys_live_on_one_node_and_slot(
    make_store: MakeStore, redis_cluster: RedisCluster, prefix: str
) -> None:
    store = await make_store(redis_cluster.url)
    assert store.mode == "cluster"
    await store.push("c1", "s1", data={"r": 1}, state={"t": 1}, ttl_s=60)
    await store.cache_lookups("c1", "s1", {CACHE_HANDOFF: {"id": "c1"}}, ttl_s=60)
    await store.save_decision({"conversation_id": "c1", "shared_id": "s1"}, ttl_s=60)
    placed = keys_by_node(redis_cluster, f"{prefix}{{c:c1}}")
    assert len(placed) == 1
    (keys,) = placed.values()
    assert len(keys) == 5
    assert len({key_slot(k.encode()) for k in keys}) == 1


async def test_conversations_spread_over_every_master(
    make_store: MakeStore, redis_cluster: RedisCluster, prefix: str
) -> None:
    store = await make_store(redis_cluster.url)
    for n in range(60):
        await store.push(f"c{n}", None, state={"n": n}, ttl_s=60)
    assert len(keys_by_node(redis_cluster, prefix)) == len(redis_cluster.nodes)
    for n in range(60):
        assert (await store.read_known(f"c{n}", None)).pushed.state == {"n": n}


async def test_a_read_by_two_ids_on_two_nodes_is_one_round_trip(
    make_store: MakeStore, redis_cluster: RedisCluster, prefix: str
) -> None:
    store = await make_store(redis_cluster.url)
    cid = "c-apart"
    sid = next(
        f"s{n}"
        for n in range(1000)
        if node_of(redis_cluster, f"{prefix}{{s:s{n}}}:x")
        != node_of(redis_cluster, f"{prefix}{{c:{cid}}}:x")
    )
    await store.push(cid, None, state={"from": "cid"}, ttl_s=60)
    await store.push(None, sid, data={"from": "sid"}, ttl_s=60)
    trips = RoundTrips()
    known = await store.read_known(cid, sid)
    assert trips.made() == {"read_known": 1}
    assert known.pushed.state == {"from": "cid"}
    assert known.pushed.handoff == {"from": "sid"}


async def test_gathering_over_the_cluster(
    make_gatherer: MakeGatherer, redis_cluster: RedisCluster
) -> None:
    gatherer, store = make_gatherer(ROUTER_STORE=redis_cluster.url)
    await store.connect()
    deadline = Deadline.start(2000)
    got = await gatherer.gather(conversation_id="c-g", deadline=deadline, cache_with_decision=True)
    assert got.sources["store"] == "ok"
    saved = {"decision_id": "d", "conversation_id": "c-g", "shared_id": got.shared_id}
    trips = RoundTrips()
    await save_with_lookups(store, saved, got, deadline=deadline)
    assert trips.made() == {"save_decision": 1}
    again = await gatherer.gather(shared_id=got.shared_id, deadline=Deadline.start(2000))
    assert again.sources == {"handoff": "cached", "state": "cached", "store": "ok"}


@pytest.fixture
def lone_cluster() -> Iterator[RedisCluster]:
    """A cluster of this test alone (it kills one of its nodes)."""
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


async def test_a_dead_master_costs_its_conversations_the_store_not_the_decision(
    make_gatherer: MakeGatherer, lone_cluster: RedisCluster, prefix: str
) -> None:
    gatherer, store = make_gatherer(
        ROUTER_STORE=lone_cluster.url, ROUTER_STORE_TIMEOUT_MS=100, ROUTER_BREAKER_FAILURES=50
    )
    await store.connect()
    port = node_of(lone_cluster, f"{prefix}{{c:c-dead}}:x")
    next(node for node in lone_cluster.nodes if node.port == port).kill()
    results: list[Any] = []
    for _ in range(3):
        started = time.monotonic()
        got = await gatherer.gather(
            conversation_id="c-dead", deadline=Deadline.start(2000), cache_with_decision=True
        )
        # Bounded by the store (a client retrying a dead node unbounded takes seconds).
        assert time.monotonic() - started < 2.0
        assert got.sources["handoff"] == "ok"
        assert not got.degraded
        results.append(got.sources["store"])
    assert set(results) <= {"error", "timeout"}


async def test_a_cold_cluster_client_learns_its_slots_without_opening_the_breaker(
    make_store: MakeStore, redis_cluster: RedisCluster
) -> None:
    store = await make_store(
        redis_cluster.url,
        connect=False,
        ROUTER_STORE_TIMEOUT_MS=50,  # shorter than learning the slot map takes
        ROUTER_BREAKER_FAILURES=1,
    )
    faults = []
    deadline = time.monotonic() + 30
    while True:
        try:
            await store.read_known("c-cold", None)
            break
        except StoreError as exc:  # learning the slot map takes longer than one timeout
            faults.append(exc.fault)
            assert store.breaker_state == "closed"
        assert time.monotonic() < deadline, f"never answered: {faults}"
        await asyncio.sleep(0.02)
    assert set(faults) <= {"timeout"}
    assert await store.status() == "ok"
