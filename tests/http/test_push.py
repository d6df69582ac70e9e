"""POST /v1/events/polyai: signature or key, 202 once stored, 503 when not (contract §2.3)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from tests.http.conftest import AUTH, MakeClient
from tests.http.test_route import BrokenStore

SECRET = "webhook-secret"
EVENT = {
    "id": "c-push",
    "shared_id": "CA-push",
    "data": {"handoff_reason": "refund"},
    "state": {"customer_tier": "gold"},
    "conversation": {"channel": "voice"},
}


def signed(raw: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Router-Signature": f"sha256={digest}", "Content-Type": "application/json"}


@pytest.fixture
async def push_client(make_client: MakeClient) -> Any:
    return await make_client(ROUTER_WEBHOOK_SECRET=SECRET)


async def test_good_signature_is_accepted_and_stored(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    resp = await push_client.post("/v1/events/polyai", data=raw, headers=signed(raw))
    assert resp.status == 202
    assert await resp.json() == {"status": "accepted"}
    decision = await (
        await push_client.post("/v1/route", json={"shared_id": "CA-push"}, headers=AUTH)
    ).json()
    assert decision["rule"] == "vip-billing"
    assert decision["sources"]["handoff"] == "pushed"


async def test_bad_signature_is_401(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    resp = await push_client.post("/v1/events/polyai", data=raw, headers=signed(raw, "wrong"))
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_signature"


async def test_signature_of_another_body_is_401(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    resp = await push_client.post("/v1/events/polyai", data=raw + b" ", headers=signed(raw))
    assert resp.status == 401


async def test_missing_signature_and_key_is_401(push_client: Any) -> None:
    resp = await push_client.post("/v1/events/polyai", json=EVENT)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "missing_api_key"


async def test_an_api_key_works_instead_of_a_signature(push_client: Any) -> None:
    assert (await push_client.post("/v1/events/polyai", json=EVENT, headers=AUTH)).status == 202


async def test_secret_alone_requires_a_signature(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_API_KEYS="", ROUTER_WEBHOOK_SECRET=SECRET)
    assert (await client.post("/v1/events/polyai", json=EVENT)).status == 401
    raw = orjson.dumps(EVENT)
    assert (await client.post("/v1/events/polyai", data=raw, headers=signed(raw))).status == 202


async def test_push_needs_an_id(push_client: Any) -> None:
    raw = orjson.dumps({"data": {}})
    resp = await push_client.post("/v1/events/polyai", data=raw, headers=signed(raw))
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["path"] == "id"


async def test_store_that_cannot_take_the_push_is_503(make_client: MakeClient) -> None:
    client = await make_client(app_kwargs={"store": BrokenStore(10)})
    resp = await client.post("/v1/events/polyai", json=EVENT, headers=AUTH)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "store_unavailable"
