"""Store benchmark: the latency of each decision phase, memory store against Redis.

A decision touches the store twice: one read of what is pushed and cached
(``read_known``) and one write of the decision with the lookups it was made on
(``save_decision`` with ``lookups``). This times each phase, one call at a time, for
the memory store and for each Redis given (loopback by default), plus the calls
around it (a push, reading a decision back), and prints a table of percentiles with
the Redis/memory ratio. A second table runs the same phases with many calls in
flight at once, as a busy replica would.

    python bench/store_bench.py                          # Redis on 127.0.0.1:6379
    python bench/store_bench.py --quick                  # smoke test (a second)
    python bench/store_bench.py --redis redis://10.0.0.5:6379/0 --redis redis+cluster://10.0.0.6:7000
    python bench/store_bench.py --json /tmp/store.json

It writes under a random ``bench:<hex>:`` key prefix and deletes those keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.settings import load_settings
from router.store import MemoryStore, Store, open_store
from router.store.base import CACHE_HANDOFF, CACHE_RECORD, JSONMap
from router.store.redis import RedisStore
from router.store.redis.url import connect, redact

HANDOFF = {
    "handoff_reason": "refund",
    "customer_id": "C-204871",
    "identified": "true",
    "intent": "billing.refund_status",
    "language": "en-GB",
}
STATE = {
    "customer_tier": "gold",
    "balance": "1500",
    "sentiment": "upset",
    "verified": "true",
    "account_type": "business",
}
CONVERSATION = {
    "channel": "voice",
    "from_number": "+447700900123",
    "to_number": "+442071234567",
    "language": "en-GB",
    "handoff_reason": "refund",
    "in_progress": True,
    "tags": ["identified"],
}


def decision_for(n: int) -> dict[str, Any]:
    """A decision shaped like ``POST /v1/route``'s answer (≈ 500 bytes of JSON)."""
    return {
        "decision_id": str(uuid.uuid4()),
        "conversation_id": f"conv-{n}",
        "shared_id": f"CA{n:032x}",
        "ruleset": "default",
        "ruleset_version": "sha256:" + "3f9a" * 16,
        "queue": "billing-priority",
        "label": "Billing dispute · Gold",
        "priority": 10,
        "skills": ["billing"],
        "attributes": {"x_tier": "gold"},
        "rule": "vip-billing",
        "outcome": "matched",
        "degraded": False,
        "sources": {"handoff": "ok", "state": "ok", "store": "ok"},
        "elapsed_ms": 7.4,
    }


def lookups_for(n: int) -> dict[str, JSONMap]:
    return {
        CACHE_HANDOFF: {**HANDOFF, "id": f"conv-{n}", "shared_id": f"CA{n:032x}"},
        CACHE_RECORD: {"state": STATE, "conversation": CONVERSATION},
    }


@dataclass
class Phase:
    """One thing timed: a call made once per conversation."""

    name: str
    what: str
    call: Callable[[Store, int], Awaitable[object]]


PHASES = (
    Phase(
        "read_known (cid)",
        "read phase, conversation id known",
        lambda s, n: s.read_known(f"conv-{n}", f"CA{n:032x}"),
    ),
    Phase(
        "read_known (sid only)",
        "read phase, shared id only (Redis: 2 round trips)",
        lambda s, n: s.read_known(None, f"CA{n:032x}"),
    ),
    Phase(
        "save_decision+cache",
        "write phase: decision + lookups",
        lambda s, n: s.save_decision(
            decision_for(n), ttl_s=600, lookups=lookups_for(n), cache_ttl_s=600
        ),
    ),
    Phase(
        "push",
        "POST /v1/events/polyai",
        lambda s, n: s.push(f"conv-{n}", f"CA{n:032x}", data=HANDOFF, state=STATE, ttl_s=600),
    ),
    Phase(
        "decision_for_conversation",
        "GET /v1/decisions/{id}",
        lambda s, n: s.decision_for_conversation(f"conv-{n}"),
    ),
)


