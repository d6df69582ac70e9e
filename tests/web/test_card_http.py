"""The agent card over HTTP: signed expiring links, what it shows and masks, who may
frame it, and that answers carry `card_url` only when links are on."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from aiohttp.test_utils import TestClient

from router.http.keys import SERVICE
from tests.web.conftest import API_KEY, MakeClient
from tests.web.rules import GOLD_REFUND

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def routed(client: TestClient[Any, Any], body: dict[str, Any] = GOLD_REFUND) -> Any:
    response = await client.post("/v1/route", json=body, headers=AUTH)
    assert response.status == 200
    return await response.json()


async def test_every_answer_links_to_its_card_which_needs_no_key(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    answer = await routed(client)
    url = urlsplit(answer["card_url"])
    assert url.path == f"/agent/card/{answer['decision_id']}"
    assert {"c", "exp", "sig"} <= parse_qs(url.query).keys()
    response = await client.get(answer["card_url"])  # no Authorization header
    assert response.status == 200
    page = await response.text()
    assert "Billing dispute · gold" in page
    assert "billing-priority" in page
    assert "Gold customer with a billing problem" in page  # the rule's description
    assert "refund" in page  # a `show:` fact


async def test_card_masks_sensitive_facts_and_leaves_out_missing_ones(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    answer = await routed(client)
    page = await (await client.get(answer["card_url"])).text()
    assert "+447700900123" not in page
    assert "***" in page
    assert "missing" not in page


async def test_read_back_carries_card_url_but_not_the_cards_facts(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    answer = await routed(client)
    stored = await (await client.get("/v1/decisions/conv-web-1", headers=AUTH)).json()
    assert stored["card_url"] == answer["card_url"]
    assert "card" not in stored


async def test_a_tampered_link_is_refused_and_says_nothing(make_client: MakeClient) -> None:
    client = await make_client()
    answer = await routed(client)
    url = urlsplit(answer["card_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    tampered = [
        {**query, "sig": query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")},
        {**query, "exp": str(int(query["exp"]) + 3600)},
        {**query, "c": "someone-else"},
        {k: v for k, v in query.items() if k != "sig"},
    ]
    for params in tampered:
        response = await client.get(f"{url.path}?{urlencode(params)}")
        assert response.status == 403, params
        page = await response.text()
        assert "not valid" in page
        assert "billing-priority" not in page
        assert "Billing" not in page


async def test_an_expired_link_is_refused(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_CARD_TTL_S="60")
    answer = await routed(client)
    service = client.app[SERVICE]
    now = service.clock()
    service.clock = lambda: now + 61
    assert (await client.get(answer["card_url"])).status == 403
    service.clock = lambda: now + 59
    assert (await client.get(answer["card_url"])).status == 200


async def test_a_link_to_a_replaced_decision_finds_nothing(make_client: MakeClient) -> None:
    client = await make_client()
    first = await routed(client)
    await routed(client)  # the same conversation decided again
    response = await client.get(first["card_url"])
    assert response.status == 404
    assert "no longer" in await response.text()


async def test_the_card_may_be_framed_by_the_configured_desktops_only(
    make_client: MakeClient,
) -> None:
    ancestors = "'self' https://flex.twilio.com https://*.my.connect.aws"
    client = await make_client(ROUTER_CARD_FRAME_ANCESTORS=ancestors)
    answer = await routed(client)
    response = await client.get(answer["card_url"])
    csp = response.headers["Content-Security-Policy"]
    assert csp.endswith(f"frame-ancestors {ancestors}")
    assert "script-src" not in csp  # the card runs no script at all
    assert "X-Frame-Options" not in response.headers
    refused = await client.get(f"/agent/card/{answer['decision_id']}?c=x&exp=1&sig=00")
    assert "X-Frame-Options" not in refused.headers
    api = await client.get("/v1/rulesets", headers=AUTH)
    assert api.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]


async def test_default_frame_ancestors_is_self(make_client: MakeClient) -> None:
    client = await make_client()
    answer = await routed(client)
    response = await client.get(answer["card_url"])
    assert response.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")


async def test_without_a_secret_answers_carry_a_null_card_url_and_cards_are_refused(
    make_client: MakeClient,
) -> None:
    client = await make_client(ROUTER_CARD_SECRET="")
    answer = await routed(client)
    assert answer["card_url"] is None
    response = await client.get(f"/agent/card/{answer['decision_id']}?c=conv-web-1&exp=9&sig=0")
    assert response.status == 403


async def test_base_url_makes_the_link_absolute(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_CARD_BASE_URL="https://router.example.com/")
    answer = await routed(client)
    assert answer["card_url"].startswith("https://router.example.com/agent/card/")


async def test_a_call_known_only_by_shared_id_has_a_card(make_client: MakeClient) -> None:
    client = await make_client()
    body = {k: v for k, v in GOLD_REFUND.items() if k != "conversation_id"}
    answer = await routed(client, {**body, "shared_id": "CA123"})
    assert "s=CA123" in answer["card_url"]
    assert (await client.get(answer["card_url"])).status == 200
