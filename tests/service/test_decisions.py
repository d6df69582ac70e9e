"""The decision service on its own: the whole path of a decision, with no HTTP in it."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
import pytest

from router.http.models import ExplainResponse, RouteResponse
from router.rules_registry import RulesRegistry
from router.service import (
    ANSWER_FIELDS,
    Answer,
    DecisionRequest,
    DecisionService,
    NotReady,
    RulesetNotFound,
    open_service,
)
from router.store import MemoryStore
from tests.fakes.polyai import FakePolyAI, Reply

GOLD_REFUND = DecisionRequest(
    conversation_id="c-gold",
    handoff={"handoff_reason": "refund"},
    state={"customer_tier": "gold"},
)


async def test_decide_gathers_decides_and_keeps_the_decision(service: DecisionService) -> None:
    answer = await service.decide(GOLD_REFUND)
    assert (answer.rule, answer.queue, answer.outcome) == (
        "vip-billing",
        "billing-priority",
        "matched",
    )
    assert answer.sources == {"handoff": "inline", "state": "inline", "conversation": "skipped"}
    kept = await service.decision_for_conversation("c-gold")
    assert kept == orjson.loads(orjson.dumps(answer))


async def test_lookups_feed_the_decision(service: DecisionService, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.ok())
    answer = await service.decide(DecisionRequest(conversation_id="c-look"))
    assert answer.sources == {"handoff": "ok", "state": "ok"}
    assert (fake.handoff_calls, fake.conversation_calls) == (1, 1)


async def test_explain_chooses_what_decide_chooses_and_keeps_nothing(
    service: DecisionService,
) -> None:
    request = dataclasses.replace(GOLD_REFUND, conversation_id="c-explained")
    explained = await service.explain(request)
    assert explained.answer.rule == "vip-billing"
    assert [step["rule"] for step in explained.trace] == ["vip-billing", "by-dnis"]
    assert explained.trace[0]["selected"] is True
    assert await service.decision_for_conversation("c-explained") is None


async def test_a_call_without_ids_is_decided_on_its_context(service: DecisionService) -> None:
    answer = await service.decide(DecisionRequest(context={"dnis": "+442071234567"}))
    assert (answer.rule, answer.degraded) == ("by-dnis", False)
    assert answer.sources == {"handoff": "skipped", "state": "skipped"}


async def test_an_unknown_ruleset_is_refused(service: DecisionService) -> None:
    with pytest.raises(RulesetNotFound):
        await service.decide(dataclasses.replace(GOLD_REFUND, ruleset="nope"))


async def test_no_rules_loaded_is_not_ready(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with open_service(make_settings(), RulesRegistry()) as service:
        with pytest.raises(NotReady):
            await service.decide(GOLD_REFUND)
        readiness = await service.readiness()
        assert not readiness.ready
        assert readiness.reason


async def test_the_budget_is_clamped_to_the_maximum(make_settings, registry) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ROUTER_BUDGET_MS=100, ROUTER_MAX_BUDGET_MS=200)
    async with open_service(settings, registry) as service:
        assert service.deadline(DecisionRequest(budget_ms=10_000)).budget_s == 0.2
        assert service.deadline(DecisionRequest()).budget_s == 0.1


def test_the_answer_field_names_are_written_once() -> None:
    assert tuple(f.name for f in dataclasses.fields(Answer)) == ANSWER_FIELDS
    assert tuple(RouteResponse.model_fields) == ANSWER_FIELDS
    assert tuple(ExplainResponse.model_fields) == (*ANSWER_FIELDS[1:], "trace")


class _SlowSharedStore(MemoryStore):
    """A shared store whose saves take 50 ms (a Redis round trip on a bad day)."""

    @property
    def shared(self) -> bool:
        return True

    async def save_decision(self, decision: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        await super().save_decision(decision, **kwargs)


async def test_elapsed_ms_counts_the_wait_for_a_shared_store(make_settings, registry) -> None:  # type: ignore[no-untyped-def]
    async with open_service(make_settings(), registry, store=_SlowSharedStore(100)) as service:
        answer = await service.decide(
            dataclasses.replace(GOLD_REFUND, conversation_id="c-slow", budget_ms=2000)
        )
    assert answer.elapsed_ms >= 50  # the caller waited for the save: the answer says so
