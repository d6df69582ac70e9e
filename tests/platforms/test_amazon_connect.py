"""POST /v1/platforms/amazon-connect through the real app (contract §7.1), with Connect's
documented invocation events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from router.platforms.models import ConnectAnswer
from tests.fakes.polyai import SAMPLE_CONVERSATION, FakePolyAI, Reply
from tests.platforms.conftest import (
    AUTH,
    CONNECT_GENERAL_ID,
    CONNECT_VIP_ARN,
    CONVERSATION_ID,
    SHARED_ID,
    fixture_json,
    post_logged,
)

PATH = "/v1/platforms/amazon-connect"
FIXED_KEYS = [
    "queue",
    "queue_arn",
    "label",
    "priority",
    "skills",
    "rule",
    "outcome",
    "degraded",
    "decision_id",
    "ruleset",
    "ruleset_version",
    "card_url",  # contract §9: the platform answers carry the agent card's link
]


async def post(client: Any, event: Any, path: str = PATH) -> Any:
    return await client.post(path, json=event, headers=AUTH)


def assert_flat(body: dict[str, Any]) -> None:
    """Connect's STRING_MAP: the fixed keys first, in order, and every value a string."""
    ConnectAnswer.model_validate(body)
    assert list(body)[: len(FIXED_KEYS)] == FIXED_KEYS
    assert all(type(value) is str for value in body.values()), body


async def test_documented_event_without_ids_is_decided_on_context(
    client: Any, fake: FakePolyAI
) -> None:
    resp = await post(client, fixture_json("amazon-connect/contact-flow-event.json"))

    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert_flat(body)
    assert body["queue"] == "general"
    assert body["queue_arn"] == CONNECT_GENERAL_ID
    assert body["outcome"] == "default"
    assert body["degraded"] == "false"  # no ids: lookups skipped, not failed
    assert body["rule"] == ""
    assert body["priority"] == ""
    assert body["skills"] == ""
    assert uuid.UUID(body["decision_id"]).version == 4
    assert body["ruleset"] == "default"
    assert body["ruleset_version"].startswith("sha256:")
    assert fake.handoff_calls == 0


async def test_ids_from_parameters_win_over_attributes(client: Any, fake: FakePolyAI) -> None:
    event = fixture_json("amazon-connect/contact-flow-event-parameter-ids.json")

    body = await (await post(client, event)).json()

    assert_flat(body)
    assert fake.calls("handoff")[0].query["id"] == CONVERSATION_ID
    assert body["queue"] == "vip-desk"
    assert body["queue_arn"] == CONNECT_VIP_ARN
    assert body["label"] == "VIP · gold"
    assert body["priority"] == "50"
    assert body["skills"] == "vip,billing"
    assert body["rule"] == "vip"
    assert body["outcome"] == "matched"
    read_back = await client.get(f"/v1/decisions/{CONVERSATION_ID}", headers=AUTH)
    stored = await read_back.json()
    assert stored["decision_id"] == body["decision_id"]
    assert stored["shared_id"] == SHARED_ID


