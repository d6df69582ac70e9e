"""What every platform endpoint shares (contract §7): never an error for a call (no ruleset
loaded, an unknown ruleset, a fault), the platform label on the metrics, the size limit,
and the endpoints in the OpenAPI document."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from router.http.keys import SERVICE
from router.http.middlewares import PLATFORM_ROUTES, SIGNED_ROUTES
from router.http.openapi import build_openapi
from tests.platforms.conftest import AUTH, FORM, fixture_json, fixture_text
from tests.rules import write_rules

CONNECT = "/v1/platforms/amazon-connect"
VOICE = "/v1/platforms/twilio/voice"
STUDIO = "/v1/platforms/twilio/studio"
GENESYS = "/v1/platforms/genesys"


def emergency_count(platform: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "router_platform_emergency_answers_total", {"platform": platform, "reason": reason}
    )
    return value or 0.0


def decisions_count(platform: str) -> float:
    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "router_decisions_total" and sample.labels["platform"] == platform:
                total += sample.value
    return total


@pytest.fixture
def broken_rules(rules_dir: Path) -> Path:
    """The rules folder with only a rule file that has never been valid."""
    for file in rules_dir.iterdir():
        file.unlink()
    write_rules(rules_dir, "default.yaml", "rules: [\n")
    return rules_dir


@pytest.fixture
async def not_ready_client(make_client: Any, broken_rules: Path) -> Any:
    """An app with no ruleset loaded."""
    return await make_client(ROUTER_EMERGENCY_QUEUE="emergency-line")


async def test_route_api_is_503_when_no_ruleset_is_loaded(not_ready_client: Any) -> None:
    resp = await not_ready_client.post("/v1/route", json={"shared_id": "x"}, headers=AUTH)

    assert resp.status == 503  # the neutral API; the platform endpoints below still answer


async def test_twilio_voice_enqueues_to_the_emergency_queue_when_not_ready(
    not_ready_client: Any,
) -> None:
    before = emergency_count("twilio", "not_ready")

    resp = await not_ready_client.post(
        VOICE, data=fixture_text("twilio/voice-webhook-sip.form"), headers={**AUTH, **FORM}
    )

    assert resp.status == 200
    assert resp.content_type == "text/xml"
    root = ET.fromstring(await resp.text())
    [enqueue] = list(root)
    assert (enqueue.tag, enqueue.text, enqueue.attrib) == ("Enqueue", "emergency-line", {})
    assert emergency_count("twilio", "not_ready") == before + 1


async def test_connect_gets_a_flat_fallback_answer_when_not_ready(not_ready_client: Any) -> None:
    resp = await not_ready_client.post(
        CONNECT, json=fixture_json("amazon-connect/contact-flow-event.json"), headers=AUTH
    )

    assert resp.status == 200
    assert await resp.json() == {
        "queue": "emergency-line",
        "queue_arn": "",
        "label": "",
        "priority": "",
        "skills": "",
        "rule": "",
        "outcome": "fallback",
        "degraded": "true",
        "decision_id": "",
        "ruleset": "default",
        "ruleset_version": "",
        "card_url": "",
    }


async def test_studio_and_genesys_get_fallback_answers_when_not_ready(
    not_ready_client: Any,
) -> None:
    studio = await (
        await not_ready_client.post(
            STUDIO,
            data=fixture_text("twilio/studio-make-http-request.form"),
            headers={**AUTH, **FORM},
        )
    ).json()
    assert studio["queue"] == "emergency-line"
    assert studio["workflow_sid"] == ""  # the flow's Enqueue Call fails over to its fallback
    assert studio["outcome"] == "fallback"
    assert studio["degraded"] == "true"
    assert json.loads(studio["task_attributes"])["router_queue"] == "emergency-line"

    genesys = await (
        await not_ready_client.post(
            GENESYS, json=fixture_json("genesys/data-action-request.json"), headers=AUTH
        )
    ).json()
    assert genesys == {
        "queue": "emergency-line",
        "queue_id": "",
        "label": "",
        "priority": 0,
        "skills": "",
        "rule": "",
        "outcome": "fallback",
        "degraded": True,
        "decision_id": "",
        "attributes": "{}",
        "card_url": "",
    }


async def test_an_unknown_ruleset_gets_the_emergency_answer(client: Any) -> None:
    before = emergency_count("amazon-connect", "ruleset_not_found")

    resp = await client.post(f"{CONNECT}?ruleset=no-such-rules", json={}, headers=AUTH)

    body = await resp.json()
    assert resp.status == 200
    assert body["queue"] == "fallback"  # ROUTER_EMERGENCY_QUEUE's default
    assert body["ruleset"] == "no-such-rules"
    assert emergency_count("amazon-connect", "ruleset_not_found") == before + 1


async def test_a_fault_in_the_service_still_gets_an_answer(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.app[SERVICE], "decide_for_platform", broken)

    resp = await client.post(GENESYS, json={}, headers=AUTH)

    assert resp.status == 200
    assert (await resp.json())["queue"] == "fallback"


async def test_decisions_are_counted_with_their_platform(client: Any) -> None:
    before = {p: decisions_count(p) for p in ("api", "amazon-connect", "twilio", "genesys")}

    await client.post(
        "/v1/route", json={"shared_id": "m", "handoff": {}, "state": {}}, headers=AUTH
    )
    await client.post(CONNECT, json={}, headers=AUTH)
    await client.post(VOICE, data=b"CallSid=CA1", headers={**AUTH, **FORM})
    await client.post(STUDIO, data=b"call_sid=CA1", headers={**AUTH, **FORM})
    await client.post(GENESYS, json={}, headers=AUTH)

    after = {p: decisions_count(p) for p in before}
    assert after == {
        "api": before["api"] + 1,
        "amazon-connect": before["amazon-connect"] + 1,
        "twilio": before["twilio"] + 2,
        "genesys": before["genesys"] + 1,
    }


@pytest.mark.parametrize("path", [CONNECT, STUDIO, GENESYS])
async def test_a_body_over_the_limit_is_413(make_client: Any, path: str) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES="1024")

    resp = await client.post(path, data=b"{" + b" " * 2048 + b"}", headers=AUTH)

    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "body_too_large"


def test_platform_endpoints_are_in_the_openapi_document() -> None:
    paths = build_openapi()["paths"]

    for path in (CONNECT, VOICE, STUDIO, GENESYS):
        assert "post" in paths[path], path
        assert {"basicAuth": []} in paths[path]["post"]["security"]
    assert "text/xml" in paths[VOICE]["post"]["responses"]["200"]["content"]
    assert {"twilioSignature": []} in paths[VOICE]["post"]["security"]
    assert {"twilioSignature": []} not in paths[GENESYS]["post"]["security"]


def test_platform_route_names_are_the_ones_the_auth_middleware_knows(client: Any) -> None:
    names = {
        route.name
        for route in client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/platforms/")
    }

    assert names == PLATFORM_ROUTES
    assert {"platform_twilio_voice", "platform_twilio_studio"} <= SIGNED_ROUTES
    assert not {"platform_amazon_connect", "platform_genesys"} & SIGNED_ROUTES
