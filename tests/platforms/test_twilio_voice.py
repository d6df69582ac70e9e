"""POST /v1/platforms/twilio/voice through the real app (contract §7.2), with Twilio's
documented voice webhook parameters."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fakes.polyai import FakePolyAI, Reply
from tests.platforms.conftest import (
    AUTH,
    CALL_SID,
    CONVERSATION_ID,
    FORM,
    SHARED_ID,
    TWILIO_VIP_SID,
    TWILIO_WORKFLOW,
    fixture_form,
    fixture_text,
    post_logged,
)

PATH = "/v1/platforms/twilio/voice"
TASK_KEYS = [
    "router_queue",
    "router_queue_sid",
    "call_type",
    "skills",
    "priority",
    "rule",
    "decision_id",
    "degraded",
]


async def post(client: Any, body: str | bytes, path: str = PATH, **headers: str) -> Any:
    return await client.post(path, data=body, headers={**AUTH, **FORM, **headers})


def enqueue_of(twiml: str) -> ET.Element:
    """The ``<Enqueue>`` of a TwiML answer (which must be well-formed XML)."""
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    [enqueue] = list(root)
    assert enqueue.tag == "Enqueue"
    return enqueue


def task_of(enqueue: ET.Element) -> tuple[dict[str, Any], ET.Element]:
    [task] = list(enqueue)
    assert task.tag == "Task"
    assert task.text is not None
    return json.loads(task.text), task


async def test_sip_call_is_enqueued_into_the_workflow_with_task_attributes(
    client: Any, fake: FakePolyAI
) -> None:
    resp = await post(client, fixture_text("twilio/voice-webhook-sip.form"))

    assert resp.status == 200
    assert resp.content_type == "text/xml"
    enqueue = enqueue_of(await resp.text())
    assert enqueue.attrib == {"workflowSid": TWILIO_WORKFLOW}
    attributes, task = task_of(enqueue)
    assert task.attrib == {"priority": "50"}
    assert list(attributes)[: len(TASK_KEYS)] == TASK_KEYS
    assert attributes["router_queue"] == "vip-desk"
    assert attributes["router_queue_sid"] == TWILIO_VIP_SID
    assert attributes["call_type"] == "VIP · gold"
    assert attributes["skills"] == ["vip", "billing"]  # a list inside task attributes
    assert attributes["priority"] == 50  # a JSON number, as workflow filters compare it
    assert attributes["degraded"] is False  # a JSON boolean
    assert attributes["rule"] == "vip"
    # lifted: only names a TaskRouter expression can read, never over a fixed key
    assert attributes["x_tier"] == "gold"
    assert "X-PolyAI-Tier" not in attributes
    assert "9lives" not in attributes
    assert "queue" not in attributes
    # the ids came from the SIP headers
    [seen] = fake.calls("handoff")
    assert seen.query["id"] == CONVERSATION_ID


async def test_decision_is_kept_and_readable_by_the_sip_shared_id(client: Any) -> None:
    resp = await post(client, fixture_text("twilio/voice-webhook-sip.form"))
    attributes, _ = task_of(enqueue_of(await resp.text()))

    stored = await (await client.get(f"/v1/decisions?shared_id={SHARED_ID}", headers=AUTH)).json()

    assert stored["decision_id"] == attributes["decision_id"]
    assert stored["conversation_id"] == CONVERSATION_ID


async def test_pstn_call_falls_back_to_the_call_sid_as_shared_id(
    client: Any, fake: FakePolyAI
) -> None:
    resp = await post(client, fixture_text("twilio/voice-webhook.form"))

    assert resp.status == 200
    [seen] = fake.calls("handoff")
    assert seen.query["shared_id"] == CALL_SID
    attributes, _ = task_of(enqueue_of(await resp.text()))
    stored = await (await client.get(f"/v1/decisions?shared_id={CALL_SID}", headers=AUTH)).json()
    assert stored["decision_id"] == attributes["decision_id"]


async def test_query_ids_win_over_sip_headers(client: Any, fake: FakePolyAI) -> None:
    path = f"{PATH}?conversation_id=from-the-query&shared_id=shared-from-query"

    await post(client, fixture_text("twilio/voice-webhook-sip.form"), path)

    assert fake.calls("handoff")[0].query["id"] == "from-the-query"


async def test_sip_header_names_come_from_the_settings(make_client: Any, fake: FakePolyAI) -> None:
    client = await make_client(ROUTER_SIP_CONVERSATION_HEADER="X-Customer-ID")

    await post(client, fixture_text("twilio/voice-webhook-sip.form"))

    assert fake.calls("handoff")[0].query["id"] == "abc123"


async def test_context_holds_the_call_with_sip_uris_reduced_to_numbers(
    state_client: Any,
) -> None:
    resp, decision = await post_logged(
        state_client,
        PATH,
        data=fixture_text("twilio/voice-webhook-sip.form"),
        headers={**AUTH, **FORM},
    )

    assert resp.status == 200
    context = decision["facts"]["context"]
    assert context["platform"] == "twilio"
    assert context["ani"] == "***"  # the caller's number: sensitive everywhere but the answer
    assert context["dnis"] == "+18005551212"
    assert context["sip_from"] == "***"
    assert context["sip_to"] == "sip:+18005551212@example.sip.twilio.com"
    assert context["call_id"] == CALL_SID
    assert context["sip"] == {
        "conversation-id": CONVERSATION_ID,
        "customer-id": "abc123",
        "shared-id": SHARED_ID,
    }
    assert set(context) == {"platform", "ani", "dnis", "sip_from", "sip_to", "call_id", "sip"}


async def test_rules_route_on_sip_headers_and_numbers(client: Any, fake: FakePolyAI) -> None:
    fields = [
        (k, v)
        for k, v in fixture_form("twilio/voice-webhook-sip.form")
        if k not in ("SipHeader_X-Conversation-Id", "SipHeader_X-Shared-Id")
    ]
    fake.set_handoff(Reply.not_found())

    sip_body = await (await post(client, urlencode(fields))).text()
    assert task_of(enqueue_of(sip_body))[0]["router_queue"] == "sip-customers"

    plain = [(k, v) for k, v in fields if not k.startswith("SipHeader_")]
    plain_body = await (await post(client, urlencode(plain))).text()
    assert task_of(enqueue_of(plain_body))[0]["router_queue"] == "us-line"  # To's number


async def test_without_a_workflow_the_call_goes_to_the_named_queue(client: Any) -> None:
    resp = await post(client, fixture_text("twilio/voice-webhook.form"), f"{PATH}?ruleset=other")

    assert resp.status == 200
    enqueue = enqueue_of(await resp.text())
    assert enqueue.attrib == {}
    assert enqueue.text == "other-queue"
    assert list(enqueue) == []


async def test_no_priority_means_no_priority_attribute(client: Any, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.not_found())
    enqueue = enqueue_of(
        await (await post(client, fixture_text("twilio/voice-webhook.form"))).text()
    )

    attributes, task = task_of(enqueue)
    assert task.attrib == {}
    assert attributes["priority"] == 0
    assert attributes["router_queue"] == "us-line"
    assert attributes["router_queue_sid"] == ""


async def test_retried_webhook_lands_in_the_same_queue(client: Any) -> None:
    body = fixture_text("twilio/voice-webhook-sip.form")
    answers = []
    for _ in range(3):
        attributes, _ = task_of(enqueue_of(await (await post(client, body)).text()))
        answers.append({k: v for k, v in attributes.items() if k != "decision_id"})

    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"CallSid=",
        b"junk",
        b"%%%&&&===",
        b'{"CallSid": "CA1"}',
        b"\xff\xfe\x00garbage",
        ("From=" + "\u00e9\U0001f419" * 50 + "&To=%2B18005551212").encode(),
        urlencode({"CallSid": CALL_SID, "SipHeader_X-Big": "x" * 10_240}).encode(),
        urlencode({"CallSid": CALL_SID, "SipHeader_X-Conversation-Id": "\u00e9" * 5}).encode(),
    ],
    ids=[
        "empty",
        "blank-call-sid",
        "not-a-form",
        "broken-escapes",
        "json",
        "not-utf8",
        "unicode-numbers",
        "10kb-sip-header",
        "unicode-id",
    ],
)
async def test_odd_webhooks_still_get_twiml(client: Any, body: bytes) -> None:
    resp = await post(client, body)

    assert resp.status == 200
    assert resp.content_type == "text/xml"
    enqueue = enqueue_of(await resp.text())
    attributes, _ = task_of(enqueue)
    assert attributes["router_queue"]
    assert len(task_of(enqueue)[1].text or "") <= 1024


async def test_body_over_the_limit_is_413_twiml(make_client: Any) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES="1024")

    resp = await post(client, urlencode({"CallSid": CALL_SID, "x": "y" * 2048}))

    assert resp.status == 413
    assert resp.content_type == "text/xml"
    assert ET.fromstring(await resp.text()).tag == "Response"
