"""POST /v1/events/polyai: signature or key, 202 once stored, 503 when not (contract §2.3)."""

from __future__ import annotations

import hashlib
import hmac
import time
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


def signed(raw: bytes, secret: str = SECRET, *, at: int | None = None) -> dict[str, str]:
    """Signed as a sender following docs/api.md would, with Python's own hmac."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return {
        "X-Router-Signature": f"t={stamp},sha256={digest}",
        "Content-Type": "application/json",
    }


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


async def test_a_captured_push_cannot_be_replayed_later(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    captured = signed(raw, at=int(time.time()) - 301)  # older than the 300 s tolerance
    resp = await push_client.post("/v1/events/polyai", data=raw, headers=captured)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["code"] == "invalid_signature"
    assert "ROUTER_WEBHOOK_TOLERANCE_S" in body["error"]["message"]


async def test_a_signature_from_the_future_is_refused(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    resp = await push_client.post(
        "/v1/events/polyai", data=raw, headers=signed(raw, at=int(time.time()) + 3600)
    )
    assert resp.status == 401


async def test_the_signed_time_cannot_be_changed(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    old = signed(raw, at=int(time.time()) - 1000)["X-Router-Signature"]
    forged = "t=" + str(int(time.time())) + "," + old.split(",", 1)[1]
    resp = await push_client.post(
        "/v1/events/polyai",
        data=raw,
        headers={"X-Router-Signature": forged, "Content-Type": "application/json"},
    )
    assert resp.status == 401


async def test_the_v1_1_signature_without_a_time_is_refused(push_client: Any) -> None:
    raw = orjson.dumps(EVENT)
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    resp = await push_client.post(
        "/v1/events/polyai",
        data=raw,
        headers={"X-Router-Signature": f"sha256={digest}", "Content-Type": "application/json"},
    )
    assert resp.status == 401
    assert "t=<unix seconds>" in (await resp.json())["error"]["message"]


def test_the_signing_helper_matches_the_documented_scheme() -> None:
    from router.http.signature import sign, verify

    raw = b'{"id":"c-1"}'
    header = sign(raw, SECRET, at=1_767_225_600)
    assert header == signed(raw, at=1_767_225_600)["X-Router-Signature"]
    assert verify(header, raw, SECRET, tolerance_s=300, clock=lambda: 1_767_225_700) == "ok"
    assert verify(header, raw, SECRET, tolerance_s=60, clock=lambda: 1_767_225_700) == "stale"
    assert verify(header, raw + b" ", SECRET, tolerance_s=300) == "mismatch"
    assert verify("t=x,sha256=00", raw, SECRET, tolerance_s=300) == "malformed"
