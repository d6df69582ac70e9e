"""Every backend is a :class:`~router.store.base.Store`, and tells its callers what they need
through the interface (``shared``, ``connect()``), never through which backend it is."""

from __future__ import annotations

import pytest

from router.settings import load_settings
from router.store import MemoryStore, Store, StoreError, open_store
from router.store.redis import RedisStore
from tests.store.conftest import MakeStore
from tests.store.redis_servers import free_port
from tests.store.test_redis_store import RoundTrips


@pytest.mark.parametrize(
    ("url", "backend", "shared"),
    [("memory", MemoryStore, False), ("redis://127.0.0.1:6379/0", RedisStore, True)],
)
async def test_each_store_satisfies_the_store_protocol(
    url: str, backend: type[Store], shared: bool
) -> None:
    store = open_store(load_settings(ROUTER_STORE=url))
    try:
        assert isinstance(store, backend)
        assert isinstance(store, Store)  # every member of the protocol, shared and connect too
        assert store.shared is shared
    finally:
        await store.close()  # nothing was dialled


async def test_connecting_the_memory_store_does_nothing() -> None:
    store = MemoryStore(10)
    await store.connect()
    assert len(store) == 0
    assert await store.status() == "memory"


async def test_connecting_the_redis_store_dials_it_now(
    make_store: MakeStore, shared_redis_url: str
) -> None:
    store = await make_store(shared_redis_url, connect=False)
    await store.connect()
    trips = RoundTrips()
    assert await store.status() == "ok"
    assert trips.made() == {}  # connect() has just heard Redis answer: no PING needed


async def test_connecting_a_redis_store_nobody_answers_raises_a_store_error(
    make_store: MakeStore,
) -> None:
    store = await make_store(f"redis://127.0.0.1:{free_port()}/0", connect=False)
    with pytest.raises(StoreError) as caught:
        await store.connect()
    assert caught.value.fault == "error"
    assert str(caught.value).startswith("connect:")
