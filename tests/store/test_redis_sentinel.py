"""The store behind Redis Sentinel (``redis+sentinel://host:port/master-name``).

The test starts a master and one sentinel watching it; the contract tests also run
through it (test_redis_contract.py). URL parsing is in test_redis_store.py.
"""

from __future__ import annotations

import time

import pytest

from router.store.base import StoreError
from tests.store.conftest import MakeStore
from tests.store.redis_servers import RedisSentinel, free_port


async def test_the_store_finds_its_master_through_the_sentinel(
    make_store: MakeStore, redis_sentinel: RedisSentinel
) -> None:
    store = await make_store(redis_sentinel.url)
    assert store.mode == "sentinel"
    await store.push("c1", "s1", state={"tier": "gold"}, ttl_s=60)
    await store.save_decision({"conversation_id": "c1", "shared_id": "s1"}, ttl_s=60)
    assert (await store.read_known(None, "s1")).pushed.state == {"tier": "gold"}
    assert await store.decision_for_shared_id("s1") == {"conversation_id": "c1", "shared_id": "s1"}
    assert await store.status() == "ok"


async def test_no_sentinel_answering_is_an_error_not_a_hang(make_store: MakeStore) -> None:
    store = await make_store(
        f"redis+sentinel://127.0.0.1:{free_port()}/mymaster",
        connect=False,
        ROUTER_STORE_TIMEOUT_MS=5000,
    )
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await store.push("c1", None, state={}, ttl_s=60)
    assert time.monotonic() - started < 2.5  # refused at once, not held to the store timeout
    assert caught.value.fault == "error"
    assert await store.status() == "down"


async def test_an_unknown_master_name_is_an_error(
    make_store: MakeStore, redis_sentinel: RedisSentinel
) -> None:
    url = redis_sentinel.url.rpartition("/")[0] + "/no-such-master"
    store = await make_store(url, connect=False)
    with pytest.raises(StoreError, match="MasterNotFoundError") as caught:
        await store.read_known("c1", None)
    assert caught.value.fault == "error"
