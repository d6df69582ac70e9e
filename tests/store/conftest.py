"""Fixtures for the store tests: the shared Redis, private Redis servers, stores, a fake PolyAI.

The normal Redis tests use the Redis on 127.0.0.1:6379 (``ROUTER_TEST_REDIS_URL``
overrides it), each under its own random key prefix whose keys are deleted afterwards:
other people's tests use the same server. Fault tests use a private ``redis-server``
started per test, so killing or pausing it hurts nobody. Without Redis these tests
fail, saying how to get one: they never skip.

Stores made here wait up to :data:`STORE_TIMEOUT_MS` per round trip unless a test sets
``ROUTER_STORE_TIMEOUT_MS`` itself: a test that is not about timeouts must not fail
because a loaded machine was slow to run the event loop.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import redis

from router.facts import FactGatherer
from router.settings import Settings, load_settings
from router.store.redis import RedisStore, open_redis_store
from router.store.redis.url import redact
from tests.fakes.polyai import FakePolyAI
from tests.store.redis_servers import RedisCluster, RedisSentinel, RedisServer

SHARED_REDIS_URL = os.environ.get("ROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

STORE_TIMEOUT_MS = 5000
"""The store timeout of tests that are not about timeouts: far beyond any round trip."""

MakeStore = Callable[..., Awaitable[RedisStore]]
Clock = Callable[[], float]


@pytest.fixture(scope="session")
def shared_redis_url() -> str:
    """The shared Redis the normal tests use; fail (never skip) when it cannot be reached."""
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"The Redis store tests need a Redis at {redact(SHARED_REDIS_URL)} and cannot reach "
            f"it ({exc.__class__.__name__}). Start one: `redis-server --daemonize yes --port "
            "6379` (install it with `apt-get install redis-server`), or point "
            "ROUTER_TEST_REDIS_URL at a Redis you may write to.",
            pytrace=False,
        )
    finally:
        client.close()
    return SHARED_REDIS_URL


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone (stores made by the fixtures below delete its keys
    on the shared Redis afterwards)."""
    return f"router-test:{uuid.uuid4().hex}:"


def delete_prefixed(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (only this test's keys: the prefix is random)."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
async def make_store(prefix: str) -> AsyncIterator[MakeStore]:
    """``await make_store(url, clock=..., **settings)``: a connected RedisStore under this
    test's prefix, on ``clock`` (default: the real one), closed at the end of the test."""
    stores: list[RedisStore] = []
    urls: list[str] = []

    async def make(
        url: str, *, connect: bool = True, clock: Clock = time.monotonic, **overrides: Any
    ) -> RedisStore:
        urls.append(url)
        settings = load_settings(
            ROUTER_STORE=url,
            ROUTER_STORE_PREFIX=prefix,
            **{"ROUTER_STORE_TIMEOUT_MS": STORE_TIMEOUT_MS, **overrides},
        )
        store = open_redis_store(settings, clock=clock)
        stores.append(store)
        if connect:  # as the service does at start (a cluster client learns its slots)
            await store.connect()
        return store

    yield make
    for store in stores:
        await store.close(flush_within_s=0.2)
    if any(url == SHARED_REDIS_URL for url in urls):
        delete_prefixed(SHARED_REDIS_URL, prefix)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, to kill, pause and restart; stopped at the end."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-master Redis Cluster on free loopback ports, for the whole test session."""
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """A Redis master and one sentinel watching it, for the whole test session."""
    sentinel = RedisSentinel()
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.stop()


# A fake PolyAI and gatherers over a Redis store -------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakePolyAI]:
    server = await FakePolyAI().start()
    yield server
    await server.close()


@pytest.fixture
def make_settings(fake: FakePolyAI, prefix: str) -> Callable[..., Settings]:
    """Settings pointing at the fake PolyAI and, given ``ROUTER_STORE``, a Redis."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "POLYAI_API_KEY": fake.api_key,
            "POLYAI_ACCOUNT_ID": fake.account_id,
            "POLYAI_PROJECT_ID": fake.project_id,
            "POLYAI_AGENT_ID": fake.agent_id,
            "POLYAI_HANDOFF_URL": fake.url,
            "POLYAI_DATA_URL": fake.url,
            "ROUTER_STORE_PREFIX": prefix,
            "ROUTER_STORE_TIMEOUT_MS": STORE_TIMEOUT_MS,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
async def make_gatherer(
    make_settings: Callable[..., Settings], session: aiohttp.ClientSession, prefix: str
) -> AsyncIterator[Callable[..., tuple[FactGatherer, RedisStore]]]:
    """``make_gatherer(ROUTER_STORE=url, clock=..., **settings) -> (gatherer, store)``, the
    store on ``clock`` (default: the real one); both are drained and closed at the end of
    the test."""
    made: list[tuple[FactGatherer, RedisStore]] = []
    urls: list[str] = []

    def make(clock: Clock = time.monotonic, **overrides: Any) -> tuple[FactGatherer, RedisStore]:
        settings = make_settings(**overrides)
        urls.append(settings.store)
        store = open_redis_store(settings, clock=clock)
        gatherer = FactGatherer(settings, store, session)
        made.append((gatherer, store))
        return gatherer, store

    yield make
    for gatherer, store in made:
        await gatherer.drain()
        await store.close(flush_within_s=0.2)
    if any(settings_url == SHARED_REDIS_URL for settings_url in urls):
        delete_prefixed(SHARED_REDIS_URL, prefix)
