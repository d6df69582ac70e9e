"""Decision records in Redis: one stream every replica adds to, in the save's own round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from router.records.record import decode_record
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.service import DecisionRequest, open_service
from router.settings import Settings
from router.store.redis import store as redis_store
from tests.rules import RULES_YAML, write_rules
from tests.store.conftest import MakeStore, delete_prefixed


def round_trips() -> float:
    return REGISTRY.get_sample_value("router_store_round_trips_total") or 0.0


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("router_records_dropped_total", {"reason": reason}) or 0.0


def decision(cid: str | None, queue: str = "q") -> dict[str, object]:
    return {"conversation_id": cid, "shared_id": None, "queue": queue, "ruleset": "default"}


async def read_all(store: Any, since: float | None = None) -> list[bytes]:
    return [body async for body in store.records(since=since)]


async def test_a_record_rides_in_the_decisions_own_round_trip(
    shared_redis_url: str, make_store: MakeStore
) -> None:
    store = await make_store(shared_redis_url)
    before = round_trips()
    await store.save_decision(decision("c-1"), ttl_s=60, record=b'{"n":1}')
    assert round_trips() - before == 1
    assert await store.decision_for_conversation("c-1") is not None
    assert await read_all(store) == [b'{"n":1}']


async def test_a_decision_without_ids_is_still_recorded(
    shared_redis_url: str, make_store: MakeStore
) -> None:
    store = await make_store(shared_redis_url)
    before = round_trips()
    await store.save_decision(decision(None), ttl_s=60, record=b'{"n":2}')
    # Nothing waits on a record alone; a call made in the same turn shares its pipeline.
    assert await store.decision_for_conversation("unknown") is None
    assert round_trips() - before == 1
    found = await read_all(store)
    assert found == [b'{"n":2}']


async def test_the_stream_is_bounded_by_record_max(
    shared_redis_url: str, make_store: MakeStore, prefix: str
) -> None:
    store = await make_store(shared_redis_url, ROUTER_RECORD_MAX="10")
    for start in range(0, 1000, 100):
        for n in range(start, start + 100):  # a hundred saves per round trip
            await_later = store.save_decision(decision(f"c-{n}"), ttl_s=60, record=b"%d" % n)
            await_later.close()  # not awaited: only its record is queued, synchronously
        await store.save_decision(decision("last"), ttl_s=60, record=b"last")
    client = redis.Redis.from_url(shared_redis_url)
    try:
        length = client.xlen(f"{prefix}records")
    finally:
        client.close()
    assert 10 <= length <= 10 + 100  # MAXLEN ~ trims whole stream nodes (100 entries)
    assert (await read_all(store))[-1] == b"last"


async def test_records_are_read_in_pages_oldest_first(
    shared_redis_url: str, make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "RECORD_PAGE", 7)
    store = await make_store(shared_redis_url)
    for n in range(30):
        await store.save_decision(decision(f"c-{n}"), ttl_s=60, record=b"%d" % n)
    assert await read_all(store) == [b"%d" % n for n in range(30)]
    future = datetime.now(UTC).timestamp() + 3600
    assert await read_all(store, since=future) == []


async def test_record_max_zero_writes_no_stream(
    shared_redis_url: str, make_store: MakeStore
) -> None:
    store = await make_store(shared_redis_url, ROUTER_RECORD_MAX="0")
    await store.save_decision(decision("c"), ttl_s=60, record=b"x")
    assert await read_all(store) == []


async def test_a_record_redis_refuses_is_dropped_and_never_holds_back_the_decision(
    shared_redis_url: str, make_store: MakeStore, prefix: str
) -> None:
    client = redis.Redis.from_url(shared_redis_url)
    try:
        client.set(f"{prefix}records", b"not a stream")  # XADD answers WRONGTYPE
    finally:
        client.close()
    store = await make_store(shared_redis_url)
    before = dropped("store")
    await store.save_decision(decision("c-1"), ttl_s=60, record=b"x")
    assert dropped("store") - before == 1
    assert store.outbox_pending == 0
    assert await store.decision_for_conversation("c-1") is not None


async def test_routing_with_recording_makes_no_extra_round_trip(
    shared_redis_url: str,
    make_settings: Callable[..., Settings],
    prefix: str,
    tmp_path: Path,
) -> None:
    """A routed call's round trips (read, save) are the same with recording on and off."""
    write_rules(tmp_path, "default.yaml", RULES_YAML)
    registry = RulesRegistry()
    RulesReloader(registry, tmp_path).reload()
    made: dict[str, float] = {}
    try:
        for record_max in ("0", "1000"):
            settings = make_settings(
                ROUTER_STORE=shared_redis_url,
                ROUTER_RECORD_MAX=record_max,
                ROUTER_STORE_TIMEOUT_MS="2000",
            )
            async with open_service(settings, registry) as service:
                await service.decide(DecisionRequest("warm-up", state={}, handoff={}))
                before = round_trips()
                for n in range(5):
                    await service.decide(
                        DecisionRequest(f"c-{record_max}-{n}", state={}, handoff={}, budget_ms=4000)
                    )
                await service.drain()
                made[record_max] = round_trips() - before
                kept = [decode_record(body) async for body in service.store.records()]
            assert len(kept) == (0 if record_max == "0" else 6)
    finally:
        delete_prefixed(shared_redis_url, prefix)
    assert made["1000"] == made["0"] > 0
