"""The Redis store on the shared Redis: key layout, TTLs, round trips, URLs, secrets.

Behaviour shared with the memory store is in test_redis_contract.py; faults (a Redis
killed, paused, restarted) in test_redis_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import REGISTRY
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.crc import key_slot
from structlog.testing import capture_logs

from router.budget import Deadline
from router.facts import FactGatherer
from router.settings import SettingsError, load_settings
from router.store import open_store
from router.store.base import CACHE_HANDOFF, CACHE_RECORD, JSONMap, StoreError
from router.store.redis import RedisStore
from router.store.redis.url import connect, redact
from tests.fakes.clock import ManualClock
from tests.fakes.polyai import FakePolyAI
from tests.store.conftest import MakeStore
from tests.store.redis_servers import free_port
from tests.store.saving import save_with_lookups

CID = "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"
SID = "CA5f1e6c2d0b8a4f3e9d7c6b5a4f3e2d1c"
MakeGatherer = Callable[..., tuple[FactGatherer, RedisStore]]


def round_trips(operation: str) -> float:
    """How many round trips the store has made for ``operation`` (all stores, this process)."""
    labels = {"operation": operation}
    return REGISTRY.get_sample_value("router_store_duration_seconds_count", labels) or 0.0


class RoundTrips:
    """Round trips made since it was created, by operation."""

    OPERATIONS = (
        "read_known",
        "read_known_linked",
        "push",
        "cache_lookups",
        "save_decision",
        "decision_for_conversation",
        "decision_for_shared_id",
        "decision_for_shared_id_linked",
        "ping",
        "outbox_flush",
    )

    def __init__(self) -> None:
        self.start = {op: round_trips(op) for op in self.OPERATIONS}

    def made(self) -> dict[str, int]:
        return {
            op: int(round_trips(op) - self.start[op])
            for op in self.OPERATIONS
            if round_trips(op) != self.start[op]
        }


@pytest.fixture
def raw(shared_redis_url: str) -> Any:
    client = redis.Redis.from_url(shared_redis_url)
    yield client
    client.close()


def keys_under(raw: Any, prefix: str) -> list[str]:
    return sorted(key.decode() for key in raw.scan_iter(match=f"{prefix}*", count=500))


# Keys, TTLs, values ------------------------------------------------------------------


async def test_keys_of_one_conversation_share_one_cluster_slot_under_the_prefix(
    make_store: MakeStore, shared_redis_url: str, prefix: str, raw: Any
) -> None:
    store = await make_store(shared_redis_url)
    await store.push(CID, SID, data={"r": "refund"}, state={"t": "gold"}, ttl_s=60)
    await store.cache_lookups(CID, SID, {CACHE_HANDOFF: {"id": CID}}, ttl_s=60)
    await store.save_decision({"conversation_id": CID, "shared_id": SID}, ttl_s=60)
    keys = keys_under(raw, prefix)
    conversation = [k for k in keys if k.startswith(f"{prefix}{{c:{CID}}}:")]
    assert sorted(k.rpartition("}:")[2] for k in conversation) == [
        "cache:handoff",
        "decision",
        "link",
        "push:handoff",
        "push:state",
    ]
    assert len({key_slot(k.encode()) for k in conversation}) == 1
    assert set(keys) - set(conversation) == {f"{prefix}{{s:{SID}}}:cid"}
    assert raw.get(f"{prefix}{{s:{SID}}}:cid") == CID.encode()


async def test_every_key_lives_as_long_as_its_setting_says(
    make_store: MakeStore, shared_redis_url: str, prefix: str, raw: Any
) -> None:
    store = await make_store(
        shared_redis_url,
        ROUTER_PUSH_TTL_S=3000,
        ROUTER_CACHE_TTL_S=500,
        ROUTER_DECISION_TTL_S=80000,
    )
    await store.push(CID, SID, state={"t": "gold"}, ttl_s=3000)
    await store.cache_lookups(CID, SID, {CACHE_RECORD: {"state": {}}}, ttl_s=500)
    await store.save_decision({"conversation_id": CID, "shared_id": SID}, ttl_s=80000)
    home = f"{prefix}{{c:{CID}}}:"

    def ttl(key: str) -> float:
        return float(raw.pttl(key)) / 1000

    assert 2990 < ttl(home + "push:state") <= 3000
    assert 2990 < ttl(home + "link") <= 3000
    assert 490 < ttl(home + "cache:state") <= 500
    assert 79990 < ttl(home + "decision") <= 80000
    # The shared id stays linked as long as the longest-lived value it leads to.
    assert 79990 < ttl(f"{prefix}{{s:{SID}}}:cid") <= 80000


async def test_values_are_compact_json(
    make_store: MakeStore, shared_redis_url: str, prefix: str, raw: Any
) -> None:
    store = await make_store(shared_redis_url)
    state = {"tier": "gold", "balance": "1500", "tags": ["a", "b"], "n": 1.5}
    await store.push(CID, None, state=state, ttl_s=60)
    assert raw.get(f"{prefix}{{c:{CID}}}:push:state") == orjson.dumps(state)


async def test_ids_with_braces_and_percent_signs_keep_their_own_keys_and_slot(
    make_store: MakeStore, shared_redis_url: str, prefix: str, raw: Any
) -> None:
    store = await make_store(shared_redis_url)
    ids = ["a}b", "a%7Db", "{x}", "x}:push:state", "x"]
    for n, cid in enumerate(ids):
        await store.push(cid, f"s{cid}", state={"n": n}, ttl_s=60)
    for n, cid in enumerate(ids):
        assert (await store.read_known(cid, None)).pushed.state == {"n": n}
        assert (await store.read_known(None, f"s{cid}")).pushed.state == {"n": n}
    keys = keys_under(raw, prefix)
    assert all(key.count("{") == 1 and key.count("}") == 1 for key in keys)
    braces = [k for k in keys if k.startswith(f"{prefix}{{c:a%7Db}}")]
    assert len(braces) == 2
    assert len({key_slot(k.encode()) for k in braces}) == 1


async def test_an_unreadable_value_reads_as_absent(
    make_store: MakeStore, shared_redis_url: str, prefix: str, raw: Any
) -> None:
    store = await make_store(shared_redis_url)
    await store.push(CID, None, data={"ok": 1}, state={"t": 1}, ttl_s=60)
    raw.set(f"{prefix}{{c:{CID}}}:push:state", b"{not json", px=60000)
    with capture_logs() as logs:
        known = await store.read_known(CID, None)
    assert known.pushed.state is None
    assert known.pushed.handoff == {"ok": 1}
    assert any(entry["event"] == "store_value_unreadable" for entry in logs)


async def test_only_known_lookups_can_be_cached(
    make_store: MakeStore, shared_redis_url: str
) -> None:
    store = await make_store(shared_redis_url)
    with pytest.raises(ValueError, match="unknown cached lookup"):
        await store.cache_lookups(CID, None, {"weather": {}}, ttl_s=60)


# Round trips -------------------------------------------------------------------------


async def test_each_phase_is_one_round_trip(make_store: MakeStore, shared_redis_url: str) -> None:
    store = await make_store(shared_redis_url)
    await store.push(CID, SID, state={"t": 1}, ttl_s=60)
    trips = RoundTrips()
    await store.read_known(CID, SID)
    await store.read_known(CID, None)
    decision = {"decision_id": "d", "conversation_id": CID, "shared_id": SID}
    lookups: dict[str, JSONMap] = {CACHE_HANDOFF: {"id": CID}, CACHE_RECORD: {"state": {}}}
    await store.save_decision(decision, ttl_s=60, lookups=lookups, cache_ttl_s=60)
    assert trips.made() == {"read_known": 2, "save_decision": 1}
    assert (await store.read_known(CID, None)).cached == lookups


async def test_a_shared_id_alone_costs_a_second_round_trip_only_when_linked(
    make_store: MakeStore, shared_redis_url: str
) -> None:
    store = await make_store(shared_redis_url)
    trips = RoundTrips()
    known = await store.read_known(None, "unlinked")
    assert known.linked_conversation_id is None
    assert trips.made() == {"read_known": 1}
    await store.push(CID, SID, state={"t": 1}, ttl_s=60)
    trips = RoundTrips()
    known = await store.read_known(None, SID)
    assert known.linked_conversation_id == CID
    assert known.pushed.state == {"t": 1}
    assert trips.made() == {"read_known": 1, "read_known_linked": 1}


async def test_a_decision_by_shared_id_is_read_through_the_link(
    make_store: MakeStore, shared_redis_url: str
) -> None:
    store = await make_store(shared_redis_url)
    decision = {"decision_id": "d", "conversation_id": CID, "shared_id": SID}
    await store.save_decision(decision, ttl_s=60)
    trips = RoundTrips()
    assert await store.decision_for_shared_id(SID) == decision
    assert trips.made() == {"decision_for_shared_id": 1, "decision_for_shared_id_linked": 1}
    # The conversation's later decision under another shared id is not SID's.
    await store.save_decision({**decision, "decision_id": "d2", "shared_id": "other"}, ttl_s=60)
    assert await store.decision_for_shared_id(SID) is None
    assert (await store.decision_for_shared_id("other") or {})["decision_id"] == "d2"


# With the gatherer -----------------------------------------------------------------------


async def test_a_decision_and_its_lookups_are_saved_in_one_round_trip(
    make_gatherer: MakeGatherer, shared_redis_url: str, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer(ROUTER_STORE=shared_redis_url)
    await store.connect()
    trips = RoundTrips()
    deadline = Deadline.start(2000)
    gathered = await gatherer.gather(
        conversation_id=CID, deadline=deadline, cache_with_decision=True
    )
    assert gathered.sources == {"handoff": "ok", "state": "ok", "store": "ok"}
    assert set(gathered.uncached) == {CACHE_HANDOFF, CACHE_RECORD}
    decision = {"decision_id": "d1", "conversation_id": CID, "shared_id": gathered.shared_id}
    await save_with_lookups(store, decision, gathered, deadline=deadline)
    await gatherer.drain()
    assert trips.made() == {"read_known": 1, "save_decision": 1}

    again = await gatherer.gather(shared_id=SID, deadline=Deadline.start(2000))
    assert again.sources == {"handoff": "cached", "state": "cached", "store": "ok"}
    assert again.conversation_id == CID
    assert fake.handoff_calls == 1
    assert fake.conversation_calls == 1
    # By shared id: the store followed the link itself; the gatherer read nothing twice.
    assert trips.made() == {"read_known": 2, "read_known_linked": 1, "save_decision": 1}
    assert await store.decision_for_shared_id(SID) == decision


async def test_gathering_without_a_combined_save_still_caches_in_the_background(
    make_gatherer: MakeGatherer, shared_redis_url: str
) -> None:
    gatherer, store = make_gatherer(ROUTER_STORE=shared_redis_url)
    await store.connect()
    got = await gatherer.gather(conversation_id=CID, deadline=Deadline.start(2000))
    assert got.uncached == {}
    await gatherer.drain()
    known = await store.read_known(CID, None)
    assert set(known.cached) == {CACHE_HANDOFF, CACHE_RECORD}


# Health ----------------------------------------------------------------------------------


async def test_status_pings_only_when_nothing_answered_lately(
    make_store: MakeStore, shared_redis_url: str
) -> None:
    # The store's clock stands still: "lately" never runs out during the test.
    store = await make_store(shared_redis_url, connect=False, clock=ManualClock())
    trips = RoundTrips()
    assert await store.status() == "ok"
    assert trips.made() == {"ping": 1}
    assert await store.status() == "ok"
    await store.read_known(CID, None)
    assert await store.status() == "ok"
    assert trips.made() == {"ping": 1, "read_known": 1}
    assert REGISTRY.get_sample_value("router_store_up") == 1.0


# URLs, settings, secrets -------------------------------------------------------------------


def test_a_rediss_url_passes_its_tls_options_to_redis_py() -> None:
    url = "rediss://:pw@cache.internal:6380/2?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required"
    connected = connect(url, pool_size=7, timeout_s=0.05)
    client = connected.client
    assert isinstance(client, Redis)
    pool = client.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.connection_class is SSLConnection
    assert pool.max_connections == 7
    assert pool.timeout == 0.05
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.internal", 6380, 2)
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["password"] == "pw"
    assert connected.mode == "standalone"
    assert "pw" not in connected.where


def test_the_pool_size_comes_from_settings() -> None:
    store = open_store(load_settings(ROUTER_STORE="redis://h:6379", ROUTER_STORE_POOL_SIZE=123))
    assert isinstance(store, RedisStore)
    assert isinstance(store._client, Redis)
    assert store._client.connection_pool.max_connections == 123


def test_a_cluster_url_seeds_every_host_it_lists() -> None:
    connected = connect(
        "rediss+cluster://app:pw@10.0.0.1:7000,10.0.0.2:7001?ssl_cert_reqs=none",
        pool_size=9,
        timeout_s=0.05,
    )
    client = connected.client
    assert isinstance(client, RedisCluster)
    assert [(n.host, n.port) for n in client.startup_nodes] == [
        ("10.0.0.1", 7000),
        ("10.0.0.2", 7001),
    ]
    assert client.connection_kwargs["connection_class"] is SSLConnection
    assert client.connection_kwargs["ssl_cert_reqs"] == "none"
    assert client.connection_kwargs["username"] == "app"
    assert client.connection_kwargs["max_connections"] == 9
    assert connected.mode == "cluster"


def test_a_sentinel_url_names_the_master_and_the_sentinels() -> None:
    connected = connect(
        "redis+sentinel://:master-pw@10.0.0.1:26379,10.0.0.2/mymaster/3"
        "?sentinel_password=sentinel-pw&socket_keepalive=true",
        pool_size=11,
        timeout_s=0.05,
    )
    client = connected.client
    assert isinstance(client, Redis)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.max_connections == 11
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "master-pw"
    assert pool.connection_kwargs["socket_keepalive"] is True
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert all(s["password"] == "sentinel-pw" for s in sentinels)
    assert connected.mode == "sentinel"
    assert len(connected.helpers) == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:secret@h/db", "must be 'memory' or a redis://"),
        ("redis+sentinel://u:secret@h:26379", "names the master"),
        ("redis://u:secret@", "needs a host"),
    ],
)
def test_a_bad_store_url_stops_the_start_without_showing_its_password(
    url: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ROUTER_STORE=url)
    assert str(caught.value).startswith("ROUTER_STORE:")
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_url_redis_py_refuses_is_named_without_its_password() -> None:
    with pytest.raises(ValueError, match="ROUTER_STORE") as caught:
        open_store(load_settings(ROUTER_STORE="redis://:secret@h:6379/?socket_timeout=soon"))
    assert "secret" not in str(caught.value)


def test_a_prefix_cannot_change_the_hash_tag() -> None:
    with pytest.raises(SettingsError, match="ROUTER_STORE_PREFIX"):
        load_settings(ROUTER_STORE_PREFIX="app{1}:")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:s3cret@h:6380", "rediss://user:***@h:6380"),
        ("redis://token@h", "redis://***@h"),
        ("redis://h:6379", "redis://h:6379"),
        (
            "redis+sentinel://h:26379/m?sentinel_password=s3cret&db=1",
            "redis+sentinel://h:26379/m?sentinel_password=***&db=1",
        ),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown


async def test_neither_logs_nor_errors_hold_the_password() -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"  # nobody listens there
    with capture_logs() as logs:
        store = open_store(load_settings(ROUTER_STORE=url, ROUTER_STORE_TIMEOUT_MS=5000))
        assert isinstance(store, RedisStore)
        with pytest.raises(StoreError) as caught:
            await store.push(CID, None, state={}, ttl_s=60)
        await store.save_decision({"conversation_id": CID}, ttl_s=60)  # queued, logged
        await store.close(flush_within_s=0.1)
    assert caught.value.fault == "error"
    assert "s3cret" not in str(caught.value)
    assert logs
    assert "s3cret" not in repr(logs)
    assert any(entry["event"] == "store_opened" for entry in logs)