@dataclass
class Result:
    backend: str
    sequential_us: dict[str, list[float]] = field(default_factory=dict)
    concurrent_per_s: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def run_backend(label: str, store: Store, conversations: int, concurrency: int) -> Result:
    """Prepare ``conversations`` pushed + cached conversations, then time every phase."""
    result = Result(label)
    for n in range(conversations):  # what a decision finds: a push and cached lookups
        await store.push(f"conv-{n}", f"CA{n:032x}", data=HANDOFF, state=STATE, ttl_s=600)
        await store.cache_lookups(f"conv-{n}", f"CA{n:032x}", lookups_for(n), ttl_s=600)
    for phase in PHASES:
        for n in range(min(conversations, 50)):  # warm connections and caches
            await phase.call(store, n)
        timings = []
        for n in range(conversations):
            began = time.perf_counter()
            await phase.call(store, n)
            timings.append((time.perf_counter() - began) * 1e6)
        result.sequential_us[phase.name] = timings
        pending = list(range(conversations))

        async def worker(calls: list[int], phase: Phase = phase) -> None:
            while calls:
                await phase.call(store, calls.pop())

        began = time.perf_counter()
        await asyncio.gather(*(worker(pending) for _ in range(concurrency)))
        result.concurrent_per_s[phase.name] = conversations / (time.perf_counter() - began)
    return result


def print_tables(results: list[Result], concurrency: int) -> None:
    memory = results[0]
    print("\nOne call at a time: latency per call (µs), and the p50 ratio to the memory store\n")
    header = (
        f"{'phase':<27} {'backend':<34} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8} {'×mem':>7}"
    )
    print(header)
    print("-" * len(header))
    for phase in PHASES:
        base = statistics.median(memory.sequential_us[phase.name])
        for result in results:
            values = result.sequential_us[phase.name]
            p50 = statistics.median(values)
            print(
                f"{phase.name:<27} {result.backend:<34} {p50:>8.1f} "
                f"{percentile(values, 0.95):>8.1f} {percentile(values, 0.99):>8.1f} "
                f"{statistics.fmean(values):>8.1f} {p50 / base:>7.1f}"
            )
    print(f"\n{concurrency} calls in flight: calls per second, and the ratio to the memory store\n")
    header = f"{'phase':<27} {'backend':<34} {'calls/s':>10} {'×mem':>7}"
    print(header)
    print("-" * len(header))
    for phase in PHASES:
        base = memory.concurrent_per_s[phase.name]
        for result in results:
            rate = result.concurrent_per_s[phase.name]
            print(f"{phase.name:<27} {result.backend:<34} {rate:>10.0f} {rate / base:>7.2f}")


async def delete_prefixed(url: str, prefix: str) -> int:
    """Remove the benchmark's keys (on every master, for a cluster); returns how many."""
    connected = connect(url, pool_size=4, timeout_s=5.0)
    client: Any = connected.client
    deleted = 0
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for key in keys:  # one by one: in a cluster, keys of one DEL must share a slot
            deleted += await client.delete(key)
    finally:
        await client.aclose()
        for helper in connected.helpers:
            await helper.aclose()
    return deleted


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis",
        action="append",
        metavar="URL",
        help="a Redis to compare (ROUTER_STORE form; repeatable; default redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--conversations", type=int, default=5000, help="calls timed per phase")
    parser.add_argument("--concurrency", type=int, default=50, help="calls in flight, 2nd table")
    parser.add_argument("--quick", action="store_true", help="300 conversations: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    conversations = 300 if args.quick else args.conversations
    urls = args.redis or ["redis://127.0.0.1:6379/0"]
    prefix = f"bench:{uuid.uuid4().hex}:"

    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{conversations} conversations per phase"
    )
    results = [
        await run_backend("memory", MemoryStore(conversations * 4), conversations, args.concurrency)
    ]
    for url in urls:
        settings = load_settings(
            ROUTER_STORE=url,
            ROUTER_STORE_PREFIX=prefix,
            ROUTER_STORE_TIMEOUT_MS=1000,
            ROUTER_STORE_POOL_SIZE=max(args.concurrency, 1),
        )
        store = open_store(settings)
        assert isinstance(store, RedisStore)
        try:
            await store.connect()
            label = f"redis {store.mode} {redact(url).split('://', 1)[1]}"[:34]
            results.append(await run_backend(label, store, conversations, args.concurrency))
        finally:
            await store.close()
            await delete_prefixed(url, prefix)
    print_tables(results, args.concurrency)
    if args.json:
        payload = json.dumps([result.__dict__ for result in results])
        await asyncio.to_thread(Path(args.json).write_text, payload, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
