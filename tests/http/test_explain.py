"""POST /v1/explain: the decision plus a trace, recording nothing (contract §2.2)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from router.http.models import ExplainResponse
from tests.http.conftest import AUTH


def decisions_total() -> float:
    total = 0.0
    for family in REGISTRY.collect():
        if family.name == "router_decisions":
            total += sum(s.value for s in family.samples if s.name == "router_decisions_total")
    return total


async def test_explain_gives_the_decision_and_a_trace_and_records_nothing(client: Any) -> None:
    before = decisions_total()
    body = {
        "conversation_id": "c-explain",
        "handoff": {"handoff_reason": "complaint"},
        "state": {"customer_tier": "gold"},
    }
    resp = await client.post("/v1/explain", json=body, headers=AUTH)
    assert resp.status == 200
    answer = await resp.json()
    ExplainResponse.model_validate(answer)
    assert "decision_id" not in answer
    assert answer["outcome"] == "default"
    assert [step["rule"] for step in answer["trace"]] == ["vip-billing", "by-dnis"]
    assert answer["trace"][0]["matched"] is False
    assert (await client.get("/v1/decisions/c-explain", headers=AUTH)).status == 404
    assert decisions_total() == before
