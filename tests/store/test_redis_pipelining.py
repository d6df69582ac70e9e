"""Auto-pipelining: the store calls of one event-loop turn share one round trip to Redis.

Each caller still gets only its own replies, its own errors and its own deadline; and a
timeout counts against the breaker only while no other round trip is succeeding (then
it is this process that is slow to read the answer, not Redis that is down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis
from prometheus_client import REGISTRY

from router.store.base import StoreError
from router.store.redis import RedisStore
from tests.store.conftest import MakeStore
from tests.store.redis_servers import RedisServer

MARGIN_S = 0.05


def round_trips() -> float:
    value = REGISTRY.get_sample_value("router_store_round_trips_total")
    return value or 0.0


def decision(cid: str, queue: str) -> dict[str, object]:
    return {"conversation_id": cid, "shared_id": None, "queue": queue, "ruleset": "default"}


async def test_calls_of_one_loop_turn_share_one_round_trip(
    shared_redis_url: str, make_store: MakeStore
) -> None:
    store = await make_store(shared_redis_url)
    before = round_trips()
    await asyncio.gather(
        *(store.save_decision(decision(f"c-{n}", f"q-{n}"), ttl_s=60) for n in range(20))
    )
    assert round_trips() - before == 1

    before = round_trips()
    found = await asyncio.gather(*(store.decision_for_conversation(f"c-{n}") for n in range(20)))
    assert round_trips() - before == 1
    # each caller got its own reply, in its own order
    assert [d["queue"] if d else None for d in found] == [f"q-{n}" for n in range(20)]


async def test_calls_in_different_turns_make_their_own_round_trips(
    shared_redis_url: str, make_store: MakeStore
) -> None:
    store = await make_store(shared_redis_url)
    before = round_trips()
    for n in range(3):
        await store.save_decision(decision(f"c-{n}", "q"), ttl_s=60)
    assert round_trips() - before == 3


async def test_an_error_reply_fails_only_its_own_caller(
    shared_redis_url: str, make_store: MakeStore, prefix: str
) -> None:
    store = await make_store(shared_redis_url)
    await store.save_decision(decision("c-good", "billing"), ttl_s=60)
    # A decision key that holds a list: GET answers WRONGTYPE for that caller alone.
    client = redis.Redis.from_url(shared_redis_url)
    try:
        client.rpush(f"{prefix}{{c:c-bad}}:decision", "not a decision")
    finally:
        client.close()
    bad, good = await asyncio.gather(
        store.decision_for_conversation("c-bad"),
        store.decision_for_conversation("c-good"),
        return_exceptions=True,
    )
    assert isinstance(bad, StoreError)
    assert bad.fault == "error"
    assert "WRONGTYPE" in str(bad)
    assert isinstance(good, dict)
    assert good["queue"] == "billing"
    assert store.breaker_state == "closed"  # Redis answered: no verdict against it


async def test_each_caller_keeps_its_own_deadline(
    private_redis: RedisServer, make_store: MakeStore
) -> None:
    store = await make_store(private_redis.url, ROUTER_STORE_TIMEOUT_MS=400)
    private_redis.pause()
    try:
        began = time.monotonic()

        async def timed(timeout_s: float) -> float:
            with pytest.raises(StoreError) as caught:
                await store.read_known("c-1", None, timeout_s=timeout_s)
            assert caught.value.fault == "timeout"
            return time.monotonic() - began

        short, long = await asyncio.gather(timed(0.05), timed(0.3))
    finally:
        private_redis.resume()
    assert short < 0.05 + MARGIN_S  # not held until the pipeline's (later) deadline
    assert 0.3 <= long < 0.3 + MARGIN_S


class _DelayFirstConnection:
    """A TCP proxy to Redis that holds back every reply on the first connection it
    accepts by ``delay_s``, and passes the others straight through."""

    def __init__(self, target_port: int, delay_s: float) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.accepted = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        delay = self.delay_s if self.accepted == 1 else 0.0
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, wait: float) -> None:
            try:
                while data := await src.read(65536):
                    if wait:
                        await asyncio.sleep(wait)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for task in (pipe(reader, up_writer, 0.0), pipe(up_reader, writer, delay)):
            t = asyncio.create_task(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def slow_first_connection(shared_redis_url: str) -> AsyncIterator[_DelayFirstConnection]:
    port = int(shared_redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = _DelayFirstConnection(port, delay_s=0.25)
    await proxy.start()
    yield proxy
    await proxy.close()


async def _timeout_while_others_answer(store: RedisStore, *, others: bool) -> StoreError:
    """One call stuck on the slow connection; with ``others``, calls on a second (fast)
    connection succeed while it waits."""
    stuck = asyncio.create_task(store.read_known("c-stuck", None))
    await asyncio.sleep(0.01)  # next turn: a new pipeline, on a second connection
    if others:
        for n in range(3):
            await store.read_known(f"c-{n}", None)
    with pytest.raises(StoreError) as caught:
        await stuck
    return caught.value


async def test_a_timeout_while_other_round_trips_succeed_does_not_count(
    slow_first_connection: _DelayFirstConnection, make_store: MakeStore
) -> None:
    store = await make_store(
        slow_first_connection.url,
        connect=False,
        ROUTER_STORE_TIMEOUT_MS=100,
        ROUTER_BREAKER_FAILURES=1,
    )
    error = await _timeout_while_others_answer(store, others=True)
    assert error.fault == "timeout"
    assert store.breaker_state == "closed"  # Redis was answering: this process was slow


async def test_a_timeout_while_nothing_succeeds_counts(
    slow_first_connection: _DelayFirstConnection, make_store: MakeStore
) -> None:
    store = await make_store(
        slow_first_connection.url,
        connect=False,
        ROUTER_STORE_TIMEOUT_MS=100,
        ROUTER_BREAKER_FAILURES=1,
    )
    error = await _timeout_while_others_answer(store, others=False)
    assert error.fault == "timeout"
    assert store.breaker_state == "open"


async def test_a_call_waits_past_the_store_timeout_within_its_budget_while_redis_answers(
    slow_first_connection: _DelayFirstConnection, make_store: MakeStore, shared_redis_url: str
) -> None:
    writer = await make_store(shared_redis_url)  # straight to Redis, same key prefix
    await writer.save_decision(decision("c-late", "billing"), ttl_s=60)
    store = await make_store(slow_first_connection.url, connect=False, ROUTER_STORE_TIMEOUT_MS=100)
    began = time.monotonic()
    # Each reply on the slow connection, its handshake's included, comes 250 ms late.
    late = asyncio.create_task(store.decision_for_conversation("c-late", timeout_s=3.0))
    await asyncio.sleep(0.01)  # next turn: a second connection, which answers at once
    for n in range(3):
        await store.read_known(f"c-{n}", None)
    found = await late  # answered well past the 100 ms store timeout
    assert found is not None
    assert found["queue"] == "billing"
    assert 0.25 <= time.monotonic() - began < 3.0


async def test_without_answers_a_call_stops_at_the_store_timeout_whatever_its_budget(
    slow_first_connection: _DelayFirstConnection, make_store: MakeStore
) -> None:
    store = await make_store(slow_first_connection.url, connect=False, ROUTER_STORE_TIMEOUT_MS=100)
    began = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await store.read_known("c-1", None, timeout_s=1.0)
    assert caught.value.fault == "timeout"
    assert time.monotonic() - began < 0.1 + MARGIN_S
