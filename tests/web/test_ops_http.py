"""The ops page and its feed over HTTP: auth as the API with a Basic challenge, a strict
Content-Security-Policy, and the sections' content (no browser needed)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from router.http.middlewares import SECURITY_HEADERS
from tests.web.conftest import API_KEY, SCOPED_KEY, MakeClient
from tests.web.rules import GOLD_REFUND


def basic(password: str, user: str = "ops") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("path", ["/ops", "/ops/feed", "/ops/static/ops.js"])
@pytest.mark.parametrize("headers", [{}, basic("wrong"), {"Authorization": "Basic !!"}])
async def test_ops_page_and_feeds_challenge_for_basic_auth(
    make_client: MakeClient, path: str, headers: dict[str, str]
) -> None:
    client = await make_client()
    response = await client.get(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="router"'


async def test_api_key_as_basic_password_opens_the_page_with_any_user_name(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    for user in ("ops", "", "anyone at all"):
        response = await client.get("/ops", headers=basic(API_KEY, user))
        assert response.status == 200, user
        assert response.content_type == "text/html"


async def test_basic_auth_works_on_the_api_too(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/v1/rulesets", headers=basic(API_KEY))
    assert response.status == 200


async def test_the_api_still_challenges_for_a_bearer_key(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/v1/rulesets")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="router"'


async def test_ops_page_policy_allows_only_its_own_script_style_and_fetches(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    response = await client.get("/ops", headers=basic(API_KEY))
    csp = {
        part.split()[0]: part.split()[1:]
        for part in response.headers["Content-Security-Policy"].split(";")
    }
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    page = await response.text()
    assert "<script>" not in page
    assert "<style" not in page
    assert " style=" not in page
    assert "http://" not in page
    assert "https://" not in page


async def test_page_shows_each_ruleset_with_version_rules_and_test_result(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    rulesets = await (await client.get("/v1/rulesets", headers=basic(API_KEY))).json()
    [served] = rulesets["rulesets"]
    page = await (await client.get("/ops", headers=basic(API_KEY))).text()
    assert served["version"][: len("sha256:") + 12] in page
    assert "2 passed" in page
    assert "default.yaml" in page


async def test_feed_lists_routed_decisions_newest_first_without_fact_values(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ids = []
    for reason, conversation in (("refund", "c-1"), ("complaint", "c-2")):
        body: dict[str, Any] = {
            **GOLD_REFUND,
            "conversation_id": conversation,
            "handoff": {"handoff_reason": reason},
        }
        answer = await (await client.post("/v1/route", json=body, headers=basic(API_KEY))).json()
        ids.append(answer["decision_id"][:8])
    feed = await (await client.get("/ops/feed", headers=basic(API_KEY))).json()
    recent = feed["sections"]["recent"]
    assert recent.index(ids[1]) < recent.index(ids[0])  # newest first
    assert "complaints" in recent
    assert "billing-priority" in recent
    assert "vip-billing" in recent
    assert "+447700900123" not in recent  # the caller's number is never shown
    assert "billing-priority" in feed["sections"]["traffic"]


async def test_a_scoped_key_sees_neither_other_rulesets_nor_their_decisions(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    await client.post("/v1/route", json=GOLD_REFUND, headers=basic(API_KEY))
    feed = await (await client.get("/ops/feed", headers=basic(SCOPED_KEY))).json()
    assert "billing-priority" not in feed["sections"]["recent"]
    assert "default.yaml" not in feed["sections"]["rulesets"]


async def test_explain_takes_an_instant_that_schedules_read(make_client: MakeClient) -> None:
    client = await make_client()
    body = {"conversation_id": "x", "context": {"hours_check": "on"}, "ruleset": "default"}
    saturday = await client.post(
        "/v1/explain", json={**body, "at": "2026-11-21T10:00:00"}, headers=basic(API_KEY)
    )
    monday = await client.post(
        "/v1/explain", json={**body, "at": "2026-11-23T10:00:00"}, headers=basic(API_KEY)
    )
    assert (await saturday.json())["rule"] == "out-of-hours"
    assert (await monday.json())["rule"] is None


async def test_explain_refuses_an_instant_that_is_not_one(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/explain",
        json={"conversation_id": "x", "at": "next tuesday"},
        headers=basic(API_KEY),
    )
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["path"] == "at"


async def test_route_does_not_take_an_instant(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/route",
        json={"conversation_id": "x", "at": "2026-11-21T10:00:00"},
        headers=basic(API_KEY),
    )
    assert response.status == 422


def test_the_api_keeps_its_security_headers() -> None:
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
