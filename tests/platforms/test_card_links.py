"""Contract §9: with ROUTER_CARD_SECRET set, the platform answers carry the agent card's link
(`card_url`), and the link opens that decision's card."""

from __future__ import annotations

import json
from typing import Any

from tests.http.conftest import AUTH, MakeClient
from tests.platforms.conftest import FORM, fixture_json, fixture_text

SECRET = "card-secret-for-platform-tests"


async def test_every_platform_answer_links_to_its_agent_card(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_CARD_SECRET=SECRET)

    async def opens_its_card(answer: dict[str, Any]) -> None:
        link = answer["card_url"]
        assert link.startswith(f"/agent/card/{answer['decision_id']}?")
        card = await client.get(link)  # no API key: the signature is the credential
        assert card.status == 200
        assert "text/html" in card.headers["Content-Type"]

    connect = await (
        await client.post(
            "/v1/platforms/amazon-connect",
            json=fixture_json("amazon-connect/contact-flow-event-parameter-ids.json"),
            headers=AUTH,
        )
    ).json()
    await opens_its_card(connect)
    studio = await (
        await client.post(
            "/v1/platforms/twilio/studio",
            data=fixture_text("twilio/studio-make-http-request.form"),
            headers={**AUTH, **FORM},
        )
    ).json()
    await opens_its_card(studio)
    genesys = await (
        await client.post(
            "/v1/platforms/genesys",
            json=fixture_json("genesys/data-action-request.json"),
            headers=AUTH,
        )
    ).json()
    await opens_its_card(genesys)
    assert json.loads(studio["task_attributes"])["card_url"] == studio["card_url"]


async def test_without_a_card_secret_the_link_is_empty(client: Any) -> None:
    answer = await (
        await client.post(
            "/v1/platforms/genesys",
            json=fixture_json("genesys/data-action-request.json"),
            headers=AUTH,
        )
    ).json()
    assert answer["card_url"] == ""
