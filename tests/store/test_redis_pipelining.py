"""Auto-pipelining: the store calls of one event-loop turn share one round trip to Redis.

Each caller still gets only its own replies, its own errors and its own deadline; and a
timeout counts against the breaker only while no other round trip is succeeding (then
it is this process that is slow to read the answer, not Redis that is down).

Timings are far apart (a deadline is never checked to a margin smaller than itself), and
"the call is on the slow connection" is waited for, not slept for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis
from prometheus_client import REGISTRY

from router.store.base import StoreError
from router.store.redis import RedisStore
from tests.store.conftest import MakeStore
from tests.store.redis_servers import RedisServer
from tests.waiting import eventually

T = TypeVar("T")

HUNG_S = 60.0
"""How late the slow connection answers when it stands for a Redis that never answers."""


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
    store = await make_store(private_redis.url, ROUTER_STORE_TIMEOUT_MS=5000)
    private_redis.pause()
    ended: list[str] = []
    try:
        began = time.monotonic()

        async def timed(name: str, timeout_s: float) -> tuple[float, StoreError]:
            with pytest.raises(StoreError) as caught:
                await store.read_known("c-1", None, timeout_s=timeout_s)
            ended.append(name)
            return time.monotonic() - began, caught.value

        (short, short_error), (long, long_error) = await asyncio.gather(
            timed("short", 0.05), timed("long", 1.0)
        )
    finally:
        private_redis.resume()
    assert ended == ["short", "long"]
    assert short_error.fault == long_error.fault == "timeout"
    assert "within 50 ms" in str(short_error)  # its own deadline released it
    assert short < 1.0  # not held until the pipeline's (later) deadline
    assert 1.0 <= long < 5.0  # its own budget, not the store timeout


class _DelayFirstConnection:
    """A TCP proxy to Redis that holds back the first reply on the first connection it
    accepts by ``delay_s`` (so whatever was sent on it answers that late), and passes
    everything else straight through."""

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
                        wait = 0.0
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
async def slow_proxies(shared_redis_url: str) -> AsyncIterator[SlowProxies]:
    """``await slow_proxies(delay_s)``: a proxy to the shared Redis whose first connection
    answers ``delay_s`` late; closed at the end of the test."""
    port = int(shared_redis_url.rsplit(":", 1)[1].split("/")[0])
    proxies: list[_DelayFirstConnection] = []

    async def make(delay_s: float) -> _DelayFirstConnection:
        proxy = _DelayFirstConnection(port, delay_s=delay_s)
        proxies.append(proxy)
        await proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        await proxy.close()


SlowProxies = Callable[[float], Awaitable[_DelayFirstConnection]]


async def _stuck_on_the_slow_connection(
    proxy: _DelayFirstConnection, call: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """Start ``call`` on the proxy's first (slow) connection; calls made after this
    returns go on other connections, which answer at once."""
    assert proxy.accepted == 0
    stuck = asyncio.create_task(call)
    await eventually(lambda: proxy.accepted == 1, within=30)
    return stuck


async def _timeout_while_others_answer(
    store: RedisStore, proxy: _DelayFirstConnection, *, others: bool
) -> StoreError:
    """One call stuck on the slow connection; with ``others``, calls on a second (fast)
    connection succeed while it waits (the store timeout, 2 s, leaves them ample time)."""
    stuck = await _stuck_on_the_slow_connection(proxy, store.read_known("c-stuck", None))
    if others:
        for n in range(3):
            await store.read_known(f"c-{n}", None)
    with pytest.raises(StoreError) as caught:
        await stuck
    return caught.value


async def test_a_timeout_while_other_round_trips_succeed_does_not_count(
    slow_proxies: SlowProxies, make_store: MakeStore
) -> None:
    proxy = await slow_proxies(HUNG_S)
    store = await make_store(
        proxy.url, connect=False, ROUTER_STORE_TIMEOUT_MS=2000, ROUTER_BREAKER_FAILURES=1
    )
    error = await _timeout_while_others_answer(store, proxy, others=True)
    assert error.fault == "timeout"
    assert store.breaker_state == "closed"  # Redis was answering: this process was slow


async def test_a_timeout_while_nothing_succeeds_counts(
    slow_proxies: SlowProxies, make_store: MakeStore
) -> None:
    proxy = await slow_proxies(HUNG_S)
    store = await make_store(
        proxy.url, connect=False, ROUTER_STORE_TIMEOUT_MS=2000, ROUTER_BREAKER_FAILURES=1
    )
    error = await _timeout_while_others_answer(store, proxy, others=False)
    assert error.fault == "timeout"
    assert store.breaker_state == "open"


async def test_a_call_waits_past_the_store_timeout_within_its_budget_while_redis_answers(
    slow_proxies: SlowProxies, make_store: MakeStore, shared_redis_url: str
) -> None:
    writer = await make_store(shared_redis_url)  # straight to Redis, same key prefix
    await writer.save_decision(decision("c-late", "billing"), ttl_s=60)
    # The slow connection answers 1.5 s late: past the 1 s store timeout, within which
    # the calls on a second connection have answered.
    proxy = await slow_proxies(1.5)
    store = await make_store(proxy.url, connect=False, ROUTER_STORE_TIMEOUT_MS=1000)
    began = time.monotonic()
    late = await _stuck_on_the_slow_connection(
        proxy, store.decision_for_conversation("c-late", timeout_s=60.0)
    )
    for n in range(3):
        await store.read_known(f"c-{n}", None)
    found = await late
    assert found is not None
    assert found["queue"] == "billing"
    assert time.monotonic() - began >= 1.5  # answered past the store timeout


async def test_without_answers_a_call_stops_at_the_store_timeout_whatever_its_budget(
    slow_proxies: SlowProxies, make_store: MakeStore
) -> None:
    proxy = await slow_proxies(HUNG_S)
    store = await make_store(proxy.url, connect=False, ROUTER_STORE_TIMEOUT_MS=100)
    began = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await store.read_known("c-1", None, timeout_s=10.0)
    assert caught.value.fault == "timeout"
    assert time.monotonic() - began < 5.0  # the store timeout, not the 10 s budget
