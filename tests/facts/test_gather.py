"""Gathering facts end to end against a fake PolyAI on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from prometheus_client import REGISTRY

from router.budget import Deadline
from router.facts import FactGatherer, GatheredFacts
from router.store.base import JSONMap, Known, StoreError, StoreKind, StoreStatus
from router.store.memory import MemoryStore
from tests.fakes.clock import ManualClock
from tests.fakes.polyai import SAMPLE_CONVERSATION, SAMPLE_HANDOFF, FakePolyAI, Reply
from tests.waiting import LOADED_MACHINE_SLACK_S, eventually

CID = "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"
SID = "CA5f1e6c2d0b8a4f3e9d7c6b5a4f3e2d1c"
MakeGatherer = Callable[..., tuple[FactGatherer, MemoryStore]]


async def gather(gatherer: FactGatherer, budget_ms: float = 2000, **kwargs: Any) -> GatheredFacts:
    return await gatherer.gather(deadline=Deadline.start(budget_ms), **kwargs)


def upstream_count(source: str, result: str) -> float:
    labels = {"source": source, "result": result}
    return REGISTRY.get_sample_value("router_upstream_requests_total", labels) or 0.0


def duration_count(source: str) -> float:
    labels = {"source": source}
    return REGISTRY.get_sample_value("router_upstream_duration_seconds_count", labels) or 0.0


# Shapes ------------------------------------------------------------------------


async def test_lookups_fill_every_namespace(make_gatherer: MakeGatherer, fake: FakePolyAI) -> None:
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, conversation_id=CID)
    assert got.sources == {"handoff": "ok", "state": "ok"}
    assert not got.degraded
    assert got.facts["handoff"] == {**SAMPLE_HANDOFF["data"], "id": CID, "shared_id": SID}
    assert got.facts["state"] == SAMPLE_CONVERSATION["state"]
    conversation = got.facts["conversation"]
    assert conversation is not None
    assert "state" not in conversation
    assert conversation["fromNumber"] == conversation["from_number"] == "+447700900123"
    assert conversation["in_progress"] is True
    assert conversation["handoff_reason"] == "refund"
    assert conversation["channel"] == "voice"
    assert got.conversation_id == CID
    assert got.shared_id == SID  # learnt from the handoff answer


async def test_both_lookups_run_concurrently_when_the_conversation_id_is_known(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))
    gatherer, _ = make_gatherer()
    gathering = asyncio.create_task(gather(gatherer, 10_000, conversation_id=CID, shared_id=SID))
    await eventually(lambda: fake.in_flight == 2)  # both asked before either answered
    gate.set()
    got = await gathering
    assert got.sources == {"handoff": "ok", "state": "ok"}
    assert fake.calls("handoff")[0].query == {"id": CID}


async def test_only_a_shared_id_chains_the_record_lookup_on_the_handoff_answer(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.json({"id": "conv-from-handoff", "shared_id": SID, "data": {"a": "1"}}))
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, shared_id=SID)
    assert got.sources == {"handoff": "ok", "state": "ok"}
    assert got.conversation_id == "conv-from-handoff"
    assert fake.calls("handoff")[0].query == {"shared_id": SID}
    assert fake.calls("conversation")[0].path.endswith("/conversations/conv-from-handoff")
    assert fake.max_in_flight == 1
    assert got.facts["handoff"] == {"a": "1", "id": "conv-from-handoff", "shared_id": SID}


async def test_chained_handoff_404_means_no_conversation_to_look_up(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.not_found())
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, shared_id=SID)
    assert got.sources == {"handoff": "not_found", "state": "not_found"}
    assert got.facts == {"handoff": {"shared_id": SID}, "state": {}, "conversation": {}}
    assert not got.degraded
    assert fake.conversation_calls == 0


async def test_chained_handoff_failure_leaves_state_unknown(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(500))
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, shared_id=SID)
    assert got.sources == {"handoff": "error", "state": "error"}
    assert got.facts == {"handoff": None, "state": None, "conversation": None}
    assert got.degraded
    assert fake.conversation_calls == 0


async def test_lookups_are_skipped_without_an_api_key(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer(POLYAI_API_KEY="")
    got = await gather(gatherer, conversation_id=CID)
    assert got.sources == {"handoff": "skipped", "state": "skipped"}
    assert got.facts == {"handoff": {}, "state": {}, "conversation": {}}
    assert not got.degraded
    assert fake.seen == []


async def test_gather_needs_an_id(make_gatherer: MakeGatherer) -> None:
    gatherer, _ = make_gatherer()
    with pytest.raises(ValueError, match="conversation id or a shared id"):
        await gather(gatherer)


# Precedence: pushed > inline > cached > lookup ---------------------------------


async def test_pushed_facts_win_and_skip_every_lookup(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer()
    await store.push(
        CID,
        SID,
        data={"handoff_reason": "pushed"},
        state={"tier": "pushed"},
        conversation={"fromNumber": "+1"},
        ttl_s=60,
    )
    got = await gather(
        gatherer,
        conversation_id=CID,
        inline_handoff={"handoff_reason": "inline"},
        inline_state={"tier": "inline"},
    )
    assert got.sources == {"handoff": "pushed", "state": "pushed"}
    assert got.facts["handoff"] == {"handoff_reason": "pushed", "id": CID, "shared_id": SID}
    assert got.facts["state"] == {"tier": "pushed"}
    assert got.facts["conversation"] == {"fromNumber": "+1", "from_number": "+1"}
    assert fake.seen == []


async def test_inline_handoff_skips_the_handoff_call_only(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, conversation_id=CID, inline_handoff={"handoff_reason": "x"})
    assert got.sources == {"handoff": "inline", "state": "ok"}
    assert got.facts["handoff"] == {"handoff_reason": "x", "id": CID}
    assert fake.handoff_calls == 0
    assert fake.conversation_calls == 1


async def test_inline_state_skips_the_record_call_and_conversation_says_so(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, conversation_id=CID, inline_state={"tier": "gold"})
    assert got.sources == {"handoff": "ok", "state": "inline", "conversation": "skipped"}
    assert got.facts["state"] == {"tier": "gold"}
    assert got.facts["conversation"] == {}
    assert fake.conversation_calls == 0
    assert fake.handoff_calls == 1


@pytest.mark.parametrize(
    "ids",
    [{"conversation_id": CID}, {"shared_id": SID}, {"conversation_id": CID, "shared_id": SID}],
)
async def test_both_inline_with_nothing_kept_is_what_the_full_precedence_gives(
    make_gatherer: MakeGatherer, fake: FakePolyAI, ids: dict[str, str]
) -> None:
    """Handoff and state inline and nothing kept for the call (the usual route call) has
    its own short way; it comes to what the full precedence gives when the store does hold
    something for the call, but nothing that wins over inline facts (a cached lookup)."""
    inline = {"inline_handoff": {"intent": "refund"}, "inline_state": {"tier": "gold"}}
    gatherer, store = make_gatherer()
    short = await gather(gatherer, **ids, **inline)
    await store.cache_lookups(
        ids.get("conversation_id"),
        ids.get("shared_id"),
        {"handoff": {"intent": "stale"}},
        ttl_s=60,
    )
    full = await gather(gatherer, **ids, **inline)
    assert short == full
    assert short.sources == {"handoff": "inline", "state": "inline", "conversation": "skipped"}
    assert short.facts["handoff"] == {"intent": "refund", **ids_in_handoff(ids)}
    assert (fake.handoff_calls, fake.conversation_calls) == (0, 0)


def ids_in_handoff(ids: Mapping[str, str]) -> dict[str, str]:
    """The ids a handoff namespace carries for a call naming ``ids``."""
    named = {"id": ids.get("conversation_id"), "shared_id": ids.get("shared_id")}
    return {key: value for key, value in named.items() if value is not None}


async def test_inline_state_with_a_pushed_conversation_keeps_the_pushed_one(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer()
    await store.push(CID, None, conversation={"channel": "chat"}, ttl_s=60)
    got = await gather(gatherer, conversation_id=CID, inline_state={"tier": "gold"})
    assert got.sources["conversation"] == "pushed"
    assert got.facts["conversation"] == {"channel": "chat"}
    assert fake.conversation_calls == 0


async def test_pushed_state_alone_still_looks_up_the_conversation_fields(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer()
    await store.push(CID, None, state={"tier": "pushed"}, ttl_s=60)
    got = await gather(gatherer, conversation_id=CID)
    assert got.sources == {"handoff": "ok", "state": "pushed", "conversation": "ok"}
    assert got.facts["state"] == {"tier": "pushed"}
    conversation = got.facts["conversation"]
    assert conversation is not None
    assert conversation["channel"] == "voice"
    assert fake.conversation_calls == 1


async def test_a_push_keyed_by_conversation_id_is_found_when_only_the_shared_id_is_given(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer()
    await store.push(CID, None, state={"tier": "pushed"}, conversation={"c": 1}, ttl_s=60)
    got = await gather(gatherer, shared_id=SID)  # the handoff answer names CID
    assert got.sources == {"handoff": "ok", "state": "pushed"}
    assert got.facts["state"] == {"tier": "pushed"}
    assert fake.conversation_calls == 0


async def test_a_push_naming_both_ids_links_them(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, store = make_gatherer()
    await store.push(CID, SID, data={"r": "1"}, ttl_s=60)
    got = await gather(gatherer, shared_id=SID)
    assert got.conversation_id == CID
    assert got.sources == {"handoff": "pushed", "state": "ok"}
    assert fake.handoff_calls == 0
    assert fake.calls("conversation")[0].path.endswith(f"/conversations/{CID}")


# Cache -------------------------------------------------------------------------


async def test_lookups_are_cached_per_conversation_until_the_ttl(
    make_gatherer: MakeGatherer, fake: FakePolyAI, clock: ManualClock
) -> None:
    gatherer, _ = make_gatherer(ROUTER_CACHE_TTL_S=600)
    first = await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    second = await gather(gatherer, conversation_id=CID)
    assert second.sources == {"handoff": "cached", "state": "cached"}
    assert second.facts == first.facts
    assert (fake.handoff_calls, fake.conversation_calls) == (1, 1)

    clock.advance(601)
    third = await gather(gatherer, conversation_id=CID)
    assert third.sources == {"handoff": "ok", "state": "ok"}
    assert (fake.handoff_calls, fake.conversation_calls) == (2, 2)


async def test_the_cache_is_found_by_shared_id_too(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer()
    await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    got = await gather(gatherer, shared_id=SID)
    assert got.sources == {"handoff": "cached", "state": "cached"}
    assert got.conversation_id == CID
    assert (fake.handoff_calls, fake.conversation_calls) == (1, 1)


async def test_inline_beats_cached(make_gatherer: MakeGatherer, fake: FakePolyAI) -> None:
    gatherer, _ = make_gatherer()
    await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    got = await gather(gatherer, conversation_id=CID, inline_handoff={"r": "inline"})
    assert got.sources == {"handoff": "inline", "state": "cached"}
    assert got.facts["handoff"] == {"r": "inline", "id": CID}


async def test_a_404_is_not_cached(make_gatherer: MakeGatherer, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.not_found(), Reply.ok())
    gatherer, _ = make_gatherer()
    first = await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    second = await gather(gatherer, conversation_id=CID)
    assert first.sources["handoff"] == "not_found"
    assert second.sources["handoff"] == "ok"  # written since: a retry must see it
    assert fake.handoff_calls == 2


async def test_failures_are_not_cached(make_gatherer: MakeGatherer, fake: FakePolyAI) -> None:
    fake.set_conversation(Reply.with_status(500), Reply.ok())
    gatherer, _ = make_gatherer()
    await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    got = await gather(gatherer, conversation_id=CID)
    assert got.sources["state"] == "ok"
    assert fake.conversation_calls == 2


async def test_cache_ttl_zero_disables_the_cache(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer(ROUTER_CACHE_TTL_S=0)
    await gather(gatherer, conversation_id=CID)
    await gatherer.drain()
    got = await gather(gatherer, conversation_id=CID)
    assert got.sources == {"handoff": "ok", "state": "ok"}
    assert fake.handoff_calls == 2


# Single-flight ------------------------------------------------------------------


async def test_concurrent_gathers_share_one_upstream_call_per_source(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))
    gatherer, _ = make_gatherer()
    before = upstream_count("handoff", "ok")
    # Every gather reaches its lookups in its first step, long before an upstream call
    # can answer: held until the calls are seen, none of them can have finished early.
    gathering = asyncio.gather(*(gather(gatherer, 10_000, conversation_id=CID) for _ in range(20)))
    await eventually(lambda: fake.in_flight == 2)
    gate.set()
    results = await gathering
    assert all(r.sources == {"handoff": "ok", "state": "ok"} for r in results)
    assert (fake.handoff_calls, fake.conversation_calls) == (1, 1)
    assert upstream_count("handoff", "ok") - before == 1


async def test_a_waiter_with_less_budget_gives_up_alone(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gate = asyncio.Event()
    fake.set_conversation(Reply.held(gate))
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=1)
    leader = asyncio.create_task(gather(gatherer, 10_000, conversation_id=CID))
    await eventually(lambda: fake.conversation_calls == 1)  # the leader's call is out
    follower = await gather(gatherer, 150, conversation_id=CID)
    assert follower.sources["state"] == "timeout"
    assert not leader.done()
    gate.set()
    assert (await leader).sources["state"] == "ok"
    assert fake.conversation_calls == 1
    assert gatherer.breaker_states()["state"] == "closed"  # the call itself did not fail


# Failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "result"),
    [
        (Reply.hang(), "timeout"),
        (Reply.slow(5.0), "timeout"),
        (Reply.stall_body(), "timeout"),
        (Reply.reset(), "error"),
        (Reply.with_status(500), "error"),
        (Reply.with_status(429), "error"),
        (Reply.with_status(503), "error"),
        (Reply.malformed(), "error"),
        (Reply.wrong_shape(), "error"),
        (Reply.huge(), "error"),
        (Reply.not_found(), "not_found"),
    ],
)
@pytest.mark.parametrize("source", ["handoff", "state"])
async def test_every_failure_kind_is_reported_per_source(
    make_gatherer: MakeGatherer, fake: FakePolyAI, reply: Reply, result: str, source: str
) -> None:
    if source == "handoff":
        fake.set_handoff(reply)
    else:
        fake.set_conversation(reply)
    gatherer, _ = make_gatherer()
    before = upstream_count(source, result)
    # The failing kinds that time out take the whole budget; the other source must answer
    # within it, on a loaded machine too.
    got = await gather(gatherer, 1000, conversation_id=CID)
    other = "state" if source == "handoff" else "handoff"
    assert got.sources[source] == result
    assert got.sources[other] == "ok"
    failed = result in ("timeout", "error")
    assert got.degraded is failed
    namespaces = ["handoff"] if source == "handoff" else ["state", "conversation"]
    for namespace in namespaces:
        assert (got.facts[namespace] is None) is failed
    assert upstream_count(source, result) - before == 1


async def test_upstream_metrics_count_lookups_and_time_them(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_conversation(Reply.with_status(500))
    gatherer, _ = make_gatherer()
    ok, error = upstream_count("handoff", "ok"), upstream_count("state", "error")
    timed = duration_count("state")
    await gather(gatherer, conversation_id=CID)
    assert upstream_count("handoff", "ok") - ok == 1
    assert upstream_count("state", "error") - error == 1
    assert duration_count("state") - timed == 1


@pytest.mark.parametrize("ids", [{"conversation_id": CID}, {"shared_id": SID}])
async def test_hanging_upstream_answers_within_budget(
    make_gatherer: MakeGatherer, fake: FakePolyAI, ids: dict[str, Any]
) -> None:
    fake.set_handoff(Reply.hang())
    fake.set_conversation(Reply.hang())
    gatherer, _ = make_gatherer()
    deadline = Deadline.start(300)
    # The upstream answers only when the fake closes: waiting for it would never end.
    async with asyncio.timeout(10):
        got = await gatherer.gather(deadline=deadline, **ids)
    assert got.sources["handoff"] == "timeout"
    assert got.sources["state"] == "timeout"
    assert got.degraded
    assert time.monotonic() < deadline.expires_at + LOADED_MACHINE_SLACK_S


async def test_a_slow_first_lookup_leaves_the_chained_one_only_what_is_left(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    # The handoff answers after 1.2 s of a 2 s budget. Had the chained record lookup been
    # given a fresh upstream timeout (1.95 s), the answer would leave after 3.15 s at the
    # earliest: past the bound below however idle the machine. With only what is left it
    # leaves at about 1.95 s, which keeps the slack a loaded machine needs.
    slow_s = 1.2
    fake.set_handoff(Reply.slow(slow_s))
    fake.set_conversation(Reply.hang())
    gatherer, _ = make_gatherer()
    deadline = Deadline.start(2000)
    assert slow_s > LOADED_MACHINE_SLACK_S + deadline.reserve_s  # so the bound catches it
    async with asyncio.timeout(10):
        got = await gatherer.gather(deadline=deadline, shared_id=SID)
    assert got.sources == {"handoff": "ok", "state": "timeout"}
    assert time.monotonic() < deadline.expires_at + LOADED_MACHINE_SLACK_S


# Breaker ---------------------------------------------------------------------------


async def test_breaker_opens_then_answers_circuit_open_without_calling(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(500))
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=2)
    for n in range(2):
        got = await gather(gatherer, conversation_id=f"c{n}")
        assert got.sources["handoff"] == "error"
    assert gatherer.breaker_states() == {"handoff": "open", "state": "closed"}
    gauge = REGISTRY.get_sample_value("router_breaker_open", {"source": "handoff"})
    assert gauge == 1

    got = await gather(gatherer, conversation_id="c3")
    assert got.sources == {"handoff": "circuit_open", "state": "ok"}
    assert got.facts["handoff"] is None
    assert got.degraded
    assert fake.handoff_calls == 2


async def test_half_open_lets_one_probe_through_and_its_success_closes(
    make_gatherer: MakeGatherer, fake: FakePolyAI, clock: ManualClock
) -> None:
    fake.set_handoff(Reply.with_status(500))
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=1, ROUTER_BREAKER_RESET_S=10)
    await gather(gatherer, conversation_id="c0")
    assert gatherer.breaker_states()["handoff"] == "open"

    clock.advance(10)
    assert gatherer.breaker_states()["handoff"] == "half_open"
    fake.set_handoff(Reply.slow(0.2))
    first, second = await asyncio.gather(
        gather(gatherer, conversation_id="c1"), gather(gatherer, conversation_id="c2")
    )
    assert sorted([first.sources["handoff"], second.sources["handoff"]]) == [
        "circuit_open",
        "ok",
    ]
    assert fake.handoff_calls == 2  # the failure, then exactly one probe
    assert gatherer.breaker_states()["handoff"] == "closed"
    assert REGISTRY.get_sample_value("router_breaker_open", {"source": "handoff"}) == 0


async def test_a_failed_probe_reopens_the_breaker(
    make_gatherer: MakeGatherer, fake: FakePolyAI, clock: ManualClock
) -> None:
    fake.set_conversation(Reply.with_status(500))
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=1, ROUTER_BREAKER_RESET_S=10)
    await gather(gatherer, conversation_id="c0")
    clock.advance(10)
    probe = await gather(gatherer, conversation_id="c1")
    after = await gather(gatherer, conversation_id="c2")
    assert probe.sources["state"] == "error"
    assert after.sources["state"] == "circuit_open"
    assert fake.conversation_calls == 2


async def test_a_lookup_is_one_failure_however_many_tries(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(503))
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=2)
    await gather(gatherer, conversation_id="c0")
    assert fake.handoff_calls == 2  # retried once
    assert gatherer.breaker_states()["handoff"] == "closed"
    await gather(gatherer, conversation_id="c1")
    assert gatherer.breaker_states()["handoff"] == "open"


async def test_a_timeout_counts_before_the_answer_leaves(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.hang())
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=1)
    got = await gather(gatherer, 200, conversation_id=CID)
    assert got.sources["handoff"] == "timeout"
    assert gatherer.breaker_states()["handoff"] == "open"  # no await in between


async def test_not_found_is_an_answer_not_a_breaker_failure(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.not_found())
    gatherer, _ = make_gatherer(ROUTER_BREAKER_FAILURES=1)
    for n in range(3):
        await gather(gatherer, conversation_id=f"c{n}")
    assert gatherer.breaker_states()["handoff"] == "closed"
    assert fake.handoff_calls == 3


# Store faults -------------------------------------------------------------------------


class BrokenStore:
    """A shared store that is down: every call fails as a Redis outage would."""

    @property
    def kind(self) -> StoreKind:
        return "redis"

    @property
    def shared(self) -> bool:
        return True

    async def connect(self) -> None:
        raise StoreError("connection refused")

    async def push(self, *args: Any, **kwargs: Any) -> None:
        raise StoreError("down")

    async def read_known(
        self, conversation_id: str | None, shared_id: str | None, **_: Any
    ) -> Known:
        raise StoreError("connection refused")

    async def cache_lookups(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        lookups: Mapping[str, JSONMap],
        **_: Any,
    ) -> None:
        raise StoreError("connection refused")

    async def save_decision(self, decision: JSONMap, **_: Any) -> None:
        raise StoreError("down")

    async def decision_for_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        raise StoreError("down")

    async def decision_for_shared_id(self, shared_id: str) -> dict[str, Any] | None:
        raise StoreError("down")

    async def status(self) -> StoreStatus:
        return "down"

    async def close(self) -> None:
        return None


async def test_a_store_outage_degrades_to_lookups_and_is_reported(
    make_settings: Callable[..., Any], session: Any, fake: FakePolyAI
) -> None:
    gatherer = FactGatherer(make_settings(), BrokenStore(), session)
    got = await gather(gatherer, conversation_id=CID)
    await gatherer.drain()  # the failed cache write is logged, not raised
    assert got.sources == {"handoff": "ok", "state": "ok", "store": "error"}
    assert not got.degraded
    assert got.facts["state"] == SAMPLE_CONVERSATION["state"]


async def test_the_memory_store_is_not_reported_as_a_source(
    make_gatherer: MakeGatherer, fake: FakePolyAI
) -> None:
    gatherer, _ = make_gatherer()
    got = await gather(gatherer, conversation_id=CID)
    assert "store" not in got.sources