async def test_valid_attribute_names_are_lifted_and_fixed_keys_win(client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event-parameter-ids.json")

    body = await (await post(client, event)).json()

    assert body["x_tier"] == "gold"
    assert body["X-PolyAI-Tier"] == "gold"  # a valid Connect key (hyphens allowed)
    assert body["9lives"] == "connect only"
    assert body["queue"] == "vip-desk"  # the attribute named "queue" does not replace it
    assert list(body)[len(FIXED_KEYS) :] == ["x_tier", "X-PolyAI-Tier", "9lives"]


async def test_ids_from_contact_attributes_and_context_from_the_event(
    client: Any, fake: FakePolyAI
) -> None:
    event = fixture_json("amazon-connect/contact-flow-event-attribute-ids.json")
    fake.set_conversation(Reply.json({**SAMPLE_CONVERSATION, "state": {"customer_tier": "bronze"}}))

    body = await (await post(client, event)).json()

    assert fake.calls("handoff")[0].query["id"] == CONVERSATION_ID
    assert body["rule"] == "ivr-spanish"  # context.attributes.ivr_choice from the event
    assert body["queue"] == "spanish-speakers"
    assert body["queue_arn"] == ""  # not in the rule file's map


async def test_context_holds_what_connect_sent(state_client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event.json")

    resp, decision = await post_logged(state_client, PATH, json=event, headers=AUTH)

    assert resp.status == 200
    assert decision["platform"] == "amazon-connect"
    assert decision["facts"]["context"] == {
        "platform": "amazon-connect",
        "ani": "***",  # the caller's number: sensitive in logs (contract §8)
        "dnis": "+1234567890",
        "call_id": "4a573372-1f28-4e26-b97b-XXXXXXXXXXX",
        "channel": "VOICE",
        "attributes": {},
        "parameters": {"sentAttributeKey": "sentAttributeValue"},
    }


async def test_rules_route_on_the_block_parameters(client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event.json")
    event["Details"]["Parameters"] = {"pilot": "yes"}

    body = await (await post(client, event)).json()

    assert body["rule"] == "pilot"


async def test_retried_event_lands_in_the_same_queue(client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event.json")
    event["Details"]["Parameters"] = {"pilot": "yes"}
    decided = []
    for _ in range(3):
        decided.append(await (await post(client, event)).json())

    fields = {k: v for k, v in decided[0].items() if k != "decision_id"}
    for body in decided[1:]:
        assert {k: v for k, v in body.items() if k != "decision_id"} == fields
    assert fields["queue"] in ("pilot-a", "pilot-b")


async def test_calls_without_ids_spread_over_a_split_by_contact(client: Any) -> None:
    """With no conversation id, the contact id keys the split: id-less calls do not all
    land in one share, and each contact keeps its share."""
    queues = set()
    for n in range(40):
        event = fixture_json("amazon-connect/contact-flow-event.json")
        event["Details"]["Parameters"] = {"pilot": "yes"}
        event["Details"]["ContactData"]["InitialContactId"] = f"contact-{n}"
        queues.add((await (await post(client, event)).json())["queue"])
    assert queues == {"pilot-a", "pilot-b"}


async def test_ruleset_from_the_query_string(client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event.json")

    body = await (await post(client, event, f"{PATH}?ruleset=other")).json()

    assert body["ruleset"] == "other"
    assert body["queue"] == "other-queue"
    assert body["queue_arn"] == ""


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Name": "ContactFlowEvent"},
        {"Details": None},
        {"Details": "junk"},
        {"Details": {"ContactData": [1, 2, 3], "Parameters": "x"}},
        {"Details": {"ContactData": {"Attributes": {"a": {"b": [{"c": None}]}, "n": 3}}}},
        {"Details": {"Parameters": {"conversation_id": ""}}},
        {"Details": {"Parameters": {"conversation_id": 42, "shared_id": ["x"]}}},
        {"Details": {"Parameters": {"conversation_id": "id\u00e9\u0000"}}},
        {"Details": {"ContactData": {"CustomerEndpoint": {"Address": 15551234567}}}},
        [1, 2, 3],
        "a string",
        None,
    ],
    ids=[
        "empty",
        "name-only",
        "details-null",
        "details-string",
        "wrong-types",
        "nested-junk",
        "empty-id",
        "ids-not-text",
        "id-not-printable",
        "number-not-text",
        "a-list",
        "a-string",
        "null",
    ],
)
async def test_odd_events_still_get_a_decision(client: Any, fake: FakePolyAI, event: Any) -> None:
    resp = await post(client, event)

    assert resp.status == 200
    body = await resp.json()
    assert_flat(body)
    assert body["queue"] == "general"
    assert body["degraded"] == "false"
    assert fake.handoff_calls == 0


async def test_unicode_in_attributes_is_kept(client: Any) -> None:
    event = fixture_json("amazon-connect/contact-flow-event.json")
    event["Details"]["ContactData"]["Attributes"] = {"ivr_choice": "2", "name": "Zoë 🐙"}

    body = await (await post(client, event)).json()

    assert body["queue"] == "spanish-speakers"
    assert body["label"] == "Español"


async def test_a_body_that_is_not_json_is_400(client: Any) -> None:
    resp = await client.post(PATH, data=b"{not json", headers=AUTH)

    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_json"


async def test_an_empty_body_is_still_decided(client: Any) -> None:
    resp = await client.post(PATH, data=b"", headers=AUTH)

    assert resp.status == 200
    assert (await resp.json())["queue"] == "general"
