"""POST /v1/platforms/twilio/studio through the real app (contract §7.2): the body Studio's
*Make HTTP Request* widget sends (form-encoded by default, or JSON), with Basic auth."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from router.platforms.models import StudioAnswer
from tests.fakes.polyai import FakePolyAI
from tests.platforms.conftest import (
    API_KEY,
    CALL_SID,
    CONVERSATION_ID,
    FORM,
    TWILIO_VIP_SID,
    TWILIO_WORKFLOW,
    basic,
    fixture_text,
    post_logged,
)

PATH = "/v1/platforms/twilio/studio"
FIXED_KEYS = [
    "queue",
    "queue_sid",
    "workflow_sid",
    "label",
    "priority",
    "skills",
    "rule",
    "outcome",
    "degraded",
    "decision_id",
    "card_url",  # contract §9: the platform answers carry the agent card's link
    "task_attributes",
]


async def post_form(client: Any, body: str | bytes, path: str = PATH) -> Any:
    return await client.post(path, data=body, headers={**basic(API_KEY), **FORM})


def assert_flat(body: dict[str, Any]) -> dict[str, Any]:
    """Every value a string, the fixed keys first; returns the parsed task attributes."""
    StudioAnswer.model_validate(body)
    assert list(body)[: len(FIXED_KEYS)] == FIXED_KEYS
    assert all(type(value) is str for value in body.values()), body
    assert len(body["task_attributes"]) <= 1024
    attributes: dict[str, Any] = json.loads(body["task_attributes"])
    return attributes


async def test_widget_body_with_basic_auth_gets_a_flat_answer(
    client: Any, fake: FakePolyAI
) -> None:
    resp = await post_form(client, fixture_text("twilio/studio-make-http-request.form"))

    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    attributes = assert_flat(body)
    assert body["queue"] == "vip-desk"
    assert body["queue_sid"] == TWILIO_VIP_SID
    assert body["workflow_sid"] == TWILIO_WORKFLOW
    assert body["label"] == "VIP · gold"
    assert body["priority"] == "50"
    assert body["skills"] == "vip,billing"
    assert body["degraded"] == "false"
    assert body["x_tier"] == "gold"  # lifted: a valid task attribute name
    assert "X-PolyAI-Tier" not in body
    assert attributes["router_queue"] == "vip-desk"
    assert attributes["priority"] == 50
    assert attributes["skills"] == ["vip", "billing"]
    assert attributes["decision_id"] == body["decision_id"]
    assert fake.calls("handoff")[0].query["id"] == CONVERSATION_ID


async def test_empty_ids_from_studio_are_no_ids(client: Any, fake: FakePolyAI) -> None:
    resp = await post_form(client, fixture_text("twilio/studio-make-http-request-no-ids.form"))

    body = await resp.json()
    assert resp.status == 200
    assert_flat(body)
    assert fake.handoff_calls == 0
    assert body["degraded"] == "false"  # skipped lookups are not a failure
    assert body["queue"] == "us-line"  # `to` is the dialled number
    assert body["queue_sid"] == ""


async def test_json_body_is_read_too(client: Any) -> None:
    resp = await client.post(
        PATH,
        json={
            "call_sid": CALL_SID,
            "from": "+14158675310",
            "to": "+442000000000",
            "language": "cy",
        },
        headers=basic(API_KEY),
    )

    body = await resp.json()
    assert resp.status == 200
    assert_flat(body)
    assert body["queue"] == "welsh-speakers"  # any other field is context: context.language


async def test_context_from_the_widget_fields(state_client: Any) -> None:
    resp, decision = await post_logged(
        state_client,
        PATH,
        data=fixture_text("twilio/studio-make-http-request.form") + "&flow=main",
        headers={**basic(API_KEY), **FORM},
    )

    assert resp.status == 200
    assert decision["platform"] == "twilio"
    assert decision["facts"]["context"] == {
        "flow": "main",
        "platform": "twilio",
        "ani": "***",  # the caller's number: sensitive in logs (contract §8)
        "sip_from": "***",
        "dnis": "+18005551212",
        "sip_to": "sip:+18005551212@example.sip.twilio.com",
        "call_id": CALL_SID,
    }


async def test_without_a_workflow_the_answer_names_none(client: Any) -> None:
    body = await (
        await post_form(
            client,
            fixture_text("twilio/studio-make-http-request-no-ids.form"),
            f"{PATH}?ruleset=other",
        )
    ).json()

    assert body["workflow_sid"] == ""  # the flow's Enqueue Call fails over to its fallback
    assert body["queue"] == "other-queue"


async def test_retried_request_lands_in_the_same_queue(client: Any) -> None:
    form = urlencode({"call_sid": "CA-retry", "pilot": "yes", "shared_id": ""})
    bodies = [await (await post_form(client, form)).json() for _ in range(3)]

    keep = [
        {k: v for k, v in b.items() if k not in ("decision_id", "task_attributes")} for b in bodies
    ]
    assert keep[0] == keep[1] == keep[2]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"conversation_id=%20%20&shared_id=", "application/x-www-form-urlencoded"),
        (b"a=1&a=2&&=&b", "application/x-www-form-urlencoded"),
        (b"[1, 2]", "application/json"),
        (b'{"conversation_id": {"nested": ["junk"]}, "to": 5}', "application/json"),
        ("from=Zo\u00eb\U0001f419&to=sip:alice@example.com".encode(), "text/plain"),
    ],
    ids=["empty", "blank-ids", "repeated-and-empty", "json-list", "json-junk", "unicode"],
)
async def test_odd_requests_still_get_a_flat_answer(
    client: Any, body: bytes, content_type: str
) -> None:
    resp = await client.post(
        PATH, data=body, headers={**basic(API_KEY), "Content-Type": content_type}
    )

    assert resp.status == 200
    assert_flat(await resp.json())


async def test_malformed_json_is_400(client: Any) -> None:
    resp = await client.post(
        PATH, data=b'{"call_sid": ', headers={**basic(API_KEY), "Content-Type": "application/json"}
    )

    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_json"


async def test_ids_from_the_query_string_when_the_fields_have_none(
    client: Any, fake: FakePolyAI
) -> None:
    path = f"{PATH}?conversation_id={CONVERSATION_ID}"

    body = await (
        await post_form(client, fixture_text("twilio/studio-make-http-request-no-ids.form"), path)
    ).json()

    assert fake.calls("handoff")[0].query["id"] == CONVERSATION_ID
    assert body["queue"] == "vip-desk"
