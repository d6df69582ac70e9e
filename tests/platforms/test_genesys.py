"""POST /v1/platforms/genesys through the real app (contract §7.3), with the body the
shipped data action's request template builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.platforms.models import GenesysAnswer
from tests.fakes.polyai import FakePolyAI
from tests.platforms.conftest import (
    API_KEY,
    CONVERSATION_ID,
    GENESYS_VIP_ID,
    basic,
    fixture_json,
    post_logged,
)

PATH = "/v1/platforms/genesys"
KEYS = {
    "queue": str,
    "queue_id": str,
    "label": str,
    "priority": int,
    "skills": str,
    "rule": str,
    "outcome": str,
    "degraded": bool,
    "decision_id": str,
    "attributes": str,
    "card_url": str,  # contract §9: the platform answers carry the agent card's link
}


async def post(client: Any, body: Any, path: str = PATH) -> Any:
    return await client.post(path, json=body, headers=basic(API_KEY, user="genesys"))


def assert_contract(body: dict[str, Any]) -> None:
    """The output contract: exactly these keys, these types, never a null."""
    GenesysAnswer.model_validate(body)
    assert set(body) == set(KEYS)
    for key, kind in KEYS.items():
        assert type(body[key]) is kind, (key, body[key])


async def test_data_action_request_gets_the_output_contract(client: Any, fake: FakePolyAI) -> None:
    resp = await post(client, fixture_json("genesys/data-action-request.json"))

    assert resp.status == 200
    body = await resp.json()
    assert_contract(body)
    assert body["queue"] == "vip-desk"
    assert body["queue_id"] == GENESYS_VIP_ID
    assert body["priority"] == 50
    assert body["skills"] == "vip,billing"
    assert body["degraded"] is False
    assert json.loads(body["attributes"]) == {
        "x_tier": "gold",
        "X-PolyAI-Tier": "gold",
        "queue": "not lifted",
        "9lives": "connect only",
    }
    assert fake.calls("handoff")[0].query["id"] == CONVERSATION_ID


async def test_empty_inputs_are_no_values_and_nothing_is_null(
    client: Any, fake: FakePolyAI
) -> None:
    empty = dict.fromkeys(fixture_json("genesys/data-action-request.json"), "")

    body = await (await post(client, empty)).json()

    assert_contract(body)
    assert fake.handoff_calls == 0
    assert body["queue"] == "general"
    assert body["rule"] == ""  # not null, though no rule matched
    assert body["priority"] == 0
    assert body["label"] == "General enquiry"
    assert body["attributes"] == "{}"


async def test_context_from_the_request(state_client: Any) -> None:
    request = {**fixture_json("genesys/data-action-request.json"), "queue_hint": "x"}
    request["ani"] = "tel:+14158675310"

    resp, decision = await post_logged(state_client, PATH, json=request, headers=basic(API_KEY))

    assert resp.status == 200
    assert decision["facts"]["context"] == {
        "queue_hint": "x",
        "platform": "genesys",
        "ani": "***",  # the caller's number: sensitive in logs (contract §8)
        "dnis": "+18005551212",
        "call_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    }


async def test_retried_action_lands_in_the_same_queue(client: Any) -> None:
    request = fixture_json("genesys/data-action-request.json")
    bodies = [await (await post(client, request)).json() for _ in range(3)]

    fields = [{k: v for k, v in b.items() if k != "decision_id"} for b in bodies]
    assert fields[0] == fields[1] == fields[2]


@pytest.mark.parametrize(
    "body",
    [{}, [], "text", {"conversation_id": None, "ani": 123, "extra": {"deep": [None]}}],
    ids=["empty", "list", "string", "junk"],
)
async def test_odd_requests_still_answer_the_contract(client: Any, body: Any) -> None:
    resp = await post(client, body)

    assert resp.status == 200
    assert_contract(await resp.json())
